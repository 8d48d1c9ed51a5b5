"""Project glue: tempo map from beats, grid from a track, transcription track, and the CLI."""
from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from studio.jobs.tasks import run_task
from studio.model.timebase import PPQ
from studio.tasks import Target
from studio.tasks import analyze as ops
from studio.tasks.transcribe import midi_clip_from_notes


# ------------------------------------------------------------------ tempo map fitting (synthetic)

def _bar_lines(tm, sr, n):
    return np.array([tm.tick_to_sample(tm.bar_to_tick(b), sr) for b in range(n)])


def test_constant_map_puts_bar_lines_on_the_downbeats_with_a_pickup():
    sr = 44100
    beats = np.round((0.3 + 0.5 * np.arange(40)) * sr).astype(np.int64)  # 120 BPM from 0.3 s
    down = beats[1::4]                                                     # bars start on the 2nd beat
    fit = ops.tempo_map_from_beats(beats, down, 120.0, sr, start=1000)
    tm = fit.tempo_map
    assert fit.first_downbeat == 1000 + down[0]
    assert fit.pickup_beats == 2 and tm.signatures[0].numerator == 2  # 2 beats before the first downbeat
    assert tm.bpm_at(10 * PPQ) == pytest.approx(120.0)
    lines = _bar_lines(tm, sr, 11)[1:]  # bar 0 is the pickup
    assert np.max(np.abs(lines - (1000 + down[:10]))) <= 1
    assert fit.max_error <= 1
    # beat lines fall on the detected beats after the first downbeat too
    ticks = [fit.pickup_beats * PPQ + k * PPQ for k in range(20)]
    got = np.array([tm.tick_to_sample(t, sr) for t in ticks])
    assert np.max(np.abs(got - (1000 + beats[1:21]))) <= 1


def test_varying_map_follows_an_accelerating_performance():
    sr = 48000
    ibi = np.linspace(0.6, 0.4, 48)
    beats = np.round(np.r_[0.0, np.cumsum(ibi)] * sr).astype(np.int64)
    down = beats[::4]
    const = ops.tempo_map_from_beats(beats, down, 120.0, sr, mode="constant")
    vary = ops.tempo_map_from_beats(beats, down, 120.0, sr, mode="varying")
    assert len(vary.tempo_map.tempos) >= 10
    assert vary.max_error <= 2 < const.max_error
    lines = _bar_lines(vary.tempo_map, sr, len(down))
    assert np.max(np.abs(lines - down)) <= 2


def test_downbeat_right_at_the_start_and_bad_arguments():
    sr = 1000
    fit = ops.tempo_map_from_beats(np.arange(10, 20000, 500), np.arange(10, 20000, 2000), 120.0, sr)
    assert fit.pickup_beats == 0 and len(fit.tempo_map.tempos) == 1 and fit.tempo_map.signatures[0].numerator == 4
    with pytest.raises(ValueError, match="mode"):
        ops.tempo_map_from_beats(np.arange(3), np.arange(1), 120.0, sr, mode="wobbly")
    with pytest.raises(ValueError, match="tempo"):
        ops.tempo_map_from_beats(np.arange(3), np.arange(1), 0.0, sr)


# ------------------------------------------------------------------ with a real project

@pytest.fixture
def session(tmp_path, shared):
    from studio.media.importing import import_files
    from studio.io.session import Session

    s = Session.create(tmp_path / "Song.seedproj", sample_rate=44100)
    mt = shared / "multitrack" / "blupi001"
    import_files(s, [mt / "mixture.flac", mt / "bass.flac"], start=int(1.5 * 44100))
    yield s
    s.close()


def test_transcribe_track_adds_an_aligned_midi_track_in_one_undo_step(session):
    from engines.analysis.transcribe import transcribe

    s = session
    bass = next(t for t in s.project.tracks if t.name == "bass")
    n_tracks = len(s.project.tracks)
    out = run_task(s, "transcribe", Target(bass.id), {})
    assert out.job.result.provenance.engine_id == "basic-pitch" and out.summary.endswith("notes")
    (track,) = [t for t in s.project.tracks if t.kind == "midi"]
    assert len(s.project.tracks) == n_tracks + 1 and track.parent_id == bass.id
    assert track.name == "bass (MIDI)" and track.provenance["engine_id"] == "basic-pitch"
    clip = track.clips[0]
    sr, tm = s.project.sample_rate, s.project.tempo_map
    start = bass.clips[0].start
    assert clip.start == tm.sample_to_tick(start, sr)
    # every note sits where the engine heard it, within one tick
    audio = s.pool.read(s.project.media[bass.clips[0].media_id])
    expected = transcribe(audio, sr).notes
    assert [n.pitch for n in clip.notes] == [n.pitch for n in expected]
    one_tick = sr * 60 / tm.bpm_at(0) / PPQ
    got = [tm.tick_to_sample(clip.start + n.start, sr) for n in clip.notes]
    assert max(abs(g - (start + e.start)) for g, e in zip(got, expected)) <= one_tick + 1
    s.undo_stack.undo()
    assert len(s.project.tracks) == n_tracks


def test_set_grid_from_the_mixture_track(session):
    s = session
    mix = next(t for t in s.project.tracks if t.name == "mixture")
    out = run_task(s, "analyze", Target(mix.id), {"set_grid": "constant"})
    data = out.job.result.data
    num, den = data["time_signature"]
    fit = ops.tempo_map_from_beats(np.asarray(data["beats"]["beats"]), np.asarray(data["beats"]["downbeats"]),
                                   float(data["bpm"]), s.project.sample_rate, numerator=num, denominator=den,
                                   start=mix.clips[0].start)
    tm = s.project.tempo_map
    assert tm == fit.tempo_map and s.project.key == data["key"]["name"]
    assert abs(tm.bpm_at(tm.bar_to_tick(3)) - 120.0) < 2.0 and data["beat_count"] >= 35
    assert fit.first_downbeat >= mix.clips[0].start
    # the detected beats after the first downbeat sit on the new beat grid (within 30 ms)
    sr = s.project.sample_rate
    beats = np.asarray(data["beats"]["beats"]) + mix.clips[0].start
    beats = beats[beats >= fit.first_downbeat]
    ticks = np.array([tm.sample_to_tick(b, sr) for b in beats])
    off_grid = np.abs(((ticks - fit.pickup_beats * PPQ + PPQ // 2) % PPQ) - PPQ // 2)
    assert np.median(off_grid) < 0.03 * PPQ * 120 / 60  # 30 ms in ticks at 120 BPM
    s.undo_stack.undo()
    assert s.project.tempo_map.bpm_at(0) == 120.0 and len(s.project.tempo_map.tempos) == 1
    assert s.project.key is None
    # "no" (the default) only reports: the grid stays
    out = run_task(s, "analyze", Target(mix.id), {})
    assert out.command is None and "BPM" in out.summary and s.project.tempo_map.bpm_at(0) == 120.0


def test_midi_track_has_pitch_bends_only_for_lone_notes(session):
    s = session
    notes = [{"pitch": 60, "velocity": 90, "start": 0, "length": 4410, "pitch_bends": [[0, 0.5], [2205, 0.0]]},
             {"pitch": 64, "velocity": 90, "start": 8820, "length": 4410, "pitch_bends": [[8820, 1.0]]},
             {"pitch": 67, "velocity": 90, "start": 9000, "length": 4410, "pitch_bends": [[9000, 1.0]]}]
    clip = midi_clip_from_notes(notes, s.project.tempo_map, 44100, 44100, 44100, name="t")
    assert [b.value for b in clip.pitch_bends] == [round(0.5 / 2 * 8191), 0]  # overlapping notes keep none
    assert clip.start == s.project.tempo_map.sample_to_tick(44100, 44100) and clip.length == PPQ * 2


# ------------------------------------------------------------------ CLI

def test_cli_analyze_and_transcribe_audio_files(shared, tmp_path, capsys):
    from studio.cli.main import main

    out = tmp_path / "a.json"
    assert main(["analyze", str(shared / "multitrack" / "blupi001" / "mixture.flac"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert " BPM, 4/4, Eb major" in printed
    d = json.loads(out.read_text())
    assert abs(d["data"]["bpm"] - 120) < 2 and d["data"]["beat_count"] == len(d["data"]["beats"]["beats"])
    assert d["provenance"]["engine_id"] == "music-analysis"
    mid = tmp_path / "bass.mid"
    assert main(["transcribe", str(shared / "multitrack" / "blupi001" / "bass.flac"), "--out", str(mid)]) == 0
    mf = mido.MidiFile(str(mid))
    n_on = sum(1 for m in mf.tracks[1] if m.type == "note_on" and m.velocity > 0)
    assert n_on > 20 and f"{n_on} notes" in capsys.readouterr().out


def test_cli_project_variants_and_errors(session, tmp_path, capsys):
    from studio.cli.main import main
    from studio.io.session import Session

    bundle = str(session.bundle)
    session.save()
    session.close()
    assert main(["transcribe", bundle, "--track", "bass"]) == 0
    assert main(["analyze", bundle, "--track", "mixture", "--set-grid", "constant"]) == 0
    s = Session.open(bundle)
    try:
        assert any(t.name == "bass (MIDI)" and t.kind == "midi" for t in s.project.tracks)
        assert abs(s.project.tempo_map.bpm_at(10 * PPQ) - 120) < 2
    finally:
        s.close()
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "missing.wav")]) == 1
    assert "missing.wav" in capsys.readouterr().err
    assert main(["transcribe", bundle]) == 1
    assert "--track" in capsys.readouterr().err
