"""Mixdown speed: 16 stereo tracks x 5 minutes at 44.1 kHz, each with a 3-plug-in pedalboard chain.

Target (issue 2): offline mixdown >= 20x real time on a 2-core machine.

Set-up: four 5-minute stereo media items (music-like synthetic audio) are stored in a
real :class:`studio.media.pool.MediaPool` (float32 WAV, read through memmap, as in a project);
16 tracks each play one of them with a different offset, pan and gain. Two chains are
measured, both pedalboard plug-ins from the allow-list:

* ``reverb``: HighpassFilter(80 Hz) -> Compressor(-18 dB, 3:1) -> Reverb(room 0.5)
* ``eq``: PeakFilter(1 kHz, +3 dB) -> Compressor(-18 dB, 3:1) -> Gain(-2 dB)

Baselines measured in the same run:

* ``no plug-ins``: the same project rendered with empty chains (reading, fades, gain,
  pan, summing);
* ``chains alone``: each track's chain applied with pedalboard directly to its whole
  5-minute array, one track after the other (no project, no blocks, one thread).

Run: ``python benchmarks/mixdown_speed.py [--minutes 5] [--tracks 16] [--repeat 2]``.
Prints seconds (best of ``--repeat``), the real-time factor (project seconds / wall
seconds) and ratios. The media files are hot in the page cache. Because the machine
may be shared, it also prints the process CPU time and the real-time factor it implies
for idle cores (project seconds x cores / CPU seconds): a load-independent figure.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pedalboard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.audio.effects import build_chain  # noqa: E402
from studio.media.pool import MediaPool  # noqa: E402
from studio.model.project import AudioClip, Effect, Project, Track  # noqa: E402
from studio.audio.render import render_mix  # noqa: E402

SR = 44100
CHAINS = {
    "reverb": [Effect("HighpassFilter", {"cutoff_frequency_hz": 80.0}),
               Effect("Compressor", {"threshold_db": -18.0, "ratio": 3.0, "attack_ms": 5.0, "release_ms": 100.0}),
               Effect("Reverb", {"room_size": 0.5, "wet_level": 0.2, "dry_level": 0.8})],
    "eq": [Effect("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 3.0, "q": 1.0}),
           Effect("Compressor", {"threshold_db": -18.0, "ratio": 3.0, "attack_ms": 5.0, "release_ms": 100.0}),
           Effect("Gain", {"gain_db": -2.0})],
}


def music(frames: int, seed: int) -> np.ndarray:
    """Stereo tones with vibrato, a pulse and noise (float32, (2, frames))."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / SR
    f = 110.0 * (seed + 2)
    vib = 3 * np.sin(2 * np.pi * 5 * t)
    left = 0.2 * np.sin(2 * np.pi * (f + vib) * t)
    right = 0.2 * np.sin(2 * np.pi * (f * 1.25 + vib) * t)
    pulse = (np.sin(2 * np.pi * 2 * t) > 0.95) * 0.2
    noise = rng.standard_normal((2, frames)) * 0.02
    return (np.stack([left + pulse, right + pulse]) + noise).astype(np.float32)


def build(root: Path, minutes: float, tracks: int) -> tuple[Project, MediaPool, list[np.ndarray]]:
    frames = int(minutes * 60 * SR)
    pool = MediaPool(root / "media", SR)
    project = Project(name="bench", sample_rate=SR)
    items = []
    for k in range(4):
        item = pool.import_array(music(frames + SR, k), SR, name=f"src{k}.wav", peaks=False)
        project.media[item.id] = item
        items.append(item)
    for k in range(tracks):
        item = items[k % 4]
        offset = 997 * k
        project.tracks.append(Track(f"T{k + 1}", gain_db=-6.0, pan=(k % 5 - 2) / 2.0, clips=[
            AudioClip(item.id, 0, offset, frames, fade_in=441, fade_out=4410)]))
    arrays = [pool.read(items[k % 4], 997 * k, frames) for k in range(tracks)]
    return project, pool, arrays


def best_of(repeat: int, fn) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of this process over all threads)`` of the fastest run."""
    runs = []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    return min(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    audio_s = args.minutes * 60
    tmp = Path(tempfile.mkdtemp(prefix="mixdown-bench-"))
    try:
        project, pool, arrays = build(tmp / "Bench.seedproj", args.minutes, args.tracks)
        print(f"{args.tracks} stereo tracks x {args.minutes:g} min at {SR} Hz, {os.cpu_count()} CPU(s), "
              f"render threads = {min(8, os.cpu_count() or 1)}")
        ncpu = os.cpu_count() or 1
        for t in project.tracks:
            t.effects = []
        base, base_cpu = best_of(args.repeat, lambda: render_mix(project, pool))
        print(f"  baseline, no plug-ins        : {base:7.2f} s  {audio_s / base:7.1f}x real time"
              f"  (CPU {base_cpu:.2f} s)")
        ok = True
        for name, chain in CHAINS.items():
            for t in project.tracks:
                t.effects = [Effect(e.name, dict(e.params)) for e in chain]

            def alone() -> None:
                for a in arrays:
                    build_chain(chain, SR)(a, SR)

            alone_s, alone_cpu = best_of(args.repeat, alone)
            mix_s, mix_cpu = best_of(args.repeat, lambda: render_mix(project, pool))
            rtf = audio_s / mix_s
            ok &= rtf >= 20
            desc = " -> ".join(e.name for e in chain)
            print(f"  chain '{name}': {desc}")
            print(f"    chains alone (pedalboard) : {alone_s:7.2f} s  {audio_s / alone_s:7.1f}x real time"
                  f"  (CPU {alone_cpu:.2f} s)")
            print(f"    mixdown                   : {mix_s:7.2f} s  {rtf:7.1f}x real time  "
                  f"(target >= 20x: {'PASS' if rtf >= 20 else 'FAIL'})  (CPU {mix_cpu:.2f} s)")
            print(f"    CPU-time real-time factor : {audio_s / mix_cpu:7.1f}x per core, "
                  f"{audio_s * ncpu / mix_cpu:.1f}x for {ncpu} idle cores")
            print(f"    ratio mixdown / no plug-ins = {mix_s / base:.2f}, "
                  f"mixdown / chains alone = {mix_s / alone_s:.2f}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
