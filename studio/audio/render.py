"""Project -> audio: the one render path used by mixdown, bounce, stem export, job inputs and playback.

Signal flow of one track (Tracktion Engine's Edit -> track -> clip graph, flattened)::

    sounding clips  ->  sum (dual-mono for mono media)  ->  effect chain  ->  track gain x pan  ->  stem
    (clip gain, linear fades)                              (pedalboard)
    mix = sum of the audible stems x master gain

* **Clips.** ``Project.sounding_clips(track)`` gives each clip with the window in which it
  plays (an active take replaces the track's own clips inside its take group's range).
  An audio clip's sample ``i`` (0-based from its start) plays media sample ``offset + i``
  at timeline sample ``start + i``, times the clip gain and the fades. Fades are linear
  (equal-gain): fade-in gain ``i / fade_in``, fade-out gain ``(length - i) / fade_out``, so
  a fade-out over a fade-in of the same length sums to exactly 1. A clip placed at sample
  N starts at sample N: nothing in the path adds latency (plug-ins with latency are not
  allowed, see :mod:`studio.audio.effects`).
* **MIDI clips** are rendered through the General MIDI synth (:mod:`studio.audio.synth`,
  FluidSynth), on channel 10 when ``track.is_drum``, with ``track.program``, in
  30-second segments cached per renderer (a note that starts in an earlier segment is
  re-rendered from its onset, so its sound continues across the segment edge).
* **Pan law**: constant-power sine/cosine balance normalised to 0 dB at centre:
  ``L = min(1, sqrt2 cos((p + 1) pi / 4))``, ``R = min(1, sqrt2 sin((p + 1) pi / 4))``;
  centre is unity on both sides, hard left is (1, 0), and the near side never goes
  above unity. Mono media is rendered dual-mono before the effects and the pan.
* **Mute and solo**: a muted track never plays. When any track is soloed, only soloed
  tracks play, plus the children (``parent_id``) of a soloed track, so soloing a source
  soloes the stems grouped under it (a muted child still stays silent). Muting a parent
  does not mute its children (separated stems usually play with their source muted).
* **Effects** keep their state across blocks: each :class:`Renderer` holds one
  ``pedalboard.Pedalboard`` per track, called with ``reset=False``. A render of a range
  starts the effects with empty state at the range start, and tails past ``end`` are cut
  unless a *render tail* is asked for (``tail`` samples): then the sources (audio clips
  and MIDI notes) stop at ``end`` while the effects keep ringing for ``tail`` more
  samples, exactly as if every clip had been cut at ``end``.
* **Stems sum to the mix**: the mix is computed as the sum of the stems (float32, in track
  order) times the master gain.

Audio: float32 ``(2, frames)`` at ``project.sample_rate``; times in samples.
"""
from __future__ import annotations

import bisect
import math
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np

from studio.audio.effects import build_chain, chain_signature
from studio.errors import RenderError
from studio.model.project import AudioClip, MediaItem, MidiClip, Project, Track

BLOCK_FRAMES = 1 << 17
"""Frames per block of an offline render (about 3 s at 44.1 kHz)."""

MIDI_SEGMENT_S = 30.0
"""MIDI tracks are synthesised in segments of this many seconds (notes that start earlier
are rendered from their onset, so segments join seamlessly)."""
MIDI_SEGMENTS_KEPT = 3
"""Rendered MIDI segments kept per track (memory stays bounded for long songs)."""
PLAYBACK_MIDI_SEGMENT_S = 4.0
"""MIDI segment length of real-time playback, seconds (short: the first block is ready soon)."""

DEFAULT_TAIL_S = 2.0
"""The render tail, seconds, of a render or export that runs to the end of the song when
no tail is given: reverbs and delays ring out instead of being cut. A render that is
given its own end (``--end``, a loop, a selection) gets no tail unless one is asked
for, so that a range comes out exactly as long as asked. The CLI's ``render`` and
``export`` and the app's Export dialog follow the same rule (:func:`default_tail_s`);
the app's Preferences start from this value."""


def default_tail_s(end_given: bool, song_tail_s: float = DEFAULT_TAIL_S) -> float:
    """The tail to use when none is given, seconds: ``song_tail_s`` when the render runs to
    the end of the song, 0 when it was given its own end."""
    return 0.0 if end_given else float(song_tail_s)

Progress = Callable[[float], Any]


class MediaReader(Protocol):
    """What the renderer needs from the media pool (:class:`studio.media.pool.MediaPool`)."""

    def read(self, item: MediaItem, start: int = 0, frames: int | None = None) -> np.ndarray:
        """``(channels, frames)`` float32 of ``item`` from ``start``, zero-padded past its end."""


class RenderCancelled(RenderError):
    """The render was cancelled through its cancel token."""


def db_to_gain(db: float) -> float:
    """Linear amplitude of a gain in dB (``10 ** (db / 20)``); -inf dB -> 0."""
    return 0.0 if db == -math.inf else float(10.0 ** (db / 20.0))


def pan_gains(pan: float) -> tuple[float, float]:
    """``(left, right)`` gains of the pan law (see the module docstring); ``pan`` in -1..1.

    Examples: 0 -> (1, 1); -1 -> (1, 0); +1 -> (0, 1); +0.5 -> (0.5412, 1).
    """
    p = min(1.0, max(-1.0, float(pan)))
    a = (p + 1.0) * math.pi / 4.0
    left = min(1.0, math.sqrt(2.0) * math.cos(a))
    right = min(1.0, math.sqrt(2.0) * math.sin(a))
    return max(0.0, left), max(0.0, right)


def is_audible(project: Project, track: Track) -> bool:
    """Whether ``track`` plays under the mute/solo rules of the module docstring."""
    if track.mute:
        return False
    if not any(t.solo for t in project.tracks):
        return True
    by_id = {t.id: t for t in project.tracks}
    seen: set[str] = set()
    t: Track | None = track
    while t is not None and t.id not in seen:
        if t.solo:
            return True
        seen.add(t.id)
        t = by_id.get(t.parent_id) if t.parent_id else None
    return False


def _check_cancel(cancel: Any) -> None:
    if cancel is None:
        return
    flag = getattr(cancel, "cancelled", None)
    if flag is None and hasattr(cancel, "is_set"):
        flag = cancel.is_set()
    if flag:
        raise RenderCancelled("render cancelled")


def _fade_envelope(clip: AudioClip, i0: int, n: int) -> np.ndarray | None:
    """Fade gains for clip-relative samples ``i0 .. i0+n-1``, or None when no fade touches them."""
    env = None
    if clip.fade_in > 0 and i0 < clip.fade_in:
        env = np.ones(n, dtype=np.float64)
        k = min(n, clip.fade_in - i0)
        env[:k] = np.arange(i0, i0 + k, dtype=np.float64) / clip.fade_in
    fo = clip.length - clip.fade_out
    if clip.fade_out > 0 and i0 + n > fo:
        if env is None:
            env = np.ones(n, dtype=np.float64)
        j0 = max(i0, fo)
        env[j0 - i0:] *= (clip.length - np.arange(j0, i0 + n, dtype=np.float64)) / clip.fade_out
    return env


@dataclass
class RenderedBlock:
    """One block of a render: the mix and the stems of the rendered tracks.

    Attributes:
        start: timeline sample of the first frame.
        mix: ``(2, frames)`` float32 (sum of ``stems`` x master gain).
        stems: track id -> ``(2, frames)`` float32, post-fader; silent tracks hold zeros.
    """

    start: int
    mix: np.ndarray
    stems: dict[str, np.ndarray]


class Renderer:
    """Stateful renderer of one project: effect chains and MIDI renders kept between blocks.

    Playback keeps one Renderer and calls :meth:`render_block` for consecutive blocks;
    on a seek it calls :meth:`reset`; after an edit it should call :meth:`invalidate`
    (effect-chain edits, moved or resized clips and replaced note lists are also noticed
    automatically; a note changed in place is not).

    Args:
        project: the project (read, never changed).
        pool: the media pool (``pool.read(item, start, frames)``).
        soundfont: GM SoundFont for MIDI tracks; :func:`studio.audio.synth.find_soundfont` when None.
        threads: worker threads for tracks (default: CPU count, at most 8); pedalboard
            and numpy release the GIL, so tracks render in parallel.
        midi_segment_s: length of the MIDI synth segments, seconds (default
            :data:`MIDI_SEGMENT_S`). Playback uses :data:`PLAYBACK_MIDI_SEGMENT_S`, so that
            its first block waits for a few seconds of synth, not thirty; the audio is the
            same either way but for FluidSynth's own reverb and voice state at a segment's
            start (below -60 dBFS).
    """

    def __init__(self, project: Project, pool: MediaReader, *, soundfont: str | None = None,
                 threads: int | None = None, midi_segment_s: float | None = None):
        self.project = project
        self.pool = pool
        self.soundfont = soundfont
        self.threads = threads if threads is not None else min(8, os.cpu_count() or 1)
        self.midi_segment_s = float(midi_segment_s or MIDI_SEGMENT_S)
        self._chains: dict[str, tuple[tuple, Any]] = {}
        self._midi: dict[str, dict[str, Any]] = {}
        self._pool_exec: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------
    def reset(self) -> None:
        """Clear every effect's state (reverb tails, compressor envelopes), e.g. after a seek."""
        for _, board in self._chains.values():
            board.reset()

    def invalidate(self, track_id: str | None = None) -> None:
        """Forget cached effect chains and MIDI renders (of one track, or all)."""
        for cache in (self._chains, self._midi):
            if track_id is None:
                cache.clear()
            else:
                cache.pop(track_id, None)

    def close(self) -> None:
        """Stop the worker threads."""
        if self._pool_exec is not None:
            self._pool_exec.shutdown(wait=True)
            self._pool_exec = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- pieces -----------------------------------------------------------------------
    def _chain(self, track: Track) -> Any | None:
        if not any(e.enabled for e in track.effects):
            return None
        sig = chain_signature(track.effects)
        cached = self._chains.get(track.id)
        if cached is None or cached[0] != sig:
            try:
                board = build_chain(track.effects, self.project.sample_rate)
            except RenderError as exc:
                raise RenderError(f"track {track.name!r}: {exc}") from None
            cached = self._chains[track.id] = (sig, board)
        return cached[1]

    def _midi_entry(self, track: Track, windows: list[tuple[Any, int, int]]) -> dict[str, Any]:
        """Events of a MIDI track (cached until its clips, program or tempo map change)."""
        tm = self.project.tempo_map
        sig = (tuple((id(c), id(c.notes), id(c.cc), id(c.pitch_bends), c.start, c.length, len(c.notes),
                      len(c.cc), len(c.pitch_bends), ws, we)
                     for c, ws, we in windows),
               track.program, track.is_drum, repr(tm.to_dict()), self.project.sample_rate, self.soundfont)
        entry = self._midi.get(track.id)
        if entry is None or entry["sig"] != sig:
            from studio.audio.synth import midi_events

            notes, controls = midi_events(windows, tm, self.project.sample_rate)
            notes.sort(key=lambda n: n.on)
            entry = self._midi[track.id] = {"sig": sig, "windows": windows, "notes": notes,
                                            "ons": [n.on for n in notes], "controls": controls,
                                            "segments": OrderedDict(), "whole": None}
        return entry

    def _midi_segment(self, track: Track, entry: dict[str, Any], k: int) -> np.ndarray | None:
        """Timeline samples ``[k * L, (k + 1) * L)`` of a MIDI track (L = ``midi_segment_s``)."""
        segs: OrderedDict = entry["segments"]
        if k in segs:
            segs.move_to_end(k)
            return segs[k]
        from studio.audio.synth import MAX_TAIL_S, get_synth

        sr = self.project.sample_rate
        seg_len = int(self.midi_segment_s * sr)
        s0, s1 = k * seg_len, (k + 1) * seg_len
        tail = int(MAX_TAIL_S * sr)
        upto = bisect.bisect_left(entry["ons"], s1)
        notes = [n for n in entry["notes"][:upto] if n.off + tail > s0]
        audio = None
        if notes:
            controls = [c for c in entry["controls"] if c.sample < s1]
            audio = get_synth(sr, self.soundfont).render(
                notes, controls, program=track.program, is_drum=track.is_drum, start=s0, frames=seg_len)
        segs[k] = audio
        while len(segs) > MIDI_SEGMENTS_KEPT:
            segs.popitem(last=False)
        return audio

    def _add_midi(self, buf: np.ndarray, track: Track, windows: list[tuple[Any, int, int]], start: int) -> None:
        """Add the GM rendering of a track's sounding MIDI clips to ``buf`` (timeline from ``start``)."""
        entry = self._midi_entry(track, windows)
        if not entry["notes"]:
            return
        sr = self.project.sample_rate
        end = start + buf.shape[1]
        if sr > 96000:  # FluidSynth's limit: render whole at half rate and resample (rare)
            if entry["whole"] is None:
                from studio.audio.synth import render_midi_windows

                entry["whole"] = render_midi_windows(windows, self.project.tempo_map, sr, program=track.program,
                                                     is_drum=track.is_drum, soundfont=self.soundfont)
            whole = entry["whole"]
            a, b = max(start, 0), min(end, whole.shape[1])
            if b > a:
                buf[:, a - start:b - start] += whole[:, a:b]
            return
        seg_len = int(self.midi_segment_s * sr)
        first = max(start, 0) // seg_len
        for k in range(first, -(-end // seg_len)):
            audio = self._midi_segment(track, entry, k)
            if audio is None:
                continue
            a, b = max(start, k * seg_len), min(end, (k + 1) * seg_len)
            if b > a:
                buf[:, a - start:b - start] += audio[:, a - k * seg_len:b - k * seg_len]

    def warm_midi(self, sample: int, limit: int | None = None) -> int:
        """Synthesise now the MIDI segments that timeline ``sample`` falls in, for the
        audible MIDI tracks (effect states are not touched), so that the block that needs
        them later doesn't wait: playback calls it while it is ahead of the device, one
        segment at a time (``limit=1``) so that no single call takes long.
        Returns the number of segments rendered (0 when they were all ready)."""
        done = 0
        for track in self.project.tracks:
            if track.kind != "midi" or not is_audible(self.project, track):
                continue
            windows = [(c, ws, we) for c, ws, we in self.project.sounding_clips(track) if isinstance(c, MidiClip)]
            if not windows:
                continue
            entry = self._midi_entry(track, windows)
            if not entry["notes"] or self.project.sample_rate > 96000:
                continue
            k = max(0, int(sample)) // int(self.midi_segment_s * self.project.sample_rate)
            if k not in entry["segments"]:
                self._midi_segment(track, entry, k)
                done += 1
                if limit is not None and done >= limit:
                    break
        return done

    def _media(self, track: Track, clip: AudioClip) -> MediaItem:
        item = self.project.media.get(clip.media_id)
        if item is None:
            raise RenderError(
                f"clip {clip.name or clip.id!r} on track {track.name!r} refers to media "
                f"{clip.media_id} that is not in the project")
        return item

    def track_raw(self, track: Track, start: int, frames: int, source_end: int | None = None) -> np.ndarray:
        """The track's sounding clips only (clip gain and fades; no effects, fader, pan, mute).

        Args:
            source_end: timeline sample where every clip stops sounding (a render tail:
                the clips are cut there, as by a split); None = no limit.

        Returns:
            ``(2, frames)`` float32 for timeline samples ``[start, start + frames)``.

        Raises:
            RenderError: a clip refers to missing media; MIDI rendering failed (no SoundFont).
        """
        buf = np.zeros((2, frames), dtype=np.float32)
        end = start + frames
        midi_windows: list[tuple[Any, int, int]] = []
        for clip, ws, we in self.project.sounding_clips(track):
            if source_end is not None:
                we = min(we, int(source_end))
                if we <= ws:
                    continue
            if isinstance(clip, MidiClip):
                midi_windows.append((clip, ws, we))
                continue
            a = max(ws, start, clip.start)
            b = min(we, end, clip.end)
            if b <= a:
                continue
            n = b - a
            i0 = a - clip.start
            item = self._media(track, clip)
            audio = self.pool.read(item, clip.offset + i0, n)
            if audio.ndim != 2 or audio.shape[1] != n:
                raise RenderError(f"media {item.id} returned shape {audio.shape}, expected (channels, {n})")
            gain = db_to_gain(clip.gain_db)
            env = _fade_envelope(clip, i0, n)
            if env is not None:
                scale = (env * gain).astype(np.float32)
            else:
                scale = None if gain == 1.0 else np.float32(gain)
            src = audio[:2]
            if scale is not None:
                src = src * scale
            buf[:, a - start:b - start] += src  # a mono (1, n) source broadcasts: dual-mono
        if midi_windows:
            self._add_midi(buf, track, midi_windows, start)
        return buf

    def track_stem(self, track: Track, start: int, frames: int, source_end: int | None = None) -> np.ndarray:
        """One track post-fader: clips -> effect chain -> gain -> pan. ``(2, frames)`` float32.

        Does not apply mute/solo (see :meth:`render_block`); ``source_end`` as in
        :meth:`track_raw`.
        """
        x = self.track_raw(track, start, frames, source_end)
        board = self._chain(track)
        if board is not None:
            x = board(x, self.project.sample_rate, reset=False)
            if x.dtype != np.float32:
                x = x.astype(np.float32)
        g = db_to_gain(track.gain_db)
        left, right = pan_gains(track.pan)
        if g != 1.0 or left != 1.0 or right != 1.0:
            x = x * np.array([[g * left], [g * right]], dtype=np.float32)
        return x

    def render_block(self, start: int, frames: int, track_ids: Iterable[str] | None = None,
                     source_end: int | None = None) -> RenderedBlock:
        """Render ``[start, start + frames)`` of the mix and of each track's stem.

        Args:
            start: timeline sample (may be negative: silence before 0).
            frames: block length.
            track_ids: tracks to render and mix (default: every track). Mute/solo is
                judged against the whole project; silent tracks get zero stems.
            source_end: clips stop sounding at this timeline sample while effects go on
                (a render tail); None = no limit.

        Raises:
            RenderError: unknown track id, missing media, bad effect, no SoundFont.
        """
        project = self.project
        if track_ids is None:
            tracks = list(project.tracks)
        else:
            try:
                tracks = [project.track(t) for t in track_ids]
            except KeyError as exc:
                raise RenderError(f"unknown track id: {exc.args[0]}") from None
        audible = [t for t in tracks if is_audible(project, t)]
        if self.threads > 1 and len(audible) > 1:
            if self._pool_exec is None:
                self._pool_exec = ThreadPoolExecutor(self.threads, thread_name_prefix="render")
            outs = list(self._pool_exec.map(lambda t: self.track_stem(t, start, frames, source_end), audible))
        else:
            outs = [self.track_stem(t, start, frames, source_end) for t in audible]
        rendered = dict(zip((t.id for t in audible), outs))
        stems: dict[str, np.ndarray] = {}
        mix = np.zeros((2, frames), dtype=np.float32)
        for t in tracks:
            s = rendered.get(t.id)
            if s is None:
                s = np.zeros((2, frames), dtype=np.float32)
            else:
                mix += s
            stems[t.id] = s
        master = db_to_gain(project.master_gain_db)
        if master != 1.0:
            mix *= np.float32(master)
        return RenderedBlock(start, mix, stems)


def render_block(project: Project, pool: MediaReader, start: int, frames: int,
                 track_ids: Iterable[str] | None = None, *, renderer: Renderer | None = None) -> RenderedBlock:
    """One block of the mix and stems: ``[start, start + frames)`` in timeline samples.

    For continuous playback pass the same ``renderer`` (a :class:`Renderer` of this
    project and pool) for consecutive blocks, so effects keep their state (reverb tails
    cross block edges) and MIDI renders are reused; without one, a fresh renderer is
    used and effects start silent.

    Raises:
        RenderError: see :meth:`Renderer.render_block`.
    """
    if renderer is not None:
        return renderer.render_block(start, frames, track_ids)
    with Renderer(project, pool) as r:
        return r.render_block(start, frames, track_ids)


def _range(project: Project, start: int, end: int | None) -> tuple[int, int]:
    if end is None:
        end = project.length_samples()
    start, end = int(start), int(end)
    if end < start:
        raise RenderError(f"render range end {end} is before its start {start}")
    return start, end


def iter_render(project: Project, pool: MediaReader, start: int = 0, end: int | None = None,
                track_ids: Iterable[str] | None = None, progress: Progress | None = None,
                cancel: Any = None, *, block_frames: int = BLOCK_FRAMES, soundfont: str | None = None,
                renderer: Renderer | None = None, tail: int = 0) -> Iterator[RenderedBlock]:
    """Render ``[start, end + tail)`` block by block (for streaming to files).

    Args:
        project, pool: what to render and where its media lives.
        start, end: timeline samples; ``end=None`` = end of the last clip.
        track_ids: tracks to render (default all).
        progress: ``progress(fraction)`` with fraction 0..1, called after each block
            (an :class:`engines.base.ProgressReporter` or the CLI's progress bar fit).
        cancel: anything with a ``cancelled`` attribute or an ``is_set()`` method
            (:class:`engines.base.CancelToken`, ``threading.Event``); checked per block.
        block_frames: frames per block.
        soundfont: GM SoundFont for MIDI tracks.
        renderer: an existing :class:`Renderer` to use (its state continues).
        tail: render tail, samples (>= 0): the clips stop at ``end`` and the effects
            (reverb, delay) and synth releases ring on for ``tail`` more samples.

    Yields:
        :class:`RenderedBlock` in order; the last one may be shorter.

    Raises:
        RenderCancelled: cancel was requested. RenderError: see :meth:`Renderer.render_block`.
    """
    start, end = _range(project, start, end)
    tail = check_tail(tail)
    source_end = end if tail else None
    stop = end + tail
    ids = list(track_ids) if track_ids is not None else None
    own = renderer is None
    r = renderer or Renderer(project, pool, soundfont=soundfont)
    try:
        total = stop - start
        pos = start
        while pos < stop:
            _check_cancel(cancel)
            n = min(block_frames, stop - pos)
            yield r.render_block(pos, n, ids, source_end)
            pos += n
            if progress is not None:
                progress((pos - start) / total)
    finally:
        if own:
            r.close()


def check_tail(tail: int) -> int:
    """``tail`` as int samples. Raises RenderError when it is negative."""
    tail = int(tail)
    if tail < 0:
        raise RenderError(f"render tail must be >= 0 samples, got {tail}")
    return tail


def render_stems(project: Project, pool: MediaReader, start: int = 0, end: int | None = None,
                 track_ids: Iterable[str] | None = None, progress: Progress | None = None,
                 cancel: Any = None, *, soundfont: str | None = None, tail: int = 0) -> dict[str, np.ndarray]:
    """Each track's post-fader stem over ``[start, end + tail)``, pre-master (``tail``:
    see :func:`iter_render`).

    Every stem has its track's gain, pan, mute/solo and effects; silent tracks are zeros.
    ``sum(stems) * master gain`` equals :func:`render_mix` over the same tracks.

    Returns:
        track id -> ``(2, end + tail - start)`` float32, in track order.

    Raises:
        RenderError, RenderCancelled: see :func:`iter_render`.
    """
    start, end = _range(project, start, end)
    n = end + check_tail(tail) - start
    out: dict[str, np.ndarray] | None = None
    for block in iter_render(project, pool, start, end, track_ids, progress, cancel, soundfont=soundfont,
                             tail=tail):
        if out is None:
            out = {k: np.zeros((2, n), dtype=np.float32) for k in block.stems}
        a = block.start - start
        for k, v in block.stems.items():
            out[k][:, a:a + v.shape[1]] = v
    if out is None:
        ids = list(track_ids) if track_ids is not None else [t.id for t in project.tracks]
        out = {k: np.zeros((2, 0), dtype=np.float32) for k in ids}
    return out


def render_mix(project: Project, pool: MediaReader, start: int = 0, end: int | None = None,
               track_ids: Iterable[str] | None = None, progress: Progress | None = None,
               cancel: Any = None, *, soundfont: str | None = None, tail: int = 0) -> np.ndarray:
    """The stereo mixdown of ``[start, end)`` (``end=None``: to the end of the last clip),
    plus ``tail`` samples in which only effects and releases ring (see :func:`iter_render`).

    Returns:
        ``(2, end + tail - start)`` float32 at ``project.sample_rate``.

    Raises:
        RenderError: missing media, bad effect, unknown track, no SoundFont for MIDI tracks.
        RenderCancelled: cancel was requested.
    """
    start, end = _range(project, start, end)
    mix = np.zeros((2, end + check_tail(tail) - start), dtype=np.float32)
    for block in iter_render(project, pool, start, end, track_ids, progress, cancel, soundfont=soundfont,
                             tail=tail):
        a = block.start - start
        mix[:, a:a + block.mix.shape[1]] = block.mix
    return mix


def render_track_raw(project: Project, pool: MediaReader, track_id: str, start: int = 0,
                     end: int | None = None, *, soundfont: str | None = None) -> np.ndarray:
    """A track's sounding clips only, pre-fader (no effects, gain, pan, mute): job input audio.

    Returns:
        ``(2, end - start)`` float32 (mono media dual-mono).

    Raises:
        RenderError: unknown track, missing media, no SoundFont for MIDI clips.
    """
    start, end = _range(project, start, end)
    try:
        track = project.track(track_id)
    except KeyError:
        raise RenderError(f"unknown track id: {track_id}") from None
    return Renderer(project, pool, soundfont=soundfont, threads=1).track_raw(track, start, end - start)


def with_master_gain(project: Project, master_gain_db: float | None) -> Project:
    """``project`` itself, or a shallow copy whose master gain is ``master_gain_db`` (dB) for
    one render (the project is not changed).

    Raises:
        RenderError: the gain is not a finite number of dB at or below +24 dB.
    """
    if master_gain_db is None or float(master_gain_db) == project.master_gain_db:
        return project
    g = float(master_gain_db)
    if not math.isfinite(g) or g > 24.0:
        raise RenderError(f"master gain {g:g} dB: give a number of dB up to +24")
    import dataclasses

    return dataclasses.replace(project, master_gain_db=g)


@dataclass
class RenderReport:
    """What :func:`render_file` wrote.

    Attributes:
        path: the file. frames: samples per channel written. sample_rate: Hz.
        subtype: ``"PCM_16"``, ``"PCM_24"`` or ``"FLOAT"``. master_gain_db: the master gain used, dB.
        levels: :class:`studio.audio.levels.FileLevels` of the written mix (true peak in
            dBFS, loudness in LUFS, overs).
    """

    path: Any
    frames: int
    sample_rate: int
    subtype: str
    master_gain_db: float
    levels: Any

    def warning(self, *, app: bool = False) -> str | None:
        """The over-full-scale warning for this file (:func:`studio.audio.levels.over_warning`), or None."""
        from studio.audio.levels import over_warning

        return over_warning([(getattr(self.path, "name", str(self.path)), self.levels)],
                            float_format=self.subtype == "FLOAT", master_gain_db=self.master_gain_db, app=app)


def render_to_file(project: Project, pool: MediaReader, path: Any, *, start: int = 0, end: int | None = None,
                   track_ids: Iterable[str] | None = None, progress: Progress | None = None, cancel: Any = None,
                   subtype: str = "PCM_24", soundfont: str | None = None, tail: int = 0) -> int:
    """Render the mix of ``[start, end + tail)`` straight into an audio file, block by block
    (memory stays bounded for any length), atomically. Returns the frames written; see
    :func:`render_file` (same arguments and errors) for the levels too."""
    return render_file(project, pool, path, start=start, end=end, track_ids=track_ids, progress=progress,
                       cancel=cancel, subtype=subtype, soundfont=soundfont, tail=tail).frames


def render_file(project: Project, pool: MediaReader, path: Any, *, start: int = 0, end: int | None = None,
                track_ids: Iterable[str] | None = None, progress: Progress | None = None, cancel: Any = None,
                subtype: str = "PCM_24", soundfont: str | None = None, tail: int = 0,
                master_gain_db: float | None = None) -> RenderReport:
    """Render the mix of ``[start, end + tail)`` straight into an audio file, block by block
    (memory stays bounded for any length), atomically, and measure what was written.

    Args:
        path: ``.wav``, ``.flac`` or ``.aiff``; its folder must exist.
        subtype: ``"PCM_16"``, ``"PCM_24"`` or ``"FLOAT"`` (not for FLAC).
        start, end, track_ids, progress, cancel, soundfont, tail: as :func:`render_mix`.
        master_gain_db: the master gain for this render, dB (None: the project's).

    Returns:
        :class:`RenderReport`: frames written, and the file's sample peak and true peak
        (dBFS), integrated loudness (LUFS) and samples over full scale (clipped in
        16/24-bit files, kept in float files).

    Raises:
        RenderError: bad range, output path, format or master gain (checked before
            rendering), missing media, bad effect, no SoundFont.
        DiskFull: the disk filled up (names ``path``; nothing was written there).
        RenderCancelled: cancel was requested (nothing was written).
    """
    from pathlib import Path

    from studio.audio.levels import LevelMeter

    from engines.files import DiskFullError, is_disk_full
    from studio.errors import DiskFull
    from studio.io.audio_io import check_output_path, write_audio_blocks

    path = Path(path)
    try:
        check_output_path(path, subtype)
    except ValueError as exc:
        raise RenderError(str(exc)) from None
    start, end = _range(project, start, end)
    tail = check_tail(tail)
    if end <= start and not tail:
        raise RenderError(f"nothing to render: the range ends at {end / project.sample_rate:g} s, "
                          f"not after its start {start / project.sample_rate:g} s")
    project = with_master_gain(project, master_gain_db)
    meter = LevelMeter(project.sample_rate, 2, clips=subtype != "FLOAT")

    def blocks() -> Iterator[np.ndarray]:
        for b in iter_render(project, pool, start, end, track_ids, progress, cancel, soundfont=soundfont, tail=tail):
            meter.add(b.mix)
            yield b.mix

    try:
        frames = write_audio_blocks(path, blocks(), project.sample_rate, 2, end + tail - start, subtype)
        return RenderReport(path, frames, project.sample_rate, subtype, project.master_gain_db, meter.result())
    except ValueError as exc:
        raise RenderError(str(exc)) from None
    except OSError as exc:
        if isinstance(exc, DiskFullError) or is_disk_full(exc, path.parent):
            raise DiskFull(path, f"'{path.name}' was not written and the project is unchanged") from None
        raise
