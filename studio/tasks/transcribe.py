"""Transcribe: a track's audio to MIDI notes on a new MIDI track, aligned with the source.

:func:`midi_clip_from_notes` converts engine notes (samples) into a MIDI clip at the
project's tempo map (pitch bends for notes that overlap no other note); the same
function writes the MIDI file of a transcribed audio file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engines.base import JobResult, JobSpec, TranscribeSpec
from studio.model import edits
from studio.model.commands import Command, MacroCommand
from studio.model.project import MidiClip, Note, PitchBend, Track
from studio.model.timebase import TempoMap  # noqa: F401 - type of tempo_map
from studio.tasks.base import Request, Target, Task, TaskError

BEND_RANGE_SEMITONES = 2.0


def midi_clip_from_notes(notes: list[dict[str, Any]], tempo_map: TempoMap, sample_rate: int, start: int,
                         length: int, *, name: str = "", pitch_bends: bool = True) -> MidiClip:
    """A MIDI clip from engine notes (``{pitch, velocity, start, length, pitch_bends}``, samples
    relative to ``start``), placed at timeline sample ``start`` and converted with the tempo map.

    Pitch bends (semitones) become 14-bit values for a +-2 semitone range, kept only for
    notes that overlap no other note (one bend wheel per channel) and reset after each note.
    """
    t0 = tempo_map.sample_to_tick(start, sample_rate)
    out_notes: list[Note] = []
    bends: list[PitchBend] = []
    spans = [(int(n["start"]), int(n["start"]) + int(n["length"])) for n in notes]
    for i, n in enumerate(notes):
        a = tempo_map.sample_to_tick(start + int(n["start"]), sample_rate) - t0
        b = tempo_map.sample_to_tick(start + int(n["start"]) + int(n["length"]), sample_rate) - t0
        out_notes.append(Note(int(n["pitch"]), int(np.clip(int(n["velocity"]), 1, 127)), int(a), max(1, int(b - a))))
        pb = n.get("pitch_bends") or []
        s, e = spans[i]
        alone = not any(j != i and spans[j][0] < e and s < spans[j][1] for j in range(len(spans)))
        if pitch_bends and pb and alone:
            last = None
            for pos, semis in pb:
                v = int(np.clip(round(float(semis) / BEND_RANGE_SEMITONES * 8191), -8192, 8191))
                if v != last:
                    tick = max(int(a), tempo_map.sample_to_tick(start + int(pos), sample_rate) - t0)
                    bends.append(PitchBend(int(tick), v))
                    last = v
            if last not in (None, 0):
                bends.append(PitchBend(int(a) + max(1, int(b - a)), 0))
    clip_len = max(1, tempo_map.sample_to_tick(start + int(length), sample_rate) - t0)
    bends.sort(key=lambda p: p.tick)
    return MidiClip(start=int(t0), length=int(clip_len), notes=out_notes, pitch_bends=bends, name=name)


class TranscribeTask(Task):
    """Audio to MIDI: polyphonic (basic-pitch) or a monophonic melody (FCPE)."""

    name = "transcribe"
    title = "Audio to MIDI…"
    description = "Transcribe a track's notes onto a new MIDI track aligned with it."
    fields = {}
    preferred_model = "basic-pitch-icassp2022"

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        self.need_audio_track(project, target)

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        wav, region, _ = self.render_target(session, target, work_dir)
        return TranscribeSpec(**request.spec_fields(), audio=wav, sample_rate=session.project.sample_rate,
                              region=region)

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        project = session.project
        start, end = spec.region if spec.region else target.span(project)
        try:
            src = project.track(target.track_id)
        except KeyError:
            raise TaskError("the transcribed track is gone") from None
        notes = result.data.get("notes") or []
        clip = midi_clip_from_notes(notes, project.tempo_map, project.sample_rate, int(start), int(end) - int(start),
                                    name=f"{src.name} (MIDI)")
        track = Track(name=f"{src.name} (MIDI)", kind="midi", parent_id=src.id, clips=[clip],
                      provenance=result.provenance.to_dict())
        index = project.track_index(src.id) + 1
        return MacroCommand(f"Transcribe '{src.name}'", [edits.AddTracks([track], index=index,
                                                                         label=f"Add MIDI of '{src.name}'")])

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        return f"{len(result.data.get('notes') or [])} notes"
