"""Ableton export: names, numbering, alignment, MIDI files, ranges, selection, manifest, errors."""
from __future__ import annotations

import json

import mido
import numpy as np
import pytest
import soundfile as sf

import studio.audio.synth as synth
from studio.errors import RenderError
from studio.export.ableton import export_for_ableton, sanitize_name
from studio.io.midi_io import read_midi
from studio.model.project import AudioClip, Effect, MidiClip, Note, Project, Take, TakeGroup, Track
from studio.audio.render import render_mix, render_stems
from studio.model.timebase import TempoChange, TempoMap, TimeSignature
from tests.test_render import ArrayPool, noise

SR = 44100


def _has_gm() -> bool:
    try:
        synth.find_soundfont()
        synth._fluidsynth_module()
        return True
    except RenderError:
        return False


needs_gm = pytest.mark.skipif(not _has_gm(), reason="no GM SoundFont / FluidSynth on this machine")


def audio_project():
    p, pool = Project(name="Song", sample_rate=SR), ArrayPool()
    a = pool.add(p, noise(2, 30000, 1) * 0.5)
    b = pool.add(p, noise(1, 20000, 2) * 0.5)
    p.tracks.append(Track("Drums", clips=[AudioClip(a.id, 5000, 100, 25000)]))
    p.tracks.append(Track("Bass/Low: sub?", pan=-0.5, gain_db=-3.0,
                          effects=[Effect("LowpassFilter", {"cutoff_frequency_hz": 800.0})],
                          clips=[AudioClip(b.id, 0, 0, 20000, fade_in=100, fade_out=100)]))
    p.tracks.append(Track("Drums", clips=[AudioClip(b.id, 12345, 0, 1000)]))
    return p, pool


def read(path):
    return sf.read(path, dtype="float64", always_2d=True)[0].T


def test_files_are_numbered_sanitised_unique_and_aligned(tmp_path):
    p, pool = audio_project()
    report = export_for_ableton(p, pool, tmp_path / "out")
    names = [f.name for f in report.files]
    assert names == ["01 Drums.wav", "02 Bass Low sub.wav", "03 Drums 2.wav", "Mix.wav", "seed-studio-export.json"]
    length = p.length_samples()
    assert length == 30000
    for f in report.files[:4]:
        info = sf.info(f)
        assert (info.frames, info.channels, info.samplerate, info.subtype) == (length, 2, SR, "PCM_24")
    drums = read(report.files[0])
    assert not drums[:, :5000].any() and np.abs(drums[:, 5000]).max() > 0  # starts at project time 0
    mix = read(report.files[3])
    np.testing.assert_allclose(mix, render_mix(p, pool), atol=2 ** -22)
    np.testing.assert_allclose(sum(read(f) for f in report.files[:3]), mix, atol=1e-4)
    assert not [x for x in (tmp_path / "out").iterdir() if x.name.startswith(".")]  # no temp files left


def test_range_and_selection(tmp_path):
    p, pool = audio_project()
    ids = [p.tracks[0].id, p.tracks[1].id]
    report = export_for_ableton(p, pool, tmp_path / "r", track_ids=ids, start=4000, end=14000, float32=True)
    assert [f.name for f in report.files][:3] == ["01 Drums.wav", "02 Bass Low sub.wav", "Mix.wav"]
    for f in report.files[:3]:
        assert sf.info(f).frames == 10000 and sf.info(f).subtype == "FLOAT"
    np.testing.assert_allclose(read(report.files[2]), render_mix(p, pool, 4000, 14000, track_ids=ids), atol=1e-7)
    drums = read(report.files[0])
    assert not drums[:, :1000].any() and np.abs(drums[:, 1000]).max() > 0
    m = json.loads(report.manifest.read_text())
    assert m["range"] == {"start_sample": 4000, "end_sample": 14000, "frames": 10000, "tail_frames": 0,
                          "start_seconds": 4000 / SR, "end_seconds": 14000 / SR, "start_tick": m["range"]["start_tick"]}
    assert m["bit_depth"] == 32 and m["sample_format"] == "float"


def test_render_tail_runs_every_file_past_the_end_and_stems_still_sum_to_mix(tmp_path):
    p, pool = audio_project()
    p.tracks[0].effects = [Effect("Reverb", {"room_size": 0.9, "wet_level": 0.6})]
    report = export_for_ableton(p, pool, tmp_path / "t", start=4000, end=14000, tail=8000, float32=True)
    assert report.frames == 18000 and report.tail == 8000
    for f in report.files[:4]:
        assert sf.info(f).frames == 18000
    stems = [read(f) for f in report.files[:3]]
    mix = read(report.files[3])
    np.testing.assert_allclose(sum(stems), mix, atol=1e-6)
    np.testing.assert_allclose(mix, render_mix(p, pool, 4000, 14000, tail=8000), atol=1e-7)
    assert np.abs(stems[0][:, 10000:12000]).max() > 1e-3  # the reverb rings on past the end
    assert not stems[2][:, 10000:].any()  # a track without effects is silent in the tail
    m = json.loads(report.manifest.read_text())
    assert (m["range"]["frames"], m["range"]["tail_frames"], m["range"]["end_sample"]) == (18000, 8000, 14000)
    with pytest.raises(RenderError, match="tail"):
        export_for_ableton(p, pool, tmp_path / "bad", tail=-5)


def test_muted_tracks_are_skipped_and_stems_still_sum_to_mix(tmp_path):
    p, pool = audio_project()
    p.tracks[2].mute = True
    p.master_gain_db = -6.0
    report = export_for_ableton(p, pool, tmp_path / "m")
    assert [f.name for f in report.files][:3] == ["01 Drums.wav", "02 Bass Low sub.wav", "Mix.wav"]
    assert report.skipped == [(p.tracks[2].id, "Drums", "muted")]
    np.testing.assert_allclose(read(report.files[0]) + read(report.files[1]), read(report.files[2]), atol=1e-4)
    m = json.loads(report.manifest.read_text())
    assert m["skipped"][0]["reason"] == "muted" and m["stems_include_master_gain"] is True


def test_manifest_records_tempo_signature_and_sources(tmp_path):
    p, pool = audio_project()
    p.tempo_map = TempoMap([TempoChange(0, 96.0), TempoChange(9600, 120.0)], [TimeSignature(0, 6, 8)])
    p.media[p.tracks[0].clips[0].media_id].original_name = "break.flac"
    take = Take("gen 1", clips=[], provenance={"engine": "fake", "seed": 7})
    p.tracks[0].take_groups.append(TakeGroup(0, 100, takes=[take], active_take_id=take.id))
    report = export_for_ableton(p, pool, tmp_path / "j")
    m = json.loads(report.manifest.read_text())
    assert m["tempo"] == 96.0 and m["time_signature"] == "6/8" and m["sample_rate"] == SR
    assert m["tempo_map"]["tempos"] == [{"tick": 0, "bpm": 96.0}, {"tick": 9600, "bpm": 120.0}]
    f0 = m["files"][0]
    assert f0["track_id"] == p.tracks[0].id and f0["kind"] == "audio"
    assert f0["media"][0]["original_name"] == "break.flac"
    assert f0["active_takes"][0]["provenance"] == {"engine": "fake", "seed": 7}
    assert m["files"][1]["effects"] == [{"name": "LowpassFilter", "params": {"cutoff_frequency_hz": 800.0}}]
    mix = m["files"][3]
    assert {k: mix[k] for k in ("file", "type", "clipped_samples", "over_samples")} == {
        "file": "Mix.wav", "type": "mix", "clipped_samples": 0, "over_samples": 0}
    # the levels of what was written: sample peak <= true peak < 0 dBFS, a finite loudness
    audio = read(report.files[3])
    assert mix["sample_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(audio).max()), abs=0.01)
    assert mix["sample_peak_dbfs"] <= mix["true_peak_dbfs"] < 0.0
    assert -70.0 < mix["loudness_lufs"] < 0.0


@needs_gm
def test_midi_tracks_get_a_wav_and_a_mid_with_the_tempo_map(tmp_path):
    p, pool = audio_project()
    p.tempo_map = TempoMap([TempoChange(0, 100.0), TempoChange(3840, 140.0)], [TimeSignature(0, 3, 4)])
    notes = [Note(60 + i, 100, i * 480, 400) for i in range(8)]
    p.tracks.insert(1, Track("Piano", kind="midi", program=0, clips=[MidiClip(960, 4800, notes=notes)]))
    start = p.tempo_map.tick_to_sample(1920, SR)
    end = p.tempo_map.tick_to_sample(960 + 4800, SR)
    report = export_for_ableton(p, pool, tmp_path / "x", start=start, end=end)
    names = [f.name for f in report.files]
    assert names[:3] == ["01 Drums.wav", "02 Piano.wav", "02 Piano.mid"]
    piano = read(tmp_path / "x" / "02 Piano.wav")
    assert piano.shape == (2, end - start) and np.abs(piano).max() > 1e-3
    mf = mido.MidiFile(tmp_path / "x" / "02 Piano.mid")
    assert mf.type == 1 and mf.ticks_per_beat == 960
    tempos = [(m.time, round(mido.tempo2bpm(m.tempo), 3)) for m in mf.tracks[0] if m.type == "set_tempo"]
    assert tempos[0] == (0, 100.0) and [b for _, b in tempos] == [100.0, 140.0]
    assert any(m.type == "time_signature" and m.numerator == 3 for m in mf.tracks[0])
    parts, tm = read_midi(tmp_path / "x" / "02 Piano.mid")
    # notes start at timeline tick 960 + i*480; the export starts at tick 1920 -> note 2 lands on tick 0
    assert [(n.pitch, n.start) for n in parts[0].clip.notes] == [(60 + i, 960 + i * 480 - 1920) for i in range(2, 8)]
    assert tm.tempos[1].tick == 3840 - 1920
    m = json.loads(report.manifest.read_text())
    assert [f["file"] for f in m["files"] if f["type"] == "midi"] == ["02 Piano.mid"]
    assert m["files"][1]["program"] == 0 and m["files"][1]["kind"] == "midi"


def test_errors(tmp_path):
    p, pool = audio_project()
    with pytest.raises(RenderError, match="unknown track"):
        export_for_ableton(p, pool, tmp_path / "e", track_ids=["nope"])
    with pytest.raises(RenderError, match="empty"):
        export_for_ableton(p, pool, tmp_path / "e", start=100, end=100)
    for t in p.tracks:
        t.mute = True
    with pytest.raises(RenderError, match="no selected track is audible"):
        export_for_ableton(p, pool, tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_clipping_is_reported_for_24_bit_and_overs_for_float(tmp_path):
    p, pool = audio_project()
    p.tracks[0].gain_db = 24.0
    report = export_for_ableton(p, pool, tmp_path / "c")
    assert [f.name for f in report.clipped] == ["01 Drums.wav", "Mix.wav"]
    assert [f.name for f in report.overs] == ["01 Drums.wav", "Mix.wav"]
    pcm = {f["file"]: f for f in json.loads(report.manifest.read_text())["files"]}
    # the samples over full scale, counted in the float render before the file clipped them
    stems = render_stems(p, pool)
    master = 10 ** (p.master_gain_db / 20)
    drums_over = int(np.count_nonzero(np.abs(stems[p.tracks[0].id] * np.float32(master)) > 1.0))
    assert drums_over > 0 and pcm["01 Drums.wav"]["clipped_samples"] == pcm["01 Drums.wav"]["over_samples"] == drums_over
    assert pcm["01 Drums.wav"]["true_peak_dbfs"] > 0.0
    assert np.abs(read(report.files[0])).max() <= 1.0  # a 24-bit file holds full scale at most
    # float: nothing is clipped, but the overs are reported, with the same count and peak
    fl = export_for_ableton(p, pool, tmp_path / "f", float32=True)
    assert not fl.clipped and [f.name for f in fl.overs] == ["01 Drums.wav", "Mix.wav"]
    flt = {f["file"]: f for f in json.loads(fl.manifest.read_text())["files"]}
    assert flt["01 Drums.wav"]["clipped_samples"] == 0
    assert flt["01 Drums.wav"]["over_samples"] == drums_over
    assert flt["Mix.wav"]["over_samples"] == pcm["Mix.wav"]["over_samples"] > 0
    assert flt["01 Drums.wav"]["true_peak_dbfs"] == pcm["01 Drums.wav"]["true_peak_dbfs"]
    assert int(np.count_nonzero(np.abs(read(fl.files[0])) > 1.0)) == drums_over
    warning = fl.warning()
    assert "01 Drums.wav" in warning and "Mix.wav" in warning and "32-bit float" in warning
    assert "true peak +" in warning and "LUFS" in warning and "--master-gain" in warning
    # lowered by what the warning asks, nothing goes over any more
    need = float(warning.split("lower the master by ")[1].split(" dB")[0])
    ok = export_for_ableton(p, pool, tmp_path / "ok", master_gain_db=p.master_gain_db - need)
    assert ok.overs == [] and ok.warning() is None
    peaks = [f["true_peak_dbfs"] for f in json.loads(ok.manifest.read_text())["files"] if f["type"] != "midi"]
    assert max(peaks) == pytest.approx(-1.0, abs=0.06)  # the advice is rounded to 0.1 dB


@pytest.mark.parametrize("raw, clean", [
    ("Drums", "Drums"), ("a/b\\c:d", "a b c d"), ("  ..hidden.. ", "hidden"), ("", "Track"),
    ("CON", "CON_"), ("tab\tnew\nline", "tab new line"), ("x" * 200, "x" * 80), ("Vocals ♪", "Vocals ♪"),
])
def test_sanitize_name(raw, clean):
    assert sanitize_name(raw) == clean


@needs_gm
def test_midi_export_follows_the_active_take(tmp_path):
    p = Project(name="Takes", sample_rate=SR, tempo_map=TempoMap.constant(120.0))
    own = MidiClip(0, 7680, notes=[Note(60, 100, t, 240) for t in range(0, 7680, 960)])
    alt = MidiClip(0, 7680, notes=[Note(72, 100, t, 240) for t in range(0, 7680, 960)])
    take = Take("alt", clips=[alt])
    a, b = p.tempo_map.tick_to_sample(1920, SR), p.tempo_map.tick_to_sample(3840, SR)
    group = TakeGroup(a, b, takes=[take], active_take_id=take.id)
    p.tracks.append(Track("Keys", kind="midi", clips=[own], take_groups=[group]))
    export_for_ableton(p, None, tmp_path / "t")
    parts, _ = read_midi(tmp_path / "t" / "01 Keys.mid")
    notes = sorted((n.start, n.pitch) for n in parts[0].clip.notes)
    assert notes == [(t, 72 if 1920 <= t < 3840 else 60) for t in range(0, 7680, 960)]
