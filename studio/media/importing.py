"""Import audio and MIDI files into a session as new tracks, through undoable commands.

All-or-nothing: every file is read and checked before the project changes, so a
bad file leaves the project exactly as it was (the error names the file).

Before any audio is decoded, :func:`plan_import` reads the headers: a file that would
pass the 24 h project limit is refused, the space the media folder needs is known
(audio is stored as 32-bit float at the project rate, so a small compressed file can
grow a lot: an hour of stereo at 48 kHz takes 1.4 GB), and an import that needs more
space than the disk has is refused before it writes anything. Imports above
:data:`studio.limits.LARGE_IMPORT_BYTES` are announced by the CLI and confirmed in the app.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from studio.model.edits import AddClip, AddMedia, AddTrack, SetTempoMap
from studio.errors import AudioFileError, StudioError
from studio.limits import MAX_PROJECT_SECONDS, describe_seconds, max_samples
from studio.model.project import TRACK_COLOURS, AudioClip, Track
from studio.io.session import Session

_WAV_HEADER_BYTES = 4096
"""Allowance per stored file for the WAV header, bytes."""


@dataclass(frozen=True)
class ImportPlan:
    """What importing one audio file will store.

    Attributes:
        path: the file. seconds: its length. frames: stored frames at the project rate.
        channels: stored channels (1 or 2). stored_bytes: bytes in the media folder.
    """

    path: Path
    seconds: float
    frames: int
    channels: int
    stored_bytes: int


def plan_import(session: Session, paths: Sequence[str | Path], *, start: int = 0,
                downmix: bool = False) -> list[ImportPlan]:
    """Read the headers of audio files and check them against the limits, storing nothing.

    Args:
        start: timeline position of the clips, samples.

    Returns:
        One :class:`ImportPlan` per file.

    Raises:
        AudioFileError: a file is unreadable, or would end past the 24 h project limit.
        StudioError: ``start`` is negative or past the limit.
    """
    from studio.io.audio_io import audio_info, resampled_length

    sr = session.project.sample_rate
    limit = max_samples(sr)
    if not 0 <= int(start) <= limit:
        raise StudioError(f"import position {describe_seconds(int(start) / sr)} is outside the project "
                          f"(0 to {MAX_PROJECT_SECONDS // 3600} h)")
    plans = []
    for p in paths:
        info = audio_info(p)
        frames = resampled_length(info.frames, info.sample_rate, sr)
        channels = 2 if info.channels >= 2 else 1
        if info.channels > 2 and not downmix:
            channels = info.channels  # refused later with its own message
        if int(start) + frames > limit:
            raise AudioFileError(p, f"is {describe_seconds(info.duration)} long; placed at "
                                    f"{describe_seconds(int(start) / sr)} it would pass the "
                                    f"{MAX_PROJECT_SECONDS // 3600} h project limit")
        plans.append(ImportPlan(Path(p), info.duration, frames, channels,
                                frames * min(channels, 2) * 4 + _WAV_HEADER_BYTES))
    return plans


def check_space(session: Session, plans: Sequence[ImportPlan]) -> None:
    """Refuse an import that needs more space than the media folder's disk has.

    Raises:
        DiskFull: naming the media folder, the space needed and the space free.
    """
    from engines.files import free_bytes
    from studio.errors import DiskFull
    from studio.media.integrity import human_bytes

    need = sum(p.stored_bytes for p in plans)
    folder = session.pool.root if session.pool.root.is_dir() else session.bundle
    free = free_bytes(folder)
    if free is not None and need > free:
        raise DiskFull(session.pool.root, f"importing {', '.join(repr(p.path.name) for p in plans)} needs "
                                          f"{human_bytes(need)} but only {human_bytes(free)} is free; nothing "
                                          "was imported and the project is unchanged")

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
        AudioFileError: a file is unreadable, empty, truncated, holds NaN/Inf, has more
            than 2 channels without ``downmix``, or would pass the 24 h limit; the project
            is unchanged.
        DiskFull: not enough space for the import, or the disk filled up during it; the
            project is unchanged.
    """
    check_space(session, plan_import(session, paths, start=start, downmix=downmix))
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
