"""Session: create/open/save, dirty flag, autosave and crash recovery through the real files."""
from __future__ import annotations

import pytest

from studio.model.edits import SetProjectProperty, SetTrackProperty
from studio.errors import ProjectError
from studio.media.importing import import_audio
from studio.io.session import Session


def test_create_open_save_recover(tmp_path, shared):
    s = Session.create(tmp_path / "Song", sample_rate=48000, bpm=80)
    assert s.bundle.name == "Song.seedproj" and not s.is_dirty
    with pytest.raises(ProjectError, match="already holds a project"):
        Session.create(tmp_path / "Song.seedproj")
    (track,) = import_audio(s, [shared / "audio" / "uncertain_future_30s.flac"])
    assert s.is_dirty and s.project.tracks[0].clips[0].length == 30 * 48000
    s.save()
    assert not s.is_dirty
    s.undo_stack.push(SetTrackProperty(track.id, "gain_db", -6.0))
    s.undo_stack.push(SetProjectProperty("name", "After save"))
    auto = s.autosave()
    assert auto is not None and auto.parent.name == "autosave"
    # the process "crashes": no close, no save
    del s
    s2 = Session.open(tmp_path / "Song.seedproj")
    assert s2.crashed is False  # the lock holder (this process) is alive: not a crash
    assert s2.project.name == "Song" and s2.project.tracks[0].gain_db == 0.0  # the saved state
    assert s2.recovery_candidate() == auto
    s2.close()
    s3 = Session.open(tmp_path / "Song.seedproj", recover=True)
    assert s3.project.name == "After save" and s3.project.tracks[0].gain_db == -6.0
    assert s3.is_dirty  # recovered work is not saved yet
    s3.save()
    assert s3.recovery_candidate() is None
    s3.close()
    assert Session.open(tmp_path / "Song.seedproj").project.name == "After save"


def test_undo_of_import_keeps_media_for_redo(tmp_path, shared):
    s = Session.create(tmp_path / "U.seedproj", sample_rate=44100)
    ogg = sorted((shared / "audio").glob("lmms_*.ogg"))[0]
    import_audio(s, [ogg])
    item = next(iter(s.project.media.values()))
    s.undo_stack.undo()
    assert s.project.tracks == [] and s.project.media == {}
    s.undo_stack.redo()
    assert s.pool.read(item).shape[0] in (1, 2)
    assert s.project.tracks[0].clips[0].media_id == item.id
