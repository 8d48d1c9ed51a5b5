"""``seed-studio tempo``: show or set a project's tempo and meter.

::

    seed-studio tempo Song.seedproj                      # print the tempo map
    seed-studio tempo Song.seedproj --bpm 98             # one tempo for the whole song
    seed-studio tempo Song.seedproj --bpm 72 --bar 17    # from bar 17 on (1-based)
    seed-studio tempo Song.seedproj --meter 7/8 --bar 9  # a meter change at bar 9

Without ``--bar`` the song gets one tempo and one meter (earlier changes are
replaced); with it, the change is inserted at that bar (see
:meth:`studio.model.timebase.TempoMap.with_change`). The project is saved; the edit is one
``SetTempoMap`` undo step, the same command the app's Tempo dialog pushes. Audio clips
keep their time positions; MIDI clips keep their bar positions.
"""
from __future__ import annotations

from typing import Any

from studio.errors import StudioError

__all__ = ["register", "cmd_tempo", "parse_meter", "edited_tempo_map"]

HELP = """\
Show or set a project's tempo and meter.

  seed-studio tempo Song.seedproj                      print the tempo map
  seed-studio tempo Song.seedproj --bpm 98             one tempo for the whole song
  seed-studio tempo Song.seedproj --bpm 72 --bar 17    from bar 17 on (bars count from 1)
  seed-studio tempo Song.seedproj --meter 7/8 --bar 9  a meter change at bar 9

Without --bar the song gets one tempo and one meter (earlier changes are replaced);
with it, the change starts at that bar. The project is saved, and the change is one
undo step in the app. Audio clips keep their time positions; MIDI clips keep their
bar positions."""


def parse_meter(text: str) -> tuple[int, int]:
    """``"7/8"`` -> ``(7, 8)``.

    Raises:
        StudioError: not ``N/D`` with N in 1..64 and D one of 1, 2, 4, 8, 16, 32.
    """
    num, sep, den = str(text).strip().partition("/")
    try:
        n, d = int(num), int(den)
    except ValueError:
        n = d = 0
    if not sep or not 1 <= n <= 64 or d not in (1, 2, 4, 8, 16, 32):
        raise StudioError(f"bad meter {text!r}: use N/D such as 4/4, 3/4 or 7/8")
    return n, d


def edited_tempo_map(tempo_map: Any, *, bpm: float | None = None, meter: tuple[int, int] | None = None,
                     bar: int | None = None) -> Any:
    """The tempo map after a tempo/meter edit (what the CLI and the app's dialog do).

    Args:
        tempo_map: the current :class:`~studio.model.timebase.TempoMap`.
        bpm: new tempo, BPM (None keeps it).
        meter: new ``(numerator, denominator)`` (None keeps it).
        bar: 0-based bar of the change; None = the whole song (one tempo, one meter).

    Raises:
        StudioError: tempo outside 1-1000 BPM, negative bar, invalid meter.
    """
    from studio.model.timebase import TempoMap

    try:
        if bar is None:
            sig = tempo_map.signatures[0]
            num, den = meter or (sig.numerator, sig.denominator)
            return TempoMap.constant(float(bpm if bpm is not None else tempo_map.tempos[0].bpm), num, den)
        num, den = meter or (None, None)
        return tempo_map.with_change(int(bar), bpm, num, den)
    except ValueError as exc:
        raise StudioError(str(exc)) from None


def describe(tempo_map: Any) -> list[str]:
    """Lines such as ``bar 1: 120 BPM 4/4`` for every change, in order."""
    events: dict[int, list[str]] = {}
    for t in tempo_map.tempos:
        events.setdefault(t.tick, []).append(f"{t.bpm:g} BPM")
    for s in tempo_map.signatures:
        events.setdefault(s.tick, []).append(f"{s.numerator}/{s.denominator}")
    lines = []
    for tick in sorted(events):
        bar, beat, in_beat = tempo_map.bar_beat_at(tick)
        where = f"bar {bar + 1}" + (f" beat {beat + 1}" if beat or in_beat else "")
        lines.append(f"{where}: {' '.join(events[tick])}")
    return lines


def cmd_tempo(args) -> int:
    """Handler of ``seed-studio tempo``."""
    from studio.model import edits
    from studio.io.session import Session

    meter = parse_meter(args.meter) if args.meter else None
    if args.bar is not None and args.bar < 1:
        raise StudioError(f"--bar {args.bar}: bars are numbered from 1")
    s = Session.open(args.project)
    try:
        if args.bpm is not None or meter is not None:
            new = edited_tempo_map(s.project.tempo_map, bpm=args.bpm, meter=meter,
                                   bar=None if args.bar is None else args.bar - 1)
            s.undo_stack.push(edits.SetTempoMap(new))
            s.save()
        for line in describe(s.project.tempo_map):
            print(line)
    finally:
        s.close()
    return 0


def register(subparsers: Any) -> None:
    """Add the ``tempo`` subcommand to the ``seed-studio`` parser."""
    import argparse

    p = subparsers.add_parser("tempo", help="show or set the project's tempo and meter",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project")
    p.add_argument("--bpm", type=float, help="tempo, quarter notes per minute")
    p.add_argument("--meter", help="time signature, e.g. 4/4, 3/4, 7/8")
    p.add_argument("--bar", type=int, help="1-based bar where the change starts (default: the whole song)")
    p.set_defaults(func=cmd_tempo)
