"""An open project: its bundle folder, the model, the media pool and the undo stack.

Both the CLI and the UI work through a :class:`Session`, so that a script does
exactly what the app does.
"""
from __future__ import annotations

from pathlib import Path

from studio.io import project_io
from studio.model.commands import UndoStack
from studio.errors import ProjectError
from studio.model.project import Project


class Session:
    """A project opened from (or created as) a ``.seedproj`` bundle.

    Attributes:
        bundle: the bundle folder.
        project: the live model; change it only through ``undo_stack.push(command)``.
        pool: the bundle's :class:`~studio.media.pool.MediaPool`.
        undo_stack: the edit history.
        crashed: True when the previous session on this bundle ended without closing.
    """

    def __init__(self, bundle: Path, project: Project, *, crashed: bool = False):
        from studio.media.pool import MediaPool

        self.bundle = Path(bundle)
        self.project = project
        self.pool = MediaPool(self.bundle / "media", project.sample_rate)
        self.undo_stack = UndoStack(project)
        self.crashed = crashed

    # -- construction -------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, sample_rate: int = 44100, name: str | None = None,
               bpm: float = 120.0, numerator: int = 4, denominator: int = 4) -> "Session":
        """Create a new empty bundle at ``path`` (``.seedproj`` added if missing) and save it.

        Raises:
            ProjectError: the folder exists and already holds a project, or can't be written.
            ValueError: sample rate outside 8000..192000 Hz.
        """
        from studio.model.timebase import TempoMap

        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample rate {sample_rate} Hz outside 8000..192000")
        bundle = project_io.bundle_path(path)
        if (bundle / project_io.PROJECT_FILE).exists():
            raise ProjectError(bundle, "already holds a project; open it instead")
        project = Project(name=name or bundle.stem, sample_rate=int(sample_rate),
                          tempo_map=TempoMap.constant(bpm, numerator, denominator))
        project_io.init_bundle(bundle)
        project_io.save_project(project, bundle)
        session = cls(bundle, project)
        project_io.acquire_lock(bundle)
        return session

    @classmethod
    def open(cls, path: str | Path, *, recover: bool = False) -> "Session":
        """Open a bundle. With ``recover=True`` load the newest valid autosave that is
        newer than the last save instead (the project is then dirty).

        Raises:
            ProjectError: see :func:`studio.io.project_io.load_project`.
        """
        bundle = Path(path)
        if not bundle.exists() and bundle.suffix != project_io.BUNDLE_SUFFIX:
            bundle = project_io.bundle_path(bundle)
        project = project_io.load_project(bundle)
        recovered = None
        if recover:
            recovered = project_io.recovery_candidate(bundle)
            if recovered is not None:
                project = project_io.load_autosave(bundle, recovered)
        crashed = project_io.acquire_lock(bundle)
        session = cls(bundle, project, crashed=crashed)
        if recovered is not None:
            session.undo_stack._clean = None  # recovered state is not the saved one
        return session

    # -- persistence ---------------------------------------------------------
    def save(self) -> Path:
        """Save ``project.json`` atomically, mark the undo stack saved, drop autosaves."""
        path = project_io.save_project(self.project, self.bundle)
        self.undo_stack.mark_saved()
        project_io.discard_autosaves(self.bundle)
        return path

    def autosave(self) -> Path | None:
        """Write an autosave when there are unsaved changes. Returns its path or None."""
        if not self.undo_stack.is_dirty:
            return None
        return project_io.autosave(self.project, self.bundle)

    def recovery_candidate(self) -> Path | None:
        """See :func:`studio.io.project_io.recovery_candidate`."""
        return project_io.recovery_candidate(self.bundle)

    def close(self) -> None:
        """Release the session lock (unsaved changes stay in the autosaves)."""
        project_io.release_lock(self.bundle)

    @property
    def is_dirty(self) -> bool:
        return self.undo_stack.is_dirty
