"""``seed-studio separate`` on files and on project tracks."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
pytest.importorskip("demucs")

from engines.separation.identity import identity_model  # noqa: E402
from studio.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def song48(shared, tmp_path_factory):
    """2 s of the real 48 kHz song as 24-bit FLAC, 1 frame odd length."""
    audio, sr = sf.read(str(shared / "audio" / "uncertain_future_30s.flac"), dtype="float32")
    path = tmp_path_factory.mktemp("song") / "song.flac"
    sf.write(str(path), audio[sr * 4: sr * 6 + 1], sr, subtype="PCM_24")
    return path


@pytest.fixture
def identity_demucs(monkeypatch):
    from engines.separation import engine as engine_mod

    monkeypatch.setattr(engine_mod.DemucsEngine, "_model",
                        lambda self, model_id: identity_model(weights=[0.1, 0.2, 0.3, 0.4], segment=0.9))


def test_cli_file_htdemucs_writes_aligned_stems(song48, tmp_path, identity_demucs, capsys):
    out = tmp_path / "stems"
    code = main(["separate", str(song48), "--model", "htdemucs", "--stems", "vocals,drums,bass,other",
                 "--out", str(out), "--bit-depth", "float", "--residual", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    src, sr = sf.read(str(song48), dtype="float32", always_2d=True)
    stems = {}
    for name in ("drums", "bass", "other", "vocals"):
        data, ssr = sf.read(str(out / f"{name}.wav"), dtype="float32", always_2d=True)
        assert ssr == sr == 48000 and data.shape == src.shape
        stems[name] = data
    assert np.abs(sum(stems.values()) - src).max() < 1e-5  # residual mode, float files
    err = stems["vocals"] - 0.4 * src  # identity model through 48k -> 44.1k -> 48k
    assert 10 * np.log10(np.sum(err**2) / np.sum((0.4 * src) ** 2)) < -40
    assert "4 stem(s)" in capsys.readouterr().out


def test_cli_file_dsp_vocals_and_instrumental(song48, tmp_path):
    out = tmp_path / "dsp"
    assert main(["separate", str(song48), "--model", "dsp", "--stems", "vocals", "--out", str(out), "--format", "flac"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["instrumental.flac", "vocals.flac"]
    src, _ = sf.read(str(song48), dtype="float32")
    v, _ = sf.read(str(out / "vocals.flac"), dtype="float32")
    i, _ = sf.read(str(out / "instrumental.flac"), dtype="float32")
    assert v.shape == src.shape and np.abs(v + i - src).max() < 1e-4  # 24-bit rounding


def test_cli_missing_model_and_bad_arguments_exit_1(song48, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(tmp_path / "models"))
    assert main(["separate", str(song48), "--model", "htdemucs_ft", "--out", str(tmp_path / "o"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "htdemucs_ft" in err and "not installed" in err and "seed-studio models download" in err
    assert main(["separate", str(song48), "--model", "spleeter", "--out", str(tmp_path / "o")]) == 1
    assert "unknown separation model" in capsys.readouterr().err
    assert main(["separate", str(song48), "--track", "1", "--out", str(tmp_path / "o"), "--model", "dsp"]) == 1
    assert "not a project" in capsys.readouterr().err
    assert main(["separate", str(tmp_path / "nothing.wav"), "--model", "dsp", "--out", str(tmp_path / "o")]) == 1
    assert "nothing.wav" in capsys.readouterr().err


def test_cli_project_track(song48, tmp_path, identity_demucs, capsys):
    from studio.media.importing import import_audio
    from studio.io.session import Session

    s = Session.create(tmp_path / "Song.seedproj", sample_rate=48000)
    import_audio(s, [song48], start=4800)
    s.save()
    s.close()
    out = tmp_path / "files"
    code = main(["separate", str(tmp_path / "Song.seedproj"), "--track", "1", "--stems", "vocals",
                 "--start", "0.5", "--end", "1.5", "--out", str(out), "--bit-depth", "float", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    s = Session.open(tmp_path / "Song.seedproj")
    try:
        tracks = s.project.tracks
        assert [t.name for t in tracks] == ["song", "song vocals", "song instrumental"]
        assert tracks[0].mute and all(t.parent_id == tracks[0].id for t in tracks[1:])
        clip = tracks[1].take_groups[0].takes[0].clips[0]
        assert (clip.start, clip.length) == (24000, 48000)
    finally:
        s.close()
    v, sr = sf.read(str(out / "vocals.wav"), dtype="float32")
    assert sr == 48000 and v.shape == (48000, 2)
