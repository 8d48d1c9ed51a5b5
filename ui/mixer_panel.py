"""The mixer: one channel strip per track and the master strip, in a dock.

Each track strip has a peak/RMS meter, a fader (track gain, dB), a pan knob, mute and
solo, and a peak readout that is also the over indicator: it holds the highest peak
since playback started (or since it was clicked) and turns red when the track's
post-fader signal went above full scale. The master strip has the master fader and a
meter whose readout holds the master's **true peak** (ITU-R BS.1770-4, dBFS) and turns red
on any over (a sample or the true peak above 0 dBFS), which is what an export would clip.

The meters read what :class:`ui.playback.PlaybackController` measured on the blocks it
sent to the device (the render path's own stems and mix; no second mix engine): the
window calls :meth:`MixerPanel.update_levels` about 30 times a second while playing.

Every fader, knob and button pushes an undoable command (:class:`~studio.model.edits.SetTrackProperty`,
:class:`~studio.model.edits.SetProjectProperty`); a fader drag merges into one undo step.
"""
from __future__ import annotations

import math

from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import (QDial, QDoubleSpinBox, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                             QSizePolicy, QSlider, QVBoxLayout, QWidget)

from studio.audio.levels import gain_to_db
from ui.meter_ballistics import METER_MIN_DB, MeterBallistics

FADER_MIN_DB = -60.0
FADER_MAX_DB = 12.0


def _fmt_peak(db: float) -> str:
    if db == -math.inf or db < -99:
        return "-inf"
    return f"{db:+.1f}"


class LevelMeter(MeterBallistics, QWidget):
    """A vertical meter: the RMS as a filled bar, the peak as a bright line above it,
    scaled from :data:`~ui.meter_ballistics.METER_MIN_DB` to ``METER_MAX_DB`` dBFS with a
    red zone above 0; the held peak as an amber line. Readings and fall-back:
    :class:`ui.meter_ballistics.MeterBallistics` (``peak_db``, ``rms_db``, ``hold_db``).
    """

    def __init__(self, parent=None):
        QWidget.__init__(self, parent)
        MeterBallistics.__init__(self)
        self.setFixedWidth(14)
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

    def set_levels(self, peak: float, rms: float) -> None:
        """A new reading, linear full-scale units (1.0 = 0 dBFS)."""
        self.feed(peak, rms)
        self.update()

    def fall(self) -> bool:
        """No reading this tick: let the bar fall back."""
        changed = MeterBallistics.fall(self)
        if changed:
            self.update()
        return changed

    def reset_hold(self) -> None:
        MeterBallistics.reset_hold(self)
        self.update()

    def _y(self, db: float) -> float:
        return 1 + (self.height() - 2) * (1.0 - self.fraction(db))

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor("#141517"))
        zero = self._y(0.0)
        if self.rms_db > METER_MIN_DB:
            y = self._y(self.rms_db)
            p.fillRect(QRectF(2, y, w - 4, h - 1 - y), QColor("#3fb68b"))
            if y < zero:
                p.fillRect(QRectF(2, y, w - 4, zero - y), QColor("#e5533d"))
        if self.peak_db > METER_MIN_DB:
            y = self._y(self.peak_db)
            p.fillRect(QRectF(2, y - 1, w - 4, 2), QColor("#e5533d") if self.peak_db > 0 else QColor("#b9f5d8"))
        if self.hold_db > METER_MIN_DB:
            y = self._y(self.hold_db)
            p.fillRect(QRectF(0, y - 0.5, w, 1), QColor("#ffb13b"))
        p.setPen(QPen(QColor("#5a5e66"), 1))
        for db in (0, -6, -12, -24, -48):
            y = int(self._y(db))
            p.drawLine(0, y, 2, y)
            p.drawLine(w - 3, y, w - 1, y)
        p.end()


class Fader(QSlider):
    """A vertical gain fader in tenths of a dB; double-click sets 0 dB."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setRange(int(FADER_MIN_DB * 10), int(FADER_MAX_DB * 10))
        self.setSingleStep(5)
        self.setPageStep(30)
        self.setMinimumHeight(120)

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        self.setValue(0)


class PeakReadout(QPushButton):
    """The held peak as text (dBFS); red when over; click to reset."""

    def __init__(self, parent=None):
        super().__init__("-inf", parent)
        self.setFlat(True)
        self.setObjectName("PeakReadout")
        self.setToolTip("Highest peak since playback started (dBFS); red: went above full scale. Click to reset.")
        self.setFixedHeight(18)
        self.over = False

    def show_value(self, db: float, over: bool) -> None:
        self.setText(_fmt_peak(db))
        if over != self.over:
            self.over = over
            self.setStyleSheet("color: white; background: #c0392b; font-weight: bold;" if over else "")


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when the text is wider than the label."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.full = text
        self.setMinimumWidth(10)
        self._elide()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.full = text
        self._elide()

    def text_full(self) -> str:
        return self.full

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._elide()

    def _elide(self) -> None:
        w = max(10, self.width() - 2)
        super().setText(self.fontMetrics().elidedText(self.full, Qt.TextElideMode.ElideRight, w))


class _Strip(QFrame):
    """Common parts of a channel strip."""

    reset_requested = pyqtSignal(str)

    def __init__(self, key: str, title: str, colour: str, parent=None):
        super().__init__(parent)
        self.key = key
        self.setObjectName("MixerStrip")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(86)
        self._updating = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(3)
        self.colour_bar = QFrame(self)
        self.colour_bar.setFixedHeight(4)
        self.colour_bar.setStyleSheet(f"background: {colour};")
        lay.addWidget(self.colour_bar)
        self.name = ElidedLabel(title, self)
        self.name.setObjectName("MixerName")
        self.name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name.setToolTip(title)
        lay.addWidget(self.name)
        self.readout = PeakReadout(self)
        self.readout.clicked.connect(self._reset)
        lay.addWidget(self.readout)
        mid = QHBoxLayout()
        mid.setSpacing(4)
        self.fader = Fader(self)
        self.meter = LevelMeter(self)
        mid.addStretch(1)
        mid.addWidget(self.fader)
        mid.addWidget(self.meter)
        mid.addStretch(1)
        lay.addLayout(mid, 1)
        self.gain = QDoubleSpinBox(self)
        self.gain.setRange(FADER_MIN_DB, FADER_MAX_DB)
        self.gain.setDecimals(1)
        self.gain.setSingleStep(0.5)
        self.gain.setSuffix(" dB")
        self.gain.setKeyboardTracking(False)
        self.gain.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.gain.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.gain)
        self.fader.valueChanged.connect(lambda v: self._gain_edited(v / 10.0))
        self.gain.valueChanged.connect(self._gain_edited)
        self.layout_ = lay

    def _reset(self) -> None:
        self.meter.reset_hold()
        self.readout.show_value(-math.inf, False)
        self.reset_requested.emit(self.key)

    def show_gain(self, db: float) -> None:
        self._updating = True
        try:
            self.fader.setValue(int(round(db * 10)))
            self.gain.setValue(db)
        finally:
            self._updating = False

    def _gain_edited(self, db: float) -> None:
        if not self._updating:
            self.set_gain(round(float(db), 1))

    def set_gain(self, db: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def show_levels(self, peak: float | None, rms: float | None, over: bool, hold_peak: float | None = None) -> None:
        """Draw one reading (linear; None: nothing played this tick)."""
        if peak is None:
            self.meter.fall()
        else:
            self.meter.set_levels(peak, rms or 0.0)
        if hold_peak is not None:
            self.meter.hold_db = max(self.meter.hold_db, gain_to_db(hold_peak))
        self.readout.show_value(self.meter.hold_db, over)


class ChannelStrip(_Strip):
    """The strip of one track: meter, fader, pan, mute, solo."""

    def __init__(self, panel: "MixerPanel", track, parent=None):
        super().__init__(track.id, track.name, track.colour, parent)
        self.panel = panel
        self.track_id = track.id
        self.pan = QDial(self)
        self.pan.setRange(-100, 100)
        self.pan.setNotchesVisible(True)
        self.pan.setFixedSize(QSize(36, 36))
        self.pan.setToolTip("Pan (double-click the label for centre)")
        self.pan_label = QLabel("C", self)
        self.pan_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.pan)
        row.addStretch(1)
        self.layout_.insertLayout(3, row)
        self.layout_.insertWidget(4, self.pan_label)
        buttons = QHBoxLayout()
        self.mute = QPushButton("M", self)
        self.solo = QPushButton("S", self)
        for b, tip in ((self.mute, "Mute"), (self.solo, "Solo")):
            b.setCheckable(True)
            b.setFixedSize(QSize(30, 20))
            b.setToolTip(tip)
            buttons.addWidget(b)
        self.layout_.addLayout(buttons)
        self.pan.valueChanged.connect(self._pan_edited)
        self.mute.toggled.connect(lambda on: self._flag("mute", on))
        self.solo.toggled.connect(lambda on: self._flag("solo", on))
        self.show_track(track)

    def show_track(self, track) -> None:
        """Show the model's values (no command is pushed)."""
        self._updating = True
        try:
            self.name.setText(track.name)
            self.name.setToolTip(track.name)
            self.colour_bar.setStyleSheet(f"background: {track.colour};")
            self.fader.setValue(int(round(track.gain_db * 10)))
            self.gain.setValue(track.gain_db)
            self.pan.setValue(int(round(track.pan * 100)))
            self.pan_label.setText(_pan_text(track.pan))
            self.mute.setChecked(track.mute)
            self.solo.setChecked(track.solo)
        finally:
            self._updating = False

    def set_gain(self, db: float) -> None:
        from studio.model import edits

        self.panel.push(edits.SetTrackProperty(self.track_id, "gain_db", float(db)))

    def _pan_edited(self, value: int) -> None:
        from studio.model import edits

        self.pan_label.setText(_pan_text(value / 100.0))
        if not self._updating:
            self.panel.push(edits.SetTrackProperty(self.track_id, "pan", value / 100.0))

    def _flag(self, field: str, on: bool) -> None:
        from studio.model import edits

        if not self._updating:
            self.panel.push(edits.SetTrackProperty(self.track_id, field, bool(on)))


def _pan_text(pan: float) -> str:
    v = int(round(pan * 100))
    return "C" if v == 0 else f"L{-v}" if v < 0 else f"R{v}"


class MasterStrip(_Strip):
    """The master: fader (the project's master gain) and a true-peak readout."""

    def __init__(self, panel: "MixerPanel", parent=None):
        super().__init__("master", "Master", "#ffb13b", parent)
        self.panel = panel
        self.readout.setToolTip("Highest true peak of the mix since playback started (ITU-R BS.1770, dBFS); "
                                "red: the mix went above full scale and an export would clip. Click to reset.")
        self.setFixedWidth(96)
        tp = QLabel("true peak", self)
        tp.setAlignment(Qt.AlignmentFlag.AlignCenter)
        tp.setObjectName("MixerHint")
        self.layout_.insertWidget(3, tp)

    def set_gain(self, db: float) -> None:
        from studio.model import edits

        self.panel.push(edits.SetProjectProperty("master_gain_db", float(db)))


class MixerPanel(QWidget):
    """The mixer dock's widget.

    Attributes:
        strips: track id -> :class:`ChannelStrip`, in track order.
        master: the :class:`MasterStrip`.

    Signals:
        over_reset(str): a strip's over indicator was clicked (track id or ``"master"``).
    """

    over_reset = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.strips: dict[str, ChannelStrip] = {}
        outer = QHBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.host = QWidget(self.scroll)
        self.row = QHBoxLayout(self.host)
        self.row.setContentsMargins(2, 2, 2, 2)
        self.row.setSpacing(3)
        self.row.addStretch(1)
        self.scroll.setWidget(self.host)
        outer.addWidget(self.scroll, 1)
        self.master = MasterStrip(self, self)
        self.master.reset_requested.connect(self.over_reset)
        outer.addWidget(self.master)
        self._order: list[str] = []
        self.setMinimumHeight(300)

    def set_document(self, doc) -> None:
        """Show ``doc``'s tracks (rebuilt on every change of the track list)."""
        self.doc = doc
        self._order = []
        self.refresh()

    def push(self, command) -> None:
        if self.doc is not None:
            self.doc.push(command)

    def refresh(self) -> None:
        """Match the strips to the project (tracks added, removed, moved, values changed)."""
        if self.doc is None:
            return
        proj = self.doc.project
        order = [t.id for t in proj.tracks]
        if order != self._order:
            for strip in self.strips.values():
                self.row.removeWidget(strip)
                strip.deleteLater()
            self.strips = {}
            for i, t in enumerate(proj.tracks):
                strip = ChannelStrip(self, t, self.host)
                strip.reset_requested.connect(self.over_reset)
                self.row.insertWidget(i, strip)
                self.strips[t.id] = strip
            self._order = order
        else:
            for t in proj.tracks:
                self.strips[t.id].show_track(t)
        self.master.show_gain(proj.master_gain_db)

    def update_levels(self, levels: dict[str, tuple[float, float, float]], overs: set[str]) -> None:
        """One meter update: ``levels`` from :meth:`ui.playback.PlaybackController.take_levels`
        (id -> (peak, rms, true peak), linear), ``overs`` the ids that went over."""
        for tid, strip in self.strips.items():
            lv = levels.get(tid)
            strip.show_levels(lv[0] if lv else None, lv[1] if lv else None, tid in overs)
        lv = levels.get("master")
        self.master.show_levels(lv[0] if lv else None, lv[1] if lv else None, "master" in overs,
                                hold_peak=lv[2] if lv else None)

    def reset_holds(self) -> None:
        """Clear every held peak and over indicator (e.g. when playback starts)."""
        for strip in [*self.strips.values(), self.master]:
            strip.meter.reset_hold()
            strip.readout.show_value(-math.inf, False)
