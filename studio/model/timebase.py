"""Musical time: the tempo map, and conversions between ticks, seconds, samples and bars.

MIDI positions are integer ticks at :data:`PPQ` (960 pulses per quarter note);
audio positions are integer samples at the project sample rate. A
:class:`TempoMap` holds piecewise-constant tempo changes (BPM, quarter notes per
minute) and time-signature changes, both placed at ticks, as in a Standard MIDI
File (``set_tempo`` / ``time_signature`` meta events) and in Tracktion Engine's
``TempoSequence``.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from studio.limits import MAX_BPM, MIN_BPM

PPQ = 960
"""Ticks per quarter note used everywhere in the project."""


@dataclass(frozen=True)
class TempoChange:
    """A tempo that holds from ``tick`` until the next change.

    Attributes:
        tick: position in ticks (PPQ 960), >= 0.
        bpm: quarter notes per minute, in [1, 1000] (:data:`studio.limits.MIN_BPM` ..
            :data:`studio.limits.MAX_BPM`).
    """

    tick: int
    bpm: float


@dataclass(frozen=True)
class TimeSignature:
    """A meter that holds from ``tick`` (which should fall on a bar line) until the next change.

    Attributes:
        tick: position in ticks.
        numerator: beats per bar (1..64).
        denominator: note value of one beat (1, 2, 4, 8, 16, 32).
    """

    tick: int
    numerator: int = 4
    denominator: int = 4

    @property
    def ticks_per_beat(self) -> int:
        """Ticks of one beat of this meter (960 for a quarter, 480 for an eighth)."""
        return PPQ * 4 // self.denominator

    @property
    def ticks_per_bar(self) -> int:
        """Ticks of one bar of this meter."""
        return self.ticks_per_beat * self.numerator


@dataclass
class TempoMap:
    """Tempo and time-signature changes of a project.

    The first tempo and the first signature always sit at tick 0. Tempo is
    constant between changes (no ramps). All conversions are exact inverses up
    to the rounding to integer ticks or samples.

    Raises:
        ValueError: on construction with an empty list, a change at a
            negative tick, a BPM outside 1..1000 (or not finite) or an invalid meter.
    """

    tempos: list[TempoChange] = field(default_factory=lambda: [TempoChange(0, 120.0)])
    signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature(0, 4, 4)])

    def __post_init__(self) -> None:
        self.tempos = sorted((TempoChange(int(t.tick), float(t.bpm)) for t in self.tempos), key=lambda t: t.tick)
        self.signatures = sorted(
            (TimeSignature(int(s.tick), int(s.numerator), int(s.denominator)) for s in self.signatures),
            key=lambda s: s.tick)
        if not self.tempos or self.tempos[0].tick != 0:
            raise ValueError("the tempo map needs a tempo at tick 0")
        if not self.signatures or self.signatures[0].tick != 0:
            raise ValueError("the tempo map needs a time signature at tick 0")
        for t in self.tempos:
            if t.tick < 0 or not math.isfinite(t.bpm) or not (MIN_BPM <= t.bpm <= MAX_BPM):
                raise ValueError(f"invalid tempo {t.bpm:g} BPM at tick {t.tick} (tempos are {MIN_BPM:g}-{MAX_BPM:g} BPM)")
        for s in self.signatures:
            if s.tick < 0 or not (1 <= s.numerator <= 64) or s.denominator not in (1, 2, 4, 8, 16, 32):
                raise ValueError(f"invalid time signature {s.numerator}/{s.denominator} at tick {s.tick}")
        self._rebuild()

    # -- construction -------------------------------------------------------
    @classmethod
    def constant(cls, bpm: float, numerator: int = 4, denominator: int = 4) -> "TempoMap":
        """A map with one tempo (BPM) and one meter for the whole project."""
        return cls([TempoChange(0, float(bpm))], [TimeSignature(0, numerator, denominator)])

    def with_change(self, bar: int, bpm: float | None = None, numerator: int | None = None,
                    denominator: int | None = None) -> "TempoMap":
        """A copy with a tempo and/or meter change at the start of ``bar``.

        Args:
            bar: 0-based bar index (bar 0 = "bar 1" in a DAW); the change sits on its
                first tick and holds until the next change already in the map.
            bpm: quarter notes per minute (1 <= bpm <= 1000), or None to keep the tempo.
            numerator, denominator: the meter from that bar on, or None to keep it.
                Meter changes after ``bar`` keep their bar numbers: they move to the
                bar lines of the new meter.

        Raises:
            ValueError: negative bar, BPM out of range, invalid meter.
        """
        if int(bar) < 0:
            raise ValueError(f"bar {bar} is before the start of the song")
        if bpm is not None and not (math.isfinite(float(bpm)) and MIN_BPM <= float(bpm) <= MAX_BPM):
            raise ValueError(f"tempo {bpm} BPM outside {MIN_BPM:g}-{MAX_BPM:g}")
        # meters: every change keeps its bar number, ticks are rebuilt from bar 0 on
        by_bar = {self._sig_bars[i]: s for i, s in enumerate(self.signatures)}
        if numerator is not None or denominator is not None:
            cur = self.signature_at(self.bar_to_tick(int(bar)))
            by_bar[int(bar)] = TimeSignature(0, int(numerator or cur.numerator), int(denominator or cur.denominator))
        signatures: list[TimeSignature] = []
        t, prev_bar = 0, 0
        for b in sorted(by_bar):
            if signatures:
                t += (b - prev_bar) * signatures[-1].ticks_per_bar
            signatures.append(TimeSignature(t, by_bar[b].numerator, by_bar[b].denominator))
            prev_bar = b
        grid = TempoMap(list(self.tempos), signatures)
        # tempos: every change keeps its bar and its offset into the bar
        tempos = []
        for c in self.tempos:
            b, _beat, _in = self.bar_beat_at(c.tick)
            offset = min(c.tick - self.bar_to_tick(b), grid.signature_at(grid.bar_to_tick(b)).ticks_per_bar - 1)
            tempos.append(TempoChange(grid.bar_to_tick(b) + offset, c.bpm))
        if bpm is not None:
            tick = grid.bar_to_tick(int(bar))
            tempos = [c for c in tempos if c.tick != tick] + [TempoChange(tick, float(bpm))]
        return TempoMap(tempos, signatures)

    def _rebuild(self) -> None:
        # seconds at the start of each tempo segment
        self._ticks = [t.tick for t in self.tempos]
        self._secs = [0.0]
        for a, b in zip(self.tempos, self.tempos[1:]):
            self._secs.append(self._secs[-1] + (b.tick - a.tick) * 60.0 / (a.bpm * PPQ))
        # bar index at the start of each signature
        self._sig_ticks = [s.tick for s in self.signatures]
        self._sig_bars = [0]
        for a, b in zip(self.signatures, self.signatures[1:]):
            bars = -(-(b.tick - a.tick) // a.ticks_per_bar)  # a partial bar counts as one
            self._sig_bars.append(self._sig_bars[-1] + bars)

    # -- tempo ---------------------------------------------------------------
    def bpm_at(self, tick: float) -> float:
        """Tempo in BPM in force at ``tick``."""
        return self.tempos[max(0, bisect.bisect_right(self._ticks, tick) - 1)].bpm

    def signature_at(self, tick: float) -> TimeSignature:
        """Time signature in force at ``tick``."""
        return self.signatures[max(0, bisect.bisect_right(self._sig_ticks, tick) - 1)]

    # -- ticks <-> seconds ---------------------------------------------------
    def tick_to_seconds(self, tick: float) -> float:
        """Seconds from project start at ``tick`` (float ticks allowed)."""
        i = max(0, bisect.bisect_right(self._ticks, tick) - 1)
        t = self.tempos[i]
        return self._secs[i] + (tick - t.tick) * 60.0 / (t.bpm * PPQ)

    def seconds_to_tick(self, seconds: float) -> float:
        """Fractional tick at ``seconds`` from project start."""
        i = max(0, bisect.bisect_right(self._secs, seconds) - 1)
        t = self.tempos[i]
        return t.tick + (seconds - self._secs[i]) * t.bpm * PPQ / 60.0

    # -- ticks <-> samples ---------------------------------------------------
    def tick_to_sample(self, tick: float, sample_rate: int) -> int:
        """Sample index (rounded to nearest) of ``tick`` at ``sample_rate`` Hz."""
        return int(round(self.tick_to_seconds(tick) * sample_rate))

    def sample_to_tick(self, sample: float, sample_rate: int) -> int:
        """Tick (rounded to nearest) at sample index ``sample``."""
        return int(round(self.seconds_to_tick(sample / sample_rate)))

    # -- bars and beats -------------------------------------------------------
    def bar_to_tick(self, bar: int) -> int:
        """Tick of the start of ``bar`` (0-based bar index)."""
        i = max(0, bisect.bisect_right(self._sig_bars, bar) - 1)
        s = self.signatures[i]
        return s.tick + (bar - self._sig_bars[i]) * s.ticks_per_bar

    def bar_beat_at(self, tick: float) -> tuple[int, int, float]:
        """``(bar, beat, tick_in_beat)`` at ``tick``, all 0-based (bar 0 beat 0 = "1.1" in a DAW)."""
        i = max(0, bisect.bisect_right(self._sig_ticks, tick) - 1)
        s = self.signatures[i]
        rel = tick - s.tick
        bars, in_bar = divmod(rel, s.ticks_per_bar)
        beat, in_beat = divmod(in_bar, s.ticks_per_beat)
        return self._sig_bars[i] + int(bars), int(beat), float(in_beat)

    def grid_ticks(self, start_tick: float, end_tick: float, step: int) -> list[int]:
        """Grid lines every ``step`` ticks (e.g. PPQ for beats) in ``[start_tick, end_tick)``,
        restarted at each time-signature change so lines stay on bar lines."""
        out: list[int] = []
        for i, s in enumerate(self.signatures):
            seg_end = self.signatures[i + 1].tick if i + 1 < len(self.signatures) else float("inf")
            lo, hi = max(start_tick, s.tick), min(end_tick, seg_end)
            if lo >= hi:
                continue
            first = s.tick + -(-(lo - s.tick) // step) * step
            out.extend(range(int(first), int(hi) if hi != float("inf") else int(end_tick), step))
        return out

    # -- serialization ----------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "tempos": [{"tick": t.tick, "bpm": t.bpm} for t in self.tempos],
            "signatures": [
                {"tick": s.tick, "numerator": s.numerator, "denominator": s.denominator}
                for s in self.signatures
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TempoMap":
        """Inverse of :meth:`to_dict`. Raises ValueError/KeyError/TypeError on malformed data."""
        return cls(
            [TempoChange(int(t["tick"]), float(t["bpm"])) for t in d["tempos"]],
            [TimeSignature(int(s["tick"]), int(s["numerator"]), int(s["denominator"])) for s in d["signatures"]],
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TempoMap) and self.to_dict() == other.to_dict()


SIXTEENTH = PPQ // 4
"""Ticks of a sixteenth note."""


def format_position(tm: TempoMap, tick: int) -> str:
    """``"5.1.1"`` (bar.beat.sixteenth, from 1) for a tick on ``tm``, ``"5.1.1.120"`` when it
    lies 120 ticks past a sixteenth."""
    bar, beat, in_beat = tm.bar_beat_at(int(tick))
    six, rest = divmod(int(round(in_beat)), SIXTEENTH)
    text = f"{bar + 1}.{beat + 1}.{six + 1}"
    return f"{text}.{rest}" if rest else text
