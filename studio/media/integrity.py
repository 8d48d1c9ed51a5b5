"""Media integrity: the cheap check on opening, the full check, and unused-media clean-up.

* :func:`quick_check` (on every open, milliseconds per file): each media file exists, is a
  regular file inside ``media/``, has the recorded size and the recorded fingerprint
  (sha256 of its size and eight 4 KiB blocks, :func:`studio.media.pool.fingerprint_file`);
  items from before fingerprints were recorded get their WAV header checked instead
  (rate, channels, frames, float32).
* :func:`verify_media` (``seed-studio verify``): the full sha256 of every file against its
  content address (the media id).
* :func:`unused_media` / :func:`clean_media` (``seed-studio clean``, File > Clean up unused
  media): media files that nothing can bring back: not in ``project.json``, not in any
  autosave (crash recovery may need them), and not in the undo history of the open session.

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
    """Media ids and paths named by the bundle's autosaves (read loosely, never refused)."""
    from studio.limits import MAX_PROJECT_JSON_BYTES

    out: set[str] = set()
    for p in (bundle / "autosave").glob("autosave-*.json"):
        try:
            if not p.is_file() or p.is_symlink() or p.stat().st_size > MAX_PROJECT_JSON_BYTES:
                continue
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeError, RecursionError):
            continue
        media = data.get("media") if isinstance(data, dict) else None
        if isinstance(media, dict):
            for k, v in media.items():
                out.add(str(k))
                if isinstance(v, dict):
                    out.add(str(v.get("path", "")))
    return out


@dataclass
class CleanReport:
    """What :func:`clean_media` removed (or would remove with ``dry_run``).

    Attributes:
        media: unused media files; media_bytes: their size.
        caches: peak caches of media that is gone; cache_bytes: their size.
    """

    media: list[Path] = field(default_factory=list)
    media_bytes: int = 0
    caches: list[Path] = field(default_factory=list)
    cache_bytes: int = 0


def unused_media(project: Project, bundle: str | Path, undo_stack: Any = None) -> CleanReport:
    """Media files and peak caches of ``bundle`` that nothing can bring back (see the module
    docstring): not in ``project``, not in any autosave, not held by ``undo_stack``'s
    history. Only regular files named like media (``media/*.wav``, ``cache/peaks/*.npz``)
    are listed; temp files are :func:`studio.io.project_io.sweep_temp_files`'s business.
    """
    b = Path(bundle)
    keep = _strings([project] + (list(undo_stack.commands()) if undo_stack is not None else []))
    keep |= _autosave_media(b)
    report = CleanReport()
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
            if p.stem in keep or f"media/{p.name}" in keep:
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


def clean_media(project: Project, bundle: str | Path, undo_stack: Any = None, *,
                dry_run: bool = False) -> CleanReport:
    """Remove what :func:`unused_media` lists (unless ``dry_run``). Call it only while
    holding the project's writer lock. Files that can't be removed are left out of the
    report.

    Returns:
        The :class:`CleanReport` of what was removed.
    """
    report = unused_media(project, bundle, undo_stack)
    if dry_run:
        return report
    done = CleanReport()
    for p in report.media:
        try:
            size = p.lstat().st_size
            p.unlink()
        except OSError:
            continue
        done.media.append(p)
        done.media_bytes += size
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

        fsync_dir(Path(bundle) / "media")
    return done


def human_bytes(n: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


__all__ = ["quick_check", "verify_media", "unused_media", "clean_media", "CleanReport", "human_bytes"]
