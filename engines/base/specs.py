"""Job specs: one dataclass per task, JSON-serialisable for the trip to the engine host."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engines.base.audio import _decode_audio, _encode_audio, load_audio
from engines.base.errors import InvalidJob
from engines.base.tasks import (ADD_STEM, ANALYZE, CONVERT_VOICE, EXTEND, GENERATE, INPAINT, RESTYLE, SEPARATE,
                                TRANSCRIBE)

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
        model_path: a local model folder or file (a fine-tune, an offline copy) used as is
            instead of the model record's files (``--model-path``); None = the record.
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
    model_path: str | None = None
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
            elif f.name == "controls" and isinstance(v, dict):
                v = {k: x.to_dict() if isinstance(x, ControlTarget) else _encode_audio(x) for k, x in v.items()}
            elif f.name == "regions":
                v = [list(r) for r in v]
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
            elif k in ("region", "context") and v is not None:
                v = tuple(int(x) for x in v)
            elif k == "regions" and v is not None:
                v = [tuple(int(x) for x in r) for r in v]
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
class MusicSpec(JobSpec):
    """Fields shared by the generative tasks (generate, extend, inpaint, add_stem, restyle).

    Attributes:
        prompt: text description of the music (style, instruments, mood).
        lyrics: lyrics with optional section tags (``[verse]``, ``[chorus]``); "" = none,
            ``"[instrumental]"`` = explicitly instrumental.
        language: vocal language code (``"en"``, ``"ja"``...), for engines that sing.
        variations: how many different results to make in one job (``>= 1``); each
            becomes its own take. Variation ``v`` (1-based) uses seed ``seed + v - 1``
            where an engine seeds per variation, so one variation can be re-made alone.
        bpm: tempo in BPM to condition on (the project's tempo by default); None = none.
        key: key to condition on, e.g. ``"C major"``, ``"F# minor"``; None = none.
        time_signature: meter to condition on, e.g. ``"4/4"``; None = none.
        controls: time-varying control targets by name (``"melody"``, ``"dynamics"``,
            ``"rhythm"``), each a dict (see :class:`ControlTarget` for the keys).

    Outputs of every generative engine: ``JobResult.outputs["take{v}"]`` for
    ``v = 1..variations`` (inpaint with several regions: ``"take{v}_region{r}"``), each
    float32 ``(channels, frames)`` at ``sample_rate`` with the exact frame count the task
    asks for; ``JobResult.data["placements"][name] = {"offset": frames from the first
    frame of ``audio`` (or from the requested start for generate), "variation": v,
    "region": r or None}`` says where each output goes.
    """

    prompt: str = ""
    lyrics: str = ""
    language: str = "en"
    variations: int = 1
    bpm: float | None = None
    key: str | None = None
    time_signature: str | None = None
    controls: dict[str, Any] = field(default_factory=dict)


@dataclass
class ControlTarget:
    """One time-varying control (Music ControlNet-style), as carried in ``MusicSpec.controls``
    (as ``ControlTarget(...).to_dict()``, so it crosses the process boundary as JSON).

    Attributes:
        kind: ``"melody"`` (chroma, ``values`` shaped (12, T)), ``"dynamics"`` (loudness
            curve in dB, (T,)) or ``"rhythm"`` (onset/beat activation 0..1, (T,)).
        values: the target curve as nested lists, or None when ``audio`` is given.
        frame_rate: frames per second of ``values`` (Hz).
        audio: path to reference audio to take the feature from instead of ``values``.
        start, end: the time range the control covers, in frames at the spec's
            ``sample_rate`` from ``values``' first frame (``end`` None = to the end);
            outside it the control is off.
        strength: guidance weight (0 = off, 1 = default).
        origin: where ``values``' first frame lies, in frames at the spec's sample rate
            from the first frame of the job's ``audio`` (generate: from the output start);
            negative when the control starts before the audio (an extension before a clip).
    """

    kind: str
    values: Any = None
    frame_rate: float = 0.0
    audio: str | None = None
    start: int = 0
    end: int | None = None
    strength: float = 1.0
    origin: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (numpy values become nested lists)."""
        d = dataclasses.asdict(self)
        if isinstance(self.values, np.ndarray):
            d["values"] = self.values.astype(np.float32).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ControlTarget:
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises:
            InvalidJob: no ``kind``.
        """
        if "kind" not in d:
            raise InvalidJob("a control target needs a 'kind' (melody, dynamics or rhythm)")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class GenerateSpec(MusicSpec):
    """Generate new audio from a text prompt (no input audio).

    Attributes:
        frames: wanted length of each take in frames at ``sample_rate`` (exact).
    """

    task: ClassVar[str] = GENERATE
    frames: int = 0


@dataclass
class ExtendSpec(MusicSpec):
    """Continue ``audio`` (the source clip, up to the model's context) after its end or
    before its start. Outputs hold only the new material, ``frames`` long; the source is
    never part of an output.

    Attributes:
        frames: how many new frames to make, at ``sample_rate``.
        direction: ``"after"`` or ``"before"``.
    """

    task: ClassVar[str] = EXTEND
    frames: int = 0
    direction: str = "after"


@dataclass
class InpaintSpec(MusicSpec):
    """Regenerate regions of ``audio`` (which includes context around them), keeping the rest.

    Outputs cover only the regions: ``take{v}`` for one region, ``take{v}_region{r}`` for
    several; outside the regions the musician's audio is never replaced, so it stays
    bit-identical.

    Attributes:
        regions: ``(start, end)`` frames into ``audio`` to regenerate, sorted, not overlapping.
        match_loudness: match each region's loudness to its context.
    """

    task: ClassVar[str] = INPAINT
    regions: list[tuple[int, int]] = field(default_factory=list)
    match_loudness: bool = True


@dataclass
class AddStemSpec(MusicSpec):
    """Generate one new stem that fits ``audio`` (the mix of the context tracks).

    Outputs are the new stem alone, as long as ``audio`` minus its context margins.

    Attributes:
        instrument: what to add: ``"bass"``, ``"drums"``, ``"guitar"``, ``"keys"``,
            ``"strings"``, ``"vocals"``...
    """

    task: ClassVar[str] = ADD_STEM
    instrument: str = ""


@dataclass
class RestyleSpec(MusicSpec):
    """Re-render ``audio`` in a new style, keeping its melody and rhythm.

    Attributes:
        strength: 0 = keep the source as it is, 1 = follow only the new prompt.
    """

    task: ClassVar[str] = RESTYLE
    strength: float = 0.5


@dataclass
class ConvertVoiceSpec(JobSpec):
    """Convert the voice in ``audio`` to a target voice. The output ``"audio"`` has exactly
    the input's frame count at ``sample_rate``.

    Attributes:
        target_voice: path to the voice model file (e.g. an RVC ``.pth``).
        index_path: path to the voice's feature index (e.g. a faiss ``.index``), or None.
        transpose: semitones applied to the source pitch.
    """

    task: ClassVar[str] = CONVERT_VOICE
    target_voice: str = ""
    index_path: str | None = None
    transpose: float = 0.0


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


