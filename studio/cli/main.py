"""The ``seed-studio`` command.

``seed-studio`` alone opens the app; ``seed-studio PROJECT`` opens a project in the
app; every other use is a subcommand that runs headless on the same code path as
the app (sessions, commands, render, jobs)::

    seed-studio new Song.seedproj --sample-rate 48000 --bpm 80
    seed-studio import Song.seedproj drums.wav bass.flac melody.mid
    seed-studio info Song.seedproj
    seed-studio render Song.seedproj mix.wav
    seed-studio export Song.seedproj "Song stems"

Exit codes: 0 success, 1 a user-facing error (message on stderr), 2 bad arguments,
130 interrupted.

Arguments are checked before any work starts (an output folder that doesn't exist, a
format the output can't hold, a range that ends before it starts are refused at once).
Commands that change a project hold its writer lock (:mod:`studio.io.lock`) and accept
``--wait`` to wait for another writer instead of being refused; ``info``, ``render``,
``export`` and ``verify`` open the project read-only. Errors are one line (``error: ...``)
naming the file and the problem, never a traceback; a full disk is reported as such.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from studio.errors import StudioError

# Subcommand modules of other areas: each defines register(subparsers).
PLUGIN_MODULES = (
    "studio.cli.models",
    "studio.cli.tasks",
    "studio.cli.voices",
    "studio.cli.tempo",
    "studio.cli.maintenance",
)

READ_ONLY_COMMANDS = frozenset({"info", "render", "export", "verify", "screenshot", "models", "voices", "new"})
"""Commands that never write into an existing project: they get no ``--wait``."""


def progress_bar(desc: str) -> tuple[Callable[[float], None], Callable[[], None]]:
    """A tqdm progress bar on stderr driven by fractions 0..1. Returns ``(update, close)``.

    The bar hides itself when stderr is not a terminal (CI, pipes).
    """
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", disable=None, file=sys.stderr, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
    state = {"n": 0}

    def update(fraction: float) -> None:
        n = int(max(0.0, min(1.0, fraction)) * 1000)
        if n > state["n"]:
            bar.update(n - state["n"])
            state["n"] = n

    return update, bar.close


def _seconds_to_samples(value: float | None, sr: int) -> int | None:
    return None if value is None else int(round(float(value) * sr))


def check_seconds(flag: str, value: float | None, *, minimum: float = 0.0,
                  maximum: float | None = None) -> float | None:
    """A time argument in seconds: finite, ``>= minimum`` and within the 24 h project limit.

    Raises:
        StudioError: naming the flag and the value, in seconds.
    """
    from studio.limits import MAX_PROJECT_SECONDS

    if value is None:
        return None
    maximum = MAX_PROJECT_SECONDS if maximum is None else maximum
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise StudioError(f"{flag} {value:g} s: give a time from {minimum:g} to {maximum:g} seconds")
    return float(value)


def check_range(start: float | None, end: float | None) -> None:
    """``--start``/``--end`` in seconds: each valid, and the end after the start.

    Raises:
        StudioError: in seconds, naming both flags.
    """
    check_seconds("--start", start)
    check_seconds("--end", end)
    if end is not None and end <= (start or 0.0):
        raise StudioError(f"--end {end:g} s is not after --start {start or 0:g} s: nothing to render")


def warn_media(session) -> None:
    """Print the media problems found on opening (missing or changed files) to stderr."""
    for line in getattr(session, "media_problems", []):
        print(f"warning: {line}", file=sys.stderr)


def resolve_tracks(project, spec: str | None) -> list[str] | None:
    """Track ids from a comma-separated list of names, ids or 1-based numbers (None = all).

    Raises:
        StudioError: a name matches no track.
    """
    if not spec:
        return None
    ids = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        match = [t for t in project.tracks if t.id == token or t.name == token]
        if not match and token.isdigit() and 1 <= int(token) <= len(project.tracks):
            match = [project.tracks[int(token) - 1]]
        if not match:
            names = ", ".join(t.name for t in project.tracks)
            raise StudioError(f"no track named '{token}' (tracks: {names})")
        ids.append(match[0].id)
    return ids


# ---------------------------------------------------------------- handlers

def cmd_new(args) -> int:
    from studio.cli.tempo import parse_meter
    from studio.io.session import Session
    from studio.limits import MAX_BPM, MAX_SAMPLE_RATE, MIN_BPM, MIN_SAMPLE_RATE

    num, den = parse_meter(args.meter)
    if not math.isfinite(args.bpm) or not MIN_BPM <= args.bpm <= MAX_BPM:
        raise StudioError(f"--bpm {args.bpm:g}: a tempo is {MIN_BPM:g} to {MAX_BPM:g} BPM")
    if not MIN_SAMPLE_RATE <= args.sample_rate <= MAX_SAMPLE_RATE:
        raise StudioError(f"--sample-rate {args.sample_rate}: give {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz")
    s = Session.create(args.project, sample_rate=args.sample_rate, name=args.name, bpm=args.bpm,
                       numerator=num, denominator=den)
    s.close()
    print(f"created {s.bundle} ({s.project.sample_rate} Hz, {args.bpm:g} BPM, {args.meter})")
    return 0


def cmd_import(args) -> int:
    from studio.media.importing import import_files
    from studio.io.session import Session

    from studio.limits import LARGE_IMPORT_BYTES
    from studio.media.importing import AUDIO_SUFFIXES, plan_import
    from studio.media.integrity import human_bytes

    check_seconds("--at", args.at)
    if args.bar is not None and args.bar < 1:
        raise StudioError(f"--bar {args.bar}: bars count from 1")
    for f in args.files:
        if not Path(f).exists():
            raise StudioError(f"'{f}': file not found")
    notes: list[str] = []
    s = Session.open(args.project)
    try:
        start = _seconds_to_samples(args.at, s.project.sample_rate) or 0
        bar = None if args.bar is None else args.bar - 1
        if bar is not None:
            tm = s.project.tempo_map
            start = tm.tick_to_sample(tm.bar_to_tick(bar), s.project.sample_rate)
        plans = plan_import(s, [f for f in args.files if Path(f).suffix.lower() in AUDIO_SUFFIXES],
                            start=start, downmix=args.downmix)
        total = sum(p.stored_bytes for p in plans)
        if total > LARGE_IMPORT_BYTES:
            for p in plans:
                print(f"warning: '{p.path}' is {p.seconds / 60:.1f} min long: it will take "
                      f"{human_bytes(p.stored_bytes)} in the project's media folder", file=sys.stderr)
            print(f"warning: this import stores {human_bytes(total)} (audio is kept as 32-bit float at the "
                  f"project rate)", file=sys.stderr)
        update, close = progress_bar("import")
        try:
            tracks = import_files(s, args.files, start=start, bar=bar, downmix=args.downmix, progress=update,
                                  notes=notes)
        finally:
            close()
        s.save()
        tm, sr = s.project.tempo_map, s.project.sample_rate
        where = {}
        for t in tracks:
            pos = s.project.clip_span(t.clips[0])[0]
            b, beat, _ = tm.bar_beat_at(tm.sample_to_tick(pos, sr))
            where[t.id] = f" at bar {b + 1} beat {beat + 1} ({pos / sr:.3f} s)"
    finally:
        s.close()
    for t in tracks:
        n = len(t.clips[0].notes) if t.kind == "midi" else None
        extra = f", {n} notes" if n is not None else ""
        print(f"added {t.kind} track '{t.name}'{extra}{where.get(t.id, '')}")
    for line in notes:
        print(f"note: {line}")
    return 0


def project_summary(session) -> dict:
    """A JSON-ready summary of a session's project (what ``info`` prints)."""
    p = session.project
    sr = p.sample_rate
    sig = p.tempo_map.signatures[0]
    return {
        "name": p.name,
        "bundle": str(session.bundle),
        "sample_rate": sr,
        "ppq": p.ppq,
        "tempo_bpm": p.tempo_map.tempos[0].bpm,
        "tempo_changes": len(p.tempo_map.tempos),
        "time_signature": f"{sig.numerator}/{sig.denominator}",
        "length_seconds": round(p.length_samples() / sr, 3),
        "media_items": len(p.media),
        "tracks": [
            {
                "number": i + 1, "id": t.id, "name": t.name, "kind": t.kind, "gain_db": t.gain_db,
                "pan": t.pan, "mute": t.mute, "solo": t.solo, "clips": len(t.clips),
                "takes": sum(len(g.takes) for g in t.take_groups),
                "effects": [e.name for e in t.effects],
                "parent": t.parent_id,
            }
            for i, t in enumerate(p.tracks)
        ],
    }


def cmd_info(args) -> int:
    from studio.io import project_io
    from studio.io.session import Session

    s = Session.open(args.project, readonly=True)
    try:
        info = project_summary(s)
        info["missing_media"] = project_io.missing_media(s.project, s.bundle)
        info["media_problems"] = list(s.media_problems)
        info["recovery_available"] = s.recovery_candidate() is not None
    finally:
        s.close()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}  ({info['bundle']})")
    print(f"  {info['sample_rate']} Hz, {info['tempo_bpm']:g} BPM"
          f"{' (+%d changes)' % (info['tempo_changes'] - 1) if info['tempo_changes'] > 1 else ''}, "
          f"{info['time_signature']}, {info['length_seconds']:.2f} s, {info['media_items']} media file(s)")
    for t in info["tracks"]:
        flags = "".join(f for f, on in (("M", t["mute"]), ("S", t["solo"])) if on)
        print(f"  {t['number']:2d}. {t['name']:<24} {t['kind']:<5} {t['clips']} clip(s) {t['takes']} take(s) "
              f"{t['gain_db']:+.1f} dB pan {t['pan']:+.2f} {flags}")
    if info["missing_media"]:
        print(f"  warning: {len(info['missing_media'])} media file(s) missing from the bundle")
    for line in info["media_problems"]:
        print(f"  warning: {line}")
    if info["recovery_available"]:
        print("  note: an autosave newer than the last save exists (open it in the app to recover)")
    return 0


@contextlib.contextmanager
def _session_with_bar(project: str, desc: str) -> Iterator[tuple[Any, Callable[[float], None]]]:
    """Open ``project`` and a progress bar for one long job; close both afterwards."""
    from studio.io.session import Session

    s = Session.open(project, readonly=True)
    warn_media(s)
    try:
        update, close = progress_bar(desc)
        try:
            yield s, update
        finally:
            close()
    finally:
        s.close()


def _print_levels(name: str, levels) -> None:
    from studio.audio.levels import fmt_db

    print(f"  {name}: true peak {fmt_db(levels.true_peak_dbfs)}, "
          f"loudness {fmt_db(levels.loudness_lufs, 'LUFS').lstrip('+')}")


def _tail_seconds(args) -> float:
    """``--tail``, or the default of :func:`studio.audio.render.default_tail_s` (2 s at the
    song's end, 0 with ``--end``)."""
    from studio.audio.render import default_tail_s

    return float(args.tail) if args.tail is not None else default_tail_s(args.end is not None)


def _check_master_gain(value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value > 24.0):
        raise StudioError(f"--master-gain {value:g} dB: give a number of dB up to +24 (e.g. -3)")


def cmd_render(args) -> int:
    from studio.audio.render import render_file
    from studio.io.audio_io import check_output_path

    subtype = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}[args.bit_depth]
    try:
        check_output_path(args.out, subtype)
    except ValueError as exc:
        raise StudioError(str(exc)) from None
    check_range(args.start, args.end)
    check_seconds("--tail", args.tail, maximum=600.0)
    _check_master_gain(args.master_gain)
    with _session_with_bar(args.project, "render") as (s, update):
        sr = s.project.sample_rate
        start = _seconds_to_samples(args.start, sr) or 0
        end = _seconds_to_samples(args.end, sr)
        if end is None and s.project.length_samples() <= start:
            raise StudioError(f"nothing to render: the project ends at {s.project.length_samples() / sr:g} s, "
                              f"at or before --start {start / sr:g} s")
        report = render_file(s.project, s.pool, args.out, start=start, end=end,
                             track_ids=resolve_tracks(s.project, args.tracks), progress=update,
                             subtype=subtype, tail=_seconds_to_samples(_tail_seconds(args), sr) or 0,
                             master_gain_db=args.master_gain)
    frames = report.frames
    print(f"wrote {args.out}: {frames} frames at {sr} Hz ({frames / sr:.2f} s)")
    _print_levels(Path(args.out).name, report.levels)
    warning = report.warning()
    if warning:
        _print_error("warning: " + warning)
    return 0


def cmd_export(args) -> int:
    from studio.export.ableton import export_for_ableton

    check_range(args.start, args.end)
    check_seconds("--tail", args.tail, maximum=600.0)
    _check_master_gain(args.master_gain)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise StudioError(f"'{out}' is a file; give a folder for the export")
    with _session_with_bar(args.project, "export") as (s, update):
        sr = s.project.sample_rate
        report = export_for_ableton(
            s.project, s.pool, args.out, track_ids=resolve_tracks(s.project, args.tracks),
            start=_seconds_to_samples(args.start, sr) or 0, end=_seconds_to_samples(args.end, sr),
            float32=args.float, progress=update, tail=_seconds_to_samples(_tail_seconds(args), sr) or 0,
            master_gain_db=args.master_gain)
    files = getattr(report, "files", None) or []
    print(f"exported {len(files)} file(s) to {args.out}")
    levels = {e.path: e.levels for e in report.entries if e.levels is not None}
    for f in files:
        lv = levels.get(f)
        if lv is None:
            print(f"  {Path(f).name}")
        else:
            _print_levels(Path(f).name, lv)
    warning = report.warning()
    if warning:
        _print_error("warning: " + warning)
    return 0


# ---------------------------------------------------------------- parser

def _add_tail_and_master_arguments(p: argparse.ArgumentParser) -> None:
    from studio.audio.render import DEFAULT_TAIL_S

    p.add_argument("--tail", type=float, metavar="SECONDS",
                   help=f"seconds rendered past the end so that reverbs and delays ring out; the clips "
                        f"themselves stop at the end. Default, as in the app: {DEFAULT_TAIL_S:g} when the render "
                        "runs to the end of the song, 0 when --end is given; 0 cuts exactly at the end")
    p.add_argument("--master-gain", type=float, metavar="DB",
                   help="master gain in dB for this render, e.g. -3 (default: the project's master fader); "
                        "the project itself is not changed")


def build_parser(extensions: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    """The full argument parser, with the subcommands of every area.

    Args:
        extensions: more ``register(subparsers)`` functions (the app adds its own
            commands this way; the core never imports ``ui``).
    """
    parser = argparse.ArgumentParser(
        prog="seed-studio",
        description="Seed Studio: co-create songs with local AI engines. "
                    "Run without arguments to open the app, or with a project to open it.")
    from studio import __version__

    parser.add_argument("--version", action="version", version=f"seed-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("new", help="create a new project bundle")
    p.add_argument("project", help="bundle path (NAME.seedproj)")
    p.add_argument("--sample-rate", type=int, default=44100, help="Hz (default 44100)")
    p.add_argument("--bpm", type=float, default=120.0, help="tempo in BPM (default 120)")
    p.add_argument("--meter", default="4/4", help="time signature (default 4/4)")
    p.add_argument("--name", help="project name (default: the folder name)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("import", help="import audio and MIDI files into new tracks",
                       description="Import audio and MIDI files into a project, one new track per file (one "
                                   "per part for MIDI). A MIDI file imported into a project with no tracks "
                                   "brings its tempo and meter along; the command says so.")
    p.add_argument("project", help="the project folder (NAME.seedproj)")
    p.add_argument("files", nargs="+", help="WAV, AIFF, FLAC, OGG, Opus, MP3 or MIDI files")
    p.add_argument("--at", type=float, default=0.0, metavar="SECONDS",
                   help="where the clips start on the timeline, in seconds (default 0)")
    p.add_argument("--bar", type=int, metavar="N",
                   help="where the clips start, as a bar number (1 = the first bar); wins over --at")
    p.add_argument("--downmix", action="store_true", help="downmix files with more than 2 channels to stereo")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", help="print a project's tracks, tempo and length")
    p.add_argument("project", help="the project folder (NAME.seedproj)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("render", help="render the mixdown to an audio file",
                       description="Render the mix to one audio file and print its true peak (dBFS) and "
                                   "loudness (LUFS). If the mix goes above full scale the command warns, "
                                   "names the file and says how far to lower the master.")
    p.add_argument("project", help="the project folder (NAME.seedproj)")
    p.add_argument("out", help="output .wav/.flac/.aiff (the folder must exist)")
    p.add_argument("--start", type=float, metavar="SECONDS", help="where the render starts, in seconds (default 0)")
    p.add_argument("--end", type=float, metavar="SECONDS",
                   help="where the render ends, in seconds (default: the end of the last clip)")
    p.add_argument("--tracks", help="comma-separated track names, ids or numbers (default: all)")
    p.add_argument("--bit-depth", choices=["16", "24", "float"], default="24",
                   help="sample format: 16- or 24-bit PCM, or 32-bit float, which keeps peaks above full "
                        "scale (default 24; FLAC can't hold float)")
    _add_tail_and_master_arguments(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("export", help="export aligned stems, MIDI and the mix for Ableton Live",
                       description="Write one WAV per track, one MIDI file per MIDI track, Mix.wav and a "
                                   "manifest into a folder; every WAV starts at the same time, so they line "
                                   "up when dropped into a DAW at bar 1. Prints each file's true peak (dBFS) "
                                   "and loudness (LUFS) and warns about files that went above full scale.")
    p.add_argument("project", help="the project folder (NAME.seedproj)")
    p.add_argument("out", help="output folder (created if needed)")
    p.add_argument("--tracks", help="comma-separated track names, ids or numbers (default: all)")
    p.add_argument("--start", type=float, metavar="SECONDS", help="where the export starts, in seconds (default 0)")
    p.add_argument("--end", type=float, metavar="SECONDS",
                   help="where the export ends, in seconds (default: the end of the last clip)")
    p.add_argument("--float", action="store_true",
                   help="write 32-bit float WAVs instead of 24-bit PCM (keeps peaks above full scale)")
    _add_tail_and_master_arguments(p)
    p.set_defaults(func=cmd_export)

    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that area is not installed/built
            raise
        module.register(sub)
    for register in extensions:
        register(sub)
    for name, p in sub.choices.items():
        if name in READ_ONLY_COMMANDS or not any(a.dest in ("project", "source") for a in p._actions):
            continue
        if any("--wait" in a.option_strings for a in p._actions):
            continue
        p.add_argument("--wait", action="store_true",
                       help="if another program has the project open for writing, wait until it is "
                            "done instead of stopping")
    return parser


def main(argv: Sequence[str] | None = None, *, extensions: Sequence[Callable[[Any], None]] = (),
         open_app: Callable[[str | None], int] | None = None) -> int:
    """Run ``seed-studio`` with ``argv``. Returns the exit code.

    Args:
        extensions: more subcommand ``register`` functions (see :func:`build_parser`).
        open_app: opens the desktop app on a project path (or None); the ``ui`` package's
            launcher (:func:`ui.launcher.main`) passes it. Without it, running with no
            command (or with only a project) prints that the app is not available.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(extensions)
    known = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
    if not argv or (len(argv) == 1 and not argv[0].startswith("-") and argv[0] not in known):
        if open_app is None:
            print("error: the desktop app is not part of this command; run `seed-studio` "
                  "(or give a command, see --help)", file=sys.stderr)
            return 1
        return int(open_app(argv[0] if argv else None) or 0)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from studio.io import lock as writer_lock

    writer_lock.set_program(f"seed-studio {args.command}")
    writer_lock.set_wait_notice(_print_error)
    try:
        return _run_command(args)
    finally:
        writer_lock.set_program("seed-studio")
        writer_lock.set_wait_notice(None)


def _run_command(args) -> int:
    """Run a parsed command: every error becomes one ``error:`` line and exit code 1."""
    from engines.base import UserError
    from studio.io import lock as writer_lock

    try:
        with writer_lock.default_wait(None if getattr(args, "wait", False) else 0.0):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not in the interpreter's last flush
        return code
    except UserError as exc:
        hint = getattr(exc, "hint", "")
        _print_error(f"error: {exc}" + (f"\n  {hint}" if hint and hint not in str(exc) else ""))
        return 1
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (`seed-studio info P | head`): not an error
        return 0
    except OSError as exc:  # a file-system error at an edge we did not foresee: still one line
        from engines.files import is_disk_full

        name = f"'{exc.filename}': " if exc.filename else ""
        if is_disk_full(exc):
            _print_error(f"error: the disk is full: could not write {name.rstrip(': ')}; the project is unchanged")
        else:
            _print_error(f"error: {name}{exc.strerror or exc}")
        return 1


def _print_error(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr)


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at the null device so the interpreter's final
    flush doesn't complain (Python's documented recipe)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
