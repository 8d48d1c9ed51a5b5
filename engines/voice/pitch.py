"""F0 for RVC: FCPE (offline default) or RMVPE, and RVC's coarse pitch.

Both trackers take 16 kHz mono audio and give one F0 value per 10 ms (160 samples),
frame ``j`` centred on sample ``160 j``; 0 Hz marks unvoiced frames.

* FCPE: "Fast Context-based Pitch Estimation" (Luo et al., arXiv:2509.15140) through
  ``torchfcpe`` with the weights shipped in its wheel (loaded by
  :func:`engines.analysis.melody.load_fcpe`, ``weights_only=True``); RVC's settings:
  local-argmax decoding, threshold 0.006.
* RMVPE: "RMVPE: A Robust Model for Vocal Pitch Estimation in Polyphonic Music"
  (Wei et al., Interspeech 2023), the model RVC ships as ``rmvpe.pt``
  (:mod:`engines.voice.rmvpe`); threshold 0.03 as RVC.

RVC's coarse pitch (``Pipeline.get_f0``): ``mel = 1127 ln(1 + f0 / 700)``, mapped linearly
from [mel(50 Hz), mel(1100 Hz)] to bins 1..255, unvoiced = 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["F0_MIN", "F0_MAX", "HOP", "SAMPLE_RATE", "fcpe_f0", "coarse_pitch", "median_filter_f0",
           "transpose_f0"]

SAMPLE_RATE = 16000
HOP = 160
F0_MIN = 50.0
F0_MAX = 1100.0
_MEL_MIN = 1127.0 * np.log(1 + F0_MIN / 700)
_MEL_MAX = 1127.0 * np.log(1 + F0_MAX / 700)


def _fit(f0: np.ndarray, frames: int) -> np.ndarray:
    f0 = np.asarray(f0, np.float32).reshape(-1)[:frames]
    return np.pad(f0, (0, frames - f0.size)) if f0.size < frames else f0


def fcpe_f0(audio: np.ndarray, frames: int, model: Any, threshold: float = 0.006) -> np.ndarray:
    """F0 of 16 kHz mono audio with FCPE.

    Args:
        audio: ``(samples,)`` float32 at 16 kHz.
        frames: how many 10 ms frames to return (padded with 0 or cut).
        model: ``torchfcpe`` ``InferCFNaiveMelPE`` (:func:`engines.analysis.melody.load_fcpe`).
        threshold: FCPE voicing threshold on its salience.

    Returns:
        ``(frames,)`` float32 Hz; 0 where unvoiced or below :data:`F0_MIN`; values above
        :data:`F0_MAX` are clipped to it (torchfcpe's ``f0_max``).
    """
    import torch

    if audio.size == 0 or frames == 0:
        return np.zeros(frames, np.float32)
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :, None].to(device)
    with torch.inference_mode():
        f0 = model.infer(x, sr=SAMPLE_RATE, decoder_mode="local_argmax", threshold=threshold, f0_min=F0_MIN,
                         f0_max=F0_MAX, interp_uv=False)
    f0 = _fit(f0[0, :, 0].float().cpu().numpy(), frames)
    f0 = np.nan_to_num(f0, nan=0.0, posinf=0.0, neginf=0.0)
    f0[f0 < F0_MIN] = 0.0
    return f0


def transpose_f0(f0: np.ndarray, semitones: float) -> np.ndarray:
    """``f0 * 2 ** (semitones / 12)`` (unvoiced 0 stays 0). Hz in, Hz out."""
    return (np.asarray(f0, np.float32) * np.float32(2.0 ** (float(semitones) / 12.0))).astype(np.float32)


def median_filter_f0(f0: np.ndarray, radius: int) -> np.ndarray:
    """Median-filter an F0 curve to remove single-frame glitches (RVC's ``filter_radius``).

    RVC median-filters its harvest F0 with a 3-frame kernel when ``filter_radius >= 3``;
    here the kernel is ``radius`` frames (made odd: ``radius | 1``) for any tracker, so the
    default 3 matches RVC. ``radius < 3`` leaves ``f0`` unchanged.
    """
    if radius < 3 or f0.size == 0:
        return np.asarray(f0, np.float32)
    from scipy.signal import medfilt

    return medfilt(np.asarray(f0, np.float64), kernel_size=int(radius) | 1).astype(np.float32)


def coarse_pitch(f0: np.ndarray) -> np.ndarray:
    """RVC's coarse pitch bins of an F0 curve in Hz: int64 in 1..255 (1 = unvoiced/lowest)."""
    mel = 1127.0 * np.log(1 + np.asarray(f0, np.float64) / 700)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - _MEL_MIN) * 254 / (_MEL_MAX - _MEL_MIN) + 1
    return np.rint(np.clip(mel, 1, 255)).astype(np.int64)
