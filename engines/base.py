"""Job types shared by the studio core, the engine host and every engine.

This module is the whole contract between ``studio/`` and the engines. It imports
nothing heavier than numpy: no torch, no Qt, no model library.

* :class:`Engine` - the protocol every engine implements (``load``/``unload``/``run``).
* :class:`JobSpec` and one subclass per task (:class:`SeparateSpec`, :class:`GenerateSpec`,
  :class:`ExtendSpec`, :class:`InpaintSpec`, :class:`ConvertVoiceSpec`,
  :class:`TranscribeSpec`, :class:`AnalyzeSpec`) - what to do.
* :class:`JobResult` and :class:`Provenance` - what came out, and where it came from.
* :class:`ProgressReporter` / :data:`ProgressCallback` - fraction, stage and ETA.
* :class:`CancelToken` - cooperative cancel, checked by engines at chunk boundaries.
* :class:`EngineError` and subclasses - typed errors with a user-facing ``hint``.

Conventions: audio is numpy float32 shaped ``(channels, frames)`` and always travels
with its sample rate; positions are integer samples. Specs and results are
JSON-serialisable through ``to_dict()``/``from_dict()`` so they can cross the process
boundary to the engine host; large audio should cross as WAV file paths, not arrays
(arrays are allowed in-process and are encoded as nested lists when they must cross).
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np

# --------------------------------------------------------------------------- tasks

SEPARATE = "separate"
GENERATE = "generate"
EXTEND = "extend"
INPAINT = "inpaint"
CONVERT_VOICE = "convert_voice"
TRANSCRIBE = "transcribe"
ANALYZE = "analyze"

TASKS: tuple[str, ...] = (SEPARATE, GENERATE, EXTEND, INPAINT, CONVERT_VOICE, TRANSCRIBE, ANALYZE)
"""Every task an engine can serve, in the order the UI lists them."""


# --------------------------------------------------------------------------- errors


class EngineError(Exception):
    """Base class of every error raised on purpose by an engine or the engine host.

    Attributes:
        message: what went wrong, in plain words (``str(error)``).
        hint: what the musician can do about it (may be empty).

    Errors cross the process boundary as ``{"type", "message", "hint"}`` dicts
    (:meth:`to_dict`, :func:`error_from_dict`).
    """

    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        """JSON form: ``{"type": class name, "message": ..., "hint": ...}``."""
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class JobCancelled(EngineError):
    """The job was cancelled by the user; nothing was added to the project."""

    default_hint = ""


class OutOfMemory(EngineError):
    """The device ran out of memory.

    The host retries such a job automatically with smaller chunks
    (``JobSpec.chunk_scale`` halved) before reporting it.
    """

    default_hint = "close other GPU programs, choose a shorter region, or run on CPU"


class EngineNotFound(EngineError):
    """No engine is registered under the requested id, or it can't be imported."""

    default_hint = "check the engine id with `seed-studio models list`, or reinstall Seed Studio"


class InvalidJob(EngineError):
    """A job spec is malformed: wrong task for the engine, bad parameters, missing input."""

    default_hint = "check the job's parameters"


class ModelNotInstalled(EngineError):
    """The engine needs model files that are not in the models folder."""

    default_hint = "download it with `seed-studio models download ID` or import it with `seed-studio models import ID FOLDER`"


class ModelDownloadError(EngineError):
    """A model download failed (offline, server error, interrupted transfer)."""

    default_hint = "check the internet connection and retry; an interrupted download resumes where it stopped"


class ChecksumMismatch(ModelDownloadError):
    """A model file's sha256 does not match its record; the bad file has been removed."""

    default_hint = "retry the download; if it fails again the source has changed, report it"


class HostCrashed(EngineError):
    """The engine host process died during a job (crash, kill, out of host memory).

    The project is untouched and the host restarts for the next job.
    """

    default_hint = "the engine host restarts for the next job; if it keeps crashing, try a shorter region or the CPU"


_ERROR_TYPES: dict[str, type[EngineError]] = {
    cls.__name__: cls
    for cls in (
        EngineError,
        JobCancelled,
        OutOfMemory,
        EngineNotFound,
        InvalidJob,
        ModelNotInstalled,
        ModelDownloadError,
        ChecksumMismatch,
        HostCrashed,
    )
}


def register_error_type(cls: type[EngineError]) -> type[EngineError]:
    """Make an engine-specific :class:`EngineError` subclass survive the process boundary.

    Usable as a class decorator; returns ``cls``.
    """
    _ERROR_TYPES[cls.__name__] = cls
    return cls


def error_from_dict(d: dict[str, Any]) -> EngineError:
    """Rebuild an error made by :meth:`EngineError.to_dict` (unknown types -> EngineError)."""
    cls = _ERROR_TYPES.get(d.get("type", ""), EngineError)
    return cls(d.get("message", "engine error"), d.get("hint"))


def is_out_of_memory(exc: BaseException) -> bool:
    """True for :class:`OutOfMemory` and for torch's CUDA/MPS out-of-memory errors.

    Detects ``torch.cuda.OutOfMemoryError`` by class name so that this module never
    imports torch.
    """
    if isinstance(exc, OutOfMemory):
        return True
    name = type(exc).__name__
    if name == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


# --------------------------------------------------------------------------- progress and cancel

ProgressCallback = Callable[..., None]
"""``progress(fraction, stage="")``: fraction in [0, 1], stage a short label ("separating")."""


class ProgressReporter:
    """A progress callback with monotonic fractions, sub-ranges and an ETA.

    Engines receive one as ``progress`` in :meth:`Engine.run` and call it as
    ``progress(fraction, stage)``. ``progress.sub(a, b)`` returns a reporter that maps
    its own 0..1 onto ``a..b`` of the parent (for multi-stage jobs), and
    ``progress.log(text)`` sends a log line to the UI.

    Args:
        sink: ``sink(fraction, stage, eta_s)`` receives every accepted update
            (``eta_s`` seconds or None); ``None`` discards updates.
        log_sink: ``log_sink(text)`` receives log lines.

    The ETA is linear extrapolation from the time of the first update.
    """

    def __init__(
        self,
        sink: Callable[[float, str, float | None], None] | None = None,
        log_sink: Callable[[str], None] | None = None,
        *,
        _parent: ProgressReporter | None = None,
        _range: tuple[float, float] = (0.0, 1.0),
    ):
        self._sink = sink
        self._log_sink = log_sink
        self._parent = _parent
        self._range = _range
        self._t0 = time.monotonic()
        self.fraction = 0.0
        self.stage = ""

    def __call__(self, fraction: float, stage: str = "") -> None:
        f = float(min(1.0, max(0.0, fraction)))
        if f < self.fraction:
            f = self.fraction  # never go backwards
        self.fraction = f
        if stage:
            self.stage = stage
        if self._parent is not None:
            a, b = self._range
            self._parent(a + (b - a) * f, self.stage)
            return
        eta = None
        elapsed = time.monotonic() - self._t0
        if 0.0 < f < 1.0:
            eta = elapsed * (1.0 - f) / f
        elif f >= 1.0:
            eta = 0.0
        if self._sink is not None:
            self._sink(f, self.stage, eta)

    def sub(self, start: float, end: float) -> ProgressReporter:
        """A child reporter whose 0..1 maps onto ``start..end`` of this one."""
        return ProgressReporter(_parent=self, _range=(float(start), float(end)))

    def log(self, text: str) -> None:
        """Send one log line to whoever watches the job."""
        if self._parent is not None:
            self._parent.log(text)
        elif self._log_sink is not None:
            self._log_sink(str(text))


class CancelToken:
    """Cooperative cancel flag, checked by engines at chunk boundaries.

    Engines call :meth:`raise_if_cancelled` between chunks; the host kills the job
    if it does not stop within its grace period.

    Args:
        event: anything with ``is_set()``/``set()`` (a ``threading.Event`` or a
            ``multiprocessing.Event``); a new ``threading.Event`` if omitted.
    """

    def __init__(self, event: Any | None = None):
        self._event = event if event is not None else threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return bool(self._event.is_set())

    def cancel(self) -> None:
        """Ask the job to stop."""
        self._event.set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if cancel was requested."""
        if self.cancelled:
            raise JobCancelled("job cancelled")


# --------------------------------------------------------------------------- audio helpers

def _encode_audio(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__array__": value.astype(np.float32).tolist()}
    if isinstance(value, Path):
        return str(value)
    return value


def _decode_audio(value: Any) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], dtype=np.float32)
    return value


def load_audio(ref: str | Path | np.ndarray, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an input audio reference into ``((channels, frames) float32, sample_rate)``.

    Args:
        ref: a path to an audio file (read with soundfile) or an array; 1-D arrays
            become one channel.
        sample_rate: required when ``ref`` is an array; for files, the file's rate wins.

    Raises:
        InvalidJob: missing file, unreadable file, or an array without a sample rate.
    """
    if isinstance(ref, np.ndarray):
        if sample_rate is None:
            raise InvalidJob("input audio array has no sample rate")
        a = np.asarray(ref, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise InvalidJob(f"input audio must be (channels, frames), got shape {a.shape}")
        return a, int(sample_rate)
    import soundfile as sf

    path = Path(ref)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types
        raise InvalidJob(f"input audio file '{path}': can't be read ({exc})") from exc
    return np.ascontiguousarray(data.T), int(sr)


def write_output(audio: np.ndarray, sample_rate: int, directory: str | Path, name: str) -> str:
    """Write one output as a 32-bit float WAV ``directory/name.wav`` and return its path.

    Engines use this when ``JobSpec.output_dir`` is set, so that results cross the
    process boundary as files. Float WAV keeps the samples bit-exact. The file is
    written to a temp name and renamed, so a killed job never leaves a truncated output.

    Args:
        audio: float32 ``(channels, frames)``.
        sample_rate: Hz.
    """
    import os

    import soundfile as sf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.wav"
    tmp = directory / f".{name}.wav.tmp"
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    sf.write(str(tmp), a.T, int(sample_rate), subtype="FLOAT", format="WAV")
    os.replace(tmp, path)
    return str(path)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_audio(ref: str | Path | np.ndarray) -> str:
    """Hex sha256 of an input: the file's bytes, or the float32 array's bytes."""
    if isinstance(ref, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(ref, dtype=np.float32).tobytes()).hexdigest()
    return sha256_file(ref)


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


# --------------------------------------------------------------------------- results


@dataclass
class Provenance:
    """Where a result came from; stored with every take.

    Attributes:
        engine_id, engine_version: the engine.
        model_id, revision, licence: the model record used (``engines.models``).
        task: the task name.
        seed, params: as run (params after defaults were applied).
        input_sha256: input name -> sha256 hex of its bytes.
        device, dtype: what actually ran ("cuda:0", "bfloat16"...).
        timings: stage -> seconds (e.g. "load", "run", "total").
        chunk_scale: the chunk scale that succeeded (< 1 after OOM retries).
        created: UTC ISO-8601 time the job finished.
        extra: engine-specific JSON-able facts (e.g. ``"fallback": "dsp"``).
    """

    engine_id: str = ""
    engine_version: str = ""
    model_id: str | None = None
    revision: str | None = None
    licence: str | None = None
    task: str = ""
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    input_sha256: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "float32"
    timings: dict[str, float] = field(default_factory=dict)
    chunk_scale: float = 1.0
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        extra = dict(kwargs.pop("extra", {}) or {})
        extra.update({k: v for k, v in d.items() if k not in names})
        return cls(**kwargs, extra=extra)


@dataclass
class JobResult:
    """What an engine produced.

    Attributes:
        outputs: output name (a stem such as "vocals", or "audio") -> a path to an
            audio file or a float32 ``(channels, frames)`` array. Outputs cover the
            spec's region, i.e. context margins already trimmed.
        sample_rate: sample rate of array outputs in Hz (files carry their own).
        provenance: see :class:`Provenance`.
        files: other output files by name (e.g. ``"midi"`` -> path to a .mid).
        data: JSON-able results (analysis figures, notes...).
        stored: outputs already stored by the host's outputs hook
            (:class:`engines.host.OutputsHook`): output name -> the hook's JSON record
            (e.g. a media item). Such names are no longer in ``outputs``.
    """

    outputs: dict[str, Any] = field(default_factory=dict)
    sample_rate: int | None = None
    provenance: Provenance = field(default_factory=Provenance)
    files: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    stored: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (arrays become nested lists: prefer files across processes)."""
        return {
            "outputs": {k: _encode_audio(v) for k, v in self.outputs.items()},
            "sample_rate": self.sample_rate,
            "provenance": self.provenance.to_dict(),
            "files": {k: str(v) for k, v in self.files.items()},
            "data": self.data,
            "stored": self.stored,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            outputs={k: _decode_audio(v) for k, v in (d.get("outputs") or {}).items()},
            sample_rate=d.get("sample_rate"),
            provenance=Provenance.from_dict(d.get("provenance") or {}),
            files=dict(d.get("files") or {}),
            data=dict(d.get("data") or {}),
            stored=dict(d.get("stored") or {}),
        )

    def load_output(self, name: str) -> tuple[np.ndarray, int]:
        """One output as ``((channels, frames) float32, sample_rate)``.

        Raises:
            KeyError: no output of that name.
            InvalidJob: unreadable file.
        """
        return load_audio(self.outputs[name], self.sample_rate)


# --------------------------------------------------------------------------- engines


@runtime_checkable
class Engine(Protocol):
    """What every engine implements. Engines live in ``engines/<task>/`` and are listed
    in ``engines/registry.py``; the host constructs them with no arguments.

    Attributes:
        id: registry id (e.g. "htdemucs").
        tasks: task names served (see :data:`TASKS`).
        param_schema: JSON Schema (draft 2020-12, ``type: object``) of ``spec.params``;
            the UI turns it into a form. Give every property a ``default``,
            ``title`` and ``description``.
        dtypes: dtypes the engine can run in on GPU, preferred first
            (``("bfloat16", "float16", "float32")``); ``("float32",)`` if unsure.
        devices: (optional, default ``("cuda", "mps", "cpu")``) device kinds it can use;
            ``("cpu",)`` for CPU-only engines, which then never make the host import torch.
    """

    id: str
    tasks: tuple[str, ...]
    param_schema: dict[str, Any]
    dtypes: tuple[str, ...]

    def load(self, device: str, dtype: str = "float32") -> None:
        """Load weights onto ``device`` in ``dtype``. Raises ModelNotInstalled, OutOfMemory."""

    def unload(self) -> None:
        """Free all device memory held by the engine."""

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Run one job. Call ``progress(fraction, stage)`` and ``cancel.raise_if_cancelled()``
        at least once per chunk. Raise EngineError subclasses for expected failures."""


class EngineBase:
    """Convenience base class implementing the bookkeeping of :class:`Engine`.

    Subclasses set ``id``, ``tasks``, ``param_schema`` (and optionally ``dtypes``,
    ``version``) and override :meth:`_load`/:meth:`_unload`/:meth:`run`.
    ``self.device``/``self.dtype`` hold what :meth:`load` was given.
    """

    id: str = ""
    tasks: tuple[str, ...] = ()
    param_schema: dict[str, Any] = {"type": "object", "properties": {}}
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[str, ...] = ("cuda", "mps", "cpu")
    version: str = "0"

    def __init__(self) -> None:
        self.device: str | None = None
        self.dtype: str = "float32"
        self.loaded = False

    def load(self, device: str, dtype: str = "float32") -> None:
        """Load onto ``device`` (no-op if already loaded there in that dtype)."""
        if self.loaded and self.device == device and self.dtype == dtype:
            return
        if self.loaded:
            self.unload()
        self._load(device, dtype)
        self.device, self.dtype, self.loaded = device, dtype, True

    def unload(self) -> None:
        """Release the model."""
        if self.loaded:
            self._unload()
        self.loaded = False

    def _load(self, device: str, dtype: str) -> None:  # pragma: no cover - default
        pass

    def _unload(self) -> None:  # pragma: no cover - default
        pass

    def memory_bytes(self) -> int:
        """Approximate device memory held while loaded (used by the host's LRU)."""
        return 0

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        raise NotImplementedError

    def provenance(self, spec: JobSpec, **extra: Any) -> Provenance:
        """A :class:`Provenance` pre-filled from this engine and ``spec`` (inputs hashed)."""
        inputs: dict[str, str] = {}
        if spec.audio is not None:
            try:
                inputs["audio"] = sha256_audio(spec.audio)
            except OSError:
                pass
        return Provenance(
            engine_id=self.id,
            engine_version=self.version,
            model_id=spec.model_id,
            task=spec.task,
            seed=spec.seed,
            params=dict(spec.params),
            input_sha256=inputs,
            device=self.device or "cpu",
            dtype=self.dtype,
            chunk_scale=spec.chunk_scale,
            extra=extra,
        )


def resolve_params(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults from a JSON Schema and validate ``params`` against it.

    Args:
        schema: an object schema with ``properties`` (each may have ``default``).
        params: user parameters.

    Returns:
        A new dict: defaults for missing keys, then the given values.

    Raises:
        InvalidJob: the parameters don't satisfy the schema (message names the field).

    Validation uses the ``jsonschema`` library.
    """
    out = {
        k: v["default"]
        for k, v in (schema.get("properties") or {}).items()
        if isinstance(v, dict) and "default" in v
    }
    out.update(params or {})
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(out))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "params"
        raise InvalidJob(f"parameter '{where}': {error.message}")
    return out


_VALIDATORS: dict[str, Any] = {}


def _validator(schema: dict[str, Any]) -> Any:
    """A cached ``jsonschema`` validator for ``schema`` (checking a schema costs ~20 ms)."""
    import json

    import jsonschema

    key = json.dumps(schema, sort_keys=True, default=str)
    v = _VALIDATORS.get(key)
    if v is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = _VALIDATORS[key] = cls(schema)
    return v
