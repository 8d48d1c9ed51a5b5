"""The main window: menus, toolbar and transport, the arrange view, the jobs panel and the
inspector. Handlers are the ``on_<action>`` methods named in :mod:`ui.actions`.

The window owns no project state of its own: it shows a :class:`ui.document.Document`
and pushes :mod:`studio.model.edits` commands on its undo stack. Long work (engines) runs in
the job system; the window only listens to queued signals from :mod:`ui.qt_bridge`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox

from studio.model.project import AudioClip, MidiClip, Track
from ui import actions as act_table
from ui import heap
from ui.tempo_dialog import ClickLabel, TempoDialog
from ui.timeline.view import TimelineView

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Seed Studio's main window.

    Args:
        doc: the :class:`~ui.document.Document` to show (None: an empty window).
        settings: :class:`studio.io.settings.Settings` (loaded when None).
        jobs: a :class:`ui.qt_bridge.JobsBridge` (created lazily when None).
        ask: when False, never show modal prompts (tests, screenshots); answers default.
    """

    def __init__(self, doc=None, settings=None, jobs=None, *, ask: bool = True, parent=None):
        super().__init__(parent)
        from studio.io.settings import load_settings

        self.settings = settings if settings is not None else load_settings()
        self.ask = ask
        self.doc = None
        self._jobs = jobs
        self.setWindowTitle("Seed Studio")
        self.resize(1600, 950)
        self.actions_by_name = act_table.create_actions(self)
        self._build_menus()
        self._build_toolbar()
        self.timeline = TimelineView(None, self) if doc is None else TimelineView(doc, self)
        self.setCentralWidget(self.timeline)
        self.timeline.canvas.selection_changed.connect(self._on_selection)
        self.timeline.canvas.clip_activated.connect(self._on_clip_activated)
        self.timeline.canvas.take_selected.connect(self._on_take_selected)
        self.timeline.canvas.drag_out_requested.connect(self._drag_out)
        self.timeline.canvas.files_dropped.connect(self._on_files_dropped)
        self.timeline.playhead_moved.connect(self._on_playhead)
        self._build_docks()
        self.statusBar().showMessage("Ready")
        self.playback = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self._autosave)
        interval = int(getattr(self.settings, "autosave_interval_s", 60) or 0)
        if interval > 0:
            self.autosave_timer.start(interval * 1000)
        self.actions_by_name["snap"].setChecked(True)
        if doc is not None:
            self.set_document(doc)
        self._update_actions()

    # -- building ---------------------------------------------------------------------
    def _build_menus(self) -> None:
        menus = {name: self.menuBar().addMenu("&" + name) for name in act_table.MENUS}
        menus["Edit"].aboutToShow.connect(self._label_undo_redo)
        self.recent_menu = None
        for name, menu, *_ in act_table.ACTIONS:
            if name == "import_files":
                self.recent_menu = menus["File"].addMenu("Open &Recent")
                self.recent_menu.aboutToShow.connect(self._fill_recent)
                menus["File"].addSeparator()
            if name in ("quit", "cut", "zoom_in", "models", "add_control_melody", "take_delete", "play", "separate"):
                menus[menu].addSeparator()
            menus[menu].addAction(self.actions_by_name[name])
        self.menus = menus

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Transport")
        tb.setObjectName("Transport")
        tb.setMovable(False)
        for name in act_table.TOOLBAR:
            if name is None:
                tb.addSeparator()
                continue
            tb.addAction(self.actions_by_name[name])
        tb.addSeparator()
        self.time_label = QLabel("1.1.1   00:00.000", self)
        self.time_label.setObjectName("TransportTime")
        tb.addWidget(self.time_label)
        self.tempo_label = ClickLabel("", self)
        self.tempo_label.setObjectName("TransportTime")
        self.tempo_label.setToolTip("Tempo and meter at the playhead (click to change)")
        self.tempo_label.clicked.connect(self.on_tempo)
        tb.addWidget(self.tempo_label)
        self.toolbar = tb

    def _build_docks(self) -> None:
        from ui.inspector import Inspector
        from ui.jobs_panel import JobsPanel
        from ui.mixer_panel import MixerPanel

        self.inspector = Inspector(self)
        self.inspector.error.connect(self._show_status)
        dock = QDockWidget("Inspector", self)
        dock.setObjectName("InspectorDock")
        dock.setWidget(self.inspector)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.inspector_dock = dock
        self.jobs_panel = JobsPanel(self)
        jd = QDockWidget("Jobs", self)
        jd.setObjectName("JobsDock")
        jd.setWidget(self.jobs_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, jd)
        self.jobs_dock = jd
        self.mixer = MixerPanel(self)
        md = QDockWidget("Mixer", self)
        md.setObjectName("MixerDock")
        md.setWidget(self.mixer)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, md)
        self.tabifyDockWidget(jd, md)  # Jobs | Mixer, full width under the arrangement
        jd.raise_()
        md.hide()
        md.visibilityChanged.connect(self._mixer_visibility)
        self.mixer.over_reset.connect(self._reset_over)
        self.mixer_dock = md
        self.meter_timer = QTimer(self)
        self.meter_timer.setInterval(33)
        self.meter_timer.timeout.connect(self._update_meters)
        self.resizeDocks([dock], [280], Qt.Orientation.Horizontal)
        self.resizeDocks([jd], [96], Qt.Orientation.Vertical)

    # -- document -------------------------------------------------------------------------
    def set_document(self, doc) -> None:
        """Show ``doc`` (the previous one is closed by the caller)."""
        self.doc = doc
        self.timeline.set_document(doc)
        doc.changed.connect(self._on_changed)
        doc.dirty_changed.connect(lambda _d: self._update_title())
        self.jobs_panel.set_document(doc)
        self.mixer.set_document(doc)
        self.timeline.zoom_to_fit()
        self._update_title()
        self._update_actions()
        self._on_changed()
        if self.playback is not None:
            self.playback.set_document(doc)
        self._prime_playback()
        heap.settle()  # collect the previous project now, keep full GC passes out of frame time

    def _update_title(self) -> None:
        if self.doc is None:
            self.setWindowTitle("Seed Studio")
            return
        star = "*" if self.doc.is_dirty else ""
        self.setWindowTitle(f"{star}{self.doc.project.name} — Seed Studio")

    def _on_changed(self) -> None:
        self._update_actions()
        self._update_tempo_label()
        self._on_selection()
        self.mixer.refresh()

    def on_tempo(self) -> None:
        self.open_tempo_dialog()

    def open_tempo_dialog(self) -> TempoDialog | None:
        """Open the Tempo and Meter dialog (window-modal, not blocking); on OK the change
        is one SetTempoMap undo step. Returns the dialog (tests fill and accept it)."""
        if self.doc is None:
            return None
        proj = self.doc.project
        tick = proj.tempo_map.sample_to_tick(self.canvas.playhead, proj.sample_rate)
        dialog = TempoDialog(proj.tempo_map, proj.tempo_map.bar_beat_at(tick)[0], self)
        dialog.accepted.connect(lambda: self._apply_tempo(dialog))
        dialog.open()
        return dialog

    def _apply_tempo(self, dialog: TempoDialog) -> None:
        from studio.model import edits

        new = self._run(dialog.result_map)
        if new is not None and self.doc is not None and new != self.doc.project.tempo_map:
            self.doc.push(edits.SetTempoMap(new))
            self.statusBar().showMessage("Tempo and meter set (undo with Ctrl+Z)", 4000)

    def _update_tempo_label(self) -> None:
        """Tempo and meter in force at the playhead."""
        if self.doc is None:
            return
        proj = self.doc.project
        tm = proj.tempo_map
        tick = tm.sample_to_tick(self.canvas.playhead, proj.sample_rate)
        # just after a pickup bar the grid's main tempo is the interesting one
        bpm = tm.bpm_at(max(tick, tm.tempos[1].tick if len(tm.tempos) == 2 and tick == 0 else tick))
        sig = tm.signature_at(tick)
        self.tempo_label.setText(f"{bpm:.1f} BPM  {sig.numerator}/{sig.denominator}")

    def _update_actions(self) -> None:
        has = self.doc is not None
        for name in ("save", "save_as", "import_files", "export_ableton", "export_mix", "add_audio_track",
                     "add_midi_track",
                     "separate", "transcribe", "analyze", "select_all", "play", "paste"):
            self.actions_by_name[name].setEnabled(has)
        stack = self.doc.undo_stack if has else None
        a_undo, a_redo = self.actions_by_name["undo"], self.actions_by_name["redo"]
        a_undo.setEnabled(bool(stack and stack.can_undo))
        a_redo.setEnabled(bool(stack and stack.can_redo))

    def _label_undo_redo(self) -> None:
        """Name the next undo and redo steps in the Edit menu (when it opens: changing an
        action's text on every edit would relayout and repaint the whole toolbar)."""
        stack = self.doc.undo_stack if self.doc is not None else None
        a_undo, a_redo = self.actions_by_name["undo"], self.actions_by_name["redo"]
        a_undo.setText(f"&Undo {stack.undo_label}" if stack and stack.can_undo else "&Undo")
        a_redo.setText(f"&Redo {stack.redo_label}" if stack and stack.can_redo else "&Redo")

    # -- helpers ------------------------------------------------------------------------------
    @property
    def canvas(self):
        """The arrange canvas."""
        return self.timeline.canvas

    def error(self, text: str, title: str = "Seed Studio") -> None:
        """Show an error in plain words (status bar; a dialog when ``ask``). Hints that name a
        ``seed-studio models`` command point to the Models window instead (:func:`ui.hints.for_app`)."""
        from ui.hints import for_app

        text = for_app(text)
        self.statusBar().showMessage(text, 10000)
        log.info("%s", text)
        if self.ask:
            QMessageBox.warning(self, title, text)

    def _run(self, fn, *args, **kw):
        """Call ``fn``; an error raised on purpose (core or engine: ``UserError``) or by the
        file system becomes a plain-words message."""
        from engines.base import UserError

        try:
            return fn(*args, **kw)
        except (UserError, OSError) as exc:
            self.error(str(exc))
            return None

    def selected_track(self) -> Track | None:
        """The track whose header was clicked last, or None."""
        tid = self.canvas.selected_track
        if tid is None or self.doc is None:
            return None
        try:
            return self.doc.project.track(tid)
        except KeyError:
            return None

    # -- selection, playhead -----------------------------------------------------------------
    def _on_selection(self) -> None:
        sel = self.canvas.selection
        if self.doc is None:
            return
        clips = self.canvas.selected_clip_objects()
        self.actions_by_name["split"].setEnabled(bool(clips))
        for name in ("copy", "cut", "delete"):
            self.actions_by_name[name].setEnabled(bool(clips))
        self.actions_by_name["open_piano_roll"].setEnabled(any(isinstance(c, MidiClip) for _, c in clips))
        take = self.canvas.selected_take
        for name in ("take_activate", "take_audition", "take_original", "take_delete", "take_comp"):
            self.actions_by_name[name].setEnabled(take is not None)
        if take is None:
            self.inspector.show_selection(self.doc, sel, clips, self.selected_track())
        self.timeline.headers.selected = self.canvas.selected_track

    def _on_take_selected(self, take_id: str) -> None:
        try:
            track, group, take = self.doc.project.find_take(take_id)
        except KeyError:
            return
        self.inspector.show_take(self.doc, track, group, take)
        self._on_selection()

    def _on_playhead(self, sample: int) -> None:
        if self.doc is None:
            return
        proj = self.doc.project
        tick = proj.tempo_map.sample_to_tick(sample, proj.sample_rate)
        bar, beat, in_beat = proj.tempo_map.bar_beat_at(tick)
        secs = sample / proj.sample_rate
        m, s = divmod(secs, 60)
        self.time_label.setText(f"{bar + 1}.{beat + 1}.{int(in_beat * 4 // 960) + 1}   {int(m):02d}:{s:06.3f}")
        self._update_tempo_label()
        if self.playback is not None and not self.playback.is_playing:
            self.playback.seek(sample)
            self._prime_playback()

    def _on_clip_activated(self, clip_id: str) -> None:
        try:
            track, clip, _ = self.doc.project.find_clip(clip_id)
        except KeyError:
            return
        if isinstance(clip, MidiClip):
            self.open_piano_roll(clip_id)

    # -- File ----------------------------------------------------------------------------------
    def on_new(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project", str(Path.home() / "Untitled.seedproj"),
                                              "Seed Studio project (*.seedproj)")
        if not path or not self.maybe_save():
            return
        from ui.document import Document

        doc = self._run(Document.new, path, int(getattr(self.settings, "default_sample_rate", 44100)))
        if doc is not None:
            self._replace_document(doc)

    def on_open(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open project (.seedproj folder)", str(Path.home()))
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path, *, recover: bool | None = None) -> bool:
        """Open a bundle, offering crash recovery first (``recover`` given: don't ask).
        Returns True when opened."""
        from studio.io import project_io
        from ui.document import Document

        if not self.maybe_save():
            return False
        try:
            candidate = project_io.recovery_candidate(Path(path)) if recover is None else None
        except Exception:
            candidate = None
        recover = bool(recover)
        if candidate is not None and self.ask:
            answer = QMessageBox.question(
                self, "Recover unsaved work?",
                f"Seed Studio found unsaved changes to '{Path(path).name}' from a session that did not "
                "close properly. Recover them?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
            recover = answer == QMessageBox.StandardButton.Yes
        doc = self._run(Document.open, path, recover=recover)
        if doc is None:
            return False
        self._replace_document(doc)
        self._remember_recent(doc.path)
        if doc.session.media_problems:
            self.error("Some media files of this project were changed, replaced or lost:\n"
                       + "\n".join(doc.session.media_problems[:10]))
        return True

    def _replace_document(self, doc) -> None:
        if self.doc is not None:
            self.doc.close()
        self.set_document(doc)

    def _remember_recent(self, path: Path) -> None:
        from studio.io.settings import save_settings

        try:
            self.settings.add_recent(path)
            save_settings(self.settings)
        except OSError:
            pass

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in getattr(self.settings, "recent_projects", [])[:10]:
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def on_save(self) -> bool:
        if self.doc is None:
            return True
        if self._run(self.doc.save) is None:
            return False
        self._remember_recent(self.doc.path)
        self.statusBar().showMessage(f"Saved {self.doc.path.name}", 4000)
        self._update_title()
        heap.settle(full=False)
        return True

    def on_save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save project as", str(self.doc.path.parent / f"{self.doc.project.name} copy.seedproj"),
            "Seed Studio project (*.seedproj)")
        return bool(path) and self.save_as(path) is not None

    def save_as(self, path: str | Path) -> Path | None:
        """Save the project as a new bundle at ``path`` and go on working there (undo history
        kept). Returns the new bundle, or None (the message says why)."""
        if self.doc is None:
            return None
        if self.playback is not None:
            self.playback.stop()
        new = self._run(self.doc.save_as, path)
        if new is None:
            return None
        if self.playback is not None:
            self.playback.set_document(self.doc)
        self._remember_recent(new)
        self._update_title()
        self.statusBar().showMessage(f"Saved as {new.name}; you are now working in it", 6000)
        return new

    def _autosave(self) -> None:
        if self.doc is not None:
            path = self.doc.autosave()
            if path is not None:
                self.statusBar().showMessage("Autosaved", 2000)
                heap.settle(full=False)
            elif self.doc.autosave_error:
                self.statusBar().showMessage(f"Autosave failed: {self.doc.autosave_error}", 15000)

    def maybe_save(self) -> bool:
        """Ask to save unsaved changes. Returns False when the musician cancels."""
        if self.doc is None or not self.doc.is_dirty or not self.ask:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to '{self.doc.project.name}' before closing?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return self.on_save()
        return True

    def closeEvent(self, e) -> None:  # noqa: N802
        if not self.maybe_save():
            e.ignore()
            return
        if self.playback is not None:
            self.playback.stop()
        job = getattr(self, "export_job", None)
        if job is not None and not job.done:
            job.cancel()
            job.wait(10.0)
        if self._jobs is not None:
            try:
                self._jobs.shutdown()
            except Exception:
                pass
        if self.doc is not None:
            self.doc.close()
        from ui.clipboard import remove_temp_files

        remove_temp_files()  # clipboard and drag-out files
        e.accept()

    def on_quit(self) -> None:
        self.close()

    def on_import_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Import audio or MIDI", str(Path.home()),
            "Audio and MIDI (*.wav *.flac *.ogg *.mp3 *.aif *.aiff *.mid *.midi);;All files (*)")
        if paths:
            self.import_files(paths)

    def _on_files_dropped(self, paths: list, sample: int) -> None:
        if self.doc is None:
            self.statusBar().showMessage("Open or create a project first, then drop the files on it", 6000)
            return
        self.import_files(paths, start=sample)

    def import_files(self, paths, start: int | None = None) -> list:
        """Import audio/MIDI files as new tracks (one undo step per kind) at ``start``
        (timeline samples; default: the playhead, as a DAW's insert marker); an import that
        stores more than :data:`studio.limits.LARGE_IMPORT_BYTES` is confirmed first."""
        from studio.limits import LARGE_IMPORT_BYTES
        from studio.media.importing import AUDIO_SUFFIXES, import_files, plan_import
        from studio.media.integrity import human_bytes

        audio = [str(p) for p in paths if Path(p).suffix.lower() in AUDIO_SUFFIXES]
        plans = self._run(plan_import, self.doc.session, audio) if audio else []
        if plans is None:
            return []
        total = sum(p.stored_bytes for p in plans)
        if total > LARGE_IMPORT_BYTES and self.ask and QMessageBox.question(
                self, "Large import", f"This import stores {human_bytes(total)} in the project's media folder "
                                      "(audio is kept as 32-bit float at the project rate). Import it?",
        ) != QMessageBox.StandardButton.Yes:
            return []
        notes: list[str] = []
        at = int(self.canvas.playhead if start is None else start)
        tracks = self._run(import_files, self.doc.session, [str(p) for p in paths], start=at, notes=notes)
        if tracks:
            from studio.model.timebase import format_position

            proj = self.doc.project
            where = format_position(proj.tempo_map, proj.tempo_map.sample_to_tick(at, proj.sample_rate))
            self.statusBar().showMessage(" ".join([f"Imported {len(tracks)} track(s) at {where}."] + notes), 10000)
            if len(self.doc.project.tracks) == len(tracks):
                self.timeline.zoom_to_fit()
        return tracks or []

    def on_export_ableton(self) -> None:
        self.open_export_dialog("stems")

    def on_export_mix(self) -> None:
        self.open_export_dialog("mix")

    def open_export_dialog(self, kind: str = "stems"):
        """The Export dialog (:class:`ui.export_dialog.ExportDialog`) with every option of the
        CLI; it runs the export in the background with progress and cancel. Returns it."""
        from ui.export_dialog import ExportDialog

        if self.doc is None:
            return None
        dlg = ExportDialog(self, kind)
        self._export_dialog = dlg
        if self.ask:
            dlg.open()
        return dlg

    def export_ableton(self, folder: str | Path, **options):
        """Start exporting the Ableton hand-off folder (aligned stems, MIDI, mix, manifest)
        into ``folder`` with the Preferences' tail; returns the running
        :class:`~ui.export_dialog.ExportJob` (``job.wait()``; ``job.report``), or None."""
        from ui.export_dialog import ExportOptions

        return self.start_export(ExportOptions("stems", Path(folder), **self._with_tail(options)))

    def export_mix(self, path: str | Path, **options):
        """Start rendering the mix into ``path``; returns the running ExportJob, or None."""
        from ui.export_dialog import ExportOptions

        return self.start_export(ExportOptions("mix", Path(path), **self._with_tail(options)))

    def _with_tail(self, options: dict) -> dict:
        """``options`` with the default tail filled in: the Preferences' tail when the export
        runs to the song's end, none when it has its own end (the CLI's rule,
        :func:`studio.audio.render.default_tail_s`)."""
        if options.get("tail") is None:
            options = {**options, "tail": self._tail() if options.get("end") is None else 0}
        return options

    def start_export(self, options):
        """Run an export (:class:`~ui.export_dialog.ExportOptions`) in the background; the
        end shows in the status bar, and files that went over full scale in a warning
        dialog. Returns the :class:`~ui.export_dialog.ExportJob`, or None when one runs."""
        from ui.export_dialog import ExportJob

        if self.doc is None:
            return None
        running = getattr(self, "export_job", None)
        if running is not None and not running.done:
            self.error("An export is still running; wait for it or cancel it first.")
            return None
        job = ExportJob(self.doc, options, self)
        job.progress.connect(self._export_progress)
        job.finished.connect(self._export_done)
        self.export_job = job
        job.start()
        self.statusBar().showMessage("Exporting…")
        return job

    def _export_progress(self, fraction: float) -> None:
        self.statusBar().showMessage(f"Exporting… {fraction:.0%}")

    def _export_done(self, report, error: str) -> None:
        self._export_finished(self.export_job, report, error)

    def _export_finished(self, job, report, error: str) -> None:
        from ui.export_dialog import describe_report

        if error:
            self.error(f"The export stopped: {error}")
            return
        if report is None:
            self.statusBar().showMessage("Export cancelled; nothing was written", 6000)
            return
        self.statusBar().showMessage(describe_report(report, job.options), 15000)
        warning = report.warning(app=True)
        if warning:
            self.show_clip_warning(warning)

    def show_clip_warning(self, text: str):
        """The over-full-scale warning as a (non-blocking) dialog; returns it."""
        box = QMessageBox(QMessageBox.Icon.Warning, "The export clipped", text.split("\n", 1)[0], parent=self)
        box.setInformativeText(text.split("\n", 1)[1] if "\n" in text else "")
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.clip_dialog = box
        box.open()
        return box

    def _tail(self) -> int:
        """The export render tail, samples (Preferences: render tail on export; it starts
        at :data:`studio.audio.render.DEFAULT_TAIL_S`, the CLI's default)."""
        from ui.export_dialog import tail_samples

        return tail_samples(self.settings, self.doc.project.sample_rate)

    def on_clean_media(self):
        """File > Clean Up Unused Media: remove media files that neither the project, its
        autosaves nor its undo history can bring back (asks first). Returns the
        :class:`~studio.media.integrity.CleanReport` of what was removed, or None."""
        from studio.media.integrity import clean_media, human_bytes, unused_media

        if self.doc is None:
            return None
        s = self.doc.session
        if s.readonly:
            self.error("This project is open read-only; nothing can be cleaned up.")
            return None
        found = self._run(unused_media, s.project, s.bundle, s.undo_stack)
        if found is None:
            return None
        if not found.media and not found.caches and not found.entries:
            self.statusBar().showMessage("No unused media to clean up", 4000)
            return found
        if self.ask and QMessageBox.question(
                self, "Clean up unused media",
                f"Remove {len(found.media)} media file(s) that nothing uses any more "
                f"({human_bytes(found.media_bytes + found.cache_bytes)})? Media that undo or redo may "
                "still bring back is kept. The project is saved first.") != QMessageBox.StandardButton.Yes:
            return None
        done = self._run(clean_media, s)
        if done is not None:
            self.statusBar().showMessage(
                f"Removed {len(done.media)} unused media file(s), {human_bytes(done.media_bytes + done.cache_bytes)}",
                6000)
        return done

    def on_preferences(self) -> None:
        from ui.preferences import PreferencesDialog

        dlg = PreferencesDialog(self.settings, self)
        if dlg.exec():
            self.settings = dlg.settings

    def on_models(self) -> None:
        from ui.models_window import ModelsWindow

        self._models = ModelsWindow(self)
        self._models.show()

    def offer_recovery_at_start(self) -> bool:
        """At start with no project: if the most recent project has unsaved work from a session
        that didn't close, offer to open it with that work. Returns True when opened."""
        from studio.io import project_io

        recent = list(getattr(self.settings, "recent_projects", []) or [])
        if not recent or not self.ask:
            return False
        path = Path(recent[0])
        try:
            if not path.is_dir() or project_io.recovery_candidate(path) is None:
                return False
        except Exception:
            return False
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"Seed Studio did not close properly while '{path.name}' had unsaved changes. "
            "Open it and recover them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        return self.open_path(path, recover=True)

    def on_about(self) -> None:
        QMessageBox.about(self, "About Seed Studio",
                          "Seed Studio — co-create songs with local AI engines.\nGPL-3.0-or-later.")

    # -- Edit -------------------------------------------------------------------------------------
    def on_undo(self) -> None:
        if self.doc is not None and self.doc.undo():
            self.statusBar().showMessage("Undo", 1500)

    def on_redo(self) -> None:
        if self.doc is not None and self.doc.redo():
            self.statusBar().showMessage("Redo", 1500)

    def on_copy(self) -> bool:
        from ui.clipboard import clips_mime

        clips = self.canvas.selected_clip_objects()
        if not clips:
            return False
        mime = self._run(clips_mime, self.doc, clips)
        if mime is None:
            return False
        QGuiApplication.clipboard().setMimeData(mime)
        self.statusBar().showMessage(f"Copied {len(clips)} clip(s)", 2000)
        return True

    def on_cut(self) -> None:
        if self.on_copy():
            self.on_delete()

    def on_paste(self) -> None:
        from ui.clipboard import paste

        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return
        ids = self._run(paste, self.doc, mime, self.canvas.playhead, self.canvas.selected_track)
        if ids:
            self.canvas.selected_clips = set(ids)
            self.statusBar().showMessage(f"Pasted {len(ids)} clip(s)", 2000)

    def on_delete(self) -> None:
        from studio.model import edits

        if self.canvas.selected_take and not self.canvas.selected_clips:
            self.on_take_delete()
            return
        clips = self.canvas.selected_clip_objects()
        if not clips:
            return
        with self.doc.group("Delete clips"):
            for _, c in clips:
                self.doc.push(edits.RemoveClip(c.id))
        self.canvas.selected_clips.clear()

    def on_split(self) -> None:
        from studio.model import edits

        proj = self.doc.project
        at = self.canvas.playhead
        done = 0
        with self.doc.group("Split clips"):
            for _, c in self.canvas.selected_clip_objects():
                s, e = proj.clip_span(c)
                if s < at < e:
                    pos = at if isinstance(c, AudioClip) else proj.tempo_map.sample_to_tick(at, proj.sample_rate)
                    self.doc.push(edits.SplitClip(c.id, pos))
                    done += 1
        if not done:
            self.statusBar().showMessage("Put the playhead inside a selected clip to split it", 4000)

    def on_select_all(self) -> None:
        proj = self.doc.project
        from ui.timeline.canvas import TimeSelection

        self.canvas.selection = TimeSelection(0, max(1, proj.length_samples()), [t.id for t in proj.tracks])
        self.canvas.selected_clips = {c.id for t in proj.tracks for c in t.clips}
        self.canvas.selection_changed.emit()
        self.canvas.update()

    def on_snap(self) -> None:
        self.canvas.snap = self.actions_by_name["snap"].isChecked()

    # -- View --------------------------------------------------------------------------------------
    def on_zoom_in(self) -> None:
        self.timeline.zoom(0.5)

    def on_zoom_out(self) -> None:
        self.timeline.zoom(2.0)

    def on_zoom_fit(self) -> None:
        self.timeline.zoom_to_fit()

    def _mixer_visibility(self, on: bool) -> None:
        from PyQt6 import sip

        act = self.actions_by_name.get("mixer")
        if act is not None and not sip.isdeleted(act):  # docks hide while the window is destroyed
            act.setChecked(bool(on))

    def on_mixer(self) -> None:
        on = self.actions_by_name["mixer"].isChecked()
        self.mixer_dock.setVisible(on)
        if on:
            self.mixer_dock.raise_()
            self.resizeDocks([self.mixer_dock], [330], Qt.Orientation.Vertical)

    def on_taller(self) -> None:
        self.timeline.set_track_height(int(self.canvas.track_h * 1.25))

    def on_shorter(self) -> None:
        self.timeline.set_track_height(int(self.canvas.track_h / 1.25))

    # -- Track ---------------------------------------------------------------------------------------
    def _add_track(self, kind: str) -> None:
        from studio.model import edits
        from studio.model.project import TRACK_COLOURS

        n = len(self.doc.project.tracks)
        t = Track(name=f"{'MIDI' if kind == 'midi' else 'Audio'} {n + 1}", kind=kind,
                  colour=TRACK_COLOURS[n % len(TRACK_COLOURS)])
        self.doc.push(edits.AddTrack(t))
        self.canvas.selected_track = t.id

    def on_add_audio_track(self) -> None:
        self._add_track("audio")

    def on_add_midi_track(self) -> None:
        self._add_track("midi")

    def _add_control(self, kind: str) -> None:
        from studio.model import edits
        from studio.model.project import ControlLane

        t = self.selected_track()
        if t is None:
            self.error("Select a track first (click its header).")
            return
        if kind not in t.control_lanes:
            self.doc.push(edits.SetControlLane(t.id, kind, ControlLane(kind, [], "drawn")))

    def on_add_control_melody(self) -> None:
        self._add_control("melody")

    def on_add_control_dynamics(self) -> None:
        self._add_control("dynamics")

    def on_add_control_rhythm(self) -> None:
        self._add_control("rhythm")

    def on_fill_controls(self) -> None:
        from ui.control_fill import FillControlsDialog

        t = self.selected_track()
        if t is None:
            self.error("Select the track that should get the control lanes (click its header).")
            return
        FillControlsDialog(self, t.id).exec()

    def on_open_piano_roll(self) -> None:
        clips = [c for _, c in self.canvas.selected_clip_objects() if isinstance(c, MidiClip)]
        if clips:
            self.open_piano_roll(clips[0].id)

    def open_piano_roll(self, clip_id: str):
        """Open the piano roll on a MIDI clip; returns the window."""
        from ui.piano_roll import PianoRollWindow

        win = PianoRollWindow(self.doc, clip_id, self)
        win.show()
        self._piano_roll = win
        return win

    # -- Engines ------------------------------------------------------------------------------------
    def jobs(self):
        """The :class:`ui.qt_bridge.JobsBridge` (started on first use)."""
        if self._jobs is None:
            from ui.qt_bridge import JobsBridge

            self._jobs = JobsBridge(parent=self)
        self.jobs_panel.set_bridge(self._jobs)
        self._watch_analysis(self._jobs)
        return self._jobs

    def _watch_analysis(self, bridge) -> None:
        """Show the grid preview when an analysis that only reports (set_grid "no") ends."""
        if getattr(bridge, "_grid_preview_hooked", None) is self:
            return
        bridge._grid_preview_hooked = self
        bridge.job_finished.connect(self._on_job_finished)

    def _on_job_finished(self, job_id: str, state: str, _message: str) -> None:
        bridge = self._jobs
        if state != "done" or bridge is None or job_id not in bridge.analysis or self.doc is None:
            return
        job = bridge.job(job_id)
        request = getattr(job, "request", None)
        fields = getattr(request, "fields", None) or {}
        if fields.get("set_grid", "no") != "no":
            return  # the task itself set the grid
        data = bridge.analysis[job_id]
        if not (isinstance(data.get("beats"), dict) or data.get("bpm")):
            return
        region = getattr(getattr(job, "spec", None), "region", None)
        self.show_grid_preview(data, int(region[0]) if region else 0)

    def show_grid_preview(self, data: dict, region_start: int = 0):
        """The grid preview (:class:`ui.grid_preview.GridPreviewDialog`) of an analysis result:
        the project's tempo map changes only if the musician applies it. Returns the dialog."""
        from ui.grid_preview import GridPreviewDialog

        dlg = GridPreviewDialog(self.doc, data, region_start, self)
        self.grid_preview = dlg
        dlg.open()
        return dlg

    def on_generate(self) -> None:
        self.open_task_dialog("generate")

    def on_extend(self) -> None:
        self.open_task_dialog("extend")

    def on_inpaint(self) -> None:
        self.open_task_dialog("inpaint")

    def on_add_stem(self) -> None:
        self.open_task_dialog("add_stem")

    def on_restyle(self) -> None:
        self.open_task_dialog("restyle")

    def on_convert_voice(self) -> None:
        self.open_task_dialog("convert_voice")

    def on_separate(self) -> None:
        self.open_task_dialog("separate")

    def on_transcribe(self) -> None:
        self.open_task_dialog("transcribe")

    def on_analyze(self) -> None:
        self.open_task_dialog("analyze")

    def open_task_dialog(self, task_name: str, model_id: str | None = None, values: dict | None = None):
        """Show the task's dialog (:class:`ui.task_dialog.TaskDialog`) for the selection;
        submit on OK. Returns the dialog, or None when there is nothing to work on."""
        from studio.tasks import get_task
        from ui.task_dialog import TaskDialog

        if self.doc is None:
            return None
        target = self.job_target(task_name)
        if target is None:
            self.error("Select a track (click its header) or a time range on a track first.")
            return None
        task = get_task(task_name)
        dlg = TaskDialog(task, target.describe(self.doc.project), self, model_id=model_id, values=values,
                         project=self.doc.project, target=target)
        self._task_dialog = dlg
        dlg.accepted.connect(lambda: self.submit_task(task_name, target, dlg.request()))
        if self.ask:
            dlg.open()
        return dlg

    def job_target(self, task_name: str = "separate"):
        """What a task works on (a :class:`studio.tasks.Target`): the time selection and its
        tracks, else the selected track (generate: the playhead or the selection start; extend:
        the selected clip; add stem: every track of the selection, or the selected track)."""
        from studio.tasks import Target

        sel = self.canvas.selection
        has_range = not sel.empty and bool(sel.track_ids)
        if task_name == "generate":
            if not sel.empty:
                return Target(start=int(sel.start), end=int(sel.end))
            return Target(start=int(self.canvas.playhead))
        if task_name == "extend":
            clips = self.canvas.selected_clip_objects()
            if clips:
                return Target(clip_id=clips[0].id)
        if task_name == "add_stem":
            if has_range:
                return Target(track_ids=tuple(sel.track_ids), start=int(sel.start), end=int(sel.end))
            t = self.selected_track()
            return None if t is None else Target(track_ids=(t.id,))
        if has_range:
            return Target(track_id=sel.track_ids[0], start=int(sel.start), end=int(sel.end))
        t = self.selected_track()
        if t is None:
            return None
        return Target(track_id=t.id)

    def submit_task(self, task_name: str, target, request: dict | None = None):
        """Submit a task job through the job system; returns the bridge's job id (None when
        the request or target was refused: the message says why)."""
        return self._run(self.jobs().submit, self.doc, task_name, target, request or {})

    # -- Takes ----------------------------------------------------------------------------------------
    def _selected_take(self):
        tid = self.canvas.selected_take
        if tid is None:
            return None
        try:
            return self.doc.project.find_take(tid)
        except KeyError:
            return None

    def on_take_activate(self) -> None:
        from studio.model import edits

        got = self._selected_take()
        if got:
            self._run(self.doc.push, edits.SetActiveTake(got[1].id, got[2].id))

    def on_take_original(self) -> None:
        from studio.model import edits

        got = self._selected_take()
        if got:
            self._run(self.doc.push, edits.SetActiveTake(got[1].id, None))

    def on_take_audition(self) -> None:
        """Make the selected take the one that plays (undoable) and play its range from the start."""
        from studio.model import edits

        got = self._selected_take()
        if not got:
            return
        _, group, take = got
        if group.active_take_id != take.id:
            self._run(self.doc.push, edits.SetActiveTake(group.id, take.id))
        pb = self._ensure_playback()
        pb.stop()
        self.timeline.set_playhead(group.start)
        pb.play(group.start, loop=self.actions_by_name["loop"].isChecked())

    def on_take_delete(self) -> None:
        from studio.model import edits

        got = self._selected_take()
        if got:
            self._run(self.doc.push, edits.RemoveTake(got[2].id))
            self.canvas.selected_take = None
            self.inspector.clear()

    def on_take_comp(self) -> None:
        from studio.model import edits

        got = self._selected_take()
        if got:
            self._run(self.doc.push, edits.SplitTakeGroup(got[1].id, self.canvas.playhead))

    # -- Transport -------------------------------------------------------------------------------------
    def _ensure_playback(self):
        if self.playback is None:
            from ui.playback import PlaybackController

            self.playback = PlaybackController(self)
            self.playback.set_document(self.doc)
        self._connect_playback(self.playback)
        return self.playback

    def _connect_playback(self, pb) -> None:
        """Hook a playback controller to the window once: playhead, messages, meters, click."""
        if getattr(pb, "_window_hooked", None) is self:
            return
        pb._window_hooked = self
        pb.position.connect(self.timeline.set_playhead)
        pb.message.connect(self._show_status)
        pb.playing_changed.connect(self._on_playing_changed)
        pb.metronome = self.actions_by_name["metronome"].isChecked()

    def _show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_playing_changed(self, playing: bool) -> None:
        if playing:
            self.mixer.reset_holds()
            self.meter_timer.start()
        else:
            self._update_meters()
            self.meter_timer.stop()
            QTimer.singleShot(1500, self._update_meters)

    def _update_meters(self) -> None:
        """Move the meters (mixer and track headers) to what playback measured since the last update."""
        pb = self.playback
        if pb is None:
            return
        levels, overs = pb.take_levels(), pb.overs
        self.mixer.update_levels(levels, overs)
        self.timeline.headers.update_levels(levels, overs)

    def _reset_over(self, key: str) -> None:
        if self.playback is not None:
            self.playback.reset_overs(key)

    def _prime_playback(self) -> None:
        """Have the block at the playhead rendered in the background (Play starts at once)."""
        if self.doc is None:
            return
        if not hasattr(self, "_prime_timer"):
            self._prime_timer = QTimer(self)
            self._prime_timer.setSingleShot(True)
            self._prime_timer.setInterval(200)
            self._prime_timer.timeout.connect(self._do_prime)
        self._prime_timer.start()

    def _do_prime(self) -> None:
        if self.doc is None or not self.isVisible():
            return
        self._ensure_playback().prime(self.canvas.playhead)

    def on_metronome(self) -> None:
        on = self.actions_by_name["metronome"].isChecked()
        if self.playback is not None:
            self.playback.metronome = on
        self.statusBar().showMessage("Metronome on (heard while playing, never exported)" if on else
                                     "Metronome off", 3000)

    def on_play(self) -> None:
        pb = self._ensure_playback()
        pb.metronome = self.actions_by_name["metronome"].isChecked()
        if pb.is_playing:
            pb.stop()
        else:
            pb.play(self.canvas.playhead, loop=self.actions_by_name["loop"].isChecked())

    def on_loop(self) -> None:
        if self.playback is not None:
            self.playback.set_looping(self.actions_by_name["loop"].isChecked())

    def on_to_start(self) -> None:
        self.timeline.set_playhead(0)

    # -- drag-out -------------------------------------------------------------------------------------------
    def _drag_out(self, clip_id: str) -> None:
        from PyQt6.QtGui import QDrag

        from ui.clipboard import clips_mime

        try:
            track, clip, _ = self.doc.project.find_clip(clip_id)
        except KeyError:
            return
        mime = self._run(clips_mime, self.doc, [(track, clip)])
        if mime is None:
            return
        drag = QDrag(self.canvas)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)


_APP = None


def new_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication with the dark theme (reused when one exists)."""
    from ui import theme

    global _APP
    app = QApplication.instance()
    if app is None:
        app = _APP = QApplication(argv or ["seed-studio"])
        app.setApplicationName("Seed Studio")
        app.setOrganizationName("Seed Studio")
    theme.apply(app)
    return app

