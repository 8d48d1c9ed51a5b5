"""The jobs panel: one row per engine job with progress, stage, ETA, cancel, and errors
in plain words (the error's message and its hint: what to do).

It listens to the queued signals of :class:`ui.qt_bridge.JobsBridge`, so it never
blocks and never touches a worker thread.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QVBoxLayout,
                             QWidget)


def fmt_eta(seconds: float | None) -> str:
    """``"about 1 min 05 s left"``, ``"a few seconds left"`` or ``""``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    if seconds < 5:
        return "a few seconds left"
    m, s = divmod(int(round(seconds)), 60)
    return f"about {m} min {s:02d} s left" if m else f"about {s} s left"


class JobRow(QWidget):
    """One job: title, progress bar, stage/ETA or result text, cancel button."""

    def __init__(self, job_id: str, title: str, cancel, parent=None):
        super().__init__(parent)
        self.job_id = job_id
        self.state = "queued"
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        self.title = QLabel(title, self)
        self.title.setMinimumWidth(260)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(False)
        self.info = QLabel("queued", self)
        self.info.setObjectName("JobInfo")
        self.info.setWordWrap(True)
        self.cancel = QPushButton("Cancel", self)
        self.cancel.clicked.connect(lambda: cancel(job_id))
        lay.addWidget(self.title)
        lay.addWidget(self.bar)
        lay.addWidget(self.info, 1)
        lay.addWidget(self.cancel)

    def progress(self, fraction: float, stage: str, eta: float | None) -> None:
        """Show a progress report: fraction 0..1, stage label, ETA seconds (None: unknown)."""
        self.state = "running"
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        pct = f"{fraction * 100:.0f}%"
        self.info.setText("  ".join(x for x in (pct, stage, fmt_eta(eta)) if x))

    def finish(self, state: str, message: str) -> None:
        """Show the end state (done, failed, cancelled) and its plain-words message."""
        self.state = state
        self.cancel.setEnabled(False)
        self.cancel.setText("Done" if state == "done" else "—")
        if state == "done":
            self.bar.setValue(1000)
        elif state == "cancelled":
            self.bar.setEnabled(False)
        for w in (self.info, self.bar):  # colours by state in dark.qss ([state="..."])
            w.setProperty("state", state)
            w.style().unpolish(w)
            w.style().polish(w)
        self.info.setText(message)


class JobsPanel(QWidget):
    """Rows of jobs, newest first. ``rows`` maps job id -> :class:`JobRow`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bridge = None
        self.doc = None
        self.rows: dict[str, JobRow] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        host = QWidget(scroll)
        self.list = QVBoxLayout(host)
        self.list.setContentsMargins(0, 0, 0, 0)
        self.list.setSpacing(0)
        self.empty = QLabel("No jobs yet. Select a track or a range, then use the Engines menu.", host)
        self.empty.setObjectName("JobsEmpty")
        self.list.addWidget(self.empty)
        self.list.addStretch(1)
        scroll.setWidget(host)
        outer.addWidget(scroll)

    def set_document(self, doc) -> None:
        """The document whose jobs are shown."""
        self.doc = doc

    def set_bridge(self, bridge) -> None:
        """Listen to a :class:`ui.qt_bridge.JobsBridge`."""
        if bridge is self.bridge:
            return
        self.bridge = bridge
        bridge.job_added.connect(self.add_job)
        bridge.job_progress.connect(self.on_progress)
        bridge.job_finished.connect(self.on_finished)

    def add_job(self, job_id: str, title: str) -> None:
        """Add a row for a new job (newest first)."""
        self.empty.hide()
        row = JobRow(job_id, title, self._cancel, self)
        self.rows[job_id] = row
        self.list.insertWidget(0, row)

    def _cancel(self, job_id: str) -> None:
        if self.bridge is not None:
            self.bridge.cancel(job_id)
        row = self.rows.get(job_id)
        if row is not None and row.state in ("queued", "running"):
            row.info.setText("cancelling…")

    def on_progress(self, job_id: str, fraction: float, stage: str, eta: float) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            row.progress(fraction, stage, None if eta < 0 else eta)

    def on_finished(self, job_id: str, state: str, message: str) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            row.finish(state, message)
