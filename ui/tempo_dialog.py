"""The Tempo and Meter dialog, and the clickable tempo display of the toolbar.

The dialog edits the song's tempo (BPM) and meter for the whole song or from a bar
on; the result is computed by :func:`studio.cli.tempo.edited_tempo_map`, the same
function ``seed-studio tempo`` uses, and pushed as one ``SetTempoMap`` undo step by
the main window.
"""
from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                             QFormLayout, QHBoxLayout, QLabel, QRadioButton, QSpinBox, QVBoxLayout, QWidget)

DENOMINATORS = (1, 2, 4, 8, 16, 32)


class ClickLabel(QLabel):
    """A label that emits ``clicked`` on a left click (the toolbar's tempo display)."""

    clicked = pyqtSignal()

    def mousePressEvent(self, e) -> None:  # noqa: N802
        self.clicked.emit()


class TempoDialog(QDialog):
    """Tempo (20-999 BPM), meter, and where the change applies.

    Args:
        tempo_map: the project's current :class:`~studio.model.timebase.TempoMap`.
        bar: 0-based bar at the playhead (the default "from bar").
    """

    def __init__(self, tempo_map, bar: int = 0, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Tempo and Meter")
        self.tempo_map = tempo_map
        tick = tempo_map.bar_to_tick(max(0, int(bar)))
        sig = tempo_map.signature_at(tick)
        form = QFormLayout()
        self.bpm = QDoubleSpinBox(self)
        self.bpm.setRange(20.0, 999.0)
        self.bpm.setDecimals(2)
        self.bpm.setSuffix(" BPM")
        self.bpm.setValue(tempo_map.bpm_at(tick))
        form.addRow("Tempo", self.bpm)
        meter = QWidget(self)
        row = QHBoxLayout(meter)
        row.setContentsMargins(0, 0, 0, 0)
        self.numerator = QSpinBox(self)
        self.numerator.setRange(1, 64)
        self.numerator.setValue(sig.numerator)
        self.denominator = QComboBox(self)
        self.denominator.addItems([str(d) for d in DENOMINATORS])
        self.denominator.setCurrentText(str(sig.denominator))
        row.addWidget(self.numerator)
        row.addWidget(QLabel("/", self))
        row.addWidget(self.denominator)
        row.addStretch(1)
        form.addRow("Meter", meter)
        self.whole = QRadioButton("Whole song (replaces every tempo and meter change)", self)
        self.from_bar = QRadioButton("From bar", self)
        self.bar = QSpinBox(self)
        self.bar.setRange(1, 99999)
        self.bar.setValue(int(bar) + 1)
        group = QButtonGroup(self)
        group.addButton(self.whole)
        group.addButton(self.from_bar)
        single = len(tempo_map.tempos) == 1 and len(tempo_map.signatures) == 1
        (self.whole if single or bar == 0 else self.from_bar).setChecked(True)
        where = QWidget(self)
        wl = QHBoxLayout(where)
        wl.setContentsMargins(0, 0, 0, 0)
        wl.addWidget(self.from_bar)
        wl.addWidget(self.bar)
        wl.addStretch(1)
        self.bar.setEnabled(self.from_bar.isChecked())
        self.from_bar.toggled.connect(self.bar.setEnabled)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.whole)
        lay.addWidget(where)
        note = QLabel("Audio clips keep their time positions; MIDI clips keep their bars.", self)
        note.setObjectName("DialogNote")
        lay.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def result_map(self):
        """The edited tempo map. Raises StudioError for an invalid edit."""
        from studio.cli.tempo import edited_tempo_map

        bar = None if self.whole.isChecked() else self.bar.value() - 1
        return edited_tempo_map(self.tempo_map, bpm=self.bpm.value(),
                                meter=(self.numerator.value(), int(self.denominator.currentText())), bar=bar)
