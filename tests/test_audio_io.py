"""studio.io.audio_io: reading every supported format, atomic writes, soxr resampling, downmix."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from studio.io import audio_io
from studio.io.audio_io import (
    AudioReader,
    StreamResampler,
    audio_info,
    downmix_matrix,
    downmix_to_stereo,
    read_audio,
    resample,
    resampled_length,
    write_audio,
)


@pytest.fixture(scope="module")
def excerpt(shared):
    """3 s of the real 48 kHz FLAC, as (channels, frames) float32, and its rate."""
    audio, sr = sf.read(shared / "audio" / "uncertain_future_30s.flac", dtype="float32", frames=3 * 48000)
    return np.ascontiguousarray(audio.T), sr


def test_read_flac_matches_soundfile(shared):
    path = shared / "audio" / "uncertain_future_30s.flac"
    audio, sr = read_audio(path)
    ref, ref_sr = sf.read(path, dtype="float32")
    assert sr == ref_sr == 48000
    assert audio.dtype == np.float32 and audio.shape == (2, 30 * 48000)
    assert audio.flags.c_contiguous
    np.testing.assert_array_equal(audio, ref.T)


def test_audio_info_reads_header(shared):
    info = audio_info(shared / "audio" / "lmms_kick01.ogg")
    assert (info.sample_rate, info.channels, info.frames) == (22050, 1, 6008)
    assert info.format == "OGG" and info.subtype == "VORBIS" and info.backend == "soundfile"
    assert info.duration == pytest.approx(6008 / 22050)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype", "tol"),
    [
        (".wav", "WAV", "PCM_16", 2**-15),
        (".aiff", "AIFF", "PCM_24", 2**-23),
        (".flac", "FLAC", "PCM_24", 2**-23),
        (".ogg", "OGG", "VORBIS", None),
        (".opus", "OGG", "OPUS", None),
        (".mp3", "MP3", "MPEG_LAYER_III", None),
    ],
)
def test_reads_every_format(tmp_path, excerpt, suffix, fmt, subtype, tol):
    audio, sr = excerpt
    path = tmp_path / f"x{suffix}"
    sf.write(path, audio.T, sr, format=fmt, subtype=subtype)
    got, got_sr = read_audio(path)
    assert got_sr == sr and got.shape[0] == 2 and got.dtype == np.float32
    if tol is not None:  # lossless: sample-exact up to the quantisation step
        assert got.shape == audio.shape
        assert np.abs(got - audio).max() <= tol
    else:  # lossy codecs keep the length (within codec padding) and the loudness
        assert abs(got.shape[1] - audio.shape[1]) <= 2048
        n = min(got.shape[1], audio.shape[1])
        rms_in, rms_out = np.sqrt(np.mean(audio[:, :n] ** 2)), np.sqrt(np.mean(got[:, :n] ** 2))
        assert rms_out == pytest.approx(rms_in, rel=0.1)


def test_pedalboard_fallback_when_libsndfile_refuses(tmp_path, excerpt, monkeypatch):
    audio, sr = excerpt
    path = tmp_path / "x.wav"
    sf.write(path, audio.T, sr, subtype="FLOAT")

    def refuse(*args, **kwargs):
        raise RuntimeError("Format not recognised.")

    monkeypatch.setattr(audio_io.sf, "SoundFile", refuse)
    with AudioReader(path) as reader:
        assert reader.info.backend == "pedalboard"
        assert (reader.info.sample_rate, reader.info.channels, reader.info.frames) == (sr, 2, audio.shape[1])
        got = np.concatenate(list(reader.blocks(50_000)), axis=1)
    np.testing.assert_array_equal(got, audio)


@pytest.mark.parametrize(("subtype", "tol"), [("PCM_16", 2**-15), ("PCM_24", 2**-23), ("FLOAT", 0.0)])
def test_write_audio_round_trip(tmp_path, excerpt, subtype, tol):
    audio, sr = excerpt
    path = tmp_path / "out.wav"
    write_audio(path, audio, sr, subtype=subtype)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("WAV", subtype, sr, audio.shape[1])
    got, _ = read_audio(path)
    assert np.abs(got - audio).max() <= tol
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temp file left


def test_write_audio_flac_and_aiff_and_mono(tmp_path, excerpt):
    audio, sr = excerpt
    write_audio(tmp_path / "a.flac", audio, sr)
    write_audio(tmp_path / "b.aiff", audio[0], sr, subtype="PCM_16")
    assert sf.info(tmp_path / "a.flac").format == "FLAC"
    b = sf.info(tmp_path / "b.aiff")
    assert (b.format, b.channels) == ("AIFF", 1)


def test_write_audio_replaces_atomically_and_refuses_bad_input(tmp_path, excerpt):
    audio, sr = excerpt
    path = tmp_path / "out.wav"
    write_audio(path, audio, sr)
    before = path.read_bytes()
    bad = audio.copy()
    bad[1, 1000] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_audio(path, bad, sr)
    with pytest.raises(ValueError, match="FLAC"):
        write_audio(tmp_path / "x.flac", audio, sr, subtype="FLOAT")
    with pytest.raises(ValueError, match="extension"):
        write_audio(tmp_path / "x.mp4", audio, sr)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
    write_audio(path, audio * 0.5, sr)
    got, _ = read_audio(path)
    assert np.abs(got - audio * 0.5).max() <= 2**-23


def test_float_wav_bytes_are_deterministic(tmp_path, excerpt):
    """No time-stamped PEAK chunk: identical audio gives identical bytes (content addressing)."""
    audio, sr = excerpt
    write_audio(tmp_path / "a.wav", audio, sr, subtype="FLOAT")
    write_audio(tmp_path / "b.wav", audio, sr, subtype="FLOAT")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert b"PEAK" not in (tmp_path / "a.wav").read_bytes()[:200]


def test_rf64_chosen_past_4_gib(tmp_path, excerpt):
    audio, sr = excerpt
    path = tmp_path / "big.wav"
    with audio_io.open_wav_writer(path, sr, 2, "FLOAT", frames_hint=600_000_000) as f:  # 4.8 GB of data
        f.write(np.ascontiguousarray(audio.T))
    assert path.read_bytes()[:4] == b"RF64"
    got, _ = read_audio(path)
    np.testing.assert_array_equal(got, audio)
    with audio_io.open_wav_writer(tmp_path / "small.wav", sr, 2, "FLOAT", frames_hint=audio.shape[1]) as f:
        f.write(np.ascontiguousarray(audio.T))
    assert (tmp_path / "small.wav").read_bytes()[:4] == b"RIFF"


@pytest.mark.parametrize(("frames", "sr_in", "sr_out"), [(48000, 48000, 44100), (1000, 48000, 44100), (12345, 22050, 44100), (7, 44100, 8000), (99991, 96000, 44100)])
def test_resample_exact_length_and_matches_soxr(frames, sr_in, sr_out):
    x = np.random.default_rng(frames).standard_normal((2, frames)).astype(np.float32) * 0.1
    y = resample(x, sr_in, sr_out)
    assert y.shape == (2, round(frames * sr_out / sr_in)) == (2, resampled_length(frames, sr_in, sr_out))
    ref = soxr.resample(x.T, sr_in, sr_out, quality="VHQ").T
    n = min(ref.shape[1], y.shape[1])
    np.testing.assert_allclose(y[:, :n], ref[:, :n], atol=1e-6)


def test_resample_keeps_a_sine():
    sr_in, sr_out, f = 48000, 44100, 1000.0
    x = np.sin(2 * np.pi * f * np.arange(sr_in) / sr_in).astype(np.float32)[None, :]
    y = resample(x, sr_in, sr_out)
    want = np.sin(2 * np.pi * f * np.arange(sr_out) / sr_out)
    mid = slice(1000, sr_out - 1000)  # away from the filter's edge transients
    assert np.abs(y[0, mid] - want[mid]).max() < 1e-3


def test_stream_resampler_equals_one_shot():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 100_003)).astype(np.float32) * 0.1
    rs = StreamResampler(48000, 44100, 2)
    parts = []
    a = 0
    for n in (1, 4095, 30000, 7, 50000, 15900):
        parts.append(rs.process(x[:, a : a + n]))
        a += n
    parts.append(rs.finish())
    y = np.concatenate(parts, axis=1)
    ref = resample(x, 48000, 44100)
    assert y.shape == ref.shape == (2, resampled_length(100_003, 48000, 44100))
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_stream_resampler_passes_through_at_equal_rates():
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    rs = StreamResampler(44100, 44100, 1)
    assert rs.process(x) is x
    assert rs.finish().shape == (1, 0)


def test_downmix_itu_5_1():
    m = downmix_matrix(6)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)
    g = np.sqrt(0.5)
    norm = 1 + 2 * g
    np.testing.assert_allclose(m[0], np.array([1, 0, g, 0, g, 0]) / norm, rtol=1e-6)
    np.testing.assert_allclose(m[1], np.array([0, 1, g, 0, 0, g]) / norm, rtol=1e-6)
    frames = 100
    x = np.zeros((6, frames), np.float32)
    x[2] = 0.5  # centre only
    x[3] = 1.0  # LFE is dropped
    y = downmix_to_stereo(x, 48000)
    assert y.shape == (2, frames) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.5 * g / norm, rtol=1e-6)


def test_downmix_many_channels_is_equal_weight_and_stereo_passes():
    x = np.ones((10, 5), np.float32)
    np.testing.assert_allclose(downmix_to_stereo(x, 48000), 1.0, rtol=1e-6)
    s = np.ones((2, 5), np.float32)
    assert downmix_to_stereo(s, 48000) is s


def test_atomic_output_gives_normal_permissions_and_cleans_up(tmp_path):
    import os

    target = tmp_path / "x.bin"
    with audio_io.atomic_output(target) as tmp:
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with audio_io.atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"abc" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]
