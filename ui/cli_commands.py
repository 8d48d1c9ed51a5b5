"""``seed-studio`` subcommands of the desktop app, and the app launcher used by the CLI.

This module imports no Qt at module level (``studio.cli.main`` imports it to build its
parser); Qt is imported inside the handlers.

* ``seed-studio screenshot PROJECT OUT.png [--size 1600x1000]``: render the main window
  with the project offscreen and exit.
* :func:`open_app`: what ``seed-studio`` and ``seed-studio PROJECT`` run.
"""
from __future__ import annotations

import os
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``screenshot`` subcommand to the ``seed-studio`` parser."""
    p = subparsers.add_parser("screenshot", help="render the main window with a project into a PNG (offscreen)")
    p.add_argument("project", help="a .seedproj bundle")
    p.add_argument("out", help="PNG file to write")
    p.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT in pixels (default 1600x1000)")
    p.set_defaults(func=cmd_screenshot)


def _parse_size(text: str) -> tuple[int, int]:
    from studio.errors import StudioError

    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise StudioError(f"--size '{text}': expected WIDTHxHEIGHT, e.g. 1600x1000") from None
    if not (320 <= w <= 8192 and 240 <= h <= 8192):
        raise StudioError(f"--size '{text}': width 320..8192 and height 240..8192 pixels")
    return w, h


def cmd_screenshot(args) -> int:
    """Handler of ``seed-studio screenshot``."""
    from studio.errors import StudioError

    size = _parse_size(args.size)
    if not Path(args.project).exists():
        raise StudioError(f"project '{args.project}': not found")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ui.app import screenshot

    try:
        out = screenshot(args.project, args.out, size=size)
    except OSError as exc:
        raise StudioError(str(exc)) from None
    print(f"wrote {out}")
    return 0


def open_app(project: str | Path | None = None) -> int:
    """Open the desktop app, with ``project`` when given. Returns the exit code."""
    from ui.app import run

    return run(project)
