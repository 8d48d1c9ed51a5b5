"""The models window: every model record with its engine, licence, size and status;
download with progress (in a worker thread, reported through queued signals), import from
a folder, remove. Uses :class:`engines.models.ModelManager`.

Above the table, a guide in plain words (:func:`model_guide`): what works with nothing to
download, which models each kind of job needs and their sizes, and that nothing is
downloaded until the musician presses Download (on a first run: that nothing has been)."""
from __future__ import annotations

from PyQt6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                             QTableWidget, QTableWidgetItem, QVBoxLayout)

COLUMNS = ["Model", "Engine", "Licence", "Size", "Status", "Source"]

GUIDE_GROUPS = [
    ("Separate stems", ("separate",)),
    ("Transcribe to MIDI", ("transcribe",)),
    ("Tempo, beats, key and melody", ("analyze",)),
    ("Generate, extend, inpaint, add a stem, restyle", ("generate", "extend", "inpaint", "add_stem", "restyle")),
    ("Convert a voice", ("convert_voice",)),
]
"""The guide's lines: a musician's name for a kind of job, and the engine tasks it covers."""
GUIDE_LISTED = 3
"""Downloadable models named per line; the rest are counted ("+N more in the table")."""


def _size_text(rec) -> str:
    from engines.models import human_size

    if rec.builtin:
        return "built-in"
    return human_size(rec.size) if rec.size else "size on the Hub"


def model_guide(records, status) -> str:
    """The guide above the table, as rich text: per kind of job, the built-in models that
    work now and the downloadable ones with their sizes (and which are installed).

    Args:
        records: the model records shown (:attr:`ModelManager.records`).
        status: ``status(record) -> str`` ("built-in", "installed", "missing", "partial").
    """
    from html import escape

    from engines.registry import list_engines

    def state(r) -> str:
        try:
            return status(r)
        except Exception:
            return "unknown"

    downloadable = [r for r in records if not r.builtin]
    first_run = not any(state(r) == "installed" for r in downloadable)
    lines = []
    try:
        engines = list_engines()
    except Exception:
        engines = []
    by_id = {r.id: r for r in records}
    for title, tasks in GUIDE_GROUPS:
        ids: list[str] = []
        for e in engines:
            if set(tasks) & set(e.tasks):
                ids += [i for i in e.models if i in by_id] + [r.id for r in records if r.engine == e.id]
        recs = [by_id[i] for i in dict.fromkeys(ids)]
        if not recs:
            continue
        builtin = [r for r in recs if r.builtin]
        more = sorted((r for r in recs if not r.builtin), key=lambda r: not r.size)  # known sizes first
        parts = []
        if builtin:
            parts.append("works now with " + ", ".join(escape(r.id) for r in builtin) + " (built-in)")
        if more:
            named = [f"{escape(r.id)} ({_size_text(r)}{', installed' if state(r) == 'installed' else ''})"
                     for r in more[:GUIDE_LISTED]]
            extra = f", +{len(more) - GUIDE_LISTED} more in the table" if len(more) > GUIDE_LISTED else ""
            parts.append(("better with" if builtin else "needs a download") + ": " + ", ".join(named) + extra)
        lines.append(f"<b>{escape(title)}</b>: " + "; ".join(parts) + ".")
    intro = ("Nothing has been downloaded yet, and nothing will be until you choose. " if first_run else "")
    return (f"<p>{intro}Each AI engine needs a model. Built-in models work now, offline. Any other model is "
            "downloaded only when you select it and press <b>Download</b> (or bring its files with "
            "<b>Import from Folder…</b>). Check its licence first: some forbid commercial use.</p>"
            + "<br>".join(lines))


class ModelsWindow(QDialog):
    """List, download, import and remove models. ``table`` rows follow ``records``."""

    def __init__(self, parent=None, *, manager=None):
        super().__init__(parent)
        from engines.models import ModelManager
        from studio.io.settings import load_settings

        self.manager = manager or ModelManager(setting=load_settings().models_dir)
        self.setWindowTitle("Models")
        self.resize(900, 560)
        lay = QVBoxLayout(self)
        self.guide = QLabel(self)
        self.guide.setWordWrap(True)
        lay.addWidget(self.guide)
        self.where = QLabel(f"Models folder: {self.manager.root}", self)
        self.where.setStyleSheet("color:#9aa0a8;")
        lay.addWidget(self.where)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        row = QHBoxLayout()
        self.download_btn = QPushButton("Download", self)
        self.import_btn = QPushButton("Import from Folder…", self)
        self.remove_btn = QPushButton("Remove", self)
        for b in (self.download_btn, self.import_btn, self.remove_btn):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.download_btn.clicked.connect(self.download_selected)
        self.import_btn.clicked.connect(self.import_selected)
        self.remove_btn.clicked.connect(self.remove_selected)
        self.refresh()

    def refresh(self) -> None:
        """Re-read every record's status (the table and the guide above it)."""
        self.records = self.manager.records
        self.guide.setText(model_guide(self.records, self.manager.status))
        self.table.setRowCount(len(self.records))
        for i, r in enumerate(self.records):
            try:
                status = self.manager.status(r)
            except Exception as exc:
                status = f"unknown ({exc})"
            for j, v in enumerate([r.title or r.id, r.engine, r.licence, "—" if r.builtin else _size_text(r), status,
                                   r.source]):
                self.table.setItem(i, j, QTableWidgetItem(str(v)))
        self.table.resizeColumnsToContents()

    def _selected(self):
        rows = {i.row() for i in self.table.selectedIndexes()}
        return [self.records[i] for i in sorted(rows)]

    def download_selected(self) -> None:
        """Download the selected model in a worker thread."""
        recs = [r for r in self._selected() if not r.builtin]
        if not recs:
            self.status.setText("Select a model that needs a download.")
            return
        rec = recs[0]
        self.bar.show()
        self.bar.setValue(0)
        self.status.setText(f"Downloading {rec.title or rec.id} ({rec.licence})…")

        from ui.qt_bridge import BackgroundTask

        def work(progress) -> str:
            self.manager.download(rec, progress=lambda done, total=0, *a: progress(done / total if total else 0.0))
            return rec.id

        self._task = BackgroundTask(work, self)
        self._downloading = rec.id
        self._task.progress.connect(self._on_task_progress)
        self._task.finished.connect(self._on_task_done)
        self._task.start()

    def _on_task_progress(self, fraction: float) -> None:
        self._on_progress(self._downloading, fraction)

    def _on_task_done(self, _value, error: str) -> None:
        self._on_done(self._downloading, error)

    def _on_progress(self, model_id: str, fraction: float) -> None:
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))

    def _on_done(self, model_id: str, error: str) -> None:
        self.bar.hide()
        self.status.setText(f"Could not download {model_id}: {error}" if error else f"Downloaded {model_id}.")
        self.refresh()

    def import_selected(self) -> None:
        """Import the selected model's files from a folder the musician picks."""
        recs = self._selected()
        if not recs:
            self.status.setText("Select the model to import.")
            return
        folder = QFileDialog.getExistingDirectory(self, f"Folder with the files of {recs[0].id}")
        if folder:
            self.import_from(recs[0].id, folder)

    def import_from(self, model_id: str, folder: str) -> bool:
        """Import ``model_id`` from ``folder``; False (with a message) on failure."""
        try:
            self.manager.import_from(model_id, folder)
        except Exception as exc:
            self.status.setText(f"Could not import {model_id}: {exc}")
            return False
        self.status.setText(f"Imported {model_id}.")
        self.refresh()
        return True

    def remove_selected(self) -> None:
        """Delete the selected models' files."""
        for r in self._selected():
            try:
                self.manager.remove(r)
            except Exception as exc:
                self.status.setText(f"Could not remove {r.id}: {exc}")
        self.refresh()
