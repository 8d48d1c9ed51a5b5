"""Separation core: lengths, overlap-add exactness, residual mode, alignment, buffers, errors."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from engines.base import CancelToken, InvalidJob, JobCancelled  # noqa: E402
from engines.separation.core import SeparationOptions, complement_name, separate  # noqa: E402
from engines.separation.demucs_adapter import tiny_htdemucs  # noqa: E402
from engines.separation.identity import identity_model  # noqa: E402
from engines.chunking import plan_chunks, transition_window, weight_sum  # noqa: E402

SOURCES = ["drums", "bass", "other", "vocals"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_htdemucs(segment=0.5)


@pytest.fixture(scope="module")
def song(shared):
    """2.5 s of the real 48 kHz song, stereo."""
    audio, sr = sf.read(str(shared / "audio" / "uncertain_future_30s.flac"), dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio[sr * 5: sr * 5 + sr * 5 // 2].T), sr


@pytest.fixture(scope="module")
def mixture44(shared):
    audio, sr = sf.read(str(shared / "multitrack" / "blupi001" / "mixture.flac"), dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio[: sr * 2].T), sr


def test_plan_covers_and_ends_exactly():
    plan = plan_chunks(1000, 300, 0.25)
    assert plan.offsets[0] == 0 and plan.offsets[-1] + 300 == 1000
    gaps = np.diff(plan.offsets)
    assert gaps.max() <= 225  # overlap at least 25 %
    w = transition_window(300)
    assert w.shape == (300,) and w.min() > 0 and w.max() == 1.0
    assert weight_sum(plan, w).min() > 0
    assert plan_chunks(100, 300, 0.25).offsets == (0,)
    with pytest.raises(ValueError):
        plan_chunks(100, 300, 1.0)


@pytest.mark.parametrize("sr,frames", [(44100, 44100), (48000, 48000), (44100, 30001), (48000, 52917), (22050, 7)])
def test_tiny_htdemucs_output_length_equals_input(tiny, sr, frames):
    rng = np.random.default_rng(frames)
    x = (0.1 * rng.standard_normal((2, frames))).astype(np.float32)
    res = separate(tiny, x, sr)
    assert list(res.stems) == SOURCES
    assert res.sample_rate == sr
    for stem in res.stems.values():
        assert stem.shape == (2, frames) and stem.dtype == np.float32
        assert np.isfinite(stem).all()


def test_mono_in_mono_out(tiny):
    x = np.random.default_rng(1).standard_normal((1, 20001)).astype(np.float32) * 0.1
    res = separate(tiny, x, 48000)
    assert all(s.shape == (1, 20001) for s in res.stems.values())


@pytest.mark.parametrize("shifts,batch", [(0, 1), (0, 3), (2, 2)])
def test_chunked_equals_unchunked_on_identity_model(mixture44, shifts, batch):
    x, sr = mixture44
    model = identity_model(weights=[0.1, 0.2, 0.3, 0.4], samplerate=sr)
    whole = separate(model, x, sr, SeparationOptions(segment=10.0, shifts=shifts, seed=3))
    chunked = separate(model, x, sr, SeparationOptions(segment=0.3, overlap=0.25, shifts=shifts, batch_size=batch, seed=3))
    assert chunked.info["chunks"] > 6 * max(1, shifts)
    assert whole.info["chunks"] == max(1, shifts)
    for name in SOURCES:
        assert np.abs(chunked.stems[name] - whole.stems[name]).max() < 1e-4
    # and the identity really is the identity: stem k = w_k * mixture
    assert np.abs(chunked.stems["vocals"] - 0.4 * x).max() < 1e-4


def test_identity_stems_sum_to_mixture_at_model_rate(mixture44):
    x, sr = mixture44
    res = separate(identity_model(samplerate=sr), x, sr, SeparationOptions(segment=0.5))
    assert np.abs(sum(res.stems.values()) - x).max() < 1e-5


def test_48k_in_48k_out_no_offset_no_drift(song):
    """A 44.1 kHz identity model on 48 kHz audio: the round trip through soxr must give
    back the input (band-limited below 20 kHz) sample for sample, start to end."""
    from scipy.signal import butter, sosfiltfilt

    x, sr = song
    assert sr == 48000
    x = sosfiltfilt(butter(12, 18000, fs=sr, output="sos"), x, axis=-1).astype(np.float32)
    res = separate(identity_model(samplerate=44100), x, sr, SeparationOptions(segment=0.7))
    total = sum(res.stems.values())
    assert total.shape == x.shape
    err = total - x
    snr_db = 10 * np.log10(np.sum(x**2) / np.sum(err**2))
    assert snr_db > 60
    # no drift: the error is as small in the last 0.2 s as in the first
    edge = sr // 5
    assert np.abs(err[:, edge:2 * edge]).max() < 5e-3 and np.abs(err[:, -2 * edge:-edge]).max() < 5e-3
    # no offset: the cross-correlation of input and output peaks at lag 0
    a, b = x[0, sr // 2: sr], total[0, sr // 2: sr]
    lags = range(-5, 6)
    corr = [np.dot(a[10:-10], np.roll(b, k)[10:-10]) for k in lags]
    assert list(lags)[int(np.argmax(corr))] == 0


@pytest.mark.parametrize("sr", [44100, 48000])
def test_residual_consistent_stems_sum_to_mixture(tiny, song, sr):
    x, _ = song
    x = x[:, : sr + 12345]
    res = separate(tiny, x, sr, SeparationOptions(residual=True))
    assert list(res.stems) == SOURCES
    assert np.abs(sum(res.stems[n].astype(np.float64) for n in SOURCES) - x).max() < 1e-5
    # without the mode the random model does not sum to the mixture
    plain = separate(tiny, x, sr)
    assert np.abs(sum(plain.stems.values()) - x).max() > 1e-3


def test_vocals_gives_vocals_and_instrumental(tiny, mixture44):
    x, sr = mixture44
    res = separate(tiny, x, sr, SeparationOptions(stems=["vocals"]))
    assert list(res.stems) == ["vocals", "instrumental"]
    assert np.abs(res.stems["instrumental"] - (x - res.stems["vocals"])).max() < 1e-6
    full = separate(tiny, x, sr)
    assert np.abs(full.stems["vocals"] - res.stems["vocals"]).max() < 1e-6
    assert complement_name(["drums"]) == "no_drums" and complement_name(["drums", "bass"]) == "rest"


def test_disk_buffer_matches_memory(tiny, mixture44, tmp_path):
    x, sr = mixture44
    mem = separate(tiny, x, sr, SeparationOptions(buffer="memory"))
    disk = separate(tiny, x, sr, SeparationOptions(buffer="disk", tmp_dir=str(tmp_path)))
    assert disk.info["disk_buffer"] and not mem.info["disk_buffer"]
    assert isinstance(disk.stems["bass"], np.memmap)
    for n in SOURCES:
        assert np.array_equal(np.asarray(disk.stems[n]), mem.stems[n])
    auto = separate(identity_model(samplerate=sr), x, sr, SeparationOptions(disk_threshold_bytes=1000, tmp_dir=str(tmp_path)))
    assert auto.info["disk_buffer"] and np.abs(sum(auto.stems.values()) - x).max() < 1e-5
    del disk, auto
    import gc

    gc.collect()
    assert list(tmp_path.iterdir()) == []  # buffers leave no files behind


def test_progress_and_cancel(mixture44):
    x, sr = mixture44
    model = identity_model(samplerate=sr)
    seen: list[float] = []
    separate(model, x, sr, SeparationOptions(segment=0.2), progress=lambda f, stage="": seen.append(f))
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] == 1.0
    token = CancelToken()
    calls = []

    def cancel_after_two(f, stage=""):
        calls.append(f)
        if len(calls) == 2:
            token.cancel()

    with pytest.raises(JobCancelled):
        separate(model, x, sr, SeparationOptions(segment=0.2), progress=cancel_after_two, cancel=token)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "audio,opts,match",
    [
        (np.full((2, 100), np.nan, np.float32), {}, "NaN"),
        (np.zeros((3, 100), np.float32), {}, "3 channels"),
        (np.zeros((2, 0), np.float32), {}, "empty"),
        (np.zeros((2, 100), np.float32), {"stems": ["kazoo"]}, "kazoo"),
        (np.zeros((2, 100), np.float32), {"dtype": "int8"}, "dtype"),
        (np.zeros((2, 100), np.float32), {"overlap": 1.0}, "overlap"),
    ],
)
def test_bad_input_raises_clear_error(audio, opts, match):
    with pytest.raises(InvalidJob, match=match):
        separate(identity_model(), audio, 44100, SeparationOptions(**opts))


def test_segment_longer_than_the_htdemucs_training_length_is_refused(tiny):
    with pytest.raises(InvalidJob, match="longer than this model"):
        separate(tiny, np.zeros((2, 100), np.float32), 44100, SeparationOptions(segment=0.6))


def test_silence_stays_silent(tiny):
    res = separate(tiny, np.zeros((2, 5000), np.float32), 44100, SeparationOptions(residual=True))
    assert all(np.abs(s).max() < 1e-6 for s in res.stems.values())


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float16"])
def test_gpu_autocast_matches_fp32_within_minus_60_db(mixture44, dtype):
    from engines.separation.demucs_adapter import full_size_htdemucs

    x, sr = mixture44
    model = full_size_htdemucs()
    ref = separate(model, x, sr, SeparationOptions(device="cuda", dtype="float32"))
    fast = separate(model, x, sr, SeparationOptions(device="cuda", dtype=dtype, batch_size=4))
    assert fast.info["dtype"] == dtype
    for n in SOURCES:
        err = np.sum((fast.stems[n] - ref.stems[n]) ** 2) / max(np.sum(ref.stems[n] ** 2), 1e-12)
        assert 10 * np.log10(max(err, 1e-30)) < -60


def test_pipelined_transfer_path_accumulates_like_the_plain_path(tiny, mixture44):
    """The GPU path's overlapped copies (batch k cross-faded while batch k+1 runs), with
    the device copies replaced by CPU stand-ins, gives the plain path's result."""
    from engines.separation.core import _Runner

    x, sr = mixture44
    x = x / x.std()

    class CpuPipelined(_Runner):
        def _start_host_copy(self, y):
            return y.clone(), "event"

        def _finish_host_copy(self, host, event):
            assert event == "event"
            return host.numpy()

    results = []
    for runner_cls, pipelined in ((_Runner, False), (CpuPipelined, True)):
        runner = runner_cls(SeparationOptions(batch_size=2, overlap=0.3), None, None, 10)
        runner.pipelined = pipelined
        acc = [np.zeros_like(x) for _ in SOURCES]
        runner.run(tiny, x, int(0.5 * sr), 0, acc, [0, 1, 2, 3], np.ones(4))
        assert runner.batches == 3  # 5 chunks in batches of 2: the last one is flushed too
        results.append(acc)
    for a, b in zip(*results):
        assert np.abs(a).max() > 0 and np.array_equal(a, b)
