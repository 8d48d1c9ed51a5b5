"""Melody F0 with torchfcpe's bundled weights: the real flute sample, synthetic notes, curves."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf

from engines.analysis.melody import F0Track, f0_to_midi_curve, f0_to_notes, load_fcpe, track_f0
from engines.base import AnalyzeSpec, CancelToken, ProgressReporter, TranscribeSpec


@pytest.fixture(scope="module")
def fcpe():
    return load_fcpe("cpu")


@pytest.fixture(scope="module")
def flute(shared):
    x, sr = sf.read(shared / "audio" / "lmms_flute01.ogg", dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.T), sr


def test_flute_f0_is_stable_and_matches_the_played_note(flute, fcpe):
    x, sr = flute
    track = track_f0(x, sr, model=fcpe)
    assert track.f0_hz.shape == track.voiced.shape == (x.shape[1] * 100 // sr + 1,)
    assert track.voiced.mean() > 0.9
    curve = f0_to_midi_curve(track)
    sustained = curve[20:-20][np.isfinite(curve[20:-20])]
    # the sample is one sustained A5 (880 Hz): F0 within 30 cents of it, wobble (vibrato) < 20 cents
    assert abs(np.median(sustained) - 81.0) < 0.3
    assert np.std(sustained) * 100 < 20.0
    # an independent tracker (YIN, librosa) agrees within 30 cents
    yin = librosa.yin(x.mean(axis=0), fmin=200, fmax=2000, sr=sr, frame_length=4096)
    assert abs(np.median(librosa.hz_to_midi(yin)) - np.median(sustained)) < 0.3
    notes = f0_to_notes(track)
    assert [n.pitch for n in notes] == [81]
    assert notes[0].start < 0.1 * sr and notes[0].end > x.shape[1] - 0.2 * sr


def test_synthetic_melody_gives_the_right_notes_at_the_right_times(fcpe):
    sr = 44100
    pitches = [72, 76, 79, 74]  # C5 E5 G5 D5, 0.4 s each with 0.1 s gaps
    parts = []
    for p in pitches:
        t = np.arange(int(0.4 * sr)) / sr
        tone = 0.5 * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t) * np.hanning(t.size) ** 0.1
        parts += [tone, np.zeros(int(0.1 * sr))]
    x = np.concatenate(parts).astype(np.float32)
    notes = f0_to_notes(track_f0(x, sr, model=fcpe))
    assert [n.pitch for n in notes] == pitches
    for i, n in enumerate(notes):
        assert abs(n.start - i * 0.5 * sr) < 0.05 * sr
        assert abs((n.end - n.start) - 0.4 * sr) < 0.08 * sr


def test_f0_to_notes_merges_short_glitches_and_reports_bends():
    sr = 1000
    f0 = np.full(100, 440.0, np.float32)
    f0[50:52] = 466.16  # a 20 ms glitch a semitone up
    f0[60:63] = 446.0   # +24 cents
    tr = F0Track(positions=np.arange(100) * 10, f0_hz=f0, voiced=np.ones(100, bool), sample_rate=sr)
    notes = f0_to_notes(tr, median_frames=1, pitch_bends=True)
    assert [n.pitch for n in notes] == [69]
    bends = dict(notes[0].pitch_bends)
    assert bends[610] == pytest.approx(12 * np.log2(446 / 440), abs=1e-3)


def test_melody_engine_analyze_and_transcribe(flute, tmp_path):
    from engines.analysis.engine import MelodyEngine

    x, sr = flute
    x = x[:, : 3 * sr]
    engine = MelodyEngine()
    engine.load("cpu")
    res = engine.run(AnalyzeSpec(engine_id="fcpe-melody", audio=x, sample_rate=sr, context=(sr // 2, 0)),
                     ProgressReporter(), CancelToken())
    f0 = res.data["f0"]
    assert f0["positions"][0] >= 0 and len(res.data["midi_curve"]) == len(f0["positions"])
    assert abs(np.nanmedian([v for v in res.data["midi_curve"] if v is not None]) - 81) < 0.3
    res = engine.run(TranscribeSpec(engine_id="fcpe-melody", audio=x, sample_rate=sr),
                     ProgressReporter(), CancelToken())
    assert [n["pitch"] for n in res.data["notes"]] == [81]
    assert 0 <= res.data["notes"][0]["start"] < sr // 10  # the flute starts at once
