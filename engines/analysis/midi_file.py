"""Write transcribed notes as a Standard MIDI File (mido), atomically.

Notes are placed on a constant-tempo grid: sample -> seconds -> ticks at ``bpm`` and
PPQ 960, so a DAW that imports the file at that tempo sees the notes where they sound.
Pitch bends use the General MIDI default range of +-2 semitones and are kept only for
notes that overlap no other note (a channel has one bend wheel; basic-pitch's own
writer drops overlapping bends the same way).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from engines.analysis.melody import NoteEvent

__all__ = ["write_midi", "PPQ", "BEND_RANGE_SEMITONES"]

PPQ = 960
BEND_RANGE_SEMITONES = 2.0


def _bend_value(semitones: float) -> int:
    return int(max(-8192, min(8191, round(semitones / BEND_RANGE_SEMITONES * 8191))))


def write_midi(path: str | Path, notes: Iterable[NoteEvent], sample_rate: int, *, bpm: float = 120.0,
               numerator: int = 4, denominator: int = 4, program: int = 0, channel: int = 0,
               track_name: str = "Transcription", offset: int = 0) -> Path:
    """Write ``notes`` to ``path`` as a type-1 MIDI file (tempo track + one note track).

    Args:
        path: destination ``.mid``; written to a temp file in the same folder, fsynced and renamed.
        notes: positions in samples at ``sample_rate``.
        bpm, numerator, denominator: tempo and meter written into the file.
        program: General MIDI program (0..127); channel: 0..15 (9 = drums).
        offset: samples subtracted from every position (notes before 0 are dropped).

    Returns:
        the written path.

    Raises:
        ValueError: bad tempo, program or channel.
        OSError: the folder can't be written.
    """
    import mido

    if not (0 < bpm <= 1000):
        raise ValueError(f"tempo must be within (0, 1000] BPM, got {bpm}")
    if not (0 <= program <= 127) or not (0 <= channel <= 15):
        raise ValueError(f"program must be 0..127 and channel 0..15, got {program}, {channel}")
    path = Path(path)
    ticks_per_sample = bpm / 60.0 * PPQ / float(sample_rate)

    def tick(sample: int) -> int:
        return max(0, int(round((sample - offset) * ticks_per_sample)))

    notes = sorted((n for n in notes if n.end - offset > 0), key=lambda n: (n.start, n.pitch))
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message); note-offs sort first
    for i, n in enumerate(notes):
        t0, t1 = tick(n.start), max(tick(n.start) + 1, tick(n.end))
        events.append((t0, 2, mido.Message("note_on", note=int(n.pitch), velocity=int(n.velocity), channel=channel)))
        events.append((t1, 0, mido.Message("note_off", note=int(n.pitch), velocity=0, channel=channel)))
        overlaps = any(m is not n and m.start < n.end and n.start < m.end for m in notes)
        if n.pitch_bends and not overlaps:
            last = None
            for s, b in n.pitch_bends:
                v = _bend_value(b)
                if v != last:
                    events.append((max(t0, tick(s)), 1, mido.Message("pitchwheel", pitch=v, channel=channel)))
                    last = v
            if last not in (None, 0):
                events.append((t1, 1, mido.Message("pitchwheel", pitch=0, channel=channel)))
    events.sort(key=lambda e: (e[0], e[1]))

    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=int(numerator), denominator=int(denominator), time=0))
    mid.tracks.append(meta)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=track_name, time=0))
    track.append(mido.Message("program_change", program=int(program), channel=channel, time=0))
    now = 0
    for t, _order, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    mid.tracks.append(track)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            mid.save(file=f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
