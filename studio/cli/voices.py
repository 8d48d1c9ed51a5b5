"""``seed-studio voices import|list|remove``: the voices library on the command line.

A thin layer over :class:`studio.voices.VoiceLibrary`; errors are
:class:`~studio.voices.VoiceLibraryError` (a ``StudioError``), printed by the CLI as
``error: <message>``. The voices folder is ``--voices-dir``, else
``$SEED_STUDIO_VOICES_DIR``, else the user data folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from studio.voices import CONSENT_REMINDER, Voice, VoiceLibrary


def _library(args: argparse.Namespace) -> VoiceLibrary:
    return VoiceLibrary(getattr(args, "voices_dir", None) or None)


def _describe(v: Voice) -> str:
    return (f"{v.name}  (RVC {v.version}, {v.sample_rate // 1000} kHz"
            f"{', ' + str(v.speakers) + ' speakers' if v.speakers > 1 else ''}"
            f"{', with index' if v.index_path else ', no index'})")


def cmd_import(args: argparse.Namespace) -> int:
    """Validate a voice model and copy it (and its index) into the library."""
    lib = _library(args)
    v = lib.import_voice(args.model, name=args.name, index=args.index, source=args.source or "",
                         licence=args.licence or "", replace=args.replace)
    if args.json:
        print(json.dumps(v.to_dict(), indent=2))
    else:
        print(f"imported {_describe(v)}")
        print(f"  source: {v.source or 'not stated'}; licence: {v.licence or 'not stated'}")
        print(f"  stored in {v.model_path.parent}")
    print(f"reminder: {CONSENT_REMINDER}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the voices: name, RVC version, rate, index, source and licence as stated."""
    lib = _library(args)
    voices = lib.list()
    if args.json:
        print(json.dumps({"voices_dir": str(lib.root), "voices": [v.to_dict() for v in voices]}, indent=2))
        return 0
    if not voices:
        print(f"no voices yet (voices folder: {lib.root}); add one with `seed-studio voices import MODEL.pth`")
        return 0
    header = ("NAME", "MODEL", "INDEX", "SOURCE", "LICENCE")
    rows: list[tuple[Any, ...]] = [header] + [
        (v.name, f"RVC {v.version} {v.sample_rate // 1000}k", "yes" if v.index_path else "no",
         v.source or "not stated", v.licence or "not stated") for v in voices]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"\nvoices folder: {lib.root}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete voices from the library."""
    lib = _library(args)
    for name in args.names:
        v = lib.remove(name)
        print(f"removed {v.name}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``voices`` subcommand and its actions to the ``seed-studio`` parser."""
    p = subparsers.add_parser("voices", help="import, list or remove voice models (RVC) for voice conversion",
                              description=f"The voices library. {CONSENT_REMINDER}")
    p.add_argument("--voices-dir", help="the voices folder (default: $SEED_STUDIO_VOICES_DIR, or the user data "
                                        "folder)")
    sub = p.add_subparsers(dest="voices_command", metavar="ACTION", required=True)

    q = sub.add_parser("import", help="check a voice model (.pth) and copy it into the library",
                       description="Checks that the voice model loads safely (no code inside) and is an RVC model "
                                   f"Seed Studio can use, then copies it. {CONSENT_REMINDER}")
    q.add_argument("model", help="the voice model file (.pth) exported by RVC")
    q.add_argument("--index", help="the voice's feature index file (.index) that came with the model, if any")
    q.add_argument("--name", help="the name to show and to use in other commands (default: the file name)")
    q.add_argument("--source", help="where the voice comes from, in your words (a URL, a person, 'my own voice')")
    q.add_argument("--licence", "--license", dest="licence",
                   help="the licence or permission the voice comes with, in your words (e.g. 'CC-BY-4.0', "
                        "'personal use, with the singer's consent')")
    q.add_argument("--replace", action="store_true", help="replace a voice that already has this name")
    q.add_argument("--json", action="store_true", help="print the stored voice as JSON")
    q.set_defaults(func=cmd_import)

    q = sub.add_parser("list", help="show the voices in the library, with source and licence as stated")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("remove", help="delete voices from the library")
    q.add_argument("names", nargs="+", help="the names of the voices to delete")
    q.set_defaults(func=cmd_remove)
