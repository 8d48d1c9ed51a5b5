"""Offline DSP separation (engines.separation.dsp): blocked processing equals one batch."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from engines.base import CancelToken, InvalidJob, JobCancelled
from engines.separation.dsp import DSP_SOURCES, separate_dsp

SR = 44100


@pytest.fixture(scope="module")
def mix(shared) -> np.ndarray:
    """10 s of the real stereo test mixture, ``(2, frames)`` float32 at 44.1 kHz."""
    path = shared / "multitrack" / "blupi001" / "mixture.flac"
    with sf.SoundFile(str(path)) as f:
        assert f.samplerate == SR
        f.seek(4 * SR)
        x = f.read(10 * SR, dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.T)


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert list(a) == list(b) == DSP_SOURCES
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype == np.float32
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


def _sum_error(stems: dict[str, np.ndarray], x: np.ndarray) -> float:
    return float(np.abs(sum(v.astype(np.float64) for v in stems.values()) - x).max())


def test_blocks_equal_one_batch_on_real_audio(mix):
    x = mix[:, : 4 * SR]
    ref = separate_dsp(x, SR, block_seconds=None)
    assert _sum_error(ref, x) < 1e-5
    for block in (1.0, 0.77):
        got = separate_dsp(x, SR, block_seconds=block)
        assert _max_diff(got, ref) < 1e-6, block
        assert _sum_error(got, x) < 1e-5
    # the stems are not trivial: every one carries some of the signal
    assert all(float(np.abs(ref[k]).max()) > 1e-3 for k in DSP_SOURCES)


@pytest.mark.parametrize("channels, frames, block", [(2, SR * 3 + 17, 1.0), (1, SR * 2 + 1023, 0.77), (1, 5000, 0.01)])
def test_odd_lengths_and_mono(mix, channels, frames, block):
    x = np.ascontiguousarray(mix[:channels, :frames])
    ref = separate_dsp(x, SR, block_seconds=None)
    got = separate_dsp(x, SR, block_seconds=block)
    assert all(v.shape == (channels, frames) for v in got.values())
    assert _max_diff(got, ref) < 1e-6
    assert _sum_error(got, x) < 1e-5


def test_mono_1d_input_and_short_input(mix):
    x = mix[0, : SR // 2]  # 1-D = mono, far shorter than the default 30 s block
    one = separate_dsp(x, SR)
    assert all(v.shape == (1, x.size) for v in one.values())
    assert _max_diff(one, separate_dsp(x, SR, block_seconds=None)) == 0.0
    assert _max_diff(one, separate_dsp(x, SR, block_seconds=3600.0)) == 0.0
    tiny = separate_dsp(mix[:, :100], SR, block_seconds=0.01)  # shorter than one STFT window
    assert _max_diff(tiny, separate_dsp(mix[:, :100], SR, block_seconds=None)) < 1e-6
    assert _sum_error(tiny, mix[:, :100]) < 1e-5


def test_long_harmonic_kernel_widens_context(mix):
    # a harmonic kernel wider than the default 32-frame context must still give exact blocks
    x = np.ascontiguousarray(mix[:1, : 3 * SR // 2])
    kw = dict(kernel_size=(81, 31))
    assert _max_diff(separate_dsp(x, SR, block_seconds=0.3, **kw), separate_dsp(x, SR, block_seconds=None, **kw)) < 1e-6


def test_progress_per_block_and_cancel_between_blocks():
    x = (0.1 * np.random.default_rng(1).standard_normal((2, 3 * SR))).astype(np.float32)
    seen: list[tuple[float, str]] = []
    separate_dsp(x, SR, block_seconds=0.5, progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0
    assert seen[-1] == (1.0, "done")
    n_blocks = sum(1 for _, s in seen if s.startswith("analysing"))
    assert n_blocks == 6  # 3 s in ~0.5 s blocks (rounded to whole hops)
    assert all(f"block {n_blocks}/{n_blocks}" in s for _, s in seen[-5:-1])

    token = CancelToken()
    calls: list[tuple[float, str]] = []

    def cancel_at_block_2(f: float, stage: str) -> None:
        calls.append((f, stage))
        if "block 2/" in stage:
            token.cancel()

    with pytest.raises(JobCancelled):
        separate_dsp(x, SR, block_seconds=0.5, progress=cancel_at_block_2, cancel=token)
    assert calls[-1][1].startswith("analysing (block 2/")  # stopped before finishing block 2
    assert max(f for f, _ in calls) < 2 / n_blocks

    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        separate_dsp(x, SR, cancel=token)


def test_invalid_input():
    good = np.zeros((2, SR), dtype=np.float32)
    with pytest.raises(InvalidJob):
        separate_dsp(np.zeros((3, SR), dtype=np.float32), SR)
    with pytest.raises(InvalidJob):
        separate_dsp(np.zeros((2, 0), dtype=np.float32), SR)
    bad = good.copy()
    bad[1, 10] = np.nan
    with pytest.raises(InvalidJob):
        separate_dsp(bad, SR)
    for block in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(InvalidJob):
            separate_dsp(good, SR, block_seconds=block)


def test_blocks_bound_peak_memory():
    # numpy reports its allocations to tracemalloc. A short harmonic/percussive kernel
    # keeps the median filters (most of the run time) cheap; memory does not depend on it.
    x = (0.1 * np.random.default_rng(2).standard_normal((2, 30 * SR))).astype(np.float32)
    kw = dict(kernel_size=(3, 3))
    peaks = {}
    for block in (None, 3.0):
        tracemalloc.start()
        try:
            separate_dsp(x, SR, block_seconds=block, **kw)
            peaks[block] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    outputs = 4 * x.nbytes  # the four returned stems alone
    assert peaks[3.0] < 0.5 * peaks[None]
    assert peaks[3.0] < outputs + 100e6  # the rest is bounded by the block, not the song
