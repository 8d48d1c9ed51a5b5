"""The documented limits of a project (see "Limits" in README.md).

Every number a project accepts is bounded, so that arithmetic on positions never
overflows, a render never tries to allocate terabytes and the timeline can always
draw what it holds. Past a limit the core raises a plain-words error naming the file
(or the edit) and the limit; nothing is changed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from studio.model.project import Project

MAX_PROJECT_SECONDS = 24 * 3600
"""A project (every clip, take, region and loop) ends within 24 hours of its start."""

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
"""Project sample rates, Hz."""

MIN_BPM = 1.0
MAX_BPM = 1000.0
"""Tempo range, quarter notes per minute."""

MAX_SAMPLES = MAX_PROJECT_SECONDS * MAX_SAMPLE_RATE
"""The largest sample position any project can hold (24 h at 192 kHz)."""
MAX_TICKS = 2**31 - 1
"""The largest tick position any project can hold (24 h at 1000 BPM is 1.38e9 ticks)."""

MAX_PROJECT_JSON_BYTES = 128 * 1024 * 1024
"""``project.json`` (and each autosave) is refused above this size (128 MiB)."""
MAX_JSON_DEPTH = 64
"""``project.json`` is refused when nested deeper than this (the model itself needs ~12)."""
MAX_TEXT_CHARS = 100_000
"""Longest string in ``project.json`` (names, provenance text)."""

MAX_MIDI_FILE_BYTES = 64 * 1024 * 1024
"""A MIDI file larger than this is refused on import (64 MiB)."""

LARGE_IMPORT_BYTES = 1_000_000_000
"""An import that will store more than this in the media folder (1 GB) is announced
before it starts (the CLI prints a warning; the app asks)."""


def max_samples(sample_rate: int) -> int:
    """The longest project at ``sample_rate`` Hz, in samples (24 h)."""
    return int(MAX_PROJECT_SECONDS * int(sample_rate))


def describe_seconds(seconds: float) -> str:
    """``90061.5`` -> ``"25 h 1 min 1.5 s"`` (for messages)."""
    seconds = float(seconds)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return f"{seconds} s"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    sign = "-" if seconds < 0 else ""
    if h:
        return f"{sign}{int(h)} h {int(m)} min {s:.0f} s"
    if m:
        return f"{sign}{int(m)} min {s:.1f} s"
    return f"{sign}{s:.3g} s"


def length_problem(project: "Project") -> str | None:
    """What in ``project`` passes the 24 h limit, in plain words, or None when all is within it.

    Checks every clip (own and take clips; MIDI through the tempo map), take group,
    region, the loop and the control-lane points.
    """
    sr = project.sample_rate
    limit = max_samples(sr)
    tm = project.tempo_map

    def past(end: int) -> bool:
        return end > limit

    def where(end: int) -> str:
        return f"ends at {describe_seconds(end / sr)}, past the {MAX_PROJECT_SECONDS // 3600} h limit"

    for track in project.tracks:
        for clip in track.all_clips():
            if hasattr(clip, "media_id"):
                start, end = clip.start, clip.start + clip.length
            else:
                if clip.start + clip.length > MAX_TICKS:
                    return f"MIDI clip '{clip.name or clip.id}' on track '{track.name}' is longer than any song"
                start, end = tm.tick_to_sample(clip.start, sr), tm.tick_to_sample(clip.start + clip.length, sr)
                for n in clip.notes:
                    if n.start + n.length > MAX_TICKS:
                        return f"a note in MIDI clip '{clip.name or clip.id}' on track '{track.name}' is too long"
            if start < -limit or past(end):
                return f"clip '{clip.name or clip.id}' on track '{track.name}' {where(end)}"
        for g in track.take_groups:
            if past(g.end) or g.start < -limit:
                return f"a take group on track '{track.name}' {where(g.end)}"
        for lane in track.control_lanes.values():
            for point in lane.points:
                if past(int(point[0])) or point[0] < -limit:
                    return f"the {lane.kind} lane of track '{track.name}' {where(int(point[0]))}"
    for r in list(project.regions) + ([project.loop] if project.loop else []):
        if past(r.end):
            return f"region '{r.name}' {where(r.end)}"
    return None
