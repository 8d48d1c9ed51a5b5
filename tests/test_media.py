"""studio.media.pool.MediaPool: import real files once at the project rate, content-addressed storage."""
from __future__ import annotations

import hashlib
import os
import stat
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

from studio.io.audio_io import downmix_matrix, resampled_length
from studio.errors import AudioFileError
from studio.media.pool import MediaPool
from studio.model.project import MediaItem

FLAC = ("audio", "uncertain_future_30s.flac")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def pool(tmp_path):
    return MediaPool(tmp_path / "song.seedproj" / "media", 44100)


@pytest.fixture(scope="module")
def flac_into_44k(shared, tmp_path_factory):
    """The 48 kHz FLAC imported once into a 44.1 kHz pool (shared by several tests)."""
    root = tmp_path_factory.mktemp("b") / "song.seedproj" / "media"
    p = MediaPool(root, 44100)
    return p, p.import_file(shared.joinpath(*FLAC))


def test_flac_48k_into_44k_pool(shared, flac_into_44k):
    pool, item = flac_into_44k
    src = shared.joinpath(*FLAC)
    assert item.frames == round(30 * 44100) == 1_323_000
    assert (item.sample_rate, item.channels, item.original_sample_rate) == (44100, 2, 48000)
    assert item.original_name == "uncertain_future_30s.flac"
    assert item.original_sha256 == sha256(src)
    audio = pool.read(item)
    assert audio.shape == (2, 1_323_000) and audio.dtype == np.float32
    ref = soxr.resample(sf.read(src, dtype="float32")[0], 48000, 44100, quality="VHQ").T
    assert ref.shape == audio.shape
    np.testing.assert_allclose(audio, ref, atol=1e-6)


def test_stored_file_is_content_addressed_lossless_and_read_only(flac_into_44k):
    pool, item = flac_into_44k
    path = pool.path_of(item)
    assert item.path == f"media/{item.id}.wav" and path.name == f"{item.id}.wav"
    assert sha256(path) == item.id and pool.verify(item)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("WAV", "FLOAT", 44100, item.frames)
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    stored, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(stored.T, pool.read(item))
    assert MediaItem.from_dict(item.to_dict()) == item


def test_idempotent_import_one_file(shared, pool):
    a = pool.import_file(shared.joinpath(*FLAC))
    b = pool.import_file(shared.joinpath(*FLAC))
    assert a == b
    assert [p.name for p in pool.root.iterdir()] == [f"{a.id}.wav"]
    assert [p.name for p in pool.peaks_dir.iterdir()] == [f"{a.id}.npz"]


def test_same_rate_import_is_bit_exact(shared, tmp_path):
    pool = MediaPool(tmp_path / "media", 48000)
    src = shared.joinpath(*FLAC)
    item = pool.import_file(src)
    ref, _ = sf.read(src, dtype="float32")
    assert item.frames == 1_440_000
    np.testing.assert_array_equal(pool.read(item), ref.T)


def test_every_lmms_ogg_into_44k(shared, pool):
    files = sorted((shared / "audio").glob("lmms_*.ogg"))
    assert len(files) >= 8
    ids = set()
    for f in files:
        info = sf.info(f)
        item = pool.import_file(f)
        ids.add(item.id)
        assert item.sample_rate == 44100 and item.channels == info.channels
        assert item.frames == resampled_length(info.frames, info.samplerate, 44100)
        assert item.original_name == f.name and item.original_sha256 == sha256(f)
        audio = pool.read(item)
        ref, _ = sf.read(f, dtype="float32", always_2d=True)
        if info.samplerate == 44100:
            np.testing.assert_array_equal(audio, ref.T)
        else:  # the 22.05 kHz kick is upsampled with soxr
            np.testing.assert_allclose(audio, soxr.resample(ref, info.samplerate, 44100, "VHQ").T, atol=1e-6)
    assert len(ids) == len(files)
    assert sorted(p.name for p in pool.root.iterdir()) == sorted(f"{i}.wav" for i in ids)


def test_read_windows_and_zero_padding(shared, pool):
    item = pool.import_file(shared / "audio" / "lmms_kick01.ogg")
    full = pool.read(item)
    np.testing.assert_array_equal(pool.read(item, 100, 50), full[:, 100:150])
    before = pool.read(item, -10, 20)
    assert before.shape == (1, 20)
    np.testing.assert_array_equal(before[:, :10], 0)
    np.testing.assert_array_equal(before[:, 10:], full[:, :10])
    after = pool.read(item, item.frames - 5, 15)
    np.testing.assert_array_equal(after[:, :5], full[:, -5:])
    np.testing.assert_array_equal(after[:, 5:], 0)
    assert pool.read(item, item.frames + 100, 7).shape == (1, 7)
    assert pool.read(item, 10, 0).shape == (1, 0)
    with pytest.raises(ValueError):
        pool.read(item, 0, -1)


def test_reopened_pool_reads_the_same(shared, pool):
    item = pool.import_file(shared / "audio" / "lmms_piano01.ogg")
    again = MediaPool(pool.root, 44100)
    np.testing.assert_array_equal(again.read(item), pool.read(item))
    assert again.peaks(item).levels  # loaded from cache/peaks


def test_import_array_resamples_and_is_content_addressed(pool):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 48000)) * 0.1  # float64 in, 48 kHz
    item = pool.import_array(x, 48000, name="engine take 1")
    assert (item.frames, item.channels, item.sample_rate) == (44100, 2, 44100)
    assert item.original_name == "engine take 1" and item.original_sample_rate == 48000
    want = hashlib.sha256(np.ascontiguousarray(x.astype(np.float32).T).tobytes()).hexdigest()
    assert item.original_sha256 == want
    np.testing.assert_allclose(pool.read(item), soxr.resample(x.T.astype(np.float32), 48000, 44100, "VHQ").T, atol=1e-6)
    again = pool.import_array(x, 48000, name="engine take 1")
    assert again.id == item.id
    mono = pool.import_array(x[0].astype(np.float32), 44100, name="mono")
    assert mono.channels == 1 and mono.frames == 48000 and mono.id != item.id
    np.testing.assert_array_equal(pool.read(mono)[0], x[0].astype(np.float32))
    assert len(list(pool.root.iterdir())) == 2


def test_import_array_rejects_bad_arrays(pool):
    with pytest.raises(AudioFileError, match="take A.*channels, frames"):
        pool.import_array(np.zeros((2, 3, 4), np.float32), 44100, name="take A")
    with pytest.raises(AudioFileError, match="take B.*0 frames"):
        pool.import_array(np.zeros((2, 0), np.float32), 44100, name="take B")
    with pytest.raises(AudioFileError, match="take C.*sample rate"):
        pool.import_array(np.zeros((2, 10), np.float32), 4000, name="take C")
    with pytest.raises(AudioFileError, match="take C2.*sample rate"):
        pool.import_array(np.zeros((2, 10), np.float32), None, name="take C2")
    with pytest.raises(AudioFileError, match="take D.*floating"):
        pool.import_array(np.zeros((2, 10), np.int16), 44100, name="take D")
    assert not pool.root.exists() or list(pool.root.iterdir()) == []


def test_downmix_option_for_six_channels(tmp_path, pool):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((6, 4410)) * 0.1).astype(np.float32)
    path = tmp_path / "surround.wav"
    sf.write(path, x.T, 44100, subtype="FLOAT")
    item = pool.import_file(path, downmix=True)
    assert (item.channels, item.frames) == (2, 4410)
    np.testing.assert_allclose(pool.read(item), downmix_matrix(6) @ x, atol=1e-6)


def test_concurrent_imports_of_different_files(shared, pool):
    files = [shared / "audio" / "lmms_flute01.ogg", shared / "audio" / "lmms_bass_hard01.ogg",
             shared / "audio" / "lmms_cello01.ogg"]
    results: dict[str, MediaItem] = {}
    errors: list[BaseException] = []

    def work(f):
        try:
            results[f.name] = pool.import_file(f)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in pool.root.iterdir()) == sorted(f"{r.id}.wav" for r in results.values())
    for f in files:
        ref, _ = sf.read(f, dtype="float32", always_2d=True)
        np.testing.assert_array_equal(pool.read(results[f.name]), ref.T)


def test_progress_reaches_one(shared, pool):
    seen: list[float] = []
    pool.import_file(shared / "audio" / "lmms_flute01.ogg", progress=seen.append)
    assert seen[-1] == 1.0 and all(0 <= a <= b <= 1 for a, b in zip(seen, seen[1:]))


def test_path_of_refuses_paths_outside_the_bundle(pool):
    bad = MediaItem(id="x", path="../../etc/passwd", sample_rate=44100, channels=1, frames=1)
    with pytest.raises(AudioFileError, match="inside the bundle"):
        pool.path_of(bad)
    with pytest.raises(AudioFileError):
        pool.path_of(MediaItem(id="x", path="/abs/x.wav", sample_rate=44100, channels=1, frames=1))
    assert not pool.has(bad)
    zeros = pool.peaks(bad).query(0, 1, 10)  # the display path never throws
    assert all(z.shape == (1, 10) and not z.any() for z in zeros)


def test_missing_or_mismatching_media_is_a_clear_error(shared, pool):
    item = pool.import_file(shared / "audio" / "lmms_kick01.ogg")
    ghost = MediaItem(id="0" * 64, path=f"media/{'0' * 64}.wav", sample_rate=44100, channels=1, frames=10,
                      original_name="ghost.wav")
    with pytest.raises(AudioFileError, match="ghost.wav.*missing"):
        pool.read(ghost)
    wrong = MediaItem(**{**item.to_dict(), "id": item.id + "x", "frames": item.frames + 1})
    wrong.path = item.path
    with pytest.raises(AudioFileError, match="doesn't match"):
        pool.read(wrong)


def test_open_maps_are_bounded(shared, pool, monkeypatch):
    import studio.media.pool as media

    monkeypatch.setattr(media, "_MAX_OPEN_MAPS", 1)
    a = pool.import_file(shared / "audio" / "lmms_kick01.ogg")
    b = pool.import_file(shared / "audio" / "lmms_piano01.ogg")
    first = [pool.read(a).copy(), pool.read(b).copy()]
    for _ in range(2):
        np.testing.assert_array_equal(pool.read(a), first[0])
        np.testing.assert_array_equal(pool.read(b), first[1])
        assert len(pool._maps) == 1


def test_failing_write_cleans_up_and_stops_the_decoder_thread(shared, pool, monkeypatch):
    import studio.media.pool as media

    real = media.open_wav_writer

    class DiskFull:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            self.n += 1
            if self.n == 2:
                raise OSError(28, "No space left on device")
            self.f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(media, "open_wav_writer", lambda *a, **k: DiskFull(real(*a, **k)))
    from studio.errors import DiskFull as DiskFullError

    with pytest.raises(DiskFullError, match="the disk is full") as err:  # said in plain words, naming the file
        pool.import_file(shared.joinpath(*FLAC))
    assert FLAC[-1] in str(err.value) and str(pool.root) in str(err.value) and "unchanged" in str(err.value)
    assert list(pool.root.iterdir()) == []
    assert not any(t.name == "seed-media-decode" for t in threading.enumerate())
