"""Restyle: re-render a clip (or a MIDI track's rendered audio) in a new style, keeping
its melody and rhythm, as takes: on the same track for audio, on a new audio track
under a MIDI track.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import JobResult, JobSpec, RestyleSpec
from studio.jobs.inputs import render_input
from studio.model import edits
from studio.model.commands import Command, MacroCommand
from studio.tasks import music
from studio.tasks.base import Request, Target, Task, TaskError


class RestyleTask(Task):
    """Cover: the same music in a new style."""

    name = "restyle"
    title = "Restyle…"
    description = "Re-render a track or the selection in a new style, keeping its melody and rhythm."
    fields = {
        **music.PROMPT_FIELDS, **music.CONTROL_FIELDS,
        "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "title": "Strength",
                     "description": "0 = keep the source as it is, 1 = follow only the new prompt."},
    }
    preferred_model = "acestep-v15-xl-turbo"

    def check_fields(self, fields: dict[str, Any]) -> None:
        if not str(fields.get("prompt") or "").strip():
            raise TaskError("restyle needs a prompt: say what the new style is")

    def _span(self, project: Any, target: Target) -> tuple[int, int]:
        if target.start is not None and target.end is not None:
            return int(target.start), int(target.end)
        try:
            return project.track_span(target.track_id)
        except ValueError as exc:
            raise TaskError(str(exc)) from None

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        super().check_target(project, target, request)
        if target.track_id is None:
            raise TaskError("choose the track to restyle")
        s, e = self._span(project, target)
        if e <= s:
            raise TaskError("the range to restyle is empty")

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        project = session.project
        s, e = self._span(project, target)
        wav = render_input(project, session.pool, [target.track_id], s, e, work_dir)
        return RestyleSpec(**request.spec_fields(), audio=wav, sample_rate=project.sample_rate, region=(s, e),
                           strength=float(request.fields["strength"]),
                           **music.conditioning(project, s, request.fields),
                           controls=music.controls_for(session, request.fields, s, e, target.track_id))

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        project = session.project
        places = music.placements(spec, result, media)
        if not places:
            return None
        prov = result.provenance.to_dict()
        source = project.track(target.track_id)
        cmds: list[Command] = []
        track_id = source.id
        if source.kind != "audio":
            track = music.new_track(music.track_name(f"{source.name} restyled", request.fields), prov,
                                    parent_id=source.id)
            cmds.append(edits.AddTracks([track], index=project.track_index(source.id) + 1, label="Add restyle track"))
            track_id = track.id
        cmds += music.takes_commands(track_id, places, prov, request.fields, request.model.id, spec)
        return MacroCommand(f"Restyle '{source.name}'", cmds)
