"""Kills at random points of import, save, export and a job: nothing lost, nothing left over.

Import, save and export run through the real CLI in a child process whose write steps are
counted (atomic-write steps, each audio block written, the media rename); the child kills
its own process group with SIGKILL at a step drawn from a seeded RNG among the steps a
calibration run counted (the last one included: the media file renamed into place but
the project not saved yet). A job (``separate`` on the DSP engine, in the engine host) is
killed with its host at a random moment.

After each kill: the project loads; opening it for writing (here through
``seed-studio clean``) sweeps its own temp files and ``clean`` removes the media nothing
references; the bytes left over (temp files + unreferenced media in the bundle, temp files
in the export folder after the next export) must be 0.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.cli.main import main
from studio.io import project_io
from studio.media.integrity import unused_media

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}

DRIVER = textwrap.dedent("""
    import atexit, os, signal, sys
    sys.path.insert(0, {repo!r})
    kill_at = int(os.environ["KILL_AT"])
    seen = [0]

    names = []

    def step(name="?"):
        seen[0] += 1
        names.append(name)
        if seen[0] == kill_at:
            os.killpg(0, signal.SIGKILL)  # this process and its children, no clean-up

    atexit.register(lambda: sys.stderr.write(f"steps={{seen[0]}} {{' '.join(names)}}\\n"))
    from engines import files
    files.CHUNK_BYTES = 16 * 1024
    files.set_crash_hook(step)
    import studio.io.audio_io as aio
    import studio.media.pool as pool
    real_open, real_replace = aio.open_wav_writer, pool.replace_durably

    class Counted:
        def __init__(self, f):
            self.f = f
        def write(self, data):
            step("block")
            self.f.write(data)
        def close(self):
            self.f.close()
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()

    def counted_open(*a, **k):
        return Counted(real_open(*a, **k))

    def counted_replace(*a, **k):
        real_replace(*a, **k)
        step("media-renamed")

    aio.open_wav_writer = pool.open_wav_writer = counted_open
    pool.replace_durably = counted_replace
    from studio.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def _tone(path: Path, seconds: float, sr: int, hz: float) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = np.stack([np.sin(2 * np.pi * hz * t), np.sin(2 * np.pi * hz * 1.5 * t)], axis=1) * 0.2
    sf.write(path, x.astype(np.float32), sr)
    return path


@pytest.fixture
def setup(tmp_path):
    from studio.io.session import Session
    from studio.model import edits
    from studio.model.project import MidiClip, Note, Track

    b = tmp_path / "Song.seedproj"
    assert main(["new", str(b), "--sample-rate", "44100"]) == 0
    assert main(["import", str(b), str(_tone(tmp_path / "pad.wav", 4.0, 44100, 220))]) == 0
    s = Session.open(b)  # a large MIDI part, so that a save takes many write steps
    track = Track("notes", kind="midi")
    s.undo_stack.push(edits.AddTrack(track))
    s.undo_stack.push(edits.AddClip(track.id, MidiClip(0, 960 * 2000, [Note(40 + i % 40, 90, i * 480, 240)
                                                                          for i in range(3000)])))
    s.save()
    s.close()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    big = _tone(tmp_path / "big.wav", 12.0, 48000, 330)  # resampled on import: many blocks
    return b, driver, big


def _run(driver: Path, kill_at: int, *argv) -> tuple[int, int]:
    proc = subprocess.run([sys.executable, str(driver), *map(str, argv)], env={**ENV, "KILL_AT": str(kill_at)},
                          capture_output=True, text=True, start_new_session=True, timeout=300)
    steps = [int(line[6:].split()[0]) for line in proc.stderr.splitlines() if line.startswith("steps=")]
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, (steps[-1] if steps else -1)


def _leftover(b: Path) -> int:
    """Bytes in the bundle that nothing uses: temp files and media no clip plays."""
    temps = project_io.find_temp_files(b)
    unused = unused_media(project_io.load_project(b), b)
    return sum(p.stat().st_size for p in temps) + unused.media_bytes


def _recover(b: Path) -> int:
    """What a later writer does: open (sweeps temp files), clean (unused media). Returns bytes reclaimed."""
    before = _leftover(b)
    project_io.load_project(b)  # always loads after a kill
    assert main(["clean", str(b)]) == 0
    assert _leftover(b) == 0
    assert not (b / ".session.lock").exists()  # the dead writer's record went with the clean close
    return before


def test_kills_during_import_save_and_export_leave_nothing_behind(setup, tmp_path, capsys):
    b, driver, big = setup
    rng = random.Random(11)
    live = tmp_path / "Live"
    ops = {
        "import": ["import", b, big],
        "save": ["tempo", b, "--bpm", "97"],
        "export": ["export", b, live, "--end", "6"],
    }
    reclaimed = {}
    for kind, argv in ops.items():
        code, total = _run(driver, 10**9, *argv)  # calibration: count the steps of a whole run
        assert code == 0 and total > 3, (kind, code, total)
        if kind == "import":  # undo the calibration import: remove its track, clean its media
            from studio.io.session import Session
            from studio.model import edits

            s = Session.open(b)
            s.undo_stack.push(edits.RemoveTrack(s.project.tracks[-1].id))
            s.save()
            s.close()
            _recover(b)
        points = sorted({total, *rng.sample(range(1, total), min(3, total - 1))})
        reclaimed[kind] = 0
        for at in points:
            code, _ = _run(driver, at, *argv)
            assert code == -signal.SIGKILL, (kind, at, code)
            reclaimed[kind] += _recover(b)
            if kind == "export":
                reclaimed[kind] += sum(p.stat().st_size for p in live.glob(".*.tmp-*"))
                capsys.readouterr()
                assert main([str(a) for a in argv]) == 0  # the next export sweeps the dead one's temp files
                assert not [p for p in live.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    print(f"bytes reclaimed after kills: {reclaimed}; bytes left over: {_leftover(b)}")
    assert all(reclaimed.values()), reclaimed  # the kills did land mid-write
    assert _leftover(b) == 0


def test_kill_during_a_job_leaves_nothing_behind(setup, tmp_path):
    b, _, _ = setup
    rng = random.Random(5)
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "studio.cli.main", "separate", str(b), "--track", "pad",
                                 "--model", "dsp-hpss-centre"], env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            proc.wait(timeout=rng.uniform(1.5, 6.0))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and its engine host
            proc.wait()
        err = proc.stderr.read().decode()
        assert "Traceback" not in err, err
        print(f"job killed: {_recover(b)} bytes reclaimed")
    assert _leftover(b) == 0
