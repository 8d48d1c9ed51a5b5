"""Input checks shared by the analysis engines."""
from __future__ import annotations

import numpy as np


def mono_float32(audio: np.ndarray, sample_rate: int, target_rate: int | None = None) -> np.ndarray:
    """Mono float32 ``(frames,)`` from ``(channels, frames)`` or ``(frames,)`` audio (channel mean),
    resampled with soxr to ``target_rate`` Hz when given and different.

    Raises:
        ValueError: not 1-D/2-D, empty, non-finite samples, or a non-positive sample rate.
    """
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"audio must be non-empty (channels, frames), got shape {np.shape(audio)}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio holds NaN or infinite samples")
    if target_rate is not None and int(sample_rate) != int(target_rate):
        import soxr

        a = soxr.resample(a, int(sample_rate), int(target_rate)).astype(np.float32)
    return a
