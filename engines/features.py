"""Control features after Music ControlNet: melody (chroma + argmax), dynamics, rhythm.

Method: Wu, Donahue, Watanabe, Bryan, "Music ControlNet: Multiple Time-varying
Controls for Music Generation", arXiv:2311.07069 (2023), section 3.2:

- **melody**: a 12-bin chromagram computed on high-passed audio, reduced to the
  most prominent pitch class per frame (argmax, one-hot);
- **dynamics**: frame loudness in dB (A-weighted energy), smoothed with a
  Savitzky-Golay filter;
- **rhythm**: beat and downbeat activation curves (here: smoothed impulses at the
  times given by a beat tracker) and onset strength (spectral flux on a log-mel
  spectrogram, as :func:`librosa.onset.onset_strength`).

Every feature exists twice with matching numbers: a numpy function (audio
``(channels, frames)`` float32 or ``(frames,)``, plus its sample rate) and a
differentiable torch function (``*_torch``, tensor ``(batch, samples)`` or
``(batch, channels, samples)``, returns ``(batch, ..., n_frames)``) so that
generation engines can use them as losses or guidance. Frames are centred: frame
``i`` is at sample ``i * hop_length``; ``n_frames = 1 + samples // hop_length``.

The STFT, filterbanks and weighting curves come from librosa
(``librosa.stft``, ``librosa.filters.chroma``, ``librosa.filters.mel``,
``librosa.A_weighting``) and scipy (``scipy.signal.savgol_coeffs``); the torch
path uses the same matrices with :func:`torch.stft`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily so that numpy users need not load it
    import torch

__all__ = [
    "HOP_LENGTH",
    "N_FFT",
    "MELODY_HIGHPASS_HZ",
    "frame_times",
    "chroma",
    "chroma_torch",
    "melody_argmax",
    "melody_one_hot",
    "melody_soft_torch",
    "loudness_db",
    "loudness_db_torch",
    "onset_strength",
    "onset_strength_torch",
    "rhythm_curves",
]

HOP_LENGTH = 512
N_FFT = 2048
MELODY_HIGHPASS_HZ = 261.6  # middle C, the cut-off used by Music ControlNet
_EPS_POWER = 1e-10


# --------------------------------------------------------------------------- helpers
def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(channels, frames) or (frames,) -> (frames,) float32 mono; validates input."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise ValueError(f"audio must be (channels, frames) or (frames,), got shape {np.shape(audio)}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if a.size == 0:
        raise ValueError("audio is empty (0 frames)")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio holds NaN or infinite samples")
    return a


def _mono_torch(audio: "torch.Tensor") -> "torch.Tensor":
    """(batch, samples) or (batch, channels, samples) -> (batch, samples)."""
    if audio.ndim == 3:
        return audio.mean(dim=1)
    if audio.ndim != 2:
        raise ValueError(f"audio tensor must be (batch, samples) or (batch, channels, samples), got {tuple(audio.shape)}")
    return audio


def _power_spec(audio: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """|STFT|^2, (1 + n_fft//2, n_frames), centred with zero padding (librosa.stft)."""
    import librosa

    spec = librosa.stft(audio, n_fft=n_fft, hop_length=hop_length, window="hann", center=True, pad_mode="constant")
    return (np.abs(spec) ** 2).astype(np.float32)


def _power_spec_torch(audio: "torch.Tensor", n_fft: int, hop_length: int) -> "torch.Tensor":
    """Torch twin of :func:`_power_spec`: (batch, 1 + n_fft//2, n_frames)."""
    import torch

    window = torch.hann_window(n_fft, periodic=True, dtype=audio.dtype, device=audio.device)
    spec = torch.stft(audio, n_fft=n_fft, hop_length=hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    return spec.real ** 2 + spec.imag ** 2


@lru_cache(maxsize=16)
def _chroma_matrix(sample_rate: int, n_fft: int, highpass_hz: float) -> np.ndarray:
    """librosa chroma filterbank (12, 1 + n_fft//2) with bins below ``highpass_hz`` zeroed."""
    import librosa

    fb = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft).astype(np.float32)
    if highpass_hz > 0:
        freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
        fb[:, freqs < highpass_hz] = 0.0
    return fb


@lru_cache(maxsize=16)
def _a_weight(sample_rate: int, n_fft: int) -> np.ndarray:
    """A-weighting as a power gain per STFT bin (1 + n_fft//2,), from librosa.A_weighting."""
    import librosa

    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    with np.errstate(divide="ignore"):  # the DC bin: log10(0) -> clipped to min_db
        weight_db = librosa.A_weighting(freqs, min_db=-80.0)
    return (10.0 ** (weight_db / 10.0)).astype(np.float32)


@lru_cache(maxsize=16)
def _mel_matrix(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32)


@lru_cache(maxsize=16)
def _savgol(window: int, order: int) -> np.ndarray:
    from scipy.signal import savgol_coeffs

    return savgol_coeffs(window, order).astype(np.float64)


def _smoothing_window(seconds: float, sample_rate: int, hop_length: int, order: int) -> int:
    """Odd Savitzky-Golay window length in frames covering about ``seconds``."""
    w = int(round(seconds * sample_rate / hop_length))
    w = max(w, order + 2)
    return w if w % 2 == 1 else w + 1


def frame_times(n_frames: int, sample_rate: int, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Sample positions (int64) of ``n_frames`` centred feature frames: ``i * hop_length``."""
    return np.arange(n_frames, dtype=np.int64) * int(hop_length)


# --------------------------------------------------------------------------- melody
def chroma(audio: np.ndarray, sample_rate: int, *, hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
           highpass_hz: float = MELODY_HIGHPASS_HZ) -> np.ndarray:
    """12-bin chromagram of high-passed audio (Music ControlNet melody input).

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio (downmixed to mono).
        sample_rate: its sample rate in Hz.
        hop_length, n_fft: STFT frame hop and size in samples.
        highpass_hz: spectral high-pass: STFT bins below it are ignored (the paper
            high-passes at middle C so that bass does not dominate); 0 disables it.

    Returns:
        ``(12, n_frames)`` float32, each frame scaled so its maximum is 1 (librosa's
        ``norm=inf``); silent frames are all zero. Row 0 is C.

    Raises:
        ValueError: empty or non-finite audio, bad shape or sample rate.

    Source: power STFT times ``librosa.filters.chroma`` as in
    ``librosa.feature.chroma_stft`` (which this matches with ``highpass_hz=0``).
    """
    a = _mono(audio, sample_rate)
    raw = _chroma_matrix(int(sample_rate), n_fft, float(highpass_hz)) @ _power_spec(a, n_fft, hop_length)
    peak = raw.max(axis=0, keepdims=True)
    return np.where(peak > _EPS_POWER, raw / np.maximum(peak, _EPS_POWER), 0.0).astype(np.float32)


def chroma_torch(audio: "torch.Tensor", sample_rate: int, *, hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
                 highpass_hz: float = MELODY_HIGHPASS_HZ) -> "torch.Tensor":
    """Differentiable twin of :func:`chroma`: ``(batch, [channels,] samples)`` -> ``(batch, 12, n_frames)``."""
    import torch

    a = _mono_torch(audio)
    fb = torch.as_tensor(_chroma_matrix(int(sample_rate), n_fft, float(highpass_hz)), dtype=a.dtype, device=a.device)
    raw = torch.einsum("cf,bft->bct", fb, _power_spec_torch(a, n_fft, hop_length))
    peak = raw.amax(dim=1, keepdim=True)
    return torch.where(peak > _EPS_POWER, raw / peak.clamp_min(_EPS_POWER), torch.zeros_like(raw))


def melody_argmax(chromagram: np.ndarray, *, silence: float = 0.0) -> np.ndarray:
    """Most prominent pitch class per frame: ``(12, n_frames)`` -> ``(n_frames,)`` int64 in 0..11.

    Frames whose chroma maximum is ``<= silence`` (all-zero frames by default) get -1.
    """
    c = np.asarray(chromagram)
    if c.ndim != 2 or c.shape[0] != 12:
        raise ValueError(f"chromagram must be (12, n_frames), got {c.shape}")
    idx = c.argmax(axis=0).astype(np.int64)
    idx[c.max(axis=0) <= silence] = -1
    return idx


def melody_one_hot(chromagram: np.ndarray) -> np.ndarray:
    """Music ControlNet melody control: one-hot ``(12, n_frames)`` float32 of the per-frame argmax
    (silent frames are all zero)."""
    idx = melody_argmax(chromagram)
    out = np.zeros((12, idx.size), dtype=np.float32)
    voiced = idx >= 0
    out[idx[voiced], np.nonzero(voiced)[0]] = 1.0
    return out


def melody_soft_torch(chromagram: "torch.Tensor", temperature: float = 0.05) -> "torch.Tensor":
    """Differentiable relaxation of :func:`melody_one_hot`: softmax over the 12 bins.

    ``(batch, 12, n_frames)`` -> same shape; tends to the one-hot argmax as
    ``temperature`` -> 0.
    """
    import torch

    return torch.softmax(chromagram / float(temperature), dim=-2)


# --------------------------------------------------------------------------- dynamics
def loudness_db(audio: np.ndarray, sample_rate: int, *, hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
                a_weighted: bool = True, smooth_seconds: float | None = 1.0, smooth_order: int = 1,
                floor_db: float = -100.0) -> np.ndarray:
    """Frame loudness in dB over time (Music ControlNet dynamics control).

    Args:
        audio: ``(channels, frames)`` or ``(frames,)``; sample_rate in Hz.
        a_weighted: weight the power spectrum with the A curve (``librosa.A_weighting``).
        smooth_seconds: Savitzky-Golay window (seconds; ``None`` = no smoothing),
            polynomial order ``smooth_order``; edges use nearest-value padding.
        floor_db: lower bound of the dB values (digital silence).

    Returns:
        ``(n_frames,)`` float32 dB relative to a full-scale sine's frame energy
        (0 dB ~ a 0 dBFS sine of 1 kHz with A weighting).

    Raises:
        ValueError: bad audio (see :func:`chroma`).
    """
    from scipy.ndimage import correlate1d

    a = _mono(audio, sample_rate)
    p = _power_spec(a, n_fft, hop_length)
    db = _energy_db(p, int(sample_rate), n_fft, a_weighted, floor_db)
    if smooth_seconds:
        w = _smoothing_window(smooth_seconds, int(sample_rate), hop_length, smooth_order)
        db = correlate1d(db.astype(np.float64), _savgol(w, smooth_order), mode="nearest")
    return db.astype(np.float32)


def _energy_db(p, sample_rate, n_fft, a_weighted, floor_db):
    """Shared dB formula (works on numpy arrays and torch tensors)."""
    ref = 3.0 * n_fft ** 2 / 32.0  # one-sided Hann-windowed STFT power of a full-scale sine (Parseval)
    if a_weighted:
        w = _a_weight(sample_rate, n_fft)
        if not isinstance(p, np.ndarray):
            import torch

            w = torch.as_tensor(w, dtype=p.dtype, device=p.device)[:, None]
            e = (p * w).sum(dim=-2)
        else:
            e = (p * w[:, None]).sum(axis=-2)
    else:
        e = p.sum(axis=-2) if isinstance(p, np.ndarray) else p.sum(dim=-2)
    if isinstance(e, np.ndarray):
        return np.maximum(10.0 * np.log10(np.maximum(e / ref, 1e-30)), floor_db).astype(np.float32)
    import torch

    return torch.clamp(10.0 * torch.log10(torch.clamp(e / ref, min=1e-30)), min=floor_db)


def loudness_db_torch(audio: "torch.Tensor", sample_rate: int, *, hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
                      a_weighted: bool = True, smooth_seconds: float | None = 1.0, smooth_order: int = 1,
                      floor_db: float = -100.0) -> "torch.Tensor":
    """Differentiable twin of :func:`loudness_db`: ``(batch, [channels,] samples)`` -> ``(batch, n_frames)``."""
    import torch
    import torch.nn.functional as F

    a = _mono_torch(audio)
    db = _energy_db(_power_spec_torch(a, n_fft, hop_length), int(sample_rate), n_fft, a_weighted, floor_db)
    if smooth_seconds:
        w = _smoothing_window(smooth_seconds, int(sample_rate), hop_length, smooth_order)
        k = torch.as_tensor(_savgol(w, smooth_order), dtype=db.dtype, device=db.device).view(1, 1, -1)
        padded = F.pad(db.unsqueeze(1), (w // 2, w // 2), mode="replicate")
        db = F.conv1d(padded, k).squeeze(1)
    return db


# --------------------------------------------------------------------------- rhythm
def onset_strength(audio: np.ndarray, sample_rate: int, *, hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
                   n_mels: int = 128, top_db: float = 80.0) -> np.ndarray:
    """Onset strength envelope: mean positive log-mel spectral flux per frame.

    Same recipe as :func:`librosa.onset.onset_strength` (lag 1, no max filter,
    ``power_to_db`` with ``top_db``, frames shifted by ``n_fft // (2 hop)``), written
    so the torch twin gives the same numbers.

    Returns:
        ``(n_frames,)`` float32, >= 0 (dB per mel band, averaged).
    """
    a = _mono(audio, sample_rate)
    mel = _mel_matrix(int(sample_rate), n_fft, n_mels) @ _power_spec(a, n_fft, hop_length)
    s = 10.0 * np.log10(np.maximum(mel, _EPS_POWER))
    s = np.maximum(s, s.max() - top_db)
    flux = np.maximum(0.0, s[:, 1:] - s[:, :-1]).mean(axis=0)
    pad = 1 + n_fft // (2 * hop_length)
    return np.concatenate([np.zeros(pad, np.float32), flux])[: s.shape[1]].astype(np.float32)


def onset_strength_torch(audio: "torch.Tensor", sample_rate: int, *, hop_length: int = HOP_LENGTH,
                         n_fft: int = N_FFT, n_mels: int = 128, top_db: float = 80.0) -> "torch.Tensor":
    """Differentiable twin of :func:`onset_strength`: ``(batch, [channels,] samples)`` -> ``(batch, n_frames)``."""
    import torch
    import torch.nn.functional as F

    a = _mono_torch(audio)
    fb = torch.as_tensor(_mel_matrix(int(sample_rate), n_fft, n_mels), dtype=a.dtype, device=a.device)
    mel = torch.einsum("mf,bft->bmt", fb, _power_spec_torch(a, n_fft, hop_length))
    s = 10.0 * torch.log10(mel.clamp_min(_EPS_POWER))
    peak = s.amax(dim=(-2, -1), keepdim=True).detach()
    s = torch.maximum(s, peak - top_db)
    flux = F.relu(s[..., 1:] - s[..., :-1]).mean(dim=-2)
    pad = 1 + n_fft // (2 * hop_length)
    return F.pad(flux, (pad, 0))[..., : s.shape[-1]]


def rhythm_curves(beats: np.ndarray, downbeats: np.ndarray, n_frames: int, sample_rate: int, *,
                  hop_length: int = HOP_LENGTH, width_seconds: float = 0.05) -> np.ndarray:
    """Beat and downbeat activation curves (Music ControlNet rhythm control).

    Args:
        beats, downbeats: event positions in **samples** at ``sample_rate``.
        n_frames: length of the curves (e.g. ``onset_strength(...).size``).
        width_seconds: standard deviation of the Gaussian bump placed on each event.

    Returns:
        ``(2, n_frames)`` float32 in [0, 1]: row 0 beats, row 1 downbeats; each
        event peaks at 1.0 on its nearest frame.
    """
    t = np.arange(n_frames, dtype=np.float64) * hop_length
    sigma = max(width_seconds * sample_rate, 1.0)
    out = np.zeros((2, n_frames), dtype=np.float32)
    for row, events in enumerate((beats, downbeats)):
        for e in np.asarray(events, dtype=np.float64).ravel():
            lo = np.searchsorted(t, e - 4 * sigma)
            hi = np.searchsorted(t, e + 4 * sigma)
            if hi > lo:
                out[row, lo:hi] = np.maximum(out[row, lo:hi], np.exp(-0.5 * ((t[lo:hi] - e) / sigma) ** 2))
    return out
