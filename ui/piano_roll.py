"""A basic piano roll for one MIDI clip: add, move, resize and delete notes, velocity, quantize.

A ruler above the notes shows the song's bar numbers and beats (the project's tempo map,
so bar 5 here is bar 5 of the arrangement), and the grid's bar lines follow the meter.

Mouse: double-click on empty grid adds a note one grid step long; drag a note to move it
(time and pitch); drag its right edge to resize; right-click or Delete removes the
selected notes; drag in the velocity strip to set velocities. Every gesture commits one
:class:`studio.model.edits.SetNotes` on release (one undo step). Quantize snaps note starts
(and optionally ends) to the grid, as in every DAW's quantize with 100 % strength.
"""
from __future__ import annotations

import copy

from PyQt6.QtCore import QEvent, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QComboBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.model.project import Note
from studio.model.timebase import PPQ

KEY_W = 44
ROW_H = 10
VEL_H = 70
GRIDS = {"1/4": PPQ, "1/8": PPQ // 2, "1/16": PPQ // 4, "1/32": PPQ // 8, "1/8T": PPQ // 3}
BLACK = {1, 3, 6, 8, 10}


def quantize_notes(notes: list[Note], grid: int, *, ends: bool = False) -> list[Note]:
    """Notes with starts (and ends when ``ends``) rounded to multiples of ``grid`` ticks;
    lengths stay >= 1 grid step when ends are quantized, >= 1 tick otherwise."""
    out = []
    for n in notes:
        start = int(round(n.start / grid)) * grid
        if ends:
            end = max(start + grid, int(round(n.end / grid)) * grid)
            length = end - start
        else:
            length = max(1, n.length)
        out.append(Note(n.pitch, n.velocity, max(0, start), length))
    return out


class PianoRollCanvas(QWidget):
    """The note grid and the velocity strip of one clip (ticks relative to the clip start)."""

    def __init__(self, editor: "PianoRollWindow"):
        super().__init__(editor)
        self.editor = editor
        self.px_per_tick = 0.1
        self.x_offset = 0  # first tick shown
        self.top_pitch = 96
        self.selected: set[int] = set()
        self._drag = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(600, 360)

    # -- geometry --------------------------------------------------------------------
    def grid_h(self) -> int:
        """Height of the note grid (above the velocity strip), pixels."""
        return self.height() - VEL_H

    def x_of(self, tick: float) -> float:
        """Pixel x of a clip-relative tick."""
        return KEY_W + (tick - self.x_offset) * self.px_per_tick

    def tick_at(self, x: float) -> int:
        """Clip-relative tick at pixel x (>= 0)."""
        return max(0, int(round((x - KEY_W) / self.px_per_tick + self.x_offset)))

    def y_of(self, pitch: int) -> float:
        """Pixel y of the top of a pitch row."""
        return (self.top_pitch - pitch) * ROW_H

    def pitch_at(self, y: float) -> int:
        """MIDI pitch at pixel y."""
        return max(0, min(127, self.top_pitch - int(y // ROW_H)))

    def note_rect(self, n: Note) -> QRectF:
        """Rectangle of a note, pixels."""
        return QRectF(self.x_of(n.start), self.y_of(n.pitch), max(3.0, n.length * self.px_per_tick), ROW_H - 1)

    def note_at(self, x: float, y: float) -> int | None:
        """Index of the topmost note under a point, or None."""
        for i in range(len(self.editor.notes) - 1, -1, -1):
            if self.note_rect(self.editor.notes[i]).contains(x, y):
                return i
        return None

    # -- paint ----------------------------------------------------------------------------
    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        w, gh = self.width(), self.grid_h()
        p.fillRect(0, 0, w, self.height(), QColor("#1e2023"))
        for pitch in range(self.top_pitch, self.top_pitch - gh // ROW_H - 2, -1):
            y = self.y_of(pitch)
            shade = QColor("#1a1b1e") if pitch % 12 in BLACK else QColor("#24262a")
            p.fillRect(QRectF(KEY_W, y, w, ROW_H), shade)
            p.fillRect(QRectF(0, y, KEY_W - 2, ROW_H - 1), QColor("#222") if pitch % 12 in BLACK else QColor("#ddd"))
            if pitch % 12 == 0:
                p.setPen(QColor("#555"))
                p.drawText(QRectF(2, y - 1, KEY_W - 6, ROW_H + 2), Qt.AlignmentFlag.AlignRight, f"C{pitch // 12 - 1}")
        grid = self.editor.grid()
        clip = self.editor.clip
        bar = PPQ * 4
        step = grid
        while step * self.px_per_tick < 6 and step < bar * 64:  # keep lines at least 6 px apart
            step = PPQ if step < PPQ else step * 2
        t = (self.x_offset // step) * step
        while self.x_of(t) < w and t <= clip.length + bar:
            x = self.x_of(t)
            if x >= KEY_W:
                p.fillRect(QRectF(x, 0, 1, gh), QColor("#2c2f34"))
            t += step
        for t, _label in self.editor.bar_lines(self.x_offset, self.tick_at(w) + 1):  # the project's bar lines
            x = self.x_of(t)
            if x >= KEY_W:
                p.fillRect(QRectF(x, 0, 1, gh), QColor("#4a4f57"))
        p.fillRect(QRectF(self.x_of(clip.length), 0, 2, gh), QColor("#ffb13b"))
        colour = QColor(self.editor.colour)
        for i, n in enumerate(self.editor.notes):
            r = self.note_rect(n)
            c = QColor(colour).lighter(100 + n.velocity // 2)
            p.fillRect(r, c)
            p.setPen(QPen(QColor("#ffffff") if i in self.selected else QColor(0, 0, 0, 160), 1))
            p.drawRect(r)
        # velocity strip
        p.fillRect(QRectF(0, gh, w, VEL_H), QColor("#17181a"))
        p.setPen(QColor("#8a8f98"))
        p.drawText(QRectF(2, gh + 2, KEY_W, 14), "Vel")
        for i, n in enumerate(self.editor.notes):
            hh = (VEL_H - 6) * n.velocity / 127
            p.fillRect(QRectF(self.x_of(n.start), gh + VEL_H - hh - 2, 3, hh),
                       QColor("#ffffff") if i in self.selected else colour)
        p.end()

    # -- mouse ------------------------------------------------------------------------------
    def mousePressEvent(self, e) -> None:  # noqa: N802
        x, y = e.position().x(), e.position().y()
        notes = self.editor.notes
        if y >= self.grid_h():
            self._drag = ("velocity", x, y)
            self._set_velocity_at(x, y)
            return
        i = self.note_at(x, y)
        if e.button() == Qt.MouseButton.RightButton:
            if i is not None:
                del notes[i]
                self.selected.clear()
                self.editor.commit("Delete note")
            return
        if i is None:
            self.selected.clear()
            self.update()
            return
        if i not in self.selected:
            self.selected = {i} if not (e.modifiers() & Qt.KeyboardModifier.ShiftModifier) else self.selected | {i}
        r = self.note_rect(notes[i])
        mode = "resize" if r.right() - x < 6 else "move"
        self._drag = (mode, x, y, {j: copy.copy(notes[j]) for j in self.selected})
        self.update()

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self._drag is None:
            i = self.note_at(e.position().x(), e.position().y())
            edge = i is not None and self.note_rect(self.editor.notes[i]).right() - e.position().x() < 6
            self.setCursor(Qt.CursorShape.SizeHorCursor if edge else Qt.CursorShape.ArrowCursor)
            return
        x, y = e.position().x(), e.position().y()
        if self._drag[0] == "velocity":
            self._set_velocity_at(x, y)
            return
        mode, x0, y0, orig = self._drag
        grid = self.editor.grid()
        dt = int(round((x - x0) / self.px_per_tick / grid)) * grid
        dp = int(round((y0 - y) / ROW_H))
        for j, n in orig.items():
            if mode == "move":
                self.editor.notes[j] = Note(max(0, min(127, n.pitch + dp)), n.velocity, max(0, n.start + dt), n.length)
            else:
                self.editor.notes[j] = Note(n.pitch, n.velocity, n.start, max(grid // 2 or 1, n.length + dt))
        self.update()

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        d, self._drag = self._drag, None
        if d is None:
            return
        label = {"velocity": "Set velocity", "move": "Move notes", "resize": "Resize notes"}[d[0]]
        self.editor.commit(label)

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        x, y = e.position().x(), e.position().y()
        if y >= self.grid_h() or self.note_at(x, y) is not None:
            return
        grid = self.editor.grid()
        start = (self.tick_at(x) // grid) * grid
        self.editor.notes.append(Note(self.pitch_at(y), 100, start, grid))
        self.selected = {len(self.editor.notes) - 1}
        self.editor.commit("Add note")

    def wheelEvent(self, e) -> None:  # noqa: N802
        """Wheel: pitch scroll; Shift+wheel: time scroll; Ctrl+wheel: time zoom."""
        dy = e.angleDelta().y() or e.angleDelta().x()
        mods = e.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            anchor = self.tick_at(e.position().x())
            self.px_per_tick = max(0.002, min(2.0, self.px_per_tick * (1.25 if dy > 0 else 0.8)))
            self.x_offset = max(0, int(anchor - (e.position().x() - KEY_W) / self.px_per_tick))
        elif mods & Qt.KeyboardModifier.ShiftModifier or e.angleDelta().x():
            self.x_offset = max(0, int(self.x_offset - dy / 120 * 60 / self.px_per_tick))
        else:
            self.top_pitch = max(12, min(127, self.top_pitch + (2 if dy > 0 else -2)))
        self.update()

    def fit(self) -> None:
        """Show the whole clip horizontally and its notes vertically."""
        clip = self.editor.clip
        self.px_per_tick = max(0.002, (self.width() - KEY_W - 8) / max(1, clip.length))
        self.x_offset = 0
        if self.editor.notes:
            hi = max(n.pitch for n in self.editor.notes)
            lo = min(n.pitch for n in self.editor.notes)
            rows = max(1, self.grid_h() // ROW_H)
            self.top_pitch = min(127, max(hi + 3, (hi + lo) // 2 + rows // 2))
        self.update()

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selected:
            self.editor.notes = [n for i, n in enumerate(self.editor.notes) if i not in self.selected]
            self.selected.clear()
            self.editor.commit("Delete notes")
        else:
            super().keyPressEvent(e)

    def _set_velocity_at(self, x: float, y: float) -> None:
        v = int(max(1, min(127, round((self.height() - 2 - y) / (VEL_H - 6) * 127))))
        for i, n in enumerate(self.editor.notes):
            if abs(self.x_of(n.start) - x) <= 4:
                self.editor.notes[i] = Note(n.pitch, v, n.start, n.length)
        self.update()


class PianoRollRuler(QWidget):
    """Bar numbers and beat ticks of the project's tempo map over the piano roll (the same
    x scale as the note grid): bar N here is bar N of the song, wherever the clip starts."""

    HEIGHT = 20

    def __init__(self, editor: "PianoRollWindow"):
        super().__init__(editor)
        self.editor = editor
        self.setFixedHeight(self.HEIGHT)

    def paintEvent(self, e) -> None:  # noqa: N802
        c = self.editor.canvas
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor("#17181a"))
        lo, hi = c.x_offset, c.tick_at(w) + 1
        for t in self.editor.beat_ticks(lo, hi):
            x = c.x_of(t)
            if x >= KEY_W:
                p.fillRect(QRectF(x, h - 5, 1, 5), QColor("#4a4f57"))
        p.setPen(QColor("#c9ccd1"))
        last_x = -1e9
        for t, label in self.editor.bar_lines(lo, hi):
            x = c.x_of(t)
            if x < KEY_W:
                continue
            p.fillRect(QRectF(x, 0, 1, h), QColor("#8a8f98"))
            if x - last_x >= 28:  # keep the numbers readable when zoomed out
                p.drawText(QRectF(x + 3, 0, 60, h - 4), Qt.AlignmentFlag.AlignVCenter, label)
                last_x = x
        p.setPen(QColor("#8a8f98"))
        p.drawText(QRectF(2, 0, KEY_W - 4, h), Qt.AlignmentFlag.AlignVCenter, "Bar")
        p.end()


class PianoRollWindow(QDialog):
    """The piano-roll editor of one MIDI clip (non-modal).

    Attributes:
        notes: the working copy of the clip's notes; :meth:`commit` pushes it as SetNotes.
    """

    def __init__(self, doc, clip_id: str, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.clip_id = clip_id
        track, clip, _ = doc.project.find_clip(clip_id)
        self.clip = clip
        self.colour = track.colour
        self.notes: list[Note] = [copy.copy(n) for n in clip.notes]
        self.setWindowTitle(f"Piano roll — {clip.name or track.name}")
        self.resize(1000, 560)
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Grid", self))
        self.grid_box = QComboBox(self)
        self.grid_box.addItems(list(GRIDS))
        self.grid_box.setCurrentText("1/16")
        bar.addWidget(self.grid_box)
        self.quantize_btn = QPushButton("Quantize", self)
        self.quantize_btn.clicked.connect(self.quantize)
        bar.addWidget(self.quantize_btn)
        bar.addStretch(1)
        bar.addWidget(QLabel("Double-click: add · drag: move · edge: resize · right-click: delete", self))
        lay.addLayout(bar)
        self.canvas = PianoRollCanvas(self)
        self.ruler = PianoRollRuler(self)
        lay.addWidget(self.ruler)
        lay.addWidget(self.canvas, 1)
        self.fit_btn = QPushButton("Fit", self)
        self.fit_btn.clicked.connect(self.canvas.fit)
        bar.insertWidget(3, self.fit_btn)
        self._fitted = False
        self.grid_box.currentTextChanged.connect(lambda _t: self.canvas.update())
        self.canvas.installEventFilter(self)
        doc.changed.connect(self._reload)

    def eventFilter(self, obj, e) -> bool:  # noqa: N802
        if obj is self.canvas and e.type() == QEvent.Type.Paint:
            self.ruler.update()  # zoom and scroll move the bar numbers with the notes
        return False

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if not self._fitted:
            self._fitted = True
            self.canvas.fit()

    def grid(self) -> int:
        """The grid step, ticks."""
        return GRIDS[self.grid_box.currentText()]

    def bar_lines(self, lo: int, hi: int) -> list[tuple[int, str]]:
        """``(clip-relative tick, "bar number")`` of the song's bar lines in ``[lo, hi)``
        clip-relative ticks, from the project's tempo map (meter changes included)."""
        tm = self.doc.project.tempo_map
        start = self.clip.start
        bar = tm.bar_beat_at(max(0, start + lo))[0]
        out = []
        while len(out) < 4096:
            t = tm.bar_to_tick(bar) - start
            if t >= hi:
                break
            if t >= lo:
                out.append((t, str(bar + 1)))
            bar += 1
        return out

    def beat_ticks(self, lo: int, hi: int) -> list[int]:
        """Clip-relative ticks of the song's beats in ``[lo, hi)``."""
        tm = self.doc.project.tempo_map
        start = self.clip.start
        out = []
        for i, sig in enumerate(tm.signatures):
            end = tm.signatures[i + 1].tick if i + 1 < len(tm.signatures) else start + hi
            a, b = max(sig.tick, start + lo), min(end, start + hi)
            if a >= b:
                continue
            step = sig.ticks_per_beat
            first = sig.tick + -(-(a - sig.tick) // step) * step
            out.extend(t - start for t in range(first, b, step))
            if len(out) > 20000:
                break
        return out

    def commit(self, label: str) -> None:
        """Push the working notes as one SetNotes step (sorted by start, then pitch)."""
        from studio.model import edits

        self.notes.sort(key=lambda n: (n.start, n.pitch))
        self.doc.push(edits.SetNotes(self.clip_id, list(self.notes), label=label))
        self.canvas.update()

    def quantize(self) -> None:
        """Quantize note starts to the grid (one undo step)."""
        self.notes = quantize_notes(self.notes, self.grid())
        self.commit("Quantize")

    def _reload(self) -> None:
        try:
            _, clip, _ = self.doc.project.find_clip(self.clip_id)
        except KeyError:
            self.close()
            return
        self.clip = clip
        if self.canvas._drag is None:
            self.notes = [copy.copy(n) for n in clip.notes]
            self.canvas.selected = {i for i in self.canvas.selected if i < len(self.notes)}
            self.canvas.update()
