"""MIDI import/export: every note kept, PPQ rescaled to 960, tempo map, malformed files."""
from __future__ import annotations

import io
import os
from collections import Counter

import mido
import pytest

from studio.errors import MidiFileError
from studio.io.midi_io import MidiPart, midi_clip_to_bytes, read_midi, write_midi
from studio.model.project import ControlChange, MidiClip, Note, PitchBend, Track
from studio.model.timebase import TempoChange, TempoMap, TimeSignature


def mido_notes(path) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(track index, channel) -> [(abs tick, pitch)] of every note-on, straight from mido."""
    mf = mido.MidiFile(path)
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for ti, tr in enumerate(mf.tracks):
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.setdefault((ti, m.channel), []).append((tick, m.note))
    return out


@pytest.mark.parametrize("name", ["blupi_music001.mid", "blupi_music000.mid"])
def test_import_keeps_every_note_and_the_tempo(shared, name):
    path = shared / "midi" / name
    parts, tempo_map = read_midi(path)
    ref = mido_notes(path)
    mf = mido.MidiFile(path)
    scale = 960 / mf.ticks_per_beat
    assert len(parts) == len(ref)
    assert sum(len(p.clip.notes) for p in parts) == sum(len(v) for v in ref.values())
    for part, ((ti, ch), notes) in zip(parts, sorted(ref.items())):
        assert part.channel == ch and part.is_drum == (ch == 9)
        assert len(part.clip.notes) == len(notes)
        assert Counter(n.pitch for n in part.clip.notes) == Counter(p for _, p in notes)
        assert sorted(n.start for n in part.clip.notes) == sorted(round(t * scale) for t, _ in notes)
        assert all(n.length > 0 for n in part.clip.notes)
        assert part.clip.length >= max(n.end for n in part.clip.notes)
    tempos = [(m.tempo, m.time) for tr in mf.tracks for m in tr if m.type == "set_tempo"]
    assert tempo_map.bpm_at(0) == pytest.approx(mido.tempo2bpm(tempos[0][0]))
    assert len(tempo_map.tempos) == len(tempos)


def test_blupi_track_names_programs_and_drums(shared):
    parts, _ = read_midi(shared / "midi" / "blupi_music001.mid")
    by_name = {p.name: p for p in parts}
    assert {"Melody-1", "Bass", "Drum"} <= set(by_name)
    assert by_name["Drum"].is_drum and by_name["Drum"].channel == 9
    assert by_name["Bass"].program == 35 and not by_name["Bass"].is_drum
    assert len(by_name["Drum"].clip.notes) == 10020


def test_round_trip_keeps_notes_cc_bends_tempo_changes_and_signatures(tmp_path):
    tm = TempoMap([TempoChange(0, 100.0), TempoChange(3840, 140.5), TempoChange(7680, 90.0)],
                  [TimeSignature(0, 4, 4), TimeSignature(3840, 3, 4), TimeSignature(6720, 6, 8)])
    clip = MidiClip(0, 9600, notes=[Note(60, 100, 0, 480), Note(64, 90, 240, 1), Note(67, 1, 9000, 600)],
                    cc=[ControlChange(0, 7, 100), ControlChange(960, 64, 127), ControlChange(1920, 64, 0)],
                    pitch_bends=[PitchBend(100, -8192), PitchBend(200, 8191), PitchBend(300, 0)])
    drums = MidiClip(0, 9600, notes=[Note(36, 127, t, 120) for t in range(0, 9600, 960)])
    path = write_midi(tmp_path / "song.mid", [MidiPart("Keys", [clip], program=4),
                                              MidiPart("Kit", [drums], is_drum=True)], tm)
    parts, tm2 = read_midi(path)
    # SMF tempo is integer microseconds per quarter note: BPM comes back within 1 us/quarter
    assert [t.tick for t in tm2.tempos] == [t.tick for t in tm.tempos]
    assert [t.bpm for t in tm2.tempos] == pytest.approx([t.bpm for t in tm.tempos], rel=1e-5)
    assert tm2.signatures == tm.signatures
    keys, kit = parts
    assert keys.name == "Keys" and keys.program == 4 and not keys.is_drum
    assert sorted((n.pitch, n.velocity, n.start, n.length) for n in keys.clip.notes) == \
        sorted((n.pitch, n.velocity, n.start, n.length) for n in clip.notes)
    assert keys.clip.cc == clip.cc and keys.clip.pitch_bends == clip.pitch_bends
    assert kit.is_drum and kit.channel == 9 and len(kit.clip.notes) == 10
    assert not [p for p in tmp_path.iterdir() if p.name != "song.mid"]  # atomic: no temp files left
    mf = mido.MidiFile(path)
    assert mf.type == 1 and mf.ticks_per_beat == 960
    assert {m.type for m in mf.tracks[0]} >= {"set_tempo", "time_signature"}
    assert not any(m.type == "note_on" for m in mf.tracks[0])


@pytest.mark.parametrize("ppq, exact", [(96, True), (480, True), (100, False)])
def test_ppq_is_rescaled_to_960(tmp_path, ppq, exact):
    mf = mido.MidiFile(type=0, ticks_per_beat=ppq)
    tr = mido.MidiTrack()
    ticks = [0, 1, 3, 7, ppq, 5 * ppq + 1]
    last = 0
    for t in ticks:
        tr.append(mido.Message("note_on", note=60, velocity=80, time=t - last))
        tr.append(mido.Message("note_off", note=60, velocity=0, time=1))
        last = t + 1
    mf.tracks.append(tr)
    path = tmp_path / "ppq.mid"
    mf.save(path)
    parts, _ = read_midi(path)
    starts = [n.start for n in parts[0].clip.notes]
    assert starts == [(t * 960 + ppq // 2) // ppq for t in ticks]
    if exact:
        assert starts == [t * 960 // ppq for t in ticks]
        assert all(n.length == 960 // ppq for n in parts[0].clip.notes)


def test_type0_file_is_split_by_channel(tmp_path):
    mf = mido.MidiFile(type=0, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("track_name", name="All", time=0),
                         mido.Message("program_change", channel=2, program=33, time=0),
                         mido.Message("note_on", channel=2, note=40, velocity=90, time=0),
                         mido.Message("note_on", channel=9, note=36, velocity=90, time=0),
                         mido.Message("note_off", channel=2, note=40, time=480),
                         mido.Message("note_off", channel=9, note=36, time=0)])
    mf.tracks.append(tr)
    mf.save(tmp_path / "t0.mid")
    parts, tm = read_midi(tmp_path / "t0.mid")
    assert [(p.channel, p.program, p.is_drum, len(p.clip.notes)) for p in parts] == [(2, 33, False, 1), (9, 0, True, 1)]
    assert parts[0].name == "All (ch 3)"
    assert tm.bpm_at(0) == 120.0


def test_note_without_note_off_ends_with_its_track(tmp_path):
    mf = mido.MidiFile(type=1, ticks_per_beat=960)
    mf.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=100),
                                     mido.MetaMessage("end_of_track", time=900)]))
    mf.save(tmp_path / "open.mid")
    parts, _ = read_midi(tmp_path / "open.mid")
    assert [(n.start, n.length) for n in parts[0].clip.notes] == [(100, 900)]


def _bad(tmp_path, shared, kind):
    src = (shared / "midi" / "blupi_music001.mid").read_bytes()
    p = tmp_path / f"{kind}.mid"
    if kind == "truncated":
        p.write_bytes(src[:len(src) // 3])
    elif kind == "header-only":
        p.write_bytes(src[:20])
    elif kind == "random":
        p.write_bytes(os.urandom(4096))
    elif kind == "random-after-header":
        p.write_bytes(src[:14] + os.urandom(4096))
    elif kind == "text":
        p.write_text("This is not a MIDI file, just some words.\n" * 20)
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "no-notes":
        mf = mido.MidiFile()
        mf.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)]))
        mf.save(p)
    return p


@pytest.mark.parametrize("kind", ["truncated", "header-only", "random", "random-after-header", "text",
                                  "empty", "no-notes", "missing"])
def test_malformed_midi_raises_midi_file_error_naming_the_file(tmp_path, shared, kind):
    p = tmp_path / "missing.mid" if kind == "missing" else _bad(tmp_path, shared, kind)
    with pytest.raises(MidiFileError) as err:
        read_midi(p)
    assert err.value.path == p
    assert p.name in str(err.value)
    assert err.value.problem


def test_midi_clip_to_bytes_starts_at_the_clip(tmp_path):
    tm = TempoMap([TempoChange(0, 120.0), TempoChange(1920, 90.0)], [TimeSignature(0, 4, 4)])
    clip = MidiClip(3840, 1920, notes=[Note(60, 100, 0, 480), Note(62, 100, 960, 480), Note(64, 100, 1900, 480)])
    data = midi_clip_to_bytes(clip, tm, name="Clip", program=10)
    mf = mido.MidiFile(file=io.BytesIO(data))
    assert mf.type == 1 and mf.ticks_per_beat == 960
    tempos = [m for m in mf.tracks[0] if m.type == "set_tempo"]
    assert len(tempos) == 1 and mido.tempo2bpm(tempos[0].tempo) == pytest.approx(90.0)
    (tmp_path / "c.mid").write_bytes(data)
    parts, _ = read_midi(tmp_path / "c.mid")
    assert [(n.pitch, n.start, n.length) for n in parts[0].clip.notes] == [(60, 0, 480), (62, 960, 480), (64, 1900, 20)]
    assert parts[0].program == 10


def test_write_midi_accepts_tracks_and_range(tmp_path):
    t = Track("Piano", kind="midi", program=0,
              clips=[MidiClip(960, 3840, notes=[Note(60, 100, 0, 960), Note(62, 100, 1920, 960)])])
    path = write_midi(tmp_path / "p.mid", [t], TempoMap.constant(100, 3, 4), start_tick=1920, end_tick=3840)
    parts, tm = read_midi(path)
    assert [(n.pitch, n.start, n.length) for n in parts[0].clip.notes] == [(62, 960, 960)]
    assert tm.bpm_at(0) == 100 and tm.signatures[0].numerator == 3
