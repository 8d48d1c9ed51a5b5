"""Media integrity: the cheap check on opening, the full check, and unused-media clean-up.

* :func:`quick_check` (on every open, milliseconds per file): each media file exists, is a
  regular file inside ``media/``, has the recorded size and the recorded fingerprint
  (sha256 of its size and eight 4 KiB blocks, :func:`studio.media.pool.fingerprint_file`);
  items from before fingerprints were recorded get their WAV header checked instead
  (rate, channels, frames, float32).
* :func:`verify_media` (``seed-studio verify``): the full sha256 of every file against its
  content address (the media id).
* :func:`unused_media` / :func:`clean_media` (``seed-studio clean``, File > Clean Up Unused
  Media): media that nothing can bring back: no clip of the project plays it, no autosave
  names it (crash recovery may need it), and the open session's undo history doesn't
  mention it. Its media-table entry is dropped (and ``project.json`` saved) before its file
  is removed.

Every problem is one line naming the media file (and the name it was imported from).
"""
from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from studio.model.project import MediaItem, Project

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX64_ANY = re.compile(r"[0-9a-f]{64}")


def _label(item: MediaItem) -> str:
    return f"media file '{item.path}'" + (f" (imported from '{item.original_name}')" if item.original_name else "")


def _media_file(bundle: Path, item: MediaItem) -> Path | None:
    rel = Path(item.path)
    if rel.is_absolute() or len(rel.parts) != 2 or rel.parts[0] != "media" or rel.name in ("", ".", ".."):
        return None
    return bundle / "media" / rel.name


def quick_check(project: Project, bundle: str | Path) -> list[str]:
    """Cheap check of every media file of ``project`` (see the module docstring).

    Returns:
        One line per problem, naming the file: missing, not a regular file, size changed,
        content changed (fingerprint), or a header that doesn't match the project. Empty
        when all is well. Never raises.
    """
    return [f"{_label(item)}: {problem}" for item, problem in _quick(project, Path(bundle))]


def _quick(project: Project, b: Path) -> list[tuple[MediaItem, str]]:
    from studio.media.pool import fingerprint_file

    problems: list[tuple[MediaItem, str]] = []
    for item in project.media.values():
        p = _media_file(b, item)
        if p is None:
            problems.append((item, "not a path inside the project's media folder"))
            continue
        try:
            st = p.lstat()
        except FileNotFoundError:
            problems.append((item, "missing from the project folder"))
            continue
        except OSError as exc:
            problems.append((item, f"can't be read ({exc.strerror or exc})"))
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append((item, "is a link or not a regular file; it was replaced after import"))
            continue
        if item.size and st.st_size != item.size:
            problems.append((item, f"is {st.st_size} bytes, not the {item.size} bytes imported; "
                                   "it was changed or replaced"))
            continue
        try:
            if item.fingerprint:
                if fingerprint_file(p)[1] != item.fingerprint:
                    problems.append((item, "its content changed since import (it was replaced or damaged); "
                                           "run `seed-studio verify` for a full check"))
            else:
                problem = _header_problem(p, item)
                if problem:
                    problems.append((item, problem))
        except OSError as exc:
            problems.append((item, f"can't be read ({exc.strerror or exc})"))
    return problems


def _header_problem(path: Path, item: MediaItem) -> str | None:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile: not audio
        return f"is not a readable WAV file ({exc})"
    if (info.samplerate, info.channels, info.frames, info.subtype) != (
            item.sample_rate, item.channels, item.frames, "FLOAT"):
        return (f"holds {info.channels} ch x {info.frames} frames {info.subtype} at {info.samplerate} Hz, "
                f"not the {item.channels} ch x {item.frames} frames float at {item.sample_rate} Hz imported")
    return None


def verify_media(project: Project, bundle: str | Path,
                 progress: Callable[[int, int], Any] | None = None) -> list[str]:
    """Full check: the sha256 of every media file against its media id (its content address).

    Args:
        progress: ``progress(bytes_done, bytes_total)`` while hashing.

    Returns:
        One line per problem (missing, unreadable, sha256 mismatch), naming the file.
    """
    from engines.files import sha256_file

    b = Path(bundle)
    quick = _quick(project, b)
    problems = [f"{_label(item)}: {problem}" for item, problem in quick]
    bad = {id(item) for item, _ in quick}
    todo = []
    for item in project.media.values():
        p = _media_file(b, item)
        if p is None or id(item) in bad or not _HEX64.match(item.id):
            continue
        try:
            todo.append((item, p, p.stat().st_size))
        except OSError:
            continue
    total = sum(size for *_, size in todo)
    done = 0
    for item, p, size in todo:
        try:
            digest = sha256_file(p, progress=(lambda n, base=done: progress(base + n, total)) if progress else None)
        except OSError as exc:
            problems.append(f"{_label(item)}: can't be read ({exc.strerror or exc})")
            continue
        done += size
        if digest != item.id:
            problems.append(f"{_label(item)}: sha256 {digest[:12]}... does not match its id {item.id[:12]}...: "
                            "the file was changed or replaced after import")
    return problems


# ---------------------------------------------------------------- unused media

def _strings(roots: Iterable[Any], limit: int = 2_000_000) -> set[str]:
    """Every string reachable from ``roots`` (objects' attributes, dataclasses, containers)."""
    out: set[str] = set()
    seen: set[int] = set()
    stack = list(roots)
    while stack and len(seen) < limit:
        obj = stack.pop()
        if isinstance(obj, str):
            out.add(obj)
            continue
        if obj is None or isinstance(obj, (int, float, bool, bytes)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s, None) for s in obj.__slots__)
    return out


def _autosave_media(bundle: Path) -> set[str]:
    """Media ids the clips of the bundle's autosaves play (read loosely, never refused: an
    autosave that can't be read keeps every media item it names)."""
    from studio.limits import MAX_PROJECT_JSON_BYTES

    out: set[str] = set()
    for p in (bundle / "autosave").glob("autosave-*.json"):
        try:
            if not p.is_file() or p.is_symlink() or p.stat().st_size > MAX_PROJECT_JSON_BYTES:
                continue
            text = p.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, ValueError, UnicodeError, RecursionError):
            try:
                out |= set(_HEX64_ANY.findall(p.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                pass
            continue
        stack = [data.get("tracks") if isinstance(data, dict) else None]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("media_id"), str):
                    out.add(node["media_id"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return out


@dataclass
class CleanReport:
    """What :func:`clean_media` removed (or would remove with ``dry_run``).

    Attributes:
        entries: ids of media-table entries that no clip uses and nothing can bring back
            (dropped from ``project.json``).
        media: media files removed; media_bytes: their size.
        caches: peak caches of media that is gone; cache_bytes: their size.
    """

    entries: list[str] = field(default_factory=list)
    media: list[Path] = field(default_factory=list)
    media_bytes: int = 0
    caches: list[Path] = field(default_factory=list)
    cache_bytes: int = 0


def used_media_ids(project: Project) -> set[str]:
    """Ids of the media that clips of ``project`` play (own clips and every take's clips)."""
    return {c.media_id for t in project.tracks for c in t.all_clips() if hasattr(c, "media_id")}


def unused_media(project: Project, bundle: str | Path, undo_stack: Any = None, *,
                 keep_table: bool = False) -> CleanReport:
    """What nothing can bring back (see the module docstring).

    Kept: media a clip of ``project`` uses, media named anywhere in ``undo_stack``'s history
    (an undo or redo may bring its clip back), and media named in any autosave (crash
    recovery). Listed: the other media-table entries, the media files that are not kept
    (whether in the table or not: a file renamed into place before a crash), and the peak
    caches of media that is not kept. Only regular files named like media
    (``media/*.wav``, ``cache/peaks/*.npz``) are listed; temp files are
    :func:`studio.io.project_io.sweep_temp_files`'s business.

    Args:
        keep_table: keep every media-table entry (and its file); only files outside the
            table can go.
    """
    b = Path(bundle)
    keep = set(used_media_ids(project))
    if keep_table:
        keep |= set(project.media) | {item.id for item in project.media.values()}
    if undo_stack is not None:
        keep |= _strings(list(undo_stack.commands()))
    keep |= _autosave_media(b)
    report = CleanReport()
    report.entries = sorted(k for k, item in project.media.items() if k not in keep and item.id not in keep)
    kept_files = {Path(item.path).name for k, item in project.media.items() if k not in report.entries}
    media_dir = b / "media"
    live_stems: set[str] = set()
    if media_dir.is_dir() and not media_dir.is_symlink():
        for p in sorted(media_dir.iterdir()):
            if p.name.startswith(".") or p.suffix != ".wav":
                continue
            try:
                st = p.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if p.name in kept_files or p.stem in keep or f"media/{p.name}" in keep:
                live_stems.add(p.stem)
                continue
            report.media.append(p)
            report.media_bytes += st.st_size
    peaks = b / "cache" / "peaks"
    if peaks.is_dir() and not peaks.is_symlink():
        for p in sorted(peaks.iterdir()):
            if p.name.startswith(".") or p.suffix != ".npz" or p.stem in live_stems or p.stem in keep:
                continue
            try:
                st = p.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                report.caches.append(p)
                report.cache_bytes += st.st_size
    return report


def clean_media(session: Any, *, dry_run: bool = False) -> CleanReport:
    """Remove what :func:`unused_media` lists for an open, writable session.

    Order, so that a crash at any point loses nothing (and a full disk gets space back
    first): files outside the media table go first; then the unused table entries are
    dropped from the live project and ``project.json`` is saved (when there are any: that
    also saves the session's other unsaved changes), then their files are removed. Files
    that can't be removed are left out of the report (the next clean retries them).
    While another session's unsaved work waits for recovery (autosaves newer than
    ``project.json``), ``project.json`` is not saved and the media table is kept whole.

    Raises:
        ProjectError: a read-only or closed session. DiskFull: the save failed (nothing
            was removed).
    """
    from studio.errors import ProjectError

    from studio.io import project_io

    if getattr(session, "readonly", False):
        raise ProjectError(session.bundle, "is open read-only; nothing can be cleaned up")
    # Autosaves newer than project.json that this session didn't write are another
    # session's unsaved work (a crash): saving would retire them, so the table stays.
    pending = not session.is_dirty and project_io.recovery_candidate(session.bundle) is not None
    report = unused_media(session.project, session.bundle, session.undo_stack, keep_table=pending)
    if dry_run:
        return report
    done = CleanReport(entries=list(report.entries))
    table_files = {Path(session.project.media[k].path).name for k in report.entries}

    def remove(files: list[Path]) -> None:
        for p in files:
            try:
                size = p.lstat().st_size
                p.unlink()
            except OSError:
                continue
            done.media.append(p)
            done.media_bytes += size

    remove([p for p in report.media if p.name not in table_files])  # needs no save: frees space first
    if report.entries:
        removed = {k: session.project.media.pop(k) for k in report.entries}
        try:
            session.save()
        except BaseException:
            session.project.media.update(removed)
            raise
        remove([p for p in report.media if p.name in table_files])
    for p in report.caches:
        try:
            size = p.lstat().st_size
            p.unlink()
        except OSError:
            continue
        done.caches.append(p)
        done.cache_bytes += size
    if done.media or done.caches:
        from engines.files import fsync_dir

        fsync_dir(Path(session.bundle) / "media")
    return done


def human_bytes(n: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


__all__ = ["quick_check", "verify_media", "unused_media", "used_media_ids", "clean_media", "CleanReport",
           "human_bytes"]
