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
from studio.model.timebase import PPQ, TempoChange, TempoMap, TimeSignature
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


def _shifted_to(tempo_map: TempoMap, tick: int) -> TempoMap:
    """``tempo_map`` with every change after tick 0 moved ``tick`` ticks later (the first
    tempo and meter hold from the project start up to there)."""
    if tick <= 0:
        return tempo_map
    return TempoMap([tempo_map.tempos[0]] + [TempoChange(t.tick + tick, t.bpm) for t in tempo_map.tempos[1:]],
                    [tempo_map.signatures[0]] + [TimeSignature(s.tick + tick, s.numerator, s.denominator)
                                                 for s in tempo_map.signatures[1:]])


def _describe_map(tm: TempoMap) -> str:
    first, sig = tm.tempos[0], tm.signatures[0]
    extra = len(tm.tempos) - 1 + len(tm.signatures) - 1
    return (f"{first.bpm:g} BPM {sig.numerator}/{sig.denominator}"
            + (f", {extra} later tempo/meter change(s)" if extra else ""))


def import_midi(session: Session, path: str | Path, *, adopt_tempo: bool | None = None, start: int | None = None,
                bar: int | None = None, notes: list[str] | None = None) -> list[Track]:
    """Import a Standard MIDI File: one MIDI track per part that holds notes.

    Ticks are rescaled to PPQ 960 exactly. ``adopt_tempo`` (default: only when the
    project has no tracks yet) replaces the project's tempo map with the file's. One
    undo step.

    Args:
        start: where the file's tick 0 goes, timeline samples (None: the project start).
        bar: where it goes as a 0-based bar index (bar 0 = "bar 1"); wins over ``start``.
            The clips then start exactly on that bar line.
        notes: a list that receives one plain-words line saying whether the project took
            the file's tempo and meter or kept its own (the CLI prints it, the app shows it).

    When the tempo is adopted and the file is placed later than the project start, the
    file's first tempo and meter hold from the project start and its later changes move
    with the clips. Without adoption the notes keep their beat positions, so they play
    at the project's tempo.

    Raises:
        MidiFileError: the file is malformed, holds no notes, or would end past the 24 h
            project limit; the project is unchanged.
        StudioError: a negative ``start`` or ``bar``.
    """
    from studio.errors import MidiFileError
    from studio.io.midi_io import read_midi
    from studio.limits import max_samples

    parts, tempo_map = read_midi(path)
    parts = [p for p in parts if p[1].notes]
    if not parts:
        raise MidiFileError(path, "holds no notes")
    if (start is not None and int(start) < 0) or (bar is not None and int(bar) < 0):
        raise StudioError(f"'{Path(path).name}': the import position is before the project start")
    project = session.project
    sr = project.sample_rate
    if adopt_tempo is None:
        adopt_tempo = not project.tracks
    if adopt_tempo:
        if bar is not None:
            tick = int(bar) * tempo_map.signatures[0].ticks_per_bar
        elif start:
            tick = int(round(int(start) / sr * tempo_map.tempos[0].bpm * PPQ / 60.0))
        else:
            tick = 0
        new_map = _shifted_to(tempo_map, tick)
    else:
        new_map = project.tempo_map
        if bar is not None:
            tick = new_map.bar_to_tick(int(bar))
        else:
            tick = new_map.sample_to_tick(int(start or 0), sr)
    end = max(tick + p[1].end for p in parts)
    if new_map.tick_to_sample(end, sr) > max_samples(sr):
        raise MidiFileError(path, f"placed there would end past the {MAX_PROJECT_SECONDS // 3600} h project limit")
    name = Path(path).name
    if notes is not None:
        if adopt_tempo:
            notes.append(f"'{name}': the project had no tracks, so it takes the file's tempo and meter "
                         f"({_describe_map(tempo_map)}); undo the import to get the old grid back")
        elif tempo_map.tempos[0].bpm != new_map.bpm_at(tick) or len(tempo_map.tempos) > 1:
            notes.append(f"'{name}': the project keeps its tempo ({new_map.bpm_at(tick):g} BPM); the file's "
                         f"({_describe_map(tempo_map)}) is not used, so its notes play at the project's tempo")
    tracks = []
    with session.undo_stack.group(f"Import MIDI '{name}'"):
        if adopt_tempo:
            session.undo_stack.push(SetTempoMap(new_map))
        for k, (pname, clip, program, is_drum, _channel) in enumerate(parts):
            clip.start = int(tick)
            track = Track(name=pname or f"{Path(path).stem} {k + 1}", kind="midi", colour=_colour(session, 0),
                          program=int(program), is_drum=bool(is_drum))
            session.undo_stack.push(AddTrack(track))
            session.undo_stack.push(AddClip(track.id, clip))
            tracks.append(track)
    return tracks


def import_files(session: Session, paths: Sequence[str | Path], *, start: int = 0, bar: int | None = None,
                 notes: list[str] | None = None, **kw) -> list[Track]:
    """Import audio and MIDI files by suffix (audio first, as one step each kind).

    Args:
        start: timeline position of the new clips, samples.
        bar: position as a 0-based bar index instead (wins over ``start``; audio goes to
            that bar line's sample under the project's tempo map).
        notes: receives plain-words notes (a MIDI file's tempo adopted or not).
        kw: ``downmix`` and ``progress`` of :func:`import_audio`.

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
    if bar is not None:
        if int(bar) < 0:
            raise StudioError(f"bar {int(bar) + 1} is before the first bar")
        tm = session.project.tempo_map
        audio_start = tm.tick_to_sample(tm.bar_to_tick(int(bar)), session.project.sample_rate)
    else:
        audio_start = int(start)
    out = import_audio(session, audio, start=audio_start, **kw) if audio else []
    for m in midi:
        out += import_midi(session, m, start=int(start), bar=bar, notes=notes)
    return out
