"""The generate flow in the real window: playhead on bar 3, Engines > Generate…, the dialog
from the request schema, the job in the engine host, N takes in the take lanes on a new
track at exactly bar 3, audition of the second take, undo. The fake engine stands in for
ACE-Step here (the ACE-Step engine has its own tests with a tiny real pipeline)."""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, Qt


def test_generate_takes_audition_undo(window, qtbot, shared):
    from studio.model import edits
    from studio.model.timebase import TempoMap
    from ui.playback import PlaybackController

    window.import_files([shared / "audio" / "lmms_house_loop01.ogg"])
    proj = window.doc.project
    window.doc.push(edits.SetTempoMap(TempoMap.constant(97.0, 3, 4)))
    sr, tm = proj.sample_rate, proj.tempo_map
    bar3 = tm.tick_to_sample(tm.bar_to_tick(2), sr)
    window.timeline.set_playhead(bar3)
    window.canvas.playhead = bar3
    n_tracks = len(proj.tracks)

    dlg = window.open_task_dialog("generate", "fake-builtin")
    assert dlg.current_model().id == "fake-builtin"
    dlg.fields_form.set_values({"prompt": "glassy arpeggio", "bars": 2, "variations": 3})
    dlg.seed_box.setValue(11)
    with qtbot.waitSignal(window.jobs().job_finished, timeout=60000) as blocker:
        dlg._ok()
    assert blocker.args[1] == "done", blocker.args[2]

    assert len(proj.tracks) == n_tracks + 1
    track = proj.tracks[-1]
    assert track.name == "Generated: glassy arpeggio"
    (group,) = track.take_groups
    # 2 bars of 3/4 at 97 BPM from bar 3, exactly
    assert group.start == bar3 and group.end == tm.tick_to_sample(tm.bar_to_tick(4), sr)
    assert len(group.takes) == 3 and group.active_take_id == group.takes[0].id
    assert [tk.provenance["variation"] for tk in group.takes] == [1, 2, 3]
    assert {tk.provenance["seed"] for tk in group.takes} == {11}
    cond = group.takes[0].provenance["conditioning"]  # tempo, meter and prompt from the project and the form
    assert cond["bpm"] == 97.0 and cond["time_signature"] == "3/4" and cond["prompt"] == "glassy arpeggio"
    rows = [r for r in window.canvas.rows if r.track.id == track.id]
    assert [r.kind for r in rows] == ["track", "take", "take", "take"]

    # click the second take lane, audition it: it becomes the playing take and its audio plays
    window.timeline.geom.origin = 0.0
    window.canvas.update()
    lane = rows[2]
    x = window.timeline.geom.x_of((group.start + group.end) // 2)
    window.canvas.vscroll = 0
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(x), lane.y - window.canvas.vscroll + 5))
    assert window.canvas.selected_take == group.takes[1].id
    blocks = []

    class Sink:
        def write(self, a):
            blocks.append(np.array(a))

        def close(self):
            pass

    window.playback = PlaybackController(window, sink_factory=lambda rate: Sink())
    window.playback.set_document(window.doc)
    window.on_take_audition()
    assert group.active_take_id == group.takes[1].id
    qtbot.waitUntil(lambda: sum(b.shape[1] for b in blocks) >= group.end - group.start, timeout=30000)
    window.playback.stop()
    played = np.concatenate(blocks, axis=1)[:, : group.end - group.start]
    clip = group.takes[1].clips[0]
    take_audio = window.doc.pool.read(proj.media[clip.media_id])
    mix_others = np.zeros_like(played)
    from studio.audio.render import render_mix

    others = [t.id for t in proj.tracks if t.id != track.id]
    mix_others = render_mix(proj, window.doc.pool, group.start, group.end, track_ids=others)
    assert np.abs(played - (mix_others + take_audio)).max() < 1e-5

    # undo the audition's take switch, then the whole generate step
    window.on_undo()
    assert group.active_take_id == group.takes[0].id
    window.on_undo()
    assert len(proj.tracks) == n_tracks


def test_the_dialog_offers_lanes_tracks_and_clips_as_controls(window, shared):
    from studio.model import edits
    from studio.model.project import ControlLane
    from studio.tasks import Target, get_task
    from ui.task_dialog import TaskDialog

    (track,) = window.import_files([shared / "audio" / "lmms_flute01.ogg"])
    (midi,) = window.import_files([shared / "midi" / "blupi_music000.mid"])[:1]
    window.doc.push(edits.SetControlLane(track.id, "dynamics", ControlLane("dynamics", [[0, -30.0], [44100, -6.0]])))
    target = Target(track.id, 0, 44100)
    dlg = TaskDialog(get_task("inpaint"), "test", window, values={"prompt": "x"}, project=window.doc.project,
                     target=target)
    box, _ = dlg.controls.rows["dynamics"]
    sources = [box.itemData(i) for i in range(box.count())]
    assert sources[:2] == [None, "lane"] and f"track:{track.id}" in sources
    assert any(s and s.startswith("clip:") for s in sources)
    dlg.controls.set_source("dynamics", "lane", 1.5)
    dlg.controls.set_source("melody", f"track:{track.id}")
    req = dlg.request()
    assert req["controls"] == {"dynamics": {"source": "lane", "strength": 1.5},
                               "melody": {"source": f"track:{track.id}", "strength": 1.0}}
    get_task("inpaint").resolve(req)
    dlg.deleteLater()


def test_the_inspector_shows_each_takes_adherence(window):
    from ui.inspector import adherence_lines

    prov = {"output": "take2", "extra": {
        "adherence": {"melody": {"metric": "accuracy", "value": 0.8, "takes": {"take1": 0.7, "take2": 0.9}},
                      "dynamics": {"metric": "pearson_r", "value": 0.97, "takes": {"take1": 0.97, "take2": None}}},
        "adherence_unguided": {"melody": {"value": 0.3, "takes": {"take1": 0.2, "take2": 0.4}}}}}
    assert adherence_lines(prov) == [("Melody accuracy", "0.90 (without the control: 0.40)")]
    prov["output"] = "take1"
    assert adherence_lines(prov) == [("Melody accuracy", "0.70 (without the control: 0.20)"),
                                     ("Dynamics r", "0.97")]
