"""Time-varying controls of a generative job (Music ControlNet: melody, dynamics, rhythm),
taken from a drawn lane, from another track's audio, or from a MIDI clip.

A request's ``controls`` field maps a control kind to ``{"source": ..., "strength": ...}``:

* ``"lane"``: the target track's own control lane of that kind (``"lane:<track id>"``: the
  lane of another track);
* ``"track:<track id>"``: the features of that track's audio (its pre-fader render);
* ``"clip:<clip id>"``: a MIDI clip (notes -> chroma and onsets, velocities -> dynamics).

:func:`control_targets` turns them into :class:`engines.base.ControlTarget` dicts for the
job's spec. Every target covers the job's timeline at the feature frame rate
(``sample_rate / engines.features.HOP_LENGTH``), frame 0 at the job's first frame
(:func:`studio.tasks.music.input_start`), and carries its own time range (``start``,
``end`` in samples from that first frame): where the source has something to say, so a
control may cover part of the song only. Values:

* melody: ``(12, T)`` one-hot pitch class per frame (all zero = no melody there);
* dynamics: ``(T,)`` loudness in dB (A-weighted, smoothed; -60 dB floor);
* rhythm: ``(T,)`` onset activation 0..1.

Features come from :mod:`engines.features` (the same numpy functions whose torch twins
the engines use as guidance losses).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engines.base import ControlTarget
from studio.tasks.base import TaskError

KINDS = ("melody", "dynamics", "rhythm")
FLOOR_DB = -60.0

CONTROL_FIELD: dict[str, Any] = {
    "type": "object", "default": {}, "title": "Controls", "x-widget": "controls",
    "description": "Time-varying controls: melody, dynamics and rhythm from a drawn lane (lane), a track's audio "
                   "(track:ID) or a MIDI clip (clip:ID), each with a strength.",
    "properties": {
        k: {"type": "object", "required": ["source"], "additionalProperties": False, "properties": {
            "source": {"type": "string", "pattern": "^(lane|lane:.+|track:.+|clip:.+)$",
                       "x-pattern-words": "lane, lane:TRACK, track:TRACK or clip:CLIP"},
            "strength": {"type": "number", "minimum": 0, "maximum": 10, "default": 1.0}}}
        for k in KINDS},
    "additionalProperties": False,
}
"""The ``controls`` request field of the generative tasks."""


def source_tracks(project: Any, controls: dict[str, Any] | None) -> list[str]:
    """Track ids the controls read (so a job's project snapshot includes them)."""
    ids = []
    for req in (controls or {}).values():
        what, _, ref = str(req.get("source", "")).partition(":")
        if what in ("track", "lane") and ref:
            ids.append(ref)
        elif what == "clip" and ref:
            try:
                ids.append(project.find_clip(ref)[0].id)
            except KeyError:
                continue
    return ids


def _frames(n_samples: int, hop: int) -> int:
    return 1 + int(n_samples) // hop


def _from_audio(kind: str, audio: np.ndarray, sr: int, hop: int) -> np.ndarray:
    from engines import features as F

    if kind == "melody":
        return F.melody_one_hot(F.chroma(audio, sr, hop_length=hop))
    if kind == "dynamics":
        return np.maximum(F.loudness_db(audio, sr, hop_length=hop), FLOOR_DB).astype(np.float32)
    onset = F.onset_strength(audio, sr, hop_length=hop)
    peak = float(onset.max()) if onset.size else 0.0
    return (onset / peak if peak > 0 else onset).astype(np.float32)


def _audio_extent(audio: np.ndarray, sr: int) -> tuple[int, int] | None:
    """First and last sample (exclusive) above -60 dBFS, or None when silent."""
    loud = np.nonzero(np.max(np.abs(audio), axis=0) > 10 ** (FLOOR_DB / 20))[0]
    return (int(loud[0]), int(loud[-1]) + 1) if loud.size else None


def _from_midi(kind: str, project: Any, clip: Any, t0: int, n: int, hop: int) -> np.ndarray:
    tm, sr = project.tempo_map, project.sample_rate
    notes = [(tm.tick_to_sample(clip.start + x.start, sr) - t0, tm.tick_to_sample(clip.start + x.end, sr) - t0,
              x.pitch, x.velocity) for x in clip.notes]
    times = np.arange(n, dtype=np.int64) * hop
    if kind == "rhythm":
        out = np.zeros(n, np.float32)
        for a, _b, _p, v in notes:
            k = int(round(a / hop))
            if 0 <= k < n:
                out[k] = max(out[k], min(1.0, 0.5 + v / 254))
        return out
    if kind == "melody":
        out = np.zeros((12, n), np.float32)
        top = np.full(n, -1, np.int64)
        for a, b, p, _v in notes:
            on = (times >= a) & (times < b)
            top[on] = np.maximum(top[on], p)
        voiced = top >= 0
        out[top[voiced] % 12, np.nonzero(voiced)[0]] = 1.0
        return out
    db = np.full(n, FLOOR_DB, np.float32)
    for a, b, _p, v in notes:
        on = (times >= a) & (times < b)
        db[on] = np.maximum(db[on], 40 * np.log10(max(1, v) / 127.0))  # the usual MIDI volume curve
    return db


def _from_lane(kind: str, points: list[list[float]], t0: int, n: int, hop: int) -> np.ndarray:
    times = t0 + np.arange(n, dtype=np.int64) * hop
    pts = sorted((int(s), float(v)) for s, v in points)
    xs = np.array([p[0] for p in pts], np.float64)
    vs = np.array([p[1] for p in pts], np.float64)
    if kind == "rhythm":
        out = np.zeros(n, np.float32)
        for s, v in pts:
            k = int(round((s - t0) / hop))
            if 0 <= k < n:
                out[k] = max(out[k], min(1.0, v / 2.0 if v > 1 else v))
        return out
    if kind == "dynamics":  # drawn like automation: straight lines between the points
        return np.interp(times, xs, vs).astype(np.float32)
    idx = np.searchsorted(xs, times, side="right") - 1  # melody is a step curve
    pc = np.where(idx >= 0, vs[np.clip(idx, 0, len(vs) - 1)], -1).astype(np.int64)
    out = np.zeros((12, n), np.float32)
    voiced = (pc >= 0) & (pc < 12)
    out[pc[voiced], np.nonzero(voiced)[0]] = 1.0
    return out


def control_targets(project: Any, pool: Any, controls: dict[str, Any], t0: int, t1: int,
                    target_track_id: str | None, origin: int = 0) -> dict[str, dict[str, Any]]:
    """ControlTarget dicts (:meth:`engines.base.ControlTarget.to_dict`) for a job whose
    timeline runs over ``[t0, t1)`` timeline samples.

    Args:
        controls: the request's ``controls`` field.
        target_track_id: the track whose lanes ``"lane"`` means (None: give ``lane:<id>``).
        origin: where ``t0`` lies relative to the first frame of the job's audio, in
            samples (``ControlTarget.origin``: negative for an extension before a clip).

    Raises:
        TaskError: an unknown track, clip or lane, a lane or clip of the wrong kind, or a
            source with nothing in the job's time range.
    """
    from engines.features import HOP_LENGTH
    from studio.jobs.inputs import render_tracks
    from studio.model.project import MidiClip

    sr, hop = project.sample_rate, HOP_LENGTH
    n = _frames(t1 - t0, hop)
    out: dict[str, dict[str, Any]] = {}
    for kind, req in (controls or {}).items():
        if kind not in KINDS:
            raise TaskError(f"unknown control '{kind}' (controls: {', '.join(KINDS)})")
        source, strength = str(req["source"]), float(req.get("strength", 1.0))
        what, _, ref = source.partition(":")
        if what == "lane":
            tid = ref or target_track_id
            if tid is None:
                raise TaskError(f"the {kind} control 'lane' needs a track: use lane:<track>")
            try:
                lane = project.track(tid).control_lanes.get(kind)
            except KeyError:
                raise TaskError(f"no track {tid} for the {kind} lane") from None
            if lane is None or not lane.points:
                raise TaskError(f"track '{project.track(tid).name}' has no drawn {kind} lane")
            values = _from_lane(kind, lane.points, t0, n, hop)
            lo, hi = min(p[0] for p in lane.points), max(p[0] for p in lane.points)
            extent = (int(lo) - t0, int(hi) - t0 + (hop if kind != "dynamics" else 0))
        elif what == "clip":
            try:
                _track, clip, _ = project.find_clip(ref)
            except KeyError:
                raise TaskError(f"no clip {ref} for the {kind} control") from None
            if not isinstance(clip, MidiClip):
                raise TaskError(f"the {kind} control needs a MIDI clip; '{clip.name}' is audio (use track:<id>)")
            values = _from_midi(kind, project, clip, t0, n, hop)
            a, b = project.clip_span(clip)
            extent = (a - t0, b - t0)
        elif what == "track":
            try:
                project.track(ref)
            except KeyError:
                raise TaskError(f"no track {ref} for the {kind} control") from None
            audio = render_tracks(project, pool, [ref], t0, t1)
            values = _from_audio(kind, audio, sr, hop)
            ext = _audio_extent(audio, sr)
            if ext is None:
                raise TaskError(f"track '{project.track(ref).name}' is silent where the result goes")
            extent = ext
        else:  # pragma: no cover - the schema's pattern refuses it
            raise TaskError(f"unknown control source '{source}'")
        start, end = max(0, int(extent[0])), min(int(t1 - t0), int(extent[1]))
        if end <= start:
            raise TaskError(f"the {kind} source ({source}) has nothing where the result goes")
        values = values[..., :n]
        out[kind] = ControlTarget(kind=kind, values=values, frame_rate=sr / hop, start=start, end=end,
                                  strength=strength, origin=int(origin)).to_dict()
        out[kind]["source"] = source
    return out
