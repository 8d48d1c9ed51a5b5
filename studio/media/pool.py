"""The media pool: immutable, content-addressed audio inside a project bundle.

Importing converts a file (or an engine's array) **once** to the project sample rate
and stores it losslessly as a 32-bit float WAV (RF64 past 4 GiB) named after the
sha256 of the stored file's bytes: ``media/<sha256>.wav``, made read-only. The
same audio imported twice gives the same id and one file. The stored WAV is
written without libsndfile's time-stamped PEAK chunk, so its bytes depend on the
audio alone. Float32 WAV is chosen over FLAC for every source because the renderer
reads clips through ``np.memmap`` with no decoding; the cost is disk space
(a 16-bit source takes twice its WAV size).

Pipeline of :meth:`MediaPool.import_file`, streamed in blocks so memory stays
bounded: decode (soundfile / pedalboard.io, in a helper thread a few blocks ahead)
-> validate (NaN/Inf, truncation) -> optional downmix -> resample (libsoxr VHQ) -> write a temp file in the media folder
-> fsync -> sha256 -> rename to its content address. The peak cache
(:mod:`studio.media.peaks`) is built from the same stream. A bad file raises
:class:`~studio.errors.AudioFileError` naming it, and leaves the media folder
exactly as it was (the temp file is removed).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import stat
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from studio.io.audio_io import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    AudioReader,
    StreamResampler,
    check_finite,
    downmix_to_stereo,
    file_sha256,
    open_wav_writer,
    resampled_length,
)
from engines.files import is_disk_full, replace_durably, sha256_file
from studio.errors import AudioFileError, DiskFull
from studio.model.project import MediaItem
from studio.media.peaks import PeakBuilder, PeakCache

__all__ = ["MediaPool", "MEDIA_DIR", "PEAKS_DIR", "Progress", "fingerprint_file"]

MEDIA_DIR = "media"
"""Name of the media folder inside a bundle (``MediaItem.path`` starts with it)."""
PEAKS_DIR = ("cache", "peaks")
"""Peak caches live in ``<bundle>/cache/peaks/<media id>.npz``."""

Progress = Callable[[float], None]
"""Progress callback: fraction done, 0.0 .. 1.0."""

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_BLOCK = 1 << 18
_MAX_OPEN_MAPS = 256  # each np.memmap holds a file descriptor; least recently used ones are dropped


FINGERPRINT_BLOCK = 4096
FINGERPRINT_BLOCKS = 8


def fingerprint_file(path: str | Path) -> tuple[int, str]:
    """``(size in bytes, fingerprint)`` of a stored media file: the sha256 of its size and
    of :data:`FINGERPRINT_BLOCKS` blocks of :data:`FINGERPRINT_BLOCK` bytes spread evenly
    over it (the whole file when it is small). Reads at most 32 KiB.

    Raises:
        OSError: the file can't be read.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h = hashlib.sha256(size.to_bytes(8, "little"))
        if size <= FINGERPRINT_BLOCK * FINGERPRINT_BLOCKS:
            h.update(f.read())
        else:
            for k in range(FINGERPRINT_BLOCKS):
                f.seek((size - FINGERPRINT_BLOCK) * k // (FINGERPRINT_BLOCKS - 1))
                h.update(f.read(FINGERPRINT_BLOCK))
    return size, h.hexdigest()


class _Failed:
    """Carries an exception from the decoding thread to the importing thread."""

    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


def _prefetched(blocks: Iterator[np.ndarray], depth: int = 4) -> Iterator[np.ndarray]:
    """Run ``blocks`` (decoding) in a helper thread, ``depth`` blocks ahead of the consumer.

    libsndfile (through cffi) and libsoxr (python-soxr) release the GIL, so decoding
    overlaps with resampling, writing and peak building on a second core. Errors in
    the thread are re-raised in the consumer; closing the generator stops and joins
    the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not put(block):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer
            put(_Failed(exc))

    thread = threading.Thread(target=produce, name="seed-media-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


class MediaPool:
    """The audio files of one project, stored at the project sample rate.

    Args:
        root: the bundle's media folder (``<bundle>/media``); created on first import.
        sample_rate: the project sample rate, Hz; every stored item has it.
        peaks_dir: where peak caches go; default ``<bundle>/cache/peaks``.

    Thread safety: imports of different files may run at once (each writes its own
    temp file; the final rename and the caches are guarded by a lock). Reads are safe
    from any thread.
    """

    def __init__(self, root: str | Path, sample_rate: int, *, peaks_dir: str | Path | None = None):
        if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
            raise ValueError(f"project sample rate must be 8-192 kHz, got {sample_rate}")
        self.root = Path(root)
        self.sample_rate = int(sample_rate)
        self.peaks_dir = Path(peaks_dir) if peaks_dir is not None else self.root.parent.joinpath(*PEAKS_DIR)
        self._lock = threading.Lock()
        self._maps: OrderedDict[str, np.ndarray] = OrderedDict()
        self._peaks: dict[str, PeakCache] = {}

    # ------------------------------------------------------------------ import
    def import_file(self, path: str | Path, *, downmix: bool = False, peaks: bool = True,
                    progress: Progress | None = None, name: str | None = None) -> MediaItem:
        """Import an audio file, converting it once to the pool's sample rate.

        Args:
            path: WAV, AIFF, FLAC, OGG Vorbis, Opus or MP3 at 8-192 kHz.
            downmix: accept more than 2 channels by mixing down to stereo
                (ITU-R BS.775 coefficients, see :func:`studio.io.audio_io.downmix_matrix`);
                without it such files are refused.
            peaks: also build and save the peak cache (from the same stream).
            progress: called with the fraction done.
            name: the name kept as ``original_name`` (default: the file's name).

        Returns:
            The :class:`MediaItem` (id = sha256 of the stored file, original name,
            original sha256 and sample rate kept). Importing the same audio again
            returns an equal item and writes nothing new.

        Raises:
            AudioFileError: naming the file: missing, empty, not audio, truncated,
                decode error, NaN/Inf samples, more than 2 channels without
                ``downmix``, sample rate outside 8-192 kHz. The media folder is
                left unchanged.
        """
        path = Path(path)
        with AudioReader(path) as reader:
            info = reader.info
            out_channels = self._out_channels(info.channels, downmix, path)
            original_sha256 = file_sha256(path)
            decoded = _prefetched(reader.blocks(_BLOCK))
            try:
                blocks = (downmix_to_stereo(b, info.sample_rate) if info.channels > 2 else b for b in decoded)
                return self._store(
                    blocks, info.sample_rate, out_channels, info.frames,
                    original_name=name or path.name, original_sha256=original_sha256, peaks=peaks,
                    progress=progress,
                )
            finally:
                decoded.close()  # stops and joins the decoding thread before the file closes

    def import_array(self, audio: np.ndarray, sample_rate: int, *, name: str, downmix: bool = False,
                     peaks: bool = True) -> MediaItem:
        """Import audio held in memory (an engine's result).

        Args:
            audio: float ``(channels, frames)`` (1-D is taken as mono).
            sample_rate: its rate, Hz (8-192 kHz); resampled to the pool's rate if needed.
            name: a display name kept as ``original_name`` and used in error messages.
            downmix: as in :meth:`import_file`.
            peaks: also build and save the peak cache.

        Returns:
            The :class:`MediaItem`; ``original_sha256`` is the sha256 of the input as
            float32 frame-interleaved bytes (there is no original file).

        Raises:
            AudioFileError: naming ``name``: wrong shape, no frames, NaN/Inf,
                unsupported sample rate, too many channels without ``downmix``.
        """
        arr = np.asarray(audio)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] < 1:
            raise AudioFileError(name, f"audio must be shaped (channels, frames), got {np.shape(audio)}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise AudioFileError(name, f"audio must be floating point, got {arr.dtype}")
        arr = arr.astype(np.float32, copy=False)
        if arr.shape[1] == 0:
            raise AudioFileError(name, "holds no audio (0 frames)")
        try:
            rate_ok = int(sample_rate) == sample_rate and MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
        except (TypeError, ValueError):
            rate_ok = False
        if not rate_ok:
            raise AudioFileError(name, f"unsupported sample rate {sample_rate!r} Hz (supported: 8-192 kHz)")
        sample_rate = int(sample_rate)
        check_finite(arr, sample_rate, path=name)
        out_channels = self._out_channels(arr.shape[0], downmix, name)
        h = hashlib.sha256()
        for a in range(0, arr.shape[1], _BLOCK):
            h.update(np.ascontiguousarray(arr[:, a : a + _BLOCK].T).tobytes())

        def blocks() -> Iterable[np.ndarray]:
            for a in range(0, arr.shape[1], _BLOCK):
                block = arr[:, a : a + _BLOCK]
                yield downmix_to_stereo(block, sample_rate) if arr.shape[0] > 2 else block

        return self._store(blocks(), sample_rate, out_channels, arr.shape[1], original_name=name,
                           original_sha256=h.hexdigest(), peaks=peaks, progress=None)

    @staticmethod
    def _kept(original_name: str) -> str:
        return f"'{original_name}' was not imported and the project is unchanged"


    @staticmethod
    def _out_channels(channels: int, downmix: bool, name: str | Path) -> int:
        if channels <= 2:
            return channels
        if not downmix:
            raise AudioFileError(
                name,
                f"has {channels} channels; Seed Studio takes mono or stereo "
                "(import with the downmix option to mix it down to stereo)",
            )
        return 2

    def _store(self, blocks: Iterable[np.ndarray], sr_in: int, channels: int, frames_hint: int, *,
               original_name: str, original_sha256: str, peaks: bool, progress: Progress | None) -> MediaItem:
        """Stream blocks -> resample -> temp WAV -> hash -> content-addressed file.

        Raises:
            DiskFull: the media folder's disk filled up (names the file being imported;
                the temp file is removed, the pool is unchanged).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".import-", suffix=".wav.tmp")
        except OSError as exc:
            if is_disk_full(exc, self.root if self.root.is_dir() else None):
                raise DiskFull(self.root, self._kept(original_name)) from None
            raise
        os.close(fd)
        out_hint = resampled_length(frames_hint, sr_in, self.sample_rate)
        resampler = StreamResampler(sr_in, self.sample_rate, channels)
        builder = PeakBuilder(channels, self.sample_rate) if peaks else None
        tmp = Path(tmp_name)
        try:
            written = 0
            consumed = 0
            with open_wav_writer(tmp, self.sample_rate, channels, "FLOAT", out_hint + out_hint // 100) as out:
                def emit(y: np.ndarray) -> None:
                    nonlocal written
                    if y.shape[1]:
                        out.write(np.ascontiguousarray(y.T))
                        if builder is not None:
                            builder.add(y)
                        written += y.shape[1]

                for block in blocks:
                    consumed += block.shape[1]
                    emit(resampler.process(block))
                    if progress is not None and frames_hint > 0:
                        progress(min(0.95, 0.95 * consumed / frames_hint))
                emit(resampler.finish())
            if written == 0:
                raise AudioFileError(original_name, "holds no audio (0 frames)")
            media_id = sha256_file(tmp)
            size, fingerprint = fingerprint_file(tmp)
            final = self.root / f"{media_id}.wav"
            with self._lock:
                if final.exists():
                    tmp.unlink()
                else:
                    os.chmod(tmp, _READ_ONLY)
                    replace_durably(tmp, final)
        except BaseException as exc:
            full = not isinstance(exc, (AudioFileError, KeyboardInterrupt)) and is_disk_full(exc, self.root)
            with contextlib.suppress(OSError):
                tmp.unlink()
            if full:  # libsndfile says only "System error"; the free space tells
                raise DiskFull(self.root, self._kept(original_name)) from None
            raise
        item = MediaItem(
            id=media_id, path=f"{MEDIA_DIR}/{media_id}.wav", sample_rate=self.sample_rate,
            channels=channels, frames=written, original_name=original_name,
            original_sha256=original_sha256, original_sample_rate=sr_in, size=size, fingerprint=fingerprint,
        )
        if builder is not None:
            cache = self._peaks_path(item)
            if not cache.exists():
                built = builder.finish(source=self._source(item))
                try:
                    built.save(cache)
                except OSError:
                    pass  # a cache is optional; it is rebuilt on demand
                with self._lock:
                    self._peaks.setdefault(item.id, built)
        if progress is not None:
            progress(1.0)
        return item

    # ------------------------------------------------------------------ access
    def path_of(self, item: MediaItem) -> Path:
        """The stored file of ``item`` (``<bundle>/media/<id>.wav``).

        Raises:
            AudioFileError: ``item.path`` is not ``media/<file>`` inside this pool's
                folder (a project must never read outside its bundle).
        """
        rel = Path(item.path)
        if rel.is_absolute() or len(rel.parts) != 2 or rel.parts[0] != MEDIA_DIR or rel.name in ("", ".", ".."):
            raise AudioFileError(item.path, "media path must be 'media/<file>' inside the bundle")
        return self.root / rel.name

    def has(self, item: MediaItem) -> bool:
        """True when the stored file of ``item`` exists."""
        try:
            return self.path_of(item).is_file()
        except AudioFileError:
            return False

    def verify(self, item: MediaItem) -> bool:
        """Re-hash the stored file and compare it to ``item.id`` (detects damage).

        Raises:
            AudioFileError: the file is missing or unreadable.
        """
        return file_sha256(self._existing(item)) == item.id

    def _existing(self, item: MediaItem) -> Path:
        p = self.path_of(item)
        if not p.is_file():
            raise AudioFileError(p, f"stored media for '{item.original_name or item.id}' is missing from the bundle")
        return p

    def _map(self, item: MediaItem) -> np.ndarray:
        """``(frames, channels)`` read-only memmap of the stored WAV (cached)."""
        with self._lock:
            m = self._maps.get(item.id)
            if m is not None:
                self._maps.move_to_end(item.id)
                return m
        p = self._existing(item)
        from scipy.io import wavfile

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", wavfile.WavFileWarning)
                sr, m = wavfile.read(p, mmap=True)
        except Exception as exc:
            raise AudioFileError(p, f"stored media can't be read ({exc})") from exc
        m = m.reshape(m.shape[0], -1)
        if m.dtype != np.float32 or sr != item.sample_rate or m.shape != (item.frames, item.channels):
            raise AudioFileError(
                p,
                f"stored media doesn't match the project: found {m.shape[1]} ch x {m.shape[0]} frames "
                f"{m.dtype} at {sr} Hz, expected {item.channels} ch x {item.frames} frames float32 "
                f"at {item.sample_rate} Hz",
            )
        with self._lock:
            self._maps[item.id] = m
            while len(self._maps) > _MAX_OPEN_MAPS:
                self._maps.popitem(last=False)
        return m

    def read(self, item: MediaItem, start: int = 0, frames: int | None = None) -> np.ndarray:
        """Read ``frames`` frames of ``item`` from frame ``start``.

        Reads through a cached ``np.memmap`` (no decoding). Frames before 0 or past
        the end read as zeros, so a clip's window can be read without bounds checks.

        Args:
            item: a media item of this pool.
            start: first frame (may be negative).
            frames: how many; default up to the end of the item.

        Returns:
            float32 ``(item.channels, frames)``, a new C-contiguous array.

        Raises:
            AudioFileError: stored file missing, unreadable, or not matching ``item``.
            ValueError: negative ``frames``.
        """
        start = int(start)
        if frames is None:
            frames = max(0, item.frames - start)
        frames = int(frames)
        if frames < 0:
            raise ValueError(f"frames must be >= 0, got {frames}")
        m = self._map(item)
        out = np.zeros((item.channels, frames), np.float32)
        a, b = max(start, 0), min(start + frames, item.frames)
        if b > a:
            out[:, a - start : b - start] = m[a:b].T
        return out

    def _source(self, item: MediaItem):
        return lambda start, frames: self.read(item, start, frames)

    def _peaks_path(self, item: MediaItem) -> Path:
        self.path_of(item)  # validates the id/path shape
        return self.peaks_dir / f"{Path(item.path).stem}.npz"

    def peaks(self, item: MediaItem) -> PeakCache:
        """The :class:`~studio.media.peaks.PeakCache` of ``item``, loaded lazily from
        ``cache/peaks/<id>.npz`` and rebuilt (and saved) if missing or damaged.

        Its :meth:`~studio.media.peaks.PeakCache.query` never raises: if the media itself
        can't be read it returns zeros.
        """
        with self._lock:
            cache = self._peaks.get(item.id)
            if cache is None:
                try:
                    path: Path | None = self._peaks_path(item)
                except AudioFileError:  # bad media path: no cache file, no source -> zeros
                    path = None
                source = self._source(item) if path is not None else None
                cache = PeakCache.open(path, channels=item.channels, frames=item.frames,
                                       sample_rate=item.sample_rate, source=source)
                self._peaks[item.id] = cache
            return cache
