"""Fixtures of the UI tests: an offscreen QApplication, a real window on a fresh bundle,
and a real job system (engine host process) shared by the module."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def _settings_dir(tmp_path, monkeypatch):
    """Keep the user's settings and models out of the tests."""
    monkeypatch.setenv("SEED_STUDIO_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture(scope="module")
def job_manager(tmp_path_factory):
    from studio.jobs.manager import JobManager

    m = JobManager(work_root=tmp_path_factory.mktemp("jobs"), default_device="cpu")
    yield m
    m.shutdown()


@pytest.fixture
def window(qtbot, tmp_path, job_manager):
    """A MainWindow on an empty 44.1 kHz bundle, with the real job system (no prompts)."""
    from ui.document import Document
    from ui.main_window import MainWindow, new_app
    from ui.qt_bridge import JobsBridge

    new_app()
    doc = Document.new(tmp_path / "Song.seedproj", 44100)
    bridge = JobsBridge(job_manager)
    win = MainWindow(doc, jobs=bridge, ask=False)
    win._owns_jobs = False
    qtbot.addWidget(win)
    win.resize(1400, 800)
    win.show()
    yield win
    job_manager.remove_listener(bridge._listener)
    win._jobs = None
    doc.close()
