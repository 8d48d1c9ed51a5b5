"""What the generative tasks share: the musical fields of a request, lengths in bars that
are exact at the project's tempo map, the conditioning taken from the project, and the
takes a result becomes.

A generative engine returns outputs ``take1..takeN`` (one per variation; inpaint with
several regions ``take{v}_region{r}``) with ``data["placements"][name]["offset"]``: frames
from the first frame of the job's input audio. The input starts at timeline sample
``spec.region[0] - spec.context[0]`` (generate: at ``spec.region[0]``), so every take
lands sample-exactly.
"""
from __future__ import annotations

from typing import Any

from engines.base import JobResult, JobSpec
from studio.model import edits
from studio.model.commands import Command
from studio.model.project import AudioClip, Take, Track
from studio.tasks.base import TaskError

PROMPT_FIELDS: dict[str, dict[str, Any]] = {
    "prompt": {"type": "string", "default": "", "title": "Prompt",
               "description": "What the music should be: style, instruments, mood (e.g. 'warm lo-fi piano, "
                              "brushed drums')."},
    "lyrics": {"type": "string", "default": "", "title": "Lyrics", "x-widget": "multiline",
               "description": "Lyrics with optional [verse]/[chorus] tags; empty = none, [instrumental] = no vocals."},
    "language": {"type": "string", "default": "en", "title": "Vocal language",
                 "description": "Language of the lyrics, as a code: en, de, fr, es, ja, zh..."},
    "variations": {"type": "integer", "minimum": 1, "maximum": 8, "default": 2, "title": "Variations",
                   "description": "How many different takes to make in one go; each lands in the take lanes."},
    "bpm": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 400, "default": None, "title": "Tempo (BPM)",
            "description": "Tempo to ask for; empty = the project's tempo where the result goes."},
    "key": {"type": ["string", "null"], "default": None, "title": "Key",
            "description": "Key to ask for, e.g. 'E minor'; empty = the project's key (if known)."},
    "time_signature": {"type": ["string", "null"], "pattern": "^[0-9]{1,2}/(1|2|4|8|16)$", "default": None,
                       "title": "Meter", "description": "Meter to ask for, e.g. 3/4; empty = the project's meter."},
}
"""Prompt, lyrics, variations and the musical conditioning, shared by the generative tasks."""

from studio.tasks.controls import CONTROL_FIELD  # noqa: E402

CONTROL_FIELDS: dict[str, dict[str, Any]] = {"controls": CONTROL_FIELD}
"""The time-varying controls of the generative tasks (see :mod:`studio.tasks.controls`)."""


def controls_for(session: Any, request_fields: dict[str, Any], t0: int, t1: int, track_id: str | None,
                 origin: int = 0) -> dict[str, Any]:
    """The spec's ``controls`` for a job over ``[t0, t1)`` (see :func:`studio.tasks.controls.control_targets`)."""
    from studio.tasks.controls import control_targets

    if not request_fields.get("controls"):
        return {}
    return control_targets(session.project, session.pool, request_fields["controls"], t0, t1, track_id, origin)

LENGTH_FIELDS: dict[str, dict[str, Any]] = {
    "bars": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1000, "default": None, "title": "Bars",
             "description": "Length in bars, exact at the project's tempo map (tempo and meter changes included)."},
    "seconds": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 600, "default": None,
                "title": "Seconds", "description": "Length in seconds (instead of bars)."},
}
"""Length in bars or seconds (give one)."""


def check_length(fields: dict[str, Any]) -> None:
    """Refuse a request that gives both bars and seconds.

    Raises:
        TaskError: both are given.
    """
    if fields.get("bars") is not None and fields.get("seconds") is not None:
        raise TaskError("give the length in bars or in seconds, not both")


def frames_for_bars(project: Any, start: int, bars: float) -> int:
    """Frames of ``bars`` bars starting at timeline sample ``start``, exact at the tempo map.

    The bar count is laid on the grid: from a bar line, ``bars`` whole bars end on a bar
    line (a meter change in between is followed); from inside a bar, the same number of
    ticks as those bars. Fractions of a bar are fractions of the bar they fall in.

    Raises:
        TaskError: non-positive length or start before the project start.
    """
    if bars <= 0 or start < 0:
        raise TaskError(f"a length of {bars} bars from sample {start} is empty")
    tm, sr = project.tempo_map, project.sample_rate
    t0 = tm.sample_to_tick(start, sr)
    bar, beat, in_beat = tm.bar_beat_at(t0)
    whole = int(bars)
    frac = float(bars) - whole
    b0 = tm.bar_to_tick(bar)
    t_end = t0 + (tm.bar_to_tick(bar + whole) - b0)
    if frac > 0:
        nb = tm.bar_beat_at(t_end)[0]
        t_end += frac * (tm.bar_to_tick(nb + 1) - tm.bar_to_tick(nb))
    return int(tm.tick_to_sample(t_end, sr)) - int(start)


def frames_before_bars(project: Any, end: int, bars: float) -> int:
    """Frames of ``bars`` bars that END at timeline sample ``end`` (for extending a clip
    before its start); exact at the tempo map.

    Raises:
        TaskError: the bars would start before the project start.
    """
    tm, sr = project.tempo_map, project.sample_rate
    t1 = tm.sample_to_tick(end, sr)
    bar = tm.bar_beat_at(t1)[0]
    whole = int(bars)
    frac = float(bars) - whole
    b1 = tm.bar_to_tick(bar)
    if bar - whole < 0:
        raise TaskError(f"{bars} bars before this clip would start before the project start")
    t_start = t1 - (b1 - tm.bar_to_tick(bar - whole))
    if frac > 0:
        pb = max(0, tm.bar_beat_at(max(0, t_start - 1))[0])
        t_start -= frac * (tm.bar_to_tick(pb + 1) - tm.bar_to_tick(pb))
    if t_start < 0:
        raise TaskError(f"{bars} bars before this clip would start before the project start")
    return int(end) - int(tm.tick_to_sample(t_start, sr))


def length_frames(project: Any, start: int, fields: dict[str, Any], default_bars: float,
                  default_frames: int | None = None) -> int:
    """Frames of the length a request asks for from ``start``: bars, seconds, else
    ``default_frames`` (e.g. the selection's length), else ``default_bars``."""
    if fields.get("seconds") is not None:
        return int(round(float(fields["seconds"]) * project.sample_rate))
    if fields.get("bars") is not None:
        return frames_for_bars(project, start, float(fields["bars"]))
    if default_frames:
        return int(default_frames)
    return frames_for_bars(project, start, default_bars)


def conditioning(project: Any, at: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The MusicSpec conditioning fields for a result at timeline sample ``at``: the
    request's prompt, lyrics, language and variations, and its tempo, key and meter, or
    else the project's (tempo and meter where the result goes; the project key)."""
    tm = project.tempo_map
    tick = tm.sample_to_tick(max(0, int(at)), project.sample_rate)
    sig = tm.signature_at(tick)
    return {
        "prompt": str(fields.get("prompt") or ""),
        "lyrics": str(fields.get("lyrics") or ""),
        "language": str(fields.get("language") or "en"),
        "variations": int(fields.get("variations") or 1),
        "bpm": float(fields["bpm"]) if fields.get("bpm") else float(tm.bpm_at(tick)),
        "key": fields.get("key") or getattr(project, "key", None),
        "time_signature": fields.get("time_signature") or f"{sig.numerator}/{sig.denominator}",
    }


def input_start(spec: JobSpec) -> int:
    """Timeline sample of the first frame of the job's input audio (or of a generate's start)."""
    if spec.region is None:
        return 0
    return int(spec.region[0]) - int(spec.context[0])


def placements(spec: JobSpec, result: JobResult, media: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each output goes, sorted by region then variation: dicts with ``name``,
    ``item`` (the MediaItem), ``start`` (timeline sample), ``end``, ``variation``, ``region``.

    Raises:
        TaskError: an output has no placement or would start before the project start.
    """
    info = result.data.get("placements") or {}
    base = input_start(spec)
    out = []
    for name, item in media.items():
        p = info.get(name)
        if p is None:
            raise TaskError(f"the engine returned '{name}' without saying where it goes")
        start = base + int(p.get("offset", 0))
        if start < 0:
            raise TaskError(f"the result '{name}' would start before the project start")
        out.append({"name": name, "item": item, "start": start, "end": start + int(item.frames),
                    "variation": int(p.get("variation") or 1), "region": p.get("region")})
    out.sort(key=lambda d: (d["region"] or 0, d["variation"], d["start"]))
    return out


def take_name(request_fields: dict[str, Any], model_id: str, variation: int) -> str:
    """``"<prompt, short> v2 (model)"``."""
    prompt = str(request_fields.get("prompt") or "").strip()
    short = (prompt[:24] + "…") if len(prompt) > 25 else prompt
    return f"{short + ' ' if short else ''}v{variation} ({model_id})"


CONDITIONING = ("prompt", "lyrics", "language", "bpm", "key", "time_signature", "instrument", "strength",
                "transpose", "direction")


def spec_conditioning(spec: JobSpec) -> dict[str, Any]:
    """What the engine was asked for, musically (prompt, lyrics, tempo, key, meter...):
    kept in every take's provenance next to the engine's own record."""
    return {k: getattr(spec, k) for k in CONDITIONING if hasattr(spec, k)}


def takes_commands(track_id: str, places: list[dict[str, Any]], provenance: dict[str, Any],
                   fields: dict[str, Any], model_id: str, spec: JobSpec | None = None) -> list[Command]:
    """``AddMedia`` for every output and one ``AddTake`` per output on ``track_id`` over its
    range; the first variation of each range is the active take. Each take's provenance
    adds its variation, its range and (with ``spec``) the conditioning the job used."""
    cmds: list[Command] = [edits.AddMedia(p["item"]) for p in places]
    seen: set[tuple[int, int]] = set()
    cond = spec_conditioning(spec) if spec is not None else {}
    for p in places:
        rng = (p["start"], p["end"])
        prov = {**provenance, "variation": p["variation"], "range": list(rng), "output": p["name"]}
        if cond:
            prov["conditioning"] = dict(cond)
        if p["region"] is not None:
            prov["region_index"] = p["region"]
        clip = AudioClip(media_id=p["item"].id, start=p["start"], offset=0, length=int(p["item"].frames),
                         name=take_name(fields, model_id, p["variation"]))
        take = Take(name=clip.name, clips=[clip], provenance=prov)
        cmds.append(edits.AddTake(track_id, p["start"], p["end"], take, activate=rng not in seen))
        seen.add(rng)
    return cmds


def new_track(name: str, provenance: dict[str, Any], parent_id: str | None = None) -> Track:
    """An empty audio track for generated takes."""
    return Track(name=name, kind="audio", parent_id=parent_id, provenance=dict(provenance))


def track_name(prefix: str, fields: dict[str, Any]) -> str:
    """``"<prefix>: <prompt, short>"`` or the prefix alone."""
    prompt = str(fields.get("prompt") or "").strip()
    if not prompt:
        return prefix
    return f"{prefix}: {prompt[:28] + '…' if len(prompt) > 29 else prompt}"
