"""One writer per project: an OS file lock on the bundle, released by the OS on a crash.

Whoever changes a project (the app while the project is open, and every CLI command
that saves: ``import``, ``tempo``, the task commands, ``clean``) holds the lock for as long
as it may write. A second writer is refused at once with a message that names the
project and the holder (program, pid, host, since when), or waits for it with
``wait``/``--wait``. Read-only work (``info``, ``render``, ``export``, ``verify``) takes no
lock and writes nothing, so it works beside a writer, on a read-only folder and on a
full disk.

Files in the bundle::

    .writer.lock     the OS lock (``filelock``: flock on POSIX, LockFileEx on Windows); never
                     removed, so waiters always lock the same file
    .session.lock    the holder's record, JSON: pid, host, since (seconds since the epoch),
                     program; written atomically after the lock is taken, removed on release

The OS drops the lock when the holder dies (crash, SIGKILL, power loss), so a stale
``.session.lock`` never blocks anyone: finding one after taking the lock means the last
session on the project ended without closing (:attr:`WriterLock.crashed`, used to offer
recovery).

Within one process the lock is shared: sessions of the same bundle in one process (the
CLI opens one per command, the app one per window) count references on one OS lock, which
is released when the last of them closes.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from studio.errors import DiskFull, ProjectError, ProjectLocked

LOCK_FILE = ".writer.lock"
HOLDER_FILE = ".session.lock"

_program = "seed-studio"
_default_wait: float | None = 0.0
_on_wait: Any = None
_registry_lock = threading.Lock()
_held: dict[str, "_Held"] = {}


@dataclass
class _Held:
    lock: Any
    count: int = 0
    crashed: bool = False
    holder: dict[str, Any] = field(default_factory=dict)


def set_program(name: str) -> None:
    """Name this process in holder records (``"seed-studio import"``, ``"the Seed Studio app"``)."""
    global _program
    _program = str(name)


@contextlib.contextmanager
def default_wait(seconds: float | None) -> Iterator[None]:
    """Within the block, :func:`acquire` waits up to ``seconds`` by default (None = as long
    as it takes; 0 = refuse at once). The CLI's ``--wait`` sets it around one command."""
    global _default_wait
    old = _default_wait
    _default_wait = seconds
    try:
        yield
    finally:
        _default_wait = old


def set_wait_notice(callback: Any) -> None:
    """Call ``callback(message)`` once when :func:`acquire` starts waiting for another writer
    (the CLI prints it: ``waiting: project '...' is open for writing by ...``); None = silent."""
    global _on_wait
    _on_wait = callback


def read_holder(bundle: str | Path) -> dict[str, Any]:
    """The holder record of ``bundle`` (``{}`` when there is none or it is unreadable)."""
    p = Path(bundle) / HOLDER_FILE
    try:
        if not p.is_file() or p.is_symlink() or p.stat().st_size > 64 * 1024:
            return {}
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """``"seed-studio import (pid 4711 on studio-pc, since 2026-12-01 10:02:03)"``."""
    if not holder:
        return "another Seed Studio process (it has not recorded its details yet)"
    since = holder.get("since")
    when = ""
    if isinstance(since, (int, float)):
        when = ", since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    program = str(holder.get("program") or "another Seed Studio process")
    return f"{program} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}{when})"


def _holder_soon(bundle: Path) -> dict[str, Any]:
    """The holder record, allowing the holder half a second to write it after locking."""
    for _ in range(20):
        holder = read_holder(bundle)
        if holder:
            return holder
        time.sleep(0.025)
    return {}


def _acquire_now(lock: Any) -> bool:
    """One more non-blocking try at ``lock``, for when the holder left no record within
    half a second: it has most likely finished (a clean release removes the record) or
    died before writing one. True when the lock is ours now."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):
        return False
    return True


class WriterLock:
    """This process's hold on one bundle's writer lock (see the module docstring).

    Attributes:
        bundle: the bundle folder.
        crashed: True when the previous writer ended without releasing (a crash).
    """

    def __init__(self, bundle: Path, key: str, crashed: bool):
        self.bundle = bundle
        self._key = key
        self.crashed = crashed
        self._released = False

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return not self._released

    def release(self) -> None:
        """Give the lock back (idempotent); the OS lock is released when the last holder
        in this process releases, and the holder record is removed then."""
        if self._released:
            return
        self._released = True
        with _registry_lock:
            held = _held.get(self._key)
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del _held[self._key]
            with contextlib.suppress(OSError):
                if read_holder(self.bundle).get("pid") == os.getpid():
                    (self.bundle / HOLDER_FILE).unlink()
            with contextlib.suppress(Exception):
                held.lock.release(force=True)

    def __enter__(self) -> "WriterLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def acquire(bundle: str | Path, wait: float | None | str = "default") -> WriterLock:
    """Take the writer lock of ``bundle``.

    Args:
        bundle: the project folder (must exist).
        wait: seconds to wait for another writer; 0 = refuse at once; None = wait as long
            as it takes; ``"default"`` = the value set by :func:`default_wait` (0 unless
            the CLI's ``--wait`` is given).

    Returns:
        A :class:`WriterLock` (release it with :meth:`WriterLock.release` or ``with``).

    Raises:
        ProjectLocked: another process holds the lock (the message names the project and
            the holder: program, pid, host, since when).
        DiskFull: the lock file can't be created because the disk is full (nothing changed);
            when only the holder record can't be written, the lock is taken without it.
        ProjectError: the folder can't be locked (permissions, read-only file system).
    """
    from filelock import FileLock, Timeout

    from engines.files import atomic_write_text, is_disk_full

    b = Path(bundle)
    if wait == "default":
        wait = _default_wait
    key = os.path.realpath(b)
    with _registry_lock:
        held = _held.get(key)
        if held is not None:
            held.count += 1
            return WriterLock(b, key, False)
    lock = FileLock(str(b / LOCK_FILE), timeout=0, thread_local=False, is_singleton=False)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if wait == 0:
                raise
            if _on_wait is not None:
                _on_wait(f"waiting: project '{b}' is open for writing by {describe_holder(_holder_soon(b))}")
            lock.acquire(timeout=-1 if wait is None else max(0.0, float(wait)))
    except Timeout:
        holder = _holder_soon(b)
        if holder or not _acquire_now(lock):
            waited = "" if not wait else f" (waited {wait:g} s)"
            err = ProjectLocked(
                b, f"is open for writing by {describe_holder(holder)}{waited}. Only one program may change a "
                   "project at a time: close it there, then try again", holder)
            err.hint = "on the command line, add --wait to wait for it instead"
            raise err from None
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(b / LOCK_FILE, "the project is unchanged") from None
        raise ProjectError(b, f"can't be locked for writing ({exc.strerror or exc}); is the folder "
                              "read-only? Read-only commands (info, render, export, verify) still work") from None
    try:
        previous = read_holder(b)
        crashed = bool(previous) and previous.get("pid") != os.getpid()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "program": _program}
        try:
            atomic_write_text(b / HOLDER_FILE, json.dumps(holder))
        except OSError as exc:
            if not is_disk_full(exc, b):
                raise ProjectError(b / HOLDER_FILE, f"can't be written ({exc.strerror or exc}); the project is "
                                                    "unchanged") from None
            # A full disk: the OS lock alone keeps other writers out (they are told the holder
            # has not recorded its details). Going on lets `clean` free space; writes that
            # need space fail later with their own "disk is full" message.
            with contextlib.suppress(OSError):
                (b / HOLDER_FILE).unlink()  # a stale record must not name a dead holder
            holder = {}
    except BaseException:
        with contextlib.suppress(Exception):
            lock.release(force=True)
        raise
    with _registry_lock:
        _held[key] = _Held(lock, 1, crashed, holder)
    return WriterLock(b, key, crashed)
