"""Track headers (name, colour, mute, solo, gain, pan) and take/control lane headers.

Headers sit in a column left of the lanes, one per row of :func:`ui.timeline.lanes.layout_rows`,
and follow the canvas' vertical scroll. Every change is a
``studio.edits.SetTrackProperty`` pushed on the undo stack (slider drags merge into
one undo step through the stack's command merging).
"""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import (QColorDialog, QFrame, QHBoxLayout, QInputDialog, QLabel, QMenu,
                             QSlider, QToolButton, QVBoxLayout, QWidget)

from ui.timeline.lanes import Row

HEADER_W = 210


class TrackHeader(QFrame):
    """Header of one track row."""

    clicked = pyqtSignal(str)

    def __init__(self, doc, track_id: str, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.track_id = track_id
        self.colour = QColor("#888")
        self.depth = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 4, 6, 4)
        lay.setSpacing(3)
        top = QHBoxLayout()
        top.setSpacing(3)
        self.name = QLabel(self)
        self.name.setObjectName("TrackName")
        self.kind = QLabel(self)
        self.kind.setObjectName("TrackKind")
        self.mute = QToolButton(self, text="M", checkable=True, objectName="Mute")
        self.solo = QToolButton(self, text="S", checkable=True, objectName="Solo")
        self.mute.setToolTip("Mute")
        self.solo.setToolTip("Solo")
        top.addWidget(self.name, 1)
        top.addWidget(self.kind)
        top.addWidget(self.mute)
        top.addWidget(self.solo)
        lay.addLayout(top)
        row2 = QHBoxLayout()
        row2.setSpacing(4)
        self.gain = QSlider(Qt.Orientation.Horizontal, self)
        self.gain.setRange(-600, 60)  # 0.1 dB steps
        self.gain.setToolTip("Gain (dB)")
        self.gain_label = QLabel(self)
        self.gain_label.setFixedWidth(44)
        self.gain_label.setObjectName("GainLabel")
        self.pan = QSlider(Qt.Orientation.Horizontal, self)
        self.pan.setRange(-100, 100)
        self.pan.setFixedWidth(46)
        self.pan.setToolTip("Pan")
        row2.addWidget(self.gain, 1)
        row2.addWidget(self.gain_label)
        row2.addWidget(self.pan)
        lay.addLayout(row2)
        lay.addStretch(1)
        self.row2_widgets = (self.gain, self.gain_label, self.pan)
        self.compact = False
        self.mute.toggled.connect(lambda v: self._set("mute", bool(v)))
        self.solo.toggled.connect(lambda v: self._set("solo", bool(v)))
        self.gain.valueChanged.connect(lambda v: self._set("gain_db", v / 10.0))
        self.pan.valueChanged.connect(lambda v: self._set("pan", v / 100.0))
        self.gain.setObjectName("Gain")
        self.pan.setObjectName("Pan")

    def set_compact(self, compact: bool) -> None:
        """One line (name, M, S) for short rows; gain and pan below otherwise."""
        if compact == self.compact:
            return
        self.compact = compact
        for w in self.row2_widgets:
            w.setVisible(not compact)
        m = 2 if compact else 4
        l, _, r, _ = self.layout().getContentsMargins()
        self.layout().setContentsMargins(l, m, r, m)

    def sync(self, track, depth: int, selected: bool) -> None:
        """Show the track's current values without emitting edits."""
        self.colour = QColor(track.colour)
        self.depth = depth
        m = 2 if self.compact else 4
        self.layout().setContentsMargins(12 + 14 * depth, m, 6, m)
        for w in (self.mute, self.solo, self.gain, self.pan):
            w.blockSignals(True)
        self.name.setText(track.name)
        self.kind.setText("MIDI" if track.kind == "midi" else "")
        self.mute.setChecked(track.mute)
        self.solo.setChecked(track.solo)
        self.gain.setValue(int(round(track.gain_db * 10)))
        self.pan.setValue(int(round(track.pan * 100)))
        self.gain_label.setText(f"{track.gain_db:+.1f} dB")
        for w in (self.mute, self.solo, self.gain, self.pan):
            w.blockSignals(False)
        if self.property("selected") != selected:
            self.setProperty("selected", selected)
            self.style().unpolish(self)
            self.style().polish(self)
        self.update()

    def _set(self, field: str, value) -> None:
        from studio import edits

        try:
            track = self.doc.project.track(self.track_id)
        except KeyError:
            return
        if getattr(track, field) == value:
            return
        self.doc.push(edits.SetTrackProperty(self.track_id, field, value))

    def paintEvent(self, e) -> None:  # noqa: N802
        super().paintEvent(e)
        p = QPainter(self)
        p.fillRect(0 + 14 * self.depth, 0, 5, self.height(), self.colour)
        p.end()

    def mousePressEvent(self, e) -> None:  # noqa: N802
        self.clicked.emit(self.track_id)
        super().mousePressEvent(e)

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
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
        from studio import edits

        self.doc.push(edits.RemoveTrack(self.track_id))


class LaneHeader(QFrame):
    """Header of a take lane or a control lane."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(24, 0, 6, 0)
        self.label = QLabel(text, self)
        lay.addWidget(self.label, 1)
        self.extra = lay


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
