"""Tempo, beats, downbeats and a time-signature guess: the shared result type and the
offline DSP beat tracker.

The DSP tracker (no model files needed) is the fallback when the Beat This! weights
are not installed (see :mod:`engines.analysis.beat_this_adapter`):

1. **Tempo**: the highest peak of the autocorrelation of the onset-strength envelope
   (``librosa.onset.onset_strength``) inside ``[min_bpm, max_bpm]`` (default 70-180
   BPM, the usual tactus range; this range is what settles octave ambiguity).
2. **Beats**: Ellis' dynamic-programming beat tracker at that tempo
   (D. Ellis, "Beat Tracking by Dynamic Programming", JNMR 36(1), 2007;
   ``librosa.beat.beat_track``).
3. **Beat phase**: the tracker may lock onto off-beats in syncopated music. Of the
   tracked sequence and the one shifted by half a period, keep the one whose
   beat-synchronous CQT chroma (``librosa.feature.chroma_cqt``) changes most from
   segment to segment, since chord and bass changes fall on beats (Goto & Muraoka, "Real-time beat
   tracking for drumless audio signals", Speech Communication 27, 1999).
4. **Meter and downbeats**: beat-synchronous harmonic change and low-band onsets;
   the meter (3 or 4 beats per bar) whose bar-lag self-similarity is higher, and the
   bar phase whose beats carry the most harmonic change + bass onsets (Goto 1999,
   again: chords change at bar lines).

All positions in results are integer samples at the input's sample rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.analysis._audio import mono_float32

__all__ = ["BeatGrid", "track_beats_dsp", "estimate_meter", "ANALYSIS_RATE"]

ANALYSIS_RATE = 22050
"""Rate (Hz) the DSP tracker resamples to (soxr) before analysis."""
_HOP = 256


@dataclass
class BeatGrid:
    """Beats and downbeats of a piece of audio.

    Attributes:
        beats: beat positions, int64 samples at ``sample_rate``, ascending.
        downbeats: the subset of bar starts (int64 samples), ascending.
        sample_rate: Hz of the positions.
        bpm: global tempo in quarter notes per minute (beats are quarter notes).
        numerator, denominator: time-signature guess (``4/4`` or ``3/4``).
        method: ``"beat_this"`` or ``"dsp"``.
        extra: method-specific facts (e.g. tempo candidates, confidences).
    """

    beats: np.ndarray
    downbeats: np.ndarray
    sample_rate: int
    bpm: float
    numerator: int = 4
    denominator: int = 4
    method: str = "dsp"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def beat_times(self) -> np.ndarray:
        """Beat positions in seconds (float64), for evaluation and display."""
        return np.asarray(self.beats, dtype=np.float64) / self.sample_rate

    @property
    def downbeat_times(self) -> np.ndarray:
        """Downbeat positions in seconds (float64)."""
        return np.asarray(self.downbeats, dtype=np.float64) / self.sample_rate

    def local_bpm(self) -> np.ndarray:
        """Tempo between consecutive beats, ``(len(beats) - 1,)`` BPM (60 / inter-beat seconds)."""
        ibi = np.diff(self.beat_times)
        return 60.0 / np.maximum(ibi, 1e-6)

    def is_steady(self, tolerance: float = 0.04) -> bool:
        """True when every bar's tempo is within ``tolerance`` (relative) of :attr:`bpm`."""
        if len(self.beats) < 3:
            return True
        local = self.local_bpm()
        # median over a bar's worth of beats suppresses single-beat jitter
        k = max(1, self.numerator)
        smooth = np.array([np.median(local[i:i + k]) for i in range(0, len(local), k)])
        return bool(np.all(np.abs(smooth / self.bpm - 1.0) <= tolerance))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (positions as int lists)."""
        return {
            "beats": [int(b) for b in self.beats],
            "downbeats": [int(b) for b in self.downbeats],
            "sample_rate": int(self.sample_rate),
            "bpm": float(self.bpm),
            "numerator": int(self.numerator),
            "denominator": int(self.denominator),
            "method": self.method,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BeatGrid":
        """Inverse of :meth:`to_dict`."""
        return cls(
            beats=np.asarray(d["beats"], dtype=np.int64),
            downbeats=np.asarray(d["downbeats"], dtype=np.int64),
            sample_rate=int(d["sample_rate"]),
            bpm=float(d["bpm"]),
            numerator=int(d.get("numerator", 4)),
            denominator=int(d.get("denominator", 4)),
            method=str(d.get("method", "dsp")),
            extra=dict(d.get("extra") or {}),
        )


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return mono_float32(audio, sample_rate)


def _to_analysis_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    import soxr

    a = _mono(audio, sample_rate)
    if int(sample_rate) != ANALYSIS_RATE:
        a = soxr.resample(a, int(sample_rate), ANALYSIS_RATE).astype(np.float32)
    return a


def _tempo_from_acf(envelope: np.ndarray, frame_rate: float, min_bpm: float, max_bpm: float) -> tuple[float, list]:
    """Highest onset-autocorrelation peak in [min_bpm, max_bpm]; parabolic lag refinement."""
    import librosa
    from scipy.signal import find_peaks

    env = envelope - envelope.mean()
    acf = librosa.autocorrelate(env)
    if acf[0] <= 0:
        raise ValueError("audio has no onsets to find a tempo in (silent or constant)")
    acf = acf / acf[0]
    lo = int(np.floor(60.0 * frame_rate / max_bpm))
    hi = int(np.ceil(60.0 * frame_rate / min_bpm))
    hi = min(hi, acf.size - 2)
    if hi <= lo + 1:
        raise ValueError("audio is too short to estimate a tempo (needs a few seconds)")
    peaks, _ = find_peaks(acf[: hi + 2])
    peaks = peaks[(peaks >= lo) & (peaks <= hi)]
    if peaks.size == 0:
        lag = lo + int(np.argmax(acf[lo:hi + 1]))
    else:
        lag = int(peaks[np.argmax(acf[peaks])])
    y0, y1, y2 = acf[lag - 1], acf[lag], acf[lag + 1]
    denom = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
    bpm = 60.0 * frame_rate / (lag + float(np.clip(frac, -0.5, 0.5)))
    candidates = sorted(((round(60.0 * frame_rate / p, 2), round(float(acf[p]), 3)) for p in peaks),
                        key=lambda c: -c[1])[:5]
    return float(bpm), candidates


def _chroma_and_low(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame-wise CQT chroma ``(12, n)`` and low-band (<200 Hz) onset strength ``(n,)``."""
    import librosa

    chroma = librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_RATE, hop_length=_HOP)
    mel = librosa.feature.melspectrogram(y=y, sr=ANALYSIS_RATE, n_fft=2048, hop_length=_HOP, n_mels=64)
    centres = librosa.mel_frequencies(66, fmax=ANALYSIS_RATE / 2)[1:-1]
    low = librosa.onset.onset_strength(S=librosa.power_to_db(mel[centres < 200.0]), sr=ANALYSIS_RATE,
                                       hop_length=_HOP)
    return chroma, low


def _harmonic_change(chroma: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Cosine distance between the mean chroma of the segments before and after each beat.

    Returns ``(len(beats),)``; the first and last beats get 0.
    """
    import librosa

    b = beats[(beats > 0) & (beats < chroma.shape[1])]
    seg = librosa.util.sync(chroma, b, aggregate=np.mean)  # segments [0,b0), [b0,b1), ..., [bn,end)
    seg = seg / (np.linalg.norm(seg, axis=0, keepdims=True) + 1e-9)
    dist = 1.0 - (seg[:, 1:] * seg[:, :-1]).sum(axis=0)  # change at each b
    out = np.zeros(len(beats), dtype=np.float64)
    idx = np.flatnonzero((beats > 0) & (beats < chroma.shape[1]))
    out[idx] = dist[: idx.size]
    if out.size:
        out[0] = out[-1] = 0.0  # edge segments are partial
    return out


def _beat_values(env: np.ndarray, beats: np.ndarray, radius: int = 2) -> np.ndarray:
    """Max of ``env`` within +-radius frames of each beat frame."""
    out = np.empty(len(beats), dtype=np.float64)
    for i, b in enumerate(beats):
        out[i] = env[max(0, b - radius): b + radius + 1].max() if 0 <= b < env.size else 0.0
    return out


def estimate_meter(bar_feature: np.ndarray, meters: tuple[int, ...] = (4, 3)) -> tuple[int, int, dict]:
    """Meter and bar phase from a beat-synchronous accent sequence.

    Args:
        bar_feature: ``(n_beats,)`` accent per beat (harmonic change + bass onsets).
        meters: candidate beats per bar, preferred first (wins ties).

    Returns:
        ``(numerator, phase, scores)``: beats per bar, index of the first downbeat in
        ``0..numerator-1``, and the per-meter scores.

    Method: for each meter m, the contrast between the mean accent of the best phase
    and the mean of the other phases (accents recur once per bar), scaled by the
    correlation of the sequence with itself one bar later.
    """
    x = np.asarray(bar_feature, dtype=np.float64)
    scores: dict[str, float] = {}
    best = (meters[0], 0, -np.inf)
    if x.size < 2 * max(meters):
        m = meters[0]
        phase = int(np.argmax([x[p::m].mean() if x[p::m].size else 0 for p in range(m)])) if x.size else 0
        return m, phase, {"short": True}
    xs = (x - x.mean()) / (x.std() + 1e-9)
    for m in meters:
        means = np.array([xs[p::m].mean() for p in range(m)])
        phase = int(np.argmax(means))
        contrast = means[phase] - np.delete(means, phase).mean()
        rep = float(np.corrcoef(xs[:-m], xs[m:])[0, 1]) if xs.size > m + 2 else 0.0
        score = contrast * (1.0 + max(rep, 0.0))
        scores[f"{m}"] = round(float(score), 4)
        if score > best[2] * 1.1 or best[2] == -np.inf:  # the earlier (preferred) meter needs a 10% margin to lose
            best = (m, phase, score)
    return best[0], best[1], scores


def track_beats_dsp(audio: np.ndarray, sample_rate: int, *, min_bpm: float = 70.0, max_bpm: float = 180.0,
                    tightness: float = 100.0, meters: tuple[int, ...] = (4, 3),
                    tempo: float | None = None) -> BeatGrid:
    """Track tempo, beats and downbeats with DSP only (no model files).

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio.
        sample_rate: its rate in Hz.
        min_bpm, max_bpm: tempo search range in BPM.
        tightness: how strictly beats follow the tempo (``librosa.beat.beat_track``).
        meters: candidate beats per bar, preferred first.
        tempo: the tempo to track at, BPM (e.g. :func:`engines.analysis.tempo.estimate_tempo`'s);
            None = the onset-autocorrelation peak in ``[min_bpm, max_bpm]`` (step 1).

    Returns:
        :class:`BeatGrid` with ``method="dsp"``; positions in samples at ``sample_rate``.

    Raises:
        ValueError: bad audio, audio shorter than ~2 s, or no onsets at all.

    Method: see the module docstring (ACF tempo, Ellis DP beats, harmonic-change
    phase choice, bar-accent meter and downbeats).
    """
    import librosa

    if not (0 < min_bpm < max_bpm):
        raise ValueError(f"tempo range must satisfy 0 < min_bpm < max_bpm, got {min_bpm}..{max_bpm}")
    y = _to_analysis_rate(audio, sample_rate)
    if y.size < 2 * ANALYSIS_RATE:
        raise ValueError(f"audio is too short to track beats ({y.size / ANALYSIS_RATE:.2f} s; needs 2 s)")
    frame_rate = ANALYSIS_RATE / _HOP
    env = librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=_HOP)
    if tempo is not None:
        if not (math.isfinite(float(tempo)) and float(tempo) > 0):
            raise ValueError(f"tempo must be a positive number of BPM, got {tempo}")
        bpm, candidates = float(tempo), [(round(float(tempo), 2), 1.0)]
    else:
        bpm, candidates = _tempo_from_acf(env, frame_rate, min_bpm, max_bpm)
    _, beats = librosa.beat.beat_track(onset_envelope=env, sr=ANALYSIS_RATE, hop_length=_HOP, bpm=bpm,
                                       tightness=tightness, trim=False)
    beats = np.asarray(beats, dtype=np.int64)
    period = 60.0 * frame_rate / bpm

    chroma, low = _chroma_and_low(y)
    shifted = np.round(beats + period / 2).astype(np.int64)
    shifted = shifted[shifted < env.size]
    on = float(_harmonic_change(chroma, beats)[1:-1].mean()) if beats.size > 2 else 0.0
    off = float(_harmonic_change(chroma, shifted)[1:-1].mean()) if shifted.size > 2 else 0.0
    phase_shifted = bool(off > on)
    if phase_shifted:
        # keep a beat before the first shifted one if there is room
        first = shifted[0] - int(round(period))
        beats = np.concatenate([[first], shifted]) if first >= 0 else shifted

    change = _harmonic_change(chroma, beats)
    accent = change / (change.max() + 1e-9) + _beat_values(low, beats) / (low.max() + 1e-9)
    numerator, phase, meter_scores = estimate_meter(accent, meters)
    down = beats[phase::numerator]

    # refine the global tempo from the tracked beats: mean of the inter-beat intervals
    # within 10% of their median (sub-frame precision, robust to a dropped beat)
    if beats.size >= 3:
        ibi = np.diff(beats).astype(np.float64)
        typical = ibi[np.abs(ibi / np.median(ibi) - 1.0) < 0.1]
        bpm = 60.0 * frame_rate / float(typical.mean())
    to_samples = sample_rate / frame_rate
    return BeatGrid(
        beats=np.round(beats * to_samples).astype(np.int64),
        downbeats=np.round(down * to_samples).astype(np.int64),
        sample_rate=int(sample_rate),
        bpm=float(bpm),
        numerator=int(numerator),
        denominator=4,
        method="dsp",
        extra={"tempo_candidates": [list(map(float, c)) for c in candidates], "phase_shifted": phase_shifted,
               "harmonic_change": [round(on, 4), round(off, 4)], "meter_scores": meter_scores},
    )
