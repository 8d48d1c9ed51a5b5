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
