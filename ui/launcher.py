"""The ``seed-studio`` console command: the core's CLI plus the app's own commands.

``seed-studio`` alone opens the app, ``seed-studio PROJECT`` opens a project in it, and
every other use is a subcommand of :mod:`studio.cli.main` (the same code path as the
app). This module is the only place where the command line meets the ``ui`` package,
so the Qt-free core never imports ``ui``.

It is also the entry script of the desktop bundle (``installer/seed-studio.spec``): there
the engine host, a *spawned* child process, is the bundle's own executable started again,
and :func:`multiprocessing.freeze_support` turns that start into the host (it returns at
once in a normal Python). With ``SEED_STUDIO_STARTUP_PROBE=1`` the app prints the time
of its first painted window and quits (the bundle build measures its cold start so).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Sequence

ENV_STARTUP_PROBE = "SEED_STUDIO_STARTUP_PROBE"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seed-studio``. Returns the exit code."""
    import multiprocessing

    multiprocessing.freeze_support()  # a frozen app's spawned engine host runs here and exits
    from studio.cli.main import main as cli_main
    from ui import cli_commands

    open_app = _open_app_probed if os.environ.get(ENV_STARTUP_PROBE) == "1" else cli_commands.open_app
    return cli_main(argv, extensions=[cli_commands.register], open_app=open_app)


def _open_app_probed(project=None) -> int:
    """:func:`ui.cli_commands.open_app`, printing ``first paint: <unix time>`` when the main
    window is first painted, then quitting."""
    from PyQt6.QtCore import QEvent, QObject, QTimer
    from PyQt6.QtWidgets import QApplication, QWidget

    from ui import cli_commands
    from ui.main_window import MainWindow, new_app

    app = new_app(sys.argv[:1])

    class Probe(QObject):
        done = False

        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if (not self.done and event.type() == QEvent.Type.Paint and isinstance(obj, QWidget)
                    and isinstance(obj.window(), MainWindow)):
                self.done = True
                print(f"first paint: {time.time():.3f}", flush=True)
                QTimer.singleShot(0, QApplication.quit)
            return False

    probe = Probe(app)
    app.installEventFilter(probe)
    return cli_commands.open_app(project)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
