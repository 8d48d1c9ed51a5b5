"""Pixels <-> samples for the timeline, zoom and snap.

Qt-free arithmetic shared by the ruler, the lanes and the benchmark. Horizontal
position is ``x = (sample - origin) / samples_per_px``; zoom changes
``samples_per_px`` around an anchor sample so that the point under the mouse stays put
(the usual DAW behaviour, as in Reaper and Ableton Live).

Safe for any length a project accepts (24 h at 192 kHz, :data:`studio.limits.MAX_SAMPLES`):
pixel positions stay floats (Qt draws them as ``QRectF``), the origin is clamped to the
project limit, the coarsest zoom fits the longest project into a window, and the scroll
bar (a 32-bit ``int`` in Qt) works in scaled steps when the content is wider than
:data:`SCROLL_MAX` pixels (:meth:`TimelineGeometry.scrollbar`).
"""
from __future__ import annotations

from dataclasses import dataclass

from studio.limits import MAX_SAMPLES
from studio.model.timebase import PPQ, TempoMap

MIN_SAMPLES_PER_PX = 1.0
MAX_SAMPLES_PER_PX = float(1 << 25)
"""Coarsest zoom: 2^25 samples per pixel fits 24 h at 192 kHz into 500 pixels."""
SCROLL_MAX = (1 << 30) - 1
"""Largest value given to a Qt scroll bar (its range is a signed 32-bit int)."""
MAX_ORIGIN = float(MAX_SAMPLES)
"""The scroll position never passes the longest possible project."""


@dataclass
class TimelineGeometry:
    """The horizontal mapping of the timeline.

    Attributes:
        sample_rate: project rate, Hz.
        samples_per_px: zoom; samples shown per pixel (float >= 1).
        origin: timeline sample at x = 0 of the visible area (scroll position).
    """

    sample_rate: int
    samples_per_px: float = 1024.0
    origin: float = 0.0

    def x_of(self, sample: float) -> float:
        """Pixel x (float, relative to the visible area) of a timeline sample."""
        return (sample - self.origin) / self.samples_per_px

    def sample_at(self, x: float) -> int:
        """Timeline sample (rounded, >= 0) at pixel x."""
        return max(0, int(round(self.origin + x * self.samples_per_px)))

    def seconds_per_px(self) -> float:
        """Seconds shown per pixel at this zoom."""
        return self.samples_per_px / self.sample_rate

    def zoom(self, factor: float, anchor_x: float) -> None:
        """Multiply the zoom (factor > 1 zooms out) keeping the sample at ``anchor_x`` fixed."""
        anchor = self.origin + anchor_x * self.samples_per_px
        spp = min(MAX_SAMPLES_PER_PX, max(MIN_SAMPLES_PER_PX, self.samples_per_px * factor))
        self.samples_per_px = spp
        self.set_origin(anchor - anchor_x * spp)

    def set_origin(self, sample: float) -> None:
        """Scroll so that ``sample`` is at x = 0 (clamped to 0 .. :data:`MAX_ORIGIN`)."""
        self.origin = min(MAX_ORIGIN, max(0.0, float(sample)))

    def fit(self, total_samples: int, width_px: int) -> None:
        """Zoom so that ``total_samples`` fill ``width_px`` pixels, scrolled to the start."""
        width_px = max(1, width_px)
        self.samples_per_px = min(MAX_SAMPLES_PER_PX,
                                  max(MIN_SAMPLES_PER_PX, max(1, total_samples) / width_px))
        self.origin = 0.0

    def scrollbar(self, content_samples: float, visible_px: int) -> tuple[int, int, int, float]:
        """Scroll-bar settings for content ``content_samples`` long in a view ``visible_px`` wide.

        Returns:
            ``(maximum, page_step, value, px_per_step)``: ints that fit Qt's 32-bit range
            (at most :data:`SCROLL_MAX`), and how many pixels one scroll step moves (1 unless
            the content is wider than :data:`SCROLL_MAX` pixels).
        """
        visible_px = max(1, int(visible_px))
        content_px = max(0.0, float(content_samples) / self.samples_per_px - visible_px)
        scale = max(1.0, content_px / SCROLL_MAX)
        maximum = int(min(SCROLL_MAX, content_px / scale))
        value = int(min(maximum, max(0.0, self.origin / self.samples_per_px / scale)))
        page = int(max(1, min(SCROLL_MAX, visible_px / scale)))
        return maximum, page, value, scale

    def origin_for_scroll(self, value: int, px_per_step: float) -> float:
        """The origin (samples) for scroll-bar ``value`` (see :meth:`scrollbar`), clamped."""
        return min(MAX_ORIGIN, max(0.0, float(value) * px_per_step * self.samples_per_px))


def grid_step_ticks(tempo_map: TempoMap, sample_rate: int, samples_per_px: float,
                    min_px: float = 12.0) -> int:
    """The finest musical grid step (ticks) whose lines are at least ``min_px`` apart.

    Steps are 1/16 note, 1/8, beat, bar, 2, 4, 8, ... bars, doubling as far as needed
    (bars of the first signature). Used for drawing and for snapping.
    """
    sig = tempo_map.signatures[0]
    bar = sig.ticks_per_bar
    bpm = tempo_map.tempos[0].bpm
    samples_per_tick = 60.0 / (bpm * PPQ) * sample_rate
    for step in (PPQ // 4, PPQ // 2, sig.ticks_per_beat, bar, 2 * bar, 4 * bar, 8 * bar,
                 16 * bar, 32 * bar, 64 * bar):
        if step * samples_per_tick / samples_per_px >= min_px:
            return step
    step = 128 * bar
    while step * samples_per_tick / samples_per_px < min_px and step < (1 << 40):
        step *= 2  # a day-long song zoomed out: lines every 256, 512... bars
    return step


def snap_sample(sample: int, tempo_map: TempoMap, sample_rate: int, step_ticks: int) -> int:
    """``sample`` moved to the nearest grid line every ``step_ticks`` (through the tempo map)."""
    tick = tempo_map.sample_to_tick(sample, sample_rate)
    snapped = int(round(tick / step_ticks)) * step_ticks
    return tempo_map.tick_to_sample(max(0, snapped), sample_rate)
