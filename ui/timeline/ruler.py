"""The bars/beats ruler above the lanes, with the loop range and the playhead.

Click or drag in the ruler to move the playhead; drag with Shift (or in the lower
third) to set the loop range. Labels are bar numbers (1-based, as in every DAW),
with beats as ``bar.beat`` when zoomed in.
"""
from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter, QPixmap, QPolygonF
from PyQt6.QtWidgets import QWidget

from ui import theme
from ui.timeline.geometry import TimelineGeometry, grid_step_ticks, snap_sample
from ui.timeline.tiles import painted_pixmap

RULER_H = 30


class Ruler(QWidget):
    """Bars/beats ruler.

    Signals:
        playhead_moved(int): sample clicked.
        loop_changed(int, int): new loop range ``[start, end)`` in samples (start == end clears).
    """

    playhead_moved = pyqtSignal(int)
    loop_changed = pyqtSignal(int, int)

    def __init__(self, doc, geom: TimelineGeometry, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.geom = geom
        self.playhead = 0
        self.loop: tuple[int, int] | None = None
        self._loop_anchor: int | None = None
        self.setFixedHeight(RULER_H)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._layer: QPixmap | None = None  # ticks, labels and loop; the playhead is drawn on top
        self._layer_key: tuple | None = None

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        """The cached layer of ticks and labels (redrawn only when the view, the tempo map
        or the loop changed), then the playhead: moving the playhead during playback costs
        one pixmap blit."""
        w, h = self.width(), self.height()
        tm = self.doc.project.tempo_map if self.doc is not None else None
        key = (w, h, self.devicePixelRatioF(), self.geom.samples_per_px, self.geom.origin, self.loop,
               id(self.doc), tuple((t.tick, t.bpm) for t in tm.tempos) if tm else (),
               tuple((s.tick, s.numerator, s.denominator) for s in tm.signatures) if tm else ())
        if self._layer is None or key != self._layer_key:
            self._layer = painted_pixmap(w, h, self.devicePixelRatioF(), lambda lp: self._paint_layer(lp, w, h))
            self._layer_key = key
        p.drawPixmap(0, 0, self._layer)
        if self.doc is None:
            return
        x = self.geom.x_of(self.playhead)
        p.setBrush(theme.PLAYHEAD)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawPolygon(QPolygonF([QPointF(x - 5, h - 10), QPointF(x + 5, h - 10), QPointF(x, h)]))

    def _paint_layer(self, p: QPainter, w: int, h: int) -> None:
        p.fillRect(0, 0, w, h, theme.RULER_BG)
        p.fillRect(0, h - 1, w, 1, QColor("#16171a"))
        if self.doc is None:
            return
        proj = self.doc.project
        tm, sr = proj.tempo_map, proj.sample_rate
        if self.loop:
            x0, x1 = self.geom.x_of(self.loop[0]), self.geom.x_of(self.loop[1])
            p.fillRect(QRectF(x0, h - 9, x1 - x0, 8), QColor(255, 190, 60, 150))
        step = grid_step_ticks(tm, sr, self.geom.samples_per_px, 14.0)
        label_step = grid_step_ticks(tm, sr, self.geom.samples_per_px, 56.0)
        t0 = max(0, tm.sample_to_tick(self.geom.sample_at(0), sr) - step)
        t1 = tm.sample_to_tick(self.geom.sample_at(w), sr) + step
        font = QFont()
        font.setPointSizeF(8)
        p.setFont(font)
        for tick in tm.grid_ticks(t0, t1, step):
            x = int(self.geom.x_of(tm.tick_to_sample(tick, sr)))
            bar, beat, in_beat = tm.bar_beat_at(tick)
            major = beat == 0 and in_beat == 0
            p.fillRect(x, h - (12 if major else 6), 1, 12 if major else 6,
                       theme.TEXT_DIM if major else QColor("#55595f"))
            if tick % label_step == 0 or (major and label_step <= tm.signature_at(tick).ticks_per_bar):
                p.setPen(theme.TEXT if major else theme.TEXT_DIM)
                text = f"{bar + 1}" if major else f"{bar + 1}.{beat + 1}"
                p.drawText(QPointF(x + 3, 12), text)

    def _sample(self, x: float) -> int:
        s = self.geom.sample_at(x)
        proj = self.doc.project
        step = grid_step_ticks(proj.tempo_map, proj.sample_rate, self.geom.samples_per_px)
        return snap_sample(s, proj.tempo_map, proj.sample_rate, step)

    def mousePressEvent(self, e) -> None:  # noqa: N802
        s = self._sample(e.position().x())
        if e.modifiers() & Qt.KeyboardModifier.ShiftModifier or e.position().y() > self.height() * 0.66:
            self._loop_anchor = s
        else:
            self._loop_anchor = None
            self.playhead_moved.emit(self.geom.sample_at(e.position().x()))

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        s = self._sample(e.position().x())
        if self._loop_anchor is not None:
            a, b = sorted((self._loop_anchor, s))
            self.loop = (a, b) if b > a else None
            self.update()
        elif e.buttons():
            self.playhead_moved.emit(self.geom.sample_at(e.position().x()))

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        if self._loop_anchor is not None:
            a, b = self.loop or (0, 0)
            self.loop_changed.emit(a, b)
        self._loop_anchor = None
