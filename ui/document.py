"""The open document: a :class:`studio.io.session.Session` seen from Qt.

One :class:`Document` per window (no singletons). Every edit is a command from
:mod:`studio.model.edits` pushed through :meth:`Document.push`; the document turns the undo
stack's notifications into the Qt signal :attr:`Document.changed`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal


class Document(QObject):
    """A project open in the app.

    Attributes:
        session: the :class:`~studio.io.session.Session` (bundle, project, pool, undo stack).

    Signals:
        changed(): the project changed (edit, undo, redo, load).
        dirty_changed(bool): the unsaved-changes flag flipped.
    """

    changed = pyqtSignal()
    dirty_changed = pyqtSignal(bool)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.autosave_error = ""
        self._dirty = bool(session.undo_stack.is_dirty)
        session.undo_stack.add_listener(self._on_stack)

    # -- convenience views ---------------------------------------------------------
    @property
    def project(self):
        """The live project (read it; change it only by commands)."""
        return self.session.project

    @property
    def pool(self):
        """The bundle's media pool."""
        return self.session.pool

    @property
    def undo_stack(self):
        """The session's undo stack."""
        return self.session.undo_stack

    @property
    def path(self) -> Path:
        """The bundle folder."""
        return self.session.bundle

    # -- loading ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, recover: bool = False, readonly: bool = False, parent=None) -> "Document":
        """Open a ``.seedproj`` bundle; the document holds the project's writer lock until
        :meth:`close` (``readonly``: no lock, no saving; the screenshot uses it).

        Raises:
            ProjectError: the project can't be loaded; ProjectLocked: another program has it
            open for writing (the message names it); DiskFull.
        """
        from studio.io.session import Session

        return cls(Session.open(path, recover=recover, readonly=readonly), parent)

    @classmethod
    def new(cls, path: str | Path, sample_rate: int = 44100, bpm: float = 120.0, parent=None) -> "Document":
        """Create an empty bundle at ``path`` and open it. Raises ProjectError."""
        from studio.io.session import Session

        return cls(Session.create(path, sample_rate, bpm=bpm), parent)

    # -- editing ---------------------------------------------------------------
    def push(self, command) -> Any:
        """Apply ``command`` and put it on the undo stack (raises CommandError unchanged)."""
        return self.undo_stack.push(command)

    def group(self, label: str):
        """Context manager: commands pushed inside undo as one step."""
        return self.undo_stack.group(label)

    def undo(self) -> bool:
        """Undo one step; False when there is nothing to undo."""
        return self.undo_stack.undo()

    def redo(self) -> bool:
        """Redo one step; False when there is nothing to redo."""
        return self.undo_stack.redo()

    @property
    def is_dirty(self) -> bool:
        """True when there are unsaved changes."""
        return bool(self.undo_stack.is_dirty)

    def save(self) -> Path:
        """Save atomically into the bundle. Raises ProjectError."""
        path = self.session.save()
        self._emit_dirty()
        return path

    def save_as(self, path: str | Path) -> Path:
        """Save as a new bundle at ``path`` and go on working there (the undo history comes
        along; the old bundle stays as last saved and its lock is released). Returns the
        new bundle. Raises ProjectError, ProjectLocked, DiskFull (nothing changed then)."""
        self.session = self.session.save_as(path)
        self._emit_dirty()
        self.changed.emit()
        return self.session.bundle

    def autosave(self):
        """Autosave when dirty; returns the autosave path or None. Never raises: a failure
        (a full disk...) is kept in :attr:`autosave_error` for the window to show."""
        self.autosave_error = ""
        try:
            return self.session.autosave()
        except Exception as exc:  # autosave must never interrupt the musician
            self.autosave_error = str(exc)
            return None

    def close(self) -> None:
        """Release the session lock (autosaves stay for recovery)."""
        self.session.close()

    def _on_stack(self, *args: Any) -> None:
        self.changed.emit()
        self._emit_dirty()

    def _emit_dirty(self) -> None:
        d = self.is_dirty
        if d != self._dirty:
            self._dirty = d
            self.dirty_changed.emit(d)
