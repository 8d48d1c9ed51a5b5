"""An open project: its bundle folder, the model, the media pool and the undo stack.

Both the CLI and the UI work through a :class:`Session`, so that a script does
exactly what the app does.

A session opened for writing (the default) holds the project's writer lock
(:mod:`studio.io.lock`) until :meth:`Session.close`, and on opening removes the temp
files that interrupted writes left in the bundle (:func:`studio.io.project_io.sweep_temp_files`).
A read-only session (``readonly=True``: ``info``, ``render``, ``export``, ``verify``, the
screenshot) takes no lock and writes nothing.
"""
from __future__ import annotations

import shutil
import weakref
from pathlib import Path

from studio.io import project_io
from studio.model.commands import UndoStack
from studio.errors import DiskFull, ProjectError
from studio.model.project import Project


class Session:
    """A project opened from (or created as) a ``.seedproj`` bundle.

    Attributes:
        bundle: the bundle folder.
        project: the live model; change it only through ``undo_stack.push(command)``.
        pool: the bundle's :class:`~studio.media.pool.MediaPool`.
        undo_stack: the edit history.
        crashed: True when the previous session on this bundle ended without closing.
        readonly: True for a session that may not save (no writer lock held).
        swept: ``(files, bytes)`` of leftover temp files removed on opening.
        media_problems: what the cheap media check on opening found (missing files,
            files changed since import), one line per file; see
            :func:`studio.media.integrity.quick_check`.
    """

    def __init__(self, bundle: Path, project: Project, *, crashed: bool = False, lock=None,
                 readonly: bool = False):
        from studio.media.pool import MediaPool

        self.bundle = Path(bundle)
        self.project = project
        self.pool = MediaPool(self.bundle / "media", project.sample_rate)
        self.undo_stack = UndoStack(project)
        self.crashed = crashed
        self.readonly = readonly
        self._lock = lock
        if lock is not None:  # a session dropped without close() gives its lock back too
            weakref.finalize(self, lock.release)
        self.swept: tuple[int, int] = (0, 0)
        self.media_problems: list[str] = []

    # -- construction -------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, sample_rate: int = 44100, name: str | None = None,
               bpm: float = 120.0, numerator: int = 4, denominator: int = 4) -> "Session":
        """Create a new empty bundle at ``path`` (``.seedproj`` added if missing), save it and
        hold its writer lock.

        Args:
            sample_rate: Hz, 8000..192000. bpm: 1..1000. numerator/denominator: the meter.

        Raises:
            ProjectError: the folder exists and already holds a project, or can't be written.
            DiskFull: the disk is full (nothing is left behind).
            ValueError: sample rate, tempo or meter out of range.
        """
        from studio.io import lock as writer_lock
        from studio.model.timebase import TempoMap

        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample rate {sample_rate} Hz outside 8000..192000")
        bundle = project_io.bundle_path(path)
        if (bundle / project_io.PROJECT_FILE).exists():
            raise ProjectError(bundle, "already holds a project; open it instead")
        project = Project(name=name or bundle.stem, sample_rate=int(sample_rate),
                          tempo_map=TempoMap.constant(bpm, numerator, denominator))
        existed = bundle.exists()
        lock = None
        try:
            project_io.init_bundle(bundle)
            lock = writer_lock.acquire(bundle)
            if (bundle / project_io.PROJECT_FILE).exists():
                raise ProjectError(bundle, "already holds a project; open it instead")
            project_io.save_project(project, bundle)
        except BaseException as exc:
            if lock is not None:
                lock.release()
            if not existed and not (bundle / project_io.PROJECT_FILE).exists():
                shutil.rmtree(bundle, ignore_errors=True)  # only what this call made
            if isinstance(exc, DiskFull):
                raise DiskFull(exc.path, f"no project was created at '{bundle}'") from None
            raise
        return cls(bundle, project, lock=lock)

    @classmethod
    def open(cls, path: str | Path, *, recover: bool = False, readonly: bool = False,
             wait: float | None | str = "default") -> "Session":
        """Open a bundle. With ``recover=True`` load the newest valid autosave that is
        newer than the last save instead (the project is then dirty).

        Args:
            readonly: take no lock and write nothing (saving is then refused).
            wait: seconds to wait for another writer (0 = refuse at once, None = no limit,
                ``"default"`` = :func:`studio.io.lock.default_wait`).

        Raises:
            ProjectError: see :func:`studio.io.project_io.load_project`.
            ProjectLocked: another process has the project open for writing (names it).
            DiskFull: the lock file can't be created (the project is unchanged).
        """
        from studio.io import lock as writer_lock
        from studio.media.integrity import quick_check

        bundle = Path(path)
        if not bundle.exists() and bundle.suffix != project_io.BUNDLE_SUFFIX:
            bundle = project_io.bundle_path(bundle)
        lock = None
        swept = (0, 0)
        if readonly:
            project = project_io.load_project(bundle)
        else:
            # A folder that holds no project gets no lock file; the project itself is read
            # under the lock, so that it is what the last writer saved, not what it was
            # while another writer was still at work.
            project_io.check_project_file(bundle)
            lock = writer_lock.acquire(bundle, wait)
            try:
                project = project_io.load_project(bundle)
                swept = project_io.sweep_temp_files(bundle)
            except BaseException:
                lock.release()
                raise
        recovered = None
        if recover:
            recovered = project_io.recovery_candidate(bundle)
            if recovered is not None:
                project = project_io.load_autosave(bundle, recovered)
        session = cls(bundle, project, crashed=bool(lock and lock.crashed), lock=lock, readonly=readonly)
        session.swept = swept
        session.media_problems = quick_check(project, bundle)
        if recovered is not None:
            session.undo_stack._clean = None  # recovered state is not the saved one
        return session

    # -- persistence ---------------------------------------------------------
    def _check_writable(self) -> None:
        if self.readonly:
            raise ProjectError(self.bundle, "was opened read-only; it can't be saved from here")
        if self._lock is None or not self._lock.held:
            raise ProjectError(self.bundle, "is closed; open it again to save")

    def save(self) -> Path:
        """Save ``project.json`` atomically, mark the undo stack saved, drop autosaves.

        Raises:
            ProjectError: read-only or closed session, or the file can't be written.
            DiskFull: the disk is full; the previous save is intact.
        """
        self._check_writable()
        path = project_io.save_project(self.project, self.bundle)
        self.undo_stack.mark_saved()
        project_io.discard_autosaves(self.bundle)
        return path

    def save_as(self, path: str | Path) -> "Session":
        """Save the project as a new bundle at ``path`` and return the session on it (this
        session is closed; its bundle stays as it was last saved).

        The new bundle gets every media file of this one (hard links where the disk
        allows, else copies: media files are immutable and content-addressed), so undo
        and redo keep working; the peak caches are linked or copied too. The undo stack
        moves to the new session and is marked saved there. The project's name becomes
        the new bundle's name (an undoable step, pushed before the save).

        Raises:
            ProjectError: ``path`` is this bundle or already holds a project, the session is
                read-only or closed, or the folder can't be written (nothing is left there).
            ProjectLocked: another program holds a lock on ``path``.
            DiskFull: the disk filled up (the partial new bundle is removed).
        """
        import os

        from studio.io import lock as writer_lock
        from studio.model.edits import SetProjectProperty

        self._check_writable()
        target = project_io.bundle_path(path)
        if target.resolve() == self.bundle.resolve():
            return self
        if (target / project_io.PROJECT_FILE).exists():
            raise ProjectError(target, "already holds a project; choose another name or folder")
        existed = target.exists()
        lock = None
        try:
            project_io.init_bundle(target)
            lock = writer_lock.acquire(target, 0)
            for sub in ("media", os.path.join("cache", "peaks")):
                src, dst = self.bundle / sub, target / sub
                if not src.is_dir():
                    continue
                dst.mkdir(parents=True, exist_ok=True)
                for f in src.iterdir():
                    if not f.is_file() or f.is_symlink() or f.name.startswith("."):
                        continue
                    try:
                        os.link(f, dst / f.name)
                    except OSError:
                        shutil.copy2(f, dst / f.name)
            name = target.name[: -len(project_io.BUNDLE_SUFFIX)] if target.name.endswith(
                project_io.BUNDLE_SUFFIX) else target.name
            if name and name != self.project.name:
                self.undo_stack.push(SetProjectProperty("name", name))
            project_io.save_project(self.project, target)
        except BaseException as exc:
            if lock is not None:
                lock.release()
            if not existed:
                shutil.rmtree(target, ignore_errors=True)  # only what this call made
            if isinstance(exc, OSError):
                from engines.files import is_disk_full

                if is_disk_full(exc, target.parent):
                    raise DiskFull(target, "the project was not saved there; it is unchanged") from None
                raise ProjectError(target, f"can't be written ({exc.strerror or exc})") from None
            raise
        new = Session(target, self.project, lock=lock)
        new.undo_stack = self.undo_stack
        new.undo_stack.mark_saved()
        self.close()
        return new

    def autosave(self) -> Path | None:
        """Write an autosave when there are unsaved changes. Returns its path or None.

        Raises:
            DiskFull, ProjectError: the autosave can't be written (project.json is unchanged).
        """
        if not self.undo_stack.is_dirty or self.readonly or self._lock is None or not self._lock.held:
            return None
        return project_io.autosave(self.project, self.bundle)

    def recovery_candidate(self) -> Path | None:
        """See :func:`studio.io.project_io.recovery_candidate`."""
        return project_io.recovery_candidate(self.bundle)

    def close(self) -> None:
        """Release the writer lock (unsaved changes stay in the autosaves). Idempotent."""
        if self._lock is not None:
            self._lock.release()

    @property
    def is_dirty(self) -> bool:
        return self.undo_stack.is_dirty
