"""The project bundle: lossless save/load, crash safety, migrations, bad project files, autosave."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.io import project_io
from studio.errors import ProjectError
from studio.model.project import (
    AudioClip, ControlLane, Effect, MediaItem, MidiClip, Note, Project, Region, Take, TakeGroup, Track,
)
from studio.model.timebase import TempoChange, TempoMap, TimeSignature

REPO = Path(__file__).resolve().parents[1]


def rich_project(n_tracks: int = 3, clips_per_track: int = 2) -> Project:
    p = Project(name="Rich ünïcode", sample_rate=48000,
                tempo_map=TempoMap([TempoChange(0, 80), TempoChange(7680, 92.5)],
                                   [TimeSignature(0, 4, 4), TimeSignature(7680, 7, 8)]))
    p.media["a" * 64] = MediaItem("a" * 64, f"media/{'a' * 64}.wav", 48000, 2, 10_000_000, "song.flac", "b" * 64, 44100)
    for t in range(n_tracks):
        tr = Track(f"Track {t}", kind="audio", gain_db=-t * 0.5, pan=0.1, mute=t == 1,
                   effects=[Effect("Compressor", {"threshold_db": -12.0, "ratio": 4.0})])
        for c in range(clips_per_track):
            tr.clips.append(AudioClip("a" * 64, c * 1000, c, 900, gain_db=-1.0, fade_in=10, fade_out=20, name=f"c{c}"))
        tr.take_groups.append(TakeGroup(0, 500, [Take("t", [AudioClip("a" * 64, 0, 0, 500)], {"seed": 7})]))
        tr.control_lanes["dynamics"] = ControlLane("dynamics", [[0, -20.0], [100, -6.5]], "drawn")
        p.tracks.append(tr)
    m = Track("Keys", kind="midi", program=5, is_drum=False)
    m.clips.append(MidiClip(960, 3840, [Note(60, 100, 0, 480), Note(67, 64, 480, 480)]))
    p.tracks.append(m)
    p.regions.append(Region("verse", 0, 48000))
    p.loop = Region("loop", 100, 200)
    return p


def test_save_load_is_lossless(tmp_path):
    p = rich_project()
    b = tmp_path / "Song.seedproj"
    project_io.save_project(p, b)
    q = project_io.load_project(b)
    assert q == p
    assert q.to_dict() == p.to_dict()
    # saving the loaded project gives the identical file
    first = (b / "project.json").read_bytes()
    project_io.save_project(q, b)
    assert (b / "project.json").read_bytes() == first


def test_migration_from_schema_0(tmp_path):
    b = tmp_path / "Old.seedproj"
    project_io.init_bundle(b)
    d = Project(name="old").to_dict()
    del d["tempo_map"]
    d.update(schema_version=0, bpm=97.0, time_signature=[3, 4])
    (b / "project.json").write_text(json.dumps(d))
    p = project_io.load_project(b)
    assert p.tempo_map.bpm_at(0) == 97.0 and p.tempo_map.signatures[0].numerator == 3


def _write(b: Path, data) -> None:
    project_io.init_bundle(b)
    (b / "project.json").write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize("case,message", [
    ("outside", "outside the project folder"),
    ("absolute", "outside the project folder"),
    ("newer", "newer Seed Studio"),
    ("garbage", "not valid project JSON"),
    ("nan", "not valid project JSON"),
    ("malformed", "damaged or malformed"),
    ("array", "top level is not an object"),
])
def test_bad_project_json_is_refused_clearly(tmp_path, case, message):
    b = tmp_path / f"{case}.seedproj"
    d = json.loads(project_io.project_to_json(rich_project(1, 1)))
    item = next(iter(d["media"].values()))
    if case == "outside":
        item["path"] = "media/../../../etc/passwd"
    elif case == "absolute":
        item["path"] = str(tmp_path / "elsewhere.wav")
    elif case == "newer":
        d["schema_version"] = project_io.SCHEMA_VERSION + 1
    elif case == "malformed":
        d["tracks"][0]["clips"][0]["length"] = "lots"
    if case == "garbage":
        _write(b, "{ this is not json")
    elif case == "nan":
        _write(b, project_io.project_to_json(Project()).replace('"master_gain_db": 0.0', '"master_gain_db": NaN'))
    elif case == "array":
        _write(b, "[1, 2, 3]")
    else:
        _write(b, d)
    before = (b / "project.json").read_bytes()
    with pytest.raises(ProjectError) as err:
        project_io.load_project(b)
    assert message in str(err.value)
    assert "project.json" in str(err.value)
    assert (b / "project.json").read_bytes() == before  # loading never modifies the bundle


def test_symlink_escape_is_refused(tmp_path):
    b = tmp_path / "Link.seedproj"
    p = rich_project(1, 1)
    project_io.save_project(p, b)
    item = next(iter(p.media.values()))
    (tmp_path / "secret.wav").write_bytes(b"x")
    os.symlink(tmp_path / "secret.wav", b / item.path)
    with pytest.raises(ProjectError, match="outside the project folder"):
        project_io.load_project(b)


CRASH_SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from engines import files as atomic
    from studio.io import project_io
    from tests.test_project_io import rich_project
    atomic.CHUNK_BYTES = 32 * 1024
    target = int(sys.argv[2])
    seen = [0]
    def hook(step):
        seen[0] += 1
        if seen[0] == target:
            os._exit(17)  # die like a crash: no cleanup, no flush
    p = rich_project(64, 40)
    p.name = "NEW"
    atomic.set_crash_hook(hook)
    project_io.save_project(p, sys.argv[1])
    os._exit(0 if target > seen[0] else 3)
""")


def test_crash_at_every_point_of_a_save_leaves_old_or_new(tmp_path):
    b = tmp_path / "Crash.seedproj"
    old = rich_project(2, 2)
    old.name = "OLD"
    project_io.save_project(old, b)
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT.format(repo=str(REPO)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    points, states = 0, set()
    for target in range(1, 200):
        r = subprocess.run([sys.executable, str(script), str(b), str(target)], env=env, capture_output=True)
        if r.returncode == 0:  # the save finished before reaching this step
            break
        assert r.returncode == 17, r.stderr.decode()
        points += 1
        p = project_io.load_project(b)  # always loads
        assert p.name in ("OLD", "NEW")
        states.add(p.name)
    assert points >= 20
    assert states == {"OLD", "NEW"}
    # a real SIGKILL at random moments during repeated saves
    killer = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from studio.io import project_io
        from tests.test_project_io import rich_project
        p = rich_project(64, 40)
        i = 0
        while True:
            i += 1
            p.name = f"N{{i}}"
            project_io.save_project(p, {str(b)!r})
    """)
    for delay in (0.3, 0.45, 0.6, 0.75, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", killer], env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        p = project_io.load_project(b)
        assert p.name == "OLD" or p.name.startswith("N") or p.name == "NEW"


def test_autosave_and_recovery(tmp_path):
    b = tmp_path / "Auto.seedproj"
    p = rich_project(1, 1)
    project_io.save_project(p, b)
    assert project_io.recovery_candidate(b) is None
    time.sleep(0.01)
    p.name = "edited after save"
    for _ in range(7):
        path = project_io.autosave(p, b)
    assert len(list((b / "autosave").glob("autosave-*.json"))) == project_io.AUTOSAVE_KEEP
    cand = project_io.recovery_candidate(b)
    assert cand == path
    assert project_io.load_autosave(b, cand).name == "edited after save"
    # a damaged newest autosave is skipped, not offered
    bad = b / "autosave" / "autosave-99999999-999999-999999999.json"
    bad.write_text("{ broken")
    assert project_io.recovery_candidate(b) == path


def test_lock_detects_crashed_session(tmp_path):
    from studio.io import lock as writer_lock

    b = tmp_path / "Lock.seedproj"
    project_io.save_project(Project(), b)
    first = writer_lock.acquire(b)
    assert first.crashed is False  # first open
    first.release()
    assert not (b / writer_lock.HOLDER_FILE).exists()  # a clean close leaves no record
    proc = subprocess.run([sys.executable, "-c", f"import sys, os; sys.path.insert(0, {str(REPO)!r});"
                           f"from studio.io import lock; lock.acquire({str(b)!r}); os._exit(0)"])
    assert proc.returncode == 0  # that process "crashed": exited without releasing
    again = writer_lock.acquire(b)  # the OS released its lock: no stale lock blocks us
    assert again.crashed is True
    again.release()
    last = writer_lock.acquire(b)
    assert last.crashed is False
    last.release()
