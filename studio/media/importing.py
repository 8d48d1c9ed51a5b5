"""Import audio and MIDI files into a session as new tracks, through undoable commands.

All-or-nothing: every file is read and checked before the project changes, so a
bad file leaves the project exactly as it was (the error names the file).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from studio.model.edits import AddClip, AddMedia, AddTrack, SetTempoMap
from studio.errors import StudioError
from studio.model.project import TRACK_COLOURS, AudioClip, Track
from studio.io.session import Session

AUDIO_SUFFIXES = {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3"}
MIDI_SUFFIXES = {".mid", ".midi", ".smf"}


def _colour(session: Session, k: int) -> str:
    return TRACK_COLOURS[(len(session.project.tracks) + k) % len(TRACK_COLOURS)]


def import_audio(session: Session, paths: Sequence[str | Path], *, start: int = 0, downmix: bool = False,
                 progress: Callable[[float], None] | None = None) -> list[Track]:
    """Import audio files as new audio tracks, each with one clip at ``start`` samples.

    Files are converted once to the project sample rate and stored in the media pool.
    One undo step for the whole import.

    Raises:
        AudioFileError: a file is unreadable, empty, truncated, holds NaN/Inf, or has more
            than 2 channels without ``downmix``; the project is unchanged.
    """
    items = []
    for i, p in enumerate(paths):
        items.append((Path(p), session.pool.import_file(p, downmix=downmix)))
        if progress:
            progress((i + 1) / len(paths))
    tracks = []
    with session.undo_stack.group(f"Import {len(items)} audio file(s)"):
        for k, (path, item) in enumerate(items):
            session.undo_stack.push(AddMedia(item))
            track = Track(name=path.stem, kind="audio", colour=_colour(session, 0))
            session.undo_stack.push(AddTrack(track))
            session.undo_stack.push(AddClip(track.id, AudioClip(item.id, int(start), 0, item.frames, name=path.stem)))
            tracks.append(track)
    return tracks


def import_midi(session: Session, path: str | Path, *, adopt_tempo: bool | None = None) -> list[Track]:
    """Import a Standard MIDI File: one MIDI track per part that holds notes.

    Ticks are rescaled to PPQ 960 exactly. ``adopt_tempo`` (default: only when the
    project has no tracks yet) replaces the project's tempo map with the file's.
    One undo step.

    Raises:
        MidiFileError: the file is malformed or holds no notes; the project is unchanged.
    """
    from studio.errors import MidiFileError
    from studio.io.midi_io import read_midi

    parts, tempo_map = read_midi(path)
    parts = [p for p in parts if p[1].notes]
    if not parts:
        raise MidiFileError(path, "holds no notes")
    if adopt_tempo is None:
        adopt_tempo = not session.project.tracks
    tracks = []
    with session.undo_stack.group(f"Import MIDI '{Path(path).name}'"):
        if adopt_tempo:
            session.undo_stack.push(SetTempoMap(tempo_map))
        for k, (name, clip, program, is_drum, _channel) in enumerate(parts):
            track = Track(name=name or f"{Path(path).stem} {k + 1}", kind="midi", colour=_colour(session, 0),
                          program=int(program), is_drum=bool(is_drum))
            session.undo_stack.push(AddTrack(track))
            session.undo_stack.push(AddClip(track.id, clip))
            tracks.append(track)
    return tracks


def import_files(session: Session, paths: Sequence[str | Path], **kw) -> list[Track]:
    """Import audio and MIDI files by suffix (audio first, as one step each kind).

    Raises:
        StudioError: an unsupported suffix, or any error of :func:`import_audio` / :func:`import_midi`.
    """
    audio, midi = [], []
    for p in paths:
        suf = Path(p).suffix.lower()
        if suf in AUDIO_SUFFIXES:
            audio.append(p)
        elif suf in MIDI_SUFFIXES:
            midi.append(p)
        else:
            raise StudioError(f"'{p}': unsupported file type '{suf}' (audio: {sorted(AUDIO_SUFFIXES)}; "
                              f"MIDI: {sorted(MIDI_SUFFIXES)})")
    out = import_audio(session, audio, **kw) if audio else []
    for m in midi:
        out += import_midi(session, m)
    return out
