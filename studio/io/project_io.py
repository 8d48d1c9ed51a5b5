"""The project bundle on disk: ``NAME.seedproj/``.

Layout::

    NAME.seedproj/
        project.json          the model (schema-versioned JSON, no code, no pickle)
        media/                immutable content-addressed audio (studio.media.pool)
        cache/peaks/          peak summaries (rebuildable)
        autosave/             autosave-*.json, newest 5 kept
        .writer.lock          the OS lock of the one writer (studio.io.lock)
        .session.lock         who holds it: pid, host, since when (JSON)

Saving writes ``project.json`` atomically (temp file, fsync, rename), so a crash at
any moment leaves the old or the new state; a full disk raises
:class:`~studio.errors.DiskFull` and leaves the old file. Loading never runs code from
the bundle (JSON only), never reads outside it (``project.json`` must be a regular
file, ``media/`` a real folder inside the bundle, every media path inside it), never
hangs (FIFOs and devices are refused) and is bounded (size, nesting depth). The whole
document is validated against ``project.schema.json`` (JSON Schema 2020-12) before the
model is built, then against the limits of :mod:`studio.limits` (24 h). Older schema
versions are migrated in memory; a newer schema version is refused with a clear message.

Temp files of interrupted writes are named after their destination
(``.project.json.tmp-*``, ``media/.import-*.wav.tmp``...); :func:`sweep_temp_files`
removes exactly those, and only while the caller holds the writer lock.
"""
from __future__ import annotations

import functools
import json
import math
import os
import stat
import time
from pathlib import Path
from typing import Any, Callable

from engines.files import atomic_write_text
from studio.errors import DiskFull, ProjectError
from studio.limits import MAX_JSON_DEPTH, MAX_PROJECT_JSON_BYTES, MAX_TEXT_CHARS, length_problem
from studio.model.project import Project
from studio.model.timebase import TempoMap

SCHEMA_VERSION = 1
BUNDLE_SUFFIX = ".seedproj"
PROJECT_FILE = "project.json"
AUTOSAVE_KEEP = 5
SCHEMA_FILE = Path(__file__).with_name("project.schema.json")
"""The JSON Schema every ``project.json`` (after migration) must satisfy."""
BUNDLE_FOLDERS = ("media", "cache", "autosave")
"""Folders of a bundle; each must be a real folder inside it (not a link elsewhere)."""


# ---------------------------------------------------------------- migrations

def _v0_to_v1(d: dict) -> dict:
    """Schema 0 (pre-release) kept ``bpm`` and ``time_signature: [num, den]`` at the top level.

    Raises:
        ValueError: ``bpm`` is not a number or ``time_signature`` is not two integers.
    """
    d = dict(d)
    bpm = d.pop("bpm", 120.0)
    sig = d.pop("time_signature", [4, 4])
    if isinstance(bpm, bool) or not isinstance(bpm, (int, float)):
        raise ValueError(f"schema-0 'bpm' {str(bpm)[:40]!r} is not a number")
    if (not isinstance(sig, list) or len(sig) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in sig)):
        raise ValueError(f"schema-0 'time_signature' {str(sig)[:40]!r} is not [numerator, denominator]")
    d["tempo_map"] = TempoMap.constant(float(bpm), sig[0], sig[1]).to_dict()
    return d


MIGRATIONS: dict[int, Callable[[dict], dict]] = {0: _v0_to_v1}
"""``MIGRATIONS[n]`` turns a schema-``n`` dict into a schema-``n+1`` dict."""


def migrate(data: dict, path: Path) -> dict:
    """Bring a parsed ``project.json`` to :data:`SCHEMA_VERSION`.

    Raises:
        ProjectError: the file is from a newer Seed Studio, or has no usable version.
    """
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version < 0:
        raise ProjectError(path, f"schema_version {version!r} is not a valid version number")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            path, f"it was saved by a newer Seed Studio (project schema {version}); this version reads "
                  f"schema {SCHEMA_VERSION} and older. Update Seed Studio to open it.")
    while version < SCHEMA_VERSION:
        try:
            data = MIGRATIONS[version](data)
        except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise ProjectError(path, f"is damaged or malformed: can't bring schema {version} up to date ({exc})") from None
        version += 1
        data["schema_version"] = version
    return data


# ---------------------------------------------------------------- save / load

def project_to_json(project: Project) -> str:
    """The ``project.json`` text of ``project`` (schema :data:`SCHEMA_VERSION`)."""
    from studio import __version__

    data = {"schema_version": SCHEMA_VERSION, "app": f"seed-studio {__version__}", **project.to_dict()}
    return json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False)


def bundle_path(path: str | Path) -> Path:
    """Normalise a bundle path: add the ``.seedproj`` suffix if it is missing."""
    p = Path(path)
    return p if p.suffix == BUNDLE_SUFFIX else p.with_name(p.name + BUNDLE_SUFFIX)


def init_bundle(bundle: str | Path) -> Path:
    """Create the bundle folders (idempotent). Returns the bundle path. Raises ProjectError."""
    b = Path(bundle)
    if b.exists() and not b.is_dir():
        raise ProjectError(b, "exists and is not a folder")
    try:
        for sub in ("media", "cache/peaks", "autosave"):
            (b / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from engines.files import is_disk_full

        if is_disk_full(exc):
            raise DiskFull(b / sub, "nothing was changed") from None
        raise ProjectError(b, f"can't create the project folder ({exc.strerror or exc})") from exc
    return b


def save_project(project: Project, bundle: str | Path) -> Path:
    """Write ``project.json`` into ``bundle`` atomically. Returns the file path.

    Raises:
        DiskFull: the disk is full (the message names the file); the old ``project.json``
            is left intact.
        ProjectError: the folder can't be written (permissions...), or the project holds
            a value that can't be saved; the old ``project.json`` is left intact.
    """
    b = init_bundle(bundle)
    path = b / PROJECT_FILE
    try:
        text = project_to_json(project)
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise ProjectError(path, f"the project holds a value that can't be saved ({exc})") from exc
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise _write_error(path, exc, "the project is unchanged (the previous save is intact)") from None
    return path


def _write_error(path: Path, exc: OSError, kept: str) -> ProjectError | DiskFull:
    from engines.files import is_disk_full

    if is_disk_full(exc, path.parent):
        return DiskFull(path, kept)
    return ProjectError(path, f"could not be written ({exc.strerror or exc}); {kept}")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a project file")


def _check_regular_file(path: Path, limit: int, what: str) -> None:
    """Refuse ``path`` unless, by ``os.lstat``, it is a regular file (no link, pipe, device
    or folder) of at most ``limit`` bytes.

    Raises:
        ProjectError: missing, not a regular file, too large, or unreadable.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ProjectError(path, "not found: this folder is not a Seed Studio project") from None
    except OSError as exc:
        raise ProjectError(path, f"can't be read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ProjectError(path, f"is a symbolic link; a {what} must be a regular file inside the project folder")
    if not stat.S_ISREG(st.st_mode):
        raise ProjectError(path, "is not a regular file (a pipe, device or folder); refusing to read it")
    if st.st_size > limit:
        raise ProjectError(path, f"is {st.st_size} bytes, larger than the {limit // (1024 * 1024)} MiB limit "
                                 f"of a {what}")


def read_regular_file(path: Path, limit: int, what: str = "project file") -> bytes:
    """The bytes of ``path``, refusing anything but a regular file of at most ``limit`` bytes.

    A symbolic link, FIFO, device or folder is refused without reading (so ``/dev/zero``
    or a pipe never hangs or fills memory); the file is opened without following links
    and without blocking, and checked again on the open handle.

    Raises:
        ProjectError: missing, not a regular file, too large, or unreadable.
    """
    _check_regular_file(path, limit, what)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ProjectError(path, f"can't be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProjectError(path, "is not a regular file; refusing to read it")
        chunks, total = [], 0
        while True:
            block = os.read(fd, min(1 << 20, limit + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:
                raise ProjectError(path, f"is larger than the {limit // (1024 * 1024)} MiB limit of a {what}")
        return b"".join(chunks)
    except OSError as exc:
        raise ProjectError(path, f"can't be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _where(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the top level"


def check_values(data: Any, path: Path) -> None:
    """Refuse what JSON Schema can't see: nesting deeper than :data:`~studio.limits.MAX_JSON_DEPTH`,
    numbers that are not finite (``1e400`` parses as infinity), text that is not valid
    Unicode (a lone surrogate such as ``"\\ud800"``), NUL characters and over-long text.
    Iterative, so any depth is safe.

    Raises:
        ProjectError: naming the file and where in the document the value is.
    """
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        value, where = stack.pop()
        if len(where) > MAX_JSON_DEPTH:
            raise ProjectError(path, f"is nested deeper than {MAX_JSON_DEPTH} levels (at {_where(where[:8])}...); "
                                     "refusing to load")
        if isinstance(value, dict):
            for k, v in value.items():
                _check_text(k, where, path)
                stack.append((v, where + [k]))
        elif isinstance(value, list):
            stack.extend((v, where + [i]) for i, v in enumerate(value))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ProjectError(path, f"holds a number that is not finite at {_where(where)}; refusing to load")
        elif isinstance(value, str):
            _check_text(value, where, path)


def _check_text(text: str, where: list[Any], path: Path) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise ProjectError(path, f"holds text of {len(text)} characters at {_where(where)} "
                                 f"(the limit is {MAX_TEXT_CHARS})")
    if "\x00" in text:
        raise ProjectError(path, f"holds a NUL character at {_where(where)}; refusing to load")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProjectError(path, f"holds text that is not valid Unicode (a lone surrogate) at "
                                 f"{_where(where)}; refusing to load") from None


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_document(data: dict, path: Path) -> None:
    """Validate a (migrated) project document against :data:`SCHEMA_FILE`.

    Raises:
        ProjectError: ``"is damaged or malformed: <where>: <what>"`` for the most
            relevant violation.
    """
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        what = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        raise ProjectError(path, f"is damaged or malformed: {_where(list(error.absolute_path))}: {what}")


def parse_project_file(path: Path, bundle: Path) -> Project:
    """Parse and validate one project JSON file of ``bundle`` (``project.json`` or an autosave).

    Steps: read (regular file, size limit) -> UTF-8 -> JSON (no NaN/Infinity, bounded
    nesting) -> values (finite numbers, valid text) -> schema version and migration ->
    JSON Schema -> model -> 24 h limit -> media paths inside ``bundle/media``.

    Raises:
        ProjectError: naming the file and the problem; nothing on disk is changed.
    """
    raw = read_regular_file(path, MAX_PROJECT_JSON_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise ProjectError(path, f"is nested deeper than {MAX_JSON_DEPTH} levels; refusing to load") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProjectError(path, f"is not valid project JSON ({str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise ProjectError(path, "is not a project (top level is not an object)")
    check_values(data, path)
    data = migrate(data, path)
    _check_media_path_text(data, path)
    validate_document(data, path)
    try:
        project = Project.from_dict(data)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise ProjectError(path, f"is damaged or malformed ({type(exc).__name__}: {str(exc)[:200]})") from None
    problem = length_problem(project)
    if problem:
        raise ProjectError(path, f"{problem}; refusing to load")
    check_media_paths(project, bundle, path)
    return project


def _check_media_path_text(data: dict, path: Path) -> None:
    """The media paths' own message (before the schema's generic one)."""
    media = data.get("media")
    if not isinstance(media, dict):
        return
    for item in media.values():
        rel = item.get("path") if isinstance(item, dict) else None
        if not isinstance(rel, str):
            continue
        pure = Path(rel)
        if pure.is_absolute() or pure.drive or ".." in pure.parts or rel.startswith(("/", "\\")):
            raise ProjectError(path, f"media path '{rel[:200]}' points outside the project folder; refusing to load")


def check_bundle_layout(bundle: Path, path: Path | None = None) -> None:
    """Refuse a bundle whose ``media``, ``cache`` or ``autosave`` is a link or lies outside it.

    Raises:
        ProjectError: naming the folder.
    """
    root = bundle.resolve()
    for name in BUNDLE_FOLDERS:
        sub = bundle / name
        if sub.is_symlink():
            raise ProjectError(path or sub, f"'{name}/' is a link to '{os.readlink(sub)}'; a project's {name} "
                                            "folder must be a real folder inside it; refusing to load")
        if sub.exists() and (not sub.is_dir() or sub.resolve().parent != root):
            raise ProjectError(path or sub, f"'{name}/' is not a folder inside the project; refusing to load")


def check_media_paths(project: Project, bundle: Path, path: Path) -> None:
    """Refuse any media path that is absolute or resolves outside ``bundle/media``, and a
    ``media/`` folder that is a link.

    Raises:
        ProjectError: naming the offending media path.
    """
    check_bundle_layout(bundle, path)
    media_root = (bundle / "media").resolve()
    for item in project.media.values():
        rel = Path(item.path)
        if rel.is_absolute() or rel.drive or ".." in rel.parts:
            raise ProjectError(path, f"media path '{item.path}' points outside the project folder; refusing to load")
        resolved = (bundle / rel).resolve()
        if not resolved.is_relative_to(media_root):
            raise ProjectError(path, f"media path '{item.path}' points outside the project folder; refusing to load")


def check_project_file(bundle: str | Path) -> Path:
    """Cheap check, before locking or reading: ``bundle`` is a folder whose ``project.json``
    is a regular file within the size limit. Returns the file's path.

    Raises:
        ProjectError: naming the folder or the file.
    """
    b = Path(bundle)
    if not b.is_dir():
        raise ProjectError(b, "is not a project folder")
    path = b / PROJECT_FILE
    _check_regular_file(path, MAX_PROJECT_JSON_BYTES, "project file")
    return path


def load_project(bundle: str | Path) -> Project:
    """Load ``bundle/project.json``.

    Raises:
        ProjectError: missing, unreadable, malformed, from a newer schema, or with a
            media path outside the bundle. Nothing is modified on disk.
    """
    b = Path(bundle)
    if not b.is_dir():
        raise ProjectError(b, "is not a project folder")
    return parse_project_file(b / PROJECT_FILE, b)


def missing_media(project: Project, bundle: str | Path) -> list[str]:
    """Ids of media items whose file is missing from the bundle."""
    b = Path(bundle)
    return [i.id for i in project.media.values() if not (b / i.path).is_file()]


# ---------------------------------------------------------------- autosave and recovery

def autosave(project: Project, bundle: str | Path) -> Path:
    """Write an autosave copy into ``bundle/autosave`` (atomic); keep the newest
    :data:`AUTOSAVE_KEEP`. ``project.json`` is not touched. Returns the new file."""
    folder = init_bundle(bundle) / "autosave"
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    path = folder / f"autosave-{stamp}.json"
    try:
        atomic_write_text(path, project_to_json(project))
    except OSError as exc:
        raise _write_error(path, exc, "project.json and the earlier autosaves are unchanged") from None
    for old in sorted(folder.glob("autosave-*.json"))[:-AUTOSAVE_KEEP]:
        old.unlink(missing_ok=True)
    return path


def recovery_candidate(bundle: str | Path) -> Path | None:
    """The newest autosave that is newer than ``project.json`` and loads cleanly, or None.

    Offer it to the musician at start (the UI) or with ``seed-studio open --recover``.
    """
    b = Path(bundle)
    main = b / PROJECT_FILE
    try:
        saved_at = main.stat().st_mtime_ns if main.exists() else 0
        candidates = sorted((b / "autosave").glob("autosave-*.json"), reverse=True)
    except OSError:
        return None
    for cand in candidates:
        try:
            if cand.lstat().st_mtime_ns <= saved_at:
                break
        except OSError:
            continue
        try:
            parse_project_file(cand, b)
        except ProjectError:
            continue
        return cand
    return None


def load_autosave(bundle: str | Path, path: str | Path) -> Project:
    """Load an autosave file of ``bundle`` (same checks as :func:`load_project`)."""
    b = Path(bundle)
    p = Path(path)
    if p.resolve().parent != (b / "autosave").resolve():
        raise ProjectError(p, "is not an autosave of this project")
    return parse_project_file(p, b)


def discard_autosaves(bundle: str | Path) -> None:
    """Remove every autosave (after a save or after the musician declines recovery)."""
    for p in (Path(bundle) / "autosave").glob("autosave-*.json"):
        p.unlink(missing_ok=True)


# ---------------------------------------------------------------- temp files

def temp_file_patterns(bundle: str | Path) -> list[tuple[Path, str]]:
    """``(folder, glob)`` of every temp file Seed Studio's own writes can leave in a bundle
    after a crash: atomic writes (``.<name>.tmp-*``) of ``project.json``, the lock record,
    autosaves and peak caches, and the media pool's ``.import-*.wav.tmp``."""
    b = Path(bundle)
    return [
        (b, f".{PROJECT_FILE}.tmp-*"),
        (b, ".session.lock.tmp-*"),
        (b / "autosave", ".autosave-*.json.tmp-*"),
        (b / "media", ".import-*.wav.tmp"),
        (b / "media", ".*.wav.tmp-*"),
        (b / "cache" / "peaks", ".*.npz.tmp-*"),
    ]


def find_temp_files(bundle: str | Path) -> list[Path]:
    """The leftover temp files of :func:`temp_file_patterns` (regular files only)."""
    out: list[Path] = []
    for folder, pattern in temp_file_patterns(bundle):
        if folder.is_dir() and not folder.is_symlink():
            for p in folder.glob(pattern):
                try:
                    if stat.S_ISREG(p.lstat().st_mode):
                        out.append(p)
                except OSError:
                    continue
    return sorted(set(out))


def sweep_temp_files(bundle: str | Path) -> tuple[int, int]:
    """Remove the leftover temp files of interrupted writes (:func:`find_temp_files`).

    Call it only while holding the project's writer lock (:mod:`studio.io.lock`): then no
    live writer can own them. Files that can't be removed are skipped.

    Returns:
        ``(files removed, bytes freed)``.
    """
    n = freed = 0
    for p in find_temp_files(bundle):
        try:
            size = p.lstat().st_size
            p.unlink()
        except OSError:
            continue
        n += 1
        freed += size
    return n, freed
