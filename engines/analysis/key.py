"""Key and scale estimation with the Krumhansl-Schmuckler key-finding algorithm.

Method: correlate a 12-bin pitch-class distribution with the 24 rotated major/minor
key profiles and take the best (C. L. Krumhansl, *Cognitive Foundations of Musical
Pitch*, Oxford UP 1990, ch. 4). Profiles: Krumhansl & Kessler (1982) probe-tone
ratings (default) or Temperley's revision (D. Temperley, "What's key for key? The
Krumhansl-Schmuckler key-finding algorithm reconsidered", Music Perception 17(1), 1999).
For audio the distribution is the time-averaged CQT chromagram
(``librosa.feature.chroma_cqt``); for notes it is the duration-weighted pitch-class
histogram.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from engines.analysis._audio import mono_float32

__all__ = ["PITCH_CLASSES", "PROFILES", "KeyEstimate", "estimate_key", "key_from_chroma", "key_from_notes"]

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

PROFILES: dict[str, dict[str, np.ndarray]] = {
    "krumhansl": {
        "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
        "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    },
    "temperley": {
        "major": np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0]),
        "minor": np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0]),
    },
}
"""Key profiles indexed from the tonic (index 0 = tonic), major and minor."""


@dataclass
class KeyEstimate:
    """An estimated key.

    Attributes:
        tonic: pitch class of the tonic, 0 = C .. 11 = B.
        mode: ``"major"`` or ``"minor"``.
        correlation: Pearson correlation of the best key profile (-1..1).
        confidence: best correlation minus the runner-up's (0 = a tie).
        scores: ``"C major" -> correlation`` for all 24 keys.
    """

    tonic: int
    mode: str
    correlation: float
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """E.g. ``"A minor"``."""
        return f"{PITCH_CLASSES[self.tonic]} {self.mode}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (includes ``name``)."""
        return {"name": self.name, "tonic": self.tonic, "mode": self.mode,
                "correlation": round(self.correlation, 4), "confidence": round(self.confidence, 4)}


def key_from_chroma(distribution: np.ndarray, profile: str = "krumhansl") -> KeyEstimate:
    """Krumhansl-Schmuckler key of a pitch-class distribution.

    Args:
        distribution: ``(12,)`` weights (C first), or a chromagram ``(12, frames)`` that is
            averaged over time.
        profile: ``"krumhansl"`` or ``"temperley"``.

    Raises:
        ValueError: wrong shape, unknown profile, or a flat/empty distribution (no key).
    """
    d = np.asarray(distribution, dtype=np.float64)
    if d.ndim == 2 and d.shape[0] == 12:
        d = d.mean(axis=1)
    if d.shape != (12,):
        raise ValueError(f"pitch-class distribution must have 12 bins, got shape {np.shape(distribution)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown key profile {profile!r}; use one of {sorted(PROFILES)}")
    if not np.all(np.isfinite(d)) or np.ptp(d) <= 1e-12:
        raise ValueError("pitch-class distribution is flat or empty: no key can be estimated (silence?)")
    scores: dict[str, float] = {}
    best: tuple[float, int, str] = (-2.0, 0, "major")
    for mode, prof in PROFILES[profile].items():
        for tonic in range(12):
            r = float(np.corrcoef(d, np.roll(prof, tonic))[0, 1])
            scores[f"{PITCH_CLASSES[tonic]} {mode}"] = r
            if r > best[0]:
                best = (r, tonic, mode)
    ranked = sorted(scores.values(), reverse=True)
    return KeyEstimate(tonic=best[1], mode=best[2], correlation=best[0], confidence=ranked[0] - ranked[1],
                       scores=scores)


def estimate_key(audio: np.ndarray, sample_rate: int, *, profile: str = "krumhansl",
                 hop_length: int = 2048) -> KeyEstimate:
    """Key of an audio signal from its time-averaged CQT chroma.

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio.
        sample_rate: Hz (resampled to 22.05 kHz with soxr for the CQT).
        profile: ``"krumhansl"`` or ``"temperley"``.
        hop_length: chroma hop at 22.05 kHz, in samples.

    Raises:
        ValueError: bad/empty/non-finite audio, or silence.
    """
    import librosa

    a = mono_float32(audio, sample_rate, 22050)
    if float(np.max(np.abs(a))) == 0.0:
        raise ValueError("audio is silent: no key can be estimated")
    import warnings

    with warnings.catch_warnings():  # the CQT's low octaves warn about short signals; harmless here
        warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
        chroma = librosa.feature.chroma_cqt(y=a, sr=22050, hop_length=hop_length)
    return key_from_chroma(chroma.mean(axis=1), profile)


def key_from_notes(notes: Iterable[tuple[int, float]], profile: str = "krumhansl") -> KeyEstimate:
    """Key of symbolic notes.

    Args:
        notes: ``(midi_pitch, duration)`` pairs (any duration unit); drum notes excluded by the caller.

    Raises:
        ValueError: no notes.
    """
    hist = np.zeros(12)
    for pitch, dur in notes:
        hist[int(pitch) % 12] += float(dur)
    if hist.sum() <= 0:
        raise ValueError("no notes to estimate a key from")
    return key_from_chroma(hist, profile)
