"""Offline DSP stem separation: harmonic/percussive split plus centre-channel extraction.

A fallback that needs no model download. It is a classic signal-processing estimate,
far below HT-Demucs in quality, and is labelled as a DSP fallback wherever it appears.

Method, on the STFT of each channel (librosa):

* harmonic/percussive soft masks from median filtering of the mid-channel magnitude
  (Fitzgerald, "Harmonic/percussive separation using median filtering", DAFx 2010;
  ``librosa.decompose.hpss`` with ``mask=True``);
* a centre mask from the inter-channel similarity of Avendano & Jot ("A frequency-domain
  approach to multichannel upmix", JAES 2004): ``2 Re(L R*) / (|L|^2 + |R|^2)``, clipped
  to [0, 1] and sharpened; mono input counts as fully centred;
* vocals = centre x harmonic within 120 Hz - 8 kHz; bass = harmonic below 250 Hz (not
  vocals); drums = percussive (not vocals); other = the mixture minus those three, so
  the four stems always sum exactly to the mixture.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from engines.base import InvalidJob, JobCancelled

DSP_SOURCES = ["drums", "bass", "other", "vocals"]


def separate_dsp(
    audio: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 4096,
    kernel_size: tuple[int, int] = (17, 61),
    centre_power: float = 4.0,
    vocal_band: tuple[float, float] = (120.0, 8000.0),
    bass_cutoff: float = 250.0,
    progress: Callable[..., None] | None = None,
    cancel: Any = None,
) -> dict[str, np.ndarray]:
    """Split a mixture into drums, bass, other and vocals with DSP only.

    Args:
        audio: ``(channels, frames)`` float32, 1 or 2 channels.
        sample_rate: Hz.
        n_fft: STFT size (hop n_fft / 4, Hann window).
        kernel_size: median filter lengths of the HPSS: (harmonic, along time frames;
            percussive, along frequency bins).
        centre_power: sharpness of the centre mask (higher = only hard-centred sound).
        vocal_band: (low, high) Hz of the vocal estimate.
        bass_cutoff: Hz below which harmonic sound is bass.
        progress: ``progress(fraction, stage)``.
        cancel: a ``CancelToken``, checked between stages.

    Returns:
        ``{"drums", "bass", "other", "vocals"}`` -> ``(channels, frames)`` float32, same
        shape as the input; the stems sum to the input within float32 rounding.

    Raises:
        InvalidJob: not 1 or 2 channels, empty, or non-finite samples.
        JobCancelled: cancelled.
    """
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise InvalidJob(f"DSP separation needs mono or stereo (channels, frames) audio, got shape {x.shape}")
    if x.shape[1] == 0:
        raise InvalidJob("DSP separation input is empty (0 frames)")
    if not np.isfinite(x).all():
        raise InvalidJob("DSP separation input contains NaN or infinite samples")

    def step(f: float, stage: str) -> None:
        if cancel is not None and getattr(cancel, "cancelled", False):
            raise JobCancelled("job cancelled")
        if progress is not None:
            progress(f, stage)

    channels, frames = x.shape
    hop = n_fft // 4
    step(0.0, "analysing")
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True)  # (channels, bins, frames)
    mid = np.abs(spec.mean(axis=0))
    step(0.2, "harmonic/percussive split")
    harm, perc = librosa.decompose.hpss(mid, kernel_size=kernel_size, mask=True)
    step(0.6, "centre extraction")
    if channels == 2:
        left, right = spec[0], spec[1]
        num = 2.0 * np.real(left * np.conj(right))
        den = np.abs(left) ** 2 + np.abs(right) ** 2 + 1e-12
        centre = np.clip(num / den, 0.0, 1.0) ** centre_power
    else:
        centre = np.ones_like(mid)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)[:, None]
    in_band = ((freqs >= vocal_band[0]) & (freqs <= vocal_band[1])).astype(np.float32)
    vocals = centre * harm * in_band
    bass = harm * (freqs < bass_cutoff) * (1.0 - vocals)
    drums = perc * (1.0 - vocals)
    step(0.8, "resynthesis")
    out: dict[str, np.ndarray] = {}
    for name, mask in (("drums", drums), ("bass", bass), ("vocals", vocals)):
        y = librosa.istft(spec * mask[None].astype(np.float32), hop_length=hop, n_fft=n_fft, length=frames)
        out[name] = np.ascontiguousarray(y, dtype=np.float32)
    other = x.astype(np.float64) - sum(out[n].astype(np.float64) for n in ("drums", "bass", "vocals"))
    out["other"] = other.astype(np.float32)
    step(1.0, "done")
    return {n: out[n] for n in DSP_SOURCES}
