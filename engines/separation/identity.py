"""An identity "separator" for tests and null checks: stem k = weight k x mixture.

It has the interface of a demucs model (``sources``, ``samplerate``, ``audio_channels``,
``segment``, ``forward``), so the whole chunked pipeline can be checked exactly: any
error in overlap-add weights, shifts, resampling alignment or normalisation shows up as
a difference from ``weight * input``.
"""
from __future__ import annotations

from typing import Sequence


def identity_model(
    sources: Sequence[str] = ("drums", "bass", "other", "vocals"),
    weights: Sequence[float] | None = None,
    samplerate: int = 44100,
    segment: float = 1.0,
    audio_channels: int = 2,
):
    """Build an identity separator (a ``torch.nn.Module``).

    Args:
        sources: stem names.
        weights: per-stem gain; default ``1/len(sources)`` each, so stems sum to the input.
        samplerate: model rate in Hz.
        segment: model segment in seconds (chunk length of the pipeline).
        audio_channels: channels the model expects.

    Returns:
        A module mapping ``(batch, channels, frames)`` to
        ``(batch, len(sources), channels, frames)`` with ``out[:, k] = weights[k] * x``.
    """
    import torch

    class IdentitySeparator(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sources = list(sources)
            self.samplerate = int(samplerate)
            self.segment = float(segment)
            self.audio_channels = int(audio_channels)
            w = list(weights) if weights is not None else [1.0 / len(self.sources)] * len(self.sources)
            self.register_buffer("gains", torch.tensor(w, dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gains[None, :, None, None].to(x.dtype) * x[:, None]

    return IdentitySeparator().eval()
