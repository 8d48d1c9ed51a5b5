"""studio.media.peaks: multi-resolution min/max/RMS, checked against brute force; persistence; never throws."""
from __future__ import annotations

import numpy as np
import pytest

from studio.media.pool import MediaPool
from studio.media.peaks import BASE_BLOCK, LEVEL_FACTOR, PeakBuilder, PeakCache

SR = 44100


@pytest.fixture(scope="module")
def audio():
    """Noise with a loud burst, 2 channels, a length that is no multiple of any block."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, 1_000_003)) * 0.2).astype(np.float32)
    x[0, 500_000:500_100] *= 4
    x[1, 123_456] = -0.99
    return x


def source_of(x):
    def source(start, frames):
        out = np.zeros((x.shape[0], frames), np.float32)
        a, b = max(start, 0), min(start + frames, x.shape[1])
        if b > a:
            out[:, a - start : b - start] = x[:, a:b]
        return out

    return source


@pytest.fixture(scope="module")
def cache(audio):
    return PeakCache.build(audio, SR, source=source_of(audio))


def brute(x, starts, ends):
    ch, w = x.shape[0], len(starts)
    mins, maxs, rms = (np.zeros((ch, w), np.float32) for _ in range(3))
    for p, (s, e) in enumerate(zip(starts, ends)):
        if s < e:
            seg = x[:, s:e].astype(np.float64)
            mins[:, p], maxs[:, p] = seg.min(axis=1), seg.max(axis=1)
            rms[:, p] = np.sqrt((seg**2).mean(axis=1))
    return mins, maxs, rms


def test_levels_shapes_and_brute_force(audio, cache):
    frames = audio.shape[1]
    sizes = cache.block_sizes
    assert sizes[0] == BASE_BLOCK and all(b * LEVEL_FACTOR == c for b, c in zip(sizes, sizes[1:]))
    for lv in cache.levels:
        assert lv.mins.shape == lv.maxs.shape == lv.rms.shape == (2, -(-frames // lv.block))
        assert lv.mins.dtype == np.float32
    top = cache.levels[-1]
    assert top.blocks == 1
    np.testing.assert_array_equal(top.mins[:, 0], audio.min(axis=1))
    np.testing.assert_array_equal(top.maxs[:, 0], audio.max(axis=1))
    np.testing.assert_allclose(top.rms[:, 0], np.sqrt((audio.astype(np.float64) ** 2).mean(axis=1)), rtol=1e-5)
    lv = cache.levels[1]
    idx = [0, 17, lv.blocks - 1]  # includes the short last block
    starts = [i * lv.block for i in idx]
    ends = [min((i + 1) * lv.block, frames) for i in idx]
    mins, maxs, rms = brute(audio, starts, ends)
    np.testing.assert_array_equal(lv.mins[:, idx], mins)
    np.testing.assert_array_equal(lv.maxs[:, idx], maxs)
    np.testing.assert_allclose(lv.rms[:, idx], rms, rtol=1e-5)


def test_streamed_build_equals_whole_build(audio, cache):
    b = PeakBuilder(2, SR)
    a = 0
    for n in (1, 127, 5000, 333_333, 1):
        b.add(audio[:, a : a + n])
        a += n
    b.add(audio[:, a:])
    streamed = b.finish()
    assert streamed.frames == audio.shape[1]
    for x, y in zip(streamed.levels, cache.levels):
        np.testing.assert_array_equal(x.mins, y.mins)
        np.testing.assert_array_equal(x.maxs, y.maxs)
        np.testing.assert_allclose(x.rms, y.rms, rtol=1e-6)


def test_query_matches_brute_force_at_random_positions(audio, cache):
    rng = np.random.default_rng(11)
    frames = audio.shape[1]
    used_blocks = set()
    for _ in range(40):
        width = int(rng.integers(1, 1500))
        spp = float(np.exp(rng.uniform(np.log(0.3), np.log(frames / width))))
        start = int(rng.integers(-2000, frames))
        end = start + max(1, int(spp * width))
        mins, maxs, rms = cache.query(start, end, width)
        assert mins.shape == maxs.shape == rms.shape == (2, width) and mins.dtype == np.float32
        block, s, e = cache.pixel_ranges(start, end, width)
        used_blocks.add(block)
        true_spp = (end - start) / width
        # O(pixels): the level's blocks are no wider than a pixel, and fewer than LEVEL_FACTOR fit in one
        assert block == 1 and true_spp < BASE_BLOCK or block <= true_spp < block * LEVEL_FACTOR or block == cache.block_sizes[-1]
        nominal = start + (np.arange(width) * (end - start)) // width
        inside = (s < e)
        assert np.all(np.abs(s[inside] - np.clip(nominal[inside], 0, frames)) < max(block, 1))
        bmins, bmaxs, brms = brute(audio, s, e)
        np.testing.assert_array_equal(mins, bmins)
        np.testing.assert_array_equal(maxs, bmaxs)
        np.testing.assert_allclose(rms, brms, rtol=1e-4, atol=1e-7)
    assert 1 in used_blocks and len(used_blocks) >= 4  # raw samples and several levels were exercised


def test_aligned_query_is_exact_per_pixel(audio, cache):
    block = BASE_BLOCK * LEVEL_FACTOR**2
    width = 300
    start = 37 * block
    end = start + width * block
    mins, maxs, rms = cache.query(start, end, width)
    edges = start + np.arange(width + 1) * block
    bmins, bmaxs, brms = brute(audio, edges[:-1], edges[1:])
    np.testing.assert_array_equal(mins, bmins)
    np.testing.assert_array_equal(maxs, bmaxs)
    np.testing.assert_allclose(rms, brms, rtol=1e-4)
    assert cache.pixel_ranges(start, end, width)[0] == block


def test_out_of_range_and_degenerate_queries_give_zeros(audio, cache):
    frames = audio.shape[1]
    for args in [(-5000, -1000, 100), (frames, frames + 10_000, 50), (10, 10, 20), (100, 50, 20)]:
        out = cache.query(*args)
        assert all(o.shape == (2, args[2]) and not o.any() for o in out)
    assert all(o.shape == (2, 0) for o in cache.query(0, 100, 0))
    assert all(o.shape == (2, 0) for o in cache.query(0, 100, -3))
    mins, maxs, _ = cache.query(frames - 1000, frames + 1000, 20)  # half inside
    assert maxs[:, :10].any() and not maxs[:, 10:].any()
    mins, maxs, _ = cache.query(0, frames, 1000)
    assert maxs[0].max() == audio[0].max() and mins[1].min() == pytest.approx(-0.99) == audio[1].min()
    # sub-sample zoom: each pixel shows the sample under it
    mins, maxs, _ = cache.query(1000, 1010, 40)
    np.testing.assert_array_equal(maxs[:, ::4], audio[:, 1000:1010])


def test_save_load_round_trip_without_pickle(tmp_path, audio, cache):
    path = tmp_path / "cache" / "peaks" / "abc.npz"
    cache.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["abc.npz"]  # no temp file left
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    loaded = PeakCache.load(path, channels=2, frames=audio.shape[1], sample_rate=SR)
    for x, y in zip(loaded.levels, cache.levels):
        np.testing.assert_array_equal(x.mins, y.mins)
        np.testing.assert_array_equal(x.rms, y.rms)
    with pytest.raises(ValueError, match="doesn't match"):
        PeakCache.load(path, channels=2, frames=audio.shape[1] + 1, sample_rate=SR)


def test_open_is_lazy_and_damaged_cache_is_rebuilt(tmp_path, audio, cache):
    path = tmp_path / "peaks" / "x.npz"
    lazy = PeakCache.open(path, channels=2, frames=audio.shape[1], sample_rate=SR, source=source_of(audio))
    assert not path.exists() and not lazy.is_loaded  # nothing read or written yet
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 this is not a zip file")
    lazy.ensure()  # what a background thread calls before the first paint
    assert lazy.is_loaded
    mins, maxs, rms = lazy.query(0, audio.shape[1], 500)
    np.testing.assert_array_equal(maxs, cache.query(0, audio.shape[1], 500)[1])
    reloaded = PeakCache.load(path, channels=2, frames=audio.shape[1], sample_rate=SR)  # rewritten, valid
    np.testing.assert_array_equal(reloaded.levels[0].maxs, cache.levels[0].maxs)


def test_stale_cache_without_source_reads_zeros(tmp_path, audio, cache):
    path = tmp_path / "x.npz"
    cache.save(path)
    stale = PeakCache.open(path, channels=1, frames=10, sample_rate=SR)  # header mismatch, nothing to rebuild from
    out = stale.query(0, 10, 5)
    assert all(o.shape == (1, 5) and not o.any() for o in out)


def test_failing_source_never_throws(audio):
    def broken(start, frames):
        raise OSError("disk gone")

    c = PeakCache(2, audio.shape[1], SR, source=broken)
    out = c.query(0, 1000, 100)
    assert all(o.shape == (2, 100) and not o.any() for o in out)


def test_pool_peaks_of_real_file(shared, tmp_path):
    pool = MediaPool(tmp_path / "song.seedproj" / "media", 44100)
    item = pool.import_file(shared / "audio" / "lmms_house_loop01.ogg")
    cache_file = tmp_path / "song.seedproj" / "cache" / "peaks" / f"{item.id}.npz"
    assert cache_file.is_file()
    audio = pool.read(item)
    fresh = MediaPool(pool.root, 44100).peaks(item)  # loads the saved file lazily
    for start, end, width in [(0, item.frames, 800), (1000, 9000, 700), (20_000, 60_000, 123)]:
        mins, maxs, rms = fresh.query(start, end, width)
        _, s, e = fresh.pixel_ranges(start, end, width)
        bmins, bmaxs, brms = brute(audio, s, e)
        np.testing.assert_array_equal(mins, bmins)
        np.testing.assert_array_equal(maxs, bmaxs)
        np.testing.assert_allclose(rms, brms, rtol=1e-4, atol=1e-7)
