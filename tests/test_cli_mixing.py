"""The CLI on a clipping project (render and export warn, naming files, true peak, LUFS and
what to do; --master-gain fixes it), and MIDI import with --at / --bar and the tempo note."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from studio.cli.main import main
from studio.io.project_io import load_project

SR = 44100


@pytest.fixture
def loud_project(tmp_path):
    """Two tracks of the same 0.9-amplitude 440 Hz tone: the mix peaks at 1.8 (+5.1 dBFS)."""
    n = np.arange(3 * SR)
    tone = (0.9 * np.sin(2 * np.pi * 440 * n / SR)).astype(np.float32)
    wav = tmp_path / "tone.wav"
    sf.write(str(wav), np.stack([tone, tone], 1), SR, subtype="FLOAT")
    bundle = tmp_path / "Loud.seedproj"
    assert main(["new", str(bundle), "--sample-rate", str(SR)]) == 0
    assert main(["import", str(bundle), str(wav), str(wav)]) == 0
    return bundle


def test_render_of_a_clipping_mix_warns_and_says_what_to_do(loud_project, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "mix.wav"
    assert main(["render", str(loud_project), str(out)]) == 0
    std = capsys.readouterr()
    assert "mix.wav: true peak +5.1 dBFS" in std.out
    err = std.err
    assert err.startswith("warning: 1 file(s) clipped")
    over = int(np.count_nonzero(np.abs(1.8 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)) > 1.0)) * 2
    assert f"mix.wav: {over:,} samples clipped, true peak +5.1 dBFS, loudness" in err and "LUFS" in err
    assert "lower the master by 6.1 dB" in err and "--master-gain -6.1" in err and "--bit-depth float" in err
    # float: kept, but still reported as going over
    assert main(["render", str(loud_project), str(tmp_path / "f.wav"), "--bit-depth", "float"]) == 0
    err = capsys.readouterr().err
    assert "32-bit float, so nothing was cut off" in err and f"{over:,} samples over 0 dBFS" in err
    # following the advice: no warning, and the file peaks at -1 dBFS true peak
    assert main(["render", str(loud_project), str(out), "--master-gain", "-6.1"]) == 0
    std = capsys.readouterr()
    assert "warning" not in std.err and "true peak -1.0 dBFS" in std.out
    assert main(["render", str(loud_project), str(out), "--master-gain", "nan"]) == 1
    assert "--master-gain" in capsys.readouterr().err
    assert load_project(loud_project).master_gain_db == 0.0  # the project itself is unchanged


def test_export_of_a_clipping_project_warns_and_keeps_levels_per_file(loud_project, tmp_path, capsys):
    capsys.readouterr()
    folder = tmp_path / "Live"
    assert main(["export", str(loud_project), str(folder), "--float"]) == 0
    std = capsys.readouterr()
    assert "01 tone.wav: true peak -0.9 dBFS" in std.out and "Mix.wav: true peak +5.1 dBFS" in std.out
    assert "Mix.wav" in std.err and "01 tone.wav" not in std.err and "--master-gain" in std.err
    files = {f["file"]: f for f in json.loads((folder / "seed-studio-export.json").read_text())["files"]}
    mix = files["Mix.wav"]
    assert mix["clipped_samples"] == 0 and mix["over_samples"] > 0  # float keeps the overs and counts them
    assert mix["true_peak_dbfs"] == pytest.approx(5.1, abs=0.05)
    assert mix["loudness_lufs"] == pytest.approx(measured_lufs(folder / "Mix.wav"), abs=0.01)
    assert files["01 tone.wav"]["over_samples"] == 0


def measured_lufs(path) -> float:
    import pyloudnorm

    x, sr = sf.read(str(path), always_2d=True)
    return pyloudnorm.Meter(sr).integrated_loudness(x)


def test_midi_import_at_a_bar_and_the_tempo_note(tmp_path, shared, capsys):
    mid = shared / "midi" / "blupi_music000.mid"
    empty = tmp_path / "Empty.seedproj"
    assert main(["new", str(empty), "--bpm", "90", "--meter", "3/4"]) == 0
    capsys.readouterr()
    assert main(["import", str(empty), str(mid), "--bar", "5"]) == 0
    out = capsys.readouterr().out
    assert "takes the file's tempo and meter (120 BPM 4/4)" in out  # it says so
    p = load_project(empty)
    tm = p.tempo_map
    assert tm.tempos[0].bpm == 120.0 and tm.signatures[0].numerator == 4
    assert {t.clips[0].start for t in p.tracks} == {tm.bar_to_tick(4)} == {4 * 3840}
    assert "at bar 5 beat 1 (8.000 s)" in out

    # a project with tracks keeps its tempo; --at in seconds lands on the bar at that time
    song = tmp_path / "Song.seedproj"
    assert main(["new", str(song), "--bpm", "80", "--meter", "3/4"]) == 0
    assert main(["import", str(song), str(shared / "audio" / "lmms_kick01.ogg")]) == 0
    capsys.readouterr()
    bar7 = 6 * 3 * 60.0 / 80  # bar 7 of 3/4 at 80 BPM: 13.5 s
    assert main(["import", str(song), str(mid), "--at", f"{bar7}"]) == 0
    out = capsys.readouterr().out
    assert "keeps its tempo (80 BPM)" in out and "at bar 7 beat 1" in out
    p = load_project(song)
    midi = [t for t in p.tracks if t.kind == "midi"]
    assert midi and {t.clips[0].start for t in midi} == {p.tempo_map.bar_to_tick(6)}
    assert p.tempo_map.tempos[0].bpm == 80.0
    # --bar for audio too: the clip starts at the bar line's sample
    assert main(["import", str(song), str(shared / "audio" / "lmms_kick01.ogg"), "--bar", "3"]) == 0
    p = load_project(song)
    assert p.tracks[-1].clips[0].start == p.tempo_map.tick_to_sample(p.tempo_map.bar_to_tick(2), p.sample_rate)
    assert main(["import", str(song), str(mid), "--bar", "0"]) == 1
    assert "--bar 0" in capsys.readouterr().err


def test_help_of_import_info_render_export_is_plain_words():
    """Every flag of these commands has a help text, and none shows raw reST markup."""
    import argparse
    import re

    from studio.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    markup = re.compile(r"``|:\w+:`")
    for name in ("import", "info", "render", "export"):
        p = sub.choices[name]
        assert helps[name] and not markup.search(helps[name])
        assert not markup.search(p.description or "")
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and not markup.search(action.help), (name, action.dest)
        text = p.format_help()
        assert "``" not in text and ":meth:" not in text
