"""Build demo projects: a real 16-track song from the shared test material (for screenshots
and UI tests), and a synthetic N-track project (for the UI speed benchmark).

Everything enters the projects through the same commands as in the app
(:mod:`studio.media.importing`, :mod:`studio.model.edits`), so the projects are ordinary bundles.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.model.project import AudioClip, ControlLane, MidiClip, Note, Take, Track


def _trim_midi_tracks(session, tracks, max_ticks: int) -> None:
    from studio.model import edits

    for t in tracks:
        for c in list(t.clips):
            if isinstance(c, MidiClip) and c.length > max_ticks:
                notes = [Note(n.pitch, n.velocity, n.start, min(n.length, max_ticks - n.start))
                         for n in c.notes if n.start < max_ticks]
                session.undo_stack.push(edits.SetNotes(c.id, notes))
                session.undo_stack.push(edits.SetClipProperty(c.id, "length", max_ticks))


def build_demo_project(bundle: str | Path, shared: str | Path, *, sample_rate: int = 44100):
    """A 16-track song in a new bundle: 8 GM MIDI parts of ``blupi_music001.mid``, the
    ``blupi001`` multitrack (drums, bass, other, mixture), the Warzone 2100 excerpt, three
    LMMS loops, a take group with two takes, and dynamics/rhythm control lanes. Saved.

    Returns the open :class:`studio.io.session.Session`.

    Raises:
        ProjectError, AudioFileError, MidiFileError: as the importers do.
    """
    from studio.model import edits
    from studio.media.importing import import_audio, import_midi
    from studio.io.session import Session

    shared = Path(shared)
    s = Session.create(bundle, sample_rate, bpm=120.0)
    midi = import_midi(s, shared / "midi" / "blupi_music001.mid", adopt_tempo=True)
    tm = s.project.tempo_map
    bar = tm.signatures[0].ticks_per_bar
    _trim_midi_tracks(s, midi, 24 * bar)
    mt = shared / "multitrack" / "blupi001"
    stems = import_audio(s, [mt / "drums.flac", mt / "bass.flac", mt / "other.flac", mt / "mixture.flac"],
                         start=5 * sample_rate)
    song = import_audio(s, [shared / "audio" / "uncertain_future_30s.flac"])
    loops = import_audio(s, [shared / "audio" / n for n in ("lmms_break01.ogg", "lmms_bass_hard01.ogg",
                                                            "lmms_piano01.ogg")])
    with s.undo_stack.group("Arrange demo"):
        s.undo_stack.push(edits.MoveTrack(song[0].id, 0))
        s.undo_stack.push(edits.MoveTrack(stems[3].id, s.project.track_index(stems[0].id)))
        for t in stems[:3]:
            s.undo_stack.push(edits.SetTrackProperty(t.id, "parent_id", stems[3].id))
        # repeat each loop every 2 bars from bar 3
        for k, t in enumerate(loops):
            clip = t.clips[0]
            step = tm.tick_to_sample(2 * bar, sample_rate)
            first = tm.tick_to_sample((2 + 2 * k) * bar, sample_rate)
            s.undo_stack.push(edits.MoveClip(clip.id, first))
            for i in range(1, 6):
                c2 = AudioClip(clip.media_id, first + i * step, 0, clip.length, name=clip.name,
                               fade_out=min(clip.length, sample_rate // 50))
                s.undo_stack.push(edits.AddClip(t.id, c2))
        # a take group on the song: two "takes" (the second one a different excerpt)
        sc = song[0].clips[0]
        g0, g1 = 8 * sample_rate, 16 * sample_rate
        prov = {"engine_id": "fake", "engine_version": "1", "model_id": "fake-builtin", "revision": "builtin",
                "licence": "GPL-3.0-or-later", "task": "inpaint", "seed": 1234,
                "params": {"frequency": 440.0, "noise": 0.1}, "device": "cpu", "dtype": "float32"}
        take_a = Take("Inpaint #1", [AudioClip(sc.media_id, g0, g0, g1 - g0, name="inpaint 1")], prov)
        prov_b = dict(prov, seed=99)
        take_b = Take("Inpaint #2", [AudioClip(sc.media_id, g0, g0 + 4 * sample_rate, g1 - g0, name="inpaint 2")],
                      prov_b)
        s.undo_stack.push(edits.AddTake(song[0].id, g0, g1, take_a, activate=True))
        s.undo_stack.push(edits.AddTake(song[0].id, g0, g1, take_b, activate=False))
        # control lanes from the song through engines.features
        _fill_lanes(s, song[0])
    s.save()
    return s


def _fill_lanes(session, track: Track) -> None:
    """Melody, dynamics and rhythm lanes of ``track`` from its own audio (engines.features)."""
    from studio.model import edits
    from studio.controls import compute_lanes

    source = f"track:{track.id}"
    lanes = compute_lanes(session.project, session.pool, source)
    for kind in ("melody", "dynamics", "rhythm"):
        session.undo_stack.push(edits.SetControlLane(track.id, kind, ControlLane(kind, lanes[kind], source)))


def build_synthetic_project(bundle: str | Path, *, tracks: int = 32, seconds: float = 300.0,
                            sample_rate: int = 44100, seed: int = 0):
    """A ``tracks``-track project of ``seconds`` each (3 of 4 audio tracks with decaying noise
    bursts on the beat, 1 of 4 MIDI tracks with 8th notes), for the UI speed benchmark. Saved.

    Returns the open :class:`studio.io.session.Session`.
    """
    from studio.model import edits
    from studio.model.project import TRACK_COLOURS
    from studio.io.session import Session

    rng = np.random.default_rng(seed)
    s = Session.create(bundle, sample_rate, bpm=120.0)
    frames = int(seconds * sample_rate)
    beat = sample_rate // 2
    env = np.exp(-np.arange(beat) / (0.08 * sample_rate)).astype(np.float32)
    with s.undo_stack.group("Build"):
        for k in range(tracks):
            colour = TRACK_COLOURS[k % len(TRACK_COLOURS)]
            if k % 4 == 3:
                t = Track(name=f"MIDI {k + 1}", kind="midi", colour=colour)
                s.undo_stack.push(edits.AddTrack(t))
                ticks = s.project.tempo_map.sample_to_tick(frames, sample_rate)
                notes = [Note(int(48 + rng.integers(0, 24)), 100, i * 480, 400) for i in range(ticks // 480)]
                s.undo_stack.push(edits.AddClip(t.id, MidiClip(0, ticks, notes, name=f"Part {k + 1}")))
                continue
            beats = frames // beat + 1
            audio = (rng.standard_normal((1, beats * beat)).astype(np.float32) * 0.3
                     * np.tile(env, beats)[None, :] * rng.uniform(0.3, 1.0))[:, :frames]
            item = s.pool.import_array(audio, sample_rate, name=f"synth{k}.wav")
            s.undo_stack.push(edits.AddMedia(item))
            t = Track(name=f"Audio {k + 1}", kind="audio", colour=colour)
            s.undo_stack.push(edits.AddTrack(t))
            s.undo_stack.push(edits.AddClip(t.id, AudioClip(item.id, 0, 0, item.frames, name=f"Take {k + 1}")))
    s.save()
    return s


def mixing_screenshots(project: str | Path, out_dir: str | Path, *, size: tuple[int, int] = (1600, 1000),
                       seconds: float = 12.0) -> list[Path]:
    """PNGs of the mixer view (after ``seconds`` of playback into a silent device, so the
    meters and held peaks show real levels) and of the Export dialog, for the README:
    ``mixer.png`` and ``export_dialog.png`` in ``out_dir``. Works offscreen.

    Returns the written paths. Raises ProjectError for a bad project, OSError when a PNG
    can't be written.
    """
    import time

    from PyQt6.QtWidgets import QApplication

    from ui.app import make_window
    from ui.playback import PlaybackController

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    win = make_window(project, ask=False, size=size, readonly=True)
    win.show()
    proj = win.doc.project
    target = int(seconds * proj.sample_rate)

    class Sink:  # a device that takes audio as fast as it comes, and stops after `seconds`
        written = 0

        def write(self, a):
            Sink.written += a.shape[1]
            if Sink.written >= target:
                win.playback._stop.set()

        def close(self):
            pass

    win.playback = PlaybackController(win, sink_factory=lambda sr: Sink())
    win.playback.set_document(win.doc)
    win._connect_playback(win.playback)
    win.actions_by_name["mixer"].setChecked(True)
    win.on_mixer()
    win.timeline.zoom_to_fit()
    win.on_play()
    deadline = time.monotonic() + 120
    while win.playback.is_playing and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    win.playback.stop()
    win.timeline.set_playhead(target)
    win._update_meters()
    win.canvas.peaks_loader.wait_idle(20.0)
    win.canvas.tile_budget_s = None
    win.canvas.repaint()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        QApplication.processEvents()
    paths = []
    mixer = out_dir / "mixer.png"
    if not win.grab().save(str(mixer), "PNG"):
        raise OSError(f"'{mixer}': can't write the PNG")
    paths.append(mixer)
    dlg = win.open_export_dialog("stems")
    dlg.show()
    dlg.adjustSize()
    QApplication.processEvents()
    export = out_dir / "export_dialog.png"
    if not dlg.grab().save(str(export), "PNG"):
        raise OSError(f"'{export}': can't write the PNG")
    paths.append(export)
    dlg.close()
    win.doc.close()
    win.hide()
    win.deleteLater()
    return paths
