"""Compile librosa's numba kernels once, in one process, before anything runs in parallel.

librosa jit-compiles its kernels with ``numba`` and caches the machine code beside
its sources (``cache=True``). Two processes compiling the same kernel at the same
time (the app and its engine host, or parallel test workers) can leave a damaged
cache entry that crashes every later process with a segmentation fault. Running
this once after install (``installer/install.sh`` does) fills the cache from a
single process, so later processes only read it. It also takes the 10-20 s
first-call compile out of the musician's first analysis.

    python -m engines.analysis.warmup
"""
from __future__ import annotations

import time

import numpy as np


def warm_up(sample_rate: int = 22050, seconds: float = 6.0) -> float:
    """Run every librosa path the analysis and separation engines use on a short
    synthetic signal (clicks at 120 BPM over a C major chord). Returns seconds taken."""
    import librosa

    from engines.analysis.beats import track_beats_dsp
    from engines.analysis.key import estimate_key

    t0 = time.perf_counter()
    n = int(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    y = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    y[:: sample_rate // 2] += 0.8
    y = y.astype(np.float32)
    stereo = np.stack([y, y])
    track_beats_dsp(stereo, sample_rate)
    estimate_key(stereo, sample_rate)
    librosa.beat.beat_track(y=y, sr=sample_rate)
    librosa.onset.onset_strength(y=y, sr=sample_rate)
    librosa.feature.chroma_cqt(y=y, sr=sample_rate)
    librosa.decompose.hpss(librosa.stft(y))
    librosa.pyin(y[: sample_rate * 2], fmin=80, fmax=1000, sr=sample_rate)
    return time.perf_counter() - t0


def main() -> None:
    took = warm_up()
    print(f"librosa kernels compiled and cached ({took:.1f} s)")


if __name__ == "__main__":
    main()
