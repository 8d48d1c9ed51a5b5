"""The arrange view: ruler, header column, lanes canvas and scroll bars in one widget."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QGridLayout, QScrollBar, QWidget

from ui.timeline.canvas import ArrangeCanvas
from ui.timeline.geometry import TimelineGeometry
from ui.timeline.headers import HEADER_W, HeaderColumn
from ui.timeline.ruler import Ruler


class TimelineView(QWidget):
    """Ruler + headers + canvas, with horizontal and vertical scroll bars.

    Attributes:
        geom: the shared :class:`TimelineGeometry`.
        canvas, ruler, headers: the parts.
    """

    playhead_moved = pyqtSignal(int)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        sr = doc.project.sample_rate if doc is not None else 44100
        self.geom = TimelineGeometry(sr, samples_per_px=sr / 50.0)
        self.canvas = ArrangeCanvas(doc, self.geom, self)
        self.ruler = Ruler(doc, self.geom, self)
        self.headers = HeaderColumn(doc, self)
        corner = QWidget(self)
        corner.setFixedSize(HEADER_W, self.ruler.height())
        corner.setObjectName("TimelineCorner")
        corner.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hbar = QScrollBar(Qt.Orientation.Horizontal, self)
        self.vbar = QScrollBar(Qt.Orientation.Vertical, self)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(0)
        grid.addWidget(corner, 0, 0)
        grid.addWidget(self.ruler, 0, 1)
        grid.addWidget(self.headers, 1, 0)
        grid.addWidget(self.canvas, 1, 1)
        grid.addWidget(self.vbar, 1, 2)
        grid.addWidget(self.hbar, 2, 1)
        self.hbar.valueChanged.connect(self._on_hbar)
        self.vbar.valueChanged.connect(self._on_vbar)
        self.canvas.scrolled.connect(self.sync_scrollbars)
        self.canvas.playhead_moved.connect(self.set_playhead)
        self.ruler.playhead_moved.connect(self.set_playhead)
        self.ruler.loop_changed.connect(self._on_loop)
        self.headers.track_clicked.connect(self._on_track_clicked)
        self._syncing = False
        self._px_per_step = 1.0
        if doc is not None:
            doc.changed.connect(self.model_changed)
        self.model_changed()

    def set_document(self, doc) -> None:
        """Show another document."""
        if self.doc is not None:
            try:
                self.doc.changed.disconnect(self.model_changed)
            except TypeError:
                pass
        self.doc = doc
        self.geom.sample_rate = doc.project.sample_rate
        self.canvas.set_document(doc)
        self.ruler.doc = doc
        self.headers.set_document(doc)
        doc.changed.connect(self.model_changed)
        loop = doc.project.loop
        self.ruler.loop = self.canvas.loop = (loop.start, loop.end) if loop else None
        self.model_changed()

    # -- updates ---------------------------------------------------------------
    def model_changed(self) -> None:
        """Re-read the project after an edit."""
        self.canvas.model_changed()
        loop = self.doc.project.loop if self.doc is not None else None
        self.ruler.loop = self.canvas.loop = (loop.start, loop.end) if loop else None
        self.sync_scrollbars()

    def sync_scrollbars(self) -> None:
        """Bring scroll bars, headers and ruler in line with the geometry."""
        self._syncing = True
        try:
            total = self.doc.project.length_samples() if self.doc is not None else 0
            sr = self.geom.sample_rate
            visible_px = max(1, self.canvas.width())
            content = max(total + 30 * sr, self.geom.origin + visible_px * self.geom.samples_per_px)
            maximum, page, value, self._px_per_step = self.geom.scrollbar(content, visible_px)
            self.hbar.setRange(0, maximum)
            self.hbar.setPageStep(page)
            self.hbar.setValue(value)
            ch = self.canvas.content_height()
            self.vbar.setRange(0, max(0, ch - self.canvas.height()))
            self.vbar.setPageStep(max(1, self.canvas.height()))
            self.vbar.setValue(self.canvas.vscroll)
        finally:
            self._syncing = False
        self.headers.selected = self.canvas.selected_track
        self.headers.sync(self.canvas.rows, self.canvas.vscroll)
        self.ruler.update()
        self.canvas.update()

    def _on_hbar(self, v: int) -> None:
        if self._syncing:
            return
        self.geom.origin = self.geom.origin_for_scroll(v, self._px_per_step)
        self.ruler.update()
        self.canvas.update()

    def _on_vbar(self, v: int) -> None:
        if self._syncing:
            return
        self.canvas.vscroll = v
        self.headers.sync(self.canvas.rows, v)
        self.canvas.update()

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self.sync_scrollbars()

    def set_playhead(self, sample: int) -> None:
        """Move the playhead (samples)."""
        self.canvas.playhead = int(sample)
        self.ruler.playhead = int(sample)
        self.canvas.update()
        self.ruler.update()
        self.playhead_moved.emit(int(sample))

    def _on_loop(self, a: int, b: int) -> None:
        from studio.model import edits
        from studio.model.project import Region

        self.doc.push(edits.SetLoop(Region("Loop", a, b) if b > a else None))

    def _on_track_clicked(self, track_id: str) -> None:
        self.canvas.selected_track = track_id
        self.canvas.selection_changed.emit()
        self.sync_scrollbars()

    # -- zoom ------------------------------------------------------------------------
    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        """Zoom around ``anchor_x`` (default: the playhead if visible, else the centre)."""
        if anchor_x is None:
            x = self.geom.x_of(self.canvas.playhead)
            anchor_x = x if 0 <= x <= self.canvas.width() else self.canvas.width() / 2
        self.geom.zoom(factor, anchor_x)
        self.sync_scrollbars()

    def zoom_to_fit(self) -> None:
        """Show the whole song."""
        total = self.doc.project.length_samples() if self.doc is not None else 0
        self.geom.fit(int(max(total, 10 * self.geom.sample_rate) * 1.03), max(100, self.canvas.width()))
        self.sync_scrollbars()

    def fit_height(self, min_track_h: int = 36, max_track_h: int = 90) -> None:
        """Pick the track height that shows every row, within the limits."""
        rows = self.canvas.rows
        n_tracks = sum(1 for r in rows if r.kind == "track")
        if not n_tracks:
            return
        fixed = sum(r.h for r in rows if r.kind != "track")
        h = (self.canvas.height() - fixed - 2) // n_tracks
        self.set_track_height(int(max(min_track_h, min(max_track_h, h))))

    def set_track_height(self, h: int) -> None:
        """Track row height in pixels (36..240)."""
        self.canvas.track_h = max(36, min(240, h))
        self.canvas.relayout()
        self.sync_scrollbars()
