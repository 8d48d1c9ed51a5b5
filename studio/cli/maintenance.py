"""``seed-studio clean`` and ``seed-studio verify``: keeping a project bundle tidy and whole.

::

    seed-studio clean Song.seedproj              # remove unused media and leftover temp files
    seed-studio clean Song.seedproj --dry-run    # only list them
    seed-studio verify Song.seedproj             # full sha256 of every media file

``clean`` holds the project's writer lock (refused while the app or another command has
the project open for writing; ``--wait`` waits). Opening for writing already sweeps the
temp files of interrupted writes; ``clean`` then removes the media that nothing can bring
back: no clip plays it and no autosave names it (see :mod:`studio.media.integrity`). Its
entries leave ``project.json`` (saved first), then its files and peak caches go.

``verify`` is read-only: it hashes every media file and compares it with its content
address, and reports missing or changed files by name (exit code 1), leftover temp files
and unused media.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


__all__ = ["register", "cmd_clean", "cmd_verify"]

CLEAN_HELP = """\
Remove media nothing uses and temp files left by interrupted writes.

  seed-studio clean Song.seedproj              remove them
  seed-studio clean Song.seedproj --dry-run    only list them

Media is removed only when no clip plays it and no autosave names it; undo and crash
recovery keep what they need. Refused while the app or another command has the project
open for writing (--wait waits)."""

VERIFY_HELP = """\
Check every media file of a project against its sha256 (read only).

Missing or changed files are named and the exit code is 1; leftover temp files and
unused media are listed."""


def cmd_clean(args: argparse.Namespace) -> int:
    """Handler of ``seed-studio clean``."""
    from studio.io import project_io
    from studio.io.session import Session
    from studio.media.integrity import clean_media, human_bytes, unused_media

    if args.dry_run:
        s = Session.open(args.project, readonly=True)
        temps = project_io.find_temp_files(s.bundle)
        swept = (len(temps), sum(p.stat().st_size for p in temps if p.exists()))
        report = unused_media(s.project, s.bundle)
    else:
        s = Session.open(args.project)
        swept = s.swept
        try:
            report = clean_media(s)
        finally:
            s.close()
    verb = "would remove" if args.dry_run else "removed"
    for p in report.media:
        print(f"{verb} unused media {p.name}")
    print(f"{verb} {len(report.media)} unused media file(s) ({human_bytes(report.media_bytes)}), "
          f"{len(report.caches)} stale peak cache(s) ({human_bytes(report.cache_bytes)}) and "
          f"{swept[0]} leftover temp file(s) ({human_bytes(swept[1])}) in {s.bundle}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Handler of ``seed-studio verify``."""
    from studio.cli.main import progress_bar
    from studio.io import project_io
    from studio.io.lock import describe_holder, read_holder
    from studio.io.session import Session
    from studio.media.integrity import unused_media, verify_media

    s = Session.open(args.project, readonly=True)
    update, close = progress_bar("verify")
    try:
        problems = verify_media(s.project, s.bundle, progress=lambda done, total: update(done / max(1, total)))
    finally:
        close()
    temps = project_io.find_temp_files(s.bundle)
    unused = unused_media(s.project, s.bundle)
    holder = read_holder(s.bundle)
    if args.json:
        print(json.dumps({"bundle": str(s.bundle), "media_files": len(s.project.media), "problems": problems,
                          "temp_files": [str(p) for p in temps], "unused_media": [str(p) for p in unused.media],
                          "holder": holder}, indent=2))
    else:
        for line in problems:
            print(f"problem: {line}")
        if temps:
            print(f"note: {len(temps)} temp file(s) of interrupted writes are left; the next write opens "
                  "(or `seed-studio clean`) remove them")
        if unused.media:
            print(f"note: {len(unused.media)} media file(s) are not used by the project "
                  "(`seed-studio clean` removes them)")
        if holder:
            print(f"note: the project is open for writing by {describe_holder(holder)}")
        if not problems:
            print(f"all {len(s.project.media)} media file(s) of {s.bundle} verified")
    if problems:
        print(f"error: {len(problems)} media problem(s) in '{s.bundle}'", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add ``clean`` and ``verify`` to the ``seed-studio`` parser."""
    p = subparsers.add_parser("clean", help="remove unused media and leftover temp files from a project",
                              description=CLEAN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(func=cmd_clean)

    p = subparsers.add_parser("verify", help="check every media file of a project against its sha256",
                              description=VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_verify)

