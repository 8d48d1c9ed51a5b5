"""A small LRU cache of pixmap tiles, and numpy RGBA -> QPixmap conversion.

The timeline keeps its drawn waveforms and note previews as fixed-width tiles, in
the manner of Audacity's and Sonic Visualiser's separate view caches: repaints only
blit pixmaps, and a tile is rendered once per zoom level.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np
from PyQt6.QtGui import QColor, QImage, QPainter, QPixmap

TILE_PX = 256
"""Width of one cached tile, pixels."""


def rgba(colour: QColor | str, alpha: int | None = None) -> np.ndarray:
    """``uint8[4]`` RGBA of a colour (``alpha`` overrides its alpha)."""
    c = QColor(colour)
    return np.array([c.red(), c.green(), c.blue(), c.alpha() if alpha is None else alpha], np.uint8)


def pixmap_from_rgba(img: np.ndarray) -> QPixmap:
    """A QPixmap from a ``(height, width, 4)`` uint8 RGBA array (copied)."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    qimg = QImage(img.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(qimg.copy())


def painted_pixmap(width: int, height: int, dpr: float, paint: Callable[[QPainter], None]) -> QPixmap:
    """A ``width`` x ``height`` (logical pixels) pixmap at device pixel ratio ``dpr``,
    drawn by ``paint(painter)``: the cached layer of a widget that blits it until what
    it shows changes (track headers, the ruler's ticks)."""
    pm = QPixmap(max(1, round(width * dpr)), max(1, round(height * dpr)))
    pm.setDevicePixelRatio(dpr)
    p = QPainter(pm)
    try:
        paint(p)
    finally:
        p.end()
    return pm


class TileCache:
    """LRU of ``key -> QPixmap`` with a limit in pixels held (about 4 bytes each).

    ``get(key, make)`` returns the cached pixmap or calls ``make()``; ``make`` may
    return None (e.g. peaks not ready yet) and then nothing is cached.
    """

    def __init__(self, max_pixels: int = 64 * 1024 * 1024 // 4):
        self.max_pixels = max_pixels
        self._items: OrderedDict[Hashable, QPixmap] = OrderedDict()
        self._pixels = 0
        self.hits = 0
        self.misses = 0
        self.deadline: float | None = None  # perf_counter time after which misses are deferred
        self.deferred = 0

    def get(self, key: Hashable, make: Callable[[], QPixmap | None]) -> QPixmap | None:
        """The pixmap under ``key``, made by ``make()`` on a miss (None: not cached)."""
        pm = self._items.get(key)
        if pm is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return pm
        self.misses += 1
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.deferred += 1  # out of this paint's time budget: the caller draws a placeholder
            return None
        pm = make()
        if pm is None:
            return None
        self._items[key] = pm
        self._pixels += pm.width() * pm.height()
        while self._pixels > self.max_pixels and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._pixels -= old.width() * old.height()
        return pm

    def clear(self, predicate: Callable[[Hashable], bool] | None = None) -> None:
        """Drop every tile, or those whose key matches ``predicate``."""
        if predicate is None:
            self._items.clear()
            self._pixels = 0
            return
        for k in [k for k in self._items if predicate(k)]:
            pm = self._items.pop(k)
            self._pixels -= pm.width() * pm.height()

    def __len__(self) -> int:
        return len(self._items)
