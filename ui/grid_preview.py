"""The grid preview: after an analysis that was asked only to report (``set_grid`` "no"),
show the detected tempo, meter and beats against the project's grid, and change the
tempo map only when the musician accepts.

The preview draws the analysed range: the detected beats (short ticks) and downbeats
(tall ticks), the bar lines of the project's grid now (grey, above) and those of the
proposed grid (orange, below), for either fit:

* **constant**: one tempo, bar lines on the downbeats
  (:func:`studio.tasks.analyze.tempo_map_from_beats`, ``mode="constant"``);
* **varying**: one tempo per detected bar, every downbeat on a bar line.

When part of the tempo ensemble heard the tempo an octave away (72 against 144 BPM), a
check box offers that tempo instead; the grid is fitted to the same downbeats either way.

Apply is ONE undo step (:class:`~studio.model.edits.SetTempoMap`, plus the key when one was
found). A tempo outside :data:`studio.tasks.analyze.MIN_GRID_BPM` ..
:data:`~studio.tasks.analyze.MAX_GRID_BPM` is a detection error: the dialog says so and
offers nothing to apply.
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRectF
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import (QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QRadioButton,
                             QVBoxLayout, QWidget)


class GridStrip(QWidget):
    """Beats, downbeats, the current bar lines and the proposed ones, over ``[start, end)`` samples."""

    def __init__(self, dialog: "GridPreviewDialog"):
        super().__init__(dialog)
        self.dialog = dialog
        self.setMinimumSize(640, 120)

    def _x(self, sample: float) -> float:
        d = self.dialog
        return 8 + (sample - d.start) / max(1, d.end - d.start) * (self.width() - 16)

    def _bar_lines(self, tm) -> list[int]:
        d = self.dialog
        sr = d.sample_rate
        t0 = tm.sample_to_tick(d.start, sr)
        t1 = tm.sample_to_tick(d.end, sr)
        bar = tm.bar_beat_at(t0)[0]
        out = []
        while True:
            tick = tm.bar_to_tick(bar)
            if tick > t1 or len(out) > 2000:
                break
            if tick >= t0:
                out.append(tm.tick_to_sample(tick, sr))
            bar += 1
        return out

    def paintEvent(self, e) -> None:  # noqa: N802
        d = self.dialog
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor("#1b1c1f"))
        third = h / 3
        p.setPen(QColor("#8a8f98"))
        p.drawText(QRectF(8, 0, 200, 14), "now")
        p.drawText(QRectF(8, h - 14, 200, 14), "proposed" if d.proposed is not None else "")
        for s in self._bar_lines(d.current_map):
            p.fillRect(QRectF(self._x(s), 14, 1, third - 14), QColor("#6b6f76"))
        for s in d.beats:
            p.fillRect(QRectF(self._x(s), third + third * 0.35, 1, third * 0.3), QColor("#b9f5d8"))
        for s in d.downbeats:
            p.fillRect(QRectF(self._x(s) - 0.5, third, 2, third), QColor("#3fb68b"))
        if d.proposed is not None:
            for s in self._bar_lines(d.proposed):
                p.fillRect(QRectF(self._x(s), 2 * third, 1.5, third - 14), QColor("#ffb13b"))
        p.end()


class GridPreviewDialog(QDialog):
    """Preview of the grid an analysis found; Apply sets it as one undo step.

    Args:
        doc: the document. data: the analysis result (``JobsBridge.analysis[job_id]``:
            ``bpm``, ``time_signature``, ``beats`` with positions relative to the analysed
            range, ``key``). region_start: timeline sample where the analysed range starts.

    Attributes:
        allowed: False when the tempo is outside the grid limits (nothing can be applied).
        proposed: the tempo map Apply would set (None when not allowed).
    """

    def __init__(self, doc, data: dict, region_start: int = 0, parent=None):
        from studio.tasks.analyze import MAX_GRID_BPM, MIN_GRID_BPM

        super().__init__(parent)
        self.doc = doc
        self.data = dict(data)
        proj = doc.project
        self.sample_rate = proj.sample_rate
        self.current_map = proj.tempo_map
        self.region_start = int(region_start)
        grid = data.get("beats") if isinstance(data.get("beats"), dict) else {}
        self.beats = np.asarray(grid.get("beats") or [], dtype=np.int64) + self.region_start
        self.downbeats = np.asarray(grid.get("downbeats") or [], dtype=np.int64) + self.region_start
        self.bpm = float(data.get("bpm") or 0.0)
        self.numerator, self.denominator = (int(x) for x in (data.get("time_signature") or (4, 4)))
        frames = int(data.get("frames") or (self.beats.max() - self.region_start if self.beats.size else 0))
        self.start, self.end = self.region_start, self.region_start + max(1, frames)
        self.allowed = bool(self.bpm) and MIN_GRID_BPM <= self.bpm <= MAX_GRID_BPM
        self.key = (data.get("key") or {}).get("name")
        self.setWindowTitle("Tempo and grid found")
        lay = QVBoxLayout(self)
        extra = (grid.get("extra") or {}) if isinstance(grid, dict) else {}
        conf = extra.get("tempo_confidence")
        facts = [f"{self.bpm:.1f} BPM" if self.bpm else "no tempo", f"{self.numerator}/{self.denominator}"]
        if conf is not None:
            facts.append(f"tempo confidence {float(conf):.0%}")
        if self.key:
            facts.append(self.key)
        facts.append(f"{len(self.beats)} beats ({data.get('beat_tracker', '?')})")
        self.summary = QLabel("Found: " + ", ".join(facts) + ".", self)
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.strip = GridStrip(self)
        lay.addWidget(self.strip, 1)
        row = QHBoxLayout()
        self.constant = QRadioButton("Constant tempo (bar lines on the downbeats)", self)
        self.varying = QRadioButton("Follow the tempo (one tempo per bar)", self)
        self.constant.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.constant)
        group.addButton(self.varying)
        row.addWidget(self.constant)
        row.addWidget(self.varying)
        lay.addLayout(row)
        self.detected_bpm = self.bpm
        octave = ((extra.get("tempo_estimates") or {}).get("extra") or {}).get("other_octave_bpm")
        self.other_octave = QCheckBox(f"Use {float(octave):.1f} BPM instead (some estimators heard the tempo "
                                      "an octave away)" if octave else "", self)
        self.other_octave.setVisible(bool(octave))
        self._octave = float(octave) if octave else None
        lay.addWidget(self.other_octave)
        self.buttons = QDialogButtonBox(self)
        self.apply_btn = self.buttons.addButton("Apply Grid", QDialogButtonBox.ButtonRole.AcceptRole)
        self.keep_btn = self.buttons.addButton("Keep Current Grid", QDialogButtonBox.ButtonRole.RejectRole)
        self.apply_btn.clicked.connect(self.apply)
        self.keep_btn.clicked.connect(self.reject)
        lay.addWidget(self.buttons)
        self.proposed = None
        if not self.allowed:
            self.note.setText(
                f"{self.bpm:.1f} BPM is outside {MIN_GRID_BPM:g}–{MAX_GRID_BPM:g} BPM, so it is taken for a "
                "detection error and the grid stays as it is. Set the tempo by hand (Transport > Tempo and Meter).")
            for w in (self.apply_btn, self.constant, self.varying):
                w.setEnabled(False)
        else:
            self.note.setText("The project's tempo map changes only if you apply it (one undo step). "
                              "Grey: the bar lines now; orange: the bar lines after Apply.")
            self.constant.toggled.connect(lambda _on: self._propose())
            self.other_octave.toggled.connect(self._octave_toggled)
            self._propose()
        self.resize(760, 300)

    def _octave_toggled(self, on: bool) -> None:
        from studio.tasks.analyze import MAX_GRID_BPM, MIN_GRID_BPM

        bpm = self._octave if on and self._octave else self.detected_bpm
        if MIN_GRID_BPM <= bpm <= MAX_GRID_BPM:
            self.bpm = bpm
            self._propose()
        else:
            self.other_octave.setChecked(False)

    def mode(self) -> str:
        """``"constant"`` or ``"varying"``."""
        return "varying" if self.varying.isChecked() else "constant"

    def _propose(self) -> None:
        from studio.model.timebase import TempoMap
        from studio.tasks.analyze import tempo_map_from_beats

        if self.beats.size:
            fit = tempo_map_from_beats(self.beats - self.region_start, self.downbeats - self.region_start, self.bpm,
                                       self.sample_rate, numerator=self.numerator, denominator=self.denominator,
                                       start=self.region_start, mode=self.mode())
            self.proposed = fit.tempo_map
        else:
            self.proposed = TempoMap.constant(self.bpm, self.numerator, self.denominator)
        self.strip.update()

    def apply(self) -> bool:
        """Set the proposed grid (and the key) as one undo step. Returns True when applied."""
        from studio.model import edits

        if not self.allowed or self.proposed is None:
            return False
        label = f"Set the grid from the analysis ({self.bpm:.1f} BPM, {self.numerator}/{self.denominator})"
        with self.doc.group(label):
            self.doc.push(edits.SetTempoMap(self.proposed))
            if self.key and self.key != self.doc.project.key:
                self.doc.push(edits.SetProjectProperty("key", str(self.key)))
        self.accept()
        return True
