"""The task commands of the CLI: one job path through the engine host process, flags from
the request schemas, clear errors, and the host's crash and hang handling seen from the CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.cli.main import build_parser, main
from studio.tasks import all_tasks

REPO = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    """Engine host processes whose parent is ``pid`` (from /proc): spawned children running
    ``multiprocessing.spawn`` (the resource tracker, also a child, is not one)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            out.append(int(stat.parent.name))
    return out


@pytest.fixture
def song_project(tmp_path, shared):
    bundle = tmp_path / "Song.seedproj"
    assert main(["new", str(bundle), "--sample-rate", "44100"]) == 0
    assert main(["import", str(bundle), str(shared / "audio" / "uncertain_future_30s.flac")]) == 0
    return bundle


def _run_cli(args: list[str], env: dict | None = None) -> subprocess.Popen:
    e = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "studio.cli.main", *args], cwd=str(REPO), env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_host(proc: subprocess.Popen, busy_seconds: float) -> int:
    """The engine host child of ``proc``, once it has existed for ``busy_seconds``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if kids:
            time.sleep(busy_seconds)
            return kids[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the CLI started no engine host process")


def test_separate_runs_in_a_host_child_process_and_a_killed_host_is_a_clear_error(song_project):
    before = (song_project / "project.json").read_bytes()
    proc = _run_cli(["separate", str(song_project), "--track", "1", "--model", "dsp"])
    host = _wait_for_host(proc, 1.0)
    assert host != proc.pid
    os.kill(host, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "engine host died" in err and "SIGKILL" in err and "nothing was added" in err
    assert "Traceback" not in err
    assert (song_project / "project.json").read_bytes() == before


def test_a_stopped_host_is_reported_as_not_responding(song_project):
    before = (song_project / "project.json").read_bytes()
    proc = _run_cli(["separate", str(song_project), "--track", "1", "--model", "dsp"],
                    env={"SEED_STUDIO_HOST_HANG_TIMEOUT": "3"})
    host = _wait_for_host(proc, 0.5)
    os.kill(host, signal.SIGSTOP)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        try:
            os.kill(host, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 1, (out, err)
    assert "stopped responding" in err and "limit 3 s" in err and "Traceback" not in err
    assert (song_project / "project.json").read_bytes() == before


def test_separate_on_a_project_adds_stems_in_one_step(song_project, capsys):
    from studio.io.project_io import load_project

    assert main(["separate", str(song_project), "--track", "1", "--model", "dsp", "--stems", "vocals",
                 "--start", "2", "--end", "4"]) == 0
    p = load_project(song_project)
    assert [t.provenance.get("stem") for t in p.tracks[1:]] == ["vocals", "instrumental"]
    clip = p.tracks[1].take_groups[0].takes[0].clips[0]
    assert (clip.start, clip.length) == (2 * 44100, 2 * 44100)
    assert "2 stem(s)" in capsys.readouterr().out


def test_every_model_backed_command_documents_model_path_and_its_fields():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    for task in all_tasks():
        cmd = task.name.replace("_", "-")
        assert cmd in sub, cmd
        text = sub[cmd].format_help()
        assert "--model-path" in text and "--model " in text and "--seed" in text, cmd
        for field, prop in task.field_schema(None).items():
            flag = "--melody-from" if field == "controls" else "--" + field.replace("_", "-")
            assert flag in text, (cmd, field)
        assert ":meth:" not in text and "``" not in text  # plain words, not reST


def test_bad_flags_are_clear_errors_before_any_work(song_project, capsys, tmp_path):
    before = (song_project / "project.json").read_bytes()
    assert main(["separate", str(song_project), "--track", "1", "--model", "dsp", "--shifts", "2"]) == 1
    assert "--shifts is a setting of htdemucs, not of dsp-separation" in capsys.readouterr().err
    assert main(["separate", str(song_project), "--model", "dsp"]) == 1
    assert "give --track" in capsys.readouterr().err
    assert main(["separate", str(song_project), "--track", "9", "--model", "dsp"]) == 1
    assert "no track named '9'" in capsys.readouterr().err
    assert main(["separate", str(song_project), "--track", "1", "--model", "dsp", "--start", "5", "--end", "2"]) == 1
    assert "--end must be after --start" in capsys.readouterr().err
    assert main(["separate", str(song_project), "--track", "1", "--model", "dsp",
                 "--model-path", str(tmp_path / "nowhere")]) == 1
    assert "can't load a model folder" in capsys.readouterr().err
    assert main(["separate", str(song_project), "--track", "1", "--model-path", str(tmp_path / "nowhere")]) == 1
    assert "nowhere' does not exist" in capsys.readouterr().err
    assert (song_project / "project.json").read_bytes() == before


def test_the_host_exits_when_the_cli_is_killed(song_project):
    proc = _run_cli(["separate", str(song_project), "--track", "1", "--model", "dsp"])
    host = _wait_for_host(proc, 0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{host}").exists():
        stat = Path(f"/proc/{host}/stat").read_text() if Path(f"/proc/{host}/stat").exists() else ""
        if " Z " in stat:  # a zombie has exited
            break
        time.sleep(0.1)
    alive = Path(f"/proc/{host}/stat").exists() and " Z " not in Path(f"/proc/{host}/stat").read_text()
    assert not alive


def test_no_command_shows_raw_docstring_markup_in_its_help():
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        texts = [sub.format_help()]
        for action in sub._actions:
            if isinstance(getattr(action, "choices", None), dict):
                texts += [s.format_help() for s in action.choices.values()]
        for text in texts:
            assert "``" not in text and ":meth:" not in text and ":func:" not in text and ":mod:" not in text, name
