"""File helpers shared by the core and the engines: atomic writes and sha256.

Atomic writes: temp file in the same folder, fsync, rename, fsync of the folder.

A reader (or a process restarted after a crash) sees either the old file or the new
one, never a mix: ``os.replace`` is atomic on POSIX and on Windows within one volume.
Leftover temp files from a crash are named ``.<name>.tmp-*`` and are ignored and
cleaned by :func:`clean_temp_files`.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

_crash_hook: Callable[[str], None] | None = None
CHUNK_BYTES = 1 << 20
"""Atomic writes go out in chunks of this many bytes."""


DISK_FULL_FREE_BYTES = 1 << 20
"""A write that fails while the folder has less than this many bytes free is reported as
"the disk is full" (libsndfile, for one, reports ENOSPC only as "System error")."""


class DiskFullError(OSError):
    """A write failed because the disk (or the user's quota) is full.

    An ``OSError`` with ``errno == ENOSPC`` and ``filename`` = the file that could not be
    written; the temp file has been removed and the destination is untouched.
    """

    def __init__(self, path: str | Path):
        super().__init__(errno.ENOSPC, "the disk is full", str(path))


def free_bytes(folder: str | Path) -> int | None:
    """Bytes this process may still write in ``folder``'s file system (root may use the
    reserved blocks), or None where the file system can't tell."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    blocks = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return int(blocks) * int(st.f_frsize)


def is_disk_full(exc: BaseException, folder: str | Path | None = None) -> bool:
    """Whether ``exc`` (raised by a write into ``folder``) means the disk is full.

    True for ``ENOSPC``/``EDQUOT`` anywhere in the exception's chain, and for other I/O
    errors (``OSError``, or ``RuntimeError`` such as libsndfile's "System error") when
    ``folder`` has less than :data:`DISK_FULL_FREE_BYTES` free. Call it before removing the
    failed temp file.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        if "No space left" in str(e) or "Disk quota" in str(e):
            return True
        e = e.__cause__ or e.__context__
    if folder is None or not isinstance(exc, (OSError, RuntimeError)):
        return False  # only I/O errors (libsndfile raises RuntimeError subclasses) are judged by free space
    free = free_bytes(folder)
    return free is not None and free < DISK_FULL_FREE_BYTES


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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(path) from exc
        raise
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

    Raises:
        DiskFullError: the temp file could not be created or written for lack of space.
    """
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _DEFAULT_MODE if mode is None else mode)
        os.replace(tmp, path)
    except BaseException as exc:
        full = is_disk_full(exc, path.parent)  # before the temp file frees its space
        with contextlib.suppress(OSError):
            tmp.unlink()
        if full and not isinstance(exc, DiskFullError):
            raise DiskFullError(path) from exc
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator:
    """Open a temp file beside ``path``; on clean exit flush, fsync and rename it over ``path``.

    On an exception the temp file is removed and ``path`` is untouched.

    Raises:
        DiskFullError: no space left for the temp file (an ``OSError``, ``ENOSPC``).
        OSError: other file-system errors.
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
    except OSError as exc:
        if not ok and is_disk_full(exc) and not isinstance(exc, DiskFullError):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise DiskFullError(path) from exc
        raise
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


def temp_name_pattern(name: str = "*") -> str:
    """The glob of the temp files an atomic write of ``name`` leaves after a crash
    (``.<name>.tmp-*``); ``"*"`` matches those of every name."""
    return f".{name}.tmp-*"


def clean_temp_files(folder: str | Path, names: Iterable[str] | None = None) -> tuple[int, int]:
    """Remove temp files left by interrupted atomic writes in ``folder``.

    Args:
        names: only the temp files of these destination names (``.<name>.tmp-*``);
            None = every ``.*.tmp-*`` file of the folder.

    Returns:
        ``(files removed, bytes freed)``. Only regular files are removed; errors are skipped.
    """
    patterns = [temp_name_pattern()] if names is None else [temp_name_pattern(glob_escape(n)) for n in names]
    n = freed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0, 0
    for pattern in patterns:
        for p in folder.glob(pattern):
            with contextlib.suppress(OSError):
                st = p.lstat()
                if not _is_regular(st.st_mode):
                    continue
                p.unlink()
                n += 1
                freed += st.st_size
    return n, freed


def glob_escape(name: str) -> str:
    """``name`` with glob wildcards escaped (``[`` ``]`` ``*`` ``?``)."""
    import glob

    return glob.escape(name)


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


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
