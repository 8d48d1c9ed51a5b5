"""Nothing silent: a corpus of bad inputs, generated here (no large files committed).

Every case goes through the real CLI (``main([...])`` in-process, or a subprocess where
the shell matters) and must end with exit code 1 (2 for argparse), one ``error:`` line that
names the file and the problem, no traceback, and ``project.json`` byte-identical.

Classes (issue 11): project.json variants that used to give tracebacks or hangs,
absurd-but-valid inputs (a 37-hour MIDI, tempo 0, positions of 1e12 samples, a 24 h+
WAV header), and CLI arguments that used to fail only after the work (or as tracebacks).
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.cli.main import main
from studio.io import project_io

REPO = Path(__file__).resolve().parents[1]
SR = 44100


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A project with one short audio track (generated), saved."""
    b = tmp_path / "Song.seedproj"
    assert main(["new", str(b), "--sample-rate", str(SR), "--bpm", "100"]) == 0
    wav = tmp_path / "tone.wav"
    t = np.arange(SR // 2) / SR
    sf.write(wav, np.stack([0.2 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32), SR)
    assert main(["import", str(b), str(wav)]) == 0
    return b


def run(capsys, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def doc(b: Path) -> dict:
    return json.loads((b / "project.json").read_text())


# ---------------------------------------------------------------- project.json variants
def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def variant(name: str, b: Path, tmp: Path) -> str:
    """Make ``b/project.json`` bad in the way ``name`` says; returns a word the error must hold."""
    d = doc(b)
    pj = b / "project.json"
    text = None
    if name == "deep-nesting":
        text = json.dumps(d).replace('"provenance": {}', '"provenance": {"x": ' + _nested(6000) + "}", 1)
        want = "nested deeper"
    elif name == "deep-nesting-shallow-enough-for-json":
        text = json.dumps(d).replace('"provenance": {}', '"provenance": {"x": ' + _nested(300) + "}", 1)
        want = "nested deeper"
    elif name == "nul-in-media-path":
        item = next(iter(d["media"].values()))
        item["path"] = item["path"][:10] + "\x00" + item["path"][10:]
        want = "NUL"
    elif name == "media-path-outside":
        next(iter(d["media"].values()))["path"] = "media/../../../etc/passwd"
        want = "outside the project folder"
    elif name == "schema0-bad-bpm":
        d.pop("tempo_map")
        d.update(schema_version=0, bpm="fast", time_signature=[4, 4])
        want = "schema-0 'bpm'"
    elif name == "schema0-bad-signature":
        d.pop("tempo_map")
        d.update(schema_version=0, bpm=100, time_signature="4/4")
        want = "time_signature"
    elif name == "schema0-zero-meter":
        d.pop("tempo_map")
        d.update(schema_version=0, bpm=100, time_signature=[0, 3])
        want = "schema 0"
    elif name == "lone-surrogate":
        text = json.dumps(d).replace('"name": "Song"', '"name": "So\\ud800ng"', 1)
        want = "lone surrogate"
    elif name == "bpm-1e-300":
        d["tempo_map"]["tempos"][0]["bpm"] = 1e-300
        want = "tempo_map.tempos[0].bpm"
    elif name == "gain-nan-string":
        d["tracks"][0]["gain_db"] = "nan"
        want = "gain_db"
    elif name == "pan-inf-string":
        d["tracks"][0]["pan"] = "inf"
        want = "pan"
    elif name == "gain-1e400":
        text = json.dumps(d).replace('"master_gain_db": 0.0', '"master_gain_db": 1e400', 1)
        want = "not finite"
    elif name == "NaN-literal":
        text = json.dumps(d).replace('"master_gain_db": 0.0', '"master_gain_db": NaN', 1)
        want = "not valid project JSON"
    elif name == "clip-start-1e12":
        d["tracks"][0]["clips"][0]["start"] = 10**12
        want = "start"
    elif name == "clip-length-1e12":
        d["tracks"][0]["clips"][0]["length"] = 10**12
        want = "length"
    elif name == "clip-past-24h":
        d["tracks"][0]["clips"][0]["start"] = 25 * 3600 * SR
        want = "24 h limit"
    elif name == "huge-int":
        d["tracks"][0]["clips"][0]["offset"] = 10**400
        want = "offset"
    elif name == "midi-clip-1e12-ticks":
        d["tracks"].append({"name": "m", "kind": "midi", "id": "m" * 32,
                            "clips": [{"type": "midi", "start": 0, "length": 10**12, "id": "c" * 32}]})
        want = "length"
    elif name == "note-pitch-300":
        d["tracks"].append({"name": "m", "kind": "midi", "id": "m" * 32,
                            "clips": [{"type": "midi", "start": 0, "length": 960, "id": "c" * 32,
                                       "notes": [{"pitch": 300, "velocity": 90, "start": 0, "length": 10}]}]})
        want = "pitch"
    elif name == "string-length":
        d["tracks"][0]["clips"][0]["length"] = "lots"
        want = "length"
    elif name == "sample-rate-0":
        d["sample_rate"] = 0
        want = "sample_rate"
    elif name == "empty-tempo-map":
        d["tempo_map"]["tempos"] = []
        want = "tempos"
    elif name == "top-level-array":
        text = "[1, 2, 3]"
        want = "top level"
    elif name == "garbage":
        text = "{ not json"
        want = "not valid project JSON"
    elif name == "latin1-bytes":
        pj.write_bytes(b'{"name": "caf\xe9"}')
        return "not valid project JSON"
    elif name == "newer-schema":
        d["schema_version"] = 99
        want = "newer Seed Studio"
    elif name == "control-point-1e300":
        d["tracks"][0]["control_lanes"] = {"dynamics": {"kind": "dynamics", "points": [[1e300, 0.0]]}}
        want = "points"
    elif name == "symlink-to-dev-zero":
        pj.unlink()
        os.symlink("/dev/zero", pj)
        return "symbolic link"
    elif name == "symlink-outside":
        outside = tmp / "elsewhere.json"
        outside.write_text(json.dumps(d))
        pj.unlink()
        os.symlink(outside, pj)
        return "symbolic link"
    elif name == "fifo":
        pj.unlink()
        os.mkfifo(pj)
        return "not a regular file"
    elif name == "folder":
        pj.unlink()
        pj.mkdir()
        return "not a regular file"
    elif name == "sparse-200MB":
        with open(pj, "r+b") as f:
            f.truncate(200 * 1024 * 1024)  # sparse: no disk space used
        return "MiB limit"
    elif name == "media-folder-symlink":
        media = b / "media"
        elsewhere = tmp / "elsewhere-media"
        media.rename(elsewhere)
        os.symlink(elsewhere, media)
        return "link"
    else:  # pragma: no cover
        raise AssertionError(name)
    pj.write_text(text if text is not None else json.dumps(d), encoding="utf-8", errors="surrogatepass")
    return want


VARIANTS = [
    "deep-nesting", "deep-nesting-shallow-enough-for-json", "nul-in-media-path", "media-path-outside",
    "schema0-bad-bpm", "schema0-bad-signature", "schema0-zero-meter", "lone-surrogate", "bpm-1e-300",
    "gain-nan-string", "pan-inf-string", "gain-1e400", "NaN-literal", "clip-start-1e12", "clip-length-1e12",
    "clip-past-24h", "huge-int", "midi-clip-1e12-ticks", "note-pitch-300", "string-length", "sample-rate-0",
    "empty-tempo-map", "top-level-array", "garbage", "latin1-bytes", "newer-schema", "control-point-1e300",
    "symlink-to-dev-zero", "symlink-outside", "fifo", "folder", "sparse-200MB", "media-folder-symlink",
]


def _snapshot(b: Path) -> dict[str, bytes | str]:
    pj = b / "project.json"
    if pj.is_symlink():
        return {"link": os.readlink(pj)}
    if not pj.is_file():
        return {"kind": "not a file"}
    return {"bytes": pj.read_bytes() if pj.stat().st_size < 1 << 20 else str(pj.stat())}


@pytest.mark.parametrize("name", VARIANTS)
def test_project_json_variants_are_refused_clearly(name, bundle, tmp_path, capsys):
    want = variant(name, bundle, tmp_path)
    before = _snapshot(bundle)
    for argv in (["info", bundle], ["tempo", bundle, "--bpm", "90"], ["render", bundle, tmp_path / "o.wav"],
                 ["verify", bundle], ["clean", bundle]):
        code, err = run(capsys, *argv)
        assert code == 1, (name, argv, err)
        assert err.startswith("error: ") and ("project.json" in err or "media" in err), (name, argv, err)
        assert want in err, (name, argv, err)
        assert _snapshot(bundle) == before, (name, argv)
    assert not (tmp_path / "o.wav").exists()


def test_variants_load_through_the_session_too(bundle, tmp_path):
    """The app opens through Session.open: same refusal, the lock given back, no record left."""
    from studio.errors import ProjectError
    from studio.io import lock as writer_lock
    from studio.io.session import Session

    variant("deep-nesting", bundle, tmp_path)
    before = (bundle / "project.json").read_bytes()
    with pytest.raises(ProjectError, match="nested deeper"):
        Session.open(bundle)
    assert (bundle / "project.json").read_bytes() == before
    assert not (bundle / writer_lock.HOLDER_FILE).exists()
    writer_lock.acquire(bundle).release()  # not held any more
    fifo_folder = tmp_path / "NotAProject"
    fifo_folder.mkdir()
    with pytest.raises(ProjectError, match="not found"):
        Session.open(fifo_folder)
    assert list(fifo_folder.iterdir()) == []  # a folder that holds no project gets no lock file


# ---------------------------------------------------------------- absurd but valid inputs
def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _smf(track: bytes, ppq: int = 96) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, ppq) + b"MTrk" + struct.pack(">I", len(track)) + track


def test_midi_lasting_days_and_tempo_zero_are_refused(bundle, tmp_path, capsys):
    long = tmp_path / "long.mid"  # one note, then a delta of 0x0FFFFFFF ticks
    long.write_bytes(_smf(b"\x00\x90\x3c\x40" + _vlq(0x0FFFFFFF) + b"\x80\x3c\x40\x00\xff\x2f\x00", ppq=960))
    zero = tmp_path / "tempo0.mid"  # set_tempo of 0 microseconds per quarter note
    zero.write_bytes(_smf(b"\x00\xff\x51\x03\x00\x00\x00\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"))
    fast = tmp_path / "tempo1us.mid"  # 60,000,000 BPM
    fast.write_bytes(_smf(b"\x00\xff\x51\x03\x00\x00\x01\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"))
    before = (bundle / "project.json").read_bytes()
    for path, want in ((long, "24 h"), (zero, "0 µs per quarter note"), (fast, "1-1000 BPM")):
        code, err = run(capsys, "import", bundle, path)
        assert code == 1 and path.name in err and want in err, err
        assert (bundle / "project.json").read_bytes() == before


def _huge_wav_header(path: Path, seconds: float, rate: int = 8000) -> None:
    """A valid 8-bit mono WAV whose data is ``seconds`` long, as a sparse file (no disk used)."""
    frames = int(seconds * rate)
    header = (b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
              + b"data" + struct.pack("<I", frames))
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + frames)


def test_audio_past_24_hours_is_refused_before_decoding(bundle, tmp_path, capsys):
    wav = tmp_path / "day.wav"
    _huge_wav_header(wav, 25 * 3600.0)
    before = (bundle / "project.json").read_bytes()
    code, err = run(capsys, "import", bundle, wav)
    assert code == 1 and "day.wav" in err and "24 h project limit" in err, err
    code, err = run(capsys, "import", bundle, bundle.parent / "tone.wav", "--at", "90000")
    assert code == 1 and "--at" in err, err
    assert (bundle / "project.json").read_bytes() == before
    assert not project_io.find_temp_files(bundle)


def test_large_import_is_announced_before_it_starts(bundle, tmp_path, capsys, monkeypatch):
    import studio.limits

    flac = tmp_path / "silence.flac"
    sf.write(flac, np.zeros((8000 * 20, 1), np.float32), 8000)  # 20 s of silence: a few kB of FLAC
    monkeypatch.setattr(studio.limits, "LARGE_IMPORT_BYTES", 1_000_000)
    code, err = run(capsys, "import", bundle, flac)
    assert code == 0
    # 20 s at 44.1 kHz mono float32 = 3.5 MB in the media folder, announced by name
    assert "warning: '" in err and "silence.flac" in err and "3.5 MB" in err, err


def test_absurd_edit_past_24_hours_is_refused(tmp_path):
    from studio.errors import CommandError
    from studio.io.session import Session
    from studio.model import edits
    from studio.model.project import MidiClip, Note, Track

    s = Session.create(tmp_path / "E", sample_rate=SR)
    track = Track("keys", kind="midi")
    s.undo_stack.push(edits.AddTrack(track))
    day = 120 * 960 * 60 * 24 * 2  # 48 h of ticks at 120 BPM
    with pytest.raises(CommandError, match="24 h limit"):
        s.undo_stack.push(edits.AddClip(track.id, MidiClip(0, day, [Note(60, 90, 0, 960)])))
    assert s.project.tracks[0].clips == []
    s.close()


# ---------------------------------------------------------------- CLI arguments
def test_cli_arguments_are_checked_before_the_work(bundle, tmp_path, capsys):
    before = (bundle / "project.json").read_bytes()
    cases = [
        (["render", bundle, tmp_path / "no" / "such" / "mix.wav"], "does not exist"),
        (["render", bundle, tmp_path / "mix.mp3"], ".mp3"),
        (["render", bundle, tmp_path / "mix.flac", "--bit-depth", "float"], "FLAC"),
        (["render", bundle, tmp_path, "--end", "1"], "is a folder"),
        (["render", bundle, tmp_path / "mix.wav", "--start", "20", "--end", "10"], "--end 10 s is not after --start 20 s"),
        (["render", bundle, tmp_path / "mix.wav", "--start", "nan"], "--start nan"),
        (["render", bundle, tmp_path / "mix.wav", "--start", "-5"], "--start -5"),
        (["render", bundle, tmp_path / "mix.wav", "--tail", "1e9"], "--tail"),
        (["export", bundle, tmp_path / "exp", "--start", "20", "--end", "10"], "--end 10 s is not after --start 20 s"),
        (["export", bundle, bundle / "project.json"], "is a file"),
        (["new", tmp_path / "A", "--bpm", "0"], "--bpm 0"),
        (["new", tmp_path / "B", "--bpm", "1e-300"], "--bpm"),
        (["new", tmp_path / "C", "--meter", "0/4"], "bad meter"),
        (["new", tmp_path / "D", "--sample-rate", "5"], "--sample-rate 5"),
        (["tempo", bundle, "--bpm", "1e-300"], "BPM"),
        (["import", bundle, tmp_path / "missing.wav"], "missing.wav"),
        (["import", bundle, bundle.parent / "tone.wav", "--at", "-1"], "--at -1"),
    ]
    for argv, want in cases:
        code, err = run(capsys, *argv)
        assert code == 1 and want in err and err.startswith("error: "), (argv, err)
    assert (bundle / "project.json").read_bytes() == before
    assert not (tmp_path / "mix.wav").exists() and not (tmp_path / "exp").exists()
    assert not any((tmp_path / n).exists() for n in ("A.seedproj", "B.seedproj", "C.seedproj", "D.seedproj"))


def test_info_into_a_closed_pipe_is_quiet(bundle):
    """``seed-studio info P | head -0``: the reader is gone before we write."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r, w = os.pipe()
    os.close(r)  # nobody will read
    proc = subprocess.run([sys.executable, "-m", "studio.cli.main", "info", str(bundle)], stdout=w,
                          stderr=subprocess.PIPE, env=env, timeout=120)
    os.close(w)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 0


def test_render_of_a_long_range_streams_to_the_file(bundle, tmp_path, capsys):
    """A render is written block by block: 10 minutes of (mostly silent) mix, checked by length."""
    out = tmp_path / "long.flac"
    code, _ = run(capsys, "render", bundle, out, "--end", "600", "--bit-depth", "16")
    assert code == 0
    assert sf.info(str(out)).frames == 600 * SR
