"""Audio glue for the ACE-Step engine: resampling to and from the model rate, exact
lengths, crossfades that keep the original untouched, and loudness matching.

All audio is numpy float32 ``(channels, frames)``; rates in Hz; levels in dB (LUFS for
BS.1770 loudness).
"""
from __future__ import annotations

import math

import numpy as np


def resample(audio: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Resample ``(channels, frames)`` float32 audio from ``rate_from`` to ``rate_to`` Hz.

    Equal rates return a copy. Otherwise ``soxr.resample`` (libsoxr, "VHQ" quality,
    linear phase, so sample ``i`` of the output lies at ``i / rate_to`` seconds from the
    same origin as the input).
    """
    a = np.ascontiguousarray(audio, dtype=np.float32)
    if int(rate_from) == int(rate_to):
        return a.copy()
    import soxr

    out = soxr.resample(a.T, int(rate_from), int(rate_to), quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).T)


def fit_length(audio: np.ndarray, frames: int) -> np.ndarray:
    """``audio`` cut or zero-padded at the end to exactly ``frames`` frames."""
    if audio.shape[1] >= frames:
        return np.ascontiguousarray(audio[:, :frames])
    return np.pad(audio, ((0, 0), (0, frames - audio.shape[1])))


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Stereo model output to ``channels`` channels (mono = the mean; more = repeated)."""
    if audio.shape[0] == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True).astype(np.float32)
    return np.resize(audio, (channels, audio.shape[1])).astype(np.float32)


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """Any channel count to the model's two channels (mono is duplicated; more: first two)."""
    if audio.shape[0] == 2:
        return audio
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    return np.ascontiguousarray(audio[:2])


def fade_curves(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power fade of ``frames`` samples: ``(fade_out, fade_in)`` = ``(cos, sin)`` of
    ``pi/2 * k / frames``, k = 0..frames-1 (float64). ``fade_in[0] == 0`` and
    ``fade_out[0] == 1`` exactly, and ``fade_out**2 + fade_in**2 == 1``."""
    phase = 0.5 * math.pi * np.arange(frames, dtype=np.float64) / max(1, frames)
    return np.cos(phase), np.sin(phase)


def splice_inside(original: np.ndarray, new: np.ndarray, fade: int) -> np.ndarray:
    """``new`` with equal-power crossfades from ``original`` at both of its ends, inside the span.

    Args:
        original, new: float32 ``(channels, frames)`` of the same span.
        fade: crossfade length in frames at each end (capped at half the span).

    Returns:
        float32 ``(channels, frames)``: the first and the last sample equal ``original``'s
        exactly, so the result spliced back over ``original``'s span continues the audio
        around it without a step, and everything outside the span stays as it was.
    """
    n = original.shape[1]
    fade = max(0, min(int(fade), n // 2))
    out = new.astype(np.float32, copy=True)
    if fade == 0:
        return out
    f_out, f_in = fade_curves(fade)
    o, g = original.astype(np.float64), new.astype(np.float64)
    out[:, :fade] = (o[:, :fade] * f_out + g[:, :fade] * f_in).astype(np.float32)
    out[:, n - fade:] = (o[:, n - fade:] * f_out[::-1] + g[:, n - fade:] * f_in[::-1]).astype(np.float32)
    return out


def declick(new: np.ndarray, offset: np.ndarray, fade: int, *, at_end: bool = False) -> np.ndarray:
    """Fade a constant ``offset`` (per channel) out of ``new`` over ``fade`` frames, from its
    start (or, ``at_end``, from its end): ``new + offset * w`` with ``w = cos^2(pi/2 * k / fade)``
    going from 1 (at the seam) towards 0.

    Used at an extend seam: ``offset`` is the source's sample at the seam minus the model's
    own rendition of it, so the new material starts exactly where the source stops and then
    becomes the model's audio. The two signals are correlated (one is the model's copy of the
    other), so their weights sum to 1 (raised cosine) rather than their powers: an
    equal-power fade would raise the level by up to 3 dB in the middle of the fade.
    """
    out = new.astype(np.float32, copy=True)
    n = out.shape[1]
    fade = max(0, min(int(fade), n))
    if fade == 0:
        return out
    w = np.cos(0.5 * math.pi * np.arange(fade, dtype=np.float64) / fade) ** 2
    if at_end:
        w = w[::-1]
        out[:, n - fade:] = (out[:, n - fade:] + offset[:, None] * w).astype(np.float32)
    else:
        out[:, :fade] = (out[:, :fade] + offset[:, None] * w).astype(np.float32)
    return out


def loudness_db(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4 with gating, ``pyloudnorm``) of
    ``(channels, frames)`` audio; for less than 0.4 s (one gating block) or where the gate
    leaves nothing, the RMS level in dBFS. ``-inf`` for digital silence."""
    a = np.asarray(audio, dtype=np.float64)
    if a.size == 0 or not np.any(a):
        return -math.inf
    if a.shape[1] >= int(0.4 * sample_rate) + 1:
        import pyloudnorm

        value = float(pyloudnorm.Meter(int(sample_rate)).integrated_loudness(a.T))
        if math.isfinite(value):
            return value
    return float(10.0 * np.log10(np.mean(a * a)))


def loudness_gain(audio: np.ndarray, sample_rate: int, target_db: float, *, max_gain_db: float = 24.0) -> float:
    """Linear gain bringing ``audio``'s loudness (:func:`loudness_db`) to ``target_db``,
    limited to +-``max_gain_db``; 1.0 when either side is silent."""
    current = loudness_db(audio, sample_rate)
    if not (math.isfinite(current) and math.isfinite(target_db)):
        return 1.0
    gain_db = max(-max_gain_db, min(max_gain_db, target_db - current))
    return float(10.0 ** (gain_db / 20.0))


def rate_step(sample_rate: int, model_rate: int) -> int:
    """Smallest frame count at ``sample_rate`` that is a whole number of frames at
    ``model_rate`` (``sample_rate / gcd``): 147 at 44.1 kHz against 48 kHz, 1 at 48 kHz."""
    return int(sample_rate) // math.gcd(int(sample_rate), int(model_rate))
