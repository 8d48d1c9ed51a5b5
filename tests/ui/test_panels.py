"""Engine forms, analysis/transcription through the job system, models window, never-lose-work
prompts, recent projects, timeline geometry."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox

from ui.timeline.geometry import MAX_SAMPLES_PER_PX, TimelineGeometry, grid_step_ticks, snap_sample


def test_schema_form_widgets_and_values(qtbot):
    from ui.engine_form import SchemaForm

    schema = {"type": "object", "properties": {
        "shifts": {"type": "integer", "default": 2, "minimum": 0, "maximum": 10, "title": "Shifts"},
        "overlap": {"type": "number", "default": 0.25, "minimum": 0, "maximum": 0.9},
        "stems": {"type": "string", "enum": ["vocals", "drums"], "default": "drums"},
        "fast": {"type": "boolean", "default": True},
        "bands": {"type": "array", "items": {"type": "number"}, "default": [100.0, 1000.0]},
        "prompt": {"type": "string", "default": "warm pads"},
        "segment": {"type": ["number", "null"], "default": None, "exclusiveMinimum": 0},
        "crash": {"type": "boolean", "default": False, "description": "Test hook: kill the host."},
    }}
    form = SchemaForm(schema)
    qtbot.addWidget(form)
    assert set(form.widgets) == {"shifts", "overlap", "stems", "fast", "bands", "prompt", "segment"}
    assert form.values() == {"shifts": 2, "overlap": 0.25, "stems": "drums", "fast": True,
                             "bands": [100.0, 1000.0], "prompt": "warm pads", "segment": None}
    form.widgets["segment"][1].setText("7.5")
    assert form.values()["segment"] == 7.5
    form.widgets["shifts"][1].setValue(99)  # clamped by the schema's maximum
    form.set_values({"stems": "vocals", "bands": [50, 500, 5000]})
    v = form.values()
    assert v["shifts"] == 10 and v["stems"] == "vocals" and v["bands"] == [50.0, 500.0, 5000.0]
    form.widgets["bands"][1].setText("1, x")
    with pytest.raises(ValueError, match="bands"):
        form.values()


def test_every_task_gets_a_dialog_whose_defaults_validate(window):
    from studio.tasks import all_tasks
    from ui.task_dialog import TaskDialog

    for task in all_tasks():
        dlg = TaskDialog(task, "test", window, values={"prompt": "warm pads", "voice": __file__})
        assert dlg.model_box.count() == len(task.models())
        for i in range(dlg.model_box.count()):
            dlg.model_box.setCurrentIndex(i)
            req = dlg.request()
            assert req["model"] == task.models()[i].id
            task.resolve(req)  # every form's defaults (plus a prompt) validate against the schema
        dlg.deleteLater()


def test_separation_dialog_offers_every_model_and_a_stem_choice(window, qtbot):
    """htdemucs, htdemucs_ft, htdemucs_6s and the DSP fallback with their state; picking
    htdemucs_6s and two stems gives exactly that JobSpec."""
    from PyQt6.QtCore import Qt

    from studio.jobs.manager import JobManager
    from studio.jobs.tasks import prepare_job
    from studio.tasks import Target, get_task
    from ui.task_dialog import TaskDialog

    (track,) = window.import_files([__import__("pathlib").Path(__file__).parents[2].parent / "shared" / "audio" /
                                    "lmms_cello01.ogg"])
    dlg = TaskDialog(get_task("separate"), "test", window)
    qtbot.addWidget(dlg)
    ids = [dlg.model_box.itemData(i) for i in range(dlg.model_box.count())]
    assert {"htdemucs", "htdemucs_ft", "htdemucs_6s", "dsp-hpss-centre"} <= set(ids)
    texts = {dlg.model_box.itemData(i): dlg.model_box.itemText(i) for i in range(dlg.model_box.count())}
    assert "MIT" in texts["htdemucs_6s"] and ("missing" in texts["htdemucs_6s"] or "installed" in texts["htdemucs_6s"])
    assert "built-in" in texts["dsp-hpss-centre"]
    dlg.model_box.setCurrentIndex(ids.index("htdemucs_6s"))
    kind, stems = dlg.fields_form.widgets["stems"]
    assert kind == "array_enum"
    names = [stems.item(i).text() for i in range(stems.count())]
    assert names == ["drums", "bass", "other", "vocals", "guitar", "piano"]
    for i, n in enumerate(names):
        if n in ("guitar", "piano"):
            stems.item(i).setCheckState(Qt.CheckState.Checked)
    dlg.params_form.widgets["shifts"][1].setValue(2)
    req = dlg.request()
    assert req["model"] == "htdemucs_6s" and req["stems"] == ["guitar", "piano"] and req["params"]["shifts"] == 2
    with JobManager() as m:
        _t, _r, spec, _wd = prepare_job(m, window.doc, "separate", Target(track.id), req)
    assert (spec.engine_id, spec.model_id, spec.stems) == ("htdemucs", "htdemucs_6s", ["guitar", "piano"])
    assert spec.params["shifts"] == 2 and spec.region == window.doc.project.audio_track_span(track.id)
    dlg.set_model_path(str(__import__("pathlib").Path(__file__).parent))
    assert dlg.request()["model_path"].endswith("ui")


def test_analyze_sets_grid_and_transcribe_adds_midi(window, qtbot, shared):
    from studio.model import edits
    from studio.model.timebase import TempoMap
    from studio.tasks import Target

    (track,) = window.import_files([shared / "audio" / "lmms_piano01.ogg"])
    window.doc.push(edits.SetTempoMap(TempoMap.constant(90.0)))
    bridge = window.jobs()
    with qtbot.waitSignal(bridge.job_finished, timeout=60000) as blocker:
        bridge.submit(window.doc, "analyze", Target(track.id), {"model": "fake-builtin"})
    assert blocker.args[1] == "done", blocker.args[2]
    assert window.doc.project.tempo_map.tempos[0].bpm == 90.0  # "no": only a report
    with qtbot.waitSignal(bridge.job_finished, timeout=60000) as blocker:
        bridge.submit(window.doc, "analyze", Target(track.id), {"model": "fake-builtin", "set_grid": "constant"})
    assert blocker.args[1] == "done", blocker.args[2]
    assert "Finished" in bridge.messages[list(bridge.messages)[0]]
    window.on_undo()
    assert window.doc.project.tempo_map.tempos[0].bpm == 90.0

    with qtbot.waitSignal(bridge.job_finished, timeout=60000) as blocker:
        bridge.submit(window.doc, "transcribe", Target(track.id), {"model": "fake-builtin",
                                                                   "params": {"frequency": 261.63}})
    assert blocker.args[1] == "done", blocker.args[2]
    midi = [t for t in window.doc.project.tracks if t.kind == "midi"]
    assert len(midi) == 1 and midi[0].parent_id == track.id
    notes = midi[0].clips[0].notes
    assert notes and {n.pitch for n in notes} == {60}


def test_models_window_lists_licences(qtbot, tmp_path):
    from engines.models import ModelManager
    from engines.registry import list_models
    from ui.models_window import COLUMNS, ModelsWindow

    win = ModelsWindow(manager=ModelManager(tmp_path / "models"))
    qtbot.addWidget(win)
    assert win.table.rowCount() == len(list_models())
    lic = COLUMNS.index("Licence")
    status = COLUMNS.index("Status")
    for i, rec in enumerate(list_models()):
        assert win.table.item(i, lic).text() == rec.licence
        assert win.table.item(i, status).text() in ("built-in", "missing", "installed", "partial")
    assert not win.import_from(list_models()[0].id, str(tmp_path / "nowhere")) or list_models()[0].builtin


def test_unsaved_prompt_autosave_recovery_and_recent(window, qtbot, monkeypatch, tmp_path, shared):
    from studio.io.settings import load_settings
    from ui.main_window import MainWindow

    window.import_files([shared / "audio" / "lmms_kick01.ogg"])
    assert window.doc.is_dirty and window.windowTitle().startswith("*")
    path = window.doc.path
    # autosave writes a recovery file; the session "crashes" (never saved, lock left)
    assert window.doc.autosave() is not None
    # a second window opening the bundle is offered the recovery
    asked = []

    def answer(*a, **k):
        asked.append(a[2] if len(a) > 2 else "")
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    other = MainWindow(None, ask=True)
    qtbot.addWidget(other)
    assert other.open_path(path)
    assert asked and "Recover" in asked[0] or "recover" in asked[0].lower()
    assert [t.name for t in other.doc.project.tracks] == ["lmms_kick01"]
    assert other.doc.is_dirty
    assert str(path.resolve()) in load_settings().recent_projects
    # unsaved-changes prompt at close: Cancel keeps the window open
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    assert other.maybe_save() is False
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Save)
    assert other.maybe_save() is True and not other.doc.is_dirty
    other.ask = False
    other.close()


def test_geometry_zoom_keeps_anchor_and_snaps():
    from studio.model.timebase import TempoMap

    g = TimelineGeometry(48000, samples_per_px=480.0, origin=48000.0)
    anchor = g.sample_at(300)
    g.zoom(0.5, 300)
    assert g.samples_per_px == 240.0 and abs(g.sample_at(300) - anchor) <= 1
    g.zoom(1e9, 0)
    assert g.samples_per_px == MAX_SAMPLES_PER_PX  # the coarsest zoom fits a 24 h song
    g.fit(48000 * 60, 1200)
    assert g.origin == 0 and g.samples_per_px == 2400.0
    tm = TempoMap.constant(120.0)
    step = grid_step_ticks(tm, 48000, 100.0)  # 100 samples/px: 1/16 = 6000 samples = 60 px
    assert step == 240
    assert snap_sample(6100, tm, 48000, 240) == 6000
    assert grid_step_ticks(tm, 48000, 1 << 17) >= 3840 * 16


def test_models_window_download_progress_arrives_on_ui_thread(qtbot, tmp_path):
    import threading

    from engines.records import ModelFile, ModelRecord
    from ui.models_window import ModelsWindow

    rec = ModelRecord(id="tiny", engine="fake", title="Tiny", licence="MIT",
                      files=(ModelFile("w.bin", "0" * 64, 10, "http://127.0.0.1:9/w.bin"),))
    seen_threads = []

    class Manager:
        root = tmp_path

        records = [rec]

        def status(self, r):
            return "missing"

        def download(self, r, progress=None):
            seen_threads.append(threading.current_thread() is threading.main_thread())
            for done in (0, 5, 10):
                progress(done, 10, "w.bin")
            return tmp_path / r.id

    win = ModelsWindow(manager=Manager())
    qtbot.addWidget(win)
    values = []
    win.bar.valueChanged.connect(values.append)
    win.table.selectRow(0)
    win.download_selected()
    qtbot.waitUntil(lambda: "Downloaded tiny" in win.status.text(), timeout=10000)
    assert seen_threads == [False]  # the download ran off the UI thread
    assert 1000 in values or 500 in values


def test_analyze_real_engine_sets_grid_from_track(window, qtbot, shared):
    """The offline music-analysis engine on the Warzone 2100 excerpt (tagged 80 BPM)."""
    from studio.tasks import Target

    (track,) = window.import_files([shared / "audio" / "uncertain_future_30s.flac"])
    bridge = window.jobs()
    with qtbot.waitSignal(bridge.job_finished, timeout=240000) as blocker:
        bridge.submit(window.doc, "analyze", Target(track.id), {"set_grid": "constant"})
    assert blocker.args[1] == "done", blocker.args[2]
    tm = window.doc.project.tempo_map
    assert abs(tm.tempos[-1].bpm - 80.0) < 2.0
    assert window.tempo_label.text().startswith("80.")


def test_cli_commands_import_without_qt():
    """The launcher imports ui.cli_commands to build its parser: no Qt at module level."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name.startswith('PyQt6'):\n"
            "        raise ImportError('Qt imported: ' + name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            "import argparse, ui.cli_commands\n"
            "p = argparse.ArgumentParser(); ui.cli_commands.register(p.add_subparsers())\n"
            "a = p.parse_args(['screenshot', 'P.seedproj', 'o.png'])\n"
            "print(a.func.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cmd_screenshot"


@pytest.mark.parametrize("task", ["generate", "extend", "inpaint", "restyle"])
def test_generation_tasks_make_takes(window, qtbot, shared, task):
    from studio.tasks import Target

    (track,) = window.import_files([shared / "audio" / "lmms_house_loop01.ogg"])
    sr = window.doc.project.sample_rate
    a, b = sr // 2, 3 * sr // 2
    bridge = window.jobs()
    target = Target(start=a, end=b) if task == "generate" else Target(track.id, a, b)
    request = {"model": "fake-builtin", "prompt": "warm pads", "seed": 7, "variations": 2,
               "params": {"frequency": 220.0}}
    if task == "extend":
        request["seconds"] = 1.0
    with qtbot.waitSignal(bridge.job_finished, timeout=60000) as blocker:
        bridge.submit(window.doc, task, target, request)
    assert blocker.args[1] == "done", blocker.args[2]
    if task == "generate":
        track = window.doc.project.tracks[-1]
        assert track.name == "Generated: warm pads"
    (g,) = track.take_groups
    assert len(g.takes) == 2 and g.active_take_id == g.takes[0].id
    take = g.takes[0]
    assert take.provenance["task"] == task and take.provenance["seed"] == 7
    if task == "extend":
        assert g.start == b and g.end == b + sr  # one second after the region
    else:
        assert (g.start, g.end) == (a, b)
    assert [r.kind for r in window.canvas.rows if r.track.id == track.id] == ["track", "take", "take"]


def test_opening_a_project_frees_the_previous_one_and_freezes_the_heap(window, tmp_path, qtbot):
    import gc
    import weakref

    from studio.model import edits
    from studio.model.project import Track
    from ui import heap
    from ui.document import Document

    first = window.doc
    a = Document.new(tmp_path / "A.seedproj", 44100)
    window.set_document(a)
    a.push(edits.AddTrack(Track(name="Old")))
    ref = weakref.ref(a.project)
    b = Document.new(tmp_path / "B.seedproj", 48000)
    window.set_document(b)
    assert gc.get_freeze_count() > 1000  # the live objects are in the permanent generation
    a.close()
    del a
    qtbot.wait(50)  # deleteLater of the old headers
    heap.settle()
    assert ref() is None  # nothing of the closed project stays frozen
    window.set_document(first)
    b.close()


def test_tempo_dialog_sets_tempo_and_meter_as_one_undo_step(window, qtbot):
    from studio.model.timebase import PPQ, TempoMap

    proj = window.doc.project
    assert window.tempo_label.text().startswith("120.0 BPM")
    window.timeline.set_playhead(proj.tempo_map.tick_to_sample(8 * 4 * PPQ + 100, proj.sample_rate))  # in bar 9
    dlg = window.open_tempo_dialog()
    assert dlg.bar.value() == 9 and dlg.bpm.value() == 120.0
    dlg.from_bar.setChecked(True)
    dlg.bpm.setValue(90.0)
    dlg.numerator.setValue(3)
    dlg.accept()
    tm = window.doc.project.tempo_map
    assert [(t.tick, t.bpm) for t in tm.tempos] == [(0, 120.0), (32 * PPQ, 90.0)]
    assert [(s.tick, s.numerator) for s in tm.signatures] == [(0, 4), (32 * PPQ, 3)]
    assert "90.0 BPM  3/4" in window.tempo_label.text()  # the display follows the playhead's bar
    window.doc.undo_stack.undo()
    assert window.doc.project.tempo_map == TempoMap.constant(120.0)
    # whole song, opened by clicking the tempo display
    qtbot.mouseClick(window.tempo_label, Qt.MouseButton.LeftButton)
    dlg = window.findChildren(type(dlg))[-1]
    dlg.whole.setChecked(True)
    dlg.bpm.setValue(98.5)
    dlg.accept()
    assert window.doc.project.tempo_map == TempoMap.constant(98.5, 4, 4)


def test_edit_menu_names_the_next_undo_and_redo_steps(window):
    from studio.model import edits
    from studio.model.project import Track

    window.doc.push(edits.AddTrack(Track(name="Pads")))
    window.menus["Edit"].aboutToShow.emit()
    undo, redo = window.actions_by_name["undo"], window.actions_by_name["redo"]
    assert undo.text() == "&Undo Add track 'Pads'"
    assert undo.isEnabled() and not redo.isEnabled() and redo.text() == "&Redo"
    window.doc.undo_stack.undo()
    assert redo.isEnabled() and not undo.isEnabled()  # enabled states follow at once
    window.menus["Edit"].aboutToShow.emit()
    assert redo.text().startswith("&Redo ") and undo.text() == "&Undo"


def test_preferences_save_the_render_tail(window):
    from studio.io.settings import load_settings
    from ui.preferences import PreferencesDialog

    dlg = PreferencesDialog(window.settings, window)
    assert dlg.tail.value() == 2.0
    dlg.tail.setValue(4.5)
    assert dlg.apply() is not None
    assert load_settings().render_tail_s == 4.5
