"""Engine classes for stem separation, on :mod:`engines.base`.

* :class:`DemucsEngine` (id ``htdemucs``) runs htdemucs, htdemucs_ft or htdemucs_6s
  through :func:`engines.separation.core.separate`.
* :class:`DspSeparationEngine` (id ``dsp-separation``) is the offline DSP fallback
  (:mod:`engines.separation.dsp`); its provenance says ``"fallback": "dsp"``.

Both return one output per stem (``JobResult.outputs[stem]``), covering the spec's
region (context margins trimmed), at the input's sample rate and exact frame count;
as float WAV files in ``spec.output_dir`` when set, else as arrays.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engines import base
from engines.separation import manifest
from engines.base import CancelToken, EngineBase, InvalidJob, JobResult, JobSpec, ProgressReporter

DEMUCS_LICENCE = "MIT"


def _trim_context(outputs: dict[str, np.ndarray], spec: JobSpec) -> dict[str, np.ndarray]:
    before, after = (int(v) for v in spec.context)
    if not (before or after):
        return outputs
    return {k: np.ascontiguousarray(v[:, before: v.shape[1] - after]) for k, v in outputs.items()}


def _emit(outputs: dict[str, np.ndarray], sample_rate: int, spec: JobSpec) -> dict[str, Any]:
    if not spec.output_dir:
        return {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}
    return {k: base.write_output(np.asarray(v), sample_rate, spec.output_dir, k) for k, v in outputs.items()}


class DemucsEngine(EngineBase):
    """HT-Demucs stem separation (Défossez et al., ICASSP 2023) via the ``demucs`` library.

    Params (see ``engines.registry`` for the JSON schema): ``residual`` (bool),
    ``shifts`` (int), ``segment`` (seconds or null), ``overlap`` (0..0.9),
    ``batch_size`` (int or null). ``spec.stems`` selects stems; a complement
    ("instrumental" for vocals) is added when they don't cover every source.

    Models are loaded on first use per ``spec.model_id`` (default ``htdemucs``) from the
    model manager's folder; :meth:`use_model` injects an already built model (tests,
    benchmarks). ``spec.chunk_scale`` < 1 (out-of-memory retries) shrinks the batch.

    Raises (from :meth:`run`): ``InvalidJob`` (bad input/params/stems),
    ``ModelNotInstalled``, ``JobCancelled``, ``OutOfMemory`` (as torch's error).
    """

    entry = manifest.HTDEMUCS
    dtypes = ("float16", "float32")
    devices = ("cuda", "mps", "cpu")
    version = "1"
    default_model = "htdemucs"

    def __init__(self) -> None:
        super().__init__()
        self._models: dict[str, Any] = {}

    def use_model(self, model_id: str, model: Any) -> None:
        """Use ``model`` (an HTDemucs, a bag, or any compatible module) for ``model_id``."""
        self._models[model_id] = model

    def _unload(self) -> None:
        self._models.clear()
        if self.device and self.device.startswith("cuda"):
            from engines.devices import empty_cache

            empty_cache(self.device)

    def _model(self, model_id: str, model_path: str | None = None) -> Any:
        if model_path:
            key = f"path:{model_path}"
            if key not in self._models:
                from engines.separation.demucs_adapter import load_model_path

                self._models = {key: load_model_path(model_path)}  # one model resident at a time
            return self._models[key]
        if model_id not in self._models:
            from engines.models import ModelManager
            from engines.separation.demucs_adapter import MODELS, load_pretrained

            if model_id not in MODELS:
                raise InvalidJob(f"the htdemucs engine has no model {model_id!r}", f"models: {', '.join(MODELS)}")
            folder = ModelManager().require(model_id)
            self._models = {model_id: load_pretrained(model_id, folder)}  # one model resident at a time
        return self._models[model_id]

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Separate ``spec.audio`` (a :class:`engines.base.SeparateSpec`)."""
        from engines.separation.core import SeparationOptions, separate

        if spec.task != base.SEPARATE:
            raise InvalidJob(f"the htdemucs engine can't do {spec.task!r}")
        params = base.resolve_params(self.param_schema, spec.params)
        t0 = time.monotonic()
        progress(0.0, "loading model")
        model_id = spec.model_id or self.default_model
        model = self._model(model_id, spec.model_path)
        t_load = time.monotonic()
        audio, sr = spec.load_audio()
        device = self.device or "cpu"
        gpu = device.startswith("cuda")
        batch = params.get("batch_size") or (4 if gpu else 1)
        batch = max(1, int(batch * min(1.0, float(spec.chunk_scale))))
        options = SeparationOptions(
            stems=list(getattr(spec, "stems", []) or []),
            residual=bool(params["residual"]),
            shifts=int(params["shifts"]),
            segment=params.get("segment"),
            overlap=float(params["overlap"]),
            batch_size=batch,
            device=device,
            dtype=self.dtype if gpu else "float32",
            seed=int(spec.seed),
        )
        result = separate(model, audio, sr, options, progress=progress.sub(0.0, 0.97), cancel=cancel)
        progress(0.98, "writing stems")
        outputs = _emit(_trim_context(result.stems, spec), sr, spec)
        prov = self.provenance(spec)
        prov.model_id = model_id
        prov.params = params
        prov.licence = DEMUCS_LICENCE
        from engines.separation.demucs_adapter import MODELS

        info = MODELS.get(model_id)
        prov.revision = ",".join(info.files) if info and not spec.model_path else None
        prov.dtype = result.info["dtype"]
        prov.device = result.info["device"]
        prov.timings.update({"load": t_load - t0, "separate": result.info["seconds"]["total"], "total": time.monotonic() - t0})
        prov.extra.update(
            {
                "stems": list(outputs),
                "model_sources": result.model_sources,
                "chunks": result.info["chunks"],
                "batch_size": result.info["batch_size"],
                "shift_offsets": result.info["shifts"],
                "library": _demucs_version(),
            }
        )
        progress(1.0, "done")
        return JobResult(outputs=outputs, sample_rate=sr, provenance=prov)


def _demucs_version() -> str:
    try:
        import demucs

        return f"demucs {demucs.__version__}"
    except Exception:  # pragma: no cover
        return "demucs"


class DspSeparationEngine(EngineBase):
    """Offline DSP fallback: HPSS + centre-channel extraction (:func:`engines.separation.dsp.separate_dsp`).

    Needs no model files and no torch. Provenance carries ``extra["fallback"] = "dsp"``
    and the method name, so takes made with it are recognisable as a DSP estimate.
    """

    entry = manifest.DSP_SEPARATION
    dtypes = ("float32",)
    devices = ("cpu",)
    version = "1"

    def __init__(self) -> None:
        super().__init__()

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Separate ``spec.audio`` into drums, bass, other, vocals (or a selection + complement)."""
        from engines.separation.core import complement_name
        from engines.separation.dsp import DSP_SOURCES, separate_dsp

        if spec.task != base.SEPARATE:
            raise InvalidJob(f"the DSP separation engine can't do {spec.task!r}")
        params = base.resolve_params(self.param_schema, spec.params)
        t0 = time.monotonic()
        audio, sr = spec.load_audio()
        wanted = list(getattr(spec, "stems", []) or [])
        unknown = [s for s in wanted if s not in DSP_SOURCES]
        if unknown:
            raise InvalidJob(f"the DSP fallback has no stem {unknown[0]!r}", f"stems: {', '.join(DSP_SOURCES)}")
        stems = separate_dsp(
            audio, sr, n_fft=int(params["n_fft"]), centre_power=float(params["centre_power"]),
            progress=progress.sub(0.0, 0.95), cancel=cancel,
        )
        if wanted and len(set(wanted)) < len(DSP_SOURCES):
            chosen = [s for s in DSP_SOURCES if s in wanted]
            comp = audio.astype(np.float64) - sum(stems[s].astype(np.float64) for s in chosen)
            stems = {s: stems[s] for s in chosen}
            stems[complement_name(chosen)] = comp.astype(np.float32)
        outputs = _emit(_trim_context(stems, spec), sr, spec)
        prov = self.provenance(spec, fallback="dsp", method="HPSS (Fitzgerald 2010) + centre extraction (Avendano & Jot 2004)")
        prov.model_id = spec.model_id or "dsp-hpss-centre"
        prov.params = params
        prov.licence = "GPL-3.0-or-later"
        prov.timings["total"] = time.monotonic() - t0
        prov.extra["stems"] = list(outputs)
        progress(1.0, "done")
        return JobResult(outputs=outputs, sample_rate=sr, provenance=prov)
