"""Pixels <-> samples for the timeline, zoom and snap.

Qt-free arithmetic shared by the ruler, the lanes and the benchmark. Horizontal
position is ``x = (sample - origin) / samples_per_px``; zoom changes
``samples_per_px`` around an anchor sample so that the point under the mouse stays put
(the usual DAW behaviour, as in Reaper and Ableton Live).
"""
from __future__ import annotations

from dataclasses import dataclass

from studio.model.timebase import PPQ, TempoMap

MIN_SAMPLES_PER_PX = 1.0
MAX_SAMPLES_PER_PX = 1 << 17


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
        self.origin = max(0.0, anchor - anchor_x * spp)

    def fit(self, total_samples: int, width_px: int) -> None:
        """Zoom so that ``total_samples`` fill ``width_px`` pixels, scrolled to the start."""
        width_px = max(1, width_px)
        self.samples_per_px = min(MAX_SAMPLES_PER_PX,
                                  max(MIN_SAMPLES_PER_PX, max(1, total_samples) / width_px))
        self.origin = 0.0


def grid_step_ticks(tempo_map: TempoMap, sample_rate: int, samples_per_px: float,
                    min_px: float = 12.0) -> int:
    """The finest musical grid step (ticks) whose lines are at least ``min_px`` apart.

    Steps are 1/16 note, 1/8, beat, bar, 2, 4, 8, 16, 32, 64 bars (bars of the first
    signature). Used for drawing and for snapping.
    """
    sig = tempo_map.signatures[0]
    bar = sig.ticks_per_bar
    bpm = tempo_map.tempos[0].bpm
    samples_per_tick = 60.0 / (bpm * PPQ) * sample_rate
    for step in (PPQ // 4, PPQ // 2, sig.ticks_per_beat, bar, 2 * bar, 4 * bar, 8 * bar,
                 16 * bar, 32 * bar, 64 * bar):
        if step * samples_per_tick / samples_per_px >= min_px:
            return step
    return 128 * bar


def snap_sample(sample: int, tempo_map: TempoMap, sample_rate: int, step_ticks: int) -> int:
    """``sample`` moved to the nearest grid line every ``step_ticks`` (through the tempo map)."""
    tick = tempo_map.sample_to_tick(sample, sample_rate)
    snapped = int(round(tick / step_ticks)) * step_ticks
    return tempo_map.tick_to_sample(max(0, snapped), sample_rate)
