"""engines/fake.py: deterministic outputs for every task, honouring progress, cancel and context."""
from __future__ import annotations

import numpy as np
import pytest

from engines import base
from engines.base import CancelToken, JobCancelled, ProgressReporter
from engines.testing.fake import FakeEngine, OutOfMemoryError, band_split


@pytest.fixture(scope="module")
def engine():
    e = FakeEngine()
    e.load("cpu")
    return e


@pytest.fixture(scope="module")
def flute(shared):
    import soundfile as sf

    data, sr = sf.read(shared / "audio/lmms_flute01.ogg", dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), sr


def run(engine, spec):
    seen = []
    r = engine.run(spec, ProgressReporter(lambda f, s, eta: seen.append(f)), CancelToken())
    return r, seen


def test_band_split_sums_to_real_audio(engine, flute):
    audio, sr = flute
    spec = base.SeparateSpec(engine_id="fake", audio=audio, sample_rate=sr, params={"chunk_seconds": 0.5})
    r, seen = run(engine, spec)
    assert list(r.outputs) == ["low", "mid", "high"]
    total = sum(r.outputs.values())
    assert total.shape == audio.shape
    assert np.abs(total - audio).max() < 1e-5
    assert seen == sorted(seen) and seen[-1] == 1.0
    # each band holds its own frequencies: >98% of each band's energy lies in its range
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / sr)
    power = {k: np.abs(np.fft.rfft(v[0].astype(np.float64))) ** 2 for k, v in r.outputs.items()}
    assert power["low"][freqs <= 200].sum() > 0.98 * power["low"].sum()
    assert power["high"][freqs > 2000].sum() > 0.98 * power["high"].sum()


def test_band_split_direct():
    x = np.random.default_rng(0).standard_normal((2, 4096)).astype(np.float32)
    bands = band_split(x, 44100, [300.0])
    assert bands.shape == (2, 2, 4096) and np.abs(bands.sum(0) - x).max() < 1e-5


def test_stem_choice_and_context_trim(engine, flute):
    audio, sr = flute
    spec = base.SeparateSpec(engine_id="fake", audio=audio, sample_rate=sr, context=(1000, 500), stems=["mid"])
    r, _ = run(engine, spec)
    assert list(r.outputs) == ["mid"] and r.outputs["mid"].shape == (audio.shape[0], audio.shape[1] - 1500)
    with pytest.raises(base.InvalidJob, match="vocals"):
        run(engine, spec.replace(stems=["vocals"]))


def test_every_task_gives_deterministic_output(engine, flute):
    audio, sr = flute
    specs = [
        base.GenerateSpec(engine_id="fake", frames=22050, sample_rate=sr, params={"noise": 0.1}, seed=3),
        base.ExtendSpec(engine_id="fake", audio=audio, sample_rate=sr, frames=1000),
        base.InpaintSpec(engine_id="fake", audio=audio, sample_rate=sr, regions=[(100, 5000)]),
        base.ConvertVoiceSpec(engine_id="fake", audio=audio, sample_rate=sr),
        base.TranscribeSpec(engine_id="fake", audio=audio, sample_rate=sr),
        base.AnalyzeSpec(engine_id="fake", audio=audio, sample_rate=sr),
    ]
    for spec in specs:
        r1, seen = run(engine, spec)
        r2, _ = run(engine, spec)
        assert seen[-1] == 1.0 and r1.sample_rate == sr
        assert r1.data == r2.data
        for k in r1.outputs:
            assert np.array_equal(r1.outputs[k], r2.outputs[k])
        assert r1.provenance.engine_id == "fake" and r1.provenance.licence
    gen = run(engine, specs[0])[0].outputs["take1"]
    assert gen.shape == (2, 22050)
    assert not np.array_equal(gen, run(engine, specs[0].replace(seed=4))[0].outputs["take1"])
    two = run(engine, specs[0].replace(variations=2))[0]
    assert set(two.outputs) == {"take1", "take2"} and not np.array_equal(two.outputs["take1"], two.outputs["take2"])
    inp = run(engine, specs[2])[0]
    assert inp.outputs["take1"].shape == (audio.shape[0], 4900)  # the region only
    assert inp.data["placements"]["take1"]["offset"] == 100
    ext = run(engine, specs[1])[0]
    assert ext.outputs["take1"].shape == (audio.shape[0], 1000)
    assert ext.data["placements"]["take1"]["offset"] == audio.shape[1]
    analysis = run(engine, specs[5])[0].data
    assert analysis["frames"] == audio.shape[1] and analysis["peak"] == pytest.approx(np.abs(audio).max())
    notes = run(engine, specs[4])[0].data["notes"]
    assert notes and all(n["pitch"] == 69 for n in notes)


def test_outputs_as_files(engine, tmp_path):
    spec = base.GenerateSpec(engine_id="fake", frames=1000, sample_rate=8000, output_dir=str(tmp_path))
    r, _ = run(engine, spec)
    audio, sr = r.load_output("take1")
    assert r.outputs["take1"].endswith(".wav") and sr == 8000 and audio.shape == (2, 1000)


def test_cancel_and_simulated_oom(engine):
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        engine.run(base.GenerateSpec(engine_id="fake", frames=8000, sample_rate=8000), ProgressReporter(), token)
    spec = base.GenerateSpec(engine_id="fake", frames=8000, sample_rate=8000,
                             params={"chunk_seconds": 0.1, "oom_above_chunk_scale": 0.5})
    with pytest.raises(OutOfMemoryError) as info:
        engine.run(spec, ProgressReporter(), CancelToken())
    assert base.is_out_of_memory(info.value)
    engine.run(spec.replace(chunk_scale=0.5), ProgressReporter(), CancelToken())
