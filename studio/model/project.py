"""The project model: Project -> Track -> Clip, takes, regions and the media table.

Plain dataclasses with stable uuid ids (never list positions), in the shape of
Tracktion Engine's Edit -> Track -> Clip tree. The model holds no audio: audio
clips point into the media pool by media id. Every change to a live project
goes through a command in :mod:`studio.model.edits` on an :class:`~studio.model.commands.UndoStack`.

Units: audio positions and lengths are integer **samples** at
``Project.sample_rate``; MIDI clip positions, note positions and lengths are
integer **ticks** at PPQ 960 (see :mod:`studio.model.timebase`); gains are **dB**;
pan is -1 (left) .. +1 (right).

Every class has ``to_dict()`` (JSON-ready) and ``from_dict()`` (which raises
``KeyError``/``ValueError``/``TypeError`` on malformed data; :mod:`studio.io.project_io`
turns those into a :class:`~studio.errors.ProjectError` naming the file).
"""
from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Union

from studio.model.timebase import PPQ, TempoMap


def new_id() -> str:
    """A fresh stable id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
TRACK_COLOURS = [
    "#e5533d", "#f0a030", "#e8d23a", "#7cc644", "#3fb68b", "#35a7d6",
    "#4a6fe3", "#8e5ae0", "#d45bb5", "#a0a0a0", "#c9824a", "#5fc9c0",
]


def _plain(value: Any) -> Any:
    """Dataclass/list/dict -> JSON-ready structure."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class _Serial:
    """Mixin: ``to_dict`` over the dataclass fields."""

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    def clone(self):
        """Deep copy (same ids)."""
        return copy.deepcopy(self)


# ---------------------------------------------------------------- media
@dataclass
class MediaItem(_Serial):
    """One immutable audio file of the media pool.

    Attributes:
        id: sha256 hex of the stored file's bytes (content address).
        path: the stored file, relative to the bundle root (``media/<id>.wav``);
            never absolute, never outside the bundle.
        sample_rate: Hz; always the project rate.
        channels: 1 or 2.
        frames: length in samples.
        original_name: file name the musician imported (provenance).
        original_sha256: sha256 of the original file's bytes.
        original_sample_rate: sample rate of the original file, Hz.
        size: bytes of the stored file (0 = not recorded, projects before the media check).
        fingerprint: sha256 of the stored file's size and of eight 4 KiB blocks spread over
            it (:func:`studio.media.pool.fingerprint_file`): a cheap check, on opening, that
            the file is still the one imported ("" = not recorded). The full check is
            ``id`` (``seed-studio verify``).
    """

    id: str
    path: str
    sample_rate: int
    channels: int
    frames: int
    original_name: str = ""
    original_sha256: str = ""
    original_sample_rate: int = 0
    size: int = 0
    fingerprint: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "MediaItem":
        return cls(
            id=str(d["id"]), path=str(d["path"]), sample_rate=int(d["sample_rate"]),
            channels=int(d["channels"]), frames=int(d["frames"]),
            original_name=str(d.get("original_name", "")),
            original_sha256=str(d.get("original_sha256", "")),
            original_sample_rate=int(d.get("original_sample_rate", 0)),
            size=int(d.get("size", 0)), fingerprint=str(d.get("fingerprint", "")),
        )


# ---------------------------------------------------------------- clips
@dataclass
class AudioClip(_Serial):
    """A window onto a media item, placed on the timeline.

    Attributes:
        media_id: id of a :class:`MediaItem` in ``Project.media``.
        start: timeline position of the clip's first sample, samples.
        offset: first sample of the media that plays, samples (>= 0).
        length: samples that play (> 0).
        gain_db: clip gain, dB.
        fade_in: fade-in length, samples; a linear (equal-gain) ramp, so that a fade-out
            overlapping a fade-in of correlated audio sums to unity (see :mod:`studio.audio.render`).
        fade_out: fade-out length, samples.
    """

    media_id: str
    start: int
    offset: int
    length: int
    gain_db: float = 0.0
    fade_in: int = 0
    fade_out: int = 0
    name: str = ""
    id: str = field(default_factory=new_id)

    @property
    def end(self) -> int:
        """Timeline sample one past the clip's last sample."""
        return self.start + self.length

    def to_dict(self) -> dict:
        return {"type": "audio", **super().to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "AudioClip":
        clip = cls(
            media_id=str(d["media_id"]), start=int(d["start"]), offset=int(d["offset"]),
            length=int(d["length"]), gain_db=float(d.get("gain_db", 0.0)),
            fade_in=int(d.get("fade_in", 0)), fade_out=int(d.get("fade_out", 0)),
            name=str(d.get("name", "")), id=str(d["id"]),
        )
        if clip.length <= 0 or clip.offset < 0 or clip.fade_in < 0 or clip.fade_out < 0:
            raise ValueError(f"audio clip {clip.id} has a negative or zero length, offset or fade")
        return clip


@dataclass
class Note(_Serial):
    """A MIDI note, relative to its clip.

    Attributes:
        pitch: MIDI key 0..127 (60 = middle C).
        velocity: 1..127.
        start: ticks from the clip start (>= 0).
        length: ticks (> 0).
    """

    pitch: int
    velocity: int
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length

    @classmethod
    def from_dict(cls, d: dict) -> "Note":
        n = cls(int(d["pitch"]), int(d["velocity"]), int(d["start"]), int(d["length"]))
        if not (0 <= n.pitch <= 127 and 0 <= n.velocity <= 127 and n.length > 0):
            raise ValueError(f"invalid note {n}")
        return n


@dataclass
class ControlChange(_Serial):
    """A MIDI control change at ``tick`` (relative to its clip): controller 0..127, value 0..127."""

    tick: int
    controller: int
    value: int

    @classmethod
    def from_dict(cls, d: dict) -> "ControlChange":
        return cls(int(d["tick"]), int(d["controller"]), int(d["value"]))


@dataclass
class PitchBend(_Serial):
    """A pitch-bend event at ``tick`` (relative to its clip); value -8192..8191 (MIDI 14-bit, centred)."""

    tick: int
    value: int

    @classmethod
    def from_dict(cls, d: dict) -> "PitchBend":
        return cls(int(d["tick"]), int(d["value"]))


@dataclass
class MidiClip(_Serial):
    """A MIDI clip on a MIDI track, placed in musical time.

    Attributes:
        start: timeline position, ticks (PPQ 960).
        length: ticks.
        notes: notes relative to ``start``.
        cc: control changes relative to ``start``.
        pitch_bends: pitch bends relative to ``start``.
    """

    start: int
    length: int
    notes: list[Note] = field(default_factory=list)
    cc: list[ControlChange] = field(default_factory=list)
    pitch_bends: list[PitchBend] = field(default_factory=list)
    name: str = ""
    id: str = field(default_factory=new_id)

    @property
    def end(self) -> int:
        """Tick one past the clip end."""
        return self.start + self.length

    def to_dict(self) -> dict:
        return {"type": "midi", **super().to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "MidiClip":
        return cls(
            start=int(d["start"]), length=int(d["length"]),
            notes=[Note.from_dict(n) for n in d.get("notes", [])],
            cc=[ControlChange.from_dict(c) for c in d.get("cc", [])],
            pitch_bends=[PitchBend.from_dict(p) for p in d.get("pitch_bends", [])],
            name=str(d.get("name", "")), id=str(d["id"]),
        )


Clip = Union[AudioClip, MidiClip]


def clip_from_dict(d: dict) -> Clip:
    """Build an :class:`AudioClip` or :class:`MidiClip` from its dict (by its ``type``)."""
    kind = d.get("type")
    if kind == "audio":
        return AudioClip.from_dict(d)
    if kind == "midi":
        return MidiClip.from_dict(d)
    raise ValueError(f"unknown clip type {kind!r}")


# ---------------------------------------------------------------- effects, lanes, takes
@dataclass
class Effect(_Serial):
    """One plug-in of a track's effect chain: a pedalboard plug-in class by name, and its parameters.

    Only names in :data:`studio.audio.effects.ALLOWED_EFFECTS` are ever instantiated, so a
    project file can't run code.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    id: str = field(default_factory=new_id)

    @classmethod
    def from_dict(cls, d: dict) -> "Effect":
        params = d.get("params", {})
        if not isinstance(params, dict) or not all(
            isinstance(v, (int, float, bool, str)) for v in params.values()
        ):
            raise ValueError(f"effect {d.get('name')!r} has non-scalar parameters")
        return cls(str(d["name"]), dict(params), bool(d.get("enabled", True)), str(d["id"]))


CONTROL_KINDS = ("melody", "dynamics", "rhythm")


@dataclass
class ControlLane(_Serial):
    """A Music ControlNet-style time-varying control on a track.

    Attributes:
        kind: ``"melody"`` (value = pitch class 0..11, or -1 for none),
            ``"dynamics"`` (value = loudness, dB) or ``"rhythm"`` (value = 1 beat,
            2 downbeat, 0.5 onset marker).
        points: ``[sample, value]`` pairs sorted by sample (project rate).
        source: where it came from (``"drawn"``, ``"track:<id>"``, ``"clip:<id>"``).
    """

    kind: str
    points: list[list[float]] = field(default_factory=list)
    source: str = "drawn"

    @classmethod
    def from_dict(cls, d: dict) -> "ControlLane":
        kind = str(d["kind"])
        if kind not in CONTROL_KINDS:
            raise ValueError(f"unknown control lane kind {kind!r}")
        pts = [[int(p[0]), float(p[1])] for p in d.get("points", [])]
        return cls(kind, pts, str(d.get("source", "drawn")))


@dataclass
class Take(_Serial):
    """One alternative for a take group's time range (e.g. one AI result).

    Attributes:
        clips: clips on the track timeline (absolute positions), inside the group range.
        provenance: engine, model id and revision, licence, seed, parameters, input hashes...
    """

    name: str
    clips: list[Clip] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)

    @classmethod
    def from_dict(cls, d: dict) -> "Take":
        return cls(
            str(d.get("name", "")), [clip_from_dict(c) for c in d.get("clips", [])],
            dict(d.get("provenance", {})), str(d["id"]),
        )


@dataclass
class TakeGroup(_Serial):
    """Take lanes over ``[start, end)`` samples of a track.

    When ``active_take_id`` names a take, that take's clips play in the range and the
    track's own clips are silent there; ``None`` plays the track's own clips (the original).
    """

    start: int
    end: int
    takes: list[Take] = field(default_factory=list)
    active_take_id: str | None = None
    id: str = field(default_factory=new_id)

    def active_take(self) -> Take | None:
        """The playing take, or None when the original plays."""
        for t in self.takes:
            if t.id == self.active_take_id:
                return t
        return None

    @classmethod
    def from_dict(cls, d: dict) -> "TakeGroup":
        g = cls(
            int(d["start"]), int(d["end"]), [Take.from_dict(t) for t in d.get("takes", [])],
            d.get("active_take_id"), str(d["id"]),
        )
        if g.end <= g.start:
            raise ValueError(f"take group {g.id} has an empty range")
        return g


# ---------------------------------------------------------------- tracks, regions, project
@dataclass
class Track(_Serial):
    """An audio or MIDI track.

    Attributes:
        kind: ``"audio"`` or ``"midi"``.
        colour: ``"#rrggbb"``.
        gain_db: fader gain, dB.
        pan: -1 (left) .. +1 (right); see :mod:`studio.audio.render` for the pan law.
        effects: pedalboard plug-in chain, in order.
        clips: the track's own clips (audio clips on an audio track, MIDI clips on a MIDI track).
        take_groups: take lanes; see :class:`TakeGroup`.
        control_lanes: control curves by kind (``melody``, ``dynamics``, ``rhythm``).
        parent_id: the track this one is grouped under (stems under their source).
        program: General MIDI program 0..127 (MIDI tracks).
        is_drum: play on MIDI channel 10 (GM percussion).
        provenance: for a track made by an engine (stems, transcriptions): engine, model,
            licence, seed, parameters, input hashes; empty for tracks a musician made.
    """

    name: str
    kind: str = "audio"
    colour: str = "#35a7d6"
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    solo: bool = False
    effects: list[Effect] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    take_groups: list[TakeGroup] = field(default_factory=list)
    control_lanes: dict[str, ControlLane] = field(default_factory=dict)
    parent_id: str | None = None
    program: int = 0
    is_drum: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)

    def all_clips(self) -> Iterator[Clip]:
        """The track's own clips and every take's clips."""
        yield from self.clips
        for g in self.take_groups:
            for t in g.takes:
                yield from t.clips

    @classmethod
    def from_dict(cls, d: dict) -> "Track":
        kind = str(d.get("kind", "audio"))
        if kind not in ("audio", "midi"):
            raise ValueError(f"unknown track kind {kind!r}")
        colour = str(d.get("colour", "#35a7d6"))
        if not _HEX_COLOUR.match(colour):
            raise ValueError(f"bad colour {colour!r}")
        pan = float(d.get("pan", 0.0))
        if not -1.0 <= pan <= 1.0:
            raise ValueError(f"pan {pan} outside -1..1")
        return cls(
            name=str(d["name"]), kind=kind, colour=colour, gain_db=float(d.get("gain_db", 0.0)),
            pan=pan, mute=bool(d.get("mute", False)), solo=bool(d.get("solo", False)),
            effects=[Effect.from_dict(e) for e in d.get("effects", [])],
            clips=[clip_from_dict(c) for c in d.get("clips", [])],
            take_groups=[TakeGroup.from_dict(g) for g in d.get("take_groups", [])],
            control_lanes={str(k): ControlLane.from_dict(v) for k, v in d.get("control_lanes", {}).items()},
            parent_id=d.get("parent_id"), program=int(d.get("program", 0)),
            is_drum=bool(d.get("is_drum", False)), provenance=dict(d.get("provenance", {})),
            id=str(d["id"]),
        )


@dataclass
class Region(_Serial):
    """A named time range ``[start, end)`` in samples (selection, loop, marker range)."""

    name: str
    start: int
    end: int
    id: str = field(default_factory=new_id)

    @property
    def length(self) -> int:
        return self.end - self.start

    @classmethod
    def from_dict(cls, d: dict) -> "Region":
        r = cls(str(d.get("name", "")), int(d["start"]), int(d["end"]), str(d["id"]))
        if r.end <= r.start or r.start < 0:
            raise ValueError(f"region {r.id} has an empty or negative range")
        return r


@dataclass
class Project(_Serial):
    """A song: sample rate, tempo map, tracks, regions and the media table.

    Attributes:
        sample_rate: Hz, 8000..192000; every media item is stored at this rate.
        ppq: ticks per quarter note, always 960.
        tempo_map: tempo and time-signature changes.
        tracks: in display order, top to bottom.
        regions: named ranges.
        loop: the loop region, or None.
        media: media items by id.
        master_gain_db: master fader, dB.
        key: the song's key, e.g. ``"E minor"`` (set by the musician or from an analysis);
            None = not known. Generation engines are conditioned on it.
    """

    name: str = "Untitled"
    sample_rate: int = 44100
    ppq: int = PPQ
    tempo_map: TempoMap = field(default_factory=TempoMap)
    tracks: list[Track] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    loop: Region | None = None
    media: dict[str, MediaItem] = field(default_factory=dict)
    master_gain_db: float = 0.0
    key: str | None = None
    id: str = field(default_factory=new_id)

    # -- look-ups -----------------------------------------------------------
    def track(self, track_id: str) -> Track:
        """The track with ``track_id``. Raises KeyError."""
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise KeyError(f"no track {track_id}")

    def track_index(self, track_id: str) -> int:
        """Position of the track in ``tracks``. Raises KeyError."""
        for i, t in enumerate(self.tracks):
            if t.id == track_id:
                return i
        raise KeyError(f"no track {track_id}")

    def find_clip(self, clip_id: str) -> tuple[Track, Clip, list[Clip]]:
        """``(track, clip, containing list)`` for a clip on a track or in a take. Raises KeyError."""
        for t in self.tracks:
            for c in t.clips:
                if c.id == clip_id:
                    return t, c, t.clips
            for g in t.take_groups:
                for tk in g.takes:
                    for c in tk.clips:
                        if c.id == clip_id:
                            return t, c, tk.clips
        raise KeyError(f"no clip {clip_id}")

    def find_take_group(self, group_id: str) -> tuple[Track, TakeGroup]:
        """``(track, group)``. Raises KeyError."""
        for t in self.tracks:
            for g in t.take_groups:
                if g.id == group_id:
                    return t, g
        raise KeyError(f"no take group {group_id}")

    def find_take(self, take_id: str) -> tuple[Track, TakeGroup, Take]:
        """``(track, group, take)``. Raises KeyError."""
        for t in self.tracks:
            for g in t.take_groups:
                for tk in g.takes:
                    if tk.id == take_id:
                        return t, g, tk
        raise KeyError(f"no take {take_id}")

    def region(self, region_id: str) -> Region:
        """Raises KeyError."""
        for r in self.regions:
            if r.id == region_id:
                return r
        raise KeyError(f"no region {region_id}")

    # -- time -----------------------------------------------------------------
    def clip_span(self, clip: Clip) -> tuple[int, int]:
        """``(start, end)`` of a clip in timeline samples (MIDI clips through the tempo map)."""
        if isinstance(clip, AudioClip):
            return clip.start, clip.end
        sr = self.sample_rate
        return self.tempo_map.tick_to_sample(clip.start, sr), self.tempo_map.tick_to_sample(clip.end, sr)

    def audio_track_span(self, track_id: str) -> tuple[int, int]:
        """``(start, end)`` timeline samples covered by an audio track's own clips and takes.

        Raises:
            KeyError: no such track.
            ValueError: a MIDI track, or a track with no clips (message names the track).
        """
        track = self.track(track_id)
        if track.kind != "audio":
            raise ValueError(f"track '{track.name}' is a MIDI track; this needs an audio track")
        return self.track_span(track_id)

    def track_span(self, track_id: str) -> tuple[int, int]:
        """``(start, end)`` timeline samples covered by a track's own clips and takes (audio
        or MIDI): the one rule for "the whole track" of every task and export.

        Raises:
            KeyError: no such track.
            ValueError: the track has no clips (message names the track).
        """
        track = self.track(track_id)
        spans = [self.clip_span(c) for c in track.all_clips()]
        if not spans:
            raise ValueError(f"track '{track.name}' has no {'audio' if track.kind == 'audio' else 'clips'}")
        return min(s for s, _ in spans), max(e for _, e in spans)

    def length_samples(self) -> int:
        """End of the last clip (own or take) of any track, samples; 0 for an empty project."""
        end = 0
        for t in self.tracks:
            for c in t.all_clips():
                end = max(end, self.clip_span(c)[1])
        return end

    def sounding_clips(self, track: Track) -> list[tuple[Clip, int, int]]:
        """What plays on ``track``: ``(clip, window_start, window_end)`` in timeline samples.

        A clip only sounds inside its window: the track's own clips are silenced inside
        the range of every take group that has an active take, and an active take's
        clips sound only inside their group's range.
        """
        taken = sorted((g.start, g.end) for g in track.take_groups if g.active_take() is not None)
        out: list[tuple[Clip, int, int]] = []
        for c in track.clips:
            s, e = self.clip_span(c)
            pieces = [(s, e)]
            for gs, ge in taken:
                nxt = []
                for ps, pe in pieces:
                    if ge <= ps or gs >= pe:
                        nxt.append((ps, pe))
                        continue
                    if ps < gs:
                        nxt.append((ps, gs))
                    if ge < pe:
                        nxt.append((ge, pe))
                pieces = nxt
            out.extend((c, ps, pe) for ps, pe in pieces if pe > ps)
        for g in track.take_groups:
            take = g.active_take()
            if take is None:
                continue
            for c in take.clips:
                s, e = self.clip_span(c)
                ws, we = max(s, g.start), min(e, g.end)
                if we > ws:
                    out.append((c, ws, we))
        return out

    # -- serialization ----------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict) -> "Project":
        sr = int(d["sample_rate"])
        if not 8000 <= sr <= 192000:
            raise ValueError(f"sample rate {sr} Hz outside 8000..192000")
        if int(d.get("ppq", PPQ)) != PPQ:
            raise ValueError(f"PPQ {d.get('ppq')} is not {PPQ}")
        return cls(
            name=str(d.get("name", "Untitled")), sample_rate=sr, ppq=PPQ,
            tempo_map=TempoMap.from_dict(d["tempo_map"]),
            tracks=[Track.from_dict(t) for t in d.get("tracks", [])],
            regions=[Region.from_dict(r) for r in d.get("regions", [])],
            loop=Region.from_dict(d["loop"]) if d.get("loop") else None,
            media={str(k): MediaItem.from_dict(v) for k, v in d.get("media", {}).items()},
            master_gain_db=float(d.get("master_gain_db", 0.0)),
            key=str(d["key"]) if d.get("key") else None, id=str(d["id"]),
        )
