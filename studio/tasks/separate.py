"""Separating a project track (or a region of it) into stem tracks, undoably.

* :func:`separate_track` renders the source track's audio (pre-fader, the job input
  path of :mod:`studio.audio.render`), runs a separation engine in this process, and adds the
  result with :func:`add_stem_tracks`.
* :func:`add_stem_tracks` is the project glue on its own (also usable for a result that
  came back from the engine host): ONE undo group that adds the stems to the media
  pool and the project (``AddMedia``), one new audio track per stem right after the
  source (``AddTracks``, ``parent_id`` = the source track), each stem as the active take
  over the separated range, carrying the engine's provenance (``AddTake``), and mutes
  the source (``SetTrackProperty``). One undo removes all of it.

Stems are aligned sample-exactly: a stem's clip starts at the region start and plays
media frame ``i`` at timeline sample ``start + i``; the engines return exactly the
region's frame count at the project rate.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from studio.model import edits
from studio.errors import StudioError
from studio.model.project import TRACK_COLOURS, AudioClip, MediaItem, Take, Track

STEM_COLOURS = {
    "vocals": "#e5533d", "drums": "#f0a030", "bass": "#4a6fe3", "other": "#3fb68b",
    "guitar": "#8e5ae0", "piano": "#e8d23a", "instrumental": "#35a7d6",
}
"""Track colour per stem name (others cycle through ``TRACK_COLOURS``)."""

DEFAULT_REGION_CONTEXT_SECONDS = 1.0
"""Context rendered on each side of a region so the model hears what surrounds it."""


class SeparationError(StudioError):
    """Separation of a project track failed (bad track or range, engine error, no model)."""


def _colour(stem: str, k: int) -> str:
    return STEM_COLOURS.get(stem, TRACK_COLOURS[k % len(TRACK_COLOURS)])


def _source(project: Any, source_track_id: str, stems: Mapping[str, Any]) -> Track:
    """The source track of a separation. Raises SeparationError: unknown track, or no stems."""
    try:
        source = project.track(source_track_id)
    except KeyError:
        raise SeparationError(f"no track {source_track_id} in the project") from None
    if not stems:
        raise SeparationError("the separation returned no stems")
    return source


def add_stem_tracks(
    undo_stack: Any,
    pool: Any,
    source_track_id: str,
    start: int,
    stems: Mapping[str, np.ndarray],
    sample_rate: int,
    provenance: Mapping[str, Any] | None = None,
    *,
    label: str | None = None,
) -> list[Track]:
    """Add separated stems as tracks grouped under the source, in one undo step.

    Args:
        undo_stack: the project's :class:`~studio.model.commands.UndoStack`.
        pool: the bundle's :class:`~studio.media.pool.MediaPool` (stems are imported into it).
        source_track_id: the separated track; it becomes the stems' parent and is muted.
        start: timeline sample where the separated range begins.
        stems: stem name -> ``(channels, frames)`` float32, all the same frame count.
        sample_rate: rate of ``stems`` in Hz (resampled by the pool if it differs from
            the project rate; the range is then measured after import).
        provenance: the engine's provenance dict, stored in each stem's take (with
            ``stem``, ``source_track`` and ``range`` added).
        label: undo label; default ``"Separate '<source name>'"``.

    Returns:
        The new tracks, in the order of ``stems``.

    Raises:
        SeparationError: unknown source track, no stems, stems of different lengths.
        AudioFileError: a stem holds NaN/Inf (from the media pool); nothing is added.
        CommandError: the project rejected an edit; the group is rolled back.
    """
    source = _source(undo_stack.project, source_track_id, stems)
    lengths = {np.shape(a)[-1] for a in stems.values()}
    if len(lengths) != 1:
        raise SeparationError(f"stems have different lengths: {sorted(lengths)}")
    start = int(start)
    if start < 0:
        raise SeparationError(f"a stem can't start before the project start ({start})")
    items = {name: pool.import_array(np.asarray(a, dtype=np.float32), int(sample_rate),
                                     name=f"{source.name} {name}") for name, a in stems.items()}
    return add_stem_items(undo_stack, source.id, start, items, provenance, label=label)


def add_stem_items(
    undo_stack: Any,
    source_track_id: str,
    start: int,
    items: Mapping[str, MediaItem],
    provenance: Mapping[str, Any] | None = None,
    *,
    label: str | None = None,
) -> list[Track]:
    """Add stems already in the media pool as tracks grouped under the source, in one undo
    step: one track per stem right after the source (``parent_id`` = source, stem colours),
    each stem the active take over its range with the engine's provenance, source muted.

    Args:
        items: stem name -> :class:`~studio.model.project.MediaItem` (all the same length).
        start: timeline sample where the stems begin.
        provenance: stored in each take and track (with ``stem``, ``source_track``, ``range``).

    Raises:
        SeparationError: unknown source track, no stems, stems of different lengths.
        CommandError: the project rejected an edit; the group is rolled back.
    """
    project = undo_stack.project
    source = _source(project, source_track_id, items)
    if len({i.frames for i in items.values()}) != 1:
        raise SeparationError(f"stems have different lengths: {sorted({i.frames for i in items.values()})}")
    frames = next(iter(items.values())).frames
    end = start + frames
    provs = {}
    for name in items:
        prov = dict(provenance or {})
        prov.update({"stem": name, "source_track": source.id, "range": [start, end]})
        provs[name] = prov
    tracks = [
        Track(name=f"{source.name} {name}", kind="audio", colour=_colour(name, k), parent_id=source.id,
              provenance=provs[name])
        for k, name in enumerate(items)
    ]
    index = project.track_index(source.id) + 1
    while index < len(project.tracks) and project.tracks[index].parent_id == source.id:
        index += 1  # after stems of an earlier separation
    with undo_stack.group(label or f"Separate '{source.name}'"):
        for item in items.values():
            undo_stack.push(edits.AddMedia(item))
        undo_stack.push(edits.AddTracks(tracks, index=index, label=f"Add stems of '{source.name}'"))
        for track, (name, item) in zip(tracks, items.items()):
            prov = provs[name]
            clip = AudioClip(media_id=item.id, start=start, offset=0, length=item.frames, name=name)
            take = Take(name=str(prov.get("model_id") or prov.get("engine_id") or name), clips=[clip], provenance=prov)
            undo_stack.push(edits.AddTake(track.id, start, end, take, activate=True))
        if not source.mute:
            undo_stack.push(edits.SetTrackProperty(source.id, "mute", True))
    return tracks


def track_extent(project: Any, track_id: str) -> tuple[int, int]:
    """``(start, end)`` samples covered by a track's clips and takes
    (:meth:`studio.model.project.Project.audio_track_span`).

    Raises:
        SeparationError: unknown track, MIDI track, or no audio on it.
    """
    try:
        return project.audio_track_span(track_id)
    except KeyError:
        raise SeparationError(f"no track {track_id} in the project") from None
    except ValueError as exc:
        raise SeparationError(str(exc)) from None


def separate_track(
    session: Any,
    track_id: str,
    *,
    engine_id: str = "htdemucs",
    model_id: str | None = None,
    stems: list[str] | None = None,
    params: dict[str, Any] | None = None,
    start: int | None = None,
    end: int | None = None,
    context: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    engine: Any = None,
    progress: Callable[[float, str], Any] | None = None,
    cancel: Any = None,
) -> list[Track]:
    """Separate a track (or ``[start, end)`` samples of it) into stem tracks, in this process.

    Args:
        session: anything with ``project``, ``pool`` and ``undo_stack`` (a
            :class:`~studio.io.session.Session`).
        track_id: the source audio track.
        engine_id: registry id of a separation engine ("htdemucs", "dsp-separation").
        model_id: model record id (default: the engine's first model).
        stems: wanted stems (e.g. ``["vocals"]`` -> vocals + instrumental); None = all.
        params: engine parameters (see the engine's ``param_schema``).
        start, end: the range in samples; default the extent of the track's audio.
        context: samples rendered on each side of the range and trimmed by the engine;
            default 1 s for a partial range, 0 for the whole track.
        device, dtype: overrides of the device policy (:mod:`engines.devices`).
        seed: engine seed (shift offsets).
        engine: an already loaded engine instance to use instead of a new one.
        progress: ``progress(fraction, stage)``.
        cancel: an :class:`engines.base.CancelToken`.

    Returns:
        The new stem tracks (see :func:`add_stem_tracks`).

    Raises:
        SeparationError: bad track or range, or an engine error (message and hint).
        JobCancelled: cancelled (the project is unchanged).
        RenderError: the source refers to missing media.
    """
    from engines import base
    from engines.devices import choose_device, choose_dtype
    from engines.registry import get_engine_class, get_entry
    from studio.audio.render import render_track_raw

    project, pool = session.project, session.pool
    t0, t1 = track_extent(project, track_id)
    whole = start is None and end is None
    start = t0 if start is None else int(start)
    end = t1 if end is None else int(end)
    if end <= start or start < 0:
        raise SeparationError(f"the range {start}..{end} samples is empty")
    sr = int(project.sample_rate)
    if context is None:
        context = 0 if whole else int(DEFAULT_REGION_CONTEXT_SECONDS * sr)
    a, b = max(0, start - int(context)), end + int(context)
    audio = render_track_raw(project, pool, track_id, a, b)
    try:
        entry = get_entry(engine_id)
        if engine is None:
            engine = get_engine_class(engine_id)()
            dev = choose_device(device, tuple(getattr(engine, "devices", ("cpu",))))
            engine.load(dev, choose_dtype(dev, tuple(engine.dtypes), dtype))
        spec = base.SeparateSpec(
            engine_id=engine_id, model_id=model_id or (entry.models[0] if entry.models else None),
            audio=audio, sample_rate=sr, region=(start, end), context=(start - a, b - end),
            params=dict(params or {}), seed=int(seed), stems=list(stems or []),
        )
        reporter = base.ProgressReporter((lambda f, s, eta: progress(f, s)) if progress else None)
        result = engine.run(spec, reporter, cancel or base.CancelToken())
    except base.JobCancelled:
        raise
    except base.EngineError as exc:
        raise SeparationError(str(exc)) from exc
    outputs = {name: result.load_output(name)[0] for name in result.outputs}
    return add_stem_tracks(session.undo_stack, pool, track_id, start, outputs, int(result.sample_rate or sr),
                           result.provenance.to_dict())
