"""Undo/redo of every kind of command returns the project to an identical state."""
from __future__ import annotations

import json

import pytest

from studio.model import edits as E
from studio.model.commands import UndoStack
from studio.errors import CommandError
from studio.model.project import (
    AudioClip, ControlChange, ControlLane, Effect, MediaItem, MidiClip, Note, PitchBend, Project,
    Region, Take, Track,
)
from studio.model.timebase import TempoMap


def snapshot(p: Project) -> str:
    return json.dumps(p.to_dict(), sort_keys=True)


@pytest.fixture
def world():
    p = Project(name="Song", sample_rate=44100)
    p.media["m1"] = MediaItem("m1", "media/m1.wav", 44100, 2, 441000, "a.wav", "x", 48000)
    audio = Track("Drums", kind="audio")
    audio.clips.append(AudioClip("m1", 1000, 0, 44100, name="clip", fade_in=100, fade_out=200))
    midi = Track("Keys", kind="midi")
    midi.clips.append(MidiClip(0, 4 * 960, [Note(60, 100, 0, 960), Note(64, 90, 1000, 2000)],
                               [ControlChange(10, 7, 100), ControlChange(2000, 7, 50)],
                               [PitchBend(0, 0), PitchBend(2500, 4000)]))
    p.tracks += [audio, midi]
    p.regions.append(Region("verse", 0, 44100))
    take = Take("gen 1", [AudioClip("m1", 2000, 500, 10000)], {"engine": "fake", "seed": 1})
    audio.take_groups.append(__import__("studio.model.project", fromlist=["TakeGroup"]).TakeGroup(2000, 12000, [take], take.id))
    return p, audio, midi, take


def all_commands(p, audio, midi, take):
    a_clip, m_clip = audio.clips[0], midi.clips[0]
    group = audio.take_groups[0]
    return [
        E.AddTrack(Track("New")),
        E.AddTracks([Track("S1"), Track("S2")], index=0),
        E.RemoveTrack(midi.id),
        E.MoveTrack(audio.id, 1),
        E.SetTrackProperty(audio.id, "gain_db", -6.0),
        E.SetTrackProperty(audio.id, "pan", 0.5),
        E.SetTrackProperty(audio.id, "mute", True),
        E.SetTrackProperty(audio.id, "solo", True),
        E.SetTrackProperty(audio.id, "name", "Beat"),
        E.SetTrackProperty(audio.id, "colour", "#112233"),
        E.SetTrackProperty(audio.id, "effects", [Effect("Reverb", {"room_size": 0.3})]),
        E.AddClip(audio.id, AudioClip("m1", 50000, 10, 1000)),
        E.RemoveClip(a_clip.id),
        E.RemoveClip(take.clips[0].id),
        E.MoveClip(a_clip.id, 777),
        E.MoveClip(m_clip.id, 960, track_id=midi.id),
        E.SetClipFields(a_clip.id, {"start": 1500, "offset": 500, "length": 43600}),
        E.SetClipProperty(a_clip.id, "gain_db", -3.0),
        E.SetClipProperty(a_clip.id, "fade_out", 4000),
        E.SplitClip(a_clip.id, 20000),
        E.SplitClip(m_clip.id, 1500),
        E.SetNotes(m_clip.id, [Note(72, 80, 0, 480)], cc=[], pitch_bends=[]),
        E.AddMedia(MediaItem("m2", "media/m2.wav", 44100, 1, 10, "b.wav")),
        E.AddTake(audio.id, 2000, 12000, Take("gen 2", [AudioClip("m1", 2000, 0, 10000)])),
        E.AddTake(audio.id, 30000, 40000, Take("gen 3", [AudioClip("m1", 30000, 0, 10000)]), activate=False),
        E.SetActiveTake(group.id, None),
        E.RemoveTake(take.id),
        E.SplitTakeGroup(group.id, 5000),
        E.SetTempoMap(TempoMap.constant(90, 3, 4)),
        E.AddRegion(Region("chorus", 44100, 88200)),
        E.RemoveRegion(p.regions[0].id),
        E.SetLoop(Region("loop", 0, 22050)),
        E.SetControlLane(audio.id, "dynamics", ControlLane("dynamics", [[100, -12.0], [0, -20.0]])),
        E.SetProjectProperty("master_gain_db", -1.5),
        E.SetProjectProperty("name", "Other"),
    ]


def test_every_command_undoes_and_redoes_exactly(world):
    p, audio, midi, take = world
    n = len(all_commands(p, audio, midi, take))
    for i in range(n):
        cmd = all_commands(p, audio, midi, take)[i]
        stack = UndoStack(p)
        before = snapshot(p)
        stack.push(cmd)
        after = snapshot(p)
        assert after != before, f"{type(cmd).__name__} changed nothing"
        stack.undo()
        assert snapshot(p) == before, f"undo of {type(cmd).__name__}"
        stack.redo()
        assert snapshot(p) == after, f"redo of {type(cmd).__name__}"
        stack.undo()
        assert snapshot(p) == before


def test_failed_command_leaves_project_unchanged(world):
    p, audio, midi, take = world
    stack = UndoStack(p)
    before = snapshot(p)
    bad = [
        E.AddClip(audio.id, AudioClip("missing", 0, 0, 10)),          # unknown media
        E.AddClip(audio.id, AudioClip("m1", 0, 441000 - 5, 10)),       # past media end
        E.AddClip(midi.id, AudioClip("m1", 0, 0, 10)),                 # audio clip on MIDI track
        E.MoveClip(audio.clips[0].id, -5),
        E.SplitClip(audio.clips[0].id, 10),                           # outside the clip
        E.SetClipFields(audio.clips[0].id, {"fade_in": 40000, "fade_out": 40000}),
        E.SetTrackProperty(audio.id, "pan", 3.0),
        E.RemoveTrack("nope"),
        E.SetActiveTake(audio.take_groups[0].id, "nope"),
    ]
    for cmd in bad:
        with pytest.raises(CommandError):
            stack.push(cmd)
        assert snapshot(p) == before
    assert not stack.can_undo


def test_group_is_one_step_and_atomic(world):
    p, audio, midi, _ = world
    stack = UndoStack(p)
    before = snapshot(p)
    with stack.group("two things"):
        stack.push(E.SetTrackProperty(audio.id, "gain_db", -2.0))
        stack.push(E.AddTrack(Track("x")))
    assert stack.index == 1 and stack.undo_label == "two things"
    stack.undo()
    assert snapshot(p) == before
    with pytest.raises(CommandError):
        with stack.group("fails half way"):
            stack.push(E.SetTrackProperty(audio.id, "gain_db", -2.0))
            stack.push(E.RemoveTrack("nope"))
    assert snapshot(p) == before


def test_merging_and_dirty_flag(world):
    p, audio, _, _ = world
    stack = UndoStack(p)
    assert not stack.is_dirty
    for g in (-1.0, -2.0, -3.0):  # a fader drag
        stack.push(E.SetTrackProperty(audio.id, "gain_db", g))
    assert stack.index == 1 and audio.gain_db == -3.0
    stack.mark_saved()
    assert not stack.is_dirty
    stack.push(E.SetTrackProperty(audio.id, "gain_db", -4.0))  # must not merge into the saved step
    assert stack.index == 2 and stack.is_dirty
    stack.undo()
    assert not stack.is_dirty and audio.gain_db == -3.0
    stack.undo()
    assert stack.is_dirty and audio.gain_db == 0.0
    stack.redo()
    assert not stack.is_dirty
    stack.undo()
    stack.push(E.SetTrackProperty(audio.id, "pan", 0.2))  # saved state now unreachable
    assert stack.is_dirty
    events = []
    stack.add_listener(events.append)
    stack.undo()
    stack.redo()
    assert events == ["undo", "redo"]


def test_sounding_clips_take_replaces_own_clips(world):
    p, audio, _, take = world
    spans = sorted((c.id == take.clips[0].id, s, e) for c, s, e in p.sounding_clips(audio))
    own = audio.clips[0]
    assert spans == [(False, own.start, 2000), (False, 12000, own.end), (True, 2000, 12000)]
