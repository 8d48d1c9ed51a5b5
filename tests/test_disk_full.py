"""A full disk, for real: a small tmpfs the test mounts (root only; skipped otherwise).

Every write path says "the disk is full", names the file and says the project is
unchanged; project.json stays byte-identical and no temp file is left behind; read-only
commands still work and ``clean`` can free space.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.cli.main import main
from studio.io import project_io

SR = 22050


@pytest.fixture
def small_disk(tmp_path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"can't mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte."""
    with open(folder / "filler.bin", "ab", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * size
            while True:
                try:
                    if not f.write(block):
                        break
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break


def tone(path: Path, seconds: float, hz: float = 440.0) -> Path:
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), SR)
    return path


def test_every_write_path_reports_a_full_disk(small_disk, tmp_path, capsys, monkeypatch):
    b = small_disk / "Song.seedproj"
    assert main(["new", str(b), "--sample-rate", str(SR)]) == 0
    assert main(["import", str(b), str(tone(tmp_path / "short.wav", 0.2))]) == 0
    # a complete media file that nothing references (as after a kill between rename and save)
    from studio.media.pool import MediaPool

    stray = MediaPool(b / "media", SR).import_file(tone(tmp_path / "stray.wav", 0.3, 880))
    fill(small_disk)
    before = (b / "project.json").read_bytes()
    media_before = sorted(p.name for p in (b / "media").iterdir())

    def check(argv, *names):
        capsys.readouterr()
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code == 1, (argv, err)
        assert "Traceback" not in err and "the disk is full" in err and "unchanged" in err, (argv, err)
        for name in names:
            assert str(name) in err, (argv, name, err)
        assert (b / "project.json").read_bytes() == before
        assert sorted(p.name for p in (b / "media").iterdir()) == media_before
        assert project_io.find_temp_files(b) == []
        return err

    long = tone(tmp_path / "long.wav", 20.0)  # 20 s: 1.8 MB of float media, more than the disk has
    check(["import", b, long], "long.wav", b / "media")
    check(["import", b, tone(tmp_path / "tiny.wav", 0.05, 660)], "tiny.wav", b / "media")
    import studio.media.importing as importing

    with monkeypatch.context() as m:  # without the space check: libsndfile fails mid-write ("System error")
        m.setattr(importing, "check_space", lambda *a, **k: None)
        check(["import", b, long], "long.wav", b / "media")
    check(["tempo", b, "--bpm", "90"], b / "project.json")
    err = check(["render", b, small_disk / "mix.wav"], small_disk / "mix.wav")
    assert not (small_disk / "mix.wav").exists() and not list(small_disk.glob(".mix.wav.tmp-*")), err
    check(["export", b, small_disk / "Live"], small_disk / "Live")
    assert not list((small_disk / "Live").glob(".*.tmp-*")) if (small_disk / "Live").exists() else True
    capsys.readouterr()
    assert main(["new", str(small_disk / "New")]) == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and "New.seedproj" in err and not (small_disk / "New.seedproj").exists()
    # reading works on a full disk: info, verify
    capsys.readouterr()
    assert main(["info", str(b)]) == 0
    assert main(["verify", str(b)]) == 0
    # clean frees space on a full disk: the unreferenced media file goes
    capsys.readouterr()
    assert main(["clean", str(b)]) == 0
    assert not (b / "media" / f"{stray.id}.wav").exists()
    assert (b / "project.json").read_bytes() == before


def test_session_save_and_autosave_on_a_full_disk(small_disk):
    from studio.errors import DiskFull
    from studio.io.session import Session
    from studio.model.edits import SetProjectProperty

    s = Session.create(small_disk / "App", sample_rate=SR)
    fill(small_disk)
    before = (s.bundle / "project.json").read_bytes()
    s.undo_stack.push(SetProjectProperty("name", "x" * 20000))  # more than the last free bytes
    with pytest.raises(DiskFull) as err:
        s.save()
    assert "project.json" in str(err.value) and "previous save is intact" in str(err.value)
    with pytest.raises(DiskFull, match="autosave"):
        s.autosave()
    assert (s.bundle / "project.json").read_bytes() == before and s.is_dirty
    assert project_io.find_temp_files(s.bundle) == []
    s.close()
