"""The concrete edit commands. Every change to a live project is one of these.

Each command validates before it mutates, captures what it needs to undo, and can
be redone after an undo. Positions follow :mod:`studio.model.project`: samples for audio,
ticks for MIDI. The CLI, the UI and job results all use the same commands.
"""
from __future__ import annotations

import copy
from typing import Any

from studio.model.commands import Command
from studio.errors import CommandError
from studio.model.project import (
    CONTROL_KINDS, AudioClip, Clip, ControlLane, Effect, MediaItem, MidiClip, Note,
    Project, Region, Take, TakeGroup, Track, new_id, _HEX_COLOUR,
)
from studio.model.timebase import TempoMap

# ---------------------------------------------------------------- tracks

TRACK_FIELDS = {
    "name": str, "colour": str, "gain_db": float, "pan": float, "mute": bool, "solo": bool,
    "parent_id": (str, type(None)), "program": int, "is_drum": bool, "effects": list,
}


class AddTrack(Command):
    """Insert ``track`` at ``index`` (default: the end)."""

    def __init__(self, track: Track, index: int | None = None):
        self.track, self.index = track, index
        self.label = f"Add track '{track.name}'"

    def do(self, project: Project) -> None:
        if any(t.id == self.track.id for t in project.tracks):
            raise CommandError(f"track {self.track.id} is already in the project")
        i = len(project.tracks) if self.index is None else max(0, min(self.index, len(project.tracks)))
        project.tracks.insert(i, self.track)

    def undo(self, project: Project) -> None:
        project.tracks.remove(self.track)


class AddTracks(Command):
    """Insert several tracks (e.g. separated stems) as one step, starting at ``index``."""

    def __init__(self, tracks: list[Track], index: int | None = None, label: str | None = None):
        self.tracks, self.index = list(tracks), index
        self.label = label or f"Add {len(self.tracks)} tracks"

    def do(self, project: Project) -> None:
        ids = {t.id for t in project.tracks}
        if any(t.id in ids for t in self.tracks):
            raise CommandError("a track is already in the project")
        i = len(project.tracks) if self.index is None else max(0, min(self.index, len(project.tracks)))
        project.tracks[i:i] = self.tracks

    def undo(self, project: Project) -> None:
        for t in self.tracks:
            project.tracks.remove(t)


class RemoveTrack(Command):
    """Remove a track (its clips, takes and lanes go with it; media stays in the pool)."""

    def __init__(self, track_id: str):
        self.track_id = track_id
        self.label = "Remove track"

    def do(self, project: Project) -> None:
        self.index = project.track_index(self.track_id)
        self.track = project.tracks.pop(self.index)
        self.label = f"Remove track '{self.track.name}'"

    def undo(self, project: Project) -> None:
        project.tracks.insert(self.index, self.track)


class MoveTrack(Command):
    """Move a track to position ``index`` in the track list."""

    def __init__(self, track_id: str, index: int):
        self.track_id, self.index = track_id, index
        self.label = "Move track"

    def do(self, project: Project) -> None:
        self.old = project.track_index(self.track_id)
        t = project.tracks.pop(self.old)
        project.tracks.insert(max(0, min(self.index, len(project.tracks))), t)

    def undo(self, project: Project) -> None:
        t = project.tracks.pop(project.track_index(self.track_id))
        project.tracks.insert(self.old, t)


class SetTrackProperty(Command):
    """Set one track field (``name``, ``colour``, ``gain_db``, ``pan``, ``mute``, ``solo``,
    ``parent_id``, ``program``, ``is_drum`` or ``effects``). Consecutive changes of the same
    field of the same track merge (a fader drag is one undo step)."""

    def __init__(self, track_id: str, field: str, value: Any):
        if field not in TRACK_FIELDS:
            raise CommandError(f"tracks have no editable property {field!r}")
        if field == "effects":
            value = [e if isinstance(e, Effect) else Effect.from_dict(e) for e in value]
        self.track_id, self.field, self.value = track_id, field, value
        self.label = f"Set track {field.replace('_', ' ')}"

    def _check(self) -> None:
        v = self.value
        if self.field == "colour" and not (isinstance(v, str) and _HEX_COLOUR.match(v)):
            raise CommandError(f"bad colour {v!r}; use #rrggbb")
        if self.field == "pan" and not -1.0 <= float(v) <= 1.0:
            raise CommandError(f"pan {v} outside -1..1")
        if self.field == "program" and not 0 <= int(v) <= 127:
            raise CommandError(f"program {v} outside 0..127")
        if self.field == "gain_db" and not float(v) <= 24.0:
            raise CommandError(f"gain {v} dB above +24 dB")

    def do(self, project: Project) -> None:
        self._check()
        track = project.track(self.track_id)
        self.old = copy.deepcopy(getattr(track, self.field))
        setattr(track, self.field, copy.deepcopy(self.value))

    def undo(self, project: Project) -> None:
        setattr(project.track(self.track_id), self.field, copy.deepcopy(self.old))

    def merge(self, other: Command) -> bool:
        if (isinstance(other, SetTrackProperty) and other.track_id == self.track_id
                and other.field == self.field and self.field in ("gain_db", "pan", "name")):
            self.value = other.value
            return True
        return False


# ---------------------------------------------------------------- clips

def _check_clip_kind(track: Track, clip: Clip) -> None:
    if track.kind == "audio" and not isinstance(clip, AudioClip):
        raise CommandError(f"track '{track.name}' is an audio track; it takes audio clips only")
    if track.kind == "midi" and not isinstance(clip, MidiClip):
        raise CommandError(f"track '{track.name}' is a MIDI track; it takes MIDI clips only")


def _check_clip(project: Project, clip: Clip) -> None:
    if isinstance(clip, AudioClip):
        item = project.media.get(clip.media_id)
        if item is None:
            raise CommandError(f"clip '{clip.name}' points to media {clip.media_id} that is not in the project")
        if clip.start < 0 or clip.offset < 0 or clip.length <= 0:
            raise CommandError("a clip needs start >= 0, offset >= 0 and length > 0")
        if clip.offset + clip.length > item.frames:
            raise CommandError(f"clip '{clip.name}' reaches past the end of its media ({item.frames} frames)")
        if clip.fade_in < 0 or clip.fade_out < 0 or clip.fade_in + clip.fade_out > clip.length:
            raise CommandError("fades must be >= 0 and fit inside the clip together")
    else:
        if clip.start < 0 or clip.length <= 0:
            raise CommandError("a MIDI clip needs start >= 0 and length > 0")


class AddClip(Command):
    """Add ``clip`` to a track's own clips."""

    def __init__(self, track_id: str, clip: Clip):
        self.track_id, self.clip = track_id, clip
        self.label = "Add clip"

    def do(self, project: Project) -> None:
        track = project.track(self.track_id)
        _check_clip_kind(track, self.clip)
        _check_clip(project, self.clip)
        track.clips.append(self.clip)

    def undo(self, project: Project) -> None:
        project.track(self.track_id).clips.remove(self.clip)


class RemoveClip(Command):
    """Remove a clip (from a track or a take)."""

    def __init__(self, clip_id: str):
        self.clip_id = clip_id
        self.label = "Delete clip"

    def do(self, project: Project) -> None:
        _, clip, container = project.find_clip(self.clip_id)
        self.container, self.index, self.clip = container, container.index(clip), clip
        container.pop(self.index)

    def undo(self, project: Project) -> None:
        self.container.insert(self.index, self.clip)


class SetClipFields(Command):
    """Change several fields of one clip at once (move, trim, fade, gain, name...).

    Audio clips: ``start``, ``offset``, ``length``, ``gain_db``, ``fade_in``, ``fade_out``, ``name``.
    MIDI clips: ``start``, ``length``, ``name``. Consecutive edits of the same clip with the
    same set of fields merge (one undo step per drag).
    """

    AUDIO = {"start", "offset", "length", "gain_db", "fade_in", "fade_out", "name"}
    MIDI = {"start", "length", "name"}

    def __init__(self, clip_id: str, changes: dict[str, Any], label: str = "Edit clip"):
        self.clip_id, self.changes, self.label = clip_id, dict(changes), label

    def do(self, project: Project) -> None:
        _, clip, _ = project.find_clip(self.clip_id)
        allowed = self.AUDIO if isinstance(clip, AudioClip) else self.MIDI
        bad = set(self.changes) - allowed
        if bad:
            raise CommandError(f"clips have no editable field(s) {sorted(bad)}")
        trial = copy.copy(clip)
        for k, v in self.changes.items():
            setattr(trial, k, v)
        _check_clip(project, trial)
        self.old = {k: getattr(clip, k) for k in self.changes}
        for k, v in self.changes.items():
            setattr(clip, k, v)

    def undo(self, project: Project) -> None:
        _, clip, _ = project.find_clip(self.clip_id)
        for k, v in self.old.items():
            setattr(clip, k, v)

    def merge(self, other: Command) -> bool:
        if (isinstance(other, SetClipFields) and other.clip_id == self.clip_id
                and set(other.changes) == set(self.changes) and other.label == self.label):
            self.changes = dict(other.changes)
            return True
        return False


def SetClipProperty(clip_id: str, field: str, value: Any) -> SetClipFields:
    """One-field :class:`SetClipFields` (e.g. ``SetClipProperty(id, "fade_in", 441)``)."""
    return SetClipFields(clip_id, {field: value}, label=f"Set clip {field.replace('_', ' ')}")


class MoveClip(Command):
    """Move a clip to ``start`` (samples for audio, ticks for MIDI), optionally onto another track."""

    def __init__(self, clip_id: str, start: int, track_id: str | None = None):
        self.clip_id, self.start, self.track_id = clip_id, int(start), track_id
        self.label = "Move clip"

    def do(self, project: Project) -> None:
        track, clip, container = project.find_clip(self.clip_id)
        if self.start < 0:
            raise CommandError("a clip can't start before the project start")
        dest = project.track(self.track_id) if self.track_id else track
        _check_clip_kind(dest, clip)
        self.old = (clip.start, container, container.index(clip))
        clip.start = self.start
        if dest is not track or container is not track.clips:
            container.remove(clip)
            dest.clips.append(clip)
        self.dest = dest

    def undo(self, project: Project) -> None:
        _, clip, container = project.find_clip(self.clip_id)
        start, old_container, index = self.old
        clip.start = start
        if container is not old_container:
            container.remove(clip)
            old_container.insert(index, clip)

    def merge(self, other: Command) -> bool:
        if isinstance(other, MoveClip) and other.clip_id == self.clip_id:
            self.start, self.track_id = other.start, other.track_id
            return True
        return False


class SplitClip(Command):
    """Split a clip at ``at`` (timeline samples for audio clips, ticks for MIDI clips).

    The left part keeps the id, the fade-in and the notes that start before ``at``
    (truncated at the split); the right part is a new clip with the fade-out and the
    notes that start at or after ``at``.
    """

    def __init__(self, clip_id: str, at: int):
        self.clip_id, self.at = clip_id, int(at)
        self.label = "Split clip"
        self.right_id = new_id()

    def do(self, project: Project) -> None:
        _, clip, container = project.find_clip(self.clip_id)
        if not clip.start < self.at < clip.end:
            raise CommandError("the split point must be inside the clip")
        self.before = copy.deepcopy(clip)
        cut = self.at - clip.start
        right = copy.deepcopy(clip)
        right.id = self.right_id
        right.start, right.length = self.at, clip.length - cut
        clip.length = cut
        if isinstance(clip, AudioClip):
            right.offset = clip.offset + cut
            right.fade_in = 0
            clip.fade_out = 0
            clip.fade_in = min(clip.fade_in, clip.length)
            right.fade_out = min(right.fade_out, right.length)
        else:
            clip.notes = [Note(n.pitch, n.velocity, n.start, min(n.length, cut - n.start))
                          for n in self.before.notes if n.start < cut]
            right.notes = [Note(n.pitch, n.velocity, n.start - cut, n.length)
                           for n in self.before.notes if n.start >= cut]
            clip.cc = [c for c in self.before.cc if c.tick < cut]
            right.cc = [type(c)(c.tick - cut, c.controller, c.value) for c in self.before.cc if c.tick >= cut]
            clip.pitch_bends = [p for p in self.before.pitch_bends if p.tick < cut]
            right.pitch_bends = [type(p)(p.tick - cut, p.value) for p in self.before.pitch_bends if p.tick >= cut]
        container.insert(container.index(clip) + 1, right)

    def undo(self, project: Project) -> None:
        _, clip, container = project.find_clip(self.clip_id)
        _, right, rc = project.find_clip(self.right_id)
        rc.remove(right)
        container[container.index(clip)] = copy.deepcopy(self.before)


class SetNotes(Command):
    """Replace a MIDI clip's notes (and optionally its CC and pitch bends): the piano roll's edit."""

    def __init__(self, clip_id: str, notes: list[Note], cc=None, pitch_bends=None, label: str = "Edit notes"):
        self.clip_id, self.notes, self.cc, self.pitch_bends, self.label = clip_id, list(notes), cc, pitch_bends, label

    def do(self, project: Project) -> None:
        _, clip, _ = project.find_clip(self.clip_id)
        if not isinstance(clip, MidiClip):
            raise CommandError("notes can only be set on a MIDI clip")
        for n in self.notes:
            if not (0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 and n.length > 0 and n.start >= 0):
                raise CommandError(f"invalid note {n}")
        self.old = (clip.notes, clip.cc, clip.pitch_bends)
        clip.notes = copy.deepcopy(self.notes)
        if self.cc is not None:
            clip.cc = copy.deepcopy(list(self.cc))
        if self.pitch_bends is not None:
            clip.pitch_bends = copy.deepcopy(list(self.pitch_bends))

    def undo(self, project: Project) -> None:
        _, clip, _ = project.find_clip(self.clip_id)
        clip.notes, clip.cc, clip.pitch_bends = self.old


# ---------------------------------------------------------------- media

class AddMedia(Command):
    """Add a media item to the project's media table (the file is already in the pool).

    Undo only removes the table entry; the pool file stays (it is immutable and
    content-addressed, and redo needs it)."""

    def __init__(self, item: MediaItem):
        self.item = item
        self.label = f"Add media '{item.original_name}'"

    def do(self, project: Project) -> None:
        self.existed = self.item.id in project.media
        if not self.existed:
            if project.sample_rate != self.item.sample_rate:
                raise CommandError(
                    f"media '{self.item.original_name}' is at {self.item.sample_rate} Hz; the project is at "
                    f"{project.sample_rate} Hz")
            project.media[self.item.id] = self.item

    def undo(self, project: Project) -> None:
        if not self.existed:
            del project.media[self.item.id]


# ---------------------------------------------------------------- takes

class AddTake(Command):
    """Add ``take`` over ``[start, end)`` samples of a track, into the take group with
    exactly that range (created if needed), and make it the active take if ``activate``."""

    def __init__(self, track_id: str, start: int, end: int, take: Take, activate: bool = True):
        self.track_id, self.start, self.end, self.take, self.activate = track_id, int(start), int(end), take, activate
        self.label = f"Add take '{take.name}'"
        self.group_id = new_id()

    def do(self, project: Project) -> None:
        track = project.track(self.track_id)
        if self.end <= self.start or self.start < 0:
            raise CommandError("a take needs a non-empty range")
        for c in self.take.clips:
            _check_clip_kind(track, c)
            _check_clip(project, c)
        group = next((g for g in track.take_groups if (g.start, g.end) == (self.start, self.end)), None)
        self.created = group is None
        if group is None:
            group = TakeGroup(self.start, self.end, id=self.group_id)
            track.take_groups.append(group)
        self.old_active = group.active_take_id
        group.takes.append(self.take)
        if self.activate:
            group.active_take_id = self.take.id

    def undo(self, project: Project) -> None:
        track, group, _ = project.find_take(self.take.id)
        group.takes.remove(self.take)
        group.active_take_id = self.old_active
        if self.created:
            track.take_groups.remove(group)


class SetActiveTake(Command):
    """Choose which take of a group plays; ``None`` plays the track's own clips."""

    def __init__(self, group_id: str, take_id: str | None):
        self.group_id, self.take_id = group_id, take_id
        self.label = "Switch take"

    def do(self, project: Project) -> None:
        _, group = project.find_take_group(self.group_id)
        if self.take_id is not None and all(t.id != self.take_id for t in group.takes):
            raise CommandError(f"take {self.take_id} is not in this take group")
        self.old = group.active_take_id
        group.active_take_id = self.take_id

    def undo(self, project: Project) -> None:
        self.project_group(project).active_take_id = self.old

    def project_group(self, project: Project) -> TakeGroup:
        return project.find_take_group(self.group_id)[1]


class RemoveTake(Command):
    """Delete a take; an emptied take group is removed with it."""

    def __init__(self, take_id: str):
        self.take_id = take_id
        self.label = "Delete take"

    def do(self, project: Project) -> None:
        track, group, take = project.find_take(self.take_id)
        self.track, self.group, self.take = track, group, take
        self.index, self.old_active = group.takes.index(take), group.active_take_id
        group.takes.remove(take)
        if group.active_take_id == take.id:
            group.active_take_id = None
        self.group_index = track.take_groups.index(group)
        if not group.takes:
            track.take_groups.remove(group)

    def undo(self, project: Project) -> None:
        if self.group not in self.track.take_groups:
            self.track.take_groups.insert(self.group_index, self.group)
        self.group.takes.insert(self.index, self.take)
        self.group.active_take_id = self.old_active


class SplitTakeGroup(Command):
    """Comping: split a take group at ``at`` samples into two groups, so that each part can
    play a different take. The right group gets copies of every take (new ids)."""

    def __init__(self, group_id: str, at: int):
        self.group_id, self.at = group_id, int(at)
        self.label = "Split takes"
        self.right_id = new_id()

    def do(self, project: Project) -> None:
        track, group = project.find_take_group(self.group_id)
        if not group.start < self.at < group.end:
            raise CommandError("the split point must be inside the take group")
        self.track, self.old_end = track, group.end
        if getattr(self, "right", None) is not None:  # redo: same ids as the first time
            group.end = self.at
            track.take_groups.insert(track.take_groups.index(group) + 1, self.right)
            return
        ids: dict[str, str] = {}
        takes = []
        for t in group.takes:
            nt = copy.deepcopy(t)
            nt.id = ids.setdefault(t.id, new_id())
            for c in nt.clips:
                c.id = new_id()
            takes.append(nt)
        active = ids.get(group.active_take_id) if group.active_take_id else None
        self.right = TakeGroup(self.at, group.end, takes, active, id=self.right_id)
        group.end = self.at
        track.take_groups.insert(track.take_groups.index(group) + 1, self.right)

    def undo(self, project: Project) -> None:
        _, group = project.find_take_group(self.group_id)
        group.end = self.old_end
        self.track.take_groups.remove(self.right)


# ---------------------------------------------------------------- tempo, regions, lanes, project

class SetTempoMap(Command):
    """Replace the project's tempo map (tempo and time-signature changes)."""

    def __init__(self, tempo_map: TempoMap):
        self.tempo_map = tempo_map
        self.label = "Set tempo map"

    def do(self, project: Project) -> None:
        self.old = project.tempo_map
        project.tempo_map = copy.deepcopy(self.tempo_map)

    def undo(self, project: Project) -> None:
        project.tempo_map = self.old


class AddRegion(Command):
    """Add a named region."""

    def __init__(self, region: Region):
        self.region = region
        self.label = f"Add region '{region.name}'"

    def do(self, project: Project) -> None:
        if self.region.end <= self.region.start or self.region.start < 0:
            raise CommandError("a region needs 0 <= start < end")
        project.regions.append(self.region)

    def undo(self, project: Project) -> None:
        project.regions.remove(self.region)


class RemoveRegion(Command):
    """Remove a region."""

    def __init__(self, region_id: str):
        self.region_id = region_id
        self.label = "Remove region"

    def do(self, project: Project) -> None:
        r = project.region(self.region_id)
        self.index, self.region = project.regions.index(r), r
        project.regions.remove(r)

    def undo(self, project: Project) -> None:
        project.regions.insert(self.index, self.region)


class SetLoop(Command):
    """Set the loop region (``None`` clears it)."""

    def __init__(self, region: Region | None):
        self.region = region
        self.label = "Set loop"

    def do(self, project: Project) -> None:
        if self.region is not None and not 0 <= self.region.start < self.region.end:
            raise CommandError("a loop needs 0 <= start < end")
        self.old = project.loop
        project.loop = copy.deepcopy(self.region)

    def undo(self, project: Project) -> None:
        project.loop = self.old

    def merge(self, other: Command) -> bool:
        if isinstance(other, SetLoop):
            self.region = other.region
            return True
        return False


class SetControlLane(Command):
    """Set (or with ``lane=None`` remove) a track's control lane of ``kind``
    (``melody``, ``dynamics`` or ``rhythm``)."""

    def __init__(self, track_id: str, kind: str, lane: ControlLane | None):
        if kind not in CONTROL_KINDS:
            raise CommandError(f"unknown control lane {kind!r}; use one of {CONTROL_KINDS}")
        self.track_id, self.kind, self.lane = track_id, kind, lane
        self.label = f"Set {kind} lane"

    def do(self, project: Project) -> None:
        track = project.track(self.track_id)
        self.old = track.control_lanes.get(self.kind)
        if self.lane is None:
            track.control_lanes.pop(self.kind, None)
        else:
            lane = copy.deepcopy(self.lane)
            lane.kind = self.kind
            lane.points.sort(key=lambda p: p[0])
            track.control_lanes[self.kind] = lane

    def undo(self, project: Project) -> None:
        track = project.track(self.track_id)
        if self.old is None:
            track.control_lanes.pop(self.kind, None)
        else:
            track.control_lanes[self.kind] = self.old


class SetProjectProperty(Command):
    """Set ``name``, ``master_gain_db`` or ``key`` of the project."""

    FIELDS = {"name", "master_gain_db", "key"}

    def __init__(self, field: str, value: Any):
        if field not in self.FIELDS:
            raise CommandError(f"the project has no editable property {field!r}")
        self.field, self.value = field, value
        self.label = f"Set project {field.replace('_', ' ')}"

    def do(self, project: Project) -> None:
        self.old = getattr(project, self.field)
        setattr(project, self.field, self.value)

    def undo(self, project: Project) -> None:
        setattr(project, self.field, self.old)

    def merge(self, other: Command) -> bool:
        if isinstance(other, SetProjectProperty) and other.field == self.field:
            self.value = other.value
            return True
        return False
