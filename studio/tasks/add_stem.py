"""Add a stem: generate one new instrument that fits the chosen context tracks (bass
under drums and keys, drums under a vocal...), time-aligned with them, as takes on a
new track.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import AddStemSpec, JobResult, JobSpec
from studio.jobs.inputs import render_input
from studio.model import edits
from studio.model.commands import Command, MacroCommand
from studio.tasks import music
from studio.tasks.base import Request, Target, Task, TaskError

INSTRUMENTS = ("bass", "drums", "guitar", "keys", "piano", "strings", "synth", "brass", "woodwinds", "vocals",
               "backing vocals", "percussion")


class AddStemTask(Task):
    """One new stem from the context of other stems."""

    name = "add_stem"
    title = "Add stem…"
    description = "Generate a new instrument track that fits the chosen tracks, aligned with them."
    fields = {
        "instrument": {"type": "string", "enum": list(INSTRUMENTS), "default": "bass", "title": "Instrument",
                       "description": "What to add."},
        **music.PROMPT_FIELDS, **music.CONTROL_FIELDS,
    }
    preferred_model = "acestep-v15-base"

    def _tracks(self, target: Target) -> list[str]:
        ids = list(dict.fromkeys(([target.track_id] if target.track_id else []) + list(target.track_ids)))
        if not ids:
            raise TaskError("choose the tracks the new stem should fit")
        return ids

    def _span(self, project: Any, target: Target) -> tuple[int, int]:
        if target.start is not None and target.end is not None:
            return int(target.start), int(target.end)
        spans = []
        for tid in self._tracks(target):
            try:
                spans.append(project.track_span(tid))
            except ValueError:
                continue
        if not spans:
            raise TaskError("the chosen tracks hold no audio")
        return min(s for s, _ in spans), max(e for _, e in spans)

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        for tid in self._tracks(target):
            try:
                project.track(tid)
            except KeyError:
                raise TaskError(f"no track {tid} in the project") from None
        s, e = self._span(project, target)
        if e <= s:
            raise TaskError("the range for the new stem is empty")

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        project = session.project
        s, e = self._span(project, target)
        wav = render_input(project, session.pool, self._tracks(target), s, e, work_dir)
        return AddStemSpec(**request.spec_fields(), audio=wav, sample_rate=project.sample_rate, region=(s, e),
                           instrument=request.fields["instrument"], **music.conditioning(project, s, request.fields),
                           controls=music.controls_for(session, request.fields, s, e, None))

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        project = session.project
        places = music.placements(spec, result, media)
        if not places:
            return None
        prov = {**result.provenance.to_dict(), "context_tracks": self._tracks(target)}
        ctx = [t for t in self._tracks(target) if t in {x.id for x in project.tracks}]
        index = max((project.track_index(t) for t in ctx), default=len(project.tracks) - 1) + 1
        track = music.new_track(str(request.fields["instrument"]).capitalize(), prov)
        cmds: list[Command] = [edits.AddTracks([track], index=index, label="Add stem track")]
        cmds += music.takes_commands(track.id, places, prov, request.fields, request.model.id, spec)
        return MacroCommand(f"Add {request.fields['instrument']}", cmds)
