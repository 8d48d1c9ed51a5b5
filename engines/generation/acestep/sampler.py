"""Our ACE-Step 1.5 sampling loop over the modules of diffusers' ``AceStepPipeline``.

The loop is ``AceStepPipeline.__call__`` (diffusers 0.42, ``pipelines/ace_step``) taken
apart so that the engine can report every step, stop between steps, seed each variation
of a batch on its own, re-inject the source during repainting, and offer a guidance hook:

* text and lyrics: ``pipe.encode_prompt`` (Qwen3 text encoder) then
  ``pipe.condition_encoder`` with the learned ``silence_latent`` as timbre reference,
  exactly as the pipeline does;
* schedule: ``pipe._get_timestep_schedule`` (shifted linear flow-matching schedule) fed
  to a private copy of the pipeline's ``FlowMatchEulerDiscreteScheduler``;
* velocity: ``pipe.transformer`` (``AceStepTransformer1DModel``), with adaptive projected
  guidance (APG; ``diffusers.guiders.adaptive_projected_guidance.normalized_guidance``,
  momentum -0.75, norm threshold 2.5) on base/sft models, and the cover/text2music
  velocity blend of the pipeline for restyle;
* repaint (extend, inpaint): after each Euler step, the frames outside the repaint
  window are replaced by the source latents noised to the next step's level, and after
  the loop the window borders are blended with the source over a few latent frames.
  This is ACE-Step 1.5 upstream PR #816 ("feat: add step-level source injection and
  boundary blending for repaint", ``repaint_step_injection.py``), which the diffusers
  port lacks; our mask may hold several windows.

With repaint injection and blending off, :func:`sample` computes what
``AceStepPipeline.__call__`` computes (tests and ``benchmarks/generation_speed.py``
measure the difference).

Tensors: latents are ``(batch, frames, channels)`` at 25 frames per second (1920 samples
at 48 kHz per frame), as in the pipeline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

# --------------------------------------------------------------------------- guidance hook (issue 14)


@dataclass
class StepState:
    """What a per-step hook sees (DITTO-style training-free control guidance plugs in here).

    Attributes:
        index: step number, 0-based; ``count``: steps in this run.
        t: the step's flow time in [0, 1] (1 = noise); ``t_next``: the time after the step.
        x_t: current latents ``(batch, frames, channels)``.
        velocity: the model's (guided) velocity at ``(x_t, t)``, same shape.
        model: ``model(x, t) -> velocity`` with the job's conditioning (differentiable when
            called under ``torch.enable_grad()``), for hooks that optimise through the model.
        decode: ``decode(latents) -> audio`` ``(batch, 2, frames * 1920)`` at 48 kHz through
            the VAE decoder, differentiable; pass a crop of the latents.
        repaint_mask: ``(batch, frames)`` 1 where the model generates, 0 where the source
            is held; None outside repainting.
    """

    index: int
    count: int
    t: float
    t_next: float
    x_t: torch.Tensor
    velocity: torch.Tensor
    model: Callable[[torch.Tensor, float], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]
    repaint_mask: torch.Tensor | None = None

    @property
    def x0(self) -> torch.Tensor:
        """The clean-latent estimate of flow matching, ``x_t - t * velocity``."""
        return self.x_t - self.t * self.velocity


@dataclass
class StepUpdate:
    """What a hook may change before the Euler step: new latents and/or a new velocity."""

    x_t: torch.Tensor | None = None
    velocity: torch.Tensor | None = None


StepHook = Callable[[StepState], "StepUpdate | None"]
"""``hook(state) -> StepUpdate | None``, called at every step after the velocity is known."""

StartHook = Callable[[torch.Tensor, float, Callable[[torch.Tensor, float], torch.Tensor]], torch.Tensor]
"""``start_hook(x, t0, model) -> x``: called once before the first step with the starting
latents, the first time and the differentiable ``model(x, t) -> velocity``."""


# --------------------------------------------------------------------------- conditioning


@torch.no_grad()
def encode_conditions(pipe: Any, *, prompt: str, lyrics: str, language: str, duration_s: float, instruction: str,
                      bpm: int | None, keyscale: str | None, timesignature: str | None, batch: int,
                      max_text_length: int = 256, max_lyric_length: int = 2048) -> torch.Tensor:
    """Text, lyrics and metadata -> the DiT's cross-attention sequence.

    One prompt for the whole batch: encoded once, expanded to ``batch`` rows.

    Args:
        pipe: an ``AceStepPipeline``.
        prompt, lyrics, language: as ``AceStepPipeline.__call__``'s ``prompt``, ``lyrics``,
            ``vocal_language``.
        duration_s: the length (seconds) written into the metadata ("- duration: N seconds").
        instruction: the task instruction (``AceStepPipeline._get_task_instruction``).
        bpm, keyscale, timesignature: metadata conditioning (None = "N/A").

    Returns:
        ``(batch, tokens, hidden)`` in the transformer's dtype.

    Method: ``pipe.encode_prompt`` and ``pipe.condition_encoder`` with the learned silence
    latent as timbre reference (``AceStepPipeline.__call__`` steps 1, 3 and 4).
    """
    device, dtype = pipe._execution_device, pipe.transformer.dtype
    text_hs, text_mask, lyric_hs, lyric_mask = pipe.encode_prompt(
        prompt=[prompt], lyrics=[lyrics], device=device, vocal_language=[language], audio_duration=duration_s,
        instruction=instruction, bpm=bpm, keyscale=keyscale, timesignature=timesignature,
        max_text_length=max_text_length, max_lyric_length=max_lyric_length,
    )
    timbre_frames = math.ceil(30 * pipe.latents_per_second)
    refer = pipe.condition_encoder.silence_latent[:, :timbre_frames, :].to(device=device, dtype=dtype).contiguous()
    order = torch.zeros(1, device=device, dtype=torch.long)
    hidden, _ = pipe.condition_encoder(
        text_hidden_states=text_hs, text_attention_mask=text_mask, lyric_hidden_states=lyric_hs,
        lyric_attention_mask=lyric_mask, refer_audio_acoustic_hidden_states_packed=refer, refer_audio_order_mask=order,
    )
    return hidden.expand(batch, -1, -1)


@torch.no_grad()
def silence_latents(pipe: Any, frames: int, batch: int) -> torch.Tensor:
    """The learned silence latent tiled to ``frames``: ``(batch, frames, channels)``
    (``AceStepPipeline.prepare_src_latents`` without source)."""
    latents, _ = pipe.prepare_src_latents(device=pipe._execution_device, dtype=pipe.transformer.dtype,
                                          batch_size=batch, latent_length=frames)
    return latents


def window_mask(frames: int, windows: list[tuple[int, int]] | None, batch: int, channels: int, *,
                device: Any = None, dtype: Any = None) -> torch.Tensor:
    """The DiT's chunk mask: 1.0 in the latent frames to generate, 0.0 where the source is kept.

    Args:
        windows: ``[(start, end)]`` latent frames; None = the whole span.

    Returns:
        ``(batch, frames, channels)`` (the pipeline's ``_build_chunk_mask`` layout; several windows allowed).
    """
    m = torch.zeros(frames, device=device, dtype=dtype or torch.float32)
    if windows is None:
        m[:] = 1.0
    for a, b in windows or ():
        m[max(0, a):min(frames, b)] = 1.0
    return m.view(1, frames, 1).expand(batch, frames, channels).clone()


@torch.no_grad()
def cover_hints(pipe: Any, src: torch.Tensor) -> torch.Tensor:
    """Source latents -> 5 Hz semantic codes -> 25 Hz hints, the cover task's context
    (``AceStepPipeline.prepare_src_latents`` with ``task_type="cover"``).

    Raises:
        ValueError: the model has no audio tokenizer/detokenizer.
    """
    if getattr(pipe, "audio_tokenizer", None) is None or getattr(pipe, "audio_token_detokenizer", None) is None:
        raise ValueError("this model has no audio tokenizer, which restyle (cover) needs")
    device, dtype = pipe._execution_device, pipe.transformer.dtype
    silence = pipe.condition_encoder.silence_latent.to(device=device, dtype=dtype)
    quantized, _ = pipe.audio_tokenizer.tokenize(src.to(device=device, dtype=dtype), silence)
    hints = pipe.audio_token_detokenizer(quantized.to(device=device, dtype=dtype))
    return hints[:, : src.shape[1], :].contiguous()


def schedule(pipe: Any, steps: int, shift: float) -> list[float]:
    """The flow-matching times ``t_0 = 1 > ... > t_{steps-1}`` (the scheduler appends 0):
    ``pipe._get_timestep_schedule`` (linear in [1, 0], shifted ``s t / (1 + (s - 1) t)``)."""
    return pipe._get_timestep_schedule(num_inference_steps=int(steps), shift=float(shift),
                                       device=torch.device("cpu"), dtype=torch.float32).tolist()


def initial_noise(shape: tuple[int, int, int], seeds: list[int], device: Any, dtype: Any) -> torch.Tensor:
    """Gaussian noise ``(batch, frames, channels)``, row ``i`` drawn from a CPU generator seeded
    ``seeds[i]`` (``diffusers.utils.torch_utils.randn_tensor`` with a list of generators, as
    ``AceStepPipeline.prepare_latents``), so a variation is the same alone or in a batch and on
    every device."""
    from diffusers.utils.torch_utils import randn_tensor

    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    return randn_tensor(shape, generator=gens if len(gens) > 1 else gens[0], device=torch.device(device), dtype=dtype)


# --------------------------------------------------------------------------- repaint (upstream PR #816)


@dataclass
class RepaintPlan:
    """Source re-injection and border blending for repainting (ACE-Step 1.5 PR #816).

    Attributes:
        mask: ``(batch, frames)``, 1 where the model generates, 0 where the source is held.
        clean: the source's clean latents ``(batch, frames, channels)``.
        inject_steps: re-inject after the first ``inject_steps`` steps
            (``round(keep_context * steps)`` upstream; never after the last step).
        crossfade_frames: width of the linear latent blend outside each window border
            (0 = hard replacement of everything outside the windows).
    """

    mask: torch.Tensor
    clean: torch.Tensor
    inject_steps: int
    crossfade_frames: int


def inject_source(x: torch.Tensor, plan: RepaintPlan, t_next: float, noise: torch.Tensor) -> torch.Tensor:
    """Hold the frames outside the windows to the source noised to ``t_next``:
    ``m * x + (1 - m) * (t_next * noise + (1 - t_next) * clean)`` (upstream
    ``apply_repaint_step_injection``)."""
    z = t_next * noise + (1.0 - t_next) * plan.clean
    m = plan.mask.to(x.dtype).unsqueeze(-1)
    return m * x + (1.0 - m) * z


def soft_mask(mask: torch.Tensor, crossfade_frames: int) -> torch.Tensor:
    """``mask`` (``(batch, frames)``, 0/1) with linear ramps of ``crossfade_frames`` frames
    outside every window border (``torch.linspace(0, 1, n + 2)[1:-1]``, upstream
    ``build_soft_repaint_mask``, extended to several windows: where ramps meet, the larger wins)."""
    out = mask.float().clone()
    if crossfade_frames <= 0:
        return out
    frames = out.shape[1]
    for b in range(out.shape[0]):
        row = mask[b] > 0.5
        edges = torch.nonzero(row[1:] != row[:-1]).flatten().tolist()
        for e in edges:
            if bool(row[e + 1]):  # window starts at e + 1: ramp up over the frames before it
                start = max(0, e + 1 - crossfade_frames)
                n = e + 1 - start
                ramp = torch.linspace(0.0, 1.0, n + 2)[1:-1]
                out[b, start:e + 1] = torch.maximum(out[b, start:e + 1], ramp.to(out.device))
            else:  # window ends at e + 1: ramp down after it
                end = min(frames, e + 1 + crossfade_frames)
                n = end - (e + 1)
                ramp = torch.linspace(1.0, 0.0, n + 2)[1:-1]
                out[b, e + 1:end] = torch.maximum(out[b, e + 1:end], ramp.to(out.device))
    return out


def blend_borders(x: torch.Tensor, plan: RepaintPlan) -> torch.Tensor:
    """After the loop: ``s * x + (1 - s) * clean`` with ``s = soft_mask(mask)`` (upstream
    ``apply_repaint_boundary_blend``)."""
    s = soft_mask(plan.mask, plan.crossfade_frames).to(device=x.device, dtype=x.dtype).unsqueeze(-1)
    return s * x + (1.0 - s) * plan.clean


# --------------------------------------------------------------------------- the loop


@dataclass
class Conditioning:
    """Everything the DiT is conditioned on for one batch.

    Attributes:
        hidden: cross-attention sequence ``(batch, tokens, hidden)`` (:func:`encode_conditions`).
        context: source latents and chunk mask concatenated, ``(batch, frames, 2 * channels)``.
        null_hidden: the learned null condition broadcast like ``hidden`` (CFG), or None.
        non_cover_hidden: the text2music condition blended in by restyle, or None.
        cover_strength: weight of the cover velocity (1 = cover only).
    """

    hidden: torch.Tensor
    context: torch.Tensor
    null_hidden: torch.Tensor | None = None
    non_cover_hidden: torch.Tensor | None = None
    cover_strength: float = 1.0


@torch.no_grad()
def null_condition(pipe: Any, hidden: torch.Tensor) -> torch.Tensor:
    """The learned ``null_condition_emb`` broadcast to ``hidden``'s shape (CFG's unconditional input).

    Raises:
        ValueError: the model has none (turbo models).
    """
    null = getattr(pipe.condition_encoder, "null_condition_emb", None)
    if null is None:
        raise ValueError("this model has no null condition, so it can't use guidance")
    return null.to(device=hidden.device, dtype=hidden.dtype).expand_as(hidden)


def sample(pipe: Any, noise: torch.Tensor, cond: Conditioning, times: list[float], *, guidance_scale: float = 1.0,
           guidance_interval: tuple[float, float] = (0.0, 1.0), x_init: torch.Tensor | None = None,
           repaint: RepaintPlan | None = None, hook: StepHook | None = None,
           on_step: Callable[[int, int], None] | None = None,
           decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
           start_hook: StartHook | None = None) -> torch.Tensor:
    """Integrate the flow-matching ODE from ``times[0]`` to 0 with Euler steps.

    Args:
        pipe: an ``AceStepPipeline`` (its transformer, scheduler config and VAE are used).
        noise: the initial noise ``(batch, frames, channels)`` (also the noise of repaint
            re-injection, as upstream).
        cond: :class:`Conditioning`.
        times: the schedule (:func:`schedule`, possibly cut for restyle).
        guidance_scale: APG scale; applied when > 1 and ``cond.null_hidden`` is set, on the
            steps whose ``1 - t`` lies in ``guidance_interval`` (as the pipeline).
        x_init: the starting latents (restyle: the noised source); None = ``noise``.
        repaint: :class:`RepaintPlan` or None.
        hook: :data:`StepHook` or None.
        on_step: ``on_step(done, total)`` after every step (progress; may raise to cancel).
        decode: the differentiable decoder handed to ``hook`` (``StepState.decode``).
        start_hook: :data:`StartHook` or None: may replace the starting latents before the
            first step (precise control guidance optimises them, DITTO).

    Returns:
        The final latents ``(batch, frames, channels)``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer, normalized_guidance

    transformer = pipe.transformer
    device, dtype = noise.device, transformer.dtype
    batch = noise.shape[0]
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(sigmas=list(times), device=device)
    sigmas = scheduler.sigmas.tolist()
    do_cfg = guidance_scale > 1.0 and cond.null_hidden is not None
    momentum = MomentumBuffer(momentum=-0.75) if do_cfg else None

    def velocity(x: torch.Tensor, t: float, hidden: torch.Tensor) -> torch.Tensor:
        tt = t * torch.ones((x.shape[0],), device=device, dtype=dtype)
        return transformer(hidden_states=x, timestep=tt, timestep_r=tt, encoder_hidden_states=hidden,
                           context_latents=cond.context, return_dict=False)[0]

    def model_fn(x: torch.Tensor, t: float) -> torch.Tensor:
        return velocity(x, t, cond.hidden)

    def guided(x: torch.Tensor, t: float) -> torch.Tensor:
        ratio = 1.0 - t
        if do_cfg and guidance_interval[0] <= ratio <= guidance_interval[1]:
            tt = t * torch.ones((batch,), device=device, dtype=dtype)
            out = transformer(hidden_states=torch.cat([x, x]), timestep=torch.cat([tt, tt]),
                              timestep_r=torch.cat([tt, tt]),
                              encoder_hidden_states=torch.cat([cond.hidden, cond.null_hidden]),
                              context_latents=torch.cat([cond.context, cond.context]), return_dict=False)[0]
            v_cond, v_uncond = out.chunk(2, dim=0)
            v = normalized_guidance(pred_cond=v_cond, pred_uncond=v_uncond, guidance_scale=guidance_scale - 1.0,
                                    momentum_buffer=momentum, eta=0.0, norm_threshold=2.5,
                                    use_original_formulation=True, norm_dim=(1,))
        else:
            v = velocity(x, t, cond.hidden)
        if cond.non_cover_hidden is not None and cond.cover_strength < 1.0:
            v_nc = velocity(x, t, cond.non_cover_hidden)
            v = cond.cover_strength * v + (1.0 - cond.cover_strength) * v_nc
        return v

    x = (noise if x_init is None else x_init).to(device=device, dtype=dtype)
    count = len(scheduler.timesteps)
    if start_hook is not None and count:
        x = start_hook(x, float(scheduler.timesteps[0]), model_fn).to(dtype)
    with torch.no_grad():
        for i, t_sched in enumerate(scheduler.timesteps):
            t = float(t_sched)
            v = guided(x, t)
            if hook is not None:
                state = StepState(index=i, count=count, t=t, t_next=float(sigmas[i + 1]), x_t=x, velocity=v,
                                  model=model_fn, decode=decode or _no_decode,
                                  repaint_mask=None if repaint is None else repaint.mask)
                update = hook(state)
                if update is not None:
                    x = x if update.x_t is None else update.x_t.to(dtype)
                    v = v if update.velocity is None else update.velocity.to(dtype)
            x = scheduler.step(v, t_sched, x, return_dict=False)[0]
            if repaint is not None and i < min(repaint.inject_steps, count - 1):
                x = inject_source(x, repaint, float(sigmas[i + 1]), noise)
            if on_step is not None:
                on_step(i + 1, count)
        if repaint is not None:
            x = blend_borders(x, repaint)
    return x


def _no_decode(latents: torch.Tensor) -> torch.Tensor:  # pragma: no cover - only without a decoder
    raise RuntimeError("no decoder was given to the sampler")


# --------------------------------------------------------------------------- pipeline-style post-processing


def peak_normalize(audio: torch.Tensor) -> torch.Tensor:
    """The pipeline's output normalisation of generated audio ``(batch, channels, samples)``:
    divide by the peak where it exceeds 1, then scale the peak to -1 dBFS
    (``AceStepPipeline.__call__`` step 11)."""
    audio = audio.float()
    peak = audio.abs().amax(dim=[1, 2], keepdim=True)
    if torch.any(peak > 1.0):
        audio = audio / peak.clamp(min=1.0)
    target = 10.0 ** (-1.0 / 20.0)
    peak = audio.abs().amax(dim=[1, 2], keepdim=True).clamp(min=1e-6)
    return audio * (target / peak)
