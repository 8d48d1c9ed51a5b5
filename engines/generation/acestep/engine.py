"""ACE-Step 1.5 engines on :mod:`engines.base`.

* :class:`AceStepEngine` (id ``acestep``): generate, extend, inpaint, add_stem, restyle.
* :class:`AceStepExtractEngine` (id ``acestep-extract``): separate one named stem.

Both load diffusers' ``AceStepPipeline`` once per model (from the model manager's folder
or ``spec.model_path``; bf16 on CUDA, fp32 on CPU) and keep it between jobs, then run our
own loop over its modules (:mod:`engines.generation.acestep.sampler`): per-step progress
and cancel, one seed per variation in a single batch, source re-injection and latent
border blending while repainting (ACE-Step 1.5 PR #816), tiled VAE encode and decode
whose tiles shrink with ``spec.chunk_scale`` (:mod:`engines.generation.acestep.vae`), and
a per-step hook (:attr:`AceStepEngine.step_hook`, for training-free control guidance).

Time-varying controls (``spec.controls``: melody, dynamics, rhythm; issue 14) steer
generate, extend, inpaint, restyle and add_stem without training: the sampler's step hook
runs :class:`engines.generation.guidance.ControlGuide` (DITTO-style guidance through the VAE
decoder, :mod:`engines.generation.acestep.guide`) on the steps the ``control_*`` parameters
choose, only inside each control's time range (plus the decoder's margin) and only where the
job generates. Every take's adherence to every control (melody accuracy, dynamics Pearson r,
beat F1 at +-70 ms, over the control's range) and its loss go into
``provenance.extra["adherence"]`` and ``["control_loss"]``; with ``compare_unguided`` the
same job runs first without the controls at the same seeds (``["adherence_unguided"]``,
``["control_loss_unguided"]``); ``["control_guidance"]`` says what the guidance did.

Everything runs at the model's 48 kHz; inputs are resampled to it and outputs back to
``spec.sample_rate`` with soxr, then cut to the exact frame count the task asks for.
Outputs follow :class:`engines.base.MusicSpec`: ``take{v}`` (inpaint with several regions:
``take{v}_region{r}``) float32 ``(channels, frames)`` and ``data["placements"]``.

Where the original audio meets new material it is never replaced: inpaint outputs cover
only their region and start and end on the original's own samples (equal-power
crossfades inside the region), and extend outputs hold only the new frames, starting from
the source's last sample.

Per task (the ACE-Step task in brackets):

* generate [text2music]: ``frames`` at ``sample_rate``; the pipeline's peak normalisation
  (-1 dBFS) as ``AceStepPipeline.__call__``.
* extend [repaint]: the last (``after``) or first (``before``) ``context_seconds`` of the
  clip plus the new span, which is the repaint window; ``spec.context`` is not used.
* inpaint [repaint]: the whole input (context margins included) with one window per
  region, in one diffusion pass; loudness matched to 10 s of original audio on each side.
* add_stem [lego, or complete]: the whole input as context; the stem covers the input
  minus its context margins; the base model by default.
* restyle [cover]: the source's 5 Hz semantic codes as context, sampling started from the
  source noised to ``strength`` (SDEdit; upstream ``cover_noise_strength``); 0 keeps the
  source's latents, 1 starts from noise.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engines import base
from engines.base import CancelToken, EngineBase, InvalidJob, JobResult, JobSpec, ProgressReporter
from engines.generation.acestep import manifest

MODEL_LIMIT_S = 600.0
"""Longest timeline ACE-Step 1.5 was trained on (10 minutes), context included."""

CONTEXT_LOUDNESS_S = 10.0
"""Seconds of original audio on each side of a region whose loudness an inpaint matches."""


@dataclass
class _Loaded:
    """A resident pipeline and what provenance needs to know about it."""

    pipe: Any
    model_id: str | None
    revision: str | None
    licence: str | None
    path: str | None
    files: dict[str, str]
    turbo: bool


@dataclass
class _Render:
    """One diffusion run at the model rate (48 kHz).

    Attributes:
        task_type: ACE-Step task: text2music, repaint, lego, complete, cover, extract.
        frames: latent frames of the timeline.
        src: source audio, float32 ``(2, frames * hop)`` at 48 kHz, or None.
        windows: latent frames to generate ``[(start, end)]``; None = the whole timeline.
        instruction: the task instruction.
        inject: repaint re-injection and border blending (PR #816).
        restyle_strength: restyle's start level (SDEdit), or None.
        cover_strength: restyle's cover/text2music velocity blend.
        duration_s: the metadata duration in seconds; None = the timeline's.
        info: facts for provenance (``sample_rate``: the output rate in Hz, always set).
        timeline_start: where latent frame 0 lies, in frames at the output rate from the
            first frame of the job's audio (generate: its start; extend: the context's start,
            negative before a clip).
        controls: time-varying control targets (:func:`engines.generation.guidance.parse_controls`).
        guide: the guidance configuration, or None (no controls).
        guided: whether this render applies the controls (off for the unguided comparison).
    """

    task_type: str
    frames: int
    src: np.ndarray | None = None
    windows: list[tuple[int, int]] | None = None
    instruction: str = ""
    inject: bool = False
    restyle_strength: float | None = None
    cover_strength: float = 1.0
    duration_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    timeline_start: int = 0
    controls: list[Any] = field(default_factory=list)
    guide: Any = None
    guided: bool = True


class _AceStepBase(EngineBase):
    """Model loading and the diffusion run shared by the ACE-Step engines."""

    dtypes = ("bfloat16", "float32")
    devices = ("cuda", "mps", "cpu")
    version = "1"
    default_model = manifest.DEFAULT_MODEL

    def __init__(self) -> None:
        super().__init__()
        self._loaded: dict[tuple[str, str], _Loaded] = {}
        self.step_hook: Callable[..., Any] | None = None
        """Optional :data:`engines.generation.acestep.sampler.StepHook` called at every step."""

    # ------------------------------------------------------------------ models

    def use_pipeline(self, pipe: Any, *, model_id: str | None = None, path: str | None = None) -> None:
        """Use an already built ``AceStepPipeline`` for ``model_id`` (or for ``spec.model_path == path``);
        for tests and benchmarks. It replaces the resident pipeline."""
        key = ("path", _resolved(path)) if path else ("model", str(model_id or self.default_model))
        self._loaded = {key: _Loaded(pipe, model_id, None, "MIT", path, {}, bool(getattr(pipe, "is_turbo", False)))}

    @property
    def pipeline(self) -> Any | None:
        """The resident ``AceStepPipeline`` (None before the first job)."""
        return next(iter(self._loaded.values())).pipe if self._loaded else None

    def _unload(self) -> None:
        self._loaded.clear()
        if self.device and self.device.startswith("cuda"):
            from engines.devices import empty_cache

            empty_cache(self.device)

    def memory_bytes(self) -> int:
        """Bytes held by the resident pipeline's weights."""
        from engines.generation.acestep.loading import module_bytes

        return sum(module_bytes(m.pipe) for m in self._loaded.values())

    def _model(self, spec: JobSpec, default_model: str) -> _Loaded:
        """The pipeline for ``spec`` (``model_path`` as is, else the model record), loaded once
        and kept; loading another model releases the previous one.

        Raises:
            ModelNotInstalled, EngineNotFound (unknown model id).
        """
        from engines.generation.acestep.loading import load_pipeline, model_files

        device, dtype = self.device or "cpu", self.dtype or "float32"
        model_id = spec.model_id if spec.model_path else (spec.model_id or default_model)
        key = ("path", _resolved(spec.model_path)) if spec.model_path else ("model", str(model_id))
        if key in self._loaded:
            return self._loaded[key]
        record = None
        if spec.model_path:
            folder = key[1]
        else:
            from engines.models import ModelManager
            from engines.registry import get_model

            record = get_model(str(model_id))
            folder = str(ModelManager().require(str(model_id)))
        if record is not None and record.files:
            files, commit = {f.filename: f.sha256 for f in record.files}, record.revision
        else:  # a whole-repository snapshot (its lock record) or a --model-path folder (hashed)
            files, commit = model_files(folder, require_lock=record is not None)
        self._unload()
        pipe = load_pipeline(folder, device, dtype)
        revision = commit or (record.revision if record else None)
        loaded = _Loaded(pipe, model_id, revision, record.licence if record else "MIT",
                         folder if spec.model_path else None, files, bool(getattr(pipe, "is_turbo", False)))
        self._loaded = {key: loaded}
        return loaded

    # ------------------------------------------------------------------ the diffusion run

    def _sampling(self, loaded: _Loaded, params: dict[str, Any]) -> dict[str, Any]:
        steps = params.get("steps") or (8 if loaded.turbo else 32)
        guidance = 1.0 if loaded.turbo else float(params.get("guidance") or 7.0)
        return {"steps": int(steps), "guidance_scale": guidance, "shift": float(params["shift"]),
                "guidance_interval": (float(params["guidance_start"]), float(params["guidance_end"]))}

    def _render(self, loaded: _Loaded, job: _Render, spec: JobSpec, params: dict[str, Any], seeds: list[int],
                meta: dict[str, Any], progress: ProgressReporter, cancel: CancelToken) -> np.ndarray:
        """Run one batch (one row per seed) and decode it.

        Returns:
            float32 ``(batch, 2, frames * hop)`` at 48 kHz.
        """
        import torch

        from engines.generation.acestep import sampler, vae

        pipe = loaded.pipe
        fps = float(pipe.latents_per_second)
        hop = vae.hop_length(pipe.vae)
        batch, frames = len(seeds), job.frames
        channels = int(pipe.transformer.config.audio_acoustic_hidden_dim)
        device, dtype = pipe._execution_device, pipe.transformer.dtype
        sampling = self._sampling(loaded, params)
        job.info.update({"steps": sampling["steps"], "guidance_scale": sampling["guidance_scale"],
                         "shift": sampling["shift"]})

        def ticker(a: float, b: float, stage: str) -> Callable[[int, int], None]:
            def tick(done: int, total: int) -> None:
                cancel.raise_if_cancelled()
                progress(a + (b - a) * done / max(1, total), f"{stage} {done}/{total}")
            return tick

        progress(0.0, "reading the prompt")
        cancel.raise_if_cancelled()
        duration_s = job.duration_s if job.duration_s is not None else frames / fps
        hidden = sampler.encode_conditions(
            pipe, prompt=meta["prompt"], lyrics=meta["lyrics"], language=meta["language"], duration_s=duration_s,
            instruction=job.instruction, bpm=meta["bpm"], keyscale=meta["keyscale"],
            timesignature=meta["timesignature"], batch=batch)
        src_latents = None
        if job.src is not None:
            tiles = vae.tiling(float(params["encode_tile_seconds"]), spec.chunk_scale, fps)
            job.info["encode_tile_frames"] = tiles.tile
            audio = torch.from_numpy(np.ascontiguousarray(job.src, dtype=np.float32))[None]
            src_latents = vae.encode(pipe.vae, audio, tiles, on_tile=ticker(0.02, 0.1, "reading the source"))
            src_latents = src_latents.to(dtype=dtype).expand(batch, -1, -1)
        chunk = sampler.window_mask(frames, job.windows, batch, channels, device=device, dtype=dtype)
        if job.task_type == "text2music" or src_latents is None:
            ctx_src = sampler.silence_latents(pipe, frames, batch)
        elif job.task_type == "repaint":
            ctx_src = torch.where(chunk > 0.5, sampler.silence_latents(pipe, frames, batch), src_latents)
        elif job.task_type == "cover":
            ctx_src = sampler.cover_hints(pipe, src_latents)
        else:  # lego, complete, extract: the source as context
            ctx_src = src_latents
        cond = sampler.Conditioning(hidden=hidden, context=torch.cat([ctx_src, chunk], dim=-1))
        if sampling["guidance_scale"] > 1.0:
            cond.null_hidden = sampler.null_condition(pipe, hidden)
        if job.task_type == "cover" and job.cover_strength < 1.0:
            cond.cover_strength = job.cover_strength
            cond.non_cover_hidden = sampler.encode_conditions(
                pipe, prompt=meta["prompt"], lyrics=meta["lyrics"], language=meta["language"],
                duration_s=duration_s, instruction=pipe._get_task_instruction("text2music"), bpm=meta["bpm"],
                keyscale=meta["keyscale"], timesignature=meta["timesignature"], batch=batch)
        noise = sampler.initial_noise((batch, frames, channels), seeds, device, dtype)
        times = sampler.schedule(pipe, sampling["steps"], sampling["shift"])
        x_init = None
        if job.restyle_strength is not None and src_latents is not None:
            # SDEdit-style restyle (upstream cover_noise_strength): start at the schedule time
            # nearest to the strength from the source noised to that level.
            strength = float(job.restyle_strength)
            k = min(range(len(times)), key=lambda i: abs(times[i] - strength))
            times = times[k:] if strength > 0 else []
            t0 = times[0] if times else 0.0
            x_init = t0 * noise + (1.0 - t0) * src_latents
            job.info["restyle_start_time"] = t0
        repaint = None
        if job.inject and src_latents is not None:
            repaint = sampler.RepaintPlan(
                mask=chunk[..., 0].float(), clean=src_latents,
                inject_steps=int(round(float(params["keep_context"]) * len(times))),
                crossfade_frames=int(params["latent_crossfade_frames"]))
        progress(0.12, "generating")
        from engines.generation.acestep import guide as binding

        control = None
        if job.controls and job.guide is not None and job.guided:
            control = binding.build_guide(
                job.controls, job.guide, pipe.vae, frames=frames, fps=fps,
                timeline_start_s=job.timeline_start / float(job.info["sample_rate"]),
                windows=job.windows, chunk_scale=spec.chunk_scale, check=cancel.raise_if_cancelled)
            for kind in control.skipped:
                progress.log(f"the {kind} control lies outside what this job generates; it is only measured")
        if times:
            hook = binding.chain(binding.step_hook(control) if control is not None and control.active else None,
                                 self.step_hook)
            precise = control is not None and control.active and job.guide.precise
            with binding.frozen(pipe.vae, pipe.transformer if precise else None):
                latents = sampler.sample(
                    pipe, noise, cond, times, guidance_scale=sampling["guidance_scale"],
                    guidance_interval=sampling["guidance_interval"], x_init=x_init, repaint=repaint, hook=hook,
                    on_step=ticker(0.12, 0.85, "step"), decode=binding.checkpointed_decoder(pipe.vae),
                    start_hook=binding.start_hook(control) if precise else None)
        else:
            latents = x_init if x_init is not None else noise
        if control is not None:
            job.info["control_guidance"] = control.summary()
        cancel.raise_if_cancelled()
        tiles = vae.tiling(float(params["decode_tile_seconds"]), spec.chunk_scale, fps)
        job.info["decode_tile_frames"] = tiles.tile
        decoded = vae.decode(pipe.vae, latents, tiles, on_tile=ticker(0.85, 1.0, "decoding tile"))
        return decoded.numpy()

    def _render_groups(self, loaded: _Loaded, job: _Render, spec: JobSpec, params: dict[str, Any], seeds: list[int],
                       meta: dict[str, Any], progress: ProgressReporter, cancel: CancelToken) -> np.ndarray:
        """:meth:`_render` for all variations: one batch, or, after an out-of-memory retry
        (``spec.chunk_scale < 1``), sub-batches of ``ceil(variations * chunk_scale)`` rows, so the
        DiT's memory shrinks with the VAE tiles. Each row keeps its own seed, so the takes are
        the same up to float rounding."""
        n = len(seeds)
        group = n if spec.chunk_scale >= 1.0 else max(1, int(math.ceil(n * float(spec.chunk_scale))))
        job.info["batch"] = group
        parts = []
        for i in range(0, n, group):
            sub = progress.sub(i / n, min(n, i + group) / n)
            parts.append(self._render(loaded, job, spec, params, seeds[i:i + group], meta, sub, cancel))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    @staticmethod
    def _timeline(audio_48k: np.ndarray, frames: int, hop: int) -> np.ndarray:
        """Model-rate audio as the VAE's stereo input, cut or padded to ``frames`` latent frames."""
        from engines.generation.acestep.audio import fit_length, to_stereo

        return fit_length(to_stereo(audio_48k), frames * hop)

    # ------------------------------------------------------------------ shared helpers

    @staticmethod
    def _meta(spec: JobSpec) -> dict[str, Any]:
        from engines.generation.acestep.prompting import bpm_for_model, key_for_model, meter_for_model

        return {
            "prompt": str(getattr(spec, "prompt", "") or ""),
            "lyrics": str(getattr(spec, "lyrics", "") or ""),
            "language": str(getattr(spec, "language", "") or "en"),
            "bpm": bpm_for_model(getattr(spec, "bpm", None)),
            "keyscale": key_for_model(getattr(spec, "key", None)),
            "timesignature": meter_for_model(getattr(spec, "time_signature", None)),
        }

    def _emit(self, spec: JobSpec, outputs: dict[str, np.ndarray], sample_rate: int) -> dict[str, Any]:
        if not spec.output_dir:
            return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in outputs.items()}
        return {k: base.write_output(v, sample_rate, spec.output_dir, k) for k, v in outputs.items()}

    def _provenance(self, spec: JobSpec, loaded: _Loaded, params: dict[str, Any], seeds: list[int],
                    meta: dict[str, Any], job: _Render, t0: float, t_load: float) -> base.Provenance:
        import diffusers
        import torch

        prov = self.provenance(spec)
        guided = job.info.get("control_guidance") or {}
        acted = bool(guided.get("guided_steps") or guided.get("precise_loss"))
        applied = list(guided.get("controls", [])) if acted else []
        prov.model_id = loaded.model_id
        prov.revision = loaded.revision
        prov.licence = loaded.licence or "MIT"
        prov.params = dict(params)
        prov.device = str(loaded.pipe._execution_device)
        prov.dtype = str(loaded.pipe.transformer.dtype).replace("torch.", "")
        prov.timings.update({"load": round(t_load - t0, 6), "total": round(time.monotonic() - t0, 6)})
        prov.extra.update({
            "model_path": loaded.path,
            "model_files_sha256": dict(loaded.files),
            "seeds": list(seeds),
            "conditioning": {"prompt": meta["prompt"], "lyrics": meta["lyrics"], "language": meta["language"],
                             "bpm": meta["bpm"], "keyscale": meta["keyscale"], "timesignature": meta["timesignature"]},
            "requested": {"bpm": getattr(spec, "bpm", None), "key": getattr(spec, "key", None),
                          "time_signature": getattr(spec, "time_signature", None)},
            "ace_step_task": job.task_type,
            "metadata_duration_s": job.duration_s,
            "instruction": job.instruction,
            "latent_frames": job.frames,
            "model_rate": manifest.MODEL_RATE,
            "chunk_scale": spec.chunk_scale,
            **job.info,
            "controls_applied": sorted(applied),
            "controls_ignored": sorted(set(getattr(spec, "controls", {}) or {}) - set(applied)),
            "library": f"diffusers {diffusers.__version__}, torch {torch.__version__}",
            "sampler": "engines.generation.acestep.sampler (AceStepPipeline modules; repaint: ACE-Step 1.5 PR #816)",
        })
        return prov


def _resolved(path: Any) -> str:
    from pathlib import Path

    return str(Path(str(path)).expanduser().resolve())


def _latent_window(start: int, end: int, sample_rate: int, hop: int, frames: int) -> tuple[int, int]:
    """Frames ``[start, end)`` at ``sample_rate`` -> the latent frames covering them at 48 kHz."""
    a = int(math.floor(start * manifest.MODEL_RATE / sample_rate / hop))
    b = int(math.ceil(end * manifest.MODEL_RATE / sample_rate / hop))
    return max(0, a), min(frames, max(b, a + 1))


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _frames_for(samples_48k: float, hop: int) -> int:
    return int(math.ceil(samples_48k / hop))


def _timeline_frames(frames: int, sample_rate: int, hop: int) -> int:
    """Latent frames holding ``frames`` at ``sample_rate`` once at 48 kHz (with 16 samples of
    slack for the resampler unless the rate is already 48 kHz)."""
    if int(sample_rate) == manifest.MODEL_RATE:
        return _frames_for(frames, hop)
    return _frames_for(frames * manifest.MODEL_RATE / sample_rate + 16, hop)


class AceStepEngine(_AceStepBase):
    """ACE-Step 1.5: generate, extend, inpaint, add a stem, restyle (see the module docstring).

    Params: see ``manifest.ACESTEP.param_schema``. Models: ``acestep-v15-xl-turbo`` (default),
    ``acestep-v15-base`` (default for add_stem: lego and complete are trained on base),
    ``acestep-v15-sft``; or any diffusers AceStepPipeline folder as ``spec.model_path``.

    Raises (from :meth:`run`): ``InvalidJob`` (wrong task, bad lengths or regions, unknown
    instrument, longer than 10 minutes), ``ModelNotInstalled``, ``JobCancelled``, and the
    backend's out-of-memory error (the host then retries with smaller tiles).
    """

    entry = manifest.ACESTEP

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Run one generative job (:class:`engines.base.MusicSpec` subclasses)."""
        if spec.task not in self.tasks:
            raise InvalidJob(f"the ACE-Step engine can't do {spec.task!r}", f"it does: {', '.join(self.tasks)}")
        params = base.resolve_params(self.param_schema, spec.params)
        variations = int(getattr(spec, "variations", 1) or 1)
        if variations < 1:
            raise InvalidJob("variations must be at least 1")
        seeds = [int(spec.seed) + v for v in range(variations)]
        t0 = time.monotonic()
        progress(0.0, "loading model")
        default = manifest.BASE_MODEL if spec.task == base.ADD_STEM else self.default_model
        loaded = self._model(spec, default)
        t_load = time.monotonic()
        if spec.task in (base.ADD_STEM,) and loaded.turbo:
            progress.log("add-stem (lego/complete) is trained on the base model; a turbo model may do it poorly")
        planner = {base.GENERATE: self._plan_generate, base.EXTEND: self._plan_extend, base.INPAINT: self._plan_inpaint,
                   base.ADD_STEM: self._plan_add_stem, base.RESTYLE: self._plan_restyle}[spec.task]
        job, finish = planner(spec, params, loaded)
        if job.frames / float(loaded.pipe.latents_per_second) > MODEL_LIMIT_S + 1.0:
            raise InvalidJob(f"this job needs {job.frames / 25:.0f} s of audio in the model; ACE-Step handles 10 minutes",
                             "use a shorter region or less context")
        meta = self._meta(spec)
        sr = int(job.info["sample_rate"])
        self._plan_controls(spec, params, job)
        measured: dict[str, Any] = {}
        if job.controls and bool(params["compare_unguided"]):
            # the same job without the controls first (finish() then leaves the guided take's facts)
            job.guided = False
            plain = self._render_groups(loaded, job, spec, params, seeds, meta, progress.sub(0.02, 0.48), cancel)
            outs, dat = finish(plain)
            measured["adherence_unguided"], measured["control_loss_unguided"] = self._adherence(job, outs, dat, sr)
            job.guided = True
            decoded = self._render_groups(loaded, job, spec, params, seeds, meta, progress.sub(0.48, 0.95), cancel)
        else:
            decoded = self._render_groups(loaded, job, spec, params, seeds, meta, progress.sub(0.02, 0.95), cancel)
        progress(0.95, "finishing")
        outputs, data = finish(decoded)
        if job.controls:
            measured["adherence"], measured["control_loss"] = self._adherence(job, outputs, data, sr)
        cancel.raise_if_cancelled()
        result = JobResult(outputs=self._emit(spec, outputs, sr), sample_rate=sr, data=data)
        result.provenance = self._provenance(spec, loaded, params, seeds, meta, job, t0, t_load)
        result.provenance.extra.update(measured)
        progress(1.0, "done")
        return result

    # ------------------------------------------------------------------ controls (issue 14)

    def _plan_controls(self, spec: JobSpec, params: dict[str, Any], job: _Render) -> None:
        """``spec.controls`` -> ``job.controls`` (in job seconds) and ``job.guide``.

        Raises:
            InvalidJob: malformed controls or guidance parameters.
        """
        from engines.generation import guidance
        from engines.generation.acestep.guide import config_from_params

        raw = getattr(spec, "controls", None) or {}
        if not raw:
            return

        def load(path: str) -> tuple[np.ndarray, int]:
            return base.load_audio(path, None)

        job.controls = guidance.parse_controls(raw, int(job.info["sample_rate"]), load_audio=load)
        job.guide = config_from_params(params)

    def _adherence(self, job: _Render, outputs: dict[str, np.ndarray], data: dict[str, Any],
                   sr: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Adherence and loss of every take to every control, over the control's range
        (:func:`engines.generation.guidance.adherence`, :func:`~engines.generation.guidance.control_loss`).

        Returns:
            ``({kind: {"metric", "value" (mean over the takes that meet the range, or None),
            "takes": {name: value}, "frames": {name: n}, "range": [start, end] (frames at the
            output rate from the job's first frame), "strength"}}, {kind: {name: loss}})``.
        """
        from engines.generation import guidance

        adh: dict[str, Any] = {}
        losses: dict[str, Any] = {}
        rhythm_loss = job.guide.rhythm_loss if job.guide is not None else "mse"
        for c in job.controls:
            takes, frames, loss = {}, {}, {}
            metric = None
            for name, audio in outputs.items():
                offset_s = float(data["placements"][name]["offset"]) / sr
                a = guidance.adherence(audio, sr, c, offset_s)
                metric = a["metric"]
                takes[name] = None if a["value"] is None else round(a["value"], 4)
                frames[name] = a["frames"]
                value = guidance.control_loss(audio, sr, c, offset_s, rhythm_loss=rhythm_loss)
                loss[name] = None if value is None else round(value, 6)
            vals = [v for v in takes.values() if v is not None]
            adh[c.kind] = {"metric": metric, "value": round(float(np.mean(vals)), 4) if vals else None,
                           "takes": takes, "frames": frames, "range": list(c.range_samples), "strength": c.strength}
            losses[c.kind] = loss
        return adh, losses

    # ------------------------------------------------------------------ task plans

    def _source(self, spec: JobSpec) -> tuple[np.ndarray, int]:
        audio, sr = spec.load_audio()
        if audio.shape[1] == 0:
            raise InvalidJob(f"{spec.task} needs input audio with at least one frame")
        return audio, sr

    def _plan_generate(self, spec: JobSpec, params: dict[str, Any], loaded: _Loaded):
        from engines.generation.acestep.audio import fit_length, resample

        sr = int(spec.sample_rate or manifest.MODEL_RATE)
        n = int(getattr(spec, "frames", 0) or 0)
        if n <= 0:
            raise InvalidJob("generate needs a length: frames must be positive")
        hop = manifest.MODEL_RATE // int(loaded.pipe.latents_per_second)
        frames = _timeline_frames(n, sr, hop)
        # the metadata duration is the length asked for, as the pipeline's audio_duration
        job = _Render("text2music", frames, instruction=loaded.pipe._get_task_instruction("text2music"),
                      duration_s=n / sr)
        job.info.update({"frames": n, "sample_rate": sr})

        def finish(decoded: np.ndarray):
            import torch

            from engines.generation.acestep.sampler import peak_normalize

            normed = peak_normalize(torch.from_numpy(decoded)).numpy()
            outputs, placements = {}, {}
            for v in range(normed.shape[0]):
                name = f"take{v + 1}"
                outputs[name] = fit_length(resample(normed[v], manifest.MODEL_RATE, sr), n)
                placements[name] = {"offset": 0, "variation": v + 1, "region": None}
            return outputs, {"placements": placements}

        return job, finish

    def _plan_extend(self, spec: JobSpec, params: dict[str, Any], loaded: _Loaded):
        from engines.generation.acestep.audio import (declick, fit_length, loudness_db, loudness_gain,
                                                      match_channels, rate_step, resample)

        audio, sr = self._source(spec)
        n = int(getattr(spec, "frames", 0) or 0)
        if n <= 0:
            raise InvalidJob("extend needs a length: frames must be positive")
        direction = str(getattr(spec, "direction", "after"))
        if direction not in ("after", "before"):
            raise InvalidJob(f"extend direction must be 'after' or 'before', not {direction!r}")
        hop = manifest.MODEL_RATE // int(loaded.pipe.latents_per_second)
        channels, total = audio.shape
        ctx = min(total, max(1, int(float(params["context_seconds"]) * sr)))
        fade = int(round(float(params["crossfade_ms"]) * sr / 1000.0))
        rate = manifest.MODEL_RATE
        if direction == "after":
            src = audio[:, total - ctx:]
            start = total - ctx
            src48 = resample(src, sr, rate)
            seam48 = ctx * rate / sr
            frames = _timeline_frames(ctx + n, sr, hop)
            windows = [(int(math.floor(seam48 / hop)), frames)]
        else:
            src = audio[:, :ctx]
            step = rate_step(sr, rate)
            n_gen = int(math.ceil(n / step) * step)  # new span with a whole number of 48 kHz frames
            start = -n_gen
            lead48 = n_gen * rate // sr
            src48 = np.concatenate([np.zeros((channels, lead48), np.float32), resample(src, sr, rate)], axis=1)
            frames = _frames_for(src48.shape[1], hop)
            windows = [(0, int(math.ceil(lead48 / hop)))]
        job = _Render("repaint", frames, src=self._timeline(src48, frames, hop), windows=windows,
                      instruction=loaded.pipe._get_task_instruction("repaint"), inject=True, timeline_start=start)
        job.info.update({"sample_rate": sr, "direction": direction, "context_frames": ctx, "frames": n, "latent_windows": windows})
        match = bool(params["match_loudness"])
        ref = src[:, -int(CONTEXT_LOUDNESS_S * sr):] if direction == "after" else src[:, :int(CONTEXT_LOUDNESS_S * sr)]
        target = loudness_db(ref, sr)

        def finish(decoded: np.ndarray):
            outputs, placements = {}, {}
            for v in range(decoded.shape[0]):
                y = match_channels(resample(decoded[v], rate, sr), channels)
                if direction == "after":
                    y = fit_length(y, ctx + n)
                    new, model_seam, src_seam = y[:, ctx:ctx + n], y[:, ctx - 1], src[:, -1]
                else:
                    y = fit_length(y, n_gen + 1)
                    new, model_seam, src_seam = y[:, n_gen - n:n_gen], y[:, n_gen], src[:, 0]
                gain = loudness_gain(new, sr, target) if match else 1.0
                new = new * np.float32(gain)
                offset = src_seam.astype(np.float64) - gain * model_seam.astype(np.float64)
                new = declick(new, offset, fade, at_end=(direction == "before"))
                name = f"take{v + 1}"
                outputs[name] = np.ascontiguousarray(new, dtype=np.float32)
                placements[name] = {"offset": total if direction == "after" else -n, "variation": v + 1,
                                    "region": None}
            return outputs, {"placements": placements, "direction": direction}

        return job, finish

    def _plan_inpaint(self, spec: JobSpec, params: dict[str, Any], loaded: _Loaded):
        from engines.generation.acestep.audio import (fit_length, loudness_db, loudness_gain, match_channels, resample,
                                                      splice_inside)

        audio, sr = self._source(spec)
        channels, total = audio.shape
        regions = [tuple(int(x) for x in r) for r in (getattr(spec, "regions", None) or [])]
        if not regions:
            raise InvalidJob("inpaint needs at least one region")
        prev = 0
        for m0, m1 in regions:
            if not (0 <= m0 < m1 <= total) or m0 < prev:
                raise InvalidJob(f"inpaint region {m0}..{m1} is outside the input (0..{total} frames) or overlaps "
                                 "another", "give sorted, non-overlapping regions inside the audio")
            prev = m1
        hop = manifest.MODEL_RATE // int(loaded.pipe.latents_per_second)
        rate = manifest.MODEL_RATE
        src48 = resample(audio, sr, rate)
        frames = _timeline_frames(total, sr, hop)
        windows = _merge([_latent_window(m0, m1, sr, hop, frames) for m0, m1 in regions])
        job = _Render("repaint", frames, src=self._timeline(src48, frames, hop), windows=windows,
                      instruction=loaded.pipe._get_task_instruction("repaint"), inject=True)
        job.info.update({"sample_rate": sr, "regions": [list(r) for r in regions], "latent_windows": [list(w) for w in windows]})
        fade = int(round(float(params["crossfade_ms"]) * sr / 1000.0))
        match = bool(getattr(spec, "match_loudness", True))
        ctx_n = int(CONTEXT_LOUDNESS_S * sr)
        targets = []
        for m0, m1 in regions:
            around = np.concatenate([audio[:, max(0, m0 - ctx_n):m0], audio[:, m1:m1 + ctx_n]], axis=1)
            targets.append(loudness_db(around, sr) if around.shape[1] else loudness_db(audio[:, m0:m1], sr))
        gains: dict[str, float] = {}

        def finish(decoded: np.ndarray):
            outputs, placements = {}, {}
            for v in range(decoded.shape[0]):
                y = fit_length(match_channels(resample(decoded[v], rate, sr), channels), total)
                for r, (m0, m1) in enumerate(regions, 1):
                    gen = y[:, m0:m1]
                    gain = loudness_gain(gen, sr, targets[r - 1]) if match else 1.0
                    name = f"take{v + 1}" if len(regions) == 1 else f"take{v + 1}_region{r}"
                    outputs[name] = splice_inside(audio[:, m0:m1], gen * np.float32(gain), fade)
                    placements[name] = {"offset": m0, "variation": v + 1, "region": r}
                    gains[name] = round(20 * math.log10(gain), 3)
            job.info["loudness_gain_db"] = gains
            return outputs, {"placements": placements}

        return job, finish

    def _context_region(self, spec: JobSpec, total: int) -> tuple[int, int]:
        before, after = (int(x) for x in spec.context)
        if before < 0 or after < 0 or before + after >= total:
            raise InvalidJob(f"context margins {before}+{after} leave nothing of the {total}-frame input")
        return before, total - after

    def _plan_add_stem(self, spec: JobSpec, params: dict[str, Any], loaded: _Loaded):
        from engines.generation.acestep.audio import fit_length, match_channels, resample
        from engines.generation.acestep.prompting import track_name

        audio, sr = self._source(spec)
        channels, total = audio.shape
        try:
            track = track_name(getattr(spec, "instrument", ""))
        except ValueError as exc:
            raise InvalidJob(str(exc)) from None
        a, b = self._context_region(spec, total)
        hop = manifest.MODEL_RATE // int(loaded.pipe.latents_per_second)
        rate = manifest.MODEL_RATE
        src48 = resample(audio, sr, rate)
        frames = _timeline_frames(total, sr, hop)
        mode = str(params["stem_mode"])
        pipe = loaded.pipe
        if mode == "lego":
            windows = None if (a, b) == (0, total) else [_latent_window(a, b, sr, hop, frames)]
            job = _Render("lego", frames, src=self._timeline(src48, frames, hop), windows=windows,
                          instruction=pipe._get_task_instruction("lego", track_name=track))
        else:
            job = _Render("complete", frames, src=self._timeline(src48, frames, hop),
                          instruction=pipe._get_task_instruction("complete", complete_track_classes=[track]))
        job.info.update({"sample_rate": sr, "instrument": track, "stem_mode": mode, "region": [a, b]})

        def finish(decoded: np.ndarray):
            outputs, placements = {}, {}
            for v in range(decoded.shape[0]):
                y = fit_length(match_channels(resample(decoded[v], rate, sr), channels), total)[:, a:b]
                peak = float(np.max(np.abs(y))) if y.size else 0.0
                if peak > 1.0:  # anti-clip only: the stem keeps the level the model gave it
                    y = y / np.float32(peak)
                name = f"take{v + 1}"
                outputs[name] = np.ascontiguousarray(y, dtype=np.float32)
                placements[name] = {"offset": a, "variation": v + 1, "region": None}
            return outputs, {"placements": placements, "instrument": track}

        return job, finish

    def _plan_restyle(self, spec: JobSpec, params: dict[str, Any], loaded: _Loaded):
        from engines.generation.acestep.audio import fit_length, loudness_db, loudness_gain, match_channels, resample

        audio, sr = self._source(spec)
        channels, total = audio.shape
        a, b = self._context_region(spec, total)
        strength = float(getattr(spec, "strength", 0.5))
        if not 0.0 <= strength <= 1.0:
            raise InvalidJob(f"restyle strength must be between 0 and 1, not {strength}")
        hop = manifest.MODEL_RATE // int(loaded.pipe.latents_per_second)
        rate = manifest.MODEL_RATE
        src48 = resample(audio, sr, rate)
        frames = _timeline_frames(total, sr, hop)
        job = _Render("cover", frames, src=self._timeline(src48, frames, hop),
                      instruction=loaded.pipe._get_task_instruction("cover"), restyle_strength=strength,
                      cover_strength=float(params["cover_conditioning"]))
        job.info.update({"sample_rate": sr, "strength": strength, "region": [a, b]})
        match = bool(params["match_loudness"])
        target = loudness_db(audio[:, a:b], sr)

        def finish(decoded: np.ndarray):
            outputs, placements = {}, {}
            for v in range(decoded.shape[0]):
                y = fit_length(match_channels(resample(decoded[v], rate, sr), channels), total)[:, a:b]
                if match:
                    y = y * np.float32(loudness_gain(y, sr, target))
                name = f"take{v + 1}"
                outputs[name] = np.ascontiguousarray(y, dtype=np.float32)
                placements[name] = {"offset": a, "variation": v + 1, "region": None}
            return outputs, {"placements": placements}

        return job, finish


class AceStepExtractEngine(_AceStepBase):
    """ACE-Step 1.5's extract task as a separation engine: one named stem per run.

    ``spec.stems`` must name exactly one stem (``manifest.TRACK_NAMES`` or an alias such as
    "keys", "piano"). The output, named as asked, covers the input minus its context margins
    at the input's rate and exact frame count. The default model is the base model (extract
    is trained on base).

    Raises (from :meth:`run`): ``InvalidJob`` (not one stem, unknown stem), ``ModelNotInstalled``,
    ``JobCancelled``, out-of-memory errors.
    """

    entry = manifest.ACESTEP_EXTRACT
    default_model = manifest.BASE_MODEL

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Extract one stem from ``spec.audio`` (a :class:`engines.base.SeparateSpec`)."""
        from engines.generation.acestep.audio import fit_length, match_channels, resample
        from engines.generation.acestep.prompting import track_name

        if spec.task != base.SEPARATE:
            raise InvalidJob(f"the ACE-Step extract engine can't do {spec.task!r}")
        params = base.resolve_params(self.param_schema, spec.params)
        stems = list(getattr(spec, "stems", []) or [])
        if len(stems) != 1:
            raise InvalidJob("ACE-Step extract makes one stem per run",
                             f"name one of: {', '.join(manifest.TRACK_NAMES)}")
        try:
            track = track_name(stems[0])
        except ValueError as exc:
            raise InvalidJob(str(exc)) from None
        t0 = time.monotonic()
        progress(0.0, "loading model")
        loaded = self._model(spec, self.default_model)
        t_load = time.monotonic()
        audio, sr = spec.load_audio()
        channels, total = audio.shape
        before, after = (int(x) for x in spec.context)
        if before < 0 or after < 0 or before + after >= total:
            raise InvalidJob(f"context margins {before}+{after} leave nothing of the {total}-frame input")
        hop = manifest.MODEL_RATE // int(loaded.pipe.latents_per_second)
        rate = manifest.MODEL_RATE
        src48 = resample(audio, sr, rate)
        frames = _timeline_frames(total, sr, hop)
        if frames / float(loaded.pipe.latents_per_second) > MODEL_LIMIT_S + 1.0:
            raise InvalidJob("ACE-Step extracts from at most 10 minutes at a time", "separate a shorter region")
        job = _Render("extract", frames, src=self._timeline(src48, frames, hop),
                      instruction=loaded.pipe._get_task_instruction("extract", track_name=track))
        job.info.update({"sample_rate": sr, "stem": track})
        meta = {"prompt": "", "lyrics": "", "language": "en", "bpm": None, "keyscale": None, "timesignature": None}
        seeds = [int(spec.seed)]
        decoded = self._render(loaded, job, spec, params, seeds, meta, progress.sub(0.02, 0.95), cancel)
        y = fit_length(match_channels(resample(decoded[0], rate, sr), channels), total)[:, before:total - after]
        cancel.raise_if_cancelled()
        outputs = self._emit(spec, {stems[0]: np.ascontiguousarray(y, dtype=np.float32)}, sr)
        result = JobResult(outputs=outputs, sample_rate=sr, data={"stem": track})
        result.provenance = self._provenance(spec, loaded, params, seeds, meta, job, t0, t_load)
        progress(1.0, "done")
        return result
