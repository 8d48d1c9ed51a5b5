"""Project-level analysis operations: the bridge from audio to the grid and to MIDI.

* :func:`tempo_map_from_beats` - a beat grid (tempo, beats, downbeats, meter) found in
  audio that starts at a timeline sample -> a :class:`~studio.model.timebase.TempoMap` whose
  bar lines fall on the downbeats (constant tempo, or one tempo per bar).
* :func:`analyze_track` / :func:`set_grid_from_track` - run the ``music-analysis``
  engine on a track's audio and set the project's tempo map (one undo step).
* :func:`midi_clip_from_notes` / :func:`add_transcription_track` /
  :func:`transcribe_track` - transcribe a track with ``basic-pitch`` (or
  ``fcpe-melody``) and add the notes as a MIDI clip on a new MIDI track, aligned with
  the source (one undo step).

Engines run in-process here (the CLI path; the app goes through ``studio.jobs.manager`` and
the engine host, whose results use the same data layout). Results enter the project
only through ``studio.model.edits`` commands pushed on the session's undo stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from studio.errors import StudioError
from studio.model.project import MidiClip, Note, PitchBend, Track
from studio.model.timebase import PPQ, TempoChange, TempoMap, TimeSignature

__all__ = ["AnalysisError", "GridFit", "tempo_map_from_beats", "track_span", "analyze_audio", "analyze_track",
           "set_grid_from_track", "midi_clip_from_notes", "add_transcription_track", "transcribe_audio",
           "transcribe_track", "BEND_RANGE_SEMITONES"]

BEND_RANGE_SEMITONES = 2.0
_SNAP_SECONDS = 0.06  # a first downbeat closer than this to the anchor is snapped onto it


class AnalysisError(StudioError):
    """An analysis could not be done (no audio on the track, no beats found, engine error)."""


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


# ------------------------------------------------------------------ tracks -> audio

def track_span(project: Any, track_id: str) -> tuple[int, int]:
    """``(start, end)`` timeline samples covered by an audio track's clips and takes
    (:meth:`studio.model.project.Project.audio_track_span`).

    Raises:
        AnalysisError: unknown track, not an audio track, or no clips.
    """
    try:
        return project.audio_track_span(track_id)
    except KeyError:
        raise AnalysisError(f"no track {track_id!r} in the project") from None
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None


def _track_audio(project: Any, pool: Any, track_id: str) -> tuple[np.ndarray, int]:
    from studio.audio.render import render_track_raw

    start, end = track_span(project, track_id)
    return np.asarray(render_track_raw(project, pool, track_id, start, end), dtype=np.float32), start


def _run_engine(engine_id: str, spec: Any, progress: Callable[[float], None] | None, engine: Any = None) -> Any:
    from engines.base import CancelToken, EngineError, ProgressReporter
    from engines.registry import get_engine_class

    reporter = ProgressReporter((lambda f, _stage, _eta: progress(f)) if progress else None)
    try:
        eng = engine if engine is not None else get_engine_class(engine_id)()
        if not eng.loaded:
            eng.load("cpu")
        return eng.run(spec, reporter, CancelToken())
    except EngineError as exc:
        raise AnalysisError(f"{engine_id}: {exc}") from exc


def analyze_audio(audio: np.ndarray, sample_rate: int, *, params: dict[str, Any] | None = None,
                  features: list[str] | None = None, progress: Callable[[float], None] | None = None,
                  engine: Any = None) -> dict[str, Any]:
    """Tempo, beats, meter and key of ``(channels, frames)`` audio with the ``music-analysis`` engine.

    Returns:
        the engine's ``JobResult.data`` (keys ``bpm``, ``beat_count``, ``time_signature``,
        ``beats``, ``key``, ``beat_tracker``), plus ``provenance``.

    Raises:
        AnalysisError: the engine failed (message says why).
    """
    from engines.base import AnalyzeSpec

    spec = AnalyzeSpec(engine_id="music-analysis", audio=np.asarray(audio, dtype=np.float32),
                       sample_rate=int(sample_rate), params=dict(params or {}), features=list(features or []))
    result = _run_engine("music-analysis", spec, progress, engine)
    return {**result.data, "provenance": result.provenance.to_dict()}


def analyze_track(session: Any, track_id: str, **kwargs: Any) -> tuple[dict[str, Any], int]:
    """:func:`analyze_audio` on a track's pre-fader audio. Returns ``(data, start_sample)``."""
    audio, start = _track_audio(session.project, session.pool, track_id)
    return analyze_audio(audio, session.project.sample_rate, **kwargs), start


def set_grid_from_track(session: Any, track_id: str, *, mode: str = "constant", params: dict[str, Any] | None = None,
                        progress: Callable[[float], None] | None = None, engine: Any = None) -> tuple[GridFit, dict]:
    """Analyse a track and set the project's tempo map and bar grid from it (one undo step).

    Args:
        session: a :class:`~studio.io.session.Session` (project, pool, undo_stack).
        track_id: an audio track.
        mode: ``"constant"`` or ``"varying"`` (see :func:`tempo_map_from_beats`).
        params: ``music-analysis`` engine parameters.

    Returns:
        ``(GridFit, analysis data)``.

    Raises:
        AnalysisError: no audio, no beats found, engine failure.
    """
    from studio.model import edits

    data, start = analyze_track(session, track_id, params=params, features=["beats"], progress=progress,
                                engine=engine)
    grid = data.get("beats") or {}
    if not grid.get("beats"):
        raise AnalysisError("no beats were found on the track; the grid is unchanged")
    num, den = data["time_signature"]
    fit = tempo_map_from_beats(np.asarray(grid["beats"]), np.asarray(grid["downbeats"]), float(data["bpm"]),
                               session.project.sample_rate, numerator=int(num), denominator=int(den),
                               start=start, mode=mode)
    session.undo_stack.push(edits.SetTempoMap(fit.tempo_map))
    return fit, data


# ------------------------------------------------------------------ notes -> MIDI

def midi_clip_from_notes(notes: list[dict[str, Any]], tempo_map: TempoMap, sample_rate: int, start: int,
                         length: int, *, name: str = "", pitch_bends: bool = True) -> MidiClip:
    """A MIDI clip from engine notes (``{pitch, velocity, start, length, pitch_bends}``, samples
    relative to ``start``), placed at timeline sample ``start`` and converted with the tempo map.

    Pitch bends (semitones) become 14-bit values for a +-2 semitone range, kept only for
    notes that overlap no other note (one bend wheel per channel) and reset after each note.
    """
    t0 = tempo_map.sample_to_tick(start, sample_rate)
    out_notes: list[Note] = []
    bends: list[PitchBend] = []
    spans = [(int(n["start"]), int(n["start"]) + int(n["length"])) for n in notes]
    for i, n in enumerate(notes):
        a = tempo_map.sample_to_tick(start + int(n["start"]), sample_rate) - t0
        b = tempo_map.sample_to_tick(start + int(n["start"]) + int(n["length"]), sample_rate) - t0
        out_notes.append(Note(int(n["pitch"]), int(np.clip(int(n["velocity"]), 1, 127)), int(a), max(1, int(b - a))))
        pb = n.get("pitch_bends") or []
        s, e = spans[i]
        alone = not any(j != i and spans[j][0] < e and s < spans[j][1] for j in range(len(spans)))
        if pitch_bends and pb and alone:
            last = None
            for pos, semis in pb:
                v = int(np.clip(round(float(semis) / BEND_RANGE_SEMITONES * 8191), -8192, 8191))
                if v != last:
                    tick = max(int(a), tempo_map.sample_to_tick(start + int(pos), sample_rate) - t0)
                    bends.append(PitchBend(int(tick), v))
                    last = v
            if last not in (None, 0):
                bends.append(PitchBend(int(a) + max(1, int(b - a)), 0))
    clip_len = max(1, tempo_map.sample_to_tick(start + int(length), sample_rate) - t0)
    bends.sort(key=lambda p: p.tick)
    return MidiClip(start=int(t0), length=int(clip_len), notes=out_notes, pitch_bends=bends, name=name)


def add_transcription_track(session: Any, notes: list[dict[str, Any]], start: int, length: int, *, name: str,
                            parent_id: str | None = None, program: int = 0,
                            provenance: dict[str, Any] | None = None) -> Track:
    """Add a new MIDI track holding one clip of ``notes`` aligned with timeline sample ``start``
    (one undo step: ``AddTrack``). Returns the track."""
    from studio.model import edits

    p = session.project
    clip = midi_clip_from_notes(notes, p.tempo_map, p.sample_rate, start, length, name=name)
    track = Track(name=name, kind="midi", clips=[clip], parent_id=parent_id, program=int(program))
    session.undo_stack.push(edits.AddTrack(track))
    return track


def transcribe_audio(audio: np.ndarray, sample_rate: int, *, engine_id: str = "basic-pitch",
                     params: dict[str, Any] | None = None, progress: Callable[[float], None] | None = None,
                     output_dir: str | None = None, engine: Any = None) -> Any:
    """Run a transcription engine (``basic-pitch`` or ``fcpe-melody``) on audio.

    Returns:
        the engine's ``JobResult`` (``data["notes"]``; ``files["midi"]`` with ``output_dir``).

    Raises:
        AnalysisError: engine failure.
    """
    from engines.base import TranscribeSpec

    spec = TranscribeSpec(engine_id=engine_id, audio=np.asarray(audio, dtype=np.float32), sample_rate=int(sample_rate),
                          params=dict(params or {}), output_dir=output_dir)
    return _run_engine(engine_id, spec, progress, engine)


def transcribe_track(session: Any, track_id: str, *, engine_id: str = "basic-pitch",
                     params: dict[str, Any] | None = None, progress: Callable[[float], None] | None = None,
                     engine: Any = None) -> Track:
    """Transcribe an audio track and add the notes on a new MIDI track aligned with it.

    The new track is named ``"<source> (MIDI)"`` and its ``parent_id`` is the source track.

    Raises:
        AnalysisError: no audio on the track, engine failure.
    """
    audio, start = _track_audio(session.project, session.pool, track_id)
    result = transcribe_audio(audio, session.project.sample_rate, engine_id=engine_id, params=params,
                              progress=progress, engine=engine)
    src = session.project.track(track_id)
    return add_transcription_track(session, result.data.get("notes") or [], start, audio.shape[-1],
                                   name=f"{src.name} (MIDI)", parent_id=track_id,
                                   provenance=result.provenance.to_dict())
