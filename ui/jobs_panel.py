"""The jobs panel: one row per engine job with progress, stage, ETA, cancel, and errors
in plain words (the error's message and its hint: what to do; a model to download is
pointed to the Models window, not to a command).

It listens to the queued signals of :class:`ui.qt_bridge.JobsBridge`, so it never
blocks and never touches a worker thread.
"""
from __future__ import annotations

from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

_GROOVE = QColor("#1b1c1f")
_EDGE = QColor("#3a3d42")
_CHUNK = {"failed": QColor("#c0392b"), "cancelled": QColor("#6b6f76")}
_CHUNK_DEFAULT = QColor("#ffb13b")


def fmt_eta(seconds: float | None) -> str:
    """``"about 1 min 05 s left"``, ``"a few seconds left"`` or ``""``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    if seconds < 5:
        return "a few seconds left"
    m, s = divmod(int(round(seconds)), 60)
    return f"about {m} min {s:02d} s left" if m else f"about {s} s left"


class ProgressStrip(QWidget):
    """A slim progress bar painted in one ``paintEvent``.

    ``QProgressBar.setValue`` repaints synchronously through the style sheet (about
    10 ms here); this one schedules an ordinary update, so progress reports never stall
    the window. Same API subset: ``setRange``, ``setValue``, ``value``; the colour
    follows the ``state`` property ("failed", "cancelled", else running/done).
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._min, self._max, self._value = 0, 100, 0
        self.setFixedHeight(12)

    def setRange(self, lo: int, hi: int) -> None:  # noqa: N802 - Qt naming
        self._min, self._max = int(lo), max(int(lo) + 1, int(hi))
        self.update()

    def setValue(self, value: int) -> None:  # noqa: N802
        value = int(min(self._max, max(self._min, value)))
        if value != self._value:
            self._value = value
            self.update()

    def value(self) -> int:
        return self._value

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(_EDGE)
        p.setBrush(_GROOVE)
        p.drawRoundedRect(r, 3, 3)
        frac = (self._value - self._min) / (self._max - self._min)
        if frac > 0:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(_CHUNK.get(str(self.property("state") or ""), _CHUNK_DEFAULT))
            p.drawRoundedRect(QRectF(r.left() + 1, r.top() + 1, max(2.0, (r.width() - 2) * frac), r.height() - 2), 2, 2)
        p.end()


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
        self.bar = ProgressStrip(self)
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(220)
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
        self.bar.setProperty("state", state)
        self.bar.update()
        self.info.setProperty("state", state)  # its colour by state is in dark.qss
        self.info.style().unpolish(self.info)
        self.info.style().polish(self.info)
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
        """Show a job's end; a hint that names a ``seed-studio models`` command points to the
        Models window instead (:func:`ui.hints.for_app`)."""
        from ui.hints import for_app

        row = self.rows.get(job_id)
        if row is not None:
            row.finish(state, for_app(message))
