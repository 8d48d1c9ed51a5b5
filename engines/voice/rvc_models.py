# Derived from the RVC inference model classes (infer/module/models.py, modules.py,
# attentions.py, commons.py) of Retrieval-based-Voice-Conversion-WebUI,
# https://github.com/RVC-Project/Retrieval-based-Voice-Conversion-WebUI, which builds on
# VITS (https://github.com/jaywalnut310/vits, MIT) and NSF-HiFiGAN. Their notice:
#
# MIT License
#
# Copyright (c) 2023 liujing04
# Copyright (c) 2023 源文雨
# Copyright (c) 2023 Ftps
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.
"""RVC synthesizers with pitch guidance, inference only: :class:`SynthesizerTrnMs256NSFsid`
(v1, 256-d content features) and :class:`SynthesizerTrnMs768NSFsid` (v2, 768-d).

The architecture is RVC's (a VITS generator): a Transformer text encoder with relative
positional attention (``enc_p``) over content features plus a coarse-pitch embedding, a
reversed normalising flow (``flow``), and an NSF-HiFiGAN decoder (``dec``) whose
harmonic-plus-noise source follows F0 (Wang, Takaki & Yamagishi, "Neural source-filter
waveform models", 2019; HiFi-GAN, Kong et al. 2020). The posterior encoder ``enc_q`` is
only used in training and is not built here.

Module names, parameter names and shapes are those of RVC, so a voice ``.pth`` loads with
``load_state_dict(strict=True)``; weight-normalised convolutions keep RVC's
``weight_g``/``weight_v`` parameters (:class:`WNConv1d`, :class:`WNConvTranspose1d`) and
compute the weight from them (no deprecated ``torch.nn.utils.weight_norm`` hooks).

Frame units: one content frame is 10 ms; the decoder turns each frame into ``hop``
samples at the model rate (``prod(upsample_rates)``: 320 at 32 kHz, 400 at 40 kHz,
480 at 48 kHz).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SynthesizerTrnMs256NSFsid", "SynthesizerTrnMs768NSFsid", "WNConv1d", "WNConvTranspose1d",
           "LRELU_SLOPE", "SAMPLE_RATES", "DECODER_MARGIN_FRAMES"]

LRELU_SLOPE = 0.1
DECODER_MARGIN_FRAMES = 24
"""Context frames on each side of a decoder block; RVC's decoders see about ±8 frames."""
SAMPLE_RATES = {"32k": 32000, "40k": 40000, "48k": 48000}
"""RVC's names for its model sample rates (Hz)."""


# --------------------------------------------------------------------------- weight norm


def _wn_weight(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Weight normalisation over every dim but 0 (Salimans & Kingma 2016): ``g * v / |v|``."""
    norm = v.float().pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
    return (g.float() * v.float() / norm).to(v.dtype)


class _WeightNormed:
    """Mixin: ``weight_g``/``weight_v`` parameters instead of ``weight`` (RVC's state-dict names)."""

    def _init_wn(self) -> None:
        w = self.weight.detach()
        del self.weight
        norm = w.pow(2).sum(dim=tuple(range(1, w.dim())), keepdim=True).sqrt()
        self.weight_g = nn.Parameter(norm.clone())
        self.weight_v = nn.Parameter(w.clone())
        self._cached: torch.Tensor | None = None

    def _weight(self) -> torch.Tensor:
        if self.training or self._cached is None or self._cached.device != self.weight_v.device \
                or self._cached.dtype != self.weight_v.dtype:
            w = _wn_weight(self.weight_g, self.weight_v)
            if self.training:
                return w
            self._cached = w.detach()
        return self._cached

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[override]
        self._cached = None
        return super()._load_from_state_dict(*args, **kwargs)  # type: ignore[misc]


class WNConv1d(_WeightNormed, nn.Conv1d):
    """``nn.Conv1d`` with weight normalisation, parameters ``weight_g`` (out, 1, 1) and ``weight_v``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_wn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self._weight(), self.bias)


class WNConvTranspose1d(_WeightNormed, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with weight normalisation over dim 0 (``weight_g`` (in, 1, 1))."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_wn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return F.conv_transpose1d(x, self._weight(), self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def _sequence_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


# --------------------------------------------------------------------------- text encoder


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of ``(batch, channels, time)`` (params ``gamma``, ``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with shared relative position embeddings over ``±window_size`` frames
    (Shaw et al. 2018, as in VITS). Input and output ``(batch, channels, time)``."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int = 10):
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads, self.k_channels, self.window_size = n_heads, channels // n_heads, window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        std = self.k_channels ** -0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, window_size * 2 + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, window_size * 2 + 1, self.k_channels) * std)

    def _relative(self, emb: torch.Tensor, length: int) -> torch.Tensor:
        pad = max(length - (self.window_size + 1), 0)
        start = max((self.window_size + 1) - length, 0)
        if pad > 0:
            emb = F.pad(emb, [0, 0, pad, pad, 0, 0])
        return emb[:, start: start + 2 * length - 1]

    @staticmethod
    def _rel_to_abs(x: torch.Tensor) -> torch.Tensor:
        b, h, n, _ = x.size()
        x = F.pad(x, [0, 1]).view(b, h, n * 2 * n)
        x = F.pad(x, [0, n - 1]).view(b, h, n + 1, 2 * n - 1)
        return x[:, :, :n, n - 1:]

    @staticmethod
    def _abs_to_rel(x: torch.Tensor) -> torch.Tensor:
        b, h, n, _ = x.size()
        x = F.pad(x, [0, n - 1]).view(b, h, n * n + n * (n - 1))
        x = F.pad(x, [n, 0]).view(b, h, n, 2 * n)
        return x[:, :, :, 1:]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, d, n = x.shape
        q = self.conv_q(x).view(b, self.n_heads, self.k_channels, n).transpose(2, 3)
        k = self.conv_k(x).view(b, self.n_heads, self.k_channels, n).transpose(2, 3)
        v = self.conv_v(x).view(b, self.n_heads, self.k_channels, n).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)
        scores = q @ k.transpose(-2, -1)
        rel_logits = q @ self._relative(self.emb_rel_k, n).unsqueeze(0).transpose(-2, -1)
        scores = scores + self._rel_to_abs(rel_logits)
        scores = scores.masked_fill(mask == 0, -1e4)
        p = F.softmax(scores, dim=-1)
        out = p @ v + self._abs_to_rel(p) @ self._relative(self.emb_rel_v, n).unsqueeze(0)
        return self.conv_o(out.transpose(2, 3).contiguous().view(b, d, n))


class FFN(nn.Module):
    """Two same-padded convolutions with a ReLU, masked (VITS)."""

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, [(self.kernel_size - 1) // 2, self.kernel_size // 2])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * mask)))
        return self.conv_2(self._pad(x * mask)) * mask


class Encoder(nn.Module):
    """Transformer encoder: ``n_layers`` of relative attention + FFN, post-norm."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int):
        super().__init__()
        n_layers = int(n_layers)
        self.attn_layers = nn.ModuleList(MultiHeadAttention(hidden_channels, hidden_channels, n_heads)
                                         for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size)
                                        for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, n1, ffn, n2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = n1(x + attn(x, attn_mask))
            x = n2(x + ffn(x, mask))
        return x * mask


class TextEncoder(nn.Module):
    """Content features ``(batch, frames, in_channels)`` + coarse pitch ``(batch, frames)`` (1..255)
    -> prior mean and log-std, each ``(batch, out_channels, frames)``, and the mask."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, filter_channels: int,
                 n_heads: int, n_layers: int, kernel_size: int):
        super().__init__()
        self.out_channels, self.hidden_channels = out_channels, hidden_channels
        self.emb_phone = nn.Linear(in_channels, hidden_channels)
        self.emb_pitch = nn.Embedding(256, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, phone: torch.Tensor, pitch: torch.Tensor, lengths: torch.Tensor):
        x = (self.emb_phone(phone) + self.emb_pitch(pitch)) * math.sqrt(self.hidden_channels)
        x = F.leaky_relu(x, 0.1).transpose(1, -1)
        mask = _sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * mask, mask)
        m, logs = torch.split(self.proj(x) * mask, self.out_channels, dim=1)
        return m, logs, mask


# --------------------------------------------------------------------------- flow


class WN(nn.Module):
    """WaveNet-style gated dilated convolutions with speaker conditioning (weight-normalised)."""

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0):
        super().__init__()
        self.hidden_channels, self.n_layers = hidden_channels, n_layers
        if gin_channels:
            self.cond_layer = WNConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            d = dilation_rate ** i
            self.in_layers.append(WNConv1d(hidden_channels, 2 * hidden_channels, kernel_size, dilation=d,
                                           padding=_padding(kernel_size, d)))
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WNConv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        out = torch.zeros_like(x)
        h = self.hidden_channels
        if g is not None:
            g = self.cond_layer(g)
        for i, (inl, rs) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = inl(x)
            if g is not None:
                a = a + g[:, i * 2 * h: (i + 1) * 2 * h]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            r = rs(acts)
            if i < self.n_layers - 1:
                x = (x + r[:, :h]) * mask
                out = out + r[:, h:]
            else:
                out = out + r
        return out * mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling layer (VITS)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half, 1)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half, self.half], 1)
        m = self.post(self.enc(self.pre(x0) * mask, mask, g=g)) * mask
        return torch.cat([x0, (x1 - m) * mask], 1)


class Flip(nn.Module):
    """Reverses the channel order (no parameters)."""

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """Four coupling layers interleaved with flips (``flows.0``, ``flows.2``... hold parameters)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 n_flows: int = 4, gin_channels: int = 0):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                                                    gin_channels=gin_channels))
            self.flows.append(Flip())

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        for flow in reversed(self.flows):
            x = flow.reverse(x, mask, g)
        return x


# --------------------------------------------------------------------------- NSF-HiFiGAN


class ResBlock1(nn.Module):
    """HiFi-GAN multi-receptive-field block, type 1 (three dilated + three plain convolutions)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(WNConv1d(channels, channels, kernel_size, 1, dilation=d,
                                             padding=_padding(kernel_size, d)) for d in dilation[:3])
        self.convs2 = nn.ModuleList(WNConv1d(channels, channels, kernel_size, 1, dilation=1,
                                             padding=_padding(kernel_size, 1)) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN multi-receptive-field block, type 2 (two dilated convolutions)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(WNConv1d(channels, channels, kernel_size, 1, dilation=d,
                                            padding=_padding(kernel_size, d)) for d in dilation[:2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = x + c(F.leaky_relu(x, LRELU_SLOPE))
        return x


class SineGen(nn.Module):
    """Sine excitation from F0 (NSF, Wang et al. 2019), as RVC computes it.

    ``forward(f0 (batch, frames) Hz, upp)`` -> ``(batch, frames * upp, 1)``: a sine of
    amplitude ``sine_amp`` whose phase integrates F0 frame by frame (random initial phase for
    overtones), plus Gaussian noise (std ``noise_std`` where voiced, ``sine_amp / 3`` where
    F0 = 0). Uses torch's global RNG (the pipeline seeds it per chunk).
    """

    def __init__(self, sampling_rate: int, harmonic_num: int = 0, sine_amp: float = 0.1, noise_std: float = 0.003):
        super().__init__()
        self.sampling_rate, self.harmonic_num = sampling_rate, harmonic_num
        self.sine_amp, self.noise_std, self.dim = sine_amp, noise_std, harmonic_num + 1

    @torch.no_grad()
    def forward(self, f0: torch.Tensor, upp: int) -> torch.Tensor:
        f0 = f0.float()[:, :, None]  # (b, frames, 1)
        harmonics = torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
        rad = (f0 * harmonics / self.sampling_rate) % 1  # cycles per sample, per frame
        rand_ini = torch.rand(f0.shape[0], self.dim, device=f0.device)
        rand_ini[:, 0] = 0
        rad[:, 0, :] = rad[:, 0, :] + rand_ini
        # phase at frame boundaries, interpolated linearly (frame-wise constant frequency)
        cum = torch.cumsum(rad, 1) * upp
        cum = F.interpolate(cum.transpose(2, 1), scale_factor=float(upp), mode="linear",
                            align_corners=True).transpose(2, 1)
        rad = F.interpolate(rad.transpose(2, 1), scale_factor=float(upp), mode="nearest").transpose(2, 1)
        cum = cum % 1
        wraps = (cum[:, 1:, :] - cum[:, :-1, :]) < 0
        shift = torch.zeros_like(rad)
        shift[:, 1:, :] = wraps * -1.0
        sine = torch.sin(torch.cumsum(rad + shift, dim=1) * 2 * math.pi) * self.sine_amp
        uv = (f0 > 0).to(sine.dtype)
        uv = F.interpolate(uv.transpose(2, 1), scale_factor=float(upp), mode="nearest").transpose(2, 1)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        return sine * uv + noise_amp * torch.randn_like(sine)


class SourceModuleHnNSF(nn.Module):
    """Harmonic-plus-noise source: sine excitation merged by ``l_linear`` and a tanh."""

    def __init__(self, sampling_rate: int, harmonic_num: int = 0):
        super().__init__()
        self.l_sin_gen = SineGen(sampling_rate, harmonic_num)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0: torch.Tensor, upp: int) -> torch.Tensor:
        sine = self.l_sin_gen(f0, upp).to(self.l_linear.weight.dtype)
        return torch.tanh(self.l_linear(sine))


class GeneratorNSF(nn.Module):
    """NSF-HiFiGAN decoder: latent ``(batch, inter_channels, frames)`` and F0 ``(batch, frames)`` Hz
    -> waveform ``(batch, 1, frames * prod(upsample_rates))`` in [-1, 1] at ``sr``."""

    def __init__(self, initial_channel: int, resblock: str, resblock_kernel_sizes: Sequence[int],
                 resblock_dilation_sizes: Sequence[Sequence[int]], upsample_rates: Sequence[int],
                 upsample_initial_channel: int, upsample_kernel_sizes: Sequence[int], gin_channels: int, sr: int):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.upp = int(math.prod(upsample_rates))
        self.m_source = SourceModuleHnNSF(sampling_rate=sr, harmonic_num=0)
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(WNConvTranspose1d(upsample_initial_channel // (2 ** i), ch, k, u, padding=(k - u) // 2))
            if i + 1 < len(upsample_rates):
                stride = int(math.prod(upsample_rates[i + 1:]))
                self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=stride * 2, stride=stride, padding=stride // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=1))
            for k2, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, k2, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None,
                block_frames: int | None = None) -> torch.Tensor:
        """Decode. ``block_frames``: decode in time blocks of that many frames, each with
        :data:`DECODER_MARGIN_FRAMES` of context on both sides (more than the network's
        receptive field, so the result matches one pass to float rounding). Blocks keep the
        temporaries small, which on CPU saves page-fault time and peak memory."""
        source = self.m_source(f0, self.upp).transpose(1, 2)  # (b, 1, samples), one pass: one RNG draw
        n = x.shape[-1]
        m = DECODER_MARGIN_FRAMES
        if not block_frames or n <= block_frames + 2 * m:
            return self._decode(x, source, g)
        outs = []
        for a in range(0, n, block_frames):
            b = min(n, a + block_frames)
            lo, hi = max(0, a - m), min(n, b + m)
            y = self._decode(x[:, :, lo:hi], source[:, :, lo * self.upp: hi * self.upp], g)
            outs.append(y[:, :, (a - lo) * self.upp: (b - lo) * self.upp])
        return torch.cat(outs, dim=-1)

    def _decode(self, x: torch.Tensor, source: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i, (up, nc) in enumerate(zip(self.ups, self.noise_convs)):
            x = up(F.leaky_relu(x, LRELU_SLOPE)) + nc(source)
            blocks = self.resblocks[i * self.num_kernels: (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for b in blocks[1:]:
                xs = xs + b(x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


# --------------------------------------------------------------------------- synthesizers


class SynthesizerTrnMs256NSFsid(nn.Module):
    """RVC v1 synthesizer with pitch guidance (256-d content features).

    Built from a checkpoint's ``config`` list (the 18 values RVC's trainer writes):
    ``spec_channels, segment_size, inter_channels, hidden_channels, filter_channels, n_heads,
    n_layers, kernel_size, p_dropout, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
    upsample_rates, upsample_initial_channel, upsample_kernel_sizes, spk_embed_dim,
    gin_channels, sr`` (``sr`` in Hz or RVC's "32k"/"40k"/"48k"). ``spec_channels`` and
    ``segment_size`` only matter for training.
    """

    feature_dim = 256

    def __init__(self, spec_channels: int, segment_size: int, inter_channels: int, hidden_channels: int,
                 filter_channels: int, n_heads: int, n_layers: int, kernel_size: int, p_dropout: float,
                 resblock: str, resblock_kernel_sizes: Sequence[int], resblock_dilation_sizes: Sequence[Sequence[int]],
                 upsample_rates: Sequence[int], upsample_initial_channel: int, upsample_kernel_sizes: Sequence[int],
                 spk_embed_dim: int, gin_channels: int, sr: int | str, **_ignored):
        super().__init__()
        self.sampling_rate = SAMPLE_RATES[sr] if isinstance(sr, str) else int(sr)
        self.hop = int(math.prod(upsample_rates))
        self.enc_p = TextEncoder(self.feature_dim, inter_channels, hidden_channels, filter_channels, n_heads,
                                 n_layers, kernel_size)
        self.dec = GeneratorNSF(inter_channels, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                                upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
                                gin_channels=gin_channels, sr=self.sampling_rate)
        self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, 5, 1, 3, gin_channels=gin_channels)
        self.emb_g = nn.Embedding(spk_embed_dim, gin_channels)

    @torch.no_grad()
    def infer(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor, nsff0: torch.Tensor,
              sid: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """Synthesize.

        Args:
            phone: content features ``(batch, frames, feature_dim)``, 10 ms frames.
            phone_lengths: ``(batch,)`` valid frames.
            pitch: coarse pitch ``(batch, frames)`` int64 in 1..255 (RVC's mel-scale bins).
            nsff0: F0 ``(batch, frames)`` in Hz, 0 where unvoiced (drives the NSF source).
            sid: speaker ids ``(batch,)``.
            block_frames: decode in blocks of this many frames (see :meth:`GeneratorNSF.forward`).

        Returns:
            ``(batch, 1, frames * hop)`` waveform at :attr:`sampling_rate`. The prior is
            sampled with std 0.66666 (RVC) from torch's global RNG.
        """
        g = self.emb_g(sid).unsqueeze(-1)
        m, logs, mask = self.enc_p(phone, pitch, phone_lengths)
        z_p = (m + torch.exp(logs) * torch.randn_like(m) * 0.66666) * mask
        z = self.flow.reverse(z_p, mask, g)
        return self.dec(z * mask, nsff0, g=g, block_frames=block_frames)


class SynthesizerTrnMs768NSFsid(SynthesizerTrnMs256NSFsid):
    """RVC v2 synthesizer with pitch guidance (768-d content features); otherwise as v1."""

    feature_dim = 768
