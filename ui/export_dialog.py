"""Export: the dialog with every option of the CLI's ``render`` and ``export``, and the
background job that runs it with progress and cancel.

Two kinds, one dialog:

* **Stems for Ableton** (``seed-studio export``): a folder with one WAV per track, MIDI
  files, ``Mix.wav`` and the manifest (:func:`studio.export.ableton.export_for_ableton`).
* **Mix** (``seed-studio render``): one audio file (:func:`studio.audio.render.render_file`).

Options, as on the command line: which tracks (``--tracks``), the range (whole song,
loop, selection or from/to in seconds: ``--start``/``--end``), the render tail
(``--tail``; by default, as on the command line, the Preferences' tail, which starts at
:data:`studio.audio.render.DEFAULT_TAIL_S`, when the export runs to the song's end, and
none for a loop, a selection or a range with its own end), the sample format
(``--bit-depth`` / ``--float``) and the master gain (``--master-gain``).

:class:`ExportJob` renders a copy of the project taken when it starts (edits made
meanwhile don't change what is written) in a worker thread; progress and the end come
to the UI thread as queued signals, Cancel stops it between blocks and nothing is left
behind (every file is written atomically).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                             QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                             QVBoxLayout, QWidget)

STEMS, MIX = "stems", "mix"
FORMATS = {STEMS: [("24-bit PCM WAV", "PCM_24"), ("32-bit float WAV (keeps peaks above 0 dBFS)", "FLOAT")],
           MIX: [("24-bit PCM", "PCM_24"), ("16-bit PCM", "PCM_16"), ("32-bit float (keeps peaks above 0 dBFS)",
                                                                    "FLOAT")]}


@dataclass
class ExportOptions:
    """What to export.

    Attributes:
        kind: ``"stems"`` (a folder for Ableton) or ``"mix"`` (one audio file).
        path: the folder (stems) or the file (mix: ``.wav``, ``.flac`` or ``.aiff``).
        track_ids: the tracks (None: all).
        start, end: the range, timeline samples (``end`` None: the end of the last clip).
        tail: render tail, samples.
        subtype: ``"PCM_16"`` (mix only), ``"PCM_24"`` or ``"FLOAT"``.
        master_gain_db: master gain for this export, dB (None: the project's).
    """

    kind: str
    path: Path
    track_ids: list[str] | None = None
    start: int = 0
    end: int | None = None
    tail: int = 0
    subtype: str = "PCM_24"
    master_gain_db: float | None = None
    extra: dict = field(default_factory=dict)


class ExportJob(QObject):
    """One export running in a worker thread.

    Signals:
        progress(float): 0..1.
        finished(object, str): the report (:class:`~studio.export.ableton.ExportReport` or
            :class:`~studio.audio.render.RenderReport`) and "", or None and the error in plain
            words ("" with :attr:`cancelled` True when it was cancelled).

    Attributes:
        done: True once finished. report, error, cancelled: the outcome.
    """

    progress = pyqtSignal(float)
    finished = pyqtSignal(object, str)
    _progress = pyqtSignal(float)
    _finished = pyqtSignal(object, str)

    def __init__(self, doc, options: ExportOptions, parent=None):
        super().__init__(parent)
        self.options = options
        self.project = doc.project.clone()  # what was asked for, whatever is edited meanwhile
        self.pool = doc.pool
        self.cancel_event = threading.Event()
        self.done = False
        self.cancelled = False
        self.report = None
        self.error = ""
        self.fraction = 0.0
        self._progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread."""
        self.thread = threading.Thread(target=self._work, name="export", daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        """Stop between blocks; nothing is written."""
        self.cancel_event.set()

    def _work(self) -> None:
        from engines.base import UserError

        o = self.options
        try:
            if o.kind == STEMS:
                from studio.export.ableton import export_for_ableton

                report = export_for_ableton(self.project, self.pool, o.path, track_ids=o.track_ids, start=o.start,
                                            end=o.end, float32=o.subtype == "FLOAT", progress=self._progress.emit,
                                            cancel=self.cancel_event, tail=o.tail, master_gain_db=o.master_gain_db)
            else:
                from studio.audio.render import render_file

                report = render_file(self.project, self.pool, o.path, start=o.start, end=o.end,
                                     track_ids=o.track_ids, progress=self._progress.emit, cancel=self.cancel_event,
                                     subtype=o.subtype, tail=o.tail, master_gain_db=o.master_gain_db)
        except Exception as exc:  # shown in plain words; never a traceback in the window
            from studio.audio.render import RenderCancelled

            if isinstance(exc, RenderCancelled) or self.cancel_event.is_set():
                self._finished.emit(None, "")
            elif isinstance(exc, (UserError, OSError)):
                self._finished.emit(None, str(exc))
            else:
                self._finished.emit(None, f"the export failed: {type(exc).__name__}: {exc}")
            return
        self._finished.emit(report, "")

    def _on_progress(self, fraction: float) -> None:
        self.fraction = float(fraction)
        self.progress.emit(self.fraction)

    def _on_finished(self, report, error: str) -> None:
        self.report, self.error = report, error
        self.cancelled = report is None and not error
        self.done = True
        self.finished.emit(report, error)

    def wait(self, timeout: float = 600.0) -> bool:
        """Block until the job ends, processing Qt events (tests, scripts). Returns ``done``."""
        import time

        from PyQt6.QtWidgets import QApplication

        end = time.monotonic() + timeout
        while not self.done and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()
        return self.done


def describe_report(report, options: ExportOptions) -> str:
    """One plain-words line about a finished export (for the status bar)."""
    from studio.audio.levels import fmt_db

    def lv_text(lv) -> str:
        return f"true peak {fmt_db(lv.true_peak_dbfs)}, {fmt_db(lv.loudness_lufs, 'LUFS').lstrip('+')}"

    if options.kind == STEMS:
        audio = [e for e in report.entries if e.levels is not None]
        mix = next((e for e in audio if e.type == "mix"), None)
        text = f"Exported {len(report.files)} files to {report.out_dir}"
        return text + (f" — Mix.wav: {lv_text(mix.levels)}" if mix is not None else "")
    sr = report.sample_rate
    return f"Exported {Path(report.path).name} ({report.frames / sr:.1f} s) — {lv_text(report.levels)}"


class ExportDialog(QDialog):
    """The export dialog (see the module docstring). ``start()`` runs the export; the dialog
    shows its progress and a Cancel button, and closes itself when it ends.

    Args:
        window: the main window (its document, settings and selection).
        kind: ``"stems"`` or ``"mix"``.

    Attributes:
        job: the running :class:`ExportJob`, or None.
    """

    def __init__(self, window, kind: str = STEMS):
        super().__init__(window)
        self.window = window
        doc = window.doc
        self.doc = doc
        proj = doc.project
        sr = proj.sample_rate
        self.job: ExportJob | None = None
        self.setWindowTitle("Export")
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.kind = QComboBox(self)
        self.kind.addItem("Stems, MIDI and mix for Ableton Live (folder)", STEMS)
        self.kind.addItem("Mix (one audio file)", MIX)
        self.kind.setCurrentIndex(0 if kind == STEMS else 1)
        form.addRow("Export", self.kind)
        row = QHBoxLayout()
        self.path = QLineEdit(self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("To", row)
        self.tracks = QListWidget(self)
        self.tracks.setMaximumHeight(140)
        for t in proj.tracks:
            item = QListWidgetItem(t.name, self.tracks)
            item.setData(Qt.ItemDataRole.UserRole, t.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
        form.addRow("Tracks", self.tracks)
        self.range = QComboBox(self)
        self.range.addItem("Whole song", "song")
        sel = window.canvas.selection
        if proj.loop is not None:
            self.range.addItem(f"Loop ({proj.loop.start / sr:.2f}–{proj.loop.end / sr:.2f} s)", "loop")
        if not sel.empty:
            self.range.addItem(f"Selection ({sel.start / sr:.2f}–{sel.end / sr:.2f} s)", "selection")
        self.range.addItem("From … to … (seconds)", "custom")
        form.addRow("Range", self.range)
        rrow = QHBoxLayout()
        self.start_s = QDoubleSpinBox(self)
        self.end_s = QDoubleSpinBox(self)
        length = proj.length_samples() / sr
        for w, v in ((self.start_s, 0.0), (self.end_s, length)):
            w.setRange(0.0, 24 * 3600.0)
            w.setDecimals(3)
            w.setSuffix(" s")
            w.setValue(v)
        rrow.addWidget(QLabel("from", self))
        rrow.addWidget(self.start_s)
        rrow.addWidget(QLabel("to", self))
        rrow.addWidget(self.end_s)
        self.custom_row = QWidget(self)
        self.custom_row.setLayout(rrow)
        form.addRow("", self.custom_row)
        self.tail = QDoubleSpinBox(self)
        self.tail.setRange(0.0, 600.0)
        self.tail.setDecimals(1)
        self.tail.setSingleStep(0.5)
        self.tail.setSuffix(" s")
        self.tail.setSpecialValueText("none (cut at the end)")
        self.tail.setValue(float(getattr(window.settings, "render_tail_s", 2.0)))
        self.tail.setToolTip("Seconds past the end in which reverbs and delays ring out (the clips stop at the end)")
        form.addRow("Tail", self.tail)
        self.format = QComboBox(self)
        form.addRow("Format", self.format)
        self.master = QDoubleSpinBox(self)
        self.master.setRange(-60.0, 24.0)
        self.master.setDecimals(1)
        self.master.setSingleStep(0.5)
        self.master.setSuffix(" dB")
        self.master.setValue(proj.master_gain_db)
        self.master.setToolTip("Master gain for this export (the Mixer's Master fader is not changed)")
        form.addRow("Master gain", self.master)
        lay.addLayout(form)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        lay.addWidget(self.progress)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.buttons = QDialogButtonBox(self)
        self.export_btn = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_btn = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self._cancel)
        lay.addWidget(self.buttons)
        self._tail_edited = self._setting_tail = False
        self.tail.valueChanged.connect(self._tail_changed)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.range.currentIndexChanged.connect(self._range_changed)
        self._kind_changed()
        self._range_changed()

    # -- form --------------------------------------------------------------------------------
    def _default_path(self, kind: str) -> Path:
        base = self.doc.path.parent if self.doc.path else Path.home()
        name = self.doc.project.name or "Song"
        return base / (f"{name} for Live" if kind == STEMS else f"{name}.wav")

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        self.format.clear()
        for text, sub in FORMATS[kind]:
            self.format.addItem(text, sub)
        cur = Path(self.path.text()) if self.path.text() else None
        if cur is None or (kind == STEMS) == bool(cur.suffix):
            self.path.setText(str(self._default_path(kind)))

    def _range_changed(self) -> None:
        """Custom range fields on or off; the tail follows the CLI's rule (the Preferences'
        tail to the song's end, none for a range with its own end) until it is edited."""
        from studio.audio.render import default_tail_s

        which = self.range.currentData()
        self.custom_row.setEnabled(which == "custom")
        if not self._tail_edited:
            self._setting_tail = True
            self.tail.setValue(default_tail_s(which != "song", float(getattr(self.window.settings, "render_tail_s",
                                                                              2.0))))
            self._setting_tail = False

    def _tail_changed(self) -> None:
        if not self._setting_tail:
            self._tail_edited = True

    def _browse(self) -> None:
        if self.kind.currentData() == STEMS:
            path = QFileDialog.getExistingDirectory(self, "Export stems into folder", self.path.text())
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export mix", self.path.text(),
                                                  "Audio (*.wav *.flac *.aiff *.aif)")
        if path:
            self.path.setText(path)

    def options(self) -> ExportOptions:
        """The options as set in the form.

        Raises:
            ValueError: no file or folder, no track, an empty range (plain words).
        """
        proj = self.doc.project
        sr = proj.sample_rate
        text = self.path.text().strip()
        if not text:
            raise ValueError("choose where to export (a folder for stems, a file for the mix)")
        ids = [self.tracks.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.tracks.count())
               if self.tracks.item(i).checkState() == Qt.CheckState.Checked]
        if not ids:
            raise ValueError("tick at least one track to export")
        which = self.range.currentData()
        start, end = 0, None
        if which == "loop" and proj.loop is not None:
            start, end = proj.loop.start, proj.loop.end
        elif which == "selection":
            sel = self.window.canvas.selection
            start, end = int(sel.start), int(sel.end)
        elif which == "custom":
            start, end = int(round(self.start_s.value() * sr)), int(round(self.end_s.value() * sr))
            if end <= start:
                raise ValueError(f"the range ends at {end / sr:g} s, not after its start {start / sr:g} s")
        master = float(self.master.value())
        return ExportOptions(kind=self.kind.currentData(), path=Path(text).expanduser(),
                             track_ids=None if len(ids) == self.tracks.count() else ids, start=start, end=end,
                             tail=int(round(self.tail.value() * sr)), subtype=self.format.currentData(),
                             master_gain_db=None if master == proj.master_gain_db else master)

    # -- running -------------------------------------------------------------------------------
    def start(self) -> ExportJob | None:
        """Check the form and start the export; returns the job (None: the form was refused,
        the status line says why)."""
        if self.job is not None and not self.job.done:
            return self.job
        try:
            options = self.options()
        except ValueError as exc:
            self.status.setText(str(exc)[:1].upper() + str(exc)[1:] + ".")
            return None
        job = self.window.start_export(options)
        if job is None:
            return None
        self.job = job
        for w in (self.kind, self.path, self.tracks, self.range, self.custom_row, self.tail, self.format,
                  self.master, self.export_btn):
            w.setEnabled(False)
        self.progress.show()
        self.status.setText("Exporting… (Cancel stops it; nothing is written then)")
        job.progress.connect(lambda f: self.progress.setValue(int(f * 1000)))
        job.finished.connect(self._finished)
        return job

    def _cancel(self) -> None:
        if self.job is not None and not self.job.done:
            self.job.cancel()
            self.status.setText("Cancelling…")
            return
        self.reject()

    def _finished(self, report, error: str) -> None:
        if error:
            self.status.setText(error)
            for w in (self.kind, self.path, self.tracks, self.range, self.tail, self.format, self.master,
                      self.export_btn):
                w.setEnabled(True)
            self._range_changed()
            self.progress.hide()
            self.job = None
            return
        self.accept()

    def closeEvent(self, e) -> None:  # noqa: N802
        if self.job is not None and not self.job.done:
            self.job.cancel()
        super().closeEvent(e)


def tail_samples(settings, sample_rate: int) -> int:
    """The export render tail from the Preferences, samples (never negative)."""
    seconds = float(getattr(settings, "render_tail_s", 2.0) or 0.0)
    return int(round(max(0.0, seconds) * sample_rate)) if math.isfinite(seconds) else 0
