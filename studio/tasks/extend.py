"""Extend: continue a clip after its end (or before its start) by N bars. The clip (up to
the model's context) is the source; the new audio is N variations of new clips starting
exactly at the old clip's end (or ending exactly at its start), as takes on the clip's
track. The original clip is untouched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import ExtendSpec, JobResult, JobSpec
from studio.jobs.inputs import render_input
from studio.model.commands import Command, MacroCommand
from studio.tasks import music
from studio.tasks.base import Request, Target, Task, TaskError

DEFAULT_BARS = 4


class ExtendTask(Task):
    """Continue a clip."""

    name = "extend"
    title = "Extend…"
    description = "Continue a clip after its end (or before its start) by N bars; the clip itself is untouched."
    fields = {
        **music.PROMPT_FIELDS, **music.LENGTH_FIELDS, **music.CONTROL_FIELDS,
        "direction": {"type": "string", "enum": ["after", "before"], "default": "after", "title": "Direction",
                      "description": "after = continue past the clip's end; before = lead into its start."},
        "context_seconds": {"type": "number", "minimum": 1, "maximum": 570, "default": 30, "title": "Context (s)",
                            "description": "How much of the clip the model hears next to the new material."},
    }
    preferred_model = "acestep-v15-xl-turbo"

    def check_fields(self, fields: dict[str, Any]) -> None:
        music.check_length(fields)

    def _clip(self, project: Any, target: Target) -> tuple[str, int, int]:
        """``(track_id, clip_start, clip_end)`` of the clip to extend."""
        if target.clip_id:
            try:
                track, clip, _ = project.find_clip(target.clip_id)
            except KeyError:
                raise TaskError("the clip to extend is gone") from None
            s, e = project.clip_span(clip)
            return track.id, s, e
        if target.track_id is None:
            raise TaskError("choose the clip (or track) to extend")
        s, e = target.span(project)
        return target.track_id, s, e

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        track_id, s, e = self._clip(project, target)
        if project.track(track_id).kind != "audio":
            raise TaskError(f"track '{project.track(track_id).name}' is a MIDI track; extend an audio clip")
        if e <= s:
            raise TaskError("the clip to extend is empty")

    def input_tracks(self, project: Any, target: Target, request: Request) -> list[str]:
        return [self._clip(project, target)[0]]

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        project = session.project
        track_id, s, e = self._clip(project, target)
        ctx = int(round(float(request.fields["context_seconds"]) * project.sample_rate))
        after = request.fields["direction"] == "after"
        if after:
            frames = music.length_frames(project, e, request.fields, DEFAULT_BARS)
            a, b = max(s, e - ctx), e
            at = e
        else:
            if request.fields.get("seconds") is not None:
                frames = int(round(float(request.fields["seconds"]) * project.sample_rate))
            else:
                frames = music.frames_before_bars(project, s, float(request.fields.get("bars") or DEFAULT_BARS))
            if s - frames < 0:
                raise TaskError("the extension would start before the project start; extend after, or move the clip")
            a, b = s, min(e, s + ctx)
            at = s - frames
        wav = render_input(project, session.pool, [track_id], a, b, work_dir)
        t0, t1 = min(a, at), max(b, at + frames)
        controls = music.controls_for(session, request.fields, t0, t1, track_id, origin=t0 - a)
        return ExtendSpec(**request.spec_fields(), audio=wav, sample_rate=project.sample_rate, region=(a, b),
                          frames=frames, direction=request.fields["direction"],
                          **music.conditioning(project, at, request.fields), controls=controls)

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        project = session.project
        track_id, _s, _e = self._clip(project, target)
        places = music.placements(spec, result, media)
        if not places:
            return None
        prov = result.provenance.to_dict()
        cmds = music.takes_commands(track_id, places, prov, request.fields, request.model.id, spec)
        return MacroCommand(f"Extend '{project.track(track_id).name}'", cmds)

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        n = len(result.stored) or len(result.outputs)
        return f"{n} take(s) of {spec.frames / max(1, spec.sample_rate or 1):.2f} s {spec.direction} the clip"
