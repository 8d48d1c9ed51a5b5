"""engines/chunking.py: overlap-add reconstructs exactly, reports progress, honours cancel."""
from __future__ import annotations

import numpy as np
import pytest

from engines.base import CancelToken, JobCancelled
from engines.chunking import OverlapAdd, overlap_add, scaled_segment, segment_bounds, window_weights


@pytest.mark.parametrize("shape", ["linear", "cosine"])
@pytest.mark.parametrize("frames,segment,overlap", [(100_003, 4410, 1000), (4410, 4410, 500), (10, 4410, 100),
                                                    (44_100, 1000, 0), (9999, 2000, 1000)])
def test_identity_reconstructs_input_exactly(frames, segment, overlap, shape):
    x = np.random.default_rng(frames).standard_normal((2, frames)).astype(np.float32)
    y = overlap_add(x, 44100, lambda s: s, segment=segment, overlap=overlap, shape=shape)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.array_equal(y, x)


def test_complementary_windows_sum_to_one():
    for shape in ("linear", "cosine"):
        a = window_weights(1000, 300, fade_in=False, fade_out=True, shape=shape)
        b = window_weights(1000, 300, fade_in=True, fade_out=False, shape=shape)
        np.testing.assert_allclose(a[-300:] + b[:300], 1.0, atol=1e-12)
        assert a[0] == 1.0 and b[-1] == 1.0 and (a > 0).all() and (b > 0).all()


def test_real_audio_identity_and_batched_multi_output(shared):
    import soundfile as sf

    data, sr = sf.read(shared / "multitrack/blupi001/mixture.flac", dtype="float32", always_2d=True, frames=200_000)
    x = np.ascontiguousarray(data.T)
    y = overlap_add(x, sr, lambda b: np.stack([b, -2 * b], axis=1), segment=sr, overlap=sr // 4, batch_size=3)
    assert y.shape == (2, 2, x.shape[1])
    assert np.array_equal(y[0], x)
    np.testing.assert_allclose(y[1], -2 * x, atol=1e-6)


def test_segment_bounds_cover_input():
    b = segment_bounds(10_000, 3000, 500)
    assert b[0] == (0, 3000) and b[-1][1] >= 10_000
    assert all(b[i + 1][0] == b[i][1] - 500 for i in range(len(b) - 1))
    assert segment_bounds(0, 100, 10) == []
    with pytest.raises(ValueError, match="overlap"):
        segment_bounds(100, 100, 60)
    with pytest.raises(ValueError, match="segment"):
        segment_bounds(100, 0, 0)


def test_progress_is_ordered_and_cancel_stops_between_segments():
    x = np.zeros((1, 10_000), np.float32)
    seen = []
    overlap_add(x, 8000, lambda s: s, segment=1000, overlap=100, progress=lambda f, s: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == len(segment_bounds(10_000, 1000, 100))
    token, calls = CancelToken(), []

    def fn(s):
        calls.append(1)
        if len(calls) == 3:
            token.cancel()
        return s

    with pytest.raises(JobCancelled):
        overlap_add(x, 8000, fn, segment=1000, overlap=100, cancel=token)
    assert len(calls) == 3


def test_bad_fn_output_and_helpers():
    with pytest.raises(ValueError, match="segment length"):
        overlap_add(np.zeros((1, 100), np.float32), 8000, lambda s: s[:, :10], segment=50, overlap=0)
    assert scaled_segment(44100, 0.25) == 11025 and scaled_segment(100, 0.001, minimum=16) == 16
    acc = OverlapAdd((1,), 5)
    acc.add(3, np.ones((1, 4)), np.ones(4))
    assert acc.result().tolist() == [[0, 0, 0, 1, 1]]
