"""Multi-resolution min/max/RMS peak cache for drawing waveforms at any zoom.

Method: like Audacity's ``SampleBlock::GetSummary256`` summaries and Sonic
Visualiser's ``RangeSummarisableTimeValueModel`` zoom levels. Level 0 summarises
blocks of :data:`BASE_BLOCK` frames; each further level merges :data:`LEVEL_FACTOR`
blocks of the level below (block sizes 128, 512, 2048, 8192, ... frames) until one
block covers the whole file. Each block stores, per channel, the minimum, the
maximum and the RMS of its samples. Everything is built in one vectorised pass
over the audio (:class:`PeakBuilder` takes it block by block while it streams).

A query picks the coarsest level whose block is not wider than a pixel, so it
touches fewer than ``LEVEL_FACTOR`` blocks per pixel: O(pixels) at any zoom. Below
:data:`BASE_BLOCK` frames per pixel it reads the raw samples through a ``source``
callback (like Audacity, which reads samples below 256 per pixel).

The cache is saved with ``np.savez`` (plain float32/int64 arrays, loaded with
``allow_pickle=False``) atomically, and loaded lazily. The display path never
throws: a damaged or mismatching cache is rebuilt from the source (or reads as
zeros), and out-of-range pixels read as zeros.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.files import atomic_output

__all__ = ["BASE_BLOCK", "LEVEL_FACTOR", "FORMAT_VERSION", "PeakBuilder", "PeakCache", "PeakLevel", "Source"]

log = logging.getLogger(__name__)

BASE_BLOCK = 128
"""Frames per block at level 0."""
LEVEL_FACTOR = 4
"""Each level's block is this many blocks of the level below."""
FORMAT_VERSION = 1
"""Version stored in the ``.npz``; another version is rebuilt."""

Source = Callable[[int, int], np.ndarray]
"""``source(start_frame, frames) -> (channels, frames) float32``, zero-padded outside the audio."""

_CHUNK_BLOCKS = 8192  # level-0 blocks per vectorised step (1 Mi frames)


class PeakLevel:
    """One zoom level: per-block ``mins``, ``maxs``, ``rms``, each float32 ``(channels, blocks)``.

    Attributes:
        block: frames per block.
        mins, maxs, rms: float32 ``(channels, ceil(frames / block))``; the last block may
            cover fewer than ``block`` frames.
    """

    __slots__ = ("block", "mins", "maxs", "rms")

    def __init__(self, block: int, mins: np.ndarray, maxs: np.ndarray, rms: np.ndarray):
        self.block, self.mins, self.maxs, self.rms = int(block), mins, maxs, rms

    @property
    def blocks(self) -> int:
        """Number of blocks."""
        return self.mins.shape[1]


class PeakBuilder:
    """Builds a :class:`PeakCache` from audio arriving in blocks of any length.

    Usage: ``b = PeakBuilder(channels, sample_rate); b.add(block)...; cache = b.finish()``.
    Each sample is read once; level 0 is computed with reshaped numpy reductions
    (min, max, ``einsum`` sum of squares), higher levels from level 0.
    """

    def __init__(self, channels: int, sample_rate: int):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels, self.sample_rate = int(channels), int(sample_rate)
        self.frames = 0
        self._rest = np.zeros((self.channels, 0), np.float32)
        self._mins: list[np.ndarray] = []
        self._maxs: list[np.ndarray] = []
        self._sumsq: list[np.ndarray] = []

    def add(self, audio: np.ndarray) -> None:
        """Summarise the next ``(channels, n)`` block of audio (any layout, any n)."""
        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, n) audio, got shape {audio.shape}")
        step = _CHUNK_BLOCKS * BASE_BLOCK
        for a in range(0, audio.shape[1], step):
            part = audio[:, a : a + step]
            self.frames += part.shape[1]
            if self._rest.shape[1]:
                part = np.concatenate([self._rest, part], axis=1)
            full = part.shape[1] // BASE_BLOCK * BASE_BLOCK
            if full:
                self._summarise(np.ascontiguousarray(part[:, :full], dtype=np.float32))
            self._rest = np.array(part[:, full:], dtype=np.float32)

    def _summarise(self, x: np.ndarray) -> None:
        n = x.shape[1]
        r = x.reshape(self.channels, -1, BASE_BLOCK if n % BASE_BLOCK == 0 else n)
        self._mins.append(r.min(axis=-1))
        self._maxs.append(r.max(axis=-1))
        self._sumsq.append(np.einsum("cnb,cnb->cn", r, r).astype(np.float64))

    def finish(self, *, source: Source | None = None) -> PeakCache:
        """Summarise the last partial block and return the finished :class:`PeakCache`.

        Raises:
            ValueError: no audio was added.
        """
        if self.frames == 0:
            raise ValueError("no audio was added to the peak builder")
        if self._rest.shape[1]:
            self._summarise(self._rest)
            self._rest = np.zeros((self.channels, 0), np.float32)
        mins = np.concatenate(self._mins, axis=1)
        maxs = np.concatenate(self._maxs, axis=1)
        sumsq = np.concatenate(self._sumsq, axis=1)
        self._mins, self._maxs, self._sumsq = [], [], []
        levels = []
        block = BASE_BLOCK
        while True:
            counts = _block_counts(self.frames, block)
            rms = np.sqrt(sumsq / counts).astype(np.float32)
            levels.append(PeakLevel(block, mins, maxs, rms))
            if mins.shape[1] <= 1:
                break
            mins = _merge(mins, LEVEL_FACTOR, np.minimum, np.inf)
            maxs = _merge(maxs, LEVEL_FACTOR, np.maximum, -np.inf)
            sumsq = _merge(sumsq, LEVEL_FACTOR, np.add, 0.0)
            block *= LEVEL_FACTOR
        return PeakCache(self.channels, self.frames, self.sample_rate, levels=levels, source=source)


def _block_counts(frames: int, block: int) -> np.ndarray:
    """Frames in each block of a level: ``block`` except a shorter last one."""
    n = -(-frames // block)
    counts = np.full(n, float(block))
    counts[-1] = frames - (n - 1) * block
    return counts


def _merge(x: np.ndarray, factor: int, ufunc: np.ufunc, pad: float) -> np.ndarray:
    """Merge each run of ``factor`` columns of ``x`` with ``ufunc`` (padding the tail)."""
    ch, n = x.shape
    m = -(-n // factor)
    if m * factor != n:
        x = np.concatenate([x, np.full((ch, m * factor - n), pad, x.dtype)], axis=1)
    return ufunc.reduce(x.reshape(ch, m, factor), axis=-1)


def _ranges_reduce(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``ufunc`` over ``arr[:, s:e]`` for each (s, e) pair with s < e, in O(len(arr) + pairs).

    Uses ``ufunc.reduceat`` on interleaved start/end indices (every second result is a
    wanted range); a dummy column lets ``e`` equal ``arr.shape[1]``.
    """
    ext = np.concatenate([arr, arr[:, :1]], axis=1)
    idx = np.stack([starts, ends], axis=1).ravel()
    return ufunc.reduceat(ext, idx, axis=1)[:, ::2]


class PeakCache:
    """Min/max/RMS summaries of one media item at several zoom levels.

    Build with :meth:`build` (whole array) or :class:`PeakBuilder` (streaming), save
    with :meth:`save`, reopen lazily with :meth:`open`. :meth:`query` is the display
    path and never raises.

    Attributes:
        channels: channel count of the audio.
        frames: length of the audio in frames.
        sample_rate: Hz.
    """

    def __init__(
        self,
        channels: int,
        frames: int,
        sample_rate: int,
        *,
        levels: list[PeakLevel] | None = None,
        source: Source | None = None,
        path: Path | None = None,
    ):
        self.channels, self.frames, self.sample_rate = int(channels), int(frames), int(sample_rate)
        self.source = source
        self.path = Path(path) if path is not None else None
        self._levels = levels
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, audio: np.ndarray, sample_rate: int, *, source: Source | None = None) -> PeakCache:
        """Summarise a whole ``(channels, frames)`` array (a memmap view works; read in chunks).

        Raises:
            ValueError: not 2-D, or zero frames.
        """
        if audio.ndim != 2:
            raise ValueError(f"audio must be (channels, frames), got shape {audio.shape}")
        builder = PeakBuilder(audio.shape[0], sample_rate)
        builder.add(audio)
        return builder.finish(source=source)

    @property
    def levels(self) -> list[PeakLevel]:
        """The zoom levels, finest first (loads or rebuilds on first use; empty if impossible)."""
        self._ensure()
        return self._levels or []

    @property
    def block_sizes(self) -> list[int]:
        """Frames per block of each level, finest first."""
        return [lv.block for lv in self.levels]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the cache to ``path`` (``.npz``, no pickle) atomically.

        Raises:
            OSError: the folder can't be written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "version": np.array(FORMAT_VERSION, np.int64),
            "header": np.array([self.channels, self.frames, self.sample_rate, BASE_BLOCK, LEVEL_FACTOR], np.int64),
        }
        for k, lv in enumerate(self.levels):
            arrays[f"min{k}"], arrays[f"max{k}"], arrays[f"rms{k}"] = lv.mins, lv.maxs, lv.rms
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        self.path = path

    @classmethod
    def load(cls, path: str | Path, *, channels: int, frames: int, sample_rate: int,
             source: Source | None = None) -> PeakCache:
        """Read a saved cache now and check it matches the audio it claims to describe.

        Raises:
            ValueError: unreadable, other version, damaged or not matching
                ``channels``/``frames``/``sample_rate``.
            OSError: file missing or unreadable.
        """
        levels = _read_levels(Path(path), channels, frames, sample_rate)
        return cls(channels, frames, sample_rate, levels=levels, source=source, path=Path(path))

    @classmethod
    def open(cls, path: str | Path | None, *, channels: int, frames: int, sample_rate: int,
             source: Source | None = None) -> PeakCache:
        """A cache backed by ``path``, loaded on first use (not now).

        If the file is missing, damaged or stale it is rebuilt from ``source`` and
        saved again (best effort); without a source, queries return zeros.
        """
        return cls(channels, frames, sample_rate, levels=None, source=source, path=path)

    @property
    def is_loaded(self) -> bool:
        """True once the levels are in memory (loaded, built or rebuilt)."""
        return self._levels is not None

    def ensure(self) -> None:
        """Load (or rebuild and save) the levels now, e.g. from a background thread,
        so that the first :meth:`query` on the UI thread does no I/O. Never raises."""
        try:
            self._ensure()
        except Exception as exc:  # pragma: no cover - _ensure already catches
            log.warning("peak cache %s could not be prepared (%s)", self.path, exc)

    def _ensure(self) -> None:
        if self._levels is not None:
            return
        with self._lock:
            if self._levels is not None:
                return
            try:
                if self.path is None:
                    raise FileNotFoundError("no cache file")
                self._levels = _read_levels(self.path, self.channels, self.frames, self.sample_rate)
                return
            except FileNotFoundError:
                pass
            except Exception as exc:  # damaged cache: rebuild
                log.warning("peak cache %s is unusable (%s); rebuilding", self.path, exc)
            self._levels = self._rebuild()

    def _rebuild(self) -> list[PeakLevel]:
        if self.source is None or self.frames <= 0:
            return []
        try:
            builder = PeakBuilder(self.channels, self.sample_rate)
            step = 1 << 22
            for a in range(0, self.frames, step):
                builder.add(self.source(a, min(step, self.frames - a)))
            levels = builder.finish()._levels or []
        except Exception as exc:
            log.warning("peak cache rebuild failed (%s); waveform shows silence", exc)
            return []
        if self.path is not None:
            try:
                PeakCache(self.channels, self.frames, self.sample_rate, levels=levels).save(self.path)
            except Exception as exc:  # read-only bundle etc.: keep it in memory
                log.warning("could not save peak cache %s (%s)", self.path, exc)
        return levels

    # ------------------------------------------------------------------ queries
    def pixel_ranges(self, start_frame: int, end_frame: int, width_px: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Which frames each pixel of a query summarises.

        Pixel ``p`` nominally covers frames ``[start + p*(end-start)//width,
        start + (p+1)*(end-start)//width)`` (at least one frame). Its range is clipped to
        the audio and, on a block level, widened to whole blocks of that level (its
        edges move by less than one block, which is at most one pixel).

        Returns:
            ``(block, starts, ends)``: the frames per unit used (1 = raw samples), and
            int64 arrays of ``width_px`` frame ranges; empty (``start >= end``) for
            pixels outside the audio.
        """
        block, us, ue = self._units(int(start_frame), int(end_frame), int(width_px))
        if block == 1:
            return 1, us, ue
        valid = us < ue
        return block, np.where(valid, us * block, 0), np.where(valid, np.minimum(ue * block, self.frames), 0)

    def _units(self, start: int, end: int, width: int) -> tuple[int, np.ndarray, np.ndarray]:
        p = np.arange(width + 1, dtype=np.int64)
        edges = start + (p * (end - start)) // width
        s = edges[:-1]
        e = np.maximum(edges[1:], s + 1)
        cs = np.clip(s, 0, self.frames)
        ce = np.clip(e, 0, self.frames)
        spp = (end - start) / width
        levels = self._levels or []
        if (spp < BASE_BLOCK and self.source is not None) or not levels:
            return 1, cs, ce
        level = levels[0]
        for lv in levels:
            if lv.block <= spp:
                level = lv
        b = level.block
        valid = cs < ce
        us = cs // b
        ue = np.where(ce >= self.frames, level.blocks, ce // b)
        ue = np.maximum(ue, us + 1)
        return b, np.where(valid, us, 0), np.where(valid, ue, 0)

    def query(self, start_frame: int, end_frame: int, width_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Min, max and RMS per pixel for frames ``[start_frame, end_frame)`` drawn ``width_px`` wide.

        Chooses the coarsest level with blocks no wider than a pixel (raw samples
        below :data:`BASE_BLOCK` frames per pixel), so the work is O(pixels).
        See :meth:`pixel_ranges` for the exact frames per pixel. Never raises.

        Returns:
            ``(mins, maxs, rms)``, each float32 ``(channels, width_px)``; zeros for
            pixels outside the audio, and everywhere if the cache can't be read or
            rebuilt.
        """
        try:
            width = int(width_px)
        except Exception:
            width = 0
        width = max(width, 0)
        zeros = lambda: np.zeros((self.channels, width), np.float32)  # noqa: E731
        try:
            start, end = int(start_frame), int(end_frame)
            if width == 0 or end <= start:
                return zeros(), zeros(), zeros()
            self._ensure()
            return self._query(start, end, width)
        except Exception as exc:  # the display path never throws
            log.warning("peak query failed (%s); drawing silence", exc)
            return zeros(), zeros(), zeros()

    def _query(self, start: int, end: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        block, us, ue = self._units(start, end, width)
        mins = np.zeros((self.channels, width), np.float32)
        maxs = np.zeros_like(mins)
        rms = np.zeros_like(mins)
        valid = us < ue
        if not valid.any():
            return mins, maxs, rms
        s, e = us[valid], ue[valid]
        lo, hi = int(s.min()), int(e.max())
        if block == 1:
            raw = np.asarray(self.source(lo, hi - lo), dtype=np.float32)
            if raw.shape != (self.channels, hi - lo):
                raise ValueError(f"source returned shape {raw.shape}, wanted {(self.channels, hi - lo)}")
            lmin = lmax = raw
            sq = raw.astype(np.float64) ** 2
            counts = (e - s).astype(np.float64)
        else:
            level = next(lv for lv in self._levels if lv.block == block)
            lmin, lmax = level.mins[:, lo:hi], level.maxs[:, lo:hi]
            bc = _block_counts(self.frames, block)
            sq = level.rms[:, lo:hi].astype(np.float64) ** 2 * bc[lo:hi]
            cum = np.concatenate([[0.0], np.cumsum(bc)])
            counts = cum[e] - cum[s]
        s0, e0 = s - lo, e - lo
        mins[:, valid] = _ranges_reduce(lmin, s0, e0, np.minimum)
        maxs[:, valid] = _ranges_reduce(lmax, s0, e0, np.maximum)
        rms[:, valid] = np.sqrt(_ranges_reduce(sq, s0, e0, np.add) / counts)
        return mins, maxs, rms


def _read_levels(path: Path, channels: int, frames: int, sample_rate: int) -> list[PeakLevel]:
    """Load and validate the levels of a saved cache (raises on anything unexpected)."""
    with np.load(path, allow_pickle=False) as z:
        if int(z["version"]) != FORMAT_VERSION:
            raise ValueError(f"cache format version {int(z['version'])}, expected {FORMAT_VERSION}")
        header = [int(v) for v in z["header"]]
        if header != [channels, frames, sample_rate, BASE_BLOCK, LEVEL_FACTOR]:
            raise ValueError(f"cache header {header} doesn't match the audio ({channels} ch, {frames} frames, {sample_rate} Hz)")
        levels = []
        block = BASE_BLOCK
        while f"min{len(levels)}" in z.files:
            k = len(levels)
            want = (channels, -(-frames // block))
            arrs = [z[f"{name}{k}"] for name in ("min", "max", "rms")]
            for a in arrs:
                if a.shape != want or a.dtype != np.float32:
                    raise ValueError(f"level {k}: array {a.shape} {a.dtype}, expected {want} float32")
            levels.append(PeakLevel(block, *arrs))
            block *= LEVEL_FACTOR
        if not levels or levels[-1].blocks != 1:
            raise ValueError("cache is missing zoom levels")
        return levels
