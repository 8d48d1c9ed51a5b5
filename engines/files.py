"""File helpers shared by the core and the engines: atomic writes and sha256.

Atomic writes: temp file in the same folder, fsync, rename, fsync of the folder.

A reader (or a process restarted after a crash) sees either the old file or the new
one, never a mix: ``os.replace`` is atomic on POSIX and on Windows within one volume.
Leftover temp files from a crash are named ``.<name>.tmp-*`` and are ignored and
cleaned by :func:`clean_temp_files`.
"""
from __future__ import annotations

import contextlib
import hashlib
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


def _default_file_mode() -> int:
    """0o666 minus the process umask: the mode ``open()`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_DEFAULT_MODE = _default_file_mode()  # read once at import (os.umask is process-wide)


def fsync_dir(folder: str | Path) -> None:
    """fsync a directory so that a rename in it is durable (no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_output(path: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Atomic write for libraries that write by file name (soundfile, numpy, mido).

    Yields a temporary path in the same folder as ``path``; write it completely inside
    the ``with`` block. On normal exit the temp file is fsynced, chmod-ed to ``mode``
    (default: what ``open()`` would give, 0o666 minus the umask), renamed over
    ``path``, and the folder is fsynced. On error the temp file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _DEFAULT_MODE if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator:
    """Open a temp file beside ``path``; on clean exit flush, fsync and rename it over ``path``.

    On an exception the temp file is removed and ``path`` is untouched.
    Raises OSError from the file system.
    """
    path = Path(path)
    tmp = _temp_beside(path)
    ok = False
    try:
        with open(tmp, mode) as f:
            _step("opened")
            yield f
            f.flush()
            _step("flushed")
            os.fsync(f.fileno())
            _step("synced")
        os.chmod(tmp, _DEFAULT_MODE)
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


def sha256_file(path: str | Path, chunk: int = CHUNK_BYTES,
                progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk``-byte blocks.

    Args:
        progress: called with the bytes hashed so far after each block.

    Raises:
        OSError: the file can't be read.
    """
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
            done += len(block)
            if progress is not None:
                progress(done)
    return h.hexdigest()


def replace_durably(src: str | Path, dst: str | Path) -> None:
    """fsync ``src``, rename it over ``dst`` and fsync the folder: the last step of an
    atomic write whose temp file was written elsewhere in the same folder.

    Raises:
        OSError: from the file system (``dst`` is then untouched).
    """
    _fsync_file(Path(src))
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex sha256 of a bytes-like object (e.g. ``array.tobytes()``)."""
    return hashlib.sha256(data).hexdigest()
