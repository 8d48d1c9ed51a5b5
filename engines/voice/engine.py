"""The RVC voice-conversion engine (id ``rvc``), on :mod:`engines.base`.

Serves :class:`~engines.base.ConvertVoiceSpec`:

* ``spec.target_voice``: the voice model ``.pth`` (RVC v1/v2 with pitch guidance), read
  safely (:mod:`engines.voice.checkpoint`); ``spec.index_path``: its faiss ``.index`` or
  None (:mod:`engines.voice.faiss_index`); ``spec.transpose``: semitones.
* Content features: ContentVec from ``spec.model_path`` (a transformers folder) or from
  the model manager (record ``contentvec-rvc``, or ``spec.model_id`` when it names another
  embedder record).
* ``params`` (``engines.voice.manifest.RVC_PARAMS``): ``pitch_method`` (``fcpe``: the
  torchfcpe wheel's weights, offline; ``rmvpe``: the ``rmvpe`` record), ``index_rate``,
  ``protect``, ``filter_radius``, ``rms_mix_rate``, ``speaker_id``.

Output: ``JobResult.outputs["audio"]``, float32 ``(channels, frames)`` at the input's
sample rate, with exactly the input's frame count minus the context margins
``spec.context``; a float WAV in ``spec.output_dir`` when set. The same spec and seed
give the same samples on the CPU (on a GPU, up to its non-deterministic kernels). ``spec.chunk_scale`` < 1 (out-of-memory
retries) shortens the chunks.

Raises (from :meth:`RvcEngine.run`): ``InvalidJob`` and its subclasses
:class:`~engines.voice.checkpoint.VoiceModelError` (refused or unsupported voice) and
:class:`~engines.voice.faiss_index.IndexFileError`; ``ModelNotInstalled`` (embedder or
RMVPE missing); ``JobCancelled``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines import base
from engines.base import CancelToken, EngineBase, InvalidJob, JobResult, JobSpec, ProgressReporter
from engines.voice import manifest

__all__ = ["RvcEngine"]


def _file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    st = Path(path).stat()
    return str(Path(path).resolve()), int(st.st_mtime_ns), int(st.st_size)


class RvcEngine(EngineBase):
    """RVC v1/v2 voice conversion (see the module docstring).

    Models stay loaded between jobs: the last voice, its index, the embedder and the
    pitch trackers, keyed by file path, modification time and size.
    """

    entry = manifest.RVC
    dtypes = ("float16", "float32")
    devices = ("cuda", "mps", "cpu")
    version = "1"

    def __init__(self) -> None:
        super().__init__()
        self._voice: tuple[Any, Any, Any] | None = None  # (key, net, checkpoint)
        self._index: tuple[Any, Any] | None = None
        self._embedder: tuple[Any, Any] | None = None
        self._fcpe: Any = None
        self._rmvpe: tuple[Any, Any] | None = None

    def _unload(self) -> None:
        self._voice = self._index = self._embedder = self._rmvpe = None
        self._fcpe = None
        if self.device and self.device.startswith("cuda"):
            from engines.devices import empty_cache

            empty_cache(self.device)

    def memory_bytes(self) -> int:
        """Bytes of the loaded weights and index (voice, embedder, pitch trackers)."""
        total = 0
        mods = [self._voice[1] if self._voice else None, self._embedder[1].model if self._embedder else None,
                self._fcpe, self._rmvpe[1].model if self._rmvpe else None]
        for m in mods:
            if m is not None:
                total += sum(p.numel() * p.element_size() for p in m.parameters())
        if self._index is not None:
            ix = self._index[1]
            total += ix.vectors.numel() * 4 + ix.centroids.numel() * 4
        return int(total)

    def _dtype(self) -> str:
        dev = self.device or "cpu"
        return self.dtype if dev.startswith(("cuda", "mps")) and self.dtype in self.dtypes else "float32"

    # ------------------------------------------------------------------ models

    def _voice_model(self, path: str) -> tuple[Any, Any]:
        from engines.voice.checkpoint import VoiceModelError, load_voice

        if not path:
            raise InvalidJob("no voice model given", "choose a voice from the voices library or give a .pth file")
        if not Path(path).is_file():
            raise VoiceModelError(f"the voice model '{path}' does not exist", "check the path")
        key = (_file_key(path), self.device, self._dtype())
        if self._voice is None or self._voice[0] != key:
            self._voice = None
            net, ckpt = load_voice(path, self.device or "cpu", self._dtype())
            self._voice = (key, net, ckpt)
        return self._voice[1], self._voice[2]

    def _index_model(self, path: str | None) -> Any:
        from engines.voice.faiss_index import IndexFileError, read_index

        if not path:
            return None
        if not Path(path).is_file():
            raise IndexFileError(f"the index file '{path}' does not exist", "check the path, or convert without it")
        key = (_file_key(path), self.device)
        if self._index is None or self._index[0] != key:
            self._index = None
            self._index = (key, read_index(path).to_torch(self.device or "cpu"))
        return self._index[1]

    def _embedder_model(self, spec: JobSpec) -> tuple[Any, str]:
        from engines.voice.embedder import ContentVec

        if spec.model_path:
            folder, model_id = Path(spec.model_path), None
        else:
            from engines.models import ModelManager

            model_id = spec.model_id if spec.model_id and spec.model_id != manifest.RMVPE_MODEL_ID \
                else manifest.CONTENTVEC_MODEL_ID
            folder = ModelManager().require(model_id)
        key = (str(folder.resolve()), self.device, self._dtype())
        if self._embedder is None or self._embedder[0] != key:
            self._embedder = None
            self._embedder = (key, ContentVec(folder, self.device or "cpu", self._dtype()))
        return self._embedder[1], model_id or str(folder)

    def _pitch_fn(self, method: str) -> Any:
        from engines.voice.pitch import fcpe_f0

        if method == "rmvpe":
            from engines.models import ModelManager
            from engines.voice.rmvpe import RMVPE

            path = ModelManager().require(manifest.RMVPE_MODEL_ID) / manifest.RMVPE_FILENAME
            key = (str(path), self.device)
            if self._rmvpe is None or self._rmvpe[0] != key:
                self._rmvpe = (key, RMVPE(checkpoint=path, device=self.device or "cpu"))
            tracker = self._rmvpe[1]
            return lambda audio, frames: tracker.f0(audio, frames)
        if self._fcpe is None:
            from engines.analysis.melody import load_fcpe

            self._fcpe = load_fcpe(self.device or "cpu")
        model = self._fcpe
        return lambda audio, frames: fcpe_f0(audio, frames, model)

    # ------------------------------------------------------------------ run

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Convert ``spec.audio`` (a :class:`~engines.base.ConvertVoiceSpec`) to the target voice."""
        from engines.voice.pipeline import ConversionOptions, convert

        if spec.task != base.CONVERT_VOICE:
            raise InvalidJob(f"the RVC engine can't do {spec.task!r}")
        params = base.resolve_params(self.param_schema, spec.params)
        t0 = time.monotonic()
        audio, sr = spec.load_audio()
        before, after = (int(v) for v in spec.context)
        if before < 0 or after < 0 or before + after > audio.shape[1]:
            raise InvalidJob(f"context margins {before}+{after} don't fit {audio.shape[1]} input frames")
        progress(0.0, "loading pitch tracker")
        f0_fn = self._pitch_fn(params["pitch_method"])
        progress(0.01, "loading voice")
        net, ckpt = self._voice_model(getattr(spec, "target_voice", ""))
        index = self._index_model(getattr(spec, "index_path", None))
        if index is not None and index.d != ckpt.feature_dim:
            from engines.voice.faiss_index import IndexFileError

            raise IndexFileError(f"the index holds {index.d}-d features but this {ckpt.version} voice uses "
                                 f"{ckpt.feature_dim}-d features (is it the index of another voice?)")
        cancel.raise_if_cancelled()
        progress(0.02, "loading embedder")
        embedder, embedder_id = self._embedder_model(spec)
        if embedder.feature_dim(ckpt.version) != ckpt.feature_dim:
            raise InvalidJob(f"the embedder gives {embedder.feature_dim(ckpt.version)}-d features but this "
                             f"{ckpt.version} voice needs {ckpt.feature_dim}-d", "use a ContentVec embedder")
        t_load = time.monotonic()
        scale = min(1.0, max(0.05, float(spec.chunk_scale)))
        opts = ConversionOptions(
            transpose=float(getattr(spec, "transpose", 0.0)), index_rate=float(params["index_rate"]),
            protect=float(params["protect"]), filter_radius=int(params["filter_radius"]),
            rms_mix_rate=float(params["rms_mix_rate"]), speaker_id=int(params["speaker_id"]), seed=int(spec.seed),
            chunk_seconds=38.0 * scale, query_seconds=6.0 * scale, max_seconds=41.0 * scale)
        result = convert(audio, sr, synthesizer=net, version=ckpt.version, embedder=embedder, f0_fn=f0_fn,
                         index=index, options=opts, progress=progress.sub(0.05, 0.97), cancel=cancel,
                         device=self.device or "cpu")
        out = result.audio
        if before or after:
            out = np.ascontiguousarray(out[:, before: out.shape[1] - after])
        progress(0.98, "writing")
        value: Any = out
        if spec.output_dir:
            value = base.write_output(out, sr, spec.output_dir, "audio")
        prov = self.provenance(spec)
        prov.model_id = embedder_id
        prov.params = dict(params, transpose=opts.transpose)
        prov.licence = None  # the voice's licence is what its source states (the voices library keeps it)
        prov.dtype = self._dtype()
        from engines.files import sha256_file

        prov.input_sha256["voice"] = sha256_file(spec.target_voice)  # type: ignore[attr-defined]
        if getattr(spec, "index_path", None):
            prov.input_sha256["index"] = sha256_file(spec.index_path)  # type: ignore[attr-defined]
        prov.timings.update({"load_models": t_load - t0, **{k: float(v) for k, v in result.info["seconds"].items()},
                             "total": time.monotonic() - t0})
        prov.extra.update({
            "voice_version": ckpt.version, "voice_sample_rate": ckpt.sample_rate, "voice_info": ckpt.info,
            "speakers": ckpt.n_speakers, "embedder_licence": "MIT", "pitch_method": params["pitch_method"],
            "chunks": result.info["chunks"], "voiced_fraction": round(float(result.info["voiced_fraction"]), 4),
            "index_used": index is not None and opts.index_rate > 0,
        })
        progress(1.0, "done")
        return JobResult(outputs={"audio": value}, sample_rate=sr, provenance=prov)
