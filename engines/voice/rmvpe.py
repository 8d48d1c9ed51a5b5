# The RMVPE model: Wei et al., "RMVPE: A Robust Model for Vocal Pitch Estimation in
# Polyphonic Music", Interspeech 2023 (https://github.com/Dream-High/RMVPE, Apache-2.0),
# as used by RVC (infer/rmvpe.py of
# https://github.com/RVC-Project/Retrieval-based-Voice-Conversion-WebUI, MIT licence:
# Copyright (c) 2023 liujing04, Copyright (c) 2023 源文雨, Copyright (c) 2023 Ftps;
# the full MIT notice is in engines/voice/rvc_models.py). Re-implemented here for
# inference; module and parameter names follow RVC's so that its rmvpe.pt loads with
# strict=True.
"""RMVPE pitch estimation, inference only.

Pipeline: 16 kHz mono audio -> log-mel spectrogram (1024-point STFT, hop 160, Hann,
128 HTK mel bands 30-8000 Hz, ``log(max(mel, 1e-5))``) -> deep U-Net + BiGRU (:class:`E2E`,
configuration ``E2E(4, 1, (2, 2))``) -> salience over 360 pitch bins of 20 cents from
1997.38 cents (~31.7 Hz) -> local weighted average of the 9 bins around the peak ->
F0 in Hz (0 where the peak salience is at most ``threshold``, 0.03 in RVC).

One F0 value per 10 ms (frames = samples // 160 + 1, centred on sample ``160 j``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engines.base.errors import ModelNotInstalled

__all__ = ["E2E", "RMVPE", "mel_filterbank", "N_MELS", "N_CLASS"]

N_MELS = 128
N_CLASS = 360
SAMPLE_RATE = 16000
HOP = 160


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = 1024, n_mels: int = N_MELS, fmin: float = 30.0,
                   fmax: float = 8000.0) -> np.ndarray:
    """HTK-scale triangular mel filters with Slaney area normalisation, ``(n_mels, n_fft // 2 + 1)``;
    equal to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True)``."""
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)

    def hz_to_mel(f: Any) -> Any:
        return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)

    mels = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    fdiff = np.diff(hz)
    ramps = hz[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz[2:n_mels + 2] - hz[:n_mels]))[:, None]
    return weights.astype(np.float32)


class ConvBlockRes(nn.Module):
    """Two 3x3 conv + batch-norm + ReLU layers with a residual (1x1 conv when channels change)."""

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (3, 3), (1, 1), (1, 1), bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (3, 3), (1, 1), (1, 1), bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum), nn.ReLU())
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (self.shortcut(x) if hasattr(self, "shortcut") else x)


class ResEncoderBlock(nn.Module):
    """``n_blocks`` :class:`ConvBlockRes` then average pooling (when ``kernel_size`` is set)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, n_blocks: int = 1,
                 momentum: float = 0.01):
        super().__init__()
        self.conv = nn.ModuleList([ConvBlockRes(in_channels, out_channels, momentum)]
                                  + [ConvBlockRes(out_channels, out_channels, momentum) for _ in range(n_blocks - 1)])
        self.kernel_size = kernel_size
        if kernel_size is not None:
            self.pool = nn.AvgPool2d(kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> Any:
        for c in self.conv:
            x = c(x)
        return (x, self.pool(x)) if self.kernel_size is not None else x


class Encoder(nn.Module):
    """U-Net encoder: batch-norm on the input, then ``n_encoders`` pooled blocks (channels x2 each)."""

    def __init__(self, in_channels: int, in_size: int, n_encoders: int, kernel_size: Any, n_blocks: int,
                 out_channels: int = 16, momentum: float = 0.01):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.layers = nn.ModuleList()
        for _ in range(n_encoders):
            self.layers.append(ResEncoderBlock(in_channels, out_channels, kernel_size, n_blocks, momentum=momentum))
            in_channels, out_channels = out_channels, out_channels * 2
        self.out_channel = out_channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            t, x = layer(x)
            skips.append(t)
        return x, skips


class Intermediate(nn.Module):
    """The U-Net bottleneck: ``n_inters`` unpooled encoder blocks."""

    def __init__(self, in_channels: int, out_channels: int, n_inters: int, n_blocks: int, momentum: float = 0.01):
        super().__init__()
        self.layers = nn.ModuleList([ResEncoderBlock(in_channels, out_channels, None, n_blocks, momentum)]
                                    + [ResEncoderBlock(out_channels, out_channels, None, n_blocks, momentum)
                                       for _ in range(n_inters - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    """Transposed-conv upsampling, concatenation with the skip, then :class:`ConvBlockRes` blocks."""

    def __init__(self, in_channels: int, out_channels: int, stride: Any, n_blocks: int = 1, momentum: float = 0.01):
        super().__init__()
        out_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, (3, 3), stride, (1, 1), output_padding=out_padding,
                               bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum), nn.ReLU())
        self.conv2 = nn.ModuleList([ConvBlockRes(out_channels * 2, out_channels, momentum)]
                                   + [ConvBlockRes(out_channels, out_channels, momentum) for _ in range(n_blocks - 1)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for c in self.conv2:
            x = c(x)
        return x


class Decoder(nn.Module):
    """U-Net decoder: ``n_decoders`` :class:`ResDecoderBlock` (channels /2 each)."""

    def __init__(self, in_channels: int, n_decoders: int, stride: Any, n_blocks: int, momentum: float = 0.01):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_decoders):
            self.layers.append(ResDecoderBlock(in_channels, in_channels // 2, stride, n_blocks, momentum))
            in_channels //= 2

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, skips[-1 - i])
        return x


class DeepUnet(nn.Module):
    """Encoder, bottleneck and decoder of RMVPE."""

    def __init__(self, kernel_size: Any, n_blocks: int, en_de_layers: int = 5, inter_layers: int = 4,
                 in_channels: int = 1, en_out_channels: int = 16):
        super().__init__()
        self.encoder = Encoder(in_channels, N_MELS, en_de_layers, kernel_size, n_blocks, en_out_channels)
        self.intermediate = Intermediate(self.encoder.out_channel // 2, self.encoder.out_channel, inter_layers,
                                         n_blocks)
        self.decoder = Decoder(self.encoder.out_channel, en_de_layers, kernel_size, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    """Bidirectional GRU over frames (``gru`` holds the weights)."""

    def __init__(self, input_features: int, hidden_features: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(input_features, hidden_features, num_layers=num_layers, batch_first=True,
                          bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class E2E(nn.Module):
    """RMVPE network: log-mel ``(batch, 128, frames)`` (frames a multiple of 32) -> salience
    ``(batch, frames, 360)`` in [0, 1]. RVC's checkpoint is ``E2E(4, 1, (2, 2))``."""

    def __init__(self, n_blocks: int = 4, n_gru: int = 1, kernel_size: Any = (2, 2), en_de_layers: int = 5,
                 inter_layers: int = 4, in_channels: int = 1, en_out_channels: int = 16):
        super().__init__()
        self.unet = DeepUnet(kernel_size, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = nn.Conv2d(en_out_channels, 3, (3, 3), padding=(1, 1))
        if n_gru:
            self.fc = nn.Sequential(BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, N_CLASS), nn.Dropout(0.25),
                                    nn.Sigmoid())
        else:
            self.fc = nn.Sequential(nn.Linear(3 * N_MELS, N_CLASS), nn.Dropout(0.25), nn.Sigmoid())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.cnn(self.unet(mel.transpose(-1, -2).unsqueeze(1))).transpose(1, 2).flatten(-2)
        return self.fc(x)


class RMVPE:
    """RMVPE F0 tracker.

    Args:
        model: an :class:`E2E` (weights loaded), or None to load ``checkpoint``.
        checkpoint: path to RVC's ``rmvpe.pt`` (read with ``torch.load(weights_only=True)``).
        device: torch device string. dtype: network dtype ("float32" or "float16").

    Raises:
        ModelNotInstalled: no checkpoint file, or it does not fit the network.
    """

    def __init__(self, model: E2E | None = None, checkpoint: str | os.PathLike | None = None, device: str = "cpu",
                 dtype: str = "float32"):
        if model is None:
            if checkpoint is None or not Path(checkpoint).is_file():
                raise ModelNotInstalled(f"the RMVPE weights '{checkpoint}' are not there",
                                        "download them with `seed-studio models download rmvpe`, or use the FCPE "
                                        "pitch method (works offline)")
            model = E2E(4, 1, (2, 2))
            try:
                state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
                model.load_state_dict(state, strict=True)
            except Exception as exc:
                raise ModelNotInstalled(f"the RMVPE weights '{checkpoint}' can't be loaded "
                                        f"({str(exc).splitlines()[0][:200]})",
                                        "download them again with `seed-studio models download rmvpe`") from exc
        self.device, self.dtype = device, getattr(torch, dtype)
        self.model = model.eval().to(device=device, dtype=self.dtype)
        self.mel_basis = torch.from_numpy(mel_filterbank()).to(device)
        self.window = torch.hann_window(1024, device=device)
        cents = 20 * np.arange(N_CLASS) + 1997.3794084376191
        self.cents = np.pad(cents, (4, 4))

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram ``(1, 128, samples // 160 + 1)`` of ``(1, samples)`` 16 kHz audio."""
        spec = torch.stft(audio.float(), n_fft=1024, hop_length=HOP, win_length=1024, window=self.window,
                          center=True, return_complex=True)
        mag = spec.abs()
        return torch.log(torch.clamp(self.mel_basis @ mag, min=1e-5))

    def salience(self, audio: np.ndarray) -> np.ndarray:
        """Network output ``(frames, 360)`` for ``(samples,)`` 16 kHz audio."""
        x = torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None].to(self.device)
        with torch.inference_mode():
            mel = self.mel(x)
            n = mel.shape[-1]
            mel = F.pad(mel, (0, 32 * ((n - 1) // 32 + 1) - n))
            hidden = self.model(mel.to(self.dtype))[:, :n]
        return hidden[0].float().cpu().numpy()

    def decode(self, salience: np.ndarray, threshold: float = 0.03) -> np.ndarray:
        """Local weighted average of the 9 bins around each frame's peak -> F0 in Hz (0 = unvoiced)."""
        if salience.shape[0] == 0:
            return np.zeros(0, np.float32)
        centre = np.argmax(salience, axis=1) + 4
        padded = np.pad(salience, ((0, 0), (4, 4)))
        idx = centre[:, None] + np.arange(-4, 5)[None, :]
        sal = np.take_along_axis(padded, idx, axis=1)
        cents = self.cents[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = (sal * cents).sum(1) / sal.sum(1)
        avg[padded.max(axis=1) <= threshold] = 0
        avg = np.nan_to_num(avg, nan=0.0)
        f0 = 10 * 2 ** (avg / 1200)
        f0[f0 == 10] = 0
        return f0.astype(np.float32)

    def f0(self, audio: np.ndarray, frames: int, threshold: float = 0.03) -> np.ndarray:
        """F0 in Hz of ``(samples,)`` 16 kHz audio, ``frames`` values (cut or padded with 0)."""
        if audio.size == 0 or frames == 0:
            return np.zeros(frames, np.float32)
        f0 = self.decode(self.salience(audio), threshold)[:frames]
        return np.pad(f0, (0, frames - f0.size)) if f0.size < frames else f0
