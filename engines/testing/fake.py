"""A deterministic engine for tests and smoke checks of the whole job path.

It serves every task without weights or torch:

* ``separate``: splits the input into frequency bands with complementary FFT masks
  (``numpy.fft.rfft``), chunk by chunk through :func:`engines.chunking.overlap_add`; the
  bands sum to the input within float32 rounding. Stems are named ``low``, ``mid``,
  ``high`` for two crossovers (``band0..bandN`` otherwise).
* ``generate``: a sine at ``frequency`` plus seeded white noise, stereo, one take per variation.
* ``extend``: ``frames`` new frames of that sine, continuing after (or before) the input.
* ``inpaint``: the sine over each region (outputs cover the regions only).
* ``add_stem``: the sine over the input's span; ``restyle``: the input ring-modulated by it.
* ``convert_voice``: the input ring-modulated by the sine.

Generative outputs follow :class:`engines.base.MusicSpec`: ``take{v}`` (or
``take{v}_region{r}``) with ``data["placements"]``.
* ``transcribe``: one note (at the pitch of ``frequency``) per chunk with energy.
* ``analyze``: peak, RMS, length and a fixed tempo.

Test hooks (parameters): ``delay_per_chunk`` slows it down, ``crash`` kills the host
process with SIGKILL after the first chunk, ``oom_above_chunk_scale`` raises a simulated
CUDA out-of-memory error (a ``RuntimeError`` subclass named ``OutOfMemoryError``, like
``torch.cuda.OutOfMemoryError``) while ``JobSpec.chunk_scale`` is above it.
"""
from __future__ import annotations

import math
import os
import signal
import time
from typing import Any

import numpy as np

from engines import base
from engines.base import CancelToken, EngineBase, InvalidJob, JobResult, JobSpec, ProgressReporter
from engines.testing import manifest
from engines.chunking import overlap_add, scaled_segment


class OutOfMemoryError(RuntimeError):
    """Stand-in for ``torch.cuda.OutOfMemoryError`` (same class name and message style)."""


def band_split(audio: np.ndarray, sample_rate: int, crossovers: list[float]) -> np.ndarray:
    """Split audio into frequency bands whose sum is the input.

    Args:
        audio: float32 ``(channels, frames)``.
        sample_rate: Hz.
        crossovers: band edges in Hz, ascending.

    Returns:
        float32 ``(len(crossovers) + 1, channels, frames)``.

    Method: binary masks on the real FFT (``numpy.fft.rfft``); every bin belongs to
    exactly one band, so the bands sum to the input up to float rounding.
    """
    frames = audio.shape[-1]
    spec = np.fft.rfft(audio.astype(np.float64), axis=-1)
    freqs = np.fft.rfftfreq(frames, 1.0 / sample_rate)
    edges = [-1.0, *sorted(float(c) for c in crossovers), math.inf]
    bands = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (freqs > lo) & (freqs <= hi)
        bands.append(np.fft.irfft(spec * mask, n=frames, axis=-1))
    return np.stack(bands).astype(np.float32)


def band_names(n: int) -> list[str]:
    """Stem names for ``n`` bands: low/mid/high for 3, low/high for 2, band0.. otherwise."""
    if n == 3:
        return ["low", "mid", "high"]
    if n == 2:
        return ["low", "high"]
    return [f"band{i}" for i in range(n)]


class FakeEngine(EngineBase):
    """Deterministic engine serving every task (see the module docstring).

    Outputs are float32 WAV files in ``spec.output_dir`` when it is set, else arrays.
    """

    entry = manifest.FAKE
    dtypes = ("float32",)
    devices = ("cpu",)
    version = "1"

    def __init__(self) -> None:
        super().__init__()
        self.load_count = 0

    def _load(self, device: str, dtype: str) -> None:
        self.load_count += 1

    # ------------------------------------------------------------------ helpers

    def _chunk_hooks(self, params: dict[str, Any], spec: JobSpec, index: int) -> None:
        if spec.chunk_scale > float(params["oom_above_chunk_scale"]) and index >= 1:
            raise OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (simulated by the fake engine)"
            )
        if params["crash"] and index >= 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if params["delay_per_chunk"]:
            time.sleep(float(params["delay_per_chunk"]))

    def _sine(self, frames: int, sample_rate: int, params: dict[str, Any], seed: int, start: int = 0) -> np.ndarray:
        t = (np.arange(start, start + frames, dtype=np.float64)) / sample_rate
        tone = 0.5 * np.sin(2 * np.pi * float(params["frequency"]) * t)
        out = np.stack([tone, tone])
        if params["noise"]:
            rng = np.random.default_rng(seed)
            out = out + float(params["noise"]) * rng.uniform(-1, 1, size=out.shape)
        return out.astype(np.float32)

    def _chunked(self, frames: int, sample_rate: int, params, spec, progress, cancel, stage: str):
        """Yield (start, end) chunks with hooks, progress and cancel."""
        seg = scaled_segment(int(float(params["chunk_seconds"]) * sample_rate), spec.chunk_scale, 64)
        n = max(1, math.ceil(frames / seg))
        for i in range(n):
            cancel.raise_if_cancelled()
            self._chunk_hooks(params, spec, i)
            yield i * seg, min(frames, (i + 1) * seg)
            progress((i + 1) / n, stage)

    def _emit(self, spec: JobSpec, outputs: dict[str, np.ndarray], sample_rate: int) -> dict[str, Any]:
        if not spec.output_dir:
            return dict(outputs)
        return {k: base.write_output(v, sample_rate, spec.output_dir, k) for k, v in outputs.items()}

    # ------------------------------------------------------------------ run

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Run ``spec`` (any task). Raises InvalidJob for a missing input or unknown task."""
        params = base.resolve_params(self.param_schema, spec.params)
        t0 = time.monotonic()
        progress(0.0, "starting")
        if spec.task == base.GENERATE:
            sr = int(spec.sample_rate or 44100)
            frames = int(getattr(spec, "frames", 0)) or sr
            outputs, data = {}, {"placements": {}}
            for v in range(1, int(spec.variations) + 1):
                out = np.zeros((2, frames), np.float32)
                for a, b in self._chunked(frames, sr, params, spec, progress, cancel, "generating"):
                    out[:, a:b] = self._sine(b - a, sr, params, spec.seed + v - 1 + a, start=a)
                outputs[f"take{v}"] = out
                data["placements"][f"take{v}"] = {"offset": 0, "variation": v, "region": None}
        else:
            audio, sr = spec.load_audio()
            before, after = spec.context
            outputs, data = self._run_on_audio(spec, params, audio, sr, progress, cancel)
            trim = spec.task not in (base.EXTEND, base.ANALYZE, base.TRANSCRIBE, base.INPAINT)
            if trim and (before or after):
                outputs = {k: v[:, before: v.shape[1] - after] for k, v in outputs.items()}
        result = JobResult(outputs=self._emit(spec, outputs, sr), sample_rate=sr, data=data)
        result.provenance = self.provenance(spec)
        result.provenance.params = params
        result.provenance.licence = "GPL-3.0-or-later"
        result.provenance.model_id = spec.model_id or "fake-builtin"
        result.provenance.timings["engine"] = time.monotonic() - t0
        progress(1.0, "done")
        return result

    def _run_on_audio(self, spec, params, audio, sr, progress, cancel):
        channels, frames = audio.shape
        task = spec.task
        if task == base.SEPARATE:
            state = {"i": 0}

            def fn(seg: np.ndarray) -> np.ndarray:
                self._chunk_hooks(params, spec, state["i"])
                state["i"] += 1
                return band_split(seg, sr, params["crossovers"])

            seg = scaled_segment(int(float(params["chunk_seconds"]) * sr), spec.chunk_scale, 64)
            bands = overlap_add(audio, sr, fn, segment=seg, overlap=seg // 8, progress=progress,
                                cancel=cancel, stage="separating")
            names = band_names(bands.shape[0])
            wanted = list(getattr(spec, "stems", []) or names)
            unknown = [s for s in wanted if s not in names]
            if unknown:
                raise InvalidJob(f"the fake separator has no stem {unknown[0]!r}", f"stems: {', '.join(names)}")
            return {n: bands[i] for i, n in enumerate(names) if n in wanted}, {}
        if task == base.EXTEND:
            n = int(getattr(spec, "frames", 0)) or sr
            start = frames if spec.direction == "after" else -n  # type: ignore[attr-defined]
            outputs, placements = {}, {}
            for v in range(1, int(spec.variations) + 1):  # type: ignore[attr-defined]
                out = np.zeros((channels, n), np.float32)
                for a, b in self._chunked(n, sr, params, spec, progress, cancel, "extending"):
                    out[:, a:b] = self._sine(b - a, sr, params, spec.seed + v - 1 + a, start=start + a)[:channels]
                outputs[f"take{v}"] = out
                placements[f"take{v}"] = {"offset": start, "variation": v, "region": None}
            return outputs, {"direction": spec.direction, "placements": placements}  # type: ignore[attr-defined]
        if task == base.INPAINT:
            regions = [tuple(int(x) for x in r) for r in spec.regions]  # type: ignore[attr-defined]
            if not regions:
                raise InvalidJob("inpaint needs at least one region")
            outputs, placements = {}, {}
            for r, (m0, m1) in enumerate(regions, 1):
                if not 0 <= m0 < m1 <= frames:
                    raise InvalidJob(f"inpaint region {m0}..{m1} is outside the input (0..{frames} frames)")
                for v in range(1, int(spec.variations) + 1):  # type: ignore[attr-defined]
                    out = np.zeros((channels, m1 - m0), np.float32)
                    for a, b in self._chunked(m1 - m0, sr, params, spec, progress, cancel, "inpainting"):
                        out[:, a:b] = self._sine(b - a, sr, params, spec.seed + v - 1 + a, start=m0 + a)[:channels]
                    name = f"take{v}" if len(regions) == 1 else f"take{v}_region{r}"
                    outputs[name] = out
                    placements[name] = {"offset": m0, "variation": v, "region": r}
            return outputs, {"placements": placements}
        if task in (base.ADD_STEM, base.RESTYLE):
            before, after = spec.context
            outputs, placements = {}, {}
            for v in range(1, int(spec.variations) + 1):  # type: ignore[attr-defined]
                out = np.empty_like(audio)
                for a, b in self._chunked(frames, sr, params, spec, progress, cancel, "generating"):
                    tone = self._sine(b - a, sr, params, spec.seed + v - 1 + a, start=a)[:channels]
                    out[:, a:b] = tone if task == base.ADD_STEM else audio[:, a:b] * (2 * tone)
                outputs[f"take{v}"] = out
                placements[f"take{v}"] = {"offset": int(before), "variation": v, "region": None}
            return outputs, {"placements": placements}
        if task == base.CONVERT_VOICE:
            out = np.empty_like(audio)
            for a, b in self._chunked(frames, sr, params, spec, progress, cancel, "converting"):
                carrier = 2 * self._sine(b - a, sr, {**params, "noise": 0.0}, 0, start=a)[:1]
                out[:, a:b] = audio[:, a:b] * carrier
            return {"audio": out}, {"target_voice": spec.target_voice}  # type: ignore[attr-defined]
        if task == base.TRANSCRIBE:
            before, after = spec.context
            pitch = int(round(69 + 12 * math.log2(float(params["frequency"]) / 440.0)))
            notes = []
            for a, b in self._chunked(frames, sr, params, spec, progress, cancel, "transcribing"):
                peak = float(np.max(np.abs(audio[:, a:b]))) if b > a else 0.0
                if peak > 1e-3 and a >= before and b <= frames - after:
                    notes.append({"pitch": pitch, "velocity": int(min(127, max(1, peak * 127))),
                                  "start": a - before, "length": b - a})
            return {}, {"notes": notes}
        if task == base.ANALYZE:
            peak = rms = 0.0
            for a, b in self._chunked(frames, sr, params, spec, progress, cancel, "analysing"):
                peak = max(peak, float(np.max(np.abs(audio[:, a:b]))))
            if frames:
                rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
            return {}, {"peak": peak, "rms": rms, "frames": frames, "tempo": 120.0}
        raise InvalidJob(f"the fake engine can't run task {task!r}")
