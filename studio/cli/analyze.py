"""``seed-studio analyze`` and ``seed-studio transcribe``.

::

    seed-studio analyze song.flac [--json out.json]
    seed-studio analyze Song.seedproj --track Mix [--set-grid constant|varying]
    seed-studio transcribe bass.flac --out bass.mid [--engine basic-pitch|fcpe-melody]
    seed-studio transcribe Song.seedproj --track Bass [--out bass.mid]

``analyze`` prints the tempo, the beat count, the time-signature guess and the key;
with a project and ``--set-grid`` it also sets the project's tempo map from the track
(saved, one undo step). ``transcribe`` writes a MIDI file; with a project it adds a
MIDI track aligned with the source track and saves.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from studio.errors import StudioError

__all__ = ["register", "cmd_analyze", "cmd_transcribe"]


def _is_project(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".seedproj" or (p.is_dir() and (p / "project.json").exists())


def _progress(desc: str):
    from studio.cli.main import progress_bar

    return progress_bar(desc)


def _read(path: str):
    from studio.io.audio_io import read_audio

    return read_audio(path)


def _analysis_params(args) -> dict[str, Any]:
    return {"beat_tracker": args.beat_tracker, "min_bpm": args.min_bpm, "max_bpm": args.max_bpm,
            "key_profile": args.key_profile}


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    key = data.get("key") or {}
    num, den = data.get("time_signature") or [4, 4]
    return {"tempo_bpm": data.get("bpm"), "beat_count": data.get("beat_count"), "time_signature": f"{num}/{den}",
            "key": key.get("name"), "beat_tracker": data.get("beat_tracker")}


def cmd_analyze(args) -> int:
    """Handler of ``seed-studio analyze``."""
    from studio.tasks import analyze as ops
    from engines.files import atomic_write_text

    update, close = _progress("analyze")
    fit = None
    try:
        if _is_project(args.song):
            from studio.cli.main import resolve_tracks
            from studio.io.session import Session

            if not args.track:
                raise StudioError("analysing a project needs --track NAME")
            s = Session.open(args.song)
            try:
                track_id = resolve_tracks(s.project, args.track)[0]
                data, start = ops.analyze_track(s, track_id, params=_analysis_params(args), progress=update)
                if args.set_grid:
                    grid = data["beats"]
                    import numpy as np

                    num, den = data["time_signature"]
                    fit = ops.tempo_map_from_beats(np.asarray(grid["beats"]), np.asarray(grid["downbeats"]),
                                                   float(data["bpm"]), s.project.sample_rate, numerator=int(num),
                                                   denominator=int(den), start=start, mode=args.set_grid)
                    from studio.model import edits

                    s.undo_stack.push(edits.SetTempoMap(fit.tempo_map))
                    s.save()
            finally:
                s.close()
        else:
            if args.track or args.set_grid:
                raise StudioError("--track and --set-grid need a project (NAME.seedproj), not an audio file")
            audio, sr = _read(args.song)
            data = ops.analyze_audio(audio, sr, params=_analysis_params(args), progress=update)
    finally:
        close()
    summary = _summary(data)
    print(f"tempo: {summary['tempo_bpm']:.2f} BPM" if summary["tempo_bpm"] else "tempo: unknown")
    print(f"beats: {summary['beat_count']}")
    print(f"time signature: {summary['time_signature']}")
    print(f"key: {summary['key'] or 'unknown'}")
    print(f"beat tracker: {summary['beat_tracker']}")
    if fit is not None:
        print(f"grid set ({args.set_grid}): first downbeat at {fit.first_downbeat / s.project.sample_rate:.3f} s, "
              f"{len(fit.tempo_map.tempos)} tempo change(s)")
    if args.json:
        out = {"source": str(args.song), **summary, "analysis": {k: v for k, v in data.items() if k != "provenance"},
               "provenance": data.get("provenance")}
        atomic_write_text(args.json, json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0


def _transcribe_params(args) -> dict[str, Any]:
    if args.engine == "fcpe-melody":
        return {"pitch_bends": not args.no_pitch_bends}
    p: dict[str, Any] = {"onset_threshold": args.onset_threshold, "frame_threshold": args.frame_threshold,
                         "minimum_note_length_ms": args.min_note_ms, "pitch_bends": not args.no_pitch_bends}
    if args.min_freq is not None:
        p["minimum_frequency"] = args.min_freq
    if args.max_freq is not None:
        p["maximum_frequency"] = args.max_freq
    return p


def _write_notes(path: str, notes: list[dict[str, Any]], sample_rate: int, bpm: float, name: str) -> None:
    """Write engine notes (samples) as a MIDI file at a constant ``bpm``, through the same
    notes-to-clip path the project uses (:func:`studio.tasks.analyze.midi_clip_from_notes`)."""
    from studio.tasks.analyze import midi_clip_from_notes
    from studio.io.midi_io import MidiPart, write_midi
    from studio.model.timebase import TempoMap

    tempo_map = TempoMap.constant(bpm)
    length = max((int(n["start"]) + int(n["length"]) for n in notes), default=sample_rate)
    clip = midi_clip_from_notes(notes, tempo_map, sample_rate, 0, length, name=name)
    try:
        write_midi(path, [MidiPart(name, [clip])], tempo_map, name=name)
    except OSError as exc:
        raise StudioError(f"can't write MIDI file '{path}': {exc}") from exc


def cmd_transcribe(args) -> int:
    """Handler of ``seed-studio transcribe``."""
    from studio.tasks import analyze as ops

    params = _transcribe_params(args)
    update, close = _progress("transcribe")
    try:
        if _is_project(args.song):
            from studio.cli.main import resolve_tracks
            from studio.io.session import Session

            if not args.track:
                raise StudioError("transcribing a project needs --track NAME")
            s = Session.open(args.song)
            try:
                track_id = resolve_tracks(s.project, args.track)[0]
                track = ops.transcribe_track(s, track_id, engine_id=args.engine, params=params, progress=update)
                s.save()
                clip = track.clips[0]
                n = len(clip.notes)
                print(f"added MIDI track '{track.name}' with {n} notes")
                if args.out:
                    from studio.io.midi_io import write_midi as write_project_midi

                    write_project_midi(args.out, [track], s.project.tempo_map)
                    print(f"wrote {args.out}")
            finally:
                s.close()
            return 0
        if not args.out:
            raise StudioError("transcribing an audio file needs --out FILE.mid")
        audio, sr = _read(args.song)
        result = ops.transcribe_audio(audio, sr, engine_id=args.engine, params=params, progress=update)
    finally:
        close()
    notes = result.data.get("notes") or []
    _write_notes(args.out, notes, sr, args.bpm, Path(args.song).stem)
    print(f"{len(notes)} notes -> {args.out} ({args.bpm:g} BPM, PPQ 960)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` and ``transcribe`` subcommands to the ``seed-studio`` parser."""
    a = subparsers.add_parser("analyze", help="tempo, beats, time signature and key of a song or a project track",
                              description="Print tempo, beat count, time-signature guess and key. With a project "
                                          "and --track, analyse that track; --set-grid sets the project's tempo map.")
    a.add_argument("song", help="audio file, or a NAME.seedproj project")
    a.add_argument("--track", help="project track (name, id or 1-based number)")
    a.add_argument("--json", metavar="OUT", help="also write the full analysis as JSON")
    a.add_argument("--set-grid", choices=("constant", "varying"),
                   help="set the project's tempo map and bar grid from the track")
    a.add_argument("--beat-tracker", choices=("auto", "beat_this", "dsp"), default="auto",
                   help="auto = Beat This! when its model is installed, else DSP (default)")
    a.add_argument("--min-bpm", type=float, default=70.0, help="lowest tempo considered by the DSP tracker")
    a.add_argument("--max-bpm", type=float, default=180.0, help="highest tempo considered by the DSP tracker")
    a.add_argument("--key-profile", choices=("krumhansl", "temperley"), default="krumhansl")
    a.set_defaults(func=cmd_analyze)

    t = subparsers.add_parser("transcribe", help="audio to MIDI (basic-pitch, or FCPE melody)",
                              description="Transcribe an audio file to a MIDI file, or a project track to a new "
                                          "MIDI track aligned with it.")
    t.add_argument("song", help="audio file, or a NAME.seedproj project")
    t.add_argument("--out", help="MIDI file to write (required for audio files)")
    t.add_argument("--track", help="project track to transcribe (name, id or 1-based number)")
    t.add_argument("--engine", choices=("basic-pitch", "fcpe-melody"), default="basic-pitch",
                   help="basic-pitch: polyphonic; fcpe-melody: monophonic melody")
    t.add_argument("--onset-threshold", type=float, default=0.5)
    t.add_argument("--frame-threshold", type=float, default=0.3)
    t.add_argument("--min-note-ms", type=float, default=127.7, help="minimum note length in ms")
    t.add_argument("--min-freq", type=float, help="lowest note frequency in Hz")
    t.add_argument("--max-freq", type=float, help="highest note frequency in Hz")
    t.add_argument("--no-pitch-bends", action="store_true", help="don't estimate pitch bends")
    t.add_argument("--bpm", type=float, default=120.0, help="tempo written into the MIDI file (audio files)")
    t.set_defaults(func=cmd_transcribe)
