"""Job specs: one dataclass per task, JSON-serialisable for the trip to the engine host."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engines.base.audio import _decode_audio, _encode_audio, load_audio
from engines.base.errors import InvalidJob
from engines.base.tasks import ANALYZE, CONVERT_VOICE, EXTEND, GENERATE, INPAINT, SEPARATE, TRANSCRIBE

# --------------------------------------------------------------------------- job specs

_SPEC_TYPES: dict[str, type[JobSpec]] = {}


@dataclass
class JobSpec:
    """What an engine should do. One subclass per task; ``task`` names it.

    Attributes:
        engine_id: the registry id of the engine (``engines.registry``).
        model_id: the model record to use (``engines.models``); None = engine default.
        audio: the input: a path to a WAV file (written by ``studio.jobs.manager``) or a
            float32 ``(channels, frames)`` array; None for tasks without input.
        sample_rate: the input's sample rate in Hz (and the wanted output rate for
            generation); required with an array input.
        region: ``(start, end)`` in project samples that the job is about, or None.
        context: ``(before, after)`` samples of context margin included in ``audio``
            around the region; engines use them and trim them from their outputs
            (an output covers ``audio[before: frames - after]``).
        params: engine parameters, validated against the engine's ``param_schema``.
        seed: random seed; the same spec + seed gives the same result.
        device: device override ("cpu", "cuda", "cuda:1", "mps"); None = policy.
        dtype: dtype override ("float32", "bfloat16", "float16"); None = policy.
        chunk_scale: factor on the engine's chunk/segment size; the host halves it on
            out-of-memory retries. Engines that chunk should honour it.
        output_dir: folder where the engine writes output files; None = return arrays.
    """

    task: ClassVar[str] = ""

    engine_id: str = ""
    model_id: str | None = None
    audio: Any = None
    sample_rate: int | None = None
    region: tuple[int, int] | None = None
    context: tuple[int, int] = (0, 0)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    chunk_scale: float = 1.0
    output_dir: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.task:
            _SPEC_TYPES[cls.task] = cls

    def load_audio(self) -> tuple[np.ndarray, int]:
        """The input as ``((channels, frames) float32, sample_rate)``.

        Raises:
            InvalidJob: no input, unreadable file, array without sample rate.
        """
        if self.audio is None:
            raise InvalidJob(f"{self.task or 'job'} needs input audio")
        return load_audio(self.audio, self.sample_rate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict including ``task``; arrays become nested lists."""
        d: dict[str, Any] = {"task": self.task}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "audio":
                v = _encode_audio(v)
            elif isinstance(v, tuple):
                v = list(v)
            elif f.name in ("controls",) and isinstance(v, dict):
                v = {k: _encode_audio(x) for k, x in v.items()}
            d[f.name] = v
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> JobSpec:
        """Rebuild the right subclass from :meth:`to_dict` output.

        Raises:
            InvalidJob: unknown task.
        """
        d = dict(d)
        task = d.pop("task", "")
        cls = _SPEC_TYPES.get(task)
        if cls is None:
            raise InvalidJob(f"unknown task {task!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in d.items():
            if k not in names:
                continue
            if k == "audio":
                v = _decode_audio(v)
            elif k in ("region", "context", "mask") and v is not None:
                v = tuple(int(x) for x in v)
            elif k == "controls" and isinstance(v, dict):
                v = {kk: _decode_audio(x) for kk, x in v.items()}
            kwargs[k] = v
        return cls(**kwargs)

    def replace(self, **changes: Any) -> JobSpec:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass
class SeparateSpec(JobSpec):
    """Split ``audio`` into stems.

    Attributes:
        stems: wanted stem names (e.g. ``["vocals"]``); empty = every stem of the model.
            Engines may add complementary stems (e.g. "instrumental").
    """

    task: ClassVar[str] = SEPARATE
    stems: list[str] = field(default_factory=list)


@dataclass
class GenerateSpec(JobSpec):
    """Generate new audio from a text prompt and optional controls.

    Attributes:
        prompt: text description.
        frames: wanted length in frames at ``sample_rate``.
        controls: named control signals (melody/dynamics/rhythm curves or reference
            audio), each a file path or an array.
    """

    task: ClassVar[str] = GENERATE
    prompt: str = ""
    frames: int = 0
    controls: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExtendSpec(JobSpec):
    """Continue ``audio`` after its end (or before its start).

    Attributes:
        prompt: optional text description.
        frames: how many new frames to add, at ``sample_rate``.
        direction: "after" or "before".
    """

    task: ClassVar[str] = EXTEND
    prompt: str = ""
    frames: int = 0
    direction: str = "after"


@dataclass
class InpaintSpec(JobSpec):
    """Regenerate part of ``audio``, keeping the rest.

    Attributes:
        prompt: optional text description.
        mask: ``(start, end)`` frames into ``audio`` to regenerate.
    """

    task: ClassVar[str] = INPAINT
    prompt: str = ""
    mask: tuple[int, int] = (0, 0)


@dataclass
class ConvertVoiceSpec(JobSpec):
    """Convert the voice in ``audio`` to a target voice.

    Attributes:
        target_voice: a voice/model id or a path to reference audio.
        pitch_shift: semitones applied to the source F0.
    """

    task: ClassVar[str] = CONVERT_VOICE
    target_voice: str = ""
    pitch_shift: float = 0.0


@dataclass
class TranscribeSpec(JobSpec):
    """Transcribe ``audio`` to notes. Results carry MIDI in ``JobResult.files["midi"]``
    and/or notes in ``JobResult.data["notes"]`` (list of {pitch, velocity, start, length}
    in samples relative to the output start)."""

    task: ClassVar[str] = TRANSCRIBE


@dataclass
class AnalyzeSpec(JobSpec):
    """Analyse ``audio`` (tempo, beats, key, melody...). Results go in ``JobResult.data``.

    Attributes:
        features: which analyses to run; empty = engine default.
    """

    task: ClassVar[str] = ANALYZE
    features: list[str] = field(default_factory=list)


def spec_class(task: str) -> type[JobSpec]:
    """The :class:`JobSpec` subclass for a task name.

    Raises:
        InvalidJob: unknown task.
    """
    try:
        return _SPEC_TYPES[task]
    except KeyError:
        raise InvalidJob(f"unknown task {task!r}") from None


