"""The project bundle on disk: ``NAME.seedproj/``.

Layout::

    NAME.seedproj/
        project.json          the model (schema-versioned JSON, no code, no pickle)
        media/                immutable content-addressed audio (studio.media.pool)
        cache/peaks/          peak summaries (rebuildable)
        autosave/             autosave-*.json, newest 5 kept
        .session.lock         pid of the process that has the project open

Saving writes ``project.json`` atomically (temp file, fsync, rename), so a crash at
any moment leaves the old or the new state. Loading never runs code from the
bundle (JSON only) and never reads outside it: every media path must resolve to a
file inside ``media/``. Older schema versions are migrated in memory; a newer
schema version is refused with a clear message.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Callable

from engines.files import atomic_write_text, clean_temp_files
from studio.errors import ProjectError
from studio.model.project import Project
from studio.model.timebase import TempoMap

SCHEMA_VERSION = 1
BUNDLE_SUFFIX = ".seedproj"
PROJECT_FILE = "project.json"
AUTOSAVE_KEEP = 5
MAX_PROJECT_JSON_BYTES = 512 * 1024 * 1024


# ---------------------------------------------------------------- migrations

def _v0_to_v1(d: dict) -> dict:
    """Schema 0 (pre-release) kept ``bpm`` and ``time_signature: [num, den]`` at the top level."""
    d = dict(d)
    bpm = float(d.pop("bpm", 120.0))
    num, den = d.pop("time_signature", [4, 4])
    d["tempo_map"] = TempoMap.constant(bpm, int(num), int(den)).to_dict()
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
        data = MIGRATIONS[version](data)
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
        raise ProjectError(b, f"can't create the project folder ({exc.strerror or exc})") from exc
    return b


def save_project(project: Project, bundle: str | Path) -> Path:
    """Write ``project.json`` into ``bundle`` atomically. Returns the file path.

    Raises:
        ProjectError: the folder can't be written (disk full, permissions); the old
            ``project.json`` is left intact.
    """
    b = init_bundle(bundle)
    path = b / PROJECT_FILE
    try:
        text = project_to_json(project)
    except ValueError as exc:
        raise ProjectError(path, f"the project holds a value that can't be saved ({exc})") from exc
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise ProjectError(path, f"could not save ({exc.strerror or exc}); the previous save is intact") from exc
    return path


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a project file")


def parse_project_file(path: Path, bundle: Path) -> Project:
    """Parse and validate one project JSON file of ``bundle``. Raises ProjectError."""
    try:
        size = path.stat().st_size
        if size > MAX_PROJECT_JSON_BYTES:
            raise ProjectError(path, f"is {size} bytes, larger than any real project")
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ProjectError(path, "not found: this folder is not a Seed Studio project") from exc
    except OSError as exc:
        raise ProjectError(path, f"can't be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProjectError(path, f"is not valid project JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ProjectError(path, "is not a project (top level is not an object)")
    data = migrate(data, path)
    try:
        project = Project.from_dict(data)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ProjectError(path, f"is damaged or malformed ({type(exc).__name__}: {exc})") from exc
    check_media_paths(project, bundle, path)
    return project


def check_media_paths(project: Project, bundle: Path, path: Path) -> None:
    """Refuse any media path that is absolute or resolves outside ``bundle/media``.

    Raises:
        ProjectError: naming the offending media path.
    """
    media_root = (bundle / "media").resolve()
    for item in project.media.values():
        rel = Path(item.path)
        if rel.is_absolute() or rel.drive or ".." in rel.parts:
            raise ProjectError(path, f"media path '{item.path}' points outside the project folder; refusing to load")
        resolved = (bundle / rel).resolve()
        if not resolved.is_relative_to(media_root):
            raise ProjectError(path, f"media path '{item.path}' points outside the project folder; refusing to load")


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
    atomic_write_text(path, project_to_json(project))
    for old in sorted(folder.glob("autosave-*.json"))[:-AUTOSAVE_KEEP]:
        old.unlink(missing_ok=True)
    clean_temp_files(folder)
    return path


def recovery_candidate(bundle: str | Path) -> Path | None:
    """The newest autosave that is newer than ``project.json`` and loads cleanly, or None.

    Offer it to the musician at start (the UI) or with ``seed-studio open --recover``.
    """
    b = Path(bundle)
    main = b / PROJECT_FILE
    saved_at = main.stat().st_mtime_ns if main.exists() else 0
    for cand in sorted((b / "autosave").glob("autosave-*.json"), reverse=True):
        if cand.stat().st_mtime_ns <= saved_at:
            break
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


# ---------------------------------------------------------------- session lock

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def acquire_lock(bundle: str | Path) -> bool:
    """Mark the bundle as open by this process. Returns True when a previous session
    on this host ended without releasing it (a crash): then offer recovery."""
    lock = Path(bundle) / ".session.lock"
    crashed = False
    try:
        info = json.loads(lock.read_text())
        if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
            crashed = True
    except (OSError, ValueError, TypeError):
        pass
    atomic_write_text(lock, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
    return crashed


def release_lock(bundle: str | Path) -> None:
    """Remove the session lock (a clean close)."""
    (Path(bundle) / ".session.lock").unlink(missing_ok=True)
