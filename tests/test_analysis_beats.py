"""Tempo, beats, downbeats: DSP tracker on real audio, Beat This! code path with a tiny random model."""
from __future__ import annotations

import librosa
import mir_eval
import mido
import numpy as np
import pytest
import soundfile as sf

from engines.analysis.beats import BeatGrid, estimate_meter, track_beats_dsp
from engines.base import AnalyzeSpec, CancelToken, InvalidJob, ModelNotInstalled, ProgressReporter


def _read(path, seconds=None, start=0.0):
    with sf.SoundFile(path) as f:
        sr = f.samplerate
        f.seek(int(start * sr))
        x = f.read(-1 if seconds is None else int(seconds * sr), dtype="float32", always_2d=True).T
    return np.ascontiguousarray(x), sr


def midi_beats(path, t0, t1):
    """Beat and downbeat times (s) of a constant-tempo MIDI file in [t0, t1), shifted to start at 0."""
    mf = mido.MidiFile(str(path))
    tempo = next((m.tempo for tr in mf.tracks for m in tr if m.type == "set_tempo"), 500000)
    sig = next(((m.numerator, m.denominator) for tr in mf.tracks for m in tr if m.type == "time_signature"), (4, 4))
    beat_s = tempo / 1e6 * 4 / sig[1]
    n = int(np.ceil(t1 / beat_s)) + 1
    beats = np.arange(n) * beat_s
    down = beats[:: sig[0]]
    sel = lambda t: t[(t >= t0) & (t < t1)] - t0  # noqa: E731
    return sel(beats), sel(down), 60.0 / beat_s * (4 / sig[1])


def test_tempo_of_uncertain_future_is_80_bpm(shared):
    x, sr = _read(shared / "audio" / "uncertain_future_30s.flac")
    grid = track_beats_dsp(x, sr)
    assert abs(grid.bpm / 80.0 - 1.0) < 0.04, grid.bpm
    assert grid.method == "dsp" and grid.sample_rate == sr
    # about 40 beats in 30 s at 80 BPM, ascending, in range
    assert 36 <= grid.beats.size <= 42
    assert np.all(np.diff(grid.beats) > 0) and grid.beats[-1] < x.shape[1]
    assert set(grid.downbeats.tolist()) <= set(grid.beats.tolist())


def test_beat_f1_on_blupi_mixture_against_the_midi_grid(shared):
    x, sr = _read(shared / "multitrack" / "blupi001" / "mixture.flac")
    ref, _ref_down, ref_bpm = midi_beats(shared / "midi" / "blupi_music001.mid", 5.0, 25.0)
    assert ref_bpm == pytest.approx(120.0)
    grid = track_beats_dsp(x, sr)
    f1 = mir_eval.beat.f_measure(ref, grid.beat_times)
    assert f1 >= 0.8, f1
    assert abs(grid.bpm - 120.0) < 2.0
    assert grid.numerator == 4


def test_beat_grid_round_trips_and_reports_steadiness():
    sr = 1000
    g = BeatGrid(beats=np.arange(0, 10000, 500), downbeats=np.arange(0, 10000, 2000), sample_rate=sr, bpm=120.0)
    back = BeatGrid.from_dict(g.to_dict())
    assert np.array_equal(back.beats, g.beats) and back.bpm == 120.0 and back.numerator == 4
    assert g.is_steady() and np.allclose(g.local_bpm(), 120.0)
    accel = BeatGrid(beats=np.cumsum(np.linspace(600, 300, 20)).astype(np.int64), downbeats=np.array([0]),
                     sample_rate=sr, bpm=140.0)
    assert not accel.is_steady()


def test_meter_estimate_on_synthetic_accents():
    rng = np.random.default_rng(0)
    for m, phase in ((4, 1), (3, 2)):
        acc = rng.random(48) * 0.3
        acc[phase::m] += 1.0
        got_m, got_phase, _ = estimate_meter(acc)
        assert (got_m, got_phase) == (m, phase)


def test_too_short_or_bad_audio_is_refused():
    with pytest.raises(ValueError, match="too short"):
        track_beats_dsp(np.zeros((1, 22050), np.float32), 22050)
    with pytest.raises(ValueError, match="NaN"):
        track_beats_dsp(np.full((1, 88200), np.nan, np.float32), 22050)


# ------------------------------------------------------------------ Beat This! (tiny random model)

def test_log_mel_matches_the_beat_this_recipe(shared):
    from engines.analysis.beat_this_adapter import log_mel_spect

    x, sr = _read(shared / "multitrack" / "blupi001" / "mixture.flac", seconds=3.0)
    spect = log_mel_spect(x, sr).numpy()
    import soxr

    y = soxr.resample(x.mean(axis=0), sr, 22050)
    mel = librosa.feature.melspectrogram(y=y, sr=22050, n_fft=1024, hop_length=441, power=1.0, n_mels=128, fmin=30,
                                         fmax=11000, norm=None, htk=False, pad_mode="reflect") / np.sqrt(1024)
    ref = np.log1p(1000 * mel).T
    assert spect.shape == ref.shape == (int(3.0 * 50) + 1, 128)
    np.testing.assert_allclose(spect, ref, atol=1e-3)


def test_beat_this_engine_path_with_a_tiny_random_model(shared):
    from engines.analysis.beat_this_adapter import BeatThisTracker, tiny_beat_this
    from engines.analysis.engine import MusicAnalysisEngine

    x, sr = _read(shared / "multitrack" / "blupi001" / "mixture.flac", seconds=6.0)
    model = tiny_beat_this()
    beat, down = BeatThisTracker(model).activations(x, sr)
    assert beat.shape == down.shape == (301,) and np.all(np.isfinite(beat))

    engine = MusicAnalysisEngine(beat_model=model)
    engine.load("cpu")
    spec = AnalyzeSpec(engine_id="music-analysis", audio=x, sample_rate=sr, params={"beat_tracker": "beat_this"},
                       features=["beats"])
    res = engine.run(spec, ProgressReporter(), CancelToken())
    assert res.data["beat_tracker"] == "beat_this"
    assert res.provenance.model_id == "beat-this-final0" and "fallback" not in res.provenance.extra
    beats = np.asarray(res.data["beats"]["beats"])
    assert res.data["beat_count"] == beats.size and np.all((beats >= 0) & (beats < x.shape[1]))


def test_analysis_engine_falls_back_to_dsp_without_the_model(shared, tmp_path, monkeypatch):
    from engines.analysis.engine import MusicAnalysisEngine

    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(tmp_path))
    x, sr = _read(shared / "audio" / "uncertain_future_30s.flac", seconds=12.0)
    engine = MusicAnalysisEngine()
    engine.load("cpu")
    before = sr  # one second of context on each side
    spec = AnalyzeSpec(engine_id="music-analysis", audio=x, sample_rate=sr, context=(before, sr))
    res = engine.run(spec, ProgressReporter(), CancelToken())
    d = res.data
    assert d["beat_tracker"] == "dsp" and res.provenance.extra["fallback"] == "dsp"
    assert abs(d["bpm"] / 80 - 1) < 0.04 and d["time_signature"] in ([4, 4], [3, 4])
    assert d["frames"] == x.shape[1] - 2 * sr
    beats = np.asarray(d["beats"]["beats"])
    assert beats.min() >= 0 and beats.max() < d["frames"]
    assert d["key"]["mode"] in ("major", "minor")
    with pytest.raises(ModelNotInstalled):
        engine.run(AnalyzeSpec(engine_id="music-analysis", audio=x, sample_rate=sr,
                               params={"beat_tracker": "beat_this"}), ProgressReporter(), CancelToken())
    with pytest.raises(InvalidJob, match="min_bpm|parameter"):
        engine.run(AnalyzeSpec(engine_id="music-analysis", audio=x, sample_rate=sr, params={"min_bpm": -1}),
                   ProgressReporter(), CancelToken())
