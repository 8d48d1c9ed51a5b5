"""Undo/redo: the :class:`Command` protocol and the :class:`UndoStack`.

Modelled on Qt's QUndoStack and OpenUtau's ``UCommand``/``DocManager``, without Qt:
every edit of a live project is a small command that captures the old state it
needs to undo itself. Commands can be grouped (one undo step for a compound edit,
e.g. "import 3 stems") and consecutive commands can merge (a fader drag becomes
one step). The stack knows the saved point, so the UI and the CLI can tell
whether the project is dirty.

The stack is not thread-safe: use it from one thread (the UI thread or the CLI's
main thread). Engine results reach it only through :func:`studio.jobs.manager` helpers
that hand a command back to that thread.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from studio.errors import CommandError
from studio.model.project import Project


class Command:
    """One undoable edit.

    Subclasses implement :meth:`do` and :meth:`undo`. ``do`` must validate before it
    mutates anything and raise :class:`~studio.errors.CommandError` (or KeyError /
    ValueError, which the stack wraps) so that a failed command leaves the project
    unchanged. ``do`` is called again for redo, so it must be repeatable after ``undo``.
    """

    label: str = "Edit"

    def do(self, project: Project) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def undo(self, project: Project) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def merge(self, other: "Command") -> bool:
        """Absorb ``other`` (already done) into ``self`` and return True, or return False.

        Only called for two consecutive commands outside any group; used for drags.
        """
        return False


class MacroCommand(Command):
    """A group of commands undone and redone as one step."""

    def __init__(self, label: str, commands: list[Command] | None = None):
        self.label = label
        self.commands: list[Command] = list(commands or [])

    def do(self, project: Project) -> None:
        done: list[Command] = []
        try:
            for c in self.commands:
                c.do(project)
                done.append(c)
        except Exception:
            for c in reversed(done):
                c.undo(project)
            raise

    def undo(self, project: Project) -> None:
        for c in reversed(self.commands):
            c.undo(project)


Listener = Callable[[str], None]


class UndoStack:
    """The undo history of one project.

    Attributes:
        project: the project the commands act on.
        limit: the most undo steps kept (oldest dropped first); 0 = unlimited.

    Listeners registered with :meth:`add_listener` are called with one of
    ``"push"``, ``"undo"``, ``"redo"``, ``"saved"``, ``"clear"`` after each change
    (napari-style events: the core announces, views subscribe).
    """

    def __init__(self, project: Project, limit: int = 0):
        self.project = project
        self.limit = limit
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._clean: int | None = 0  # len(_done) at the saved point; None = unreachable
        self._groups: list[MacroCommand] = []
        self._listeners: list[Listener] = []
        self._merge_barrier = False

    # -- listeners ------------------------------------------------------------
    def add_listener(self, cb: Listener) -> None:
        """Call ``cb(event_name)`` after every change of the stack."""
        self._listeners.append(cb)

    def remove_listener(self, cb: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(cb)

    def _emit(self, event: str) -> None:
        for cb in list(self._listeners):
            cb(event)

    # -- pushing ---------------------------------------------------------------
    def push(self, cmd: Command) -> Command:
        """Execute ``cmd`` and record it. Returns it.

        Raises:
            CommandError: the command could not be applied, or it would make the song pass
                the 24 h limit (:mod:`studio.limits`); the project is unchanged.
        """
        try:
            cmd.do(self.project)
        except CommandError:
            raise
        except (KeyError, ValueError, IndexError, TypeError, OverflowError) as exc:
            raise CommandError(f"{cmd.label}: {exc}") from exc
        if not self._groups:
            self._check_limits(cmd)
        if self._groups:
            self._groups[-1].commands.append(cmd)
            return cmd
        self._record(cmd)
        self._emit("push")
        return cmd

    def _record(self, cmd: Command) -> None:
        if self._undone and self._clean is not None and self._clean > len(self._done):
            self._clean = None  # the saved state was in the redo branch we are dropping
        top = self._done[-1] if self._done else None
        can_merge = top is not None and not self._merge_barrier and self._clean != len(self._done)
        self._merge_barrier = False
        if not (can_merge and top.merge(cmd)):
            self._done.append(cmd)
            if self.limit and len(self._done) > self.limit:
                self._done.pop(0)
                self._clean = None if self._clean in (None, 0) else self._clean - 1
        self._undone.clear()

    @contextlib.contextmanager
    def group(self, label: str) -> Iterator[MacroCommand]:
        """Group the commands pushed inside the ``with`` block into one undo step.

        Nested groups fold into the outermost one. If the block raises, every command
        pushed inside it is undone (the project is left as before) and the error re-raised.
        """
        macro = MacroCommand(label)
        self._groups.append(macro)
        try:
            yield macro
        except BaseException:
            self._groups.pop()
            macro.undo(self.project)
            raise
        self._groups.pop()
        if not macro.commands:
            return
        if self._groups:
            self._groups[-1].commands.append(macro)
            return
        self._check_limits(macro)
        self._merge_barrier = True
        self._record(macro)
        self._merge_barrier = True
        self._emit("push")

    def _check_limits(self, cmd: Command) -> None:
        """Undo ``cmd`` (just done) and raise when the project now passes a limit."""
        from studio.limits import length_problem

        problem = length_problem(self.project)
        if problem:
            cmd.undo(self.project)
            raise CommandError(f"{cmd.label}: {problem}; nothing was changed")

    def commands(self) -> list[Command]:
        """Every command the history still holds (done, undone, and in open groups):
        what undo and redo may bring back."""
        return [*self._done, *self._undone, *self._groups]

    def break_merge(self) -> None:
        """End the current drag: the next command never merges into the previous one."""
        self._merge_barrier = True

    # -- undo / redo ---------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._done) and not self._groups

    @property
    def can_redo(self) -> bool:
        return bool(self._undone) and not self._groups

    @property
    def undo_label(self) -> str:
        return self._done[-1].label if self._done else ""

    @property
    def redo_label(self) -> str:
        return self._undone[-1].label if self._undone else ""

    def undo(self) -> bool:
        """Undo the newest step. Returns False when there is nothing to undo."""
        if not self.can_undo:
            return False
        cmd = self._done.pop()
        cmd.undo(self.project)
        self._undone.append(cmd)
        self._merge_barrier = True
        self._emit("undo")
        return True

    def redo(self) -> bool:
        """Redo the newest undone step. Returns False when there is nothing to redo."""
        if not self.can_redo:
            return False
        cmd = self._undone.pop()
        cmd.do(self.project)
        self._done.append(cmd)
        self._merge_barrier = True
        self._emit("redo")
        return True

    # -- saved point -------------------------------------------------------------
    def mark_saved(self) -> None:
        """Record the current state as saved (after a successful save)."""
        self._clean = len(self._done)
        self._merge_barrier = True
        self._emit("saved")

    @property
    def is_dirty(self) -> bool:
        """True when the project differs from its last saved state."""
        return self._clean != len(self._done)

    @property
    def index(self) -> int:
        """Number of steps done (position in the history)."""
        return len(self._done)

    def clear(self) -> None:
        """Forget the history (e.g. after loading); the current state counts as saved."""
        self._done.clear()
        self._undone.clear()
        self._clean = 0
        self._emit("clear")
