"""Separate: a track (or a range of it) into stem tracks, aligned sample-exactly.

The result is ONE undoable step: the stems enter the media pool, one new audio track
per stem goes right after the source (``parent_id`` = the source, stem colours), each
stem is the active take over the separated range with the engine's provenance, and the
source goes quiet where the stems play: muted for a whole-track separation, or, for a
range, an empty active take over exactly that range, so the rest of the song still
plays from the source (the stems plus the source then null against the original over
the whole song).

A stem's clip starts at the range start and plays media frame ``i`` at timeline sample
``start + i``; engines return exactly the range's frame count at the project rate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from engines.base import JobResult, JobSpec, SeparateSpec
from engines.records import ModelRecord
from studio.model import edits
from studio.model.commands import Command, MacroCommand
from studio.model.project import TRACK_COLOURS, AudioClip, MediaItem, Take, Track
from studio.tasks.base import Request, Target, Task, TaskError

STEM_COLOURS = {
    "vocals": "#e5533d", "drums": "#f0a030", "bass": "#4a6fe3", "other": "#3fb68b",
    "guitar": "#8e5ae0", "piano": "#e8d23a", "instrumental": "#35a7d6",
}
"""Track colour per stem name (others cycle through ``TRACK_COLOURS``)."""

DEFAULT_REGION_CONTEXT_SECONDS = 1.0
"""Context rendered on each side of a region so the model hears what surrounds it."""


DEFAULT_REGION_CONTEXT_SECONDS = 1.0
"""Context rendered on each side of a range so the model hears what surrounds it."""


def _colour(stem: str, k: int) -> str:
    return STEM_COLOURS.get(stem, TRACK_COLOURS[k % len(TRACK_COLOURS)])


class SeparateTask(Task):
    """Split a track into stems (HT-Demucs, its fine-tuned bag, the 6-stem model, or the
    offline DSP fallback)."""

    name = "separate"
    title = "Separate stems…"
    description = "Split a track (or the selected range of it) into stems, each on its own track."
    fields = {
        "stems": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "default": [],
                  "title": "Stems", "description": "Stems to keep, e.g. vocals or vocals,drums (the rest is summed "
                  "into one complement stem such as 'instrumental'); empty = every stem of the model."},
        "context_seconds": {"type": "number", "minimum": 0, "maximum": 30, "default": DEFAULT_REGION_CONTEXT_SECONDS,
                            "title": "Context (s)", "description": "Audio rendered on each side of a range so "
                            "the model hears what surrounds it (trimmed from the stems)."},
    }
    model_aliases = {"dsp": "dsp-hpss-centre", "dsp-separation": "dsp-hpss-centre"}
    preferred_model = "htdemucs"

    def field_schema(self, model: ModelRecord | None = None) -> dict[str, dict[str, Any]]:
        """The stems field lists the chosen model's stems."""
        f = super().field_schema(model)
        if model is not None and model.outputs:
            f["stems"]["items"] = {"type": "string", "enum": list(model.outputs)}
        return f

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        self.need_audio_track(project, target)

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        sr = session.project.sample_rate
        whole = target.start is None and target.end is None
        ctx = 0 if whole else int(round(float(request.fields["context_seconds"]) * sr))
        wav, region, context = self.render_target(session, target, work_dir, ctx)
        return SeparateSpec(**request.spec_fields(), audio=wav, sample_rate=sr, region=region, context=context,
                            stems=list(request.fields["stems"]))

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        start, end = spec.region if spec.region else target.span(session.project)
        whole = target.start is None and target.end is None
        return stem_tracks_command(session.project, target.track_id, int(start), media,
                                   result.provenance.to_dict(), whole_track=whole)

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        names = list(result.stored) or list(result.outputs)
        return f"{len(names)} stem(s): {', '.join(names)}"


def stem_tracks_command(project: Any, source_track_id: str, start: int, items: Mapping[str, MediaItem],
                        provenance: Mapping[str, Any] | None = None, *, whole_track: bool = True,
                        label: str | None = None) -> Command:
    """The undoable step that adds stems (already in the media pool) under their source.

    One track per stem right after the source (after stems of earlier separations),
    ``parent_id`` = source, stem colours; each stem the active take over
    ``[start, start + frames)`` with the provenance (``stem``, ``source_track`` and
    ``range`` added); the source muted (``whole_track``) or silenced over the range only
    (an empty active take, so the rest of the song still plays from it).

    Args:
        items: stem name -> :class:`~studio.model.project.MediaItem` (all the same length).
        start: timeline sample where the stems begin.

    Raises:
        TaskError: unknown source track, no stems, stems of different lengths, a start
            before the project start.
    """
    try:
        source = project.track(source_track_id)
    except KeyError:
        raise TaskError(f"the source track of the separation is gone ({source_track_id})") from None
    if not items:
        raise TaskError("the separation returned no stems")
    lengths = sorted({i.frames for i in items.values()})
    if len(lengths) != 1:
        raise TaskError(f"stems have different lengths: {lengths}")
    if start < 0:
        raise TaskError(f"a stem can't start before the project start ({start})")
    frames = lengths[0]
    end = start + frames
    provs = {}
    for name in items:
        prov = dict(provenance or {})
        prov.update({"stem": name, "source_track": source.id, "range": [start, end]})
        provs[name] = prov
    short = source.name if len(source.name) <= 18 else source.name[:17] + "…"
    tracks = [Track(name=f"{name.capitalize()} ({short})", kind="audio", colour=_colour(name, k),
                    parent_id=source.id, provenance=provs[name])
              for k, name in enumerate(items)]
    index = project.track_index(source.id) + 1
    while index < len(project.tracks) and project.tracks[index].parent_id == source.id:
        index += 1  # after stems of an earlier separation
    cmds: list[Command] = [edits.AddMedia(item) for item in items.values()]
    cmds.append(edits.AddTracks(tracks, index=index, label=f"Add stems of '{source.name}'"))
    for track, (name, item) in zip(tracks, items.items()):
        prov = provs[name]
        clip = AudioClip(media_id=item.id, start=start, offset=0, length=item.frames, name=name)
        take = Take(name=str(prov.get("model_id") or prov.get("engine_id") or name), clips=[clip], provenance=prov)
        cmds.append(edits.AddTake(track.id, start, end, take, activate=True))
    if whole_track:
        if not source.mute:
            cmds.append(edits.SetTrackProperty(source.id, "mute", True))
    else:
        silent = Take(name="separated (stems play here)", clips=[],
                      provenance={"task": "separate", "range": [start, end]})
        cmds.append(edits.AddTake(source.id, start, end, silent, activate=True))
    return MacroCommand(label or f"Separate '{source.name}'", cmds)
