"""Import speed: a 10-minute 48 kHz stereo file imported into the media pool with its peak cache.

Target (issue 2): import + peak cache >= 100x real time on a 2-core machine.

The file is synthesised (tones with vibrato, a pulse and noise, so FLAC has real
work to do) and written as 16-bit FLAC and 24-bit WAV. Each is imported with
``MediaPool.import_file`` (decode, validate, resample with soxr VHQ where needed,
write the float32 WAV, sha256, peak cache) into a fresh 48 kHz pool (no resampling)
and a fresh 44.1 kHz pool (resampling). The baseline, measured in the same run, is
a plain ``soundfile.read`` of the same file into float32.

Run: ``python benchmarks/import_speed.py [--minutes 10] [--repeat 2]``.
Prints wall seconds, the real-time factor (audio seconds / wall seconds), the ratio
to the baseline, and the process CPU seconds (all threads) with audio seconds per
CPU second, which shows the work itself when other jobs share the cores; best of
``--repeat`` runs. Source files are hot in the page cache.
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
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.media.pool import MediaPool  # noqa: E402

SR = 48000


def synthesise(path_flac: Path, path_wav: Path, minutes: float) -> None:
    """Write the same music-like stereo signal as 16-bit FLAC and 24-bit WAV, in 10 s chunks."""
    frames = int(minutes * 60 * SR)
    rng = np.random.default_rng(0)
    with sf.SoundFile(path_flac, "w", SR, 2, "PCM_16", format="FLAC") as fl, \
            sf.SoundFile(path_wav, "w", SR, 2, "PCM_24", format="WAV") as wv:
        for a in range(0, frames, 10 * SR):
            t = np.arange(a, min(a + 10 * SR, frames)) / SR
            vib = 3 * np.sin(2 * np.pi * 5 * t)
            left = 0.25 * np.sin(2 * np.pi * (220 + vib) * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
            right = 0.25 * np.sin(2 * np.pi * (277 + vib) * t) + 0.1 * np.sin(2 * np.pi * 1100 * t)
            pulse = (np.sin(2 * np.pi * 2 * t) > 0.95) * 0.2
            noise = rng.standard_normal((2, t.size)) * 0.03
            block = np.stack([left + pulse, right + pulse]) + noise
            fl.write(block.T)
            wv.write(block.T)


def best_of(repeat: int, fn) -> tuple[float, float]:
    """Best wall-clock seconds of ``repeat`` runs, and the process CPU seconds (all threads) of that run."""
    runs = []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - w0, time.process_time() - c0))
    return min(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic file (default 10)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per case; the best is reported (default 2)")
    args = ap.parse_args(argv)
    seconds = args.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="seed-import-bench-"))
    try:
        flac, wav = work / "long.flac", work / "long.wav"
        synthesise(flac, wav, args.minutes)
        print(f"file: {args.minutes:g} min, 48 kHz stereo; FLAC {flac.stat().st_size / 1e6:.0f} MB, "
              f"WAV {wav.stat().st_size / 1e6:.0f} MB; cores: {os.cpu_count()}, "
              f"load average at start: {os.getloadavg()[0]:.2f}")
        print(f"{'case':<34}{'wall s':>8}{'x real time':>13}{'vs baseline':>13}{'CPU s':>8}{'x RT per CPU s':>16}")
        worst = float("inf")
        for src in (flac, wav):
            base, base_cpu = best_of(args.repeat, lambda: sf.read(src, dtype="float32"))
            print(f"{'baseline soundfile.read ' + src.suffix[1:].upper():<34}{base:8.2f}{seconds / base:13.0f}"
                  f"{1.0:13.2f}{base_cpu:8.2f}{seconds / base_cpu:16.0f}")
            for rate in (48000, 44100):
                def run() -> None:
                    bundle = work / f"b{rate}.seedproj"
                    shutil.rmtree(bundle, ignore_errors=True)
                    pool = MediaPool(bundle / "media", rate)
                    item = pool.import_file(src)
                    assert item.frames == round(seconds * rate)
                    assert (bundle / "cache" / "peaks" / f"{item.id}.npz").is_file()

                t, cpu = best_of(args.repeat, run)
                worst = min(worst, seconds / t)
                name = f"import+peaks {src.suffix[1:].upper()} -> {rate / 1000:g} kHz"
                print(f"{name:<34}{t:8.2f}{seconds / t:13.0f}{t / base:13.2f}{cpu:8.2f}{seconds / cpu:16.0f}")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        print(f"slowest case: {worst:.0f}x real time (target >= 100x): {'PASS' if worst >= 100 else 'FAIL'}")
        return 0 if worst >= 100 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
