"""Mixing and hand-off in the real window (issue 12): meters from the render path, overs,
the clip warning dialog, the export dialog and job (progress, cancel, options), the grid
preview, the editable inspector, GM program choice, Save As, the metronome, two clips as
one SMF on the clipboard, the piano roll's bar ruler, app-worded model hints."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QGuiApplication

from studio.model.project import MidiClip, Note, Track

SR = 44100


def tone_file(tmp_path: Path, amp: float, name: str = "tone", seconds: float = 2.0, freq: float = 997.0) -> Path:
    n = np.arange(int(seconds * SR))
    x = (amp * np.sin(2 * np.pi * freq * n / SR + 0.3)).astype(np.float32)
    k = int(0.01 * SR)  # 10 ms fades: no step at the ends
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)).astype(np.float32)
    x[:k] *= ramp
    x[-k:] *= ramp[::-1]
    path = tmp_path / f"{name}.wav"
    sf.write(str(path), np.stack([x, x], 1), SR, subtype="FLOAT")
    return path


class Sink:
    def __init__(self):
        self.blocks = []

    def write(self, a):
        self.blocks.append(np.array(a))

    def close(self):
        pass


def play_through(window, qtbot, sink=None):
    """Play the whole song into a fake device; returns the sink."""
    from ui.playback import PlaybackController

    sink = sink or Sink()
    if window.playback is None or not isinstance(getattr(window, "_test_sink", None), Sink):
        window.playback = PlaybackController(window, sink_factory=lambda sr: window._test_sink)
        window.playback.set_document(window.doc)
    window._test_sink = sink
    window.timeline.set_playhead(0)
    window.on_play()
    qtbot.waitUntil(lambda: not window.playback.is_playing and not window.meter_timer.isActive(), timeout=30000)
    window._update_meters()
    return sink


def test_meters_read_the_peak_of_a_known_sine_within_a_tenth_of_a_db(window, tmp_path, qtbot):
    from studio.model import edits

    a, b = window.import_files([tone_file(tmp_path, 0.5, "a"), tone_file(tmp_path, 0.5, "b")])
    window.doc.push(edits.SetTrackProperty(b.id, "gain_db", -6.0))
    window.actions_by_name["mixer"].trigger()
    assert window.mixer_dock.isVisible()
    mixer = window.mixer
    assert list(mixer.strips) == [a.id, b.id]
    assert mixer.strips[b.id].fader.value() == -60  # tenths of a dB
    play_through(window, qtbot)
    # 0.5 = -6.02 dBFS; the second track 6 dB lower; the master their sum: 0.5 + 0.25 = 0.75
    assert mixer.strips[a.id].meter.hold_db == pytest.approx(20 * math.log10(0.5), abs=0.1)
    assert mixer.strips[b.id].meter.hold_db == pytest.approx(20 * math.log10(0.5) - 6.0, abs=0.1)
    master_tp = 20 * math.log10(0.5 + 0.5 * 10 ** (-6 / 20))
    assert mixer.master.meter.hold_db == pytest.approx(master_tp, abs=0.1)  # the master holds its true peak
    assert mixer.strips[a.id].readout.text() == "-6.0" and not mixer.strips[a.id].readout.over
    # the track headers' meters read the same post-fader peaks
    headers = window.timeline.headers.tracks
    assert headers[a.id].level.hold_db == pytest.approx(20 * math.log10(0.5), abs=0.1)
    assert headers[b.id].level.hold_db == pytest.approx(20 * math.log10(0.5) - 6.0, abs=0.1)
    assert not headers[a.id].over and not headers[b.id].over
    assert not mixer.master.readout.over


def test_an_over_lights_the_indicator_until_clicked(window, tmp_path, qtbot):
    from studio.model import edits

    (t,) = window.import_files([tone_file(tmp_path, 0.8)])
    window.doc.push(edits.SetTrackProperty(t.id, "gain_db", 6.0))  # 0.8 x 2 = 1.6: over
    play_through(window, qtbot)
    strip, master = window.mixer.strips[t.id], window.mixer.master
    assert strip.readout.over and master.readout.over
    assert strip.meter.hold_db == pytest.approx(20 * math.log10(0.8) + 6.0, abs=0.1)
    assert window.playback.overs == {t.id, "master"}
    assert window.timeline.headers.tracks[t.id].over  # the header's meter shows the over too
    master.readout.click()  # reset the master's indicator
    window._update_meters()
    assert not master.readout.over and strip.readout.over and window.playback.overs == {t.id}
    # the master fader is an undoable command, and the mix is rendered with it
    master.fader.setValue(-100)
    assert window.doc.project.master_gain_db == -10.0
    window.on_undo()
    assert window.doc.project.master_gain_db == 0.0 and master.fader.value() == 0


def test_a_clipping_export_warns_in_a_dialog(window, tmp_path, qtbot):
    window.import_files([tone_file(tmp_path, 0.9, "a"), tone_file(tmp_path, 0.9, "b")])
    job = window.export_mix(tmp_path / "mix.wav")
    assert job.wait() and job.error == ""
    box = window.clip_dialog
    assert box.isVisible()
    text = box.text() + "\n" + box.informativeText()
    assert "mix.wav" in text and "true peak +5.1 dBFS" in text and "LUFS" in text
    assert "Master fader" in text and "--" not in text  # worded for the app
    assert "true peak +5.1 dBFS" in window.statusBar().currentMessage()
    box.close()
    # at the master gain the warning asks for, nothing clips and no dialog comes
    window.clip_dialog = None
    job = window.export_mix(tmp_path / "ok.wav", master_gain_db=-6.1)
    assert job.wait() and job.report.warning() is None and window.clip_dialog is None


def test_export_dialog_runs_the_cli_options_in_the_background(window, tmp_path, qtbot):
    from ui.export_dialog import ExportJob, ExportOptions

    a, b = window.import_files([tone_file(tmp_path, 0.3, "a"), tone_file(tmp_path, 0.3, "b")])
    dlg = window.open_export_dialog("stems")
    assert dlg.tail.value() == window.settings.render_tail_s == 2.0  # to the song's end: the tail
    dlg.path.setText(str(tmp_path / "Live"))
    dlg.tracks.item(1).setCheckState(Qt.CheckState.Unchecked)  # only track a
    dlg.format.setCurrentIndex(dlg.format.findData("FLOAT"))
    dlg.range.setCurrentIndex(dlg.range.findData("custom"))
    assert dlg.tail.value() == 0.0  # a range with its own end: exact, as on the command line
    dlg.start_s.setValue(0.5)
    dlg.end_s.setValue(1.5)
    job = dlg.start()
    assert job is not None and not dlg.export_btn.isEnabled()
    assert job.wait() and job.error == ""
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=5000)
    m = json.loads((tmp_path / "Live" / "seed-studio-export.json").read_text())
    assert m["sample_format"] == "float" and m["range"]["frames"] == SR and m["range"]["start_sample"] == SR // 2
    assert [f["track_id"] for f in m["files"] if f["type"] == "audio"] == [a.id]
    assert job.fraction == 1.0
    # a refused form says why and starts nothing
    dlg2 = window.open_export_dialog("mix")
    for i in range(dlg2.tracks.count()):
        dlg2.tracks.item(i).setCheckState(Qt.CheckState.Unchecked)
    assert dlg2.start() is None and "track" in dlg2.status.text()
    # cancel: nothing is written
    opts = ExportOptions("mix", tmp_path / "never.wav")
    job = ExportJob(window.doc, opts, window)
    job.cancel()
    job.start()
    assert job.wait() and job.cancelled and not (tmp_path / "never.wav").exists()
    assert not list(tmp_path.glob(".never.wav*"))


def test_grid_preview_changes_the_grid_only_when_applied(window, qtbot):
    from studio.model.timebase import TempoMap

    proj = window.doc.project
    before = proj.tempo_map
    beat = 60.0 / 100.0 * SR
    beats = [int(round(1000 + i * beat)) for i in range(40)]
    data = {"bpm": 100.0, "time_signature": [4, 4], "frames": 40 * int(beat) + 2000, "beat_tracker": "dsp",
            "beats": {"beats": beats, "downbeats": beats[::4], "extra": {"tempo_confidence": 0.93}},
            "key": {"name": "E minor"}}
    dlg = window.show_grid_preview(data, region_start=SR)
    assert dlg.isVisible() and dlg.allowed and "100.0 BPM" in dlg.summary.text() and "93%" in dlg.summary.text()
    assert proj.tempo_map == before  # nothing changed by showing it
    dlg.reject()
    assert proj.tempo_map == before
    dlg = window.show_grid_preview(data, region_start=SR)
    dlg.varying.setChecked(True)
    assert dlg.apply()
    tm = window.doc.project.tempo_map
    assert tm != before and proj.key == "E minor"
    # the first detected downbeat (at SR + 1000) sits on a bar line
    first = tm.sample_to_tick(SR + 1000, SR)
    assert tm.bar_beat_at(first)[1:] == (0, pytest.approx(0, abs=2))
    assert window.doc.undo_stack.undo_label.startswith("Set the grid from the analysis")
    window.on_undo()  # one step
    assert window.doc.project.tempo_map == before and window.doc.project.key is None
    # a tempo outside 40-240 BPM is never applied
    bad = dict(data, bpm=938.7)
    dlg = window.show_grid_preview(bad)
    assert not dlg.allowed and not dlg.apply_btn.isEnabled() and dlg.apply() is False
    assert "outside 40–240 BPM" in dlg.note.text()
    assert window.doc.project.tempo_map == before == TempoMap.constant(120.0)


def test_a_report_only_analysis_opens_the_preview(window):
    class Job:
        def __init__(self, set_grid):
            self.request = type("R", (), {"fields": {"set_grid": set_grid}})()
            self.spec = type("S", (), {"region": (SR, 10 * SR)})()

    class Bridge:
        analysis = {"j1": {"bpm": 120.0, "beats": {"beats": [0, 22050, 44100], "downbeats": [0]}},
                    "j2": {"bpm": 120.0, "beats": {"beats": [0, 22050, 44100], "downbeats": [0]}}}
        jobs = {"j1": Job("no"), "j2": Job("constant")}

        def job(self, jid):
            return self.jobs[jid]

    window._jobs = Bridge()
    window.grid_preview = None
    window._on_job_finished("j2", "done", "")
    assert window.grid_preview is None  # the task set the grid itself
    window._on_job_finished("j1", "failed", "")
    assert window.grid_preview is None
    window._on_job_finished("j1", "done", "")
    assert window.grid_preview is not None and window.grid_preview.region_start == SR
    window.grid_preview.reject()
    window._jobs = None


def test_inspector_edits_in_bars_and_beats_and_gm_program(window, tmp_path, qtbot):
    from ui.inspector import format_position

    (t,) = window.import_files([tone_file(tmp_path, 0.3)])
    clip = t.clips[0]
    proj = window.doc.project
    window.canvas.selected_clips = {clip.id}
    window.canvas.selection_changed.emit()
    ins = window.inspector
    assert ins.fields["Start"] == "1.1.1"
    ins.editors["Start"].setText("3.2.1")
    ins.editors["Start"].editingFinished.emit()
    qtbot.waitUntil(lambda: clip.start != 0, timeout=2000)
    tm = proj.tempo_map
    assert clip.start == tm.tick_to_sample(tm.bar_to_tick(2) + 960, SR)
    qtbot.waitUntil(lambda: ins.fields.get("Start") == "3.2.1", timeout=2000)
    ins.editors["Gain"].setValue(-4.5)
    assert clip.gain_db == -4.5
    window.on_undo()
    assert clip.gain_db == 0.0
    ins.editors["Start"].setText("nonsense")
    ins.editors["Start"].editingFinished.emit()
    assert "not a position" in window.statusBar().currentMessage()
    # a MIDI track: the GM instrument and the drum kit
    mt = Track("Keys", kind="midi", clips=[MidiClip(0, 3840, [Note(60, 100, 0, 960)])])
    from studio.model import edits

    window.doc.push(edits.AddTrack(mt))
    window.canvas.selected_clips = set()
    window.canvas.selected_track = mt.id
    window.canvas.selection_changed.emit()
    qtbot.waitUntil(lambda: "Instrument" in ins.editors, timeout=2000)
    box = ins.editors["Instrument"]
    assert box.currentText() == "1 Acoustic Grand Piano"
    box.setCurrentIndex(box.findData(40))
    assert mt.program == 40
    qtbot.waitUntil(lambda: ins.fields.get("Instrument") == "41 Violin", timeout=2000)
    assert format_position(proj.tempo_map, 3840 * 4 + 960 * 2 + 240 + 7) == "5.3.2.7"


def test_save_as_goes_on_in_the_new_bundle_with_undo(window, tmp_path):
    from studio.io.session import Session
    from studio.model import edits

    (t,) = window.import_files([tone_file(tmp_path, 0.3)])
    window.doc.push(edits.SetTrackProperty(t.id, "gain_db", -3.0))
    old = window.doc.path
    new = window.save_as(tmp_path / "Song v2")
    assert new == tmp_path / "Song v2.seedproj" and window.doc.path == new
    assert not window.doc.is_dirty and window.doc.project.name == "Song v2"
    assert sorted(p.name for p in (new / "media").iterdir()) == sorted(p.name for p in (old / "media").iterdir())
    assert json.loads((new / "project.json").read_text())["tracks"][0]["gain_db"] == -3.0
    assert window.doc.undo()  # the history came along
    assert window.doc.project.name != "Song v2" or window.doc.undo()
    # the old bundle is free again (its lock was released) and as last saved
    s = Session.open(old)
    s.close()
    assert window.save_as(new) == new  # the same bundle: nothing to do
    assert window.save_as(old) is None  # a bundle that holds a project is refused
    assert "already holds a project" in window.statusBar().currentMessage()


def test_metronome_clicks_only_while_playing(window, tmp_path, qtbot):
    from studio.audio.metronome import click_block
    from studio.audio.render import render_mix

    window.import_files([tone_file(tmp_path, 0.1, seconds=2.0)])
    plain = play_through(window, qtbot)
    window.actions_by_name["metronome"].trigger()
    clicked = play_through(window, qtbot, Sink())
    window.actions_by_name["metronome"].trigger()
    a = np.concatenate(plain.blocks, axis=1)
    b = np.concatenate(clicked.blocks, axis=1)
    proj = window.doc.project
    np.testing.assert_array_equal(a, render_mix(proj, window.doc.pool))  # the click is not in the mix
    np.testing.assert_allclose(b - a, click_block(proj.tempo_map, SR, 0, a.shape[1]), atol=1e-6)
    assert np.abs(b - a)[:, :100].max() > 0.1  # a click on the downbeat at 0


def test_two_midi_clips_copy_as_one_smf_with_exact_offsets(window, qtbot, tmp_path):
    from studio.model import edits
    from ui import clipboard

    proj = window.doc.project
    n1 = [Note(60, 100, 0, 480), Note(64, 90, 960, 480)]
    n2 = [Note(40, 110, 0, 960), Note(43, 100, 1920, 240)]
    c1 = MidiClip(3840, 3840, n1, name="A")  # bar 2
    c2 = MidiClip(3 * 3840 + 120, 3840, n2, name="B")  # bar 4, 120 ticks late
    t1 = Track("Lead", kind="midi", program=80, clips=[c1])
    t2 = Track("Bass", kind="midi", program=33, clips=[c2])
    window.doc.push(edits.AddTracks([t1, t2]))
    window.canvas.selected_clips = {c1.id, c2.id}
    assert window.on_copy()
    mime = QGuiApplication.clipboard().mimeData()
    data = bytes(mime.data("audio/midi"))
    mf = mido.MidiFile(file=io.BytesIO(data))
    assert mf.type == 1 and mf.ticks_per_beat == 960 and len(mf.tracks) == 3  # tempo track + 2 parts

    def onsets(track):
        t, out, prog = 0, [], None
        for m in track:
            t += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.append((t, m.note))
            if m.type == "program_change":
                prog = m.program
        return out, prog

    (o1, p1), (o2, p2) = onsets(mf.tracks[1]), onsets(mf.tracks[2])
    offset = c2.start - c1.start
    assert o1 == [(0, 60), (960, 64)] and p1 == 80
    assert o2 == [(offset, 40), (offset + 1920, 43)] and p2 == 33
    urls = [u.toLocalFile() for u in mime.urls()]
    assert len(urls) == 1 and Path(urls[0]).read_bytes() == data
    # round trip: the SMF alone pasted at bar 9 gives both parts, the second at its exact offset
    from PyQt6.QtCore import QMimeData

    ext = QMimeData()
    ext.setData("audio/midi", data)
    QGuiApplication.clipboard().setMimeData(ext)
    window.canvas.selected_track = None
    at = proj.tempo_map.tick_to_sample(8 * 3840, SR)
    window.timeline.set_playhead(at)
    window.on_paste()
    pasted = [proj.find_clip(i)[1] for i in window.canvas.selected_clips]
    firsts = sorted(c.start + c.notes[0].start for c in pasted)
    at_tick = proj.tempo_map.sample_to_tick(at, SR)
    assert firsts == [at_tick, at_tick + offset]
    # temp files go when the app quits
    folder = Path(urls[0]).parent
    assert folder.is_dir() and folder.name.startswith("seed-studio-clip-")
    clipboard.remove_temp_files()
    assert not folder.exists()


def test_stale_clipboard_folders_of_dead_processes_are_swept(tmp_path):
    from ui import clipboard

    dead = tmp_path / f"{clipboard.TEMP_PREFIX}999999999-abc"
    dead.mkdir()
    (dead / "x.mid").write_bytes(b"MThd")
    mine = tmp_path / f"{clipboard.TEMP_PREFIX}{__import__('os').getpid()}-def"
    mine.mkdir()
    assert clipboard.sweep_stale_temp_dirs(tmp_path) == 1
    assert not dead.exists() and mine.exists()


def test_piano_roll_ruler_counts_the_songs_bars(window):
    from studio.model import edits
    from studio.model.timebase import TempoMap, TimeSignature, TempoChange

    tm = TempoMap([TempoChange(0, 120.0)], [TimeSignature(0, 4, 4), TimeSignature(4 * 3840, 3, 4)])
    window.doc.push(edits.SetTempoMap(tm))
    clip = MidiClip(2 * 3840, 6 * 3840, [Note(60, 100, 0, 960)])
    window.doc.push(edits.AddTrack(Track("Keys", kind="midi", clips=[clip])))
    roll = window.open_piano_roll(clip.id)
    bars = roll.bar_lines(0, 6 * 3840)
    # the clip starts at bar 3; from bar 5 on the bars are 3/4 (2880 ticks)
    assert bars[:4] == [(0, "3"), (3840, "4"), (7680, "5"), (7680 + 2880, "6")]
    assert roll.ruler.isVisible()
    roll.close()


def test_model_hints_point_to_the_models_window(window):
    from ui.hints import for_app

    text = ("model 'beat-this-final0' is not installed. What to do: download it with "
            "`seed-studio models download beat-this-final0` or import it with "
            "`seed-studio models import beat-this-final0 FOLDER`")
    out = for_app(text)
    assert "seed-studio" not in out and "Models window (View > Models…)" in out and "beat-this-final0" in out
    window.jobs_panel.add_job("x", "Analyze")
    window.jobs_panel.on_finished("x", "failed", text)
    assert "seed-studio" not in window.jobs_panel.rows["x"].info.text()
