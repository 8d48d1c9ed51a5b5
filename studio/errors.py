"""Exception hierarchy of the Qt-free core.

Every error that reaches a musician names the file (where there is one) and the
problem in plain words, so that the CLI and the UI can show ``str(error)`` as is.
"""
from __future__ import annotations

from pathlib import Path

from engines.base.errors import UserError


class StudioError(UserError):
    """Base class of every error raised on purpose by :mod:`studio`."""


class FileProblem(StudioError):
    """A problem with one file.

    Attributes:
        path: the offending file.
        problem: a short plain-words description, e.g. ``"file is truncated"``.
    """

    kind = "file"

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.kind} '{self.path}': {problem}")


class AudioFileError(FileProblem):
    """An audio file that can't be read or imported (corrupt, empty, NaN, too many channels...)."""

    kind = "audio file"


class MidiFileError(FileProblem):
    """A MIDI file that can't be parsed or holds no usable events."""

    kind = "MIDI file"


class ProjectError(FileProblem):
    """A project bundle or ``project.json`` that can't be loaded or saved."""

    kind = "project"


class RenderError(StudioError):
    """Rendering failed (missing media, missing SoundFont, bad plug-in parameters...)."""


class CommandError(StudioError):
    """An edit command could not be applied; the project is left unchanged."""


class DiskFull(FileProblem):
    """A write failed because the disk is full. The message names the file and says
    what was kept (``"the project is unchanged"``).

    Attributes:
        path: the file that could not be written.
        kept: what is still as it was, in plain words.
    """

    kind = "file"

    def __init__(self, path: str | Path, kept: str = "the project is unchanged"):
        self.kept = kept
        super().__init__(path, f"the disk is full, so it could not be written; {kept}")
        self.hint = "free some disk space and try again"

    def __str__(self) -> str:
        return f"the disk is full: could not write '{self.path}'; {self.kept}"


class ProjectLocked(ProjectError):
    """Another process has the project open for writing (one writer per project).

    Attributes:
        holder: what the lock file says about the holder: ``pid``, ``host``, ``since``
            (seconds since the epoch), ``program``; may be empty while the holder starts.
    """

    def __init__(self, path: str | Path, problem: str, holder: dict | None = None):
        self.holder = dict(holder or {})
        super().__init__(path, problem)


def write_failed(path: str | Path, exc: BaseException, kept: str = "the project is unchanged",
                 folder: str | Path | None = None) -> StudioError | None:
    """The plain-words error for a failed write of ``path``: :class:`DiskFull` when the
    disk is full (see :func:`engines.files.is_disk_full`), else None (re-raise ``exc``)."""
    from engines.files import is_disk_full

    if is_disk_full(exc, folder):
        return DiskFull(path, kept)
    return None
