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

Every file is written atomically (temp file, rename). While it writes, an export holds
an OS lock on the folder (nothing is written for it), so a second export into the same
folder is refused; at its start it removes the temp files that an interrupted export
left there (``.NN name.wav.tmp-*``, ``.Mix.wav.tmp-*``...: its own names only). A full
disk stops the export with :class:`~studio.errors.DiskFull` naming the file; the files
of an earlier export in that folder are kept as they were.

Sample format: 24-bit PCM by default, **without dither** (plain rounding, so that the
stems null against the mix; 24-bit rounding noise is at -144 dBFS), or 32-bit float.

Levels: every audio file is measured as it is written (:mod:`studio.audio.levels`): sample
peak and true peak (ITU-R BS.1770-4, dBFS), integrated loudness (LUFS) and the samples
over full scale. Integer formats clip those samples (``clipped_samples``); 32-bit float
keeps them, and the manifest still counts them (``over_samples``), because they clip as
soon as the file is converted or played at fixed point. :meth:`ExportReport.warning`
names the files that went over and says what to do.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from engines.files import atomic_write_text, is_disk_full
from studio.errors import DiskFull, RenderError, StudioError
from studio.io.midi_io import MidiPart, shift_tempo_map, write_midi
from studio.model.project import AudioClip, MidiClip, Project, Track
from studio.audio.levels import LevelMeter
from studio.audio.render import BLOCK_FRAMES, check_tail, is_audible, iter_render, with_master_gain

MANIFEST_NAME = "seed-studio-export.json"
MIX_NAME = "Mix.wav"
MANIFEST_VERSION = 1
TEMP_PATTERNS = (".[0-9]* *.wav.tmp-*", ".[0-9]* *.mid.tmp-*", f".{MIX_NAME}.tmp-*", f".{MANIFEST_NAME}.tmp-*")
"""Temp files an interrupted export leaves (atomic writes of its own file names)."""
_KEPT = "the project is unchanged, and files of an earlier export in that folder are as they were"


def sweep_export_temps(out_dir: str | Path) -> tuple[int, int]:
    """Remove the temp files of interrupted exports in ``out_dir`` (:data:`TEMP_PATTERNS`).
    Call it only while holding the folder's export lock. Returns ``(files, bytes)``."""
    import stat

    n = freed = 0
    folder = Path(out_dir)
    for pattern in TEMP_PATTERNS:
        for p in folder.glob(pattern):
            try:
                st = p.lstat()
                if not stat.S_ISREG(st.st_mode):
                    continue
                p.unlink()
            except OSError:
                continue
            n += 1
            freed += st.st_size
    return n, freed

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
    levels: Any = None  # studio.audio.levels.FileLevels of an audio file


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
        clipped: files whose samples were clipped at full scale (integer formats only).
        overs: files that went above full scale: a sample over 1.0 (clipped in integer
            formats, kept in float) or a true peak above 0 dBFS.
        float32: the audio files are 32-bit float. master_gain_db: the master gain used, dB.
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
    overs: list[Path] = field(default_factory=list)
    float32: bool = False
    master_gain_db: float = 0.0

    def warning(self, *, app: bool = False) -> str | None:
        """Plain words about the files that went over full scale (file, samples, true peak
        in dBFS, loudness in LUFS) and what to do; None when none did."""
        from studio.audio.levels import over_warning

        files = [(e.path.name, e.levels) for e in self.entries if e.levels is not None]
        return over_warning(files, float_format=self.float32, master_gain_db=self.master_gain_db, app=app)


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
        self.done = False
        self.meter = LevelMeter(sample_rate, 2, clips=subtype != "FLOAT")

    @property
    def clipped(self) -> int:
        """Samples clipped at full scale so far (0 for float files)."""
        return self.meter.overs if self.meter.clips else 0

    def write(self, block: np.ndarray) -> None:
        self.meter.add(block)
        self._file.write(np.ascontiguousarray(block.T))

    def close(self, ok: bool) -> None:
        """Finish the file (``ok``) or drop its temp file. Dropping never raises."""
        if ok:
            try:
                self._file.close()
            except BaseException as exc:
                self.close(False)
                raise exc
            self._ctx.__exit__(None, None, None)
            return
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - the temp file goes anyway
            pass
        err = RuntimeError("export aborted")
        try:
            self._ctx.__exit__(RuntimeError, err, None)
        except Exception:  # noqa: BLE001 - atomic_output removed the temp file
            pass


def export_for_ableton(project: Project, pool: Any, out_dir: str | Path, *,
                       track_ids: Iterable[str] | None = None, start: int = 0, end: int | None = None,
                       float32: bool = False, progress: Callable[[float], Any] | None = None,
                       cancel: Any = None, soundfont: str | None = None, tail: int = 0,
                       master_gain_db: float | None = None) -> ExportReport:
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
        master_gain_db: the master gain for this export, dB (None: the project's); the
            project is not changed.

    Returns:
        :class:`ExportReport` (with each audio file's levels; see :meth:`ExportReport.warning`).

    Raises:
        RenderError: unknown track, empty range, nothing audible to export, bad master
            gain, missing media, bad effects, no SoundFont for MIDI tracks.
        DiskFull: the disk filled up (names the file; temp files removed).
        StudioError: another export is writing into ``out_dir``, or it can't be created.
        OSError: the folder can't be written.
    """
    out_dir = Path(out_dir)
    project = with_master_gain(project, master_gain_db)
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
    report = ExportReport(out_dir=out_dir, start=start, end=end, frames=end - start + tail, tail=tail,
                          float32=bool(float32), master_gain_db=project.master_gain_db)
    report.skipped = [(t.id, t.name, "muted" if t.mute else "not soloed") for t in selected if t not in tracks]
    if not tracks:
        raise RenderError("nothing to export: no selected track is audible (check mute and solo)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(out_dir, _KEPT) from None
        raise StudioError(f"export folder '{out_dir}': can't be created ({exc.strerror or exc})") from None
    with _folder_lock(out_dir):
        sweep_export_temps(out_dir)
        return _export(project, pool, out_dir, tracks, report, start, end, tail, float32, progress, cancel,
                       soundfont)


@contextlib.contextmanager
def _folder_lock(out_dir: Path):
    """Hold an OS lock on the export folder itself (``flock`` on the folder, POSIX; nothing is
    written, nothing is left behind) so that two exports never write into one folder and
    the temp-file sweep never touches a live export's files. Where folders can't be locked
    (Windows) it only yields.

    Raises:
        StudioError: another export holds the folder.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudioError(f"export folder '{out_dir}': another export is writing into it; "
                              "wait for it to finish or choose another folder") from None
        except OSError:
            pass  # a file system without flock: go on unlocked
        yield
    finally:
        os.close(fd)  # releases the lock


def _export(project: Project, pool: Any, out_dir: Path, tracks: list[Track], report: ExportReport, start: int,
            end: int, tail: int, float32: bool, progress: Callable[[float], Any] | None, cancel: Any,
            soundfont: str | None) -> ExportReport:
    sr = project.sample_rate
    subtype = "FLOAT" if float32 else "PCM_24"
    names = _unique_names(tracks)
    frames = end - start + tail
    master = 10.0 ** (project.master_gain_db / 20.0)
    writers: list[_Writer] = []
    current = out_dir
    ok = False
    try:
        for n in names:
            current = out_dir / f"{n}.wav"
            writers.append(_Writer(current, sr, subtype, frames))
        current = out_dir / MIX_NAME
        mix_writer = _Writer(current, sr, subtype, frames)
        writers.append(mix_writer)
        render_progress = (lambda f: progress(0.95 * f)) if progress else None
        for block in iter_render(project, pool, start, end, [t.id for t in tracks], render_progress, cancel,
                                 block_frames=BLOCK_FRAMES, soundfont=soundfont, tail=tail):
            for w, t in zip(writers, tracks):
                current = w.path
                stem = block.stems[t.id]
                w.write(stem * np.float32(master) if master != 1.0 else stem)
            current = mix_writer.path
            mix_writer.write(block.mix)
        for w in writers:
            current = w.path
            w.close(True)
            w.done = True
        ok = True
    except Exception as exc:
        if is_disk_full(exc, out_dir):  # before the temp files give their space back
            for w in writers:
                if not getattr(w, "done", False):
                    w.close(False)
            raise DiskFull(current, _KEPT) from None
        raise
    finally:
        if not ok:
            for w in writers:
                if not getattr(w, "done", False):
                    w.close(False)
    writers = writers[:-1]
    try:
        return _finish(project, out_dir, tracks, names, writers, mix_writer, report, start, end, float32, progress)
    except OSError as exc:
        if is_disk_full(exc, out_dir):
            raise DiskFull(getattr(exc, "filename", None) or out_dir, _KEPT) from None
        raise


def _finish(project: Project, out_dir: Path, tracks: list[Track], names: list[str], writers: list["_Writer"],
            mix_writer: "_Writer", report: ExportReport, start: int, end: int, float32: bool,
            progress: Callable[[float], Any] | None) -> ExportReport:
    sr = project.sample_rate
    for w, t, n in zip(writers, tracks, names):
        report.entries.append(ExportedFile(w.path, "audio", t.id, t.name, t.kind, w.clipped, w.meter.result()))
        if t.kind == "midi" or any(isinstance(c, MidiClip) for c in t.clips):
            mid = out_dir / f"{n}.mid"
            start_tick = project.tempo_map.sample_to_tick(start, sr)
            end_tick = project.tempo_map.sample_to_tick(end, sr)
            part = MidiPart(t.name, _sounding_midi_clips(project, t), t.program, t.is_drum)
            write_midi(mid, [part], project.tempo_map, start_tick=start_tick, end_tick=end_tick,
                       name=project.name)
            report.entries.append(ExportedFile(mid, "midi", t.id, t.name, t.kind))
    report.entries.append(ExportedFile(mix_writer.path, "mix", None, "Mix", "mix", mix_writer.clipped,
                                       mix_writer.meter.result()))
    report.mix = mix_writer.path
    report.clipped = [e.path for e in report.entries if e.clipped_samples]
    report.overs = [e.path for e in report.entries if e.levels is not None and e.levels.is_over]
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
            if e.levels is not None:
                lv = e.levels.to_dict()
                entry.update({"over_samples": lv["over_samples"], "sample_peak_dbfs": lv["sample_peak_dbfs"],
                              "true_peak_dbfs": lv["true_peak_dbfs"], "loudness_lufs": lv["loudness_lufs"]})
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
        "levels": {"true_peak": "ITU-R BS.1770-4, dBFS", "loudness": "integrated, ITU-R BS.1770-4, LUFS",
                   "over_samples": "samples above full scale (per channel); clipped in PCM files, kept in float"},
        "files": files,
        "skipped": [{"track_id": i, "track_name": n, "reason": r} for i, n, r in report.skipped],
    }
