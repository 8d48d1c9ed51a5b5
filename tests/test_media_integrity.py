"""Swapped media is noticed (cheap check on open, full check with ``seed-studio verify``), and
``clean`` removes only what nothing can bring back (not what an autosave or undo needs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.cli.main import main
from studio.io import project_io
from studio.io.session import Session

SR = 44100


def _tone(path: Path, hz: float, seconds: float = 0.5) -> Path:
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), SR)
    return path


@pytest.fixture
def bundle(tmp_path) -> Path:
    b = tmp_path / "Song.seedproj"
    assert main(["new", str(b), "--sample-rate", str(SR)]) == 0
    assert main(["import", str(b), str(_tone(tmp_path / "a.wav", 220))]) == 0
    return b


def _swap(b: Path, hz: float) -> Path:
    """Replace the media file by another of the same shape (same header, other samples)."""
    item = next(iter(project_io.load_project(b).media.values()))
    path = b / item.path
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    path.chmod(0o644)
    other = np.zeros_like(data) + np.float32(0.01 * hz / 1000)
    sf.write(path, other, sr, subtype="FLOAT")
    assert sf.info(str(path)).frames == item.frames
    return path


def test_swapped_media_is_named_by_info_render_and_verify(bundle, tmp_path, capsys):
    path = _swap(bundle, 880)
    before = (bundle / "project.json").read_bytes()
    capsys.readouterr()
    assert main(["info", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert path.name in out and "a.wav" in out and "changed since import" in out
    assert main(["render", str(bundle), str(tmp_path / "mix.wav")]) == 0
    assert f"warning: media file 'media/{path.name}'" in capsys.readouterr().err
    assert main(["verify", str(bundle)]) == 1
    cap = capsys.readouterr()
    assert path.name in cap.out and "error: 1 media problem(s)" in cap.err and "Traceback" not in cap.err
    assert (bundle / "project.json").read_bytes() == before
    s = Session.open(bundle, readonly=True)
    assert len(s.media_problems) == 1 and path.name in s.media_problems[0]


def test_full_check_catches_what_an_old_project_cannot_fingerprint(bundle, capsys):
    d = json.loads((bundle / "project.json").read_text())
    for item in d["media"].values():  # a project saved before fingerprints were recorded
        item.pop("size")
        item.pop("fingerprint")
    (bundle / "project.json").write_text(json.dumps(d))
    assert Session.open(bundle, readonly=True).media_problems == []
    path = _swap(bundle, 440)
    assert Session.open(bundle, readonly=True).media_problems == []  # same header: only sha256 sees it
    capsys.readouterr()
    assert main(["verify", str(bundle)]) == 1
    assert f"{path.name}" in capsys.readouterr().out
    path.unlink()
    problems = Session.open(bundle, readonly=True).media_problems
    assert problems and "missing" in problems[0] and path.name in problems[0]


def test_clean_drops_deleted_tracks_but_keeps_what_autosave_and_undo_need(bundle, tmp_path, capsys):
    from studio.media.integrity import clean_media
    from studio.media.importing import import_audio
    from studio.model import edits

    s = Session.open(bundle)
    first = next(iter(s.project.media))
    s.undo_stack.push(edits.RemoveTrack(s.project.tracks[0].id))
    assert clean_media(s, dry_run=True).media == []  # undo can bring the track back
    s.save()
    (track,) = import_audio(s, [_tone(tmp_path / "b.wav", 330)])
    second = track.clips[0].media_id
    s.autosave()  # unsaved work: only the autosave names the second media
    s.close()  # ... and the app "crashes" before saving
    capsys.readouterr()
    assert main(["clean", str(bundle)]) == 0  # recovery pending: project.json and its media stay as they are
    assert "removed 0 unused media file(s)" in capsys.readouterr().out
    assert (bundle / "media" / f"{first}.wav").exists() and (bundle / "media" / f"{second}.wav").exists()
    s = Session.open(bundle, recover=True)
    assert s.project.tracks[-1].clips[0].media_id == second and s.media_problems == []
    s.save()
    s.close()
    assert main(["clean", str(bundle)]) == 0
    assert "removed 1 unused media file(s)" in capsys.readouterr().out
    p = project_io.load_project(bundle)
    assert first not in p.media and not (bundle / "media" / f"{first}.wav").exists()
    assert second in p.media and Session.open(bundle, readonly=True).media_problems == []
