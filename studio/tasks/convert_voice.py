"""Convert voice: a vocal (a track, or the selection) sung again in another voice, as a
take over exactly the same range. The voice is a name from the voices library
(``seed-studio voices list``) or a path to a voice model file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.base import ConvertVoiceSpec, JobResult, JobSpec
from studio.model.commands import Command, MacroCommand
from studio.tasks import music
from studio.tasks.base import Request, Target, Task, TaskError

CONSENT = "Converting someone's voice needs their consent."


def resolve_voice(voice: str, index: str | None = None) -> tuple[str, str | None]:
    """``(model file, index file or None)`` for a voice name from the library
    (:class:`studio.voices.VoiceLibrary`) or a path to a ``.pth``.

    Raises:
        TaskError: no such voice and no such file.
    """
    from studio.voices import VoiceLibrary, VoiceLibraryError

    try:
        model, idx = VoiceLibrary().resolve(voice, index)
    except VoiceLibraryError as exc:
        raise TaskError(f"{exc} (add voices with `seed-studio voices import`)") from None
    return str(model), (str(idx) if idx else None)


class ConvertVoiceTask(Task):
    """Voice conversion (RVC v2 voice models)."""

    name = "convert_voice"
    title = "Convert voice…"
    description = "Sing a vocal again in another voice (a take over the same range). " + CONSENT
    fields = {
        "voice": {"type": "string", "minLength": 1, "title": "Voice",
                  "description": "A voice from the voices library (its name, see `seed-studio voices list`) or a "
                                 "path to an RVC voice model (.pth)."},
        "index": {"type": ["string", "null"], "default": None, "title": "Feature index",
                  "description": "The voice's .index file; empty = the one stored with the voice."},
        "transpose": {"type": "number", "minimum": -24, "maximum": 24, "default": 0, "title": "Transpose (semitones)",
                      "description": "Shift the sung pitch, e.g. +12 for a male vocal to a female voice."},
    }
    required = ("voice",)

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        self.need_audio_track(project, target)
        resolve_voice(request.fields["voice"], request.fields.get("index"))

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        model, index = resolve_voice(request.fields["voice"], request.fields.get("index"))
        wav, region, _ = self.render_target(session, target, work_dir)
        return ConvertVoiceSpec(**request.spec_fields(), audio=wav, sample_rate=session.project.sample_rate,
                                region=region, target_voice=model, index_path=index,
                                transpose=float(request.fields["transpose"]))

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Command | None:
        if not media:
            return None
        item = media.get("audio") or next(iter(media.values()))
        s = int(spec.region[0])
        places = [{"name": "audio", "item": item, "start": s, "end": s + int(item.frames), "variation": 1,
                   "region": None}]
        prov = {**result.provenance.to_dict(), "voice": request.fields["voice"]}
        fields = {"prompt": Path(str(request.fields["voice"])).stem}
        cmds = music.takes_commands(target.track_id, places, prov, fields, request.model.id, spec)
        return MacroCommand(f"Convert voice of '{session.project.track(target.track_id).name}'", cmds)
