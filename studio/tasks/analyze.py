"""Analyze: tempo, beats, meter and key of a track; optionally the project's grid from it.

:func:`tempo_map_from_beats` fits a :class:`~studio.model.timebase.TempoMap` to detected
beats so that bar lines fall on the downbeats (constant tempo, or one tempo per bar).
The task's ``set_grid`` field decides whether the result changes the project: ``"no"``
(the default) only reports tempo, meter and key; ``"constant"`` or ``"varying"`` set
the tempo map (and the project key) as ONE undoable step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import AnalyzeSpec, JobResult, JobSpec
from studio.model import edits
from studio.model.commands import Command, MacroCommand
from studio.model.timebase import PPQ, TempoChange, TempoMap, TimeSignature
from studio.tasks.base import Request, Target, Task, TaskError

_SNAP_SECONDS = 0.06  # a first downbeat closer than this to the anchor is snapped onto it
MIN_GRID_BPM, MAX_GRID_BPM = 40.0, 240.0
"""An analysis outside this tempo range never sets the grid (it is a detection error)."""


@dataclass
class GridFit:
    """How a tempo map was fitted to beats.

    Attributes:
        tempo_map: the new map.
        first_downbeat: timeline sample of the downbeat placed on a bar line.
        pickup_beats: beats before it (a partial first bar when not a multiple of the meter).
        max_error: largest distance (samples) between a detected downbeat and the nearest
            bar line of the new map, over the analysed range.
    """

    tempo_map: TempoMap
    first_downbeat: int
    pickup_beats: int
    max_error: int


def tempo_map_from_beats(beats: np.ndarray, downbeats: np.ndarray, bpm: float, sample_rate: int, *,
                         numerator: int = 4, denominator: int = 4, start: int = 0,
                         mode: str = "constant") -> GridFit:
    """Fit a tempo map to detected beats so that bar lines fall on the downbeats.

    Args:
        beats, downbeats: positions in samples at ``sample_rate`` relative to ``start``.
        bpm: the global tempo (quarter notes per minute).
        sample_rate: Hz of the positions and of the project.
        numerator, denominator: the meter; a beat is one ``1/denominator`` note.
        start: timeline sample where the analysed audio begins.
        mode: ``"constant"`` (one tempo) or ``"varying"`` (one tempo per detected bar,
            so every detected downbeat sits exactly on a bar line).

    Returns:
        :class:`GridFit`. Before the first downbeat the grid counts back whole beats
        from it; the leftover at the project start becomes one shorter beat (or is
        merged into the next beat when under 60 ms), and the beats before the first
        full bar form a pickup bar (a time signature of ``k/denominator``).

    Raises:
        ValueError: bad tempo, meter or mode.
    """
    if mode not in ("constant", "varying"):
        raise ValueError(f"tempo map mode must be 'constant' or 'varying', got {mode!r}")
    if not (0 < bpm <= 1000) or not np.isfinite(bpm):
        raise ValueError(f"tempo must be within (0, 1000] BPM, got {bpm}")
    if not (1 <= numerator <= 64) or denominator not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f"invalid time signature {numerator}/{denominator}")
    sr = int(sample_rate)
    beat_ticks = PPQ * 4 // denominator
    quarters_per_beat = 4.0 / denominator
    beat_len = sr * 60.0 / bpm * quarters_per_beat  # samples per beat
    down = np.asarray(downbeats, dtype=np.float64) + start
    bts = np.asarray(beats, dtype=np.float64) + start
    anchor = float(down[0]) if down.size else (float(bts[0]) if bts.size else float(start))

    # beats before the anchor, counted back from it
    j = int(np.floor(anchor / beat_len + 1e-9))
    pre = anchor - j * beat_len  # leftover at the project start, 0 <= pre < beat_len
    tempos: list[TempoChange] = []
    if pre < _SNAP_SECONDS * sr:
        if j >= 1:
            first = beat_len + pre  # merge the sliver into the first beat
            n_pre = j
        else:
            first, n_pre, anchor = 0.0, 0, 0.0  # snap: the downbeat is at the project start
    else:
        first = pre
        n_pre = j + 1
    if first > 0 and abs(first - beat_len) > 0.5:
        tempos.append(TempoChange(0, _bpm(first, sr, quarters_per_beat)))
        tempos.append(TempoChange(beat_ticks, float(bpm)))
    else:
        tempos.append(TempoChange(0, float(bpm)))
    anchor_tick = n_pre * beat_ticks

    if mode == "varying" and down.size >= 2:
        bar_ticks = beat_ticks * numerator
        d = down[down >= anchor - 0.5]
        tick = anchor_tick
        for a, b in zip(d[:-1], d[1:]):
            bars = max(1, int(round((b - a) / (beat_len * numerator))))  # tolerate a missed downbeat
            per_bar = (b - a) / bars
            tempos = [t for t in tempos if t.tick < tick]
            tempos.append(TempoChange(tick, _bpm(per_bar / numerator, sr, quarters_per_beat)))
            tick += bars * bar_ticks

    k = n_pre % numerator
    if k:
        sigs = [TimeSignature(0, k, denominator), TimeSignature(k * beat_ticks, numerator, denominator)]
    else:
        sigs = [TimeSignature(0, numerator, denominator)]
    tm = TempoMap(_dedupe(tempos), sigs)

    err = 0
    if down.size:
        bar_ticks = beat_ticks * numerator
        for dpos in down[down >= anchor - 0.5]:
            t = tm.seconds_to_tick(dpos / sr)
            nearest = anchor_tick + round((t - anchor_tick) / bar_ticks) * bar_ticks
            err = max(err, abs(tm.tick_to_sample(nearest, sr) - int(round(dpos))))
    return GridFit(tempo_map=tm, first_downbeat=int(round(anchor)), pickup_beats=int(n_pre), max_error=int(err))


def _bpm(beat_samples: float, sr: int, quarters_per_beat: float) -> float:
    return float(min(1000.0, 60.0 * sr / beat_samples * quarters_per_beat))


def _dedupe(tempos: list[TempoChange]) -> list[TempoChange]:
    out: list[TempoChange] = []
    for t in sorted(tempos, key=lambda t: t.tick):
        if out and out[-1].tick == t.tick:
            out[-1] = t
        elif not out or abs(out[-1].bpm - t.bpm) > 1e-6:
            out.append(t)
    return out


class AnalyzeTask(Task):
    """Tempo, beats, downbeats, meter (Beat This! or the DSP tracker) and key."""

    name = "analyze"
    title = "Analyze tempo and key…"
    description = "Find the tempo, beats, meter and key of a track; optionally set the project's grid from it."
    fields = {
        "set_grid": {"type": "string", "enum": ["no", "constant", "varying"], "default": "no",
                     "title": "Set the project grid",
                     "description": "no = only report; constant = one tempo with bar lines on the downbeats; "
                                    "varying = one tempo per bar, every downbeat on a bar line."},
    }
    preferred_model = "beat-this-final0"

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        self.need_audio_track(project, target)

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        wav, region, _ = self.render_target(session, target, work_dir)
        return AnalyzeSpec(**request.spec_fields(), audio=wav, sample_rate=session.project.sample_rate,
                           region=region, features=["beats", "key"])

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        mode = request.fields.get("set_grid", "no")
        if mode == "no":
            return None
        data = result.data
        bpm = data.get("bpm", data.get("tempo"))
        if not bpm:
            raise TaskError("no tempo was found on the track; the grid is unchanged")
        bpm = float(bpm)
        if not MIN_GRID_BPM <= bpm <= MAX_GRID_BPM:
            raise TaskError(f"the detected tempo, {bpm:.1f} BPM, is outside {MIN_GRID_BPM:g}-{MAX_GRID_BPM:g} BPM; "
                            "the grid is unchanged (set the tempo by hand: Transport > Tempo and Meter)")
        num, den = data.get("time_signature") or (4, 4)
        grid = data.get("beats") if isinstance(data.get("beats"), dict) else {}
        if grid.get("beats"):
            start = spec.region[0] if spec.region else 0
            tempo_map = tempo_map_from_beats(np.asarray(grid["beats"]), np.asarray(grid.get("downbeats") or []),
                                             bpm, session.project.sample_rate, numerator=int(num),
                                             denominator=int(den), start=int(start), mode=mode).tempo_map
        else:  # a tempo without a beat grid: bar 1 at the project start
            tempo_map = TempoMap.constant(bpm, int(num), int(den))
        cmds: list[Command] = [edits.SetTempoMap(tempo_map)]
        key = (data.get("key") or {}).get("name")
        if key:
            cmds.append(edits.SetProjectProperty("key", str(key)))
        return MacroCommand(f"Set the grid from the analysis ({bpm:.1f} BPM, {num}/{den})", cmds)

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        d = result.data
        num, den = d.get("time_signature") or (4, 4)
        key = (d.get("key") or {}).get("name") or "unknown key"
        bpm = d.get("bpm")
        tempo = f"{float(bpm):.1f} BPM" if bpm else "tempo unknown"
        return f"{tempo}, {num}/{den}, {key}, {d.get('beat_count', 0)} beats ({d.get('beat_tracker', '?')})"
