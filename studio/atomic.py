"""Atomic file writes: temp file in the same folder, fsync, rename, fsync of the folder.

A reader (or a process restarted after a crash) sees either the old file or the new
one, never a mix: ``os.replace`` is atomic on POSIX and on Windows within one volume.
Leftover temp files from a crash are named ``.<name>.tmp-*`` and are ignored and
cleaned by :func:`clean_temp_files`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

_crash_hook: Callable[[str], None] | None = None
CHUNK_BYTES = 1 << 20
"""Atomic writes go out in chunks of this many bytes."""


def set_crash_hook(hook: Callable[[str], None] | None) -> None:
    """Install a callback called at each step of an atomic write (for crash-safety tests)."""
    global _crash_hook
    _crash_hook = hook


def _step(name: str) -> None:
    if _crash_hook is not None:
        _crash_hook(name)


def fsync_dir(folder: Path) -> None:
    """fsync a directory so that a rename in it is durable (no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator:
    """Open a temp file beside ``path``; on clean exit flush, fsync and rename it over ``path``.

    On an exception the temp file is removed and ``path`` is untouched.
    Raises OSError from the file system.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    ok = False
    try:
        with os.fdopen(fd, mode) as f:
            _step("opened")
            yield f
            f.flush()
            _step("flushed")
            os.fsync(f.fileno())
            _step("synced")
        os.replace(tmp, path)
        ok = True
        _step("renamed")
        fsync_dir(path.parent)
        _step("dir-synced")
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes, chunk: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (in chunks, so a crash can land mid-write)."""
    chunk = chunk or CHUNK_BYTES
    with atomic_open(path, "wb") as f:
        for i in range(0, max(len(data), 1), chunk):
            f.write(data[i:i + chunk])
            _step("chunk")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def clean_temp_files(folder: str | Path) -> int:
    """Remove temp files left by interrupted atomic writes in ``folder``. Returns the count."""
    n = 0
    for p in Path(folder).glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n
