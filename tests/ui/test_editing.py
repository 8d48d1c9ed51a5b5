"""Editing in the real window: clipboard MIDI, paste, Ableton export, piano roll, control
lanes, split/move/undo, playback without a device, the screenshot command."""
from __future__ import annotations

import io
import json

import mido
import numpy as np
import pytest
import soundfile as sf
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QGuiApplication

from studio.model.project import MidiClip, Note


def _midi_track(window, shared):
    tracks = window.import_files([shared / "midi" / "blupi_music000.mid"])
    assert tracks
    track = max(tracks, key=lambda t: len(t.clips[0].notes))
    return track, track.clips[0]


def _notes_from_smf(data: bytes, ppq_out: int = 960) -> list[tuple[int, int, int, int]]:
    """(pitch, velocity, start, length) in ticks at 960 PPQ from SMF bytes, via mido."""
    mf = mido.MidiFile(file=io.BytesIO(data))
    scale = ppq_out / mf.ticks_per_beat
    out = []
    for tr in mf.tracks:
        t = 0
        on: dict[int, list[tuple[int, int]]] = {}
        for msg in tr:
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                on.setdefault(msg.note, []).append((t, msg.velocity))
            elif msg.type in ("note_off", "note_on") and on.get(msg.note):
                s, v = on[msg.note].pop(0)
                out.append((msg.note, v, round(s * scale), round((t - s) * scale)))
    return sorted(out, key=lambda n: (n[2], n[0], n[3]))


def test_copy_midi_clip_reads_back_same_notes(window, shared):
    track, clip = _midi_track(window, shared)
    window.canvas.selected_clips = {clip.id}
    assert window.on_copy()
    mime = QGuiApplication.clipboard().mimeData()
    assert mime.hasFormat("audio/midi")
    data = bytes(mime.data("audio/midi"))
    assert data[:4] == b"MThd"
    expected = sorted(((n.pitch, n.velocity, n.start, n.length) for n in clip.notes),
                      key=lambda n: (n[2], n[0], n[3]))
    assert _notes_from_smf(data) == expected
    # a file URL to a temp .mid with the same bytes, for DAWs and file managers
    urls = [u.toLocalFile() for u in mime.urls()]
    assert len(urls) == 1 and urls[0].endswith(".mid")
    with open(urls[0], "rb") as f:
        assert f.read() == data

    # paste it back at bar 5 on a new MIDI track: same notes, one undo step
    n_tracks = len(window.doc.project.tracks)
    window.canvas.selected_track = None
    proj = window.doc.project
    window.timeline.set_playhead(proj.tempo_map.tick_to_sample(4 * 3840, proj.sample_rate))
    window.on_paste()
    assert len(proj.tracks) == n_tracks + 1 or len(proj.tracks) == n_tracks
    (pasted_id,) = window.canvas.selected_clips
    _, pasted, _ = proj.find_clip(pasted_id)
    assert pasted.start == 4 * 3840
    assert [(n.pitch, n.start, n.length) for n in pasted.notes] == [(n.pitch, n.start, n.length) for n in clip.notes]
    window.on_undo()
    with pytest.raises(KeyError):
        proj.find_clip(pasted_id)


def test_paste_external_midi_bytes(window, shared):
    from PyQt6.QtCore import QMimeData

    data = (shared / "midi" / "blupi_music001.mid").read_bytes()
    mime = QMimeData()
    mime.setData("audio/midi", data)
    QGuiApplication.clipboard().setMimeData(mime)
    window.on_paste()
    proj = window.doc.project
    midi_tracks = [t for t in proj.tracks if t.kind == "midi"]
    assert len(midi_tracks) >= 4  # one per part with notes
    assert all(t.clips[0].start == 0 and t.clips[0].notes for t in midi_tracks)


def test_export_ableton_folder(window, shared, tmp_path):
    mt = shared / "multitrack" / "blupi001"
    window.import_files([mt / "drums.flac", mt / "bass.flac"])
    proj = window.doc.project
    job = window.export_ableton(tmp_path / "Ableton")
    assert job is not None and job.wait() and job.error == "" and job.report is not None
    assert "Exported" in window.statusBar().currentMessage() and "ExportReport" not in window.statusBar().currentMessage()
    wavs = sorted((tmp_path / "Ableton").glob("*.wav"))
    names = [w.name for w in wavs]
    assert "Mix.wav" in names and len(wavs) == 3
    infos = [sf.info(str(w)) for w in wavs]
    tail = round(window.settings.render_tail_s * proj.sample_rate)  # reverbs ring out (Preferences)
    assert tail == 2 * proj.sample_rate
    assert {i.frames for i in infos} == {proj.length_samples() + tail}
    assert {i.samplerate for i in infos} == {proj.sample_rate}
    manifest = json.loads((tmp_path / "Ableton" / "seed-studio-export.json").read_text())
    assert manifest["range"]["tail_frames"] == tail
    window.settings.render_tail_s = 0.0
    assert window.export_ableton(tmp_path / "Exact").wait()
    assert sf.info(str(tmp_path / "Exact" / "Mix.wav")).frames == proj.length_samples()


def test_split_move_trim_fade_undo(window, shared, qtbot):
    (track,) = window.import_files([shared / "audio" / "lmms_house_loop01.ogg"])
    proj = window.doc.project
    clip = track.clips[0]
    length = clip.length
    window.canvas.selected_clips = {clip.id}
    window.timeline.set_playhead(length // 2)
    window.on_split()
    assert [c.length for c in track.clips] == [length // 2, length - length // 2]
    assert track.clips[1].offset == length // 2
    # move the right part by dragging its title bar, snapped to the grid
    canvas = window.canvas
    geom = window.timeline.geom
    geom.samples_per_px, geom.origin = 441.0, 0.0
    canvas.relayout()
    right = track.clips[1]
    row = canvas.rows[0]
    x0 = geom.x_of(right.start) + 30
    y = row.y - canvas.vscroll + 6
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(x0), y))
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QMouseEvent

    for dx in (10, 40, 200):
        canvas.mouseMoveEvent(QMouseEvent(QEvent.Type.MouseMove, QPointF(x0 + dx, y), QPointF(x0 + dx, y),
                                          Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                          Qt.KeyboardModifier.NoModifier))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(x0 + 200), y))
    moved = right.start
    assert moved > length // 2
    tm = proj.tempo_map
    tick = tm.sample_to_tick(moved, proj.sample_rate)
    assert tm.tick_to_sample(tick, proj.sample_rate) == moved and tick % 240 == 0  # on the grid
    window.on_undo()
    assert right.start == length // 2
    window.on_undo()
    assert len(track.clips) == 1 and track.clips[0].length == length
    window.on_redo()
    assert len(track.clips) == 2


def test_piano_roll_add_move_delete_quantize(window, qtbot):
    from studio.model import edits
    from studio.model.project import Track
    from ui.piano_roll import quantize_notes

    t = Track(name="Keys", kind="midi")
    window.doc.push(edits.AddTrack(t))
    clip = MidiClip(0, 4 * 3840, [Note(60, 100, 10, 470), Note(64, 90, 965, 480)], name="Keys")
    window.doc.push(edits.AddClip(t.id, clip))
    pr = window.open_piano_roll(clip.id)
    qtbot.addWidget(pr)
    c = pr.canvas
    c.resize(900, 500)
    # add: double-click on empty grid at pitch 67, tick 1920
    x, y = c.x_of(1920) + 2, c.y_of(67) + 3
    qtbot.mouseDClick(c, Qt.MouseButton.LeftButton, pos=QPoint(int(x), int(y)))
    assert (67, 1920, 240) in [(n.pitch, n.start, n.length) for n in clip.notes]
    # quantize: starts to 1/16 (240 ticks)
    pr.quantize()
    assert [n.start for n in clip.notes] == [0, 960, 1920]
    assert quantize_notes([Note(60, 100, 130, 100)], 240, ends=True)[0].length == 240
    # delete with right-click
    n0 = clip.notes[0]
    r = c.note_rect(n0)
    qtbot.mouseClick(c, Qt.MouseButton.RightButton, pos=QPoint(int(r.center().x()), int(r.center().y())))
    assert len(clip.notes) == 2 and n0.pitch not in [n.pitch for n in clip.notes if n.start == 0]
    window.on_undo()
    assert len(clip.notes) == 3
    window.on_undo()
    assert [n.start for n in clip.notes] == [0 + 10, 965, 1920]
    pr.close()


def test_control_lanes_draw_and_fill(window, qtbot, shared):
    (track,) = window.import_files([shared / "audio" / "lmms_piano01.ogg"])
    window.canvas.selected_track = track.id
    window.on_add_control_dynamics()
    assert "dynamics" in track.control_lanes
    canvas = window.canvas
    row = next(r for r in canvas.rows if r.kind == "control")
    geom = window.timeline.geom
    geom.samples_per_px, geom.origin = 441.0, 0.0
    y_top = row.y - canvas.vscroll + 6
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QMouseEvent

    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(20, y_top))
    for x in range(30, 120, 10):
        canvas.mouseMoveEvent(QMouseEvent(QEvent.Type.MouseMove, QPointF(x, y_top), QPointF(x, y_top),
                                          Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                          Qt.KeyboardModifier.NoModifier))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(110, y_top))
    pts = track.control_lanes["dynamics"].points
    assert len(pts) >= 9 and all(-5.0 <= v <= 0.0 for _, v in pts)  # near the top = loud
    assert [p[0] for p in pts] == sorted(p[0] for p in pts)
    window.on_undo()
    assert track.control_lanes["dynamics"].points == []

    from studio.controls import fill_lanes

    fill_lanes(window.doc, track.id, f"track:{track.id}")
    lanes = track.control_lanes
    assert set(lanes) == {"melody", "dynamics", "rhythm"}
    mel = [v for _, v in lanes["melody"].points]
    assert all(v == -1 or 0 <= v <= 11 for v in mel) and any(v >= 0 for v in mel)
    dyn = np.array([v for _, v in lanes["dynamics"].points])
    assert dyn.max() > -40 and dyn.min() >= -60
    assert any(v == 0.5 for _, v in lanes["rhythm"].points)  # onsets found
    assert [r.kind for r in canvas.rows] == ["track", "control", "control", "control"]


def test_playback_without_device_says_so(window):
    from ui.playback import NO_DEVICE, PlaybackController

    pb = PlaybackController(window)
    pb.set_document(window.doc)
    got = []
    pb.message.connect(got.append)

    def no_device(_sr):
        raise RuntimeError(NO_DEVICE)

    pb.sink_factory = no_device
    assert pb.play(0) is False
    assert got and "No audio output device" in got[0]
    assert not pb.is_playing


def test_playback_renders_same_as_export_and_loops(window, shared, qtbot):
    from studio.model import edits
    from studio.model.project import Region
    from studio.audio.render import render_mix
    from ui.playback import PlaybackController

    window.import_files([shared / "audio" / "lmms_break01.ogg"])
    proj = window.doc.project
    blocks = []

    class Sink:
        def write(self, a):
            blocks.append(np.array(a))

        def close(self):
            pass

    pb = PlaybackController(window, sink_factory=lambda sr: Sink())
    pb.set_document(window.doc)
    assert pb.play(0)
    qtbot.waitUntil(lambda: not pb.is_playing, timeout=20000)
    played = np.concatenate(blocks, axis=1)
    ref = render_mix(proj, window.doc.pool)
    assert played.shape == ref.shape
    assert np.array_equal(played, ref)
    # loop [1000, 5000): the output wraps back to the loop start
    window.doc.push(edits.SetLoop(Region("Loop", 1000, 5000)))
    blocks.clear()
    assert pb.play(0, loop=True)
    qtbot.waitUntil(lambda: sum(b.shape[1] for b in blocks) > 12000, timeout=20000)
    pb.stop()
    played = np.concatenate(blocks, axis=1)
    ref = render_mix(proj, window.doc.pool, 1000, 5000)
    assert np.allclose(played[:, 4000:8000], ref, atol=1e-6)


def test_screenshot_command(tmp_path, shared):
    from ui.launcher import main
    from studio.io.session import Session
    from studio.media.importing import import_files

    s = Session.create(tmp_path / "Shot.seedproj", 44100)
    import_files(s, [shared / "audio" / "lmms_cello01.ogg", shared / "midi" / "blupi_music000.mid"])
    s.save()
    s.close()
    out = tmp_path / "shot.png"
    assert main(["screenshot", str(tmp_path / "Shot.seedproj"), str(out), "--size", "1000x600"]) == 0
    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert (img.width(), img.height()) == (1000, 600)
    # dark theme: the mean of a central area is dark but not blank
    grey = [QColorValue for QColorValue in (img.pixelColor(x, y).value() for x in range(300, 900, 37)
                                             for y in range(150, 500, 31))]
    assert 5 < np.mean(grey) < 200 and np.std(grey) > 1
    assert main(["screenshot", str(tmp_path / "missing.seedproj"), str(out)]) == 1


def _mouse_drag(qtbot, canvas, x0, y, x1):
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QMouseEvent

    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(x0), int(y)))
    for k in range(1, 5):
        x = x0 + (x1 - x0) * k / 4
        canvas.mouseMoveEvent(QMouseEvent(QEvent.Type.MouseMove, QPointF(x, y), QPointF(x, y),
                                          Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                          Qt.KeyboardModifier.NoModifier))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(x1), int(y)))


def test_trim_and_fade_gestures(window, qtbot, shared):
    (track,) = window.import_files([shared / "audio" / "lmms_cello01.ogg"])
    clip = track.clips[0]
    length = clip.length
    window.actions_by_name["snap"].setChecked(False)
    window.on_snap()
    canvas, geom = window.canvas, window.timeline.geom
    geom.samples_per_px, geom.origin = 100.0, 0.0
    canvas.relayout()
    row = canvas.rows[0]
    y_mid = row.y - canvas.vscroll + row.h - 8
    # trim the start by 50 px = 5000 samples: start, offset and length move together
    _mouse_drag(qtbot, canvas, geom.x_of(clip.start) + 2, y_mid, geom.x_of(clip.start) + 52)
    assert clip.start == clip.offset and 4800 <= clip.start <= 5200
    assert clip.length == length - clip.start
    # trim the end by -30 px
    end_before = clip.end
    _mouse_drag(qtbot, canvas, geom.x_of(clip.end) - 2, y_mid, geom.x_of(clip.end) - 32)
    assert 2800 <= end_before - clip.end <= 3200
    # fade in: drag the top-left handle 40 px right
    y_top = row.y - canvas.vscroll + 5
    _mouse_drag(qtbot, canvas, geom.x_of(clip.start) + 3, y_top, geom.x_of(clip.start) + 43)
    assert 3800 <= clip.fade_in <= 4200
    # fade out: drag the top-right handle 20 px left
    _mouse_drag(qtbot, canvas, geom.x_of(clip.end) - 3, y_top, geom.x_of(clip.end) - 23)
    assert 1800 <= clip.fade_out <= 2200
    for _ in range(4):
        window.on_undo()
    assert (clip.start, clip.offset, clip.length, clip.fade_in, clip.fade_out) == (0, 0, length, 0, 0)


def test_drag_out_audio_clip_writes_what_it_plays(window, shared):
    from studio.model import edits
    from ui.clipboard import clips_mime

    (track,) = window.import_files([shared / "audio" / "lmms_violin_fingered01.ogg"])
    clip = track.clips[0]
    window.doc.push(edits.SetClipFields(clip.id, {"offset": 1000, "length": 20000, "gain_db": -6.0,
                                                  "fade_in": 500}))
    mime = clips_mime(window.doc, [(track, clip)])
    (url,) = [u.toLocalFile() for u in mime.urls()]
    assert url.endswith(".wav")
    data, sr = sf.read(url, dtype="float32", always_2d=True)
    assert sr == window.doc.project.sample_rate and data.shape[0] == 20000
    src = window.doc.pool.read(window.doc.project.media[clip.media_id], 1000, 20000) * 10 ** (-6 / 20)
    assert np.allclose(data.T[:, 500:], src[:, 500:], atol=1e-4)  # 24-bit rounding
    assert np.all(np.abs(data.T[:, :500]) <= np.abs(src[:, :500]) + 1e-4)  # faded in
    assert abs(data[0, 0]) < 1e-4


def test_ruler_loop_and_wheel_zoom(window, qtbot, shared):
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QMouseEvent, QWheelEvent

    window.import_files([shared / "audio" / "lmms_break01.ogg"])
    geom, ruler, canvas = window.timeline.geom, window.timeline.ruler, window.canvas
    sr = window.doc.project.sample_rate
    geom.samples_per_px, geom.origin = sr / 100.0, 0.0  # 100 px per second, 120 BPM: a beat = 50 px
    y = ruler.height() - 3  # lower third: loop range
    qtbot.mousePress(ruler, Qt.MouseButton.LeftButton, pos=QPoint(52, y))
    ruler.mouseMoveEvent(QMouseEvent(QEvent.Type.MouseMove, QPointF(248, y), QPointF(248, y),
                                     Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                     Qt.KeyboardModifier.NoModifier))
    qtbot.mouseRelease(ruler, Qt.MouseButton.LeftButton, pos=QPoint(248, y))
    loop = window.doc.project.loop
    assert (loop.start, loop.end) == (sr // 2, 5 * sr // 2)  # snapped to beats
    assert canvas.loop == (loop.start, loop.end)
    window.on_undo()
    assert window.doc.project.loop is None
    # Ctrl+wheel zooms around the mouse
    anchor = geom.sample_at(300)
    ev = QWheelEvent(QPointF(300, 20), QPointF(300, 20), QPoint(0, 0), QPoint(0, 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    canvas.wheelEvent(ev)
    assert geom.samples_per_px == pytest.approx(sr / 100.0 * 0.8)
    assert abs(geom.sample_at(300) - anchor) <= geom.samples_per_px


def test_open_app_with_project(monkeypatch, tmp_path, shared, qtbot):
    from PyQt6.QtWidgets import QApplication

    from ui.launcher import main
    from studio.media.importing import import_files
    from studio.io.session import Session

    s = Session.create(tmp_path / "Open.seedproj", 44100)
    import_files(s, [shared / "audio" / "lmms_kick01.ogg"])
    s.save()
    s.close()
    opened = []

    def fake_exec():
        # the window on this project (windows of earlier tests in this worker may still exist)
        win = next(w for w in QApplication.topLevelWidgets() if getattr(w, "doc", None) is not None
                   and w.doc.session.bundle.name == "Open.seedproj")
        opened.append([t.name for t in win.doc.project.tracks])
        win.ask = False
        win.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", staticmethod(fake_exec))
    assert main([str(tmp_path / "Open.seedproj")]) == 0
    assert opened == [["lmms_kick01"]]


def test_track_header_mute_solo_faders_are_undoable_edits(window, qtbot):
    from studio.model import edits
    from studio.model.project import Track

    t = Track(name="Bass", kind="audio")
    window.doc.push(edits.AddTrack(t))
    qtbot.waitUntil(lambda: t.id in window.timeline.headers.tracks)
    header = window.timeline.headers.tracks[t.id]
    header.resize(210, 64)
    header.set_compact(False)
    r = header.rects()
    track = lambda: window.doc.project.track(t.id)  # noqa: E731
    qtbot.mouseClick(header, Qt.MouseButton.LeftButton, pos=r["mute"].center())
    qtbot.mouseClick(header, Qt.MouseButton.LeftButton, pos=r["solo"].center())
    assert track().mute and track().solo and header.mute and header.solo
    # a fader drag is one undo step: from the handle at 0 dB to the far right = +6 dB
    gain = r["gain"]
    x0 = gain.left() + 4 + header._gain_fraction() * (gain.width() - 8)
    qtbot.mousePress(header, Qt.MouseButton.LeftButton, pos=QPoint(int(round(x0)), gain.center().y()))
    for x in range(int(x0), gain.right() + 20, 7):
        qtbot.mouseMove(header, QPoint(x, gain.center().y()))
    qtbot.mouseRelease(header, Qt.MouseButton.LeftButton, pos=QPoint(gain.right() + 20, gain.center().y()))
    assert track().gain_db == pytest.approx(6.0)
    assert header.gain_db == pytest.approx(6.0)  # the header shows the model's value
    window.doc.undo_stack.undo()
    assert track().gain_db == 0.0 and track().solo  # the whole drag was one step
    # double-click resets a fader; pan clicks jump to the clicked point
    pan = r["pan"]
    qtbot.mouseClick(header, Qt.MouseButton.LeftButton, pos=QPoint(pan.left() + 4, pan.center().y()))
    assert track().pan == pytest.approx(-1.0)
    qtbot.mouseDClick(header, Qt.MouseButton.LeftButton, pos=pan.center())
    assert track().pan == 0.0
    window.doc.undo_stack.undo()  # the reset is its own step
    assert track().pan == pytest.approx(-1.0)
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()
    assert track().pan == 0.0 and not track().solo and track().mute
    # clicking the name selects the track
    with qtbot.waitSignal(header.clicked, timeout=1000) as sig:
        qtbot.mouseClick(header, Qt.MouseButton.LeftButton, pos=r["name"].center())
    assert sig.args == [t.id]
    # painting it is cheap and draws the track colour strip
    img = header.grab().toImage()
    assert img.pixelColor(2, 30).name() == header.colour.name()


def test_ruler_redraws_its_ticks_only_when_the_grid_changes(window):
    from studio.model import edits
    from studio.model.timebase import TempoMap

    ruler, geom = window.timeline.ruler, window.timeline.geom
    sr = window.doc.project.sample_rate
    geom.samples_per_px, geom.origin = sr / 100.0, 0.0  # 120 BPM: a bar = 200 px
    ruler.resize(800, ruler.height())
    first = ruler.grab().toImage()
    layer = ruler._layer
    window.timeline.set_playhead(sr)  # x = 100
    moved = ruler.grab().toImage()
    assert ruler._layer is layer  # the playhead is drawn over the same tick layer
    assert moved != first and moved.pixelColor(100, ruler.height() - 2) != first.pixelColor(100, ruler.height() - 2)
    window.timeline.set_playhead(0)
    assert ruler.grab().toImage() == first
    window.doc.push(edits.SetTempoMap(TempoMap.constant(60.0, 4, 4)))  # bars twice as long
    slower = ruler.grab().toImage()
    assert ruler._layer is not layer and slower != first
    h = ruler.height()
    tall = lambda img, x: img.pixelColor(x, h - 11) != img.pixelColor(x + 3, h - 11)  # noqa: E731  bar tick
    assert tall(first, 200) and not tall(slower, 200) and tall(slower, 400)
    window.doc.undo_stack.undo()
    assert ruler.grab().toImage() == first
