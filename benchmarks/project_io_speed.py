"""Save and load speed of a large project bundle (issue 2 target: 64 tracks, 2,000 clips, <= 0.5 s each).

Baseline in the same run: plain ``json.dumps``/``json.loads`` of the same data with no
validation and no atomic write, so the ratio shows what validation + fsync cost.

    python benchmarks/project_io_speed.py [--tracks 64] [--clips 2000]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.io import project_io  # noqa: E402
from studio.model.project import AudioClip, Effect, MediaItem, MidiClip, Note, Project, Track  # noqa: E402


def build(tracks: int, clips: int) -> Project:
    p = Project(name="Big", sample_rate=48000)
    for m in range(32):
        mid = f"{m:064x}"
        p.media[mid] = MediaItem(mid, f"media/{mid}.wav", 48000, 2, 48000 * 300, f"take{m}.wav", "0" * 64, 44100)
    ids = list(p.media)
    per = clips // tracks
    for t in range(tracks):
        midi = t % 8 == 7
        tr = Track(f"Track {t + 1}", kind="midi" if midi else "audio",
                   effects=[Effect("Compressor", {"threshold_db": -18.0}), Effect("Reverb", {"room_size": 0.4})])
        for c in range(per + (1 if t < clips % tracks else 0)):
            if midi:
                tr.clips.append(MidiClip(c * 3840, 3840, [Note(60 + k % 12, 100, k * 240, 240) for k in range(16)]))
            else:
                tr.clips.append(AudioClip(ids[(t + c) % 32], c * 48000, c * 100, 40000, fade_in=100, fade_out=100))
        p.tracks.append(tr)
    return p


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tracks", type=int, default=64)
    ap.add_argument("--clips", type=int, default=2000)
    args = ap.parse_args()
    p = build(args.tracks, args.clips)
    n_clips = sum(len(t.clips) for t in p.tracks)
    with tempfile.TemporaryDirectory() as d:
        b = Path(d) / "Big.seedproj"
        save = timed(lambda: project_io.save_project(p, b))
        load = timed(lambda: project_io.load_project(b))
        size = (b / "project.json").stat().st_size
        data = p.to_dict()
        base_dump = timed(lambda: (Path(d) / "plain.json").write_text(json.dumps(data)))
        base_load = timed(lambda: json.loads((Path(d) / "plain.json").read_text()))
    print(f"project: {args.tracks} tracks, {n_clips} clips, project.json {size / 1e6:.2f} MB")
    print(f"save (atomic, fsync):     {save * 1000:7.1f} ms   target <= 500 ms  {'OK' if save <= 0.5 else 'MISS'}")
    print(f"load (parse + validate):  {load * 1000:7.1f} ms   target <= 500 ms  {'OK' if load <= 0.5 else 'MISS'}")
    print(f"baseline plain json dump: {base_dump * 1000:7.1f} ms   save/baseline = {save / base_dump:.2f}x")
    print(f"baseline plain json load: {base_load * 1000:7.1f} ms   load/baseline = {load / base_load:.2f}x")


if __name__ == "__main__":
    main()
