"""The generative tasks end to end with the real engines on tiny random-weight models,
loaded through ``--model-path`` exactly as a downloaded or fine-tuned model is: the CLI on a
project (engine host process), takes on the grid, the untouched audio bit-identical."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio.cli.main import main  # noqa: E402
from studio.io.project_io import load_project  # noqa: E402


@pytest.fixture(scope="module")
def tiny_acestep(tmp_path_factory):
    from tests.acestep_tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("acestep") / "tiny")


@pytest.fixture(scope="module")
def tiny_musicgen(tmp_path_factory):
    from tests.musicgen_tiny import build_tiny_musicgen

    return build_tiny_musicgen(tmp_path_factory.mktemp("musicgen") / "tiny")


@pytest.fixture
def project(tmp_path, shared):
    bundle = tmp_path / "G.seedproj"
    assert main(["new", str(bundle), "--sample-rate", "44100", "--bpm", "97"]) == 0
    assert main(["import", str(bundle), str(shared / "audio" / "lmms_house_loop01.ogg"), "--at", "0.5"]) == 0
    return bundle


def test_cli_generate_with_acestep_lands_two_takes_on_the_grid(project, tiny_acestep, capsys):
    code = main(["generate", str(project), "--model-path", str(tiny_acestep), "--prompt", "bright synth pop",
                 "--bar", "2", "--bars", "2", "--variations", "2", "--steps", "2", "--seed", "5", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    p = load_project(project)
    track = p.tracks[-1]
    (g,) = track.take_groups
    tm, sr = p.tempo_map, p.sample_rate
    assert (g.start, g.end) == (tm.tick_to_sample(tm.bar_to_tick(1), sr), tm.tick_to_sample(tm.bar_to_tick(3), sr))
    assert len(g.takes) == 2
    prov = g.takes[0].provenance
    assert prov["engine_id"] == "acestep" and prov["seed"] == 5 and prov["licence"] == "MIT"
    assert prov["extra"]["model_path"] == str(tiny_acestep) and prov["extra"]["model_files"]
    assert prov["conditioning"]["bpm"] == 97.0 and prov["conditioning"]["time_signature"] == "4/4"
    a, b = (p.media[t.clips[0].media_id] for t in g.takes)
    assert a.frames == b.frames == g.end - g.start and a.id != b.id


def test_cli_inpaint_with_acestep_keeps_the_rest_bit_identical(project, tiny_acestep, tmp_path, capsys):
    before = tmp_path / "before.wav"
    after = tmp_path / "after.wav"
    assert main(["render", str(project), str(before), "--bit-depth", "float"]) == 0
    code = main(["inpaint", str(project), "--track", "1", "--start", "0.8", "--end", "1.2", "--model-path",
                 str(tiny_acestep), "--prompt", "x", "--variations", "1", "--steps", "2", "--context-seconds", "1",
                 "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert main(["render", str(project), str(after), "--bit-depth", "float"]) == 0
    x, sr = sf.read(str(before), dtype="float32")
    y, _ = sf.read(str(after), dtype="float32")
    a, b = int(0.8 * sr), int(1.2 * sr)
    assert x.shape == y.shape
    assert np.array_equal(x[:a], y[:a]) and np.array_equal(x[b:], y[b:])
    assert not np.array_equal(x[a:b], y[a:b])


def test_cli_musicgen_generates_a_file_of_exact_length(tiny_musicgen, tmp_path, capsys):
    out = tmp_path / "mg.wav"
    code = main(["generate", "--model", "musicgen-small", "--model-path", str(tiny_musicgen), "--prompt", "lofi",
                 "--seconds", "3", "--variations", "1", "--out", str(out), "--sample-rate", "48000",
                 "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    info = sf.info(str(out))
    assert info.samplerate == 48000 and info.frames == 3 * 48000
