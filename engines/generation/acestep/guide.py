"""ACE-Step binding of the training-free control guidance (:mod:`engines.generation.guidance`).

* :func:`checkpointed_decoder`: the VAE decoder (``AutoencoderOobleck.decoder``) as a
  differentiable function of DiT-layout latents, with gradient checkpointing per block
  stage and residual unit (``torch.utils.checkpoint``, non-reentrant), as DITTO
  (Novack et al. 2024, section 3) checkpoints its sampler: a backward pass keeps only
  the segment boundaries and recomputes one segment at a time. Its snake activations keep
  only their input for the backward pass (a third of what autograd keeps).
* :func:`frozen`: no parameter gradients while guiding (only the latents need one: a
  backward pass through a convolution then skips its weight gradient, about half the cost).
* :func:`config_from_params`: the engine parameters (``manifest._CONTROLS``) as a
  :class:`~engines.generation.guidance.GuidanceConfig`.
* :func:`build_guide`, :func:`step_hook`, :func:`start_hook`, :func:`chain`: the guide for
  one sampling run and its adapters to :mod:`engines.generation.acestep.sampler`'s hooks.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

import numpy as np

from engines.generation import guidance
from engines.generation.acestep.sampler import StepHook, StepState, StepUpdate

TILE_SECONDS = {"cpu": 2.0, "other": 8.0}
"""Core length of a gradient tile (seconds of latents) at ``chunk_scale`` 1, on the CPU and
on accelerators. On the CPU the full-size decoder's checkpointed backward pass over one tile
(2 s plus 2 x 0.48 s of overlap) adds about 1.2 GB to the peak resident memory in fp32;
a GPU has the memory for longer tiles, whose overlap wastes less (12 % instead of 48 %)."""


def checkpointed_decoder(vae: Any, *, checkpoint: bool = True) -> Callable[[Any], Any]:
    """``decode(latents (batch, frames, channels)) -> audio (batch, audio_channels, frames * hop)``
    float32, through ``vae.decoder``; differentiable when grad is enabled.

    With ``checkpoint`` (and grad enabled) the decoder runs as
    ``OobleckDecoder.forward`` does, split into checkpointed segments: the first conv,
    each block's snake + transposed conv, each residual unit, and the final snake + conv.
    The numbers are the plain forward's (tested). Without grad it is a plain forward.
    """
    import torch
    from torch.utils.checkpoint import checkpoint as ckpt

    dec = vae.decoder
    parts = _segments(dec) if checkpoint else None  # the same numbers as dec(h) (tested)

    def decode(z: Any) -> Any:
        h = z.transpose(1, 2).to(vae.dtype)
        if parts is None or not torch.is_grad_enabled():
            return dec(h).float()
        for seg in parts:
            h = ckpt(seg, h, use_reentrant=False)
        return h.float()

    return decode


def _segments(dec: Any) -> list[Callable[[Any], Any]]:
    """``OobleckDecoder.forward`` (diffusers 0.42) as a list of segments with lean snakes
    (:func:`_snake`); another decoder is one segment."""
    if not all(hasattr(dec, n) for n in ("conv1", "block", "snake1", "conv2")):
        return [dec]
    segs: list[Callable[[Any], Any]] = [dec.conv1]
    for block in dec.block:
        units = [getattr(block, f"res_unit{i}", None) for i in (1, 2, 3)]
        if not (hasattr(block, "snake1") and hasattr(block, "conv_t1")) or any(
                u is None or not all(hasattr(u, n) for n in ("snake1", "conv1", "snake2", "conv2")) for u in units):
            return [dec]
        segs.append(lambda h, b=block: b.conv_t1(_snake(b.snake1, h)))
        segs.extend(lambda h, u=u: _residual_unit(u, h) for u in units)
    segs.append(lambda h: dec.conv2(_snake(dec.snake1, h)))
    return segs


def _residual_unit(unit: Any, h: Any) -> Any:
    """``OobleckResidualUnit.forward`` with lean snakes."""
    y = unit.conv2(_snake(unit.snake2, unit.conv1(_snake(unit.snake1, h))))
    pad = (h.shape[-1] - y.shape[-1]) // 2
    if pad > 0:
        h = h[..., pad:-pad]
    return h + y


def _snake(module: Any, x: Any) -> Any:
    """``Snake1d.forward`` (``x + sin(alpha x)^2 / beta``) whose backward keeps only ``x``
    (autograd would keep three tensors of ``x``'s size); the module itself when its
    parameters need gradients or it is not a log-scale snake."""
    alpha, beta = getattr(module, "alpha", None), getattr(module, "beta", None)
    if alpha is None or beta is None or not getattr(module, "logscale", False) or alpha.requires_grad \
            or beta.requires_grad or x.dim() != 3:
        return module(x)
    import torch

    return _LeanSnake.apply(x, torch.exp(alpha), torch.exp(beta))


def _lean_snake_class() -> Any:
    import torch

    class LeanSnake(torch.autograd.Function):
        """Snake activation (Ziyin et al. 2020, as ``diffusers`` ``Snake1d``) with a backward
        pass that recomputes ``sin(2 alpha x)`` from the saved input."""

        @staticmethod
        def forward(ctx: Any, x: Any, alpha: Any, beta: Any) -> Any:
            ctx.save_for_backward(x, alpha, beta)
            return x + (beta + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            x, alpha, beta = ctx.saved_tensors
            return grad * (1.0 + alpha * (beta + 1e-9).reciprocal() * torch.sin(2.0 * alpha * x)), None, None

    return LeanSnake


class _Lazy:
    """Builds the autograd function on first use (this module imports without torch)."""

    _cls: Any = None

    def apply(self, *args: Any) -> Any:
        if _Lazy._cls is None:
            _Lazy._cls = _lean_snake_class()
        return _Lazy._cls.apply(*args)


_LeanSnake = _Lazy()


@contextlib.contextmanager
def frozen(*modules: Any) -> Iterator[None]:
    """Turn off ``requires_grad`` on every parameter of ``modules``; restored on exit."""
    saved = [(p, p.requires_grad) for m in modules if m is not None for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def config_from_params(params: dict[str, Any]) -> guidance.GuidanceConfig:
    """The engine's resolved parameters -> :class:`~engines.generation.guidance.GuidanceConfig`.

    Raises:
        InvalidJob: inconsistent values (see ``GuidanceConfig``).
    """
    return guidance.GuidanceConfig(
        start=float(params["control_from"]), end=float(params["control_until"]), every=int(params["control_every"]),
        inner_steps=int(params["control_nudges"]), step_size=float(params["control_step_size"]),
        precise=bool(params["control_precise"]), precise_steps=int(params["control_precise_steps"]),
        rhythm_loss=str(params["control_rhythm_loss"]))


def build_guide(controls: list[guidance.Control], config: guidance.GuidanceConfig, vae: Any, *, frames: int,
                fps: float, timeline_start_s: float, windows: list[tuple[int, int]] | None, chunk_scale: float,
                check: Callable[[], None] | None = None) -> guidance.ControlGuide:
    """The guide for one sampling run of ACE-Step.

    Args:
        controls: targets in job seconds; config: when and how hard.
        vae: the pipeline's ``AutoencoderOobleck``.
        frames: latent frames of the timeline; fps: latent frames per second (25).
        timeline_start_s: job second of latent frame 0.
        windows: the latent frames the model generates (repainting); None = all.
        chunk_scale: the host's out-of-memory scale; gradient tiles shrink with it.
        check: cancel check, called between decoder passes.
    """
    from engines.generation.acestep import vae as tiled

    hop = tiled.hop_length(vae)
    allowed = None
    if windows is not None:
        allowed = np.zeros(frames, bool)
        for a, b in windows:
            allowed[max(0, a):min(frames, b)] = True
    where = "cpu" if str(getattr(vae, "device", "cpu")).startswith("cpu") else "other"
    tile = max(2 * tiled.MIN_OVERLAP, int(TILE_SECONDS[where] * fps * float(chunk_scale)))
    return guidance.ControlGuide(
        controls, config, decode=checkpointed_decoder(vae), frames=frames, hop=hop,
        rate=int(round(hop * fps)), timeline_start_s=timeline_start_s, tile=tile, overlap=tiled.MIN_OVERLAP,
        allowed=allowed, check=check)


def step_hook(guide: guidance.ControlGuide) -> StepHook:
    """:meth:`ControlGuide.step` as a sampler :data:`StepHook`."""

    def hook(state: StepState) -> StepUpdate | None:
        out = guide.step(state.index, state.count, state.t, state.x_t, state.velocity)
        return None if out is None else StepUpdate(x_t=out[0], velocity=out[1])

    return hook


def start_hook(guide: guidance.ControlGuide) -> Callable[[Any, float, Callable[[Any, float], Any]], Any]:
    """:meth:`ControlGuide.optimise_start` as the sampler's ``start_hook`` (precise mode)."""
    return guide.optimise_start


def chain(*hooks: StepHook | None) -> StepHook | None:
    """Several step hooks as one: each sees the latents and velocity the previous one left."""
    live = [h for h in hooks if h is not None]
    if len(live) <= 1:
        return live[0] if live else None

    def hook(state: StepState) -> StepUpdate | None:
        changed = False
        for h in live:
            update = h(state)
            if update is not None and (update.x_t is not None or update.velocity is not None):
                state = dataclasses.replace(state, x_t=state.x_t if update.x_t is None else update.x_t,
                                            velocity=state.velocity if update.velocity is None else update.velocity)
                changed = True
        return StepUpdate(x_t=state.x_t, velocity=state.velocity) if changed else None

    return hook
