"""The seed-studio CLI end to end on real files: new, import, info, render, export, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from studio.cli.main import main
from studio.io.project_io import load_project
from studio.model.timebase import TempoMap


@pytest.fixture
def bundle(tmp_path) -> Path:
    b = tmp_path / "Song.seedproj"
    assert main(["new", str(b), "--sample-rate", "44100", "--bpm", "80"]) == 0
    return b


def test_new_import_info(bundle, shared, capsys):
    flac = shared / "audio" / "uncertain_future_30s.flac"
    oggs = sorted((shared / "audio").glob("lmms_*.ogg"))
    assert main(["import", str(bundle), str(flac), *map(str, oggs)]) == 0
    p = load_project(bundle)
    assert [t.name for t in p.tracks] == [flac.stem] + [o.stem for o in oggs]
    first = p.tracks[0].clips[0]
    # 30 s at 48 kHz -> exactly 30 s at 44.1 kHz
    assert sf.info(str(flac)).samplerate == 48000
    assert first.length == round(sf.info(str(flac)).frames * 44100 / 48000)
    for t in p.tracks:
        item = p.media[t.clips[0].media_id]
        assert item.sample_rate == 44100 and (bundle / item.path).is_file()
    capsys.readouterr()
    assert main(["info", str(bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sample_rate"] == 44100 and len(info["tracks"]) == 1 + len(oggs)
    assert info["missing_media"] == []


def test_import_midi_keeps_notes_and_tempo(tmp_path, shared):
    mid = shared / "midi" / "blupi_music001.mid"
    b = tmp_path / "Midi.seedproj"
    assert main(["new", str(b)]) == 0
    assert main(["import", str(b), str(mid)]) == 0
    p = load_project(b)
    f = mido.MidiFile(str(mid))
    want = sorted(m.note for tr in f.tracks for m in tr if m.type == "note_on" and m.velocity > 0)
    got = sorted(n.pitch for t in p.tracks for c in t.clips for n in c.notes)
    assert got == want
    tempo = next(m.tempo for tr in f.tracks for m in tr if m.type == "set_tempo")
    assert p.tempo_map.bpm_at(0) == pytest.approx(mido.tempo2bpm(tempo), abs=1e-6)


def _bad_files(tmp_path: Path, shared: Path) -> dict[str, Path]:
    d = tmp_path / "bad"
    d.mkdir()
    flac = (shared / "audio" / "uncertain_future_30s.flac").read_bytes()
    (d / "truncated.flac").write_bytes(flac[: len(flac) // 3])
    (d / "text.wav").write_text("this is not audio\n" * 50)
    sf.write(str(d / "empty.wav"), np.zeros((0, 2), np.float32), 44100, subtype="PCM_16")
    x = np.random.default_rng(0).standard_normal((4410, 2)).astype(np.float32) * 0.1
    x[1000, 1] = np.nan
    sf.write(str(d / "nan.wav"), x, 44100, subtype="FLOAT")
    sf.write(str(d / "six.wav"), np.zeros((4410, 6), np.float32), 44100, subtype="PCM_16")
    mid = (shared / "midi" / "blupi_music000.mid").read_bytes()
    (d / "broken.mid").write_bytes(mid[:14] + b"\xff\x00garbage" * 20)
    return {p.stem: p for p in d.iterdir()}


def test_bad_files_give_clear_errors_and_leave_project_unchanged(bundle, tmp_path, shared, capsys):
    ok = shared / "audio" / "lmms_kick01.ogg"
    if not ok.exists():
        ok = sorted((shared / "audio").glob("lmms_*.ogg"))[0]
    before = (bundle / "project.json").read_bytes()
    media_before = sorted(p.name for p in (bundle / "media").iterdir())
    for name, path in _bad_files(tmp_path, shared).items():
        capsys.readouterr()
        # a good file next to the bad one must not sneak in either
        code = main(["import", str(bundle), str(ok), str(path)])
        err = capsys.readouterr().err
        assert code == 1, name
        assert path.name in err, (name, err)
        assert (bundle / "project.json").read_bytes() == before, name
    assert load_project(bundle).tracks == []
    # the good file may have been stored in the pool (content-addressed), nothing else
    media_after = sorted(p.name for p in (bundle / "media").iterdir() if not p.name.startswith("."))
    assert len(media_after) <= len(media_before) + 1


def test_errors_exit_non_zero(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.seedproj")]) == 1
    assert "nope.seedproj" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["render"])
    assert e.value.code == 2


def test_render_and_export_commands(bundle, tmp_path, shared, capsys):
    stems = shared / "multitrack" / "blupi001"
    assert main(["import", str(bundle), str(stems / "drums.flac"), str(stems / "bass.flac")]) == 0
    out = tmp_path / "mix.wav"
    assert main(["render", str(bundle), str(out), "--start", "1", "--end", "3"]) == 0
    audio, sr = sf.read(str(out), always_2d=True)
    assert sr == 44100 and audio.shape == (2 * 44100, 2)  # a range with its own end: exact, no tail
    # one default tail for the CLI and the app (the Preferences start from it): to the song's
    # end the reverbs ring out for DEFAULT_TAIL_S
    from studio.audio.render import DEFAULT_TAIL_S
    from studio.io.settings import Settings

    assert Settings().render_tail_s == DEFAULT_TAIL_S == 2.0
    whole = tmp_path / "whole.wav"
    assert main(["render", str(bundle), str(whole), "--start", "1"]) == 0
    song_end = sf.info(str(stems / "drums.flac")).frames
    assert sf.info(str(whole)).frames == song_end - 44100 + 2 * 44100
    assert main(["render", str(bundle), str(out), "--start", "1", "--end", "3", "--tail", "0.5"]) == 0
    tailed, _ = sf.read(str(out), always_2d=True)
    assert tailed.shape == (int(2.5 * 44100), 2)
    np.testing.assert_allclose(tailed[:2 * 44100], audio, atol=2 ** -22)
    folder = tmp_path / "Live"
    assert main(["export", str(bundle), str(folder), "--tracks", "bass", "--end", "4", "--tail", "1"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert "01 bass.wav" in names and "Mix.wav" in names and "seed-studio-export.json" in names
    assert sf.info(str(folder / "Mix.wav")).frames == 5 * 44100
    assert main(["render", str(bundle), str(out), "--tail", "-1"]) == 1
    assert "tail" in capsys.readouterr().err
    assert main(["render", str(bundle), str(out), "--tracks", "nope"]) == 1
    assert "no track named 'nope'" in capsys.readouterr().err


def test_tempo_command_sets_and_prints_the_tempo_map(bundle, capsys):
    assert main(["tempo", str(bundle), "--bpm", "72", "--bar", "17"]) == 0
    assert main(["tempo", str(bundle), "--meter", "7/8", "--bar", "9"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == ["bar 1: 80 BPM 4/4", "bar 9: 7/8", "bar 17: 72 BPM"]
    tm = load_project(bundle).tempo_map
    assert [(tm.bar_beat_at(t.tick)[0], t.bpm) for t in tm.tempos] == [(0, 80.0), (16, 72.0)]
    assert [(tm.bar_beat_at(s.tick)[0], s.numerator, s.denominator) for s in tm.signatures] == [(0, 4, 4), (8, 7, 8)]
    before = (bundle / "project.json").read_bytes()
    assert main(["tempo", str(bundle), "--meter", "7/9"]) == 1
    assert main(["tempo", str(bundle), "--bpm", "0"]) == 1
    assert main(["tempo", str(bundle), "--bpm", "90", "--bar", "0"]) == 1
    err = capsys.readouterr().err
    assert "bad meter '7/9'" in err and "BPM" in err and "numbered from 1" in err
    assert (bundle / "project.json").read_bytes() == before  # refused edits change nothing
    assert main(["tempo", str(bundle), "--bpm", "98"]) == 0  # whole song: one tempo, one meter
    tm = load_project(bundle).tempo_map
    assert tm == TempoMap.constant(98.0, 4, 4)
