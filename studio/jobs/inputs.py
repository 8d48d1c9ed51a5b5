"""Job inputs: the audio of project tracks rendered into a job's temp folder, and the small
project snapshot a worker thread renders from.

Every input goes through :func:`studio.audio.render.render_track_raw` (the app's render
path: clip gain and fades, active takes; no track gain, pan, mute or effects), so a job
hears exactly what the timeline holds, and a muted source still separates.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from engines.base import write_output
from studio.errors import StudioError


class InputError(StudioError):
    """A job input can't be rendered (unknown track, empty range)."""


def render_tracks(project: Any, pool: Any, track_ids: Iterable[str], start: int, end: int) -> np.ndarray:
    """The sum of the given tracks' pre-fader audio over ``[start, end)`` samples.

    Returns:
        ``(2, end - start)`` float32 at ``project.sample_rate``.

    Raises:
        InputError: unknown track or empty range. RenderError: missing media (from render).
    """
    from studio.audio.render import render_track_raw

    start, end = int(start), int(end)
    if end <= start or start < 0:
        raise InputError(f"the range {start}..{end} samples is empty")
    out = np.zeros((2, end - start), np.float32)
    for tid in track_ids:
        try:
            project.track(tid)
        except KeyError:
            raise InputError(f"no track {tid} in the project") from None
        out += np.asarray(render_track_raw(project, pool, tid, start, end), dtype=np.float32)
    return out


def render_input(project: Any, pool: Any, track_ids: Iterable[str], start: int, end: int, work_dir: str | Path,
                 name: str = "input") -> str:
    """Render :func:`render_tracks` into ``work_dir/<name>.wav`` (32-bit float, atomic) and
    return its path, for a :class:`~engines.base.JobSpec`'s ``audio``."""
    audio = render_tracks(project, pool, track_ids, start, end)
    return write_output(audio, project.sample_rate, work_dir, name)


def snapshot(project: Any, track_ids: Iterable[str]) -> Any:
    """A small copy of ``project`` for rendering job inputs off the owner's thread: the
    tempo map, the key, the media table and deep copies of the given tracks only (later
    edits don't change a job already asked for, and a big project is not copied whole)."""
    from studio.model.project import Project

    ids = list(dict.fromkeys(track_ids))
    tracks = [copy.deepcopy(project.track(t)) for t in ids]
    return Project(name=project.name, sample_rate=project.sample_rate, tempo_map=copy.deepcopy(project.tempo_map),
                   tracks=tracks, media=dict(project.media), key=project.key, id=project.id)
