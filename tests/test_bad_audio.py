"""Bad audio files: each gets an AudioFileError naming the file, and the pool folder stays unchanged.

The bad files are real: a FLAC cut short by bytes, a text file named .wav, empty
files, NaN/Inf samples written by soundfile, a 6-channel WAV, unsupported rates.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from studio.io.audio_io import audio_info, read_audio
from studio.errors import AudioFileError, StudioError
from studio.media.pool import MediaPool


def _tone(channels: int, frames: int = 4800) -> np.ndarray:
    t = np.arange(frames) / 48000
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def truncated_flac(shared, d):
    data = (shared / "audio" / "uncertain_future_30s.flac").read_bytes()
    p = d / "cut.flac"
    p.write_bytes(data[: len(data) // 2])
    return p, "truncated"


def truncated_wav(shared, d):
    p = d / "cut.wav"
    sf.write(p, _tone(2).T, 48000, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[:9000])
    return p, "truncated"


def text_named_wav(shared, d):
    p = d / "notes.wav"
    p.write_text("These are my lyrics, not audio.\n" * 20)
    return p, "not a recognised audio file"


def zero_byte_wav(shared, d):
    p = d / "empty.wav"
    p.write_bytes(b"")
    return p, "empty"


def zero_frame_wav(shared, d):
    p = d / "silent.wav"
    sf.write(p, np.zeros((0, 2), np.float32), 48000)
    return p, "0 frames"


def nan_wav(shared, d):
    p = d / "nan.wav"
    x = _tone(2)
    x[1, 3000] = np.nan
    sf.write(p, x.T, 48000, subtype="FLOAT")
    return p, "NaN"


def inf_flac_float_wav(shared, d):
    p = d / "inf.wav"
    x = _tone(1)
    x[0, 10] = np.inf
    sf.write(p, x.T, 48000, subtype="FLOAT")
    return p, "infinite"


def six_channel_wav(shared, d):
    p = d / "surround51.wav"
    sf.write(p, _tone(6).T, 48000, subtype="PCM_24")
    return p, "6 channels"


def rate_too_low(shared, d):
    p = d / "phone.wav"
    sf.write(p, _tone(1).T, 4000, subtype="PCM_16")
    return p, "unsupported sample rate 4000 Hz"


def rate_too_high(shared, d):
    p = d / "hires.wav"
    sf.write(p, _tone(1).T, 384000, subtype="PCM_16")
    return p, "unsupported sample rate 384000 Hz"


def missing_file(shared, d):
    return d / "nowhere.flac", "not found"


def folder(shared, d):
    p = d / "folder.wav"
    p.mkdir()
    return p, "folder"


CASES = [truncated_flac, truncated_wav, text_named_wav, zero_byte_wav, zero_frame_wav, nan_wav,
         inf_flac_float_wav, six_channel_wav, rate_too_low, rate_too_high, missing_file, folder]


def snapshot(root):
    """Every file (hidden ones included) under a folder, with size and bytes' hash."""
    if not root.exists():
        return {}
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def populated_pool(shared, tmp_path):
    """A pool that already holds one item, so 'unchanged' is checked against real content."""
    bundle = tmp_path / "song.seedproj"
    pool = MediaPool(bundle / "media", 44100)
    pool.import_file(shared / "audio" / "lmms_kick01.ogg")
    return bundle, pool


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_import_bad_file_names_it_and_leaves_pool_unchanged(shared, tmp_path, populated_pool, make):
    bundle, pool = populated_pool
    src = tmp_path / "incoming"
    src.mkdir()
    path, problem = make(shared, src)
    before = snapshot(bundle)
    with pytest.raises(AudioFileError) as err:
        pool.import_file(path)
    assert err.value.path == path
    assert path.name in str(err.value) and problem in str(err.value)
    assert isinstance(err.value, StudioError)
    assert snapshot(bundle) == before


@pytest.mark.parametrize("make", [c for c in CASES if c is not six_channel_wav], ids=lambda c: c.__name__)
def test_read_audio_refuses_bad_file(shared, tmp_path, make):
    path, problem = make(shared, tmp_path)
    with pytest.raises(AudioFileError, match=problem):
        read_audio(path)


def test_header_checks_happen_before_decoding(shared, tmp_path):
    """audio_info refuses what the header alone shows is wrong (rate, empty, not audio, short WAV)."""
    for make in (rate_too_low, zero_byte_wav, text_named_wav, truncated_wav, zero_frame_wav):
        path, problem = make(shared, tmp_path)
        with pytest.raises(AudioFileError, match=problem):
            audio_info(path)


def test_nan_error_says_where(shared, tmp_path):
    path, _ = nan_wav(shared, tmp_path)
    with pytest.raises(AudioFileError, match=r"frame 3000, 0\.062 s"):
        read_audio(path)


def test_truncated_flac_in_44k_pool_cleans_up_mid_stream(shared, tmp_path):
    """The failure comes after blocks were resampled and written: the temp file must go too."""
    pool = MediaPool(tmp_path / "b" / "media", 44100)
    path, _ = truncated_flac(shared, tmp_path)
    with pytest.raises(AudioFileError, match="cut.flac"):
        pool.import_file(path)
    assert list(pool.root.iterdir()) == []
    assert not pool.peaks_dir.exists()


def test_nan_array_from_an_engine(populated_pool):
    bundle, pool = populated_pool
    before = snapshot(bundle)
    x = _tone(2)
    x[0, 7] = np.nan
    with pytest.raises(AudioFileError, match="separated vocals.*NaN"):
        pool.import_array(x, 48000, name="separated vocals")
    with pytest.raises(AudioFileError, match="5 channels"):
        pool.import_array(_tone(5), 48000, name="five")
    assert snapshot(bundle) == before


def test_streamed_wav_with_unknown_size_is_not_called_truncated(tmp_path):
    """Recorders that stream write 0xFFFFFFFF as the data size: libsndfile reads to the end."""
    import struct

    path = tmp_path / "streamed.wav"
    x = _tone(2)
    sf.write(path, x.T, 48000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    i = data.index(b"data")
    data[i + 4 : i + 8] = struct.pack("<I", 0xFFFFFFFF)
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    audio, sr = read_audio(path)
    assert sr == 48000 and audio.shape == x.shape
    assert np.abs(audio - x).max() <= 2**-15
