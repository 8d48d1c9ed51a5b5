"""Generate: new music from a prompt, N variations as takes on a new track, placed
sample-exactly at the playhead or the selection start, with a length in bars that is
exact at the project's tempo map.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import GenerateSpec, JobResult, JobSpec
from studio.model import edits
from studio.model.commands import Command, MacroCommand
from studio.tasks import music
from studio.tasks.base import Request, Target, Task, TaskError

DEFAULT_BARS = 8


class GenerateTask(Task):
    """Text to music."""

    name = "generate"
    title = "Generate…"
    description = ("Make new music from a prompt (and lyrics): N variations as takes on a new track, at the "
                   "playhead or the selection, on the project's grid.")
    fields = {**music.PROMPT_FIELDS, **music.LENGTH_FIELDS, **music.CONTROL_FIELDS}
    preferred_model = "acestep-v15-xl-turbo"

    def check_fields(self, fields: dict[str, Any]) -> None:
        music.check_length(fields)
        if not str(fields.get("prompt") or "").strip() and not str(fields.get("lyrics") or "").strip():
            raise TaskError("generate needs a prompt (or lyrics): say what the music should be")

    def input_tracks(self, project: Any, target: Target, request: Request) -> list[str]:
        return []

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        if target.start is not None and int(target.start) < 0:
            raise TaskError("the result can't start before the project start")

    def _range(self, project: Any, target: Target, request: Request) -> tuple[int, int]:
        start = int(target.start or 0)
        sel = int(target.end) - start if target.end is not None else None
        frames = music.length_frames(project, start, request.fields, DEFAULT_BARS, sel)
        if frames <= 0:
            raise TaskError("the length to generate is empty")
        return start, start + frames

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        project = session.project
        start, end = self._range(project, target, request)
        return GenerateSpec(**request.spec_fields(), sample_rate=project.sample_rate, region=(start, end),
                            frames=end - start, **music.conditioning(project, start, request.fields),
                            controls=music.controls_for(session, request.fields, start, end, target.track_id))

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        places = music.placements(spec, result, media)
        if not places:
            return None
        prov = result.provenance.to_dict()
        track = music.new_track(music.track_name("Generated", request.fields), prov)
        cmds: list[Command] = [edits.AddTracks([track], label="Add generated track")]
        cmds += music.takes_commands(track.id, places, prov, request.fields, request.model.id, spec)
        return MacroCommand(f"Generate '{request.fields.get('prompt') or 'music'}'", cmds)

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        n = len(result.stored) or len(result.outputs)
        return f"{n} take(s) of {spec.frames / max(1, spec.sample_rate or 1):.2f} s"
