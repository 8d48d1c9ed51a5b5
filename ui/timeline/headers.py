"""Track headers (name, colour, mute, solo, gain, pan) and take/control lane headers.

Headers sit in a column left of the lanes, one per row of :func:`ui.timeline.lanes.layout_rows`,
and follow the canvas' vertical scroll. Every change is a
``studio.model.edits.SetTrackProperty`` pushed on the undo stack (slider drags merge into
one undo step through the stack's command merging).
"""
from __future__ import annotations

from PyQt6.QtCore import QEvent, QRect, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter, QPixmap
from PyQt6.QtWidgets import QColorDialog, QInputDialog, QMenu, QToolTip, QWidget

from ui.meter_ballistics import METER_MIN_DB, MeterBallistics
from ui.timeline.lanes import Row
from ui.timeline.tiles import painted_pixmap

HEADER_W = 210

# the header palette (the rest of the window's look is in resources/dark.qss)
_HDR_BG = QColor("#2c2e33")
_HDR_SELECTED = QColor("#393c42")
_HDR_LINE = QColor("#1b1c1f")
_NAME = QColor("#e8e8ea")
_DIM = QColor("#8a8f98")
_GAIN_TEXT = QColor("#a0a4ab")
_BTN_BG = QColor("#3a3d42")
_BTN_EDGE = QColor("#24262a")
_BTN_TEXT_ON = QColor("#111111")
_MUTE_ON = QColor("#ffb13b")
_SOLO_ON = QColor("#4fa3ff")
_GROOVE = QColor("#1b1c1f")
_FILL = QColor("#7c8592")
_HANDLE = QColor("#c8cbd0")
_LANE_BG = QColor("#222428")
_LANE_TEXT = QColor("#9aa0a8")
_METER_BG = QColor("#141517")
_METER_RMS = QColor("#3fb68b")
_METER_PEAK = QColor("#b9f5d8")
_METER_RED = QColor("#e5533d")
METER_W = 5
"""Width of the level meter at a track header's right edge, pixels."""


class TrackHeader(QWidget):
    """Header of one track row: colour strip, name, M and S buttons, gain and pan faders,
    and a level meter at the right edge (post-fader peak and RMS while playing, red on
    top once the track went over full scale).

    Painted in one ``paintEvent`` (no child widgets), as DAWs draw their track controls:
    a header repaints in well under a millisecond, so scrolling, adding stem tracks and
    every edit that moves rows stay cheap. Mouse: click M/S to toggle, drag a fader
    (Shift for fine steps), double-click a fader to reset it (0 dB, centre), double-click
    elsewhere to rename, right-click for the menu; a press anywhere else selects the
    track (``clicked``). Every change is a ``SetTrackProperty`` on the undo stack; a fader
    drag merges into one undo step.
    """

    clicked = pyqtSignal(str)

    GAIN_RANGE = (-60.0, 6.0)  # dB
    ROW1_H = 18

    def __init__(self, doc, track_id: str, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.track_id = track_id
        self.colour = QColor("#888")
        self.depth = 0
        self.compact = False
        self.selected = False
        self.track_name = ""
        self.kind_text = ""
        self.mute = False
        self.solo = False
        self.gain_db = 0.0
        self.pan = 0.0
        self._drag: str | None = None  # "gain" or "pan" while a fader is dragged
        self._drag_from: tuple[float, float] = (0.0, 0.0)  # (x, value) at the press
        self._cache: QPixmap | None = None
        self._cache_key: tuple | None = None
        self.level = MeterBallistics()
        self.over = False
        self.setMouseTracking(False)
        self._fonts()

    def _fonts(self) -> None:
        self.name_font = QFont(self.font())
        self.name_font.setBold(True)
        self.small_font = QFont(self.font())
        self.small_font.setPixelSize(9)

    # -- geometry ----------------------------------------------------------------------
    def rects(self) -> dict[str, QRect]:
        """Hit and paint rectangles of the controls, in widget pixels."""
        w, h = self.width(), self.height()
        left = 12 + 14 * self.depth
        top = 2 if self.compact else 4
        r: dict[str, QRect] = {}
        r["meter"] = QRect(w - 3 - METER_W, 3, METER_W, max(1, h - 6))
        r["solo"] = QRect(r["meter"].left() - 5 - 18, top, 18, 16)
        r["mute"] = QRect(r["solo"].left() - 3 - 18, top, 18, 16)
        r["kind"] = QRect(r["mute"].left() - 3 - 28, top, 28, 16)
        r["name"] = QRect(left, top, max(0, r["kind"].left() - 3 - left), 16)
        if not self.compact and h >= top + self.ROW1_H + 16:
            y = top + self.ROW1_H + 3
            r["pan"] = QRect(r["meter"].left() - 5 - 46, y, 46, 14)
            r["gain_label"] = QRect(r["pan"].left() - 4 - 44, y, 44, 14)
            r["gain"] = QRect(left, y, max(10, r["gain_label"].left() - 4 - left), 14)
        return r

    def _gain_fraction(self) -> float:
        lo, hi = self.GAIN_RANGE
        return (min(hi, max(lo, self.gain_db)) - lo) / (hi - lo)

    def control_at(self, pos) -> str | None:
        """Name of the control under ``pos`` ("mute", "solo", "gain", "pan") or None."""
        for key in ("mute", "solo", "gain", "pan"):
            rect = self.rects().get(key)
            if rect is not None and rect.adjusted(-2, -3, 2, 3).contains(pos):
                return key
        return None

    # -- model -------------------------------------------------------------------------
    def set_compact(self, compact: bool) -> None:
        """One line (name, M, S) for short rows; gain and pan below otherwise."""
        if compact != self.compact:
            self.compact = compact
            self.update()

    def sync(self, track, depth: int, selected: bool) -> None:
        """Show the track's current values (repaints only when something shown changed)."""
        state = (QColor(track.colour), depth, selected, track.name, "MIDI" if track.kind == "midi" else "",
                 bool(track.mute), bool(track.solo), float(track.gain_db), float(track.pan))
        if state == (self.colour, self.depth, self.selected, self.track_name, self.kind_text, self.mute,
                     self.solo, self.gain_db, self.pan):
            return
        (self.colour, self.depth, self.selected, self.track_name, self.kind_text, self.mute,
         self.solo, self.gain_db, self.pan) = state
        self.setAccessibleName(f"Track {track.name}")
        self.update()

    def _set(self, field: str, value) -> None:
        from studio.model import edits

        try:
            track = self.doc.project.track(self.track_id)
        except KeyError:
            return
        if getattr(track, field) == value:
            return
        self.doc.push(edits.SetTrackProperty(self.track_id, field, value))

    def set_gain_db(self, db: float) -> None:
        """Set the track gain, dB (clamped to -60..+6, 0.1 dB steps)."""
        lo, hi = self.GAIN_RANGE
        self._set("gain_db", round(min(hi, max(lo, float(db))), 1))

    def set_pan(self, pan: float) -> None:
        """Set the pan, -1 (left) .. +1 (right), 0.01 steps."""
        self._set("pan", round(min(1.0, max(-1.0, float(pan))), 2))

    # -- painting ----------------------------------------------------------------------
    def paintEvent(self, e) -> None:  # noqa: N802
        """Blit the header's pixmap, redrawn only when what it shows changed (rows that
        merely move, e.g. when stem tracks are inserted above, cost one blit)."""
        dpr = self.devicePixelRatioF()
        key = (self.width(), self.height(), dpr, self.compact, self.colour.rgba(), self.depth, self.selected,
               self.track_name, self.kind_text, self.mute, self.solo, self.gain_db, self.pan)
        if key != self._cache_key:
            self._cache = painted_pixmap(self.width(), self.height(), dpr, self._paint)
            self._cache_key = key
        p = QPainter(self)
        p.drawPixmap(0, 0, self._cache)
        self._paint_meter(p)
        p.end()

    def show_levels(self, peak: float | None, rms: float | None, over: bool) -> None:
        """One meter reading of this track (linear full-scale units; None: nothing played
        since the last one, the meter falls back); ``over``: it went above full scale."""
        changed = over != self.over
        self.over = over
        if peak is None:
            changed = self.level.fall() or changed
        else:
            self.level.feed(peak, rms or 0.0)
            changed = True
        if changed:
            self.update(self.rects()["meter"].adjusted(-1, -1, 1, 1))

    def _paint_meter(self, p: QPainter) -> None:
        """The meter over the cached pixmap (it changes 30 times a second while playing;
        the rest of the header does not)."""
        r = QRectF(self.rects()["meter"])
        p.fillRect(r, _METER_BG)
        top, h = r.top(), r.height()

        def y(db: float) -> float:
            return top + h * (1.0 - self.level.fraction(db))

        zero = y(0.0)
        if self.level.rms_db > METER_MIN_DB:
            yr = y(self.level.rms_db)
            p.fillRect(QRectF(r.left(), yr, r.width(), r.bottom() - yr), _METER_RMS)
            if yr < zero:
                p.fillRect(QRectF(r.left(), yr, r.width(), zero - yr), _METER_RED)
        if self.level.peak_db > METER_MIN_DB:
            yp = y(self.level.peak_db)
            p.fillRect(QRectF(r.left(), yp - 1, r.width(), 2), _METER_RED if self.level.peak_db > 0 else _METER_PEAK)
        if self.over:
            p.fillRect(QRectF(r.left(), top, r.width(), 3), _METER_RED)

    def _paint(self, p: QPainter) -> None:
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, _HDR_SELECTED if self.selected else _HDR_BG)
        p.fillRect(0, h - 1, w, 1, _HDR_LINE)
        p.fillRect(14 * self.depth, 0, 5, h - 1, self.colour)
        r = self.rects()
        p.setFont(self.name_font)
        p.setPen(_NAME)
        fm = p.fontMetrics()
        name = fm.elidedText(self.track_name, Qt.TextElideMode.ElideRight, r["name"].width())
        p.drawText(r["name"], int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), name)
        p.setFont(self.small_font)
        if self.kind_text:
            p.setPen(_DIM)
            p.drawText(r["kind"], int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight), self.kind_text)
        for key, text, on, colour in (("mute", "M", self.mute, _MUTE_ON), ("solo", "S", self.solo, _SOLO_ON)):
            rect = r[key]
            p.setPen(_BTN_EDGE)
            p.setBrush(colour if on else _BTN_BG)
            p.drawRoundedRect(QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5), 3, 3)
            p.setPen(_BTN_TEXT_ON if on else _NAME)
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        if "gain" in r:
            self._fader(p, r["gain"], self._gain_fraction(), 0.0)
            p.setPen(_GAIN_TEXT)
            p.drawText(r["gain_label"], int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                       f"{self.gain_db:+.1f} dB")
            self._fader(p, r["pan"], (self.pan + 1.0) / 2.0, 0.5)

    @staticmethod
    def _fader(p: QPainter, rect: QRect, fraction: float, origin: float) -> None:
        """A horizontal fader: groove, the filled part from ``origin`` (0..1), a handle."""
        y = rect.center().y()
        x0, span = rect.left() + 4, max(1, rect.width() - 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(_GROOVE)
        p.drawRoundedRect(QRectF(rect.left(), y - 2, rect.width(), 4), 2, 2)
        hx = x0 + fraction * span
        ox = x0 + origin * span
        p.setBrush(_FILL)
        p.drawRect(QRectF(min(ox, hx), y - 2, abs(hx - ox), 4))
        p.setBrush(_HANDLE)
        p.drawRoundedRect(QRectF(hx - 4, y - 6, 8, 12), 3, 3)

    # -- mouse -------------------------------------------------------------------------
    def event(self, e) -> bool:  # noqa: D102 - tooltips per control
        if e.type() == QEvent.Type.ToolTip:
            tips = {"mute": "Mute", "solo": "Solo", "gain": f"Gain {self.gain_db:+.1f} dB (double-click: 0 dB)",
                    "pan": f"Pan {self._pan_text()} (double-click: centre)"}
            tip = tips.get(self.control_at(e.position().toPoint()))
            if tip:
                QToolTip.showText(e.globalPosition().toPoint(), tip, self)
            else:
                QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)

    def _pan_text(self) -> str:
        if abs(self.pan) < 0.005:
            return "C"
        return f"{abs(self.pan) * 100:.0f}{'L' if self.pan < 0 else 'R'}"

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if e.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(e)
            return
        pos = e.position()
        control = self.control_at(pos.toPoint())
        if control in ("mute", "solo"):
            self._set(control, not getattr(self, control))
            return
        if control in ("gain", "pan"):
            self._new_gesture()
            self._drag = control
            self._drag_from = (pos.x(), self._gain_fraction() if control == "gain" else (self.pan + 1) / 2)
            rect = self.rects()[control]
            handle = rect.left() + 4 + self._drag_from[1] * max(1, rect.width() - 8)
            if abs(pos.x() - handle) > 6:  # a click beside the handle jumps there
                self._drag_from = (pos.x(), (pos.x() - rect.left() - 4) / max(1, rect.width() - 8))
                self._drag_to(pos.x(), fine=False)
            return
        self.clicked.emit(self.track_id)

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self._drag is not None:
            self._drag_to(e.position().x(), fine=bool(e.modifiers() & Qt.KeyboardModifier.ShiftModifier))

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        self._drag = None

    def _new_gesture(self) -> None:
        """The next fader edit starts a new undo step (a drag merges only within itself)."""
        stack = getattr(self.doc, "undo_stack", None)
        if stack is not None:
            stack.break_merge()

    def _drag_to(self, x: float, *, fine: bool) -> None:
        rect = self.rects().get(self._drag or "")
        if rect is None:
            return
        x_from, value_from = self._drag_from
        fraction = value_from + (x - x_from) / max(1, rect.width() - 8) * (0.1 if fine else 1.0)
        fraction = min(1.0, max(0.0, fraction))
        if self._drag == "gain":
            lo, hi = self.GAIN_RANGE
            self.set_gain_db(lo + fraction * (hi - lo))
        else:
            self.set_pan(fraction * 2.0 - 1.0)

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        control = self.control_at(e.position().toPoint())
        if control in ("gain", "pan"):
            self._new_gesture()
        if control == "gain":
            self.set_gain_db(0.0)
        elif control == "pan":
            self.set_pan(0.0)
        elif control is None:
            self.rename()

    def contextMenuEvent(self, e) -> None:  # noqa: N802
        menu = QMenu(self)
        menu.addAction("Rename…", self.rename)
        menu.addAction("Colour…", self.pick_colour)
        menu.addAction("Delete track", self.delete)
        win = self.window()
        for name in ("add_control_melody", "add_control_dynamics", "add_control_rhythm"):
            act = getattr(win, "actions_by_name", {}).get(name)
            if act is not None:
                menu.addAction(act)
        menu.exec(e.globalPos())

    def rename(self) -> None:
        """Ask for a new name (SetTrackProperty)."""
        track = self.doc.project.track(self.track_id)
        name, ok = QInputDialog.getText(self, "Rename track", "Name:", text=track.name)
        if ok and name.strip():
            self._set("name", name.strip())

    def pick_colour(self) -> None:
        """Ask for a colour (SetTrackProperty)."""
        c = QColorDialog.getColor(self.colour, self, "Track colour")
        if c.isValid():
            self._set("colour", c.name())

    def delete(self) -> None:
        """Remove the track (RemoveTrack)."""
        from studio.model import edits

        self.doc.push(edits.RemoveTrack(self.track_id))


class LaneHeader(QWidget):
    """Header of a take lane or a control lane: its label, painted (no child widgets)."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.text = text
        self.label_font = QFont(self.font())
        self.label_font.setPixelSize(10)

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, _LANE_BG)
        p.fillRect(0, h - 1, w, 1, _HDR_LINE)
        p.setFont(self.label_font)
        p.setPen(_LANE_TEXT)
        p.drawText(QRect(24, 0, max(0, w - 30), h - 1), int(Qt.AlignmentFlag.AlignVCenter), self.text)
        p.end()


class HeaderColumn(QWidget):
    """The column of headers, kept in step with the canvas rows and vertical scroll."""

    track_clicked = pyqtSignal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.setFixedWidth(HEADER_W)
        self.tracks: dict[str, TrackHeader] = {}
        self.lanes: dict[tuple, LaneHeader] = {}
        self.selected: str | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # background from dark.qss

    def set_document(self, doc) -> None:
        """Drop every header; the next sync builds them for ``doc``."""
        for w in list(self.tracks.values()) + list(self.lanes.values()):
            w.deleteLater()
        self.tracks.clear()
        self.lanes.clear()
        self.doc = doc

    def sync(self, rows: list[Row], vscroll: int) -> None:
        """Create, update, move and drop headers to match ``rows``."""
        seen_t: set[str] = set()
        seen_l: set[tuple] = set()
        for row in rows:
            y = row.y - vscroll
            if row.kind == "track":
                h = self.tracks.get(row.track.id)
                if h is None:
                    h = self.tracks[row.track.id] = TrackHeader(self.doc, row.track.id, self)
                    h.clicked.connect(self.track_clicked)
                    h.show()
                h.set_compact(row.h < 50)
                h.sync(row.track, row.depth, row.track.id == self.selected)
                h.setGeometry(0, y, self.width(), row.h)
                seen_t.add(row.track.id)
            else:
                key = (row.track.id, row.kind, row.index, row.key)
                h = self.lanes.get(key)
                if h is None:
                    text = f"Take lane {row.index + 1}" if row.kind == "take" else f"{row.key.capitalize()} control"
                    h = self.lanes[key] = LaneHeader(text, self)
                    h.show()
                h.setGeometry(0, y, self.width(), row.h)
                seen_l.add(key)
        for k in [k for k in self.tracks if k not in seen_t]:
            self.tracks.pop(k).deleteLater()
        for k in [k for k in self.lanes if k not in seen_l]:
            self.lanes.pop(k).deleteLater()

    def update_levels(self, levels: dict[str, tuple[float, float, float]], overs: set[str]) -> None:
        """One meter update of every track header: ``levels`` as
        :meth:`ui.playback.PlaybackController.take_levels` gives them (track id ->
        (peak, rms, true peak), linear), ``overs`` the ids that went over full scale."""
        for tid, header in self.tracks.items():
            lv = levels.get(tid)
            header.show_levels(lv[0] if lv else None, lv[1] if lv else None, tid in overs)
