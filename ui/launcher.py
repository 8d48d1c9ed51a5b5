"""The ``seed-studio`` console command: the core's CLI plus the app's own commands.

``seed-studio`` alone opens the app, ``seed-studio PROJECT`` opens a project in it, and
every other use is a subcommand of :mod:`studio.cli.main` (the same code path as the
app). This module is the only place where the command line meets the ``ui`` package,
so the Qt-free core never imports ``ui``.
"""
from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seed-studio``. Returns the exit code."""
    from studio.cli.main import main as cli_main
    from ui import cli_commands

    return cli_main(argv, extensions=[cli_commands.register], open_app=cli_commands.open_app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
