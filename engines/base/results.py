"""What an engine returns: output audio, provenance, files and data."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.base.audio import _decode_audio, _encode_audio, load_audio

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


