"""``seed-studio models list|download|import|remove|verify``: the model manager on the command line.

A thin layer over :class:`engines.models.ModelManager`; engine errors are turned into
:class:`~studio.errors.StudioError` so that the CLI prints ``error: <message> (<hint>)``.
The models folder is ``--models-dir``, else ``SEED_STUDIO_MODELS_DIR``, else the
``models_dir`` setting, else the user cache folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engines.base import EngineError
from engines.models import ModelManager, human_size
from studio.errors import StudioError


def _manager(args: argparse.Namespace) -> ModelManager:
    if getattr(args, "models_dir", None):
        return ModelManager(args.models_dir)
    setting = None
    try:
        from studio.io.settings import load_settings

        setting = load_settings().models_dir
    except ImportError:  # pragma: no cover - settings module is part of the core
        pass
    return ModelManager(setting=setting)


def _records(mgr: ModelManager, ids: list[str]) -> list[Any]:
    try:
        return [mgr.record(i) for i in ids] if ids else mgr.records
    except EngineError as exc:
        raise StudioError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    """Print every model the engines know: id, engine, licence, size, status, source."""
    mgr = _manager(args)
    recs = [r for r in mgr.records if not args.engine or r.engine == args.engine]
    rows = [
        {
            "id": r.id,
            "engine": r.engine,
            "title": r.title,
            "licence": r.licence,
            "size": r.size,
            "status": mgr.status(r),
            "source": r.source,
            "notes": r.notes,
        }
        for r in recs
    ]
    if args.json:
        print(json.dumps({"models_dir": str(mgr.root), "models": rows}, indent=2))
        return 0
    header = ("MODEL", "ENGINE", "LICENCE", "SIZE", "STATUS", "SOURCE")
    table = [header] + [
        (r["id"], r["engine"], r["licence"], human_size(r["size"]) if r["size"] or r["status"] == "built-in"
         else "see Hub", r["status"], r["source"]) for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f"\nmodels folder: {mgr.root}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download the named models (or ``--all``) with a progress bar."""
    mgr = _manager(args)
    recs = _records(mgr, args.ids) if args.ids or not args.all else mgr.records
    if not recs:
        raise StudioError("name the models to download, or use --all")
    from tqdm import tqdm

    for rec in recs:
        if rec.builtin:
            print(f"{rec.id}: built in, nothing to download")
            continue
        size = human_size(rec.size) if rec.size else "size given by the Hub"
        print(f"{rec.id}: {rec.title or rec.id}, licence {rec.licence}, {size}", file=sys.stderr)
        with tqdm(total=rec.size, unit="B", unit_scale=True, desc=rec.id, file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            def progress(done: int, total: int, _name: str, _bar: Any = bar) -> None:
                _bar.update(done - _bar.n)

            try:
                path = mgr.download(rec, progress)
            except EngineError as exc:
                raise StudioError(str(exc)) from None
        print(f"{rec.id}: installed in {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Install a model's files from a local folder (checksums verified)."""
    mgr = _manager(args)
    (rec,) = _records(mgr, [args.id])
    try:
        path = mgr.import_from(rec, args.folder)
    except EngineError as exc:
        raise StudioError(str(exc)) from None
    print(f"{rec.id}: imported into {path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete a model's files."""
    mgr = _manager(args)
    for rec in _records(mgr, args.ids):
        print(f"{rec.id}: {'removed' if mgr.remove(rec) else 'was not installed'}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Hash installed models against their records; exit 1 if any file is bad."""
    mgr = _manager(args)
    bad = 0
    for rec in _records(mgr, args.ids):
        status = mgr.status(rec)
        if status == "built-in" or (status == "missing" and not args.ids):
            print(f"{rec.id}: {status}")
            continue
        problems = mgr.verify(rec)
        if problems:
            bad += 1
            for p in problems:
                print(f"{rec.id}: {p}")
        else:
            print(f"{rec.id}: ok")
    return 1 if bad else 0


def register(subparsers: Any) -> None:
    """Add the ``models`` subcommand and its actions to the ``seed-studio`` parser."""
    p = subparsers.add_parser("models", help="list, download, import, remove or verify AI models")
    p.add_argument("--models-dir", help="models folder (default: $SEED_STUDIO_MODELS_DIR, the setting, or the user cache)")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    q = sub.add_parser("list", help="every model the engines know, with licence, size and status")
    q.add_argument("--engine", help="only the models of this engine")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("download", help="download models (resumes, verifies checksums)")
    q.add_argument("ids", nargs="*", help="model ids")
    q.add_argument("--all", action="store_true", help="every model")
    q.set_defaults(func=cmd_download)

    q = sub.add_parser("import", help="install a model from a local folder (for offline machines)")
    q.add_argument("id", help="model id")
    q.add_argument("folder", help="folder holding the model's files")
    q.set_defaults(func=cmd_import)

    q = sub.add_parser("remove", help="delete downloaded model files")
    q.add_argument("ids", nargs="+", help="model ids")
    q.set_defaults(func=cmd_remove)

    q = sub.add_parser("verify", help="check installed model files against their checksums")
    q.add_argument("ids", nargs="*", help="model ids (default: every installed model)")
    q.set_defaults(func=cmd_verify)
