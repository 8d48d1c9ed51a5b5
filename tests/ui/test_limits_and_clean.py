"""The window at the project limits (a 24 h song at every zoom) and File > Clean Up Unused Media."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from studio.limits import MAX_PROJECT_SECONDS, MAX_SAMPLE_RATE
from ui.timeline.geometry import MAX_SAMPLES_PER_PX, MIN_SAMPLES_PER_PX, SCROLL_MAX, TimelineGeometry

INT32_MAX = 2**31 - 1


def test_geometry_fits_the_longest_project_at_every_zoom():
    total = MAX_PROJECT_SECONDS * MAX_SAMPLE_RATE  # 24 h at 192 kHz: 1.66e10 samples
    g = TimelineGeometry(MAX_SAMPLE_RATE)
    spp = MIN_SAMPLES_PER_PX
    while spp <= MAX_SAMPLES_PER_PX:
        g.samples_per_px = spp
        for origin in (0.0, total / 2, float(total)):
            g.set_origin(origin)
            maximum, page, value, step = g.scrollbar(total, 1500)
            assert 0 <= value <= maximum <= SCROLL_MAX <= INT32_MAX and 1 <= page <= SCROLL_MAX
            # the scroll bar reaches the end of the song
            assert g.origin_for_scroll(maximum, step) >= total - 1500 * spp * (1 + step)
        spp *= 2
    g.fit(total, 600)
    assert g.samples_per_px * 600 >= total  # zoom to fit shows a whole 24 h song
    g.zoom(1e12, 0)
    assert g.samples_per_px == MAX_SAMPLES_PER_PX
    g.set_origin(1e30)
    assert g.x_of(total) <= 0 < float("inf")  # clamped, never overflowing


def _day_long_project(tmp_path: Path) -> Path:
    from studio.io.session import Session
    from studio.model import edits
    from studio.model.project import MidiClip, Note, Track

    s = Session.create(tmp_path / "Day", sample_rate=192000, bpm=120.0)
    track = Track("all day", kind="midi")
    s.undo_stack.push(edits.AddTrack(track))
    ticks = MAX_PROJECT_SECONDS * 2 * 960  # 24 h at 120 BPM
    s.undo_stack.push(edits.AddClip(track.id, MidiClip(0, ticks, [Note(60, 90, 0, 960), Note(64, 90, ticks - 960, 960)])))
    s.save()
    s.close()
    return s.bundle


def test_window_and_screenshot_of_a_day_long_song(qtbot, tmp_path):
    from ui.app import make_window, screenshot

    bundle = _day_long_project(tmp_path)
    out = screenshot(bundle, tmp_path / "day.png", size=(1200, 700))
    assert out.stat().st_size > 1000
    win = make_window(bundle, ask=False, size=(1200, 700), readonly=True)
    qtbot.addWidget(win)
    win.show()
    view = win.timeline
    for _ in range(40):  # zoom all the way in, then all the way out
        view.zoom(0.5)
    assert view.geom.samples_per_px == MIN_SAMPLES_PER_PX
    view.hbar.setValue(view.hbar.maximum())  # scroll to the end of the song
    assert view.geom.origin > 0.99 * MAX_PROJECT_SECONDS * 192000 - 2000 * view._px_per_step
    win.canvas.repaint()
    for _ in range(40):
        view.zoom(2.0)
    view.zoom_to_fit()
    win.canvas.repaint()
    assert view.hbar.maximum() <= INT32_MAX
    win.doc.close()


def test_clean_up_unused_media_keeps_what_undo_needs(qtbot, tmp_path):
    from ui.document import Document
    from ui.main_window import MainWindow, new_app

    new_app()
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(4410)).astype(np.float32), 44100)
    doc = Document.new(tmp_path / "Clean.seedproj", 44100)
    win = MainWindow(doc, ask=False)
    qtbot.addWidget(win)
    assert "clean_media" in win.actions_by_name and win.actions_by_name["clean_media"].isEnabled()
    win.import_files([wav])
    media = sorted((doc.path / "media").glob("*.wav"))
    assert len(media) == 1
    doc.undo()  # the media is now only in the redo history
    report = win.on_clean_media()
    assert report is not None and report.media == [] and media[0].exists()
    assert doc.redo() and doc.project.tracks  # redo still finds its media
    doc.undo()
    win._add_track("audio")  # a new edit drops the redo branch: nothing can bring the media back
    report = win.on_clean_media()
    assert [p.name for p in report.media] == [media[0].name] and not media[0].exists()
    win.doc.close()
