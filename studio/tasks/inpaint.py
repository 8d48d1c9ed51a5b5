"""Inpaint: regenerate one or more regions of a track so they join their context. The
engine hears at least ``context_seconds`` on each side (where the song has it); each
region gets N variations as takes over exactly that range, so the musician can comp
them, and outside the regions nothing is replaced (bit-identical).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import InpaintSpec, JobResult, JobSpec
from studio.jobs.inputs import render_input
from studio.model.commands import Command, MacroCommand
from studio.tasks import music
from studio.tasks.base import Request, Target, Task, TaskError


class InpaintTask(Task):
    """Regenerate regions of a track."""

    name = "inpaint"
    title = "Inpaint region…"
    description = "Regenerate the selected region(s) of a track so they join their context seamlessly."
    fields = {
        **music.PROMPT_FIELDS, **music.CONTROL_FIELDS,
        "context_seconds": {"type": "number", "minimum": 0, "maximum": 120, "default": 10, "title": "Context (s)",
                            "description": "Audio the model hears on each side of the regions."},
        "match_loudness": {"type": "boolean", "default": True, "title": "Match loudness",
                           "description": "Match each region's loudness to its surroundings."},
    }
    preferred_model = "acestep-v15-xl-turbo"

    def _regions(self, target: Target) -> list[tuple[int, int]]:
        if target.regions:
            regs = sorted((int(a), int(b)) for a, b in target.regions)
        elif target.start is not None and target.end is not None:
            regs = [(int(target.start), int(target.end))]
        else:
            raise TaskError("select the region(s) to inpaint")
        for (a, b), nxt in zip(regs, regs[1:] + [None]):
            if b <= a or a < 0:
                raise TaskError(f"the region {a}..{b} samples is empty")
            if nxt is not None and nxt[0] < b:
                raise TaskError("the regions to inpaint overlap")
        return regs

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        regs = self._regions(target)
        self.need_audio_track(project, Target(target.track_id, regs[0][0], regs[-1][1]))

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        project = session.project
        regs = self._regions(target)
        ctx = int(round(float(request.fields["context_seconds"]) * project.sample_rate))
        try:
            song_end = max(project.audio_track_span(target.track_id)[1], regs[-1][1])
        except ValueError:
            song_end = regs[-1][1]
        a, b = max(0, regs[0][0] - ctx), min(song_end, regs[-1][1] + ctx)
        b = max(b, regs[-1][1])
        wav = render_input(project, session.pool, [target.track_id], a, b, work_dir)
        fields = {k: v for k, v in request.fields.items() if k in music.PROMPT_FIELDS}
        return InpaintSpec(**request.spec_fields(), audio=wav, sample_rate=project.sample_rate,
                           region=(regs[0][0], regs[-1][1]), context=(regs[0][0] - a, b - regs[-1][1]),
                           regions=[(x - a, y - a) for x, y in regs],
                           match_loudness=bool(request.fields["match_loudness"]),
                           **music.conditioning(project, regs[0][0], fields),
                           controls=music.controls_for(session, request.fields, a, b, target.track_id))

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        places = music.placements(spec, result, media)
        if not places:
            return None
        prov = result.provenance.to_dict()
        cmds = music.takes_commands(target.track_id, places, prov, request.fields, request.model.id, spec)
        return MacroCommand(f"Inpaint '{session.project.track(target.track_id).name}'", cmds)

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        n = len(result.stored) or len(result.outputs)
        return f"{n} take(s) over {len(spec.regions)} region(s)"
