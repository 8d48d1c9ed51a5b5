"""Files dragged in from a file manager: dropped on the arrange canvas they import at the
drop position (snapped to the grid); the menu's import goes to the playhead."""
from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication


def _mime(paths) -> QMimeData:
    m = QMimeData()
    m.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return m


def _drop(canvas, paths, x: float) -> QDropEvent:
    mime = _mime(paths)
    pos = QPointF(x, 20.0)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas, enter)
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas, drop)
    return drop


def _bar_sample(proj, bar: int) -> int:
    tm = proj.tempo_map
    return tm.tick_to_sample(tm.bar_to_tick(bar), proj.sample_rate)


def test_dropped_audio_and_midi_land_at_the_drop_position_on_the_grid(window, shared):
    canvas = window.canvas
    proj = window.doc.project
    bar3 = _bar_sample(proj, 2)
    x = canvas.geom.x_of(bar3) + 2.0  # 2 px past the bar line: snaps back onto it
    assert canvas.geom.sample_at(x) > bar3
    drop = _drop(canvas, [shared / "audio" / "lmms_break01.ogg", shared / "midi" / "blupi_music000.mid"], x)
    assert drop.isAccepted()
    tracks = window.doc.project.tracks
    audio = [t for t in tracks if t.kind == "audio"]
    midi = [t for t in tracks if t.kind == "midi"]
    assert len(audio) == 1 and len(midi) >= 1
    assert audio[0].clips[0].start == bar3
    proj = window.doc.project
    first_midi = min(c.start for t in midi for c in t.clips)
    assert proj.tempo_map.tick_to_sample(first_midi, proj.sample_rate) == bar3
    assert "Imported" in window.statusBar().currentMessage() and "at 3.1.1" in window.statusBar().currentMessage()
    window.doc.undo()
    window.doc.undo()
    assert window.doc.project.tracks == []


def test_menu_import_goes_to_the_playhead(window, shared):
    proj = window.doc.project
    bar5 = _bar_sample(proj, 4)
    window.timeline.set_playhead(bar5)
    (track,) = window.import_files([shared / "audio" / "lmms_piano01.ogg"])
    assert track.clips[0].start == bar5


def test_other_files_are_not_taken(window, shared, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    drop = _drop(window.canvas, [text], 100.0)
    assert not drop.isAccepted()
    assert window.doc.project.tracks == []


def test_a_broken_dropped_file_is_refused_by_name_and_changes_nothing(window, tmp_path):
    bad = tmp_path / "broken take.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    folder = Path(window.doc.path)

    def state():
        return sorted((str(f.relative_to(folder)), f.read_bytes() if f.name == "project.json" else b"")
                      for f in folder.rglob("*") if f.is_file() and "autosave" not in f.parts)

    before = state()
    _drop(window.canvas, [bad], 100.0)
    msg = window.statusBar().currentMessage()
    assert "broken take.wav" in msg
    assert window.doc.project.tracks == []
    assert state() == before


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mid"])
def test_importable_paths_keeps_local_audio_and_midi_only(suffix, tmp_path):
    from ui.timeline.file_drop import importable_paths

    m = QMimeData()
    m.setUrls([QUrl.fromLocalFile(str(tmp_path / f"a{suffix}")), QUrl("https://example.org/b.wav"),
               QUrl.fromLocalFile(str(tmp_path / "c.pdf"))])
    assert importable_paths(m) == [str(tmp_path / f"a{suffix}")]
