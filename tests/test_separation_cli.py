"""``seed-studio separate`` on files and on project tracks. The CLI runs every job in the
engine host process; HT-Demucs is exercised with a tiny random-weight model passed with
``--model-path`` (the path a fine-tune or an offline copy takes)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
pytest.importorskip("demucs")

from studio.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def song48(shared, tmp_path_factory):
    """2 s of the real 48 kHz song as 24-bit FLAC, 1 frame odd length."""
    audio, sr = sf.read(str(shared / "audio" / "uncertain_future_30s.flac"), dtype="float32")
    path = tmp_path_factory.mktemp("song") / "song.flac"
    sf.write(str(path), audio[sr * 4: sr * 6 + 1], sr, subtype="PCM_24")
    return path


@pytest.fixture(scope="module")
def tiny_demucs(tmp_path_factory):
    """A tiny random HT-Demucs saved as a demucs .th package."""
    from engines.separation.demucs_adapter import save_th, tiny_htdemucs

    return save_th(tiny_htdemucs(segment=0.9, seed=3), tmp_path_factory.mktemp("model") / "tiny.th")


def test_cli_file_htdemucs_writes_aligned_stems(song48, tmp_path, tiny_demucs, capsys):
    out = tmp_path / "stems"
    code = main(["separate", str(song48), "--model", "htdemucs", "--model-path", str(tiny_demucs),
                 "--stems", "vocals,drums,bass,other", "--out", str(out), "--bit-depth", "float", "--residual",
                 "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    src, sr = sf.read(str(song48), dtype="float32", always_2d=True)
    stems = {}
    for name in ("drums", "bass", "other", "vocals"):
        data, ssr = sf.read(str(out / f"{name}.wav"), dtype="float32", always_2d=True)
        assert ssr == sr == 48000 and data.shape == src.shape
        stems[name] = data
    assert np.abs(sum(stems.values()) - src).max() < 1e-5  # residual mode, float files
    assert all(np.abs(s).max() > 1e-4 for s in stems.values())
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
    assert "'spleeter' is not a model for separate" in capsys.readouterr().err
    assert main(["separate", str(song48), "--track", "1", "--out", str(tmp_path / "o"), "--model", "dsp"]) == 1
    assert "not a project" in capsys.readouterr().err
    assert main(["separate", str(tmp_path / "nothing.wav"), "--model", "dsp", "--out", str(tmp_path / "o")]) == 1
    assert "nothing.wav" in capsys.readouterr().err


def test_cli_project_track(song48, tmp_path, tiny_demucs, capsys):
    from studio.media.importing import import_audio
    from studio.io.session import Session

    s = Session.create(tmp_path / "Song.seedproj", sample_rate=48000)
    import_audio(s, [song48], start=4800)
    s.save()
    s.close()
    out = tmp_path / "files"
    code = main(["separate", str(tmp_path / "Song.seedproj"), "--track", "1", "--stems", "vocals",
                 "--model-path", str(tiny_demucs), "--start", "0.5", "--end", "1.5", "--out", str(out),
                 "--bit-depth", "float", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    s = Session.open(tmp_path / "Song.seedproj")
    try:
        tracks = s.project.tracks
        assert [t.name for t in tracks] == ["song", "Vocals (song)", "Instrumental (song)"]
        assert not tracks[0].mute and all(t.parent_id == tracks[0].id for t in tracks[1:])
        clip = tracks[1].take_groups[0].takes[0].clips[0]
        assert (clip.start, clip.length) == (24000, 48000)
        prov = tracks[1].take_groups[0].takes[0].provenance
        assert prov["extra"]["model_path"] == str(tiny_demucs)
        assert len(prov["extra"]["model_files"]["tiny.th"]) == 64
    finally:
        s.close()
    v, sr = sf.read(str(out / "vocals.wav"), dtype="float32")
    assert sr == 48000 and v.shape == (48000, 2)
