"""Wiring of the desktop app: QApplication, theme, settings, main window, project.

No singletons: :func:`make_window` builds everything a window needs and returns it,
so tests, the screenshot command and the benchmark drive the same window as the app.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


def make_window(project: str | Path | None = None, *, ask: bool = True, size: tuple[int, int] = (1600, 950),
                readonly: bool = False):
    """A :class:`~ui.main_window.MainWindow` (creating the QApplication if needed).

    Args:
        project: a ``.seedproj`` bundle to open, or None.
        ask: False for no modal prompts (tests, screenshots).
        size: window size in pixels.
        readonly: open the project without the writer lock (only with ``ask=False``).

    Raises:
        ProjectError: the project can't be opened (only when ``ask`` is False; the app
            shows the message instead).
    """
    from ui.document import Document
    from ui.main_window import MainWindow, new_app

    new_app()
    win = MainWindow(None, ask=ask)
    win.resize(*size)
    if project is not None:
        if ask:
            win.open_path(project)
        else:
            win.set_document(Document.open(project, readonly=readonly))
    return win


def screenshot(project: str | Path, out: str | Path, *, size: tuple[int, int] = (1600, 1000),
               select_take: bool = True) -> Path:
    """Render the main window with ``project`` into a PNG at ``out`` (offscreen works).

    Returns the written path. Raises ProjectError for a bad project, OSError when the
    PNG can't be written.
    """
    from PyQt6.QtWidgets import QApplication

    win = make_window(project, ask=False, size=size, readonly=True)
    win.show()
    canvas = win.canvas
    proj = win.doc.project
    # a realistic look: first track selected, a time selection, takes in the inspector
    if proj.tracks:
        canvas.selected_track = proj.tracks[0].id
    if select_take:
        for t in proj.tracks:
            for g in t.take_groups:
                if g.takes:
                    canvas.selected_take = g.takes[0].id
                    win._on_take_selected(g.takes[0].id)
                    break
            if canvas.selected_take:
                break
    win.timeline.zoom_to_fit()
    QApplication.processEvents()
    win.timeline.fit_height(min_track_h=34)
    win.canvas.repaint()
    win.canvas.peaks_loader.wait_idle(20.0)
    win.canvas.tile_budget_s = None  # draw every tile now
    win.canvas.repaint()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        QApplication.processEvents()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pm = win.grab()
    if not pm.save(str(out), "PNG"):
        raise OSError(f"'{out}': can't write the PNG")
    win.doc.close()
    win.hide()
    win.deleteLater()
    return out


def run(project: str | Path | None = None) -> int:
    """Run the app's event loop. Returns the exit code."""
    from PyQt6.QtWidgets import QApplication

    from studio.io import lock as writer_lock
    from ui.main_window import new_app

    writer_lock.set_program("the Seed Studio app")
    app = new_app(sys.argv[:1])
    win = make_window(None, ask=True)
    win.show()
    if project is not None:
        win.open_path(project)
    else:
        win.offer_recovery_at_start()
    return int(QApplication.exec() if app is not None else 0)
