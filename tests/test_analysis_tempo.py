"""The tempo ensemble (engines.analysis.tempo): the vote, real music, the engine's DSP path."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engines.analysis.tempo import estimate_tempo, has_essentia, vote
from engines.base import AnalyzeSpec, CancelToken, ProgressReporter


def _read(path, seconds=None):
    x, sr = sf.read(str(path), dtype="float32", always_2d=True, frames=-1 if seconds is None else int(seconds * 48000))
    return np.ascontiguousarray(x.T), sr


def test_two_estimators_outvote_one_that_is_off():
    """The ACF 27 % off (the kind of error a grid can't live with): the two that agree win."""
    r = vote({"acf": 95.0, "percival": 130.2, "rhythm2013": 129.5}, rhythm_confidence=3.0)
    assert r.bpm == pytest.approx(129.85, abs=0.01) and r.agreeing == ["percival", "rhythm2013"]
    assert 0.5 < r.confidence < 0.8


def test_octaves_agree_and_acf_picks_the_octave_in_the_musicians_range():
    r = vote({"acf": 72.0, "percival": 143.6, "rhythm2013": 143.8}, min_bpm=70, max_bpm=180)
    assert r.bpm == pytest.approx(71.9, abs=0.1) and len(r.agreeing) == 3
    assert r.extra["other_octave_bpm"] == pytest.approx(143.7, abs=0.1)
    same = vote({"acf": 80.0, "percival": 80.1, "rhythm2013": 79.9}, rhythm_confidence=3.0)
    lone = vote({"acf": 95.0, "percival": 130.0, "rhythm2013": 70.0})
    # all the same > octave split > all different
    assert same.confidence > 0.9 > r.confidence > lone.confidence
    assert lone.bpm == 95.0 and lone.confidence == pytest.approx(1 / 3, abs=0.01)
    # the ACF saw the others' octave nearly as strongly (0.608 against 0.634): theirs wins;
    # not so strongly (0.637 against 0.769): the ACF's octave stays
    flip = vote({"acf": 69.99, "percival": 139.67, "rhythm2013": 140.03},
                acf_candidates=[[69.84, 0.634], [139.67, 0.608], [93.96, 0.252]])
    assert flip.bpm == pytest.approx(139.98, abs=0.01) and flip.extra["other_octave_bpm"] == pytest.approx(69.99)
    keep = vote({"acf": 71.87, "percival": 143.55, "rhythm2013": 143.77}, acf_candidates=[[71.78, 0.769], [143.55, 0.637]])
    assert keep.bpm == pytest.approx(71.87, abs=0.01)
    # without acf the group's most common octave, folded into the range
    assert vote({"percival": 300.0, "rhythm2013": 300.6}, min_bpm=70, max_bpm=180).bpm == pytest.approx(150.15)
    # a median of three: one voter 2.5 % off doesn't pull the tempo
    assert vote({"acf": 117.0, "percival": 119.8, "rhythm2013": 120.0}).bpm == pytest.approx(119.8)
    with pytest.raises(ValueError, match="no tempo"):
        vote({"acf": float("nan")})


def test_real_music_with_and_without_essentia(shared):
    x, sr = _read(shared / "audio" / "uncertain_future_30s.flac")
    r = estimate_tempo(x, sr)
    assert abs(r.bpm / 80 - 1) < 0.04 and r.confidence > 0.8
    if has_essentia():
        assert set(r.estimates) == {"acf", "percival", "rhythm2013"} and "rhythm2013_confidence" in r.extra
    mix, sr2 = _read(shared / "multitrack" / "blupi001" / "mixture.flac")
    r = estimate_tempo(mix, sr2, methods=("acf", "librosa", "plp"))  # the voters without essentia
    assert set(r.estimates) <= {"acf", "librosa", "plp"} and len(r.estimates) >= 2
    assert abs(r.bpm / 120 - 1) < 0.04
    with pytest.raises(ValueError, match="too short"):
        estimate_tempo(x[:, : sr], sr)


def test_the_engines_dsp_path_reports_the_ensemble_and_its_confidence(shared, tmp_path, monkeypatch):
    from engines.analysis.beats import track_beats_dsp
    from engines.analysis.engine import MusicAnalysisEngine

    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(tmp_path))  # no Beat This! here: the DSP path
    x, sr = _read(shared / "audio" / "uncertain_future_30s.flac", seconds=15.0)
    engine = MusicAnalysisEngine()
    engine.load("cpu")
    res = engine.run(AnalyzeSpec(engine_id="music-analysis", audio=x, sample_rate=sr, features=["beats"]),
                     ProgressReporter(), CancelToken())
    d = res.data
    assert d["beat_tracker"] == "dsp" and abs(d["bpm"] / 80 - 1) < 0.04
    assert 0.0 < d["tempo_confidence"] <= 1.0
    ens = d["beats"]["extra"]["tempo_estimates"]
    assert "acf" in ens["estimates"] and ens["confidence"] == pytest.approx(d["tempo_confidence"], abs=1e-3)
    old = engine.run(AnalyzeSpec(engine_id="music-analysis", audio=x, sample_rate=sr, features=["beats"],
                                 params={"tempo_estimator": "acf"}), ProgressReporter(), CancelToken())
    assert "tempo_confidence" not in old.data and abs(old.data["bpm"] / 80 - 1) < 0.04
    # the tracker follows a tempo it is given (and refines it from its beats)
    g = track_beats_dsp(x, sr, tempo=160.0)
    assert abs(g.bpm / 160 - 1) < 0.04
    with pytest.raises(ValueError, match="tempo"):
        track_beats_dsp(x, sr, tempo=-1.0)
