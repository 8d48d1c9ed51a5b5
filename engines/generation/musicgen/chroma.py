"""MusicGen-Melody's melody condition: an argmax chromagram, in torch (no torchaudio), and
its re-slicing per generation window.

The chroma matches what MusicGen-Melody was trained with and what transformers feeds it:

* audiocraft ``audiocraft/modules/chroma.py`` ``ChromaExtractor`` (used by
  ``ChromaStemConditioner``) and transformers ``MusicgenMelodyFeatureExtractor``: a power
  spectrogram (Hann window of ``n_fft`` = 16384 samples at 32 kHz, hop 4096, centred with
  reflect padding, ``normalized=True`` i.e. divided by the window's energy), a librosa-style
  chroma filter bank (transformers ``audio_utils.chroma_filter_bank``, tuning 0), each frame
  divided by its maximum (inf-norm, eps 1e-6), then one-hot at the argmax pitch class.
  Inputs shorter than ``n_fft`` are zero-padded on both sides to ``n_fft`` first.
  Silence gives pitch class 0 (C), which is also the model's "no melody" input
  (transformers uses a one-hot C as the null chroma).
* Windows (audiocraft ``MusicGen._generate_tokens``): for the window starting at time
  ``t0``, the reference is read from ``t0`` for one full window length (30 s), looping
  (index modulo its length) when it is shorter, and the chroma is computed on that slice.

Only the argmax survives, so the spectrogram scaling does not change the result; it is
kept for fidelity with the reference implementations.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["NUM_CHROMA", "ChromaParams", "melody_chroma", "null_chroma", "reference_window", "values_window"]

NUM_CHROMA = 12


class ChromaParams:
    """Chroma settings of a MusicGen-Melody model (its ``preprocessor_config.json``).

    Args:
        sample_rate: Hz of the audio the chroma is computed on (the codec rate, 32000).
        n_fft: FFT and window length in samples (16384).
        hop_length: hop in samples (4096; 7.8125 chroma frames per second at 32 kHz).
        chroma_length: chroma frames the model reads per window (235 = 30 s at 32 kHz).
    """

    def __init__(self, sample_rate: int = 32000, n_fft: int = 16384, hop_length: int = 4096, chroma_length: int = 235):
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.chroma_length = int(chroma_length)

    @property
    def frame_rate(self) -> float:
        """Chroma frames per second (Hz)."""
        return self.sample_rate / self.hop_length

    def __repr__(self) -> str:
        return (f"ChromaParams(sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"chroma_length={self.chroma_length})")


@lru_cache(maxsize=8)
def _filters(sample_rate: int, n_fft: int) -> torch.Tensor:
    from transformers.audio_utils import chroma_filter_bank

    fb = chroma_filter_bank(num_frequency_bins=n_fft, num_chroma=NUM_CHROMA, sampling_rate=sample_rate, tuning=0)
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


def melody_chroma(wav: torch.Tensor, params: ChromaParams) -> torch.Tensor:
    """One-hot argmax chroma of mono audio, as MusicGen-Melody reads it.

    Args:
        wav: ``(B, samples)`` float32 at ``params.sample_rate`` (mono; average channels first).
        params: :class:`ChromaParams`.

    Returns:
        ``(B, frames, 12)`` float32 one-hot rows, ``frames = 1 + samples // hop`` (after
        padding short inputs to ``n_fft``).

    Raises:
        ValueError: not a 2-D tensor or no samples.
    """
    if wav.ndim != 2 or wav.shape[-1] == 0:
        raise ValueError(f"chroma input must be (batch, samples) with samples > 0, got {tuple(wav.shape)}")
    n_fft, hop = params.n_fft, params.hop_length
    wav = wav.float()
    if wav.shape[-1] < n_fft:
        pad = n_fft - wav.shape[-1]
        wav = F.pad(wav, (pad // 2, pad // 2 + pad % 2))
    window = torch.hann_window(n_fft, periodic=True, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=window, center=True,
                      pad_mode="reflect", normalized=False, return_complex=True)
    power = (spec.real ** 2 + spec.imag ** 2) / window.pow(2).sum()
    raw = torch.einsum("cf,bft->bct", _filters(params.sample_rate, n_fft).to(wav.device), power)
    norm = F.normalize(raw, p=float("inf"), dim=-2, eps=1e-6).transpose(1, 2)
    return F.one_hot(norm.argmax(dim=-1), NUM_CHROMA).float()


def null_chroma(frames: int, batch: int = 1) -> torch.Tensor:
    """The "no melody" chroma: ``(batch, frames, 12)`` one-hot at pitch class 0 (transformers' null input)."""
    out = torch.zeros((batch, frames, NUM_CHROMA))
    out[..., 0] = 1.0
    return out


def reference_window(ref: np.ndarray, start: int, length: int, cover: tuple[int, int | None] = (0, None)) -> np.ndarray:
    """The reference samples seen by one window, looped as audiocraft does.

    Args:
        ref: ``(samples,)`` mono reference at the model rate; its sample 0 plays at
            timeline sample ``cover[0]``.
        start: timeline sample where the window starts.
        length: samples per window (a full window, 30 s, even for a shorter last window).
        cover: ``(begin, end)`` timeline samples where the melody control is on
            (``end`` None = forever); outside, the slice is silent (= the null chroma).

    Returns:
        ``(length,)`` float32: ``ref[(t - begin) % len(ref)]`` inside the cover, 0 outside.
    """
    ref = np.asarray(ref, dtype=np.float32)
    pos = np.arange(int(start), int(start) + int(length), dtype=np.int64)
    begin, end = int(cover[0]), cover[1]
    inside = pos >= begin
    if end is not None:
        inside &= pos < int(end)
    if ref.size == 0:
        return np.zeros(int(length), np.float32)
    out = ref[(pos - begin) % ref.size]
    return np.where(inside, out, np.float32(0.0)).astype(np.float32)


def values_window(values: np.ndarray, frame_rate: float, params: ChromaParams, start_s: float,
                  cover_s: tuple[float, float | None] = (0.0, None)) -> torch.Tensor:
    """Re-slice a given chroma curve for one window (nearest frame, looped).

    Args:
        values: ``(12, T)`` chroma target at ``frame_rate`` Hz (soft or one-hot); its
            frame 0 is at timeline time ``cover_s[0]``.
        frame_rate: Hz of ``values``.
        params: the model's :class:`ChromaParams` (``chroma_length`` frames per window at
            ``params.frame_rate``).
        start_s: timeline time of the window start in seconds.
        cover_s: ``(begin, end)`` seconds where the control is on (``end`` None = forever).

    Returns:
        ``(1, chroma_length, 12)`` one-hot at the argmax pitch class of the nearest frame
        (frames with no energy and frames outside the cover: the null chroma).

    Raises:
        ValueError: ``values`` is not ``(12, T)`` with ``T > 0`` or ``frame_rate <= 0``.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] != NUM_CHROMA or v.shape[1] == 0:
        raise ValueError(f"melody values must be (12, frames) with frames > 0, got {v.shape}")
    if frame_rate <= 0:
        raise ValueError(f"melody values need a frame rate > 0 Hz, got {frame_rate}")
    t = float(start_s) + np.arange(params.chroma_length) / params.frame_rate
    begin, end = float(cover_s[0]), cover_s[1]
    inside = t >= begin
    if end is not None:
        inside &= t < float(end)
    idx = np.floor((t - begin) * frame_rate + 1e-9).astype(np.int64) % v.shape[1]
    frames = v[:, idx]  # (12, L)
    pitch = np.where(inside & (frames.max(axis=0) > 0), frames.argmax(axis=0), 0)
    return F.one_hot(torch.from_numpy(pitch), NUM_CHROMA).float()[None]
