"""Typed engine errors with a plain-words message and a hint, and their trip across the process boundary."""
from __future__ import annotations

from typing import Any, ClassVar

# --------------------------------------------------------------------------- errors


class UserError(Exception):
    """Base class of every error raised on purpose, in the core or in an engine.

    ``str(error)`` is a plain-words message fit to show a musician as is; ``hint``
    says what to do (may be empty). The CLI and the app catch this one class.
    """

    hint: str = ""


class EngineError(UserError):
    """Base class of every error raised on purpose by an engine or the engine host.

    Attributes:
        message: what went wrong, in plain words (``str(error)``).
        hint: what the musician can do about it (may be empty).

    Errors cross the process boundary as ``{"type", "message", "hint"}`` dicts
    (:meth:`to_dict`, :func:`error_from_dict`).
    """

    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        """JSON form: ``{"type": class name, "message": ..., "hint": ...}``."""
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class JobCancelled(EngineError):
    """The job was cancelled by the user; nothing was added to the project."""

    default_hint = ""


class OutOfMemory(EngineError):
    """The device ran out of memory.

    The host retries such a job automatically with smaller chunks
    (``JobSpec.chunk_scale`` halved) before reporting it.
    """

    default_hint = "close other GPU programs, choose a shorter region, or run on CPU"


class EngineNotFound(EngineError):
    """No engine is registered under the requested id, or it can't be imported."""

    default_hint = "check the engine id with `seed-studio models list`, or reinstall Seed Studio"


class InvalidJob(EngineError):
    """A job spec is malformed: wrong task for the engine, bad parameters, missing input."""

    default_hint = "check the job's parameters"


class ModelNotInstalled(EngineError):
    """The engine needs model files that are not in the models folder."""

    default_hint = "download it with `seed-studio models download ID` or import it with `seed-studio models import ID FOLDER`"


class ModelDownloadError(EngineError):
    """A model download failed (offline, server error, interrupted transfer)."""

    default_hint = "check the internet connection and retry; an interrupted download resumes where it stopped"


class ChecksumMismatch(ModelDownloadError):
    """A model file's sha256 does not match its record; the bad file has been removed."""

    default_hint = "retry the download; if it fails again the source has changed, report it"


class HostCrashed(EngineError):
    """The engine host process died during a job (crash, kill, out of host memory).

    The project is untouched and the host restarts for the next job.
    """

    default_hint = "the engine host restarts for the next job; if it keeps crashing, try a shorter region or the CPU"


class HostNotResponding(HostCrashed):
    """The engine host sent nothing (no progress, no heartbeat) for longer than its hang
    timeout: it was stopped or hung. It has been killed; the project is untouched."""

    default_hint = "the engine host restarts for the next job; if it happens again, run on the CPU or restart the app"


_ERROR_TYPES: dict[str, type[EngineError]] = {
    cls.__name__: cls
    for cls in (
        EngineError,
        JobCancelled,
        OutOfMemory,
        EngineNotFound,
        InvalidJob,
        ModelNotInstalled,
        ModelDownloadError,
        ChecksumMismatch,
        HostCrashed,
        HostNotResponding,
    )
}


def register_error_type(cls: type[EngineError]) -> type[EngineError]:
    """Make an engine-specific :class:`EngineError` subclass survive the process boundary.

    Usable as a class decorator; returns ``cls``.
    """
    _ERROR_TYPES[cls.__name__] = cls
    return cls


def error_from_dict(d: dict[str, Any]) -> EngineError:
    """Rebuild an error made by :meth:`EngineError.to_dict` (unknown types -> EngineError)."""
    cls = _ERROR_TYPES.get(d.get("type", ""), EngineError)
    return cls(d.get("message", "engine error"), d.get("hint"))


def is_out_of_memory(exc: BaseException) -> bool:
    """True for :class:`OutOfMemory` and for torch's CUDA/MPS out-of-memory errors.

    Detects ``torch.cuda.OutOfMemoryError`` by class name so that this module never
    imports torch.
    """
    if isinstance(exc, OutOfMemory):
        return True
    name = type(exc).__name__
    if name == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


