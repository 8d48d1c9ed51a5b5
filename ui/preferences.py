"""Preferences: audio output device, models folder, engine device (GPU), autosave interval,
SoundFont. Saved through :func:`studio.io.settings.save_settings` (atomic)."""
from __future__ import annotations

import copy

from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                             QLineEdit, QPushButton, QSpinBox, QWidget)


def _path_row(parent, text: str | None, folder: bool) -> tuple[QWidget, QLineEdit]:
    host = QWidget(parent)
    lay = QHBoxLayout(host)
    lay.setContentsMargins(0, 0, 0, 0)
    edit = QLineEdit(text or "", host)
    edit.setPlaceholderText("default")
    btn = QPushButton("Choose…", host)

    def choose() -> None:
        p = (QFileDialog.getExistingDirectory(parent, "Choose folder") if folder else
             QFileDialog.getOpenFileName(parent, "Choose SoundFont", "", "SoundFont (*.sf2 *.sf3)")[0])
        if p:
            edit.setText(p)

    btn.clicked.connect(choose)
    lay.addWidget(edit, 1)
    lay.addWidget(btn)
    return host, edit


def gpu_choices() -> list[tuple[str, str]]:
    """``(label, setting)`` for the engine device box; CUDA/MPS only when torch sees them."""
    out = [("Automatic (GPU when available)", "auto"), ("CPU", "cpu")]
    try:
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                out.append((f"CUDA {i}: {torch.cuda.get_device_name(i)}", "cuda" if i == 0 else f"cuda:{i}"))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            out.append(("Apple GPU (MPS)", "mps"))
    except Exception:
        pass
    return out


class PreferencesDialog(QDialog):
    """Edit a copy of the settings; on OK, save them and expose them as ``settings``."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        from ui.playback import output_devices

        self.setWindowTitle("Preferences")
        self.settings = copy.deepcopy(settings)
        form = QFormLayout(self)
        self.audio = QComboBox(self)
        self.audio.addItem("System default", None)
        devices = output_devices()
        for d in devices:
            self.audio.addItem(d, d)
        if not devices:
            self.audio.addItem("(no audio output device found)", None)
        i = self.audio.findData(settings.audio_device)
        self.audio.setCurrentIndex(max(0, i))
        form.addRow("Audio output", self.audio)
        self.device = QComboBox(self)
        for label, value in gpu_choices():
            self.device.addItem(label, value)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form.addRow("Engines run on", self.device)
        host, self.models_dir = _path_row(self, settings.models_dir, True)
        form.addRow("Models folder", host)
        host2, self.soundfont = _path_row(self, settings.soundfont, False)
        form.addRow("GM SoundFont", host2)
        self.autosave = QSpinBox(self)
        self.autosave.setRange(0, 3600)
        self.autosave.setSuffix(" s")
        self.autosave.setSpecialValueText("off")
        self.autosave.setValue(int(settings.autosave_interval_s))
        form.addRow("Autosave every", self.autosave)
        self.tail = QDoubleSpinBox(self)
        self.tail.setRange(0.0, 30.0)
        self.tail.setSingleStep(0.5)
        self.tail.setDecimals(1)
        self.tail.setSuffix(" s")
        self.tail.setSpecialValueText("none (cut at the end)")
        self.tail.setValue(float(settings.render_tail_s))
        self.tail.setToolTip("Exports run this long past the end so reverbs and delays ring out")
        form.addRow("Render tail on export", self.tail)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def apply(self):
        """Copy the widgets into ``settings`` and save them. Returns the settings path (or None)."""
        from studio.io.settings import save_settings

        s = self.settings
        s.audio_device = self.audio.currentData()
        s.device = self.device.currentData() or "auto"
        s.models_dir = self.models_dir.text().strip() or None
        s.soundfont = self.soundfont.text().strip() or None
        s.autosave_interval_s = int(self.autosave.value())
        s.render_tail_s = float(self.tail.value())
        try:
            return save_settings(s)
        except OSError:
            return None

    def accept(self) -> None:
        self.apply()
        super().accept()
