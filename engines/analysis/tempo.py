"""Global tempo of a piece of audio: an ensemble of DSP estimators with a confidence value.

One estimator alone errs on real music in two ways: by an octave (half or double the
tempo: a matter of taste as much as an error) and by a few to tens of percent (a wrong
autocorrelation peak: a real error, which puts every bar line of a grid off). The
ensemble asks several estimators that err differently and keeps the tempo most of them
agree on, up to octaves:

* ``acf``: the highest peak of the onset-strength autocorrelation inside
  ``[min_bpm, max_bpm]`` (:func:`engines.analysis.beats._tempo_from_acf`; Seed Studio's
  earlier estimator).
* ``percival``: Percival & Tzanetakis, "Streamlined tempo estimation based on
  autocorrelation and cross-correlation with pulses", IEEE/ACM TASLP 22(12), 2014
  (essentia's ``PercivalBpmEstimator``).
* ``rhythm2013``: Zapata, Davies & Gómez, "Multi-feature beat tracking", IEEE/ACM TASLP
  22(4), 2014 (essentia's ``RhythmExtractor2013``, ``multifeature``); it also reports its
  own confidence (0..5.32; above 3.5 its beats are very likely right).
* ``librosa``: ``librosa.feature.tempo`` (a log-normal tempo prior around 120 BPM); used
  only when essentia is not installed, so that three estimators still vote.

Voting: two estimates *agree* when their ratio is within :data:`AGREE` (4 %) of a power
of two. Each estimate's support is the summed weight of the estimates that agree with it;
the best-supported group wins (ties: the group holding ``acf``, then ``rhythm2013``).
Its octave is the one ``acf`` chose when ``acf`` is in the group (it searched the
musician's ``[min_bpm, max_bpm]``) unless all the others heard one other octave inside
that range and the ACF's own peak there is nearly as strong (:data:`OCTAVE_FLIP`); without
``acf`` it is the octave most of the group reported, folded into ``[min_bpm, max_bpm]``. The tempo is the weighted median of the group's estimates
moved to that octave (the geometric mean of two). The DSP beat tracker then tracks beats
at that tempo and refines it from the beats it found
(:func:`engines.analysis.beats.track_beats_dsp` with ``tempo=``).

Confidence (0..1): the winning group's share of the total weight (when ``rhythm2013`` is
in the group, 80 % of that share plus 20 % of its own confidence scaled to 0..1), times
``0.5 + 0.5 x`` the share of the group that reported the chosen octave itself. All
estimators agreeing on the same tempo gives about 0.9 or more; agreeing up to an octave
(72 against 144) about 0.6; one against two about 0.6; all disagreeing about 0.3. The
other octave a part of the group heard is kept in ``extra["other_octave_bpm"]``.

Essentia (AGPL-3.0, which GPL-3.0 programs may combine with) is optional: without it the
ensemble is ``acf``, ``librosa`` and ``plp`` (``librosa.beat.plp``'s predominant pulse).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.analysis._audio import mono_float32

AGREE = 0.04
"""Two tempi agree when their ratio is within this fraction of a power of two."""
OCTAVE_FLIP = 0.9
"""The others' octave replaces the ACF's when the ACF's own peak there is at least this
fraction of its best (chosen on the shared evaluation material: 0.94-0.96 where the others
were right, 0.82-0.83 where the ACF was; see benchmarks/analysis_eval.py)."""
WEIGHTS = {"acf": 1.0, "percival": 1.0, "rhythm2013": 1.0, "librosa": 0.8, "plp": 0.8}
"""Vote weight of each estimator."""
ESSENTIA_RATE = 44100


@dataclass
class TempoEstimate:
    """The ensemble's answer.

    Attributes:
        bpm: tempo, quarter notes per minute.
        confidence: 0..1 (see the module docstring).
        estimates: estimator name -> its own BPM (before octave folding).
        agreeing: the estimators of the winning group.
        extra: estimator-specific facts (``rhythm2013_confidence``, ACF candidates...).
    """

    bpm: float
    confidence: float
    estimates: dict[str, float] = field(default_factory=dict)
    agreeing: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"bpm": round(float(self.bpm), 3), "confidence": round(float(self.confidence), 3),
                "estimates": {k: round(float(v), 3) for k, v in self.estimates.items()},
                "agreeing": list(self.agreeing), "extra": self.extra}


def has_essentia() -> bool:
    """True when essentia's Python package can be imported."""
    try:
        import essentia.standard  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or a broken build
        return False
    return True


def _octave_distance(a: float, b: float) -> float:
    """How far ``a / b`` is from the nearest power of two, as a fraction."""
    r = math.log2(a / b)
    return abs(2.0 ** (r - round(r)) - 1.0)


def _fold(bpm: float, lo: float, hi: float) -> float:
    """``bpm`` moved by octaves into ``[lo, hi]`` where it can be (else the nearest octave)."""
    x = float(bpm)
    while x < lo and x * 2 <= hi * (1 + AGREE):
        x *= 2
    while x > hi and x / 2 >= lo * (1 - AGREE):
        x /= 2
    return x


def vote(estimates: dict[str, float], *, min_bpm: float = 70.0, max_bpm: float = 180.0,
         rhythm_confidence: float | None = None,
         acf_candidates: list[tuple[float, float]] | None = None) -> TempoEstimate:
    """Combine per-estimator tempi (see the module docstring for the rule).

    Args:
        estimates: name -> BPM (names from :data:`WEIGHTS`; non-finite or non-positive are ignored).
        min_bpm, max_bpm: the tempo range the musician expects (octave choice).
        rhythm_confidence: ``RhythmExtractor2013``'s confidence (0..5.32), if it voted.
        acf_candidates: ``(BPM, normalised autocorrelation)`` of the ACF's strongest peaks
            (the octave rule's second look).

    Raises:
        ValueError: no usable estimate.
    """
    est = {k: float(v) for k, v in estimates.items() if v is not None and math.isfinite(v) and v > 0}
    if not est:
        raise ValueError("no tempo could be estimated (silent or too short audio)")
    names = list(est)
    w = {k: WEIGHTS.get(k, 1.0) for k in names}
    total = sum(w.values())
    groups = {k: [j for j in names if _octave_distance(est[k], est[j]) <= AGREE] for k in names}
    support = {k: sum(w[j] for j in g) for k, g in groups.items()}
    order = sorted(names, key=lambda k: (-support[k], k != "acf", k != "rhythm2013", k))
    group = groups[order[0]]
    # the octave: acf's (it searched the musician's range), else the group's most common one
    if "acf" in group:
        ref = est["acf"]
        others = [est[j] for j in group if j != "acf"]
        if len(others) >= 2 and all(abs(o / others[0] - 1) <= AGREE for o in others) \
                and abs(others[0] / ref - 1) > AGREE and acf_candidates:
            best = max(c[1] for c in acf_candidates)
            there = max((c[1] for c in acf_candidates if abs(c[0] / others[0] - 1) <= AGREE), default=0.0)
            if best > 0 and there >= OCTAVE_FLIP * best and min_bpm <= others[0] <= max_bpm:
                ref = float(np.median(others))  # the ACF saw that octave nearly as strongly
    else:
        octaves: dict[float, float] = {}
        for j in group:
            key = next((o for o in octaves if abs(est[j] / o - 1) <= AGREE), est[j])
            octaves[key] = octaves.get(key, 0.0) + w[j]
        ref = _fold(max(octaves, key=lambda o: (octaves[o], -abs(math.log2(o / 110.0)))), min_bpm, max_bpm)
    moved = sorted((est[j] * 2.0 ** round(math.log2(ref / est[j])), w[j]) for j in group)
    if len(moved) >= 3:  # weighted median: one estimator a few percent off doesn't pull the tempo
        half, acc = sum(wv for _, wv in moved) / 2.0, 0.0
        bpm = moved[-1][0]
        for v, wv in moved:
            acc += wv
            if acc >= half:
                bpm = v
                break
    else:
        bpm = math.exp(sum(math.log(v) * wv for v, wv in moved) / sum(wv for _, wv in moved))
    share = support[order[0]] / total
    conf = share
    if "rhythm2013" in group and rhythm_confidence is not None:
        conf = 0.8 * share + 0.2 * min(1.0, max(0.0, rhythm_confidence / 3.5))
    # the octave is less sure when the group split over octaves
    same = sum(w[j] for j in group if abs(est[j] / bpm - 1) <= AGREE) / support[order[0]]
    conf *= 0.5 + 0.5 * same
    other = [est[j] for j in group if abs(est[j] / bpm - 1) > AGREE]
    extra = {"octave_agreement": round(same, 3)}
    if other:
        extra["other_octave_bpm"] = round(float(np.median(other)), 3)
    return TempoEstimate(bpm=float(bpm), confidence=float(round(conf, 4)), estimates=est, agreeing=sorted(group),
                         extra=extra)


def _essentia_votes(mono: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """Percival and RhythmExtractor2013 on mono float32 audio at :data:`ESSENTIA_RATE`."""
    import essentia
    import essentia.standard as es

    essentia.log.infoActive = False  # its INFO lines are for essentia's developers
    x = np.ascontiguousarray(mono, dtype=np.float32)
    out: dict[str, float] = {}
    extra: dict[str, Any] = {}
    try:
        out["percival"] = float(es.PercivalBpmEstimator(sampleRate=ESSENTIA_RATE)(x))
    except Exception as exc:  # noqa: BLE001 - one voter less, said in extra
        extra["percival_error"] = str(exc)[:200]
    try:
        bpm, _ticks, conf, _est, _intervals = es.RhythmExtractor2013(method="multifeature")(x)
        out["rhythm2013"] = float(bpm)
        extra["rhythm2013_confidence"] = round(float(conf), 3)
    except Exception as exc:  # noqa: BLE001
        extra["rhythm2013_error"] = str(exc)[:200]
    return out, extra


def _librosa_votes(y: np.ndarray, rate: int, env: np.ndarray, hop: int) -> dict[str, float]:
    import librosa

    out = {"librosa": float(np.atleast_1d(librosa.feature.tempo(onset_envelope=env, sr=rate, hop_length=hop))[0])}
    pulse = librosa.beat.plp(onset_envelope=env, sr=rate, hop_length=hop)
    peaks = np.flatnonzero(librosa.util.localmax(pulse))
    if peaks.size >= 3:
        out["plp"] = float(60.0 * rate / hop / np.median(np.diff(peaks)))
    return out


def estimate_tempo(audio: np.ndarray, sample_rate: int, *, min_bpm: float = 70.0, max_bpm: float = 180.0,
                   methods: tuple[str, ...] | None = None) -> TempoEstimate:
    """The global tempo of ``audio`` by the ensemble of the module docstring.

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio.
        sample_rate: Hz.
        min_bpm, max_bpm: the expected tempo range, BPM (the ``acf`` search range and the
            octave choice; other estimators may report outside it).
        methods: estimators to use (default: ``acf``, ``percival``, ``rhythm2013`` with
            essentia, else ``acf``, ``librosa``, ``plp``).

    Returns:
        :class:`TempoEstimate`.

    Raises:
        ValueError: bad range, audio shorter than 2 s, no onsets at all.
    """
    import librosa

    from engines.analysis.beats import _HOP, ANALYSIS_RATE, _tempo_from_acf, _to_analysis_rate

    if not (0 < min_bpm < max_bpm):
        raise ValueError(f"tempo range must satisfy 0 < min_bpm < max_bpm, got {min_bpm}..{max_bpm}")
    if methods is None:
        methods = ("acf", "percival", "rhythm2013") if has_essentia() else ("acf", "librosa", "plp")
    y = _to_analysis_rate(audio, sample_rate)
    if y.size < 2 * ANALYSIS_RATE:
        raise ValueError(f"audio is too short to estimate a tempo ({y.size / ANALYSIS_RATE:.2f} s; needs 2 s)")
    env = librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=_HOP)
    votes: dict[str, float] = {}
    extra: dict[str, Any] = {}
    if "acf" in methods:
        bpm, candidates = _tempo_from_acf(env, ANALYSIS_RATE / _HOP, min_bpm, max_bpm)
        votes["acf"] = bpm
        extra["acf_candidates"] = [list(map(float, c)) for c in candidates[:5]]
    if {"percival", "rhythm2013"} & set(methods):
        got, more = _essentia_votes(mono_float32(audio, sample_rate, ESSENTIA_RATE))
        votes.update({k: v for k, v in got.items() if k in methods})
        extra.update(more)
    if {"librosa", "plp"} & set(methods):
        votes.update({k: v for k, v in _librosa_votes(y, ANALYSIS_RATE, env, _HOP).items() if k in methods})
    result = vote(votes, min_bpm=min_bpm, max_bpm=max_bpm, rhythm_confidence=extra.get("rhythm2013_confidence"),
                  acf_candidates=extra.get("acf_candidates"))
    result.extra.update(extra)
    return result
