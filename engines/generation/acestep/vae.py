"""Tiled VAE encode and decode for long audio (ACE-Step 1.5's ``AutoencoderOobleck``).

Long songs are encoded and decoded in overlapping tiles along time: each tile is run with
``overlap`` extra frames on each side, and only its core is kept, so memory is bounded by
the tile size whatever the song length (ACE-Step-1.5 issue #747: out of memory in VAE
decode on long songs). This is the scheme of diffusers' ``AutoencoderOobleck._tiled_decode``
/ ``_tiled_encode`` and of ACE-Step's ``vae_decode_chunks.py`` (core + trimmed overlap),
run here tile by tile so the engine can report progress, stop between tiles, keep the
decoded audio on the CPU, and shrink the tiles when the host retries after an
out-of-memory error (``JobSpec.chunk_scale``). A tile as long as the input is a plain
``vae.decoder`` / ``vae.encoder`` call, identical to the pipeline's.

Shapes: latents ``(batch, frames, channels)`` (the DiT layout); audio
``(batch, channels, samples)``; one latent frame is ``hop`` samples (1920 at 48 kHz).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch


def hop_length(vae: Any) -> int:
    """Samples per latent frame: the product of the VAE's ``downsampling_ratios`` (1920)."""
    return int(math.prod(vae.config.downsampling_ratios))


@dataclass(frozen=True)
class Tiling:
    """Tile geometry in latent frames.

    Attributes:
        tile: frames per tile, overlaps included.
        overlap: frames decoded on each side of a tile's core and then discarded.
    """

    tile: int
    overlap: int

    @property
    def core(self) -> int:
        """Frames each tile contributes."""
        return self.tile - 2 * self.overlap

    def bounds(self, frames: int) -> list[tuple[int, int, int, int]]:
        """``(window_start, window_end, core_start, core_end)`` per tile covering ``frames``."""
        if frames <= self.tile:
            return [(0, frames, 0, frames)]
        out = []
        for i in range(math.ceil(frames / self.core)):
            cs, ce = i * self.core, min(frames, (i + 1) * self.core)
            out.append((max(0, cs - self.overlap), min(frames, ce + self.overlap), cs, ce))
        return out


MIN_OVERLAP = 12
"""Smallest overlap in latent frames (0.48 s). The Oobleck decoder's receptive field is
structural (it does not depend on the weights): +-3 frames for its first kernel-7 conv,
then per block a stride-s transposed conv (+-1 input sample) and three kernel-7 residual
convs with dilations 1, 3, 9 (+-39 samples at the block's rate: 3.9 frames at 250 Hz,
0.65 at 1.5 kHz, less after), about +-9 latent frames in all. With 12 or more frames on
each side, tiles join to float rounding (measured: 6e-7 on a 0.85 peak)."""

DEFAULT_OVERLAP_S = 0.64
"""Default overlap: 16 latent frames. diffusers' ``tile_latent_overlap`` is 64 frames, four
times the receptive field: with 20 s tiles that decodes 34 % more audio than needed, with
16 frames 7 %."""


def tiling(seconds: float, chunk_scale: float, frames_per_second: float, *,
           overlap_seconds: float = DEFAULT_OVERLAP_S) -> Tiling:
    """Tile geometry for ``seconds`` long tiles scaled by ``chunk_scale``.

    The overlap (default :data:`DEFAULT_OVERLAP_S`) shrinks with the tile to a quarter of
    it, but never below :data:`MIN_OVERLAP`; tiles are at least ``4 * MIN_OVERLAP`` frames
    (1.9 s).

    Raises:
        ValueError: ``seconds`` or ``chunk_scale`` is not positive.
    """
    if seconds <= 0 or chunk_scale <= 0:
        raise ValueError("tile length and chunk scale must be positive")
    tile = max(4 * MIN_OVERLAP, int(seconds * frames_per_second * float(chunk_scale)))
    overlap = max(MIN_OVERLAP, min(int(round(overlap_seconds * frames_per_second)), tile // 4))
    return Tiling(tile, overlap)


def decode(vae: Any, latents: torch.Tensor, tiles: Tiling, *,
           on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Decode latents to audio, tile by tile, into a float32 CPU buffer.

    Args:
        vae: an ``AutoencoderOobleck``.
        latents: ``(batch, frames, channels)`` on the VAE's device.
        tiles: :class:`Tiling` in latent frames.
        on_tile: ``on_tile(done, total)`` after every tile (progress; may raise to cancel).

    Returns:
        float32 CPU tensor ``(batch, audio_channels, frames * hop)``.

    Raises:
        torch.OutOfMemoryError (or the backend's equivalent): a tile did not fit; retry
        with smaller tiles.
    """
    hop = hop_length(vae)
    batch, frames, _ = latents.shape
    z = latents.transpose(1, 2).to(dtype=vae.dtype)
    bounds = tiles.bounds(frames)
    total = batch * len(bounds)
    out: torch.Tensor | None = None
    done = 0
    with torch.no_grad():
        for b in range(batch):
            for ws, we, cs, ce in bounds:
                piece = vae.decoder(z[b:b + 1, :, ws:we])
                core = piece[:, :, (cs - ws) * hop: (ce - ws) * hop].float().cpu()
                if out is None:
                    out = torch.empty((batch, piece.shape[1], frames * hop), dtype=torch.float32)
                out[b, :, cs * hop: ce * hop] = core[0]
                del piece
                done += 1
                if on_tile is not None:
                    on_tile(done, total)
    assert out is not None
    return out


def encode(vae: Any, audio: torch.Tensor, tiles: Tiling, *,
           on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Encode audio to latents (the posterior mean), tile by tile.

    Args:
        vae: an ``AutoencoderOobleck``.
        audio: ``(1, audio_channels, samples)`` with ``samples`` a multiple of the hop.
        tiles: :class:`Tiling` in latent frames.
        on_tile: ``on_tile(done, total)`` after every tile.

    Returns:
        ``(1, frames, channels)`` latents (``frames = samples / hop``) on the VAE's device,
        in its dtype.

    The mean is used, not a sample of the posterior (the pipeline calls
    ``latent_dist.sample()`` with the global RNG): the source's latents are then
    deterministic and the same seed gives the same audio.

    Raises:
        ValueError: ``samples`` is not a multiple of the hop.
    """
    hop = hop_length(vae)
    samples = audio.shape[-1]
    if samples % hop:
        raise ValueError(f"audio length {samples} is not a multiple of the VAE hop {hop}")
    frames = samples // hop
    x = audio.to(device=vae.device, dtype=vae.dtype)
    bounds = tiles.bounds(frames)
    parts = []
    with torch.no_grad():
        for i, (ws, we, cs, ce) in enumerate(bounds):
            h = vae.encoder(x[:, :, ws * hop: we * hop])
            mean = h.chunk(2, dim=1)[0]
            parts.append(mean[:, :, cs - ws: ce - ws])
            if on_tile is not None:
                on_tile(i + 1, len(bounds))
    return torch.cat(parts, dim=-1).transpose(1, 2).contiguous()
