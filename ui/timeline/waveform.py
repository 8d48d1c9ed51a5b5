"""Waveform tiles drawn from the media pool's peak cache.

Each tile shows ``TILE_PX`` columns of one media item at one zoom: the min/max
envelope in a soft shade and the RMS band in a stronger one (as Audacity draws it).
Columns come from ``PeakCache.query(start_frame, end_frame, width_px)`` of
:mod:`studio.media.peaks`; the pixels are filled with numpy, so a tile costs well under a
millisecond once the peaks exist. The display path never raises: when the peaks are
not ready or the read fails, nothing is cached and a flat line is drawn instead.
"""
from __future__ import annotations

import logging

import numpy as np
from PyQt6.QtGui import QPixmap

from ui.timeline.tiles import TILE_PX, TileCache, pixmap_from_rgba

log = logging.getLogger(__name__)


def envelope_rgba(mins: np.ndarray, maxs: np.ndarray, rms: np.ndarray, height: int,
                  peak_rgba: np.ndarray, rms_rgba: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Paint a waveform envelope into a ``(height, width, 4)`` uint8 RGBA array.

    Args:
        mins, maxs, rms: ``(channels, width)`` per-column min, max and RMS in [-1, 1]
            (channels are merged: min of mins, max of maxs, mean of RMS).
        height: pixels.
        peak_rgba, rms_rgba: ``uint8[4]`` colours.
        gain: linear clip gain applied to the drawing.
    """
    lo = np.clip(np.min(np.atleast_2d(mins), axis=0) * gain, -1.0, 1.0)
    hi = np.clip(np.max(np.atleast_2d(maxs), axis=0) * gain, -1.0, 1.0)
    r = np.clip(np.mean(np.atleast_2d(rms), axis=0) * gain, 0.0, 1.0)
    half = (height - 1) / 2.0
    rows = np.arange(height, dtype=np.float32)[:, None]
    y_top = half - hi * half  # smaller y = higher amplitude
    y_bot = half - lo * half
    y_top = np.minimum(y_top, half - 0.5)  # at least one pixel line for silence
    y_bot = np.maximum(y_bot, half + 0.5)
    img = np.zeros((height, lo.shape[0], 4), np.uint8)
    peak = (rows >= np.floor(y_top)) & (rows <= np.ceil(y_bot))
    img[peak] = peak_rgba
    rms_band = (rows >= half - r * half) & (rows <= half + r * half)
    img[rms_band & peak] = rms_rgba
    return img


class WaveformTiles:
    """Cached waveform pixmaps of media items.

    Args:
        peaks_of: ``media_id -> PeakCache | None`` (usually ``MediaPool.peaks``).
        cache: the shared :class:`TileCache`.
    """

    def __init__(self, peaks_of, cache: TileCache, loader=None):
        self.peaks_of = peaks_of
        self.cache = cache
        self.loader = loader  # ui.qt_bridge.PeaksLoader: first loads happen off the UI thread

    def tile(self, media_id: str, frames: int, samples_per_px: float, index: int, height: int,
             peak_rgba: np.ndarray, rms_rgba: np.ndarray, gain: float = 1.0) -> QPixmap | None:
        """Tile ``index`` (media frames ``[index*TILE_PX*spp, (index+1)*TILE_PX*spp)``) or None."""
        spp = float(samples_per_px)
        key = ("wave", media_id, spp, index, height, peak_rgba.tobytes(), rms_rgba.tobytes(),
               round(gain, 4))

        if self.loader is not None and media_id not in self.loader.ready:
            if media_id not in self.loader.failed:
                self.loader.request(media_id, lambda: self._warm(media_id))
            return None

        def make() -> QPixmap | None:
            f0 = int(index * TILE_PX * spp)
            if f0 >= frames:
                return None
            f1 = min(frames, int((index + 1) * TILE_PX * spp))
            width = max(1, min(TILE_PX, int(np.ceil((f1 - f0) / spp))))
            try:
                peaks = self.peaks_of(media_id)
                if peaks is None:
                    return None
                mins, maxs, rms = peaks.query(f0, f1, width)
            except Exception as exc:  # the display path never throws
                log.debug("no peaks for %s: %s", media_id, exc)
                return None
            return pixmap_from_rgba(envelope_rgba(np.asarray(mins), np.asarray(maxs),
                                                  np.asarray(rms), height, peak_rgba, rms_rgba, gain))

        return self.cache.get(key, make)

    def _warm(self, media_id: str) -> None:
        peaks = self.peaks_of(media_id)
        if peaks is None:
            raise LookupError(f"no media {media_id}")
        peaks.query(0, 1, 1)
