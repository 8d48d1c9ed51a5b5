"""Clips on the clipboard and drag-out to other applications; paste of MIDI into the project.

* MIDI clips go out as ONE Standard MIDI File: the bytes under the MIME type
  ``audio/midi`` (and ``audio/x-midi``), plus a file URL to a temp ``.mid`` with the
  same bytes, so that they paste or drop into a DAW (Ableton Live, Logic, Reaper) or a
  file manager. Tick 0 of the file is the start of the earliest copied MIDI clip; each
  track the clips come from is one SMF track (its name, GM program, channel 10 for
  drums), and every clip keeps its distance from the others, to the tick
  (:func:`studio.io.midi_io.midi_parts_to_bytes`).
* An audio clip goes out as a file URL to a temp 24-bit ``.wav`` of what the clip plays
  (media window, clip gain and linear fades), written by :func:`studio.io.audio_io.write_audio`.
* Inside the app, clips also travel as JSON (``application/x-seed-studio-clips``) so that
  copy and paste keep audio clips, positions and names.

Paste reads, in order: our own JSON, then ``audio/midi`` bytes, then a ``.mid`` file URL
(:func:`studio.io.midi_io.read_midi`); every paste is one undo step.

Temp files live in one folder per app process (``seed-studio-clip-<pid>-*`` in the system
temp folder): :func:`remove_temp_files` deletes it when the app quits (also at
interpreter exit), and the first copy of a session removes the folders that crashed
sessions left behind.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QMimeData, QUrl

from studio.errors import StudioError
from studio.model.project import AudioClip, MidiClip, Track, clip_from_dict, new_id

MIDI_MIME = "audio/midi"
MIDI_MIME_ALT = "audio/x-midi"
CLIPS_MIME = "application/x-seed-studio-clips"

TEMP_PREFIX = "seed-studio-clip-"
STALE_S = 24 * 3600
"""A temp folder of unknown owner older than this (seconds) is removed."""

_TEMP_DIR: Path | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def sweep_stale_temp_dirs(root: str | Path | None = None) -> int:
    """Remove the clipboard temp folders of app processes that are gone (a crash leaves
    them) and those of unknown owner older than :data:`STALE_S`. Returns how many went.
    Never raises."""
    root = Path(root or tempfile.gettempdir())
    n = 0
    try:
        entries = list(root.glob(TEMP_PREFIX + "*"))
    except OSError:
        return 0
    for d in entries:
        if _TEMP_DIR is not None and d == _TEMP_DIR:
            continue
        try:
            if d.is_symlink() or not d.is_dir() or d.stat().st_uid != os.getuid():
                continue
            rest = d.name[len(TEMP_PREFIX):]
            pid = int(rest.split("-", 1)[0]) if rest.split("-", 1)[0].isdigit() and "-" in rest else None
            if pid is not None:
                if pid == os.getpid() or _pid_alive(pid):
                    continue
            elif time.time() - d.stat().st_mtime < STALE_S:
                continue
            shutil.rmtree(d, ignore_errors=True)
            n += 1
        except OSError:
            continue
    return n


def temp_dir() -> Path:
    """This process's temp folder for clipboard and drag-out files (made on first use,
    after sweeping stale ones; removed by :func:`remove_temp_files`)."""
    global _TEMP_DIR
    if _TEMP_DIR is None or not _TEMP_DIR.is_dir():
        sweep_stale_temp_dirs()
        _TEMP_DIR = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    return _TEMP_DIR


def remove_temp_files() -> None:
    """Delete this process's clipboard temp folder (when the app quits). Never raises."""
    global _TEMP_DIR
    d, _TEMP_DIR = _TEMP_DIR, None
    if d is not None:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(remove_temp_files)


def _safe_name(name: str, fallback: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in " -_." else "_" for ch in (name or "")).strip()
    return keep or fallback


def midi_bytes(doc, track: Track, clip: MidiClip) -> bytes:
    """The clip as SMF bytes (clip start = tick 0, project tempo map shifted to it)."""
    from studio.io.midi_io import midi_clip_to_bytes

    return midi_clip_to_bytes(clip, doc.project.tempo_map, name=clip.name or track.name,
                              program=track.program, is_drum=track.is_drum)


def write_midi_temp(doc, track: Track, clip: MidiClip) -> Path:
    """Write the clip to a temp ``.mid`` and return its path."""
    data = midi_bytes(doc, track, clip)
    path = temp_dir() / f"{_safe_name(clip.name or track.name, 'clip')}-{clip.id[:6]}.mid"
    path.write_bytes(data)
    return path


def midi_clips_bytes(doc, clips: list[tuple[Track, MidiClip]]) -> bytes:
    """Several MIDI clips as one type-1 SMF: one SMF track per project track (in track
    order), tick 0 = the earliest clip's start, every clip at its distance from it."""
    from studio.io.midi_io import MidiPart, midi_parts_to_bytes

    proj = doc.project
    order = {t.id: i for i, t in enumerate(proj.tracks)}
    by_track: dict[str, tuple[Track, list[MidiClip]]] = {}
    for t, c in clips:
        by_track.setdefault(t.id, (t, []))[1].append(c)
    parts = []
    for tid in sorted(by_track, key=lambda k: order.get(k, len(order))):
        t, cs = by_track[tid]
        cs = sorted(cs, key=lambda c: c.start)
        name = cs[0].name if len(cs) == 1 and cs[0].name else t.name
        parts.append(MidiPart(name, cs, t.program, t.is_drum))
    base = min(c.start for _, c in clips)
    end = max(c.end for _, c in clips)
    return midi_parts_to_bytes(parts, proj.tempo_map, start_tick=base, end_tick=end, name=proj.name)


def write_audio_temp(doc, clip: AudioClip) -> Path:
    """Render what an audio clip plays (media window, gain, fades) into a temp ``.wav``.

    Raises:
        StudioError: the clip's media is missing from the pool.
    """
    from studio.io.audio_io import write_audio

    item = doc.project.media.get(clip.media_id)
    if item is None:
        raise StudioError(f"clip '{clip.name}': its media {clip.media_id[:12]} is missing")
    audio = np.array(doc.pool.read(item, clip.offset, clip.length), dtype=np.float32, copy=True)
    audio *= np.float32(10 ** (clip.gain_db / 20.0))
    n = audio.shape[1]
    if clip.fade_in > 0:
        k = min(clip.fade_in, n)
        audio[:, :k] *= np.linspace(0.0, 1.0, k, endpoint=False, dtype=np.float32)
    if clip.fade_out > 0:
        k = min(clip.fade_out, n)
        audio[:, n - k:] *= np.linspace(1.0, 0.0, k, endpoint=False, dtype=np.float32)
    path = temp_dir() / f"{_safe_name(clip.name, 'clip')}-{clip.id[:6]}.wav"
    write_audio(path, audio, item.sample_rate)
    return path


def clips_mime(doc, clips: list[tuple[Track, object]], *, with_files: bool = True) -> QMimeData:
    """MIME data for clips: our JSON, plus SMF bytes and file URLs (MIDI as ``.mid``,
    audio as ``.wav``) when ``with_files``.

    Raises:
        StudioError: a clip's media is missing (audio drag-out).
    """
    mime = QMimeData()
    proj = doc.project
    base = min((proj.clip_span(c)[0] for _, c in clips), default=0)
    payload = {
        "sample_rate": proj.sample_rate,
        "base_sample": base,
        "clips": [{"track_kind": t.kind, "track_name": t.name, "program": t.program, "is_drum": t.is_drum,
                   "clip": c.to_dict(),
                   "start_sample": proj.clip_span(c)[0]} for t, c in clips],
    }
    mime.setData(CLIPS_MIME, json.dumps(payload).encode("utf-8"))
    if not with_files:
        return mime
    urls = []
    midi = [(t, c) for t, c in clips if isinstance(c, MidiClip)]
    if len(midi) == 1:
        t, c = midi[0]
        data = midi_bytes(doc, t, c)
        mime.setData(MIDI_MIME, data)
        mime.setData(MIDI_MIME_ALT, data)
        urls.append(QUrl.fromLocalFile(str(write_midi_temp(doc, t, c))))
    elif midi:
        data = midi_clips_bytes(doc, midi)
        mime.setData(MIDI_MIME, data)
        mime.setData(MIDI_MIME_ALT, data)
        path = temp_dir() / f"{_safe_name(proj.name, 'clips')}-{len(midi)}-clips-{new_id()[:6]}.mid"
        path.write_bytes(data)
        urls.append(QUrl.fromLocalFile(str(path)))
    for t, c in clips:
        if isinstance(c, AudioClip):
            urls.append(QUrl.fromLocalFile(str(write_audio_temp(doc, c))))
    if urls:
        mime.setUrls(urls)
    return mime


def midi_parts_from_mime(mime: QMimeData):
    """``(parts, tempo_map)`` from SMF bytes or a ``.mid`` URL on the clipboard, or None.

    Raises:
        MidiFileError: the MIDI data is malformed.
    """
    from studio.io.midi_io import read_midi

    for fmt in (MIDI_MIME, MIDI_MIME_ALT):
        if mime.hasFormat(fmt):
            data = bytes(mime.data(fmt))
            if data:
                path = temp_dir() / f"paste-{new_id()[:8]}.mid"
                path.write_bytes(data)
                return read_midi(path)
    for url in mime.urls() if mime.hasUrls() else []:
        if url.isLocalFile() and url.toLocalFile().lower().endswith((".mid", ".midi")):
            return read_midi(url.toLocalFile())
    return None


def paste(doc, mime: QMimeData, at_sample: int, track_id: str | None = None) -> list[str]:
    """Paste clips or MIDI at ``at_sample`` (the first clip lands there). Returns new clip ids.

    Own clips go back onto ``track_id`` when its kind fits, else onto the first track of
    the right kind, else onto new tracks; MIDI from outside goes onto the selected MIDI
    track, or onto new MIDI tracks (one per part). One undo step.

    Raises:
        StudioError: nothing pasteable on the clipboard, or bad MIDI data.
    """
    from studio.model import edits

    proj = doc.project
    tm, sr = proj.tempo_map, proj.sample_rate
    target = None
    if track_id:
        try:
            target = proj.track(track_id)
        except KeyError:
            target = None
    new_ids: list[str] = []
    if mime.hasFormat(CLIPS_MIME):
        payload = json.loads(bytes(mime.data(CLIPS_MIME)).decode("utf-8"))
        base = int(payload.get("base_sample", 0))
        with doc.group("Paste"):
            for entry in payload["clips"]:
                clip = clip_from_dict(entry["clip"])
                clip.id = new_id()
                start = at_sample + int(entry["start_sample"]) - base
                kind = entry["track_kind"]
                if isinstance(clip, MidiClip):
                    clip.start = tm.sample_to_tick(start, sr)
                else:
                    if clip.media_id not in proj.media:
                        raise StudioError("the copied audio comes from another project; import its file instead")
                    clip.start = start
                dest = target if target is not None and target.kind == kind else None
                if dest is None:
                    dest = Track(name=entry.get("track_name", "Pasted"), kind=kind,
                                 program=int(entry.get("program", 0)), is_drum=bool(entry.get("is_drum", False)))
                    doc.push(edits.AddTrack(dest))
                    target = target or dest
                doc.push(edits.AddClip(dest.id, clip))
                new_ids.append(clip.id)
        return new_ids
    got = midi_parts_from_mime(mime)
    if got is None:
        raise StudioError("the clipboard holds no clips or MIDI")
    parts, _tempo = got
    at_tick = tm.sample_to_tick(at_sample, sr)
    with doc.group("Paste MIDI"):
        for k, part in enumerate(p for p in parts if p.clip.notes):
            clip = part.clip
            clip.id = new_id()
            clip.start = at_tick
            if target is not None and target.kind == "midi" and k == 0:
                dest = target
            else:
                dest = Track(name=part.name or "Pasted MIDI", kind="midi", program=int(part.program),
                             is_drum=bool(part.is_drum))
                doc.push(edits.AddTrack(dest))
            doc.push(edits.AddClip(dest.id, clip))
            new_ids.append(clip.id)
    if not new_ids:
        raise StudioError("the MIDI on the clipboard holds no notes")
    return new_ids
