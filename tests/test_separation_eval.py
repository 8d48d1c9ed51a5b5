"""The SDR evaluation tool: uSDR/cSDR numbers on known signals, folder layouts."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

if importlib.util.find_spec("museval") is None:  # importing it needs ffmpeg: only look it up
    pytest.skip("museval is not installed", allow_module_level=True)

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "separation_eval.py"
_spec = importlib.util.spec_from_file_location("separation_eval", _PATH)
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)

SR = 8000


def _noise(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_usdr_matches_the_snr_of_added_noise():
    ref = _noise(0, (2, SR * 3))
    noise = _noise(1, ref.shape)
    noise *= np.sqrt(np.sum(ref**2) / np.sum(noise**2)) * 10 ** (-12 / 20)  # exactly 12 dB down
    assert ev.usdr(ref, ref + noise) == pytest.approx(12.0, abs=1e-3)
    assert ev.usdr(ref, ref) > 60


def test_csdr_bsseval_v4_on_known_signals():
    refs = np.stack([_noise(2, (2, SR * 4)), _noise(3, (2, SR * 4))])
    noise = 10 ** (-10 / 20) * np.stack([_noise(4, (2, SR * 4)), _noise(5, (2, SR * 4))])
    c = ev.csdr(refs, refs + noise, SR)
    assert c.shape == (2,)
    assert np.all(np.abs(c - 10.0) < 1.0)  # ~10 dB SNR -> ~10 dB SDR
    perfect = ev.csdr(refs, refs + 1e-4 * noise, SR)
    assert np.all(perfect > 60)


def test_evaluate_track_folds_missing_stems_into_other():
    refs = {"drums": _noise(6, (2, SR * 2)), "other": _noise(7, (2, SR * 2))}
    vocals = 0.5 * refs["other"]
    est = {"drums": refs["drums"], "other": 0.5 * refs["other"], "vocals": vocals}
    folded = ev.evaluate_track(est, refs, SR)
    dropped = ev.evaluate_track(est, refs, SR, fold=False)
    assert set(folded) == {"drums", "other"}
    assert folded["other"]["uSDR"] > 60 and dropped["other"]["uSDR"] == pytest.approx(6.02, abs=0.01)


def test_finds_and_loads_slakh_and_musdb_layouts(shared, tmp_path):
    tracks = ev.find_tracks(shared / "multitrack" / "blupi001")
    mix, stems, sr = ev.load_track(tracks[0], 1.0, 2.0)
    assert sr == 44100 and mix.shape == (2, 88200) and sorted(stems) == ["bass", "drums", "other"]
    assert np.abs(sum(stems.values()) - mix).max() < 1e-4  # the mixture is the sum of the stems
    # MUSDB18-HQ: <split>/<track>/{mixture,drums,bass,other,vocals}.wav
    for name in ("Song A", "Song B"):
        d = tmp_path / "test" / name
        d.mkdir(parents=True)
        for stem in ("mixture", "drums", "bass", "other", "vocals"):
            sf.write(str(d / f"{stem}.wav"), np.zeros((100, 2), np.float32), 44100)
    assert [p.name for p in ev.find_tracks(tmp_path)] == ["Song A", "Song B"]
