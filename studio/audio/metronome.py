"""The metronome click heard during playback (never rendered into a mix, stem or export).

One click per beat of the tempo map (a beat is the meter's note value: a quarter in
4/4, an eighth in 7/8), a higher and louder click on the first beat of each bar. A click
is a sine burst with an exponential decay, :data:`CLICK_S` long; clicks are computed
from the beat positions alone, so any block of the timeline can be asked for on its own
(a click that starts in the previous block continues into this one).

Units: positions in samples at the project rate; levels as linear gains.
"""
from __future__ import annotations

import math

import numpy as np

from studio.model.timebase import TempoMap

CLICK_S = 0.03
"""Length of one click, seconds."""
DOWNBEAT_HZ, BEAT_HZ = 1760.0, 1320.0
"""Pitch of the bar's first click and of the other beats, Hz."""
DOWNBEAT_GAIN, BEAT_GAIN = 0.5, 0.3
"""Peak level of the clicks (linear; 0.5 = -6 dBFS)."""

_cache: dict[tuple[int, float], np.ndarray] = {}


def click(sample_rate: int, hz: float) -> np.ndarray:
    """One click at ``hz``: ``(n,)`` float32 peaking at 1.0, ``n = CLICK_S * sample_rate``."""
    key = (int(sample_rate), float(hz))
    if key not in _cache:
        n = int(CLICK_S * sample_rate)
        t = np.arange(n) / sample_rate
        _cache[key] = (np.sin(2 * math.pi * hz * t) * np.exp(-t / (CLICK_S / 5))).astype(np.float32)
    return _cache[key]


def beats_in(tempo_map: TempoMap, sample_rate: int, start: int, end: int) -> list[tuple[int, bool]]:
    """``(sample, is_downbeat)`` of every beat in ``[start, end)`` timeline samples."""
    if end <= start:
        return []
    t0 = max(0, int(math.floor(tempo_map.seconds_to_tick(max(0, start) / sample_rate))) - 1)
    t1 = int(math.ceil(tempo_map.seconds_to_tick(end / sample_rate))) + 1
    out = []
    for i, sig in enumerate(tempo_map.signatures):
        seg_end = tempo_map.signatures[i + 1].tick if i + 1 < len(tempo_map.signatures) else t1
        lo, hi = max(t0, sig.tick), min(t1, seg_end)
        if lo >= hi:
            continue
        step = sig.ticks_per_beat
        first = sig.tick + -(-(lo - sig.tick) // step) * step
        for tick in range(first, hi, step):
            s = tempo_map.tick_to_sample(tick, sample_rate)
            if start <= s < end:
                out.append((s, (tick - sig.tick) % sig.ticks_per_bar == 0))
    return out


def click_block(tempo_map: TempoMap, sample_rate: int, start: int, frames: int) -> np.ndarray:
    """The metronome for timeline samples ``[start, start + frames)``: ``(2, frames)`` float32."""
    out = np.zeros((2, frames), dtype=np.float32)
    n = int(CLICK_S * sample_rate)
    for s, down in beats_in(tempo_map, sample_rate, start - n + 1, start + frames):
        c = click(sample_rate, DOWNBEAT_HZ if down else BEAT_HZ) * np.float32(DOWNBEAT_GAIN if down else BEAT_GAIN)
        a, b = max(s, start), min(s + n, start + frames)
        if b > a:
            out[:, a - start:b - start] += c[a - s:b - s]
    return out
