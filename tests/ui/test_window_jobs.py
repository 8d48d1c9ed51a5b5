"""Drive the real main window: import real audio, select a range with the mouse, run jobs
through the real job system (engine host process), see takes and stems, undo."""
from __future__ import annotations

import numpy as np
import soundfile as sf
from PyQt6.QtCore import QPoint, Qt


def _drag(qtbot, widget, x0, y0, x1, y1):
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=QPoint(int(x0), int(y0)))
    for k in range(1, 6):
        x = x0 + (x1 - x0) * k / 5
        y = y0 + (y1 - y0) * k / 5
        from PyQt6.QtGui import QMouseEvent
        from PyQt6.QtCore import QPointF, QEvent

        ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(x, y), QPointF(x, y), Qt.MouseButton.LeftButton,
                         Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        widget.mouseMoveEvent(ev)
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=QPoint(int(x1), int(y1)))


def _import(window, path):
    tracks = window.import_files([path])
    assert len(tracks) == 1
    return tracks[0]


def test_import_select_job_take_undo(window, qtbot, shared):
    path = shared / "audio" / "lmms_break01.ogg"
    info = sf.info(str(path))
    track = _import(window, path)
    proj = window.doc.project
    clip = track.clips[0]
    assert clip.start == 0
    assert clip.length == round(info.frames * proj.sample_rate / info.samplerate)
    assert window.timeline.headers.tracks[track.id].track_name == track.name

    # select a range on the track with the mouse (snap off for exact pixels)
    window.actions_by_name["snap"].setChecked(False)
    window.on_snap()
    canvas = window.canvas
    window.timeline.geom.samples_per_px = 441.0  # 100 px per second
    window.timeline.geom.origin = 0.0
    row = canvas.rows[0]
    y = row.y + row.h // 2
    _drag(qtbot, canvas, 50, y, 150, y)
    sel = canvas.selection
    assert sel.track_ids == [track.id]
    assert abs(sel.start - 22050) <= 441 and abs(sel.end - 66150) <= 441

    # the task dialog's forms come from the task's fields and the fake engine's schema
    dlg = window.open_task_dialog("restyle", "fake-builtin", values={"prompt": "brighter", "variations": 1})
    assert "frequency" in dlg.params_form.widgets and "crash" not in dlg.params_form.widgets
    assert {"prompt", "strength", "variations"} <= set(dlg.fields_form.widgets)
    dlg.params_form.set_values({"frequency": 330.0})
    with qtbot.waitSignal(window.jobs().job_finished, timeout=60000) as blocker:
        dlg._ok()
    job_id, state, message = blocker.args
    assert state == "done", message
    row_widget = window.jobs_panel.rows[job_id]
    assert row_widget.bar.value() == 1000

    # the take appears as a lane under the track, over exactly the selection
    assert len(track.take_groups) == 1
    g = track.take_groups[0]
    assert (g.start, g.end) == (sel.start, sel.end)
    take = g.takes[0]
    assert g.active_take_id == take.id
    assert take.provenance["engine_id"] == "fake"
    assert take.provenance["params"]["frequency"] == 330.0
    assert take.clips[0].start == sel.start and take.clips[0].length == sel.end - sel.start
    kinds = [r.kind for r in canvas.rows]
    assert kinds == ["track", "take"]

    # inspector shows its provenance after a click on the take lane
    take_row = canvas.rows[1]
    x_mid = window.timeline.geom.x_of((g.start + g.end) // 2)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(x_mid), take_row.y - canvas.vscroll + 10))
    assert canvas.selected_take == take.id
    assert window.inspector.fields["Engine"].startswith("fake")
    assert window.inspector.fields["Licence"] == "GPL-3.0-or-later"
    assert '"frequency": 330.0' in window.inspector.fields["Parameters"]

    # switch to the original and back, then undo everything the job added
    window.on_take_original()
    assert g.active_take_id is None
    window.on_undo()
    assert g.active_take_id == take.id
    window.on_undo()
    assert track.take_groups == []
    assert [r.kind for r in canvas.rows] == ["track"]
    assert take.clips[0].media_id not in proj.media


def test_separate_offline_stems_aligned(window, qtbot, shared):
    track = _import(window, shared / "multitrack" / "blupi001" / "mixture.flac")
    proj = window.doc.project
    sr = proj.sample_rate
    a, b = 2 * sr, 5 * sr
    from ui.timeline.canvas import TimeSelection

    window.canvas.selection = TimeSelection(a, b, [track.id])
    dlg = window.open_task_dialog("separate")
    assert dlg.current_model().id == "htdemucs"  # the real default: not installed here
    dlg.model_box.setCurrentIndex(dlg.model_box.findData("dsp-hpss-centre"))
    with qtbot.waitSignal(window.jobs().job_finished, timeout=120000) as blocker:
        dlg._ok()
    _, state, message = blocker.args
    assert state == "done", message
    stems = [t for t in proj.tracks if t.parent_id == track.id]
    assert len(stems) >= 2
    assert not track.mute and track.take_groups[0].active_take().clips == []  # quiet in the range only
    total = None
    for t in stems:
        ((c, _, _),) = proj.sounding_clips(t)  # each stem plays as a take with its provenance
        assert c.start == a and c.length == b - a  # aligned with the selection
        assert t.provenance["stem"] in t.name.lower()
        audio = window.doc.pool.read(proj.media[c.media_id])
        total = audio if total is None else total + audio
    src = window.doc.pool.read(proj.media[track.clips[0].media_id], a, b - a)
    # stems of the DSP separator sum back to the input (it keeps a residual)
    assert np.max(np.abs(total - src)) < 1e-3
    # stems are drawn indented under their source
    depth = {r.track.id: r.depth for r in window.canvas.rows if r.kind == "track"}
    assert all(depth[t.id] == 1 for t in stems)
    window.on_undo()
    assert [t for t in proj.tracks if t.parent_id == track.id] == []
    assert not track.mute and track.take_groups == []


def test_failed_job_says_what_to_do(window, qtbot, shared):
    track = _import(window, shared / "audio" / "lmms_kick01.ogg")
    from studio.tasks import Target

    bridge = window.jobs()
    with qtbot.waitSignal(bridge.job_finished, timeout=60000) as blocker:
        jid = bridge.submit(window.doc, "separate", Target(track.id), {"model": "fake-builtin", "stems": ["vocals"]})
    assert blocker.args[0] == jid
    _, state, message = blocker.args
    assert state == "failed"
    assert "vocals" in message and "What to do:" in message
    assert window.jobs_panel.rows[jid].info.text() == message
    assert [t.name for t in window.doc.project.tracks] == [track.name]  # nothing added


def test_cancel_job(window, qtbot, shared):
    track = _import(window, shared / "audio" / "lmms_flute01.ogg")
    from studio.tasks import Target

    bridge = window.jobs()
    jid = window.submit_task("restyle", Target(track.id), {"model": "fake-builtin", "prompt": "slow",
                                                            "params": {"delay_per_chunk": 0.5, "chunk_seconds": 0.25}})
    assert jid
    qtbot.waitUntil(lambda: bridge.states.get(jid) == "running", timeout=30000)
    with qtbot.waitSignal(bridge.job_finished, timeout=30000) as blocker:
        window.jobs_panel.rows[jid].cancel.click()
    assert blocker.args[1] == "cancelled"
    assert track.take_groups == []
