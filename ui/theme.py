"""The dark theme: palette, colours of the arrange view, and the style sheet.

Colours follow the dark grey-on-charcoal look of Ableton Live and Reaper's default
theme; track colours come from the project.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtGui import QColor, QPalette

BG = QColor("#1b1c1f")
LANE_A = QColor("#24262a")
LANE_B = QColor("#212327")
TAKE_BG = QColor("#1d1f22")
CONTROL_BG = QColor("#1a1c1f")
GRID_BEAT = QColor("#2c2f34")
GRID_BAR = QColor("#3d4148")
RULER_BG = QColor("#2a2c30")
TEXT = QColor("#d6d8dc")
TEXT_DIM = QColor("#8a8f98")
SELECTION = QColor(110, 160, 255, 55)
SELECTION_EDGE = QColor(140, 185, 255, 200)
PLAYHEAD = QColor("#ff6a3d")
LOOP = QColor(255, 200, 60, 60)
ACCENT = QColor("#ffb13b")

QSS_PATH = Path(__file__).resolve().parent / "resources" / "dark.qss"


def palette() -> QPalette:
    """A dark QPalette for the Fusion style."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2a2c30",
        QPalette.ColorRole.WindowText: "#d6d8dc",
        QPalette.ColorRole.Base: "#1e2023",
        QPalette.ColorRole.AlternateBase: "#26282c",
        QPalette.ColorRole.ToolTipBase: "#303236",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#d6d8dc",
        QPalette.ColorRole.Button: "#33363b",
        QPalette.ColorRole.ButtonText: "#d6d8dc",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#ffb13b",
        QPalette.ColorRole.HighlightedText: "#111111",
        QPalette.ColorRole.Link: "#6ab0ff",
        QPalette.ColorRole.PlaceholderText: "#7a7f88",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#666a70"))
    return p


def apply(app) -> None:
    """Fusion style, dark palette and the style sheet on a QApplication."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    try:
        app.setStyleSheet(QSS_PATH.read_text(encoding="utf-8"))
    except OSError:
        pass


def lighter(colour: str | QColor, factor: int = 150) -> QColor:
    """A lighter colour (Qt factor, 150 = 50 % lighter)."""
    return QColor(colour).lighter(factor)


def darker(colour: str | QColor, factor: int = 200) -> QColor:
    """A darker colour (Qt factor)."""
    return QColor(colour).darker(factor)
