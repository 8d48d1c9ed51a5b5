"""Standard MIDI File import and export (through mido), converted to and from the model.

Reading rescales the file's PPQ to the project's PPQ 960 (``tick * 960 / file_ppq``,
rounded to the nearest tick; exact when 960 is a multiple of the file's PPQ, e.g.
96, 120, 480, 960). Every note is kept (a note with no note-off ends at the end of its
track; a note shorter than one tick after rescaling lasts one tick), with control
changes, pitch bends, tempo changes and time-signature changes. Polyphonic and channel
aftertouch, SysEx and other meta events are not kept (the model has no place for them).

Writing makes a type-1 SMF at PPQ 960: the first track holds the tempo map and time
signatures, then one track per part (track name, program change, notes, CC and pitch
bends). Writes are atomic (:mod:`engines.files`).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import mido

from engines.files import atomic_write_bytes
from studio.errors import MidiFileError
from studio.limits import MAX_PROJECT_SECONDS, MAX_TICKS, describe_seconds
from studio.model.project import ControlChange, MidiClip, Note, PitchBend, Track
from studio.model.timebase import PPQ, TempoChange, TempoMap, TimeSignature

DRUM_CHANNEL = 9
"""GM percussion channel (10 counted from 1)."""


class ImportedMidiTrack(NamedTuple):
    """One part of an imported MIDI file: a track (or one channel of a track).

    Attributes:
        name: the track name (``"<name> (ch N)"`` when a track mixes channels), or ``"Channel N"``.
        clip: a :class:`MidiClip` at tick 0 holding every note, CC and pitch bend (ticks at PPQ 960).
        program: first GM program change on the channel (0 when none).
        is_drum: True on channel 10.
        channel: MIDI channel 0..15 of the events in the file.
    """

    name: str
    clip: MidiClip
    program: int
    is_drum: bool
    channel: int


@dataclass
class MidiPart:
    """What :func:`write_midi` writes as one SMF track.

    Attributes:
        name: track name.
        clips: MIDI clips (positions on the project timeline, ticks).
        program: GM program 0..127.
        is_drum: write on channel 10.
        channel: MIDI channel 0..15; None = next free melodic channel.
    """

    name: str
    clips: list[MidiClip] = field(default_factory=list)
    program: int = 0
    is_drum: bool = False
    channel: int | None = None

    @classmethod
    def from_track(cls, track: Track) -> "MidiPart":
        """The part for a MIDI :class:`Track` (its own clips; takes are not included)."""
        return cls(track.name, [c for c in track.clips if isinstance(c, MidiClip)],
                   track.program, track.is_drum)


# ---------------------------------------------------------------------------------- read
def describe_ticks(tick: int, ppq: int) -> str:
    """``"134217728 quarter notes"`` (for messages about absurd positions)."""
    return f"{tick // max(1, ppq)} quarter notes"


def _rescale(tick: int, file_ppq: int) -> int:
    return (tick * PPQ + file_ppq // 2) // file_ppq


def _bar_ceil(tempo_map: TempoMap, tick: int) -> int:
    bar, beat, in_beat = tempo_map.bar_beat_at(tick)
    if beat == 0 and in_beat == 0:
        return tick
    return tempo_map.bar_to_tick(bar + 1)


def read_midi(path: str | Path) -> tuple[list[ImportedMidiTrack], TempoMap]:
    """Read a Standard MIDI File (type 0, 1 or 2) into clips and a tempo map.

    Args:
        path: a ``.mid`` file.

    Returns:
        ``(parts, tempo_map)``: one :class:`ImportedMidiTrack` per (track, channel)
        holding notes, in file order; the tempo map (tempo changes and time signatures,
        ticks at PPQ 960; 120 BPM and 4/4 at tick 0 when the file gives none there).
        Each clip starts at tick 0 and lasts to the end of the bar of the file's last event.

    Raises:
        MidiFileError: the file is missing, unreadable, not a valid SMF (truncated,
            random bytes, text), uses SMPTE time division, holds no notes, has a tempo
            outside 1-1000 BPM (0 µs per quarter note included), or lasts longer than the
            24 h project limit.
    """
    from studio.limits import MAX_MIDI_FILE_BYTES

    path = Path(path)
    if not path.exists():
        raise MidiFileError(path, "file not found")
    if not path.is_file():
        raise MidiFileError(path, "is not a regular file (a folder, pipe or device)")
    try:
        size = path.stat().st_size
        if size > MAX_MIDI_FILE_BYTES:
            raise MidiFileError(path, f"is {size} bytes, larger than the {MAX_MIDI_FILE_BYTES // (1024 * 1024)} MiB "
                                      "limit for a MIDI file")
        data = path.read_bytes()
    except OSError as exc:
        raise MidiFileError(path, f"can't be read ({exc.strerror or exc})") from None
    if not data:
        raise MidiFileError(path, "file is empty")
    if data[:4] != b"MThd":
        raise MidiFileError(path, "not a Standard MIDI File (no 'MThd' header)")
    try:
        mf = mido.MidiFile(file=io.BytesIO(data), clip=False)
    except EOFError:
        raise MidiFileError(path, "file is truncated") from None
    except Exception as exc:  # mido raises OSError/ValueError/KeyError/IndexError on bad bytes
        raise MidiFileError(path, f"not a valid Standard MIDI File ({exc})") from None
    file_ppq = mf.ticks_per_beat
    if not isinstance(file_ppq, int) or file_ppq <= 0 or file_ppq >= 0x8000:
        raise MidiFileError(path, f"unsupported time division {file_ppq} (SMPTE timing is not supported)")
    return _convert(path, mf, file_ppq)


def _convert(path: Path, mf: mido.MidiFile, file_ppq: int) -> tuple[list[ImportedMidiTrack], TempoMap]:
    tempos: dict[int, float] = {}
    sigs: dict[int, tuple[int, int]] = {}
    raw: list[tuple[str, int, dict]] = []  # per (track, channel)
    end_tick = 0
    offset = 0
    for ti, track in enumerate(mf.tracks):
        name = ""
        per_channel: dict[int, dict] = {}
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        tick = offset if mf.type == 2 else 0
        for msg in track:
            tick += msg.time
            t = _rescale(tick, file_ppq)
            if t > MAX_TICKS:
                raise MidiFileError(path, f"has events {describe_ticks(tick, file_ppq)} after its start; "
                                          f"a project is limited to {MAX_PROJECT_SECONDS // 3600} h")
            if msg.is_meta:
                if msg.type == "set_tempo":
                    if msg.tempo <= 0:
                        raise MidiFileError(path, f"has a tempo of {msg.tempo} µs per quarter note at tick {tick} "
                                                  "(an infinite tempo)")
                    tempos[t] = mido.tempo2bpm(msg.tempo)
                elif msg.type == "time_signature":
                    if msg.denominator in (1, 2, 4, 8, 16, 32) and 1 <= msg.numerator <= 64:
                        sigs[t] = (msg.numerator, msg.denominator)
                elif msg.type == "track_name" and not name:
                    name = msg.name.strip()
                continue
            ch = getattr(msg, "channel", None)
            if ch is None:
                continue
            part = per_channel.setdefault(ch, {"notes": [], "cc": [], "pb": [], "program": None})
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((ch, msg.note), []).append((t, msg.velocity))
                end_tick = max(end_tick, t)
            elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                stack = open_notes.get((ch, msg.note))
                if stack:
                    on, vel = stack.pop(0)  # first in, first out
                    part["notes"].append(Note(msg.note, vel, on, max(1, t - on)))
                    end_tick = max(end_tick, t)
            elif msg.type == "control_change":
                part["cc"].append(ControlChange(t, msg.control, msg.value))
                end_tick = max(end_tick, t)
            elif msg.type == "pitchwheel":
                part["pb"].append(PitchBend(t, msg.pitch))
                end_tick = max(end_tick, t)
            elif msg.type == "program_change" and part["program"] is None:
                part["program"] = msg.program
        track_end = _rescale(tick, file_ppq)
        for (ch, pitch), stack in open_notes.items():  # notes never switched off end with the track
            for on, vel in stack:
                per_channel[ch]["notes"].append(Note(pitch, vel, on, max(1, track_end - on)))
                end_tick = max(end_tick, on + max(1, track_end - on))
        if mf.type == 2:
            offset = tick
        for ch, part in sorted(per_channel.items()):
            if not part["notes"]:
                continue
            if len([c for c, p in per_channel.items() if p["notes"]]) > 1:
                label = f"{name or f'Track {ti + 1}'} (ch {ch + 1})"
            else:
                label = name or f"Channel {ch + 1}"
            raw.append((label, ch, part))
    if not raw:
        raise MidiFileError(path, "holds no notes")
    if 0 not in tempos:
        tempos[0] = tempos[min(tempos)] if tempos else 120.0
    if 0 not in sigs:
        sigs[0] = sigs[min(sigs)] if sigs else (4, 4)
    try:
        tempo_map = TempoMap([TempoChange(t, float(b)) for t, b in sorted(tempos.items())],
                             [TimeSignature(t, n, d) for t, (n, d) in sorted(sigs.items())])
    except ValueError as exc:
        raise MidiFileError(path, f"invalid tempo map ({exc})") from None
    length = max(_bar_ceil(tempo_map, end_tick), 1)
    seconds = tempo_map.tick_to_seconds(length)
    if length > MAX_TICKS or seconds > MAX_PROJECT_SECONDS:
        raise MidiFileError(path, f"lasts {describe_seconds(seconds)} (its last event is {describe_ticks(end_tick, PPQ)} "
                                  f"in); a project is limited to {MAX_PROJECT_SECONDS // 3600} h")
    out = []
    for label, ch, part in raw:
        part["notes"].sort(key=lambda n: (n.start, n.pitch))
        clip = MidiClip(start=0, length=length, notes=part["notes"], cc=part["cc"],
                        pitch_bends=part["pb"], name=label)
        out.append(ImportedMidiTrack(label, clip, part["program"] or 0, ch == DRUM_CHANNEL, ch))
    return out, tempo_map


# ---------------------------------------------------------------------------------- write
def shift_tempo_map(tempo_map: TempoMap, start_tick: int) -> TempoMap:
    """The tempo map as seen from ``start_tick``: changes before it collapse onto tick 0.

    Used when a time range is exported, so that the exported file's tick 0 is the
    range start.
    """
    tempos = [TempoChange(0, tempo_map.bpm_at(start_tick))] + [
        TempoChange(t.tick - start_tick, t.bpm) for t in tempo_map.tempos if t.tick > start_tick]
    s0 = tempo_map.signature_at(start_tick)
    sigs = [TimeSignature(0, s0.numerator, s0.denominator)] + [
        TimeSignature(s.tick - start_tick, s.numerator, s.denominator)
        for s in tempo_map.signatures if s.tick > start_tick]
    return TempoMap(tempos, sigs)


def _conductor(tempo_map: TempoMap, name: str) -> mido.MidiTrack:
    events: list[tuple[int, int, mido.MetaMessage]] = []
    if name:
        events.append((0, 0, mido.MetaMessage("track_name", name=name, time=0)))
    for s in tempo_map.signatures:
        events.append((s.tick, 1, mido.MetaMessage(
            "time_signature", numerator=s.numerator, denominator=s.denominator, time=0)))
    for t in tempo_map.tempos:
        events.append((t.tick, 2, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(t.bpm), time=0)))
    return _to_track(events)


def _to_track(events: list[tuple[int, int, Any]]) -> mido.MidiTrack:
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _part_track(part: MidiPart, channel: int, start_tick: int, end_tick: int | None) -> mido.MidiTrack:
    # order at equal ticks: name/program, note-offs, controls, note-ons
    events: list[tuple[int, int, Any]] = [
        (0, 0, mido.MetaMessage("track_name", name=part.name, time=0)),
        (0, 1, mido.Message("program_change", channel=channel, program=int(part.program) & 127, time=0)),
    ]
    lo = start_tick
    hi = end_tick
    for clip in part.clips:
        c_end = clip.end if hi is None else min(clip.end, hi)
        for n in clip.notes:
            on = clip.start + n.start
            if n.start >= clip.length or on < lo or on >= c_end or n.velocity <= 0:
                continue
            off = min(clip.start + n.end, c_end)
            events.append((on - lo, 4, mido.Message("note_on", channel=channel, note=n.pitch,
                                                   velocity=n.velocity, time=0)))
            events.append((max(off, on + 1) - lo, 2, mido.Message("note_off", channel=channel,
                                                                note=n.pitch, velocity=0, time=0)))
        for c in clip.cc:
            t = clip.start + c.tick
            if lo <= t < c_end:
                events.append((t - lo, 3, mido.Message("control_change", channel=channel,
                                                     control=c.controller, value=c.value, time=0)))
        for p in clip.pitch_bends:
            t = clip.start + p.tick
            if lo <= t < c_end:
                events.append((t - lo, 3, mido.Message("pitchwheel", channel=channel,
                                                     pitch=max(-8192, min(8191, p.value)), time=0)))
    return _to_track(events)


def _midi_file(parts: Sequence[MidiPart | Track | MidiClip], tempo_map: TempoMap, *,
               start_tick: int = 0, end_tick: int | None = None, name: str = "") -> mido.MidiFile:
    mf = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    mf.tracks.append(_conductor(shift_tempo_map(tempo_map, start_tick) if start_tick else tempo_map, name))
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    used = 0
    for p in parts:
        if isinstance(p, Track):
            p = MidiPart.from_track(p)
        elif isinstance(p, MidiClip):
            p = MidiPart(p.name or "MIDI", [p])
        if p.is_drum:
            ch = DRUM_CHANNEL
        elif p.channel is not None:
            ch = int(p.channel)
        else:
            ch = free[used % len(free)]
            used += 1
        mf.tracks.append(_part_track(p, ch, start_tick, end_tick))
    return mf


def _to_bytes(mf: mido.MidiFile) -> bytes:
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def write_midi(path: str | Path, parts: Iterable[MidiPart | Track | MidiClip], tempo_map: TempoMap, *,
               start_tick: int = 0, end_tick: int | None = None, name: str = "") -> Path:
    """Write a type-1 Standard MIDI File at PPQ 960, atomically.

    Args:
        path: destination ``.mid``.
        parts: :class:`MidiPart` items, MIDI :class:`Track` objects or bare :class:`MidiClip`
            objects; one SMF track each, after the tempo track. Drum parts go on channel 10,
            the others on channels 1..16 in order (skipping 10) unless a part names one.
        tempo_map: written into the first track (tempo changes and time signatures).
        start_tick: timeline tick that becomes tick 0 of the file; notes starting
            before it are dropped and the tempo map is shifted (:func:`shift_tempo_map`).
        end_tick: notes starting at or after it are dropped and notes are cut there.
        name: name of the tempo track (e.g. the song title).

    Returns:
        ``path``.

    Raises:
        OSError: the file can't be written. ValueError: out-of-range note data.
    """
    path = Path(path)
    atomic_write_bytes(path, _to_bytes(_midi_file(list(parts), tempo_map, start_tick=start_tick,
                                                  end_tick=end_tick, name=name)))
    return path


def midi_parts_to_bytes(parts: Sequence[MidiPart], tempo_map: TempoMap | None = None, *, start_tick: int = 0,
                        end_tick: int | None = None, name: str = "") -> bytes:
    """Several parts as the bytes of one type-1 SMF (several clips on the clipboard).

    Args:
        parts: one SMF track each, their clips at timeline ticks.
        tempo_map: the project's (120 BPM 4/4 when None), shifted so that ``start_tick``
            is tick 0 of the file; the clips keep their distances from each other.
        start_tick, end_tick: the range written (see :func:`write_midi`).
        name: name of the tempo track.
    """
    tm = tempo_map or TempoMap()
    return _to_bytes(_midi_file(list(parts), tm, start_tick=int(start_tick), end_tick=end_tick, name=name))


def midi_clip_to_bytes(clip: MidiClip, tempo_map: TempoMap | None = None, *, name: str = "",
                       program: int = 0, is_drum: bool = False) -> bytes:
    """One clip as the bytes of a type-1 SMF (for the clipboard and drag-out to a DAW).

    The clip start becomes tick 0 of the file; the tempo map (120 BPM 4/4 when None) is
    shifted to the clip start.
    """
    tm = tempo_map or TempoMap()
    part = MidiPart(name or clip.name or "MIDI", [clip], program, is_drum)
    return _to_bytes(_midi_file([part], tm, start_tick=clip.start, end_tick=clip.end, name=name))
