"""Export for Ableton Live: aligned stems, MIDI files, the mixdown and a JSON manifest.

The folder holds, for the export range ``[start, end)`` (samples)::

    01 Drums.wav      one WAV per exported track, all starting at ``start`` and all the same length
    02 Piano.wav      (MIDI tracks are rendered through the GM synth too)
    02 Piano.mid      one type-1 SMF per MIDI track: notes shifted so tick 0 = ``start``,
                      tempo map and time signature in its first track
    Mix.wav           the mixdown of the exported tracks
    seed-studio-export.json

Drop the WAVs into Live at bar 1 (or at the range start) and they line up. With a
*render tail* (``tail`` samples) the audio files run that much past ``end``: the clips
stop at ``end`` and reverbs and delays ring out, instead of being cut.

Stems and mix come from one pass of :mod:`studio.audio.render`, so the stems sum to the mix:
each stem is the track's post-fader, post-effects, panned signal times the master gain,
and ``Mix.wav`` is their float32 sum (before the file's quantisation). Tracks that are
silent under mute/solo are not exported (they are listed under ``skipped`` in the
manifest), so the stems always add up to ``Mix.wav``.

Sample format: 24-bit PCM by default, **without dither** (plain rounding, so that the
stems null against the mix; 24-bit rounding noise is at -144 dBFS), or 32-bit float.
Integer formats clip at full scale; the report lists any file that clipped.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from engines.files import atomic_write_text
from studio.errors import RenderError
from studio.io.midi_io import MidiPart, shift_tempo_map, write_midi
from studio.model.project import AudioClip, MidiClip, Project, Track
from studio.audio.render import BLOCK_FRAMES, check_tail, is_audible, iter_render

MANIFEST_NAME = "seed-studio-export.json"
MIX_NAME = "Mix.wav"
MANIFEST_VERSION = 1

_BAD_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def sanitize_name(name: str, fallback: str = "Track") -> str:
    """A track name made safe as a file name on Windows, macOS and Linux.

    Removes ``<>:"/\\|?*`` and control characters, collapses spaces, strips leading and
    trailing dots and spaces, avoids reserved Windows names and cuts at 80 characters.
    """
    s = _BAD_CHARS.sub(" ", name)
    s = re.sub(r"\s+", " ", s).strip(" .")[:80].strip(" .")
    if not s:
        s = fallback
    if s.upper() in _RESERVED:
        s = f"{s}_"
    return s


@dataclass
class ExportedFile:
    """One file of an export (see the manifest for the same data in JSON)."""

    path: Path
    type: str  # "audio", "midi" or "mix"
    track_id: str | None = None
    track_name: str = ""
    kind: str = ""
    clipped_samples: int = 0


@dataclass
class ExportReport:
    """What :func:`export_for_ableton` wrote.

    Attributes:
        out_dir: the export folder.
        files: every written file (stems, MIDI files, mix, manifest), in order.
        entries: per-file details.
        manifest: path of ``seed-studio-export.json``.
        mix: path of ``Mix.wav``.
        start, end: the range, samples; frames: samples in each audio file
            (``end - start + tail``); tail: the render tail, samples.
        skipped: ``(track id, name, reason)`` of selected tracks that were not exported.
        clipped: files whose samples went past full scale (integer formats only).
    """

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    entries: list[ExportedFile] = field(default_factory=list)
    manifest: Path | None = None
    mix: Path | None = None
    start: int = 0
    end: int = 0
    frames: int = 0
    tail: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    clipped: list[Path] = field(default_factory=list)


def _unique_names(tracks: list[Track]) -> list[str]:
    """``"NN Name"`` per track; the name part is unique too (``Drums``, ``Drums 2``)."""
    width = max(2, len(str(len(tracks))))
    used: set[str] = {"mix"}
    out = []
    for i, t in enumerate(tracks, 1):
        base = sanitize_name(t.name)
        name, k = base, 2
        while name.lower() in used:
            name = f"{base} {k}"
            k += 1
        used.add(name.lower())
        out.append(f"{i:0{width}d} {name}")
    return out


def _sounding_midi_clips(project: Project, track: Track) -> list[MidiClip]:
    """The MIDI that plays on ``track`` (active takes instead of the own clips in their range),
    as clip copies holding only the notes and events whose onsets lie in their window."""
    sr, tm = project.sample_rate, project.tempo_map
    out = []
    for clip, ws, we in project.sounding_clips(track):
        if not isinstance(clip, MidiClip):
            continue

        def inside(tick: int) -> bool:
            return ws <= tm.tick_to_sample(clip.start + tick, sr) < we

        part = clip.clone()
        part.notes = [n for n in clip.notes if inside(n.start)]
        part.cc = [c for c in clip.cc if inside(c.tick)]
        part.pitch_bends = [b for b in clip.pitch_bends if inside(b.tick)]
        out.append(part)
    return out


def _media_sources(project: Project, track: Track) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for clip in track.all_clips():
        if isinstance(clip, AudioClip) and clip.media_id not in seen:
            item = project.media.get(clip.media_id)
            seen[clip.media_id] = {
                "media_id": clip.media_id,
                "original_name": item.original_name if item else "",
                "original_sha256": item.original_sha256 if item else "",
                "original_sample_rate": item.original_sample_rate if item else 0,
            }
    return list(seen.values())


def _take_provenance(track: Track) -> list[dict[str, Any]]:
    out = []
    for g in track.take_groups:
        take = g.active_take()
        if take is not None:
            out.append({"take_group": g.id, "start": g.start, "end": g.end, "take": take.name,
                        "provenance": take.provenance})
    return out


class _Writer:
    """Streams blocks into one WAV through an atomic temp file."""

    def __init__(self, path: Path, sample_rate: int, subtype: str, frames: int):
        from studio.io.audio_io import atomic_output, open_wav_writer

        self.path = path
        self._ctx = atomic_output(path)
        tmp = self._ctx.__enter__()
        self._file = open_wav_writer(tmp, sample_rate, 2, subtype, frames)
        self.clipped = 0
        self._integer = subtype != "FLOAT"

    def write(self, block: np.ndarray) -> None:
        if self._integer:
            self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
        self._file.write(np.ascontiguousarray(block.T))

    def close(self, ok: bool) -> None:
        self._file.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            err = RuntimeError("export aborted")
            try:
                self._ctx.__exit__(RuntimeError, err, None)
            except RuntimeError:
                pass


def export_for_ableton(project: Project, pool: Any, out_dir: str | Path, *,
                       track_ids: Iterable[str] | None = None, start: int = 0, end: int | None = None,
                       float32: bool = False, progress: Callable[[float], Any] | None = None,
                       cancel: Any = None, soundfont: str | None = None, tail: int = 0) -> ExportReport:
    """Write the Ableton hand-off folder (see the module docstring).

    Args:
        project: the project; pool: its media pool.
        out_dir: the export folder (created; files of the same names are replaced).
        track_ids: tracks to export (default: all), in project order.
        start, end: export range, timeline samples; ``end=None`` = end of the last clip.
        float32: write 32-bit float WAVs instead of 24-bit PCM.
        progress: ``progress(fraction)``, fraction 0..1.
        cancel: checked between blocks (see :func:`studio.audio.render.iter_render`).
        soundfont: GM SoundFont for MIDI tracks.
        tail: render tail, samples (see :func:`studio.audio.render.iter_render`); the MIDI
            files still end at ``end``.

    Returns:
        :class:`ExportReport`.

    Raises:
        RenderError: unknown track, empty range, nothing audible to export, missing
            media, bad effects, no SoundFont for MIDI tracks. OSError: the folder can't be written.
    """
    out_dir = Path(out_dir)
    sr = project.sample_rate
    if end is None:
        end = project.length_samples()
    start, end, tail = int(start), int(end), check_tail(tail)
    if end <= start:
        raise RenderError(f"nothing to export: the range {start}..{end} samples is empty")
    if track_ids is None:
        selected = list(project.tracks)
    else:
        wanted = set(track_ids)
        unknown = wanted - {t.id for t in project.tracks}
        if unknown:
            raise RenderError(f"unknown track id(s): {', '.join(sorted(unknown))}")
        selected = [t for t in project.tracks if t.id in wanted]
    tracks = [t for t in selected if is_audible(project, t)]
    report = ExportReport(out_dir=out_dir, start=start, end=end, frames=end - start + tail, tail=tail)
    report.skipped = [(t.id, t.name, "muted" if t.mute else "not soloed") for t in selected if t not in tracks]
    if not tracks:
        raise RenderError("nothing to export: no selected track is audible (check mute and solo)")
    out_dir.mkdir(parents=True, exist_ok=True)
    subtype = "FLOAT" if float32 else "PCM_24"
    names = _unique_names(tracks)
    frames = end - start + tail
    master = 10.0 ** (project.master_gain_db / 20.0)
    writers = [_Writer(out_dir / f"{n}.wav", sr, subtype, frames) for n in names]
    mix_writer = _Writer(out_dir / MIX_NAME, sr, subtype, frames)
    ok = False
    try:
        render_progress = (lambda f: progress(0.95 * f)) if progress else None
        for block in iter_render(project, pool, start, end, [t.id for t in tracks], render_progress, cancel,
                                 block_frames=BLOCK_FRAMES, soundfont=soundfont, tail=tail):
            for w, t in zip(writers, tracks):
                stem = block.stems[t.id]
                w.write(stem * np.float32(master) if master != 1.0 else stem)
            mix_writer.write(block.mix)
        ok = True
    finally:
        for w in writers + [mix_writer]:
            w.close(ok)
    for w, t, n in zip(writers, tracks, names):
        report.entries.append(ExportedFile(w.path, "audio", t.id, t.name, t.kind, w.clipped))
        if t.kind == "midi" or any(isinstance(c, MidiClip) for c in t.clips):
            mid = out_dir / f"{n}.mid"
            start_tick = project.tempo_map.sample_to_tick(start, sr)
            end_tick = project.tempo_map.sample_to_tick(end, sr)
            part = MidiPart(t.name, _sounding_midi_clips(project, t), t.program, t.is_drum)
            write_midi(mid, [part], project.tempo_map, start_tick=start_tick, end_tick=end_tick,
                       name=project.name)
            report.entries.append(ExportedFile(mid, "midi", t.id, t.name, t.kind))
    report.entries.append(ExportedFile(mix_writer.path, "mix", None, "Mix", "mix", mix_writer.clipped))
    report.mix = mix_writer.path
    report.clipped = [e.path for e in report.entries if e.clipped_samples]
    manifest = _manifest(project, report, tracks, float32)
    report.manifest = out_dir / MANIFEST_NAME
    atomic_write_text(report.manifest, json.dumps(manifest, indent=2) + "\n")
    report.files = [e.path for e in report.entries] + [report.manifest]
    if progress:
        progress(1.0)
    return report


def _manifest(project: Project, report: ExportReport, tracks: list[Track], float32: bool) -> dict[str, Any]:
    sr = project.sample_rate
    tm = project.tempo_map
    start_tick = tm.sample_to_tick(report.start, sr)
    sig = tm.signature_at(start_tick)
    by_id = {t.id: t for t in tracks}
    files = []
    for e in report.entries:
        entry: dict[str, Any] = {"file": e.path.name, "type": e.type}
        t = by_id.get(e.track_id) if e.track_id else None
        if t is not None:
            entry.update({
                "track_id": t.id, "track_name": t.name, "kind": t.kind,
                "gain_db": t.gain_db, "pan": t.pan,
                "effects": [{"name": fx.name, "params": fx.params} for fx in t.effects if fx.enabled],
                "parent_id": t.parent_id,
            })
            if t.kind == "midi":
                entry.update({"program": t.program, "is_drum": t.is_drum})
            entry["media"] = _media_sources(project, t)
            takes = _take_provenance(t)
            if takes:
                entry["active_takes"] = takes
        if e.type != "midi":
            entry["clipped_samples"] = e.clipped_samples
        files.append(entry)
    return {
        "format": "seed-studio-export",
        "version": MANIFEST_VERSION,
        "project": {"id": project.id, "name": project.name},
        "sample_rate": sr,
        "bit_depth": 32 if float32 else 24,
        "sample_format": "float" if float32 else "pcm",
        "dither": "none",
        "channels": 2,
        "tempo": tm.bpm_at(start_tick),
        "time_signature": f"{sig.numerator}/{sig.denominator}",
        "tempo_map": shift_tempo_map(tm, start_tick).to_dict(),
        "ppq": project.ppq,
        "range": {
            "start_sample": report.start, "end_sample": report.end, "frames": report.frames,
            "tail_frames": report.tail,
            "start_seconds": report.start / sr, "end_seconds": report.end / sr,
            "start_tick": start_tick,
        },
        "master_gain_db": project.master_gain_db,
        "stems_include_master_gain": True,
        "files": files,
        "skipped": [{"track_id": i, "track_name": n, "reason": r} for i, n, r in report.skipped],
    }
