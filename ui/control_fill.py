"""The "Fill Control Lanes from Track…" dialog; the lanes are computed by :mod:`studio.controls`."""
from __future__ import annotations

from PyQt6.QtWidgets import QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel

from studio.controls import fill_lanes
from studio.model.project import MidiClip


class FillControlsDialog(QDialog):
    """Pick a source (a track, or a MIDI clip) and which lanes to fill."""

    def __init__(self, window, track_id: str):
        super().__init__(window)
        self.window_ = window
        self.track_id = track_id
        doc = window.doc
        self.setWindowTitle("Fill control lanes")
        form = QFormLayout(self)
        target = doc.project.track(track_id)
        form.addRow(QLabel(f"Control lanes of <b>{target.name}</b> from:", self))
        self.source = QComboBox(self)
        for t in doc.project.tracks:
            self.source.addItem(f"Track: {t.name}", f"track:{t.id}")
            for c in t.clips:
                if isinstance(c, MidiClip):
                    self.source.addItem(f"   MIDI clip: {c.name or t.name}", f"clip:{c.id}")
        self.source.setCurrentIndex(max(0, self.source.findData(f"track:{track_id}")))
        form.addRow("Source", self.source)
        self.boxes = {}
        for k in ("melody", "dynamics", "rhythm"):
            b = QCheckBox(k.capitalize(), self)
            b.setChecked(True)
            self.boxes[k] = b
            form.addRow("", b)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _ok(self) -> None:
        kinds = [k for k, b in self.boxes.items() if b.isChecked()]
        if kinds and self.window_._run(fill_lanes, self.window_.doc, self.track_id, self.source.currentData(),
                                       kinds) is not None:
            self.accept()
