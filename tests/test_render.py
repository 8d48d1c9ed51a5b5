"""Render: clip placement, offsets, fades, gains, pan law, mute/solo, effects, takes, blocks."""
from __future__ import annotations

import math
import threading

import numpy as np
import pedalboard
import pytest

from studio.errors import RenderError
from studio.model.project import AudioClip, Effect, MediaItem, Project, Take, TakeGroup, Track
from studio.audio.render import (
    RenderCancelled, Renderer, is_audible, pan_gains, render_block, render_mix, render_stems, render_track_raw,
)

SR = 44100


class ArrayPool:
    """In-memory stand-in for MediaPool.read (same contract: zero-padded outside the media)."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, project: Project, audio: np.ndarray) -> MediaItem:
        audio = np.asarray(audio, dtype=np.float32)
        mid = f"m{len(self.arrays)}"
        item = MediaItem(mid, f"media/{mid}.wav", SR, audio.shape[0], audio.shape[1])
        self.arrays[mid] = audio
        project.media[mid] = item
        return item

    def read(self, item, start=0, frames=None):
        a = self.arrays[item.id]
        frames = a.shape[1] - start if frames is None else frames
        out = np.zeros((a.shape[0], frames), np.float32)
        lo, hi = max(start, 0), min(start + frames, a.shape[1])
        if hi > lo:
            out[:, lo - start:hi - start] = a[:, lo:hi]
        return out


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (channels, frames)).astype(np.float32)


def dc(value: float, frames: int, channels: int = 1) -> np.ndarray:
    return np.full((channels, frames), value, dtype=np.float32)


def one_clip_project(audio: np.ndarray, **clip_kw) -> tuple[Project, ArrayPool, AudioClip]:
    p, pool = Project(sample_rate=SR), ArrayPool()
    item = pool.add(p, audio)
    clip = AudioClip(item.id, **{"start": 0, "offset": 0, "length": item.frames, **clip_kw})
    p.tracks.append(Track("T", clips=[clip]))
    return p, pool, clip


# ------------------------------------------------------------------------------ timing
@pytest.mark.parametrize("channels", [1, 2])
def test_clip_moved_by_n_samples_renders_shifted_by_exactly_n(channels):
    src = noise(channels, 20000, seed=channels)
    p, pool, clip = one_clip_project(src, start=1000, offset=777, length=9001, gain_db=-3.0,
                                     fade_in=301, fade_out=499)
    end = 40000
    ref = render_mix(p, pool, 0, end)
    assert np.flatnonzero(np.abs(ref).max(0))[0] == 1001  # the fade-in's first sample is 0 * x
    for n in (1, 2, 7, 63, 64, 65, 127, 4410, 12345):
        clip.start = 1000 + n
        moved = render_mix(p, pool, 0, end)
        assert np.array_equal(moved[:, n:], ref[:, :-n]), n
        assert not moved[:, :1000 + n].any()


def test_clip_samples_are_media_times_gain_and_fades():
    src = noise(2, 10000, seed=3)
    start, offset, length, fi, fo, gdb = 123, 456, 5000, 100, 250, -6.0
    p, pool, _ = one_clip_project(src, start=start, offset=offset, length=length, gain_db=gdb,
                                  fade_in=fi, fade_out=fo)
    out = render_mix(p, pool, 0, 6000)
    i = np.arange(length)
    env = np.minimum(1.0, i / fi) * np.minimum(1.0, (length - i) / fo)
    expected = src[:, offset:offset + length] * (10 ** (gdb / 20)) * env
    np.testing.assert_allclose(out[:, start:start + length], expected, atol=1e-6)
    assert not out[:, :start].any() and not out[:, start + length:].any()


def test_impulse_placed_at_sample_n_sounds_at_sample_n():
    imp = np.zeros((1, 100), np.float32)
    imp[0, 0] = 1.0
    for n in (0, 1, 4099, 44101):
        p, pool, _ = one_clip_project(imp, start=n)
        out = render_mix(p, pool, 0, n + 100)
        assert np.flatnonzero(out[0]).tolist() == [n] and np.flatnonzero(out[1]).tolist() == [n]
        assert out[0, n] == 1.0


def test_equal_gain_crossfade_sums_to_unity():
    p, pool = Project(sample_rate=SR), ArrayPool()
    item = pool.add(p, dc(1.0, 10000))
    f = 1000
    a = AudioClip(item.id, 0, 0, 5000, fade_out=f)
    b = AudioClip(item.id, 5000 - f, 0, 5000, fade_in=f)
    p.tracks.append(Track("T", clips=[a, b]))
    out = render_mix(p, pool, 0, 9000)
    np.testing.assert_allclose(out[0, 4000:5000], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[0], 1.0, atol=1e-6)
    assert out[0, 4000] == pytest.approx(1.0) and out[0, 4999] == pytest.approx(1.0)


def test_block_render_equals_render_mix_across_block_edges():
    src = noise(2, 30000, seed=5)
    p, pool, _ = one_clip_project(src, start=333, fade_in=50, fade_out=70)
    p.tracks[0].effects = [Effect("Compressor", {"threshold_db": -20.0, "ratio": 4.0}),
                           Effect("Reverb", {"room_size": 0.8})]
    whole = render_mix(p, pool, 0, 32000)
    r = Renderer(p, pool)
    blocks = [r.render_block(s, min(1000, 32000 - s)).mix for s in range(0, 32000, 1000)]
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), whole, atol=1e-5)


# ------------------------------------------------------------------------------ gain and pan
def test_pan_law_numbers():
    assert pan_gains(0.0) == pytest.approx((1.0, 1.0))
    assert pan_gains(-1.0) == pytest.approx((1.0, 0.0), abs=1e-12)
    assert pan_gains(1.0) == pytest.approx((0.0, 1.0), abs=1e-12)
    k = math.sqrt(2) * math.cos(3 * math.pi / 8)  # 0.5412
    assert pan_gains(0.5) == pytest.approx((k, 1.0))
    assert pan_gains(-0.5) == pytest.approx((1.0, k))
    # constant power in the sin/cos part: L^2 + R^2 == 2 before the min(1, .) limit
    for p in np.linspace(-1, 1, 9):
        a = (p + 1) * math.pi / 4
        assert (math.sqrt(2) * math.cos(a)) ** 2 + (math.sqrt(2) * math.sin(a)) ** 2 == pytest.approx(2.0)


@pytest.mark.parametrize("pan", [-1.0, -0.5, 0.0, 0.25, 1.0])
def test_mono_media_rendered_dual_mono_then_panned(pan):
    p, pool, _ = one_clip_project(dc(0.5, 1000))
    p.tracks[0].pan = pan
    p.tracks[0].gain_db = -6.0
    out = render_mix(p, pool, 0, 1000)
    left, right = pan_gains(pan)
    g = 10 ** (-6 / 20)
    np.testing.assert_allclose(out[0], 0.5 * g * left, atol=1e-7)
    np.testing.assert_allclose(out[1], 0.5 * g * right, atol=1e-7)


def test_master_gain_and_stems_sum_to_mix():
    p, pool = Project(sample_rate=SR, master_gain_db=-4.0), ArrayPool()
    for k in range(3):
        item = pool.add(p, noise(2, 5000, seed=k))
        p.tracks.append(Track(f"T{k}", gain_db=-k, pan=k / 3, clips=[AudioClip(item.id, 100 * k, 0, 5000)]))
    stems = render_stems(p, pool, 0, 6000)
    mix = render_mix(p, pool, 0, 6000)
    assert list(stems) == [t.id for t in p.tracks]
    np.testing.assert_allclose(sum(stems.values()) * 10 ** (-4 / 20), mix, atol=1e-6)


# ------------------------------------------------------------------------------ mute and solo
def _three_tracks():
    p, pool = Project(sample_rate=SR), ArrayPool()
    for k, v in enumerate((1.0, 2.0, 4.0)):
        item = pool.add(p, dc(v, 100))
        p.tracks.append(Track(f"T{k}", clips=[AudioClip(item.id, 0, 0, 100)]))
    return p, pool


def _level(p, pool):
    return float(render_mix(p, pool, 0, 100)[0, 50])


def test_mute_and_solo():
    p, pool = _three_tracks()
    a, b, c = p.tracks
    assert _level(p, pool) == 7.0
    b.mute = True
    assert _level(p, pool) == 5.0
    a.solo = True
    assert _level(p, pool) == 1.0
    b.solo = True  # muted and soloed: mute wins
    assert _level(p, pool) == 1.0
    a.mute = True
    assert _level(p, pool) == 0.0


def test_soloed_parent_lets_its_child_stems_play():
    p, pool = _three_tracks()
    a, b, c = p.tracks
    c.parent_id = a.id
    a.solo = True
    assert _level(p, pool) == 5.0  # parent 1 + child 4
    assert is_audible(p, c) and not is_audible(p, b)
    c.mute = True  # a muted child stays silent
    assert _level(p, pool) == 1.0
    a.solo, c.mute = False, False
    a.mute = True  # muting the parent does not mute its children
    assert _level(p, pool) == 6.0


def test_muted_track_stem_is_silent_and_not_in_mix():
    p, pool = _three_tracks()
    p.tracks[1].mute = True
    stems = render_stems(p, pool, 0, 100)
    assert not stems[p.tracks[1].id].any()
    assert stems[p.tracks[0].id][0, 0] == 1.0


# ------------------------------------------------------------------------------ effects
def test_effect_chain_is_applied_like_pedalboard():
    src = noise(2, 20000, seed=9)
    p, pool, _ = one_clip_project(src)
    p.tracks[0].effects = [Effect("HighpassFilter", {"cutoff_frequency_hz": 500.0}),
                           Effect("Compressor", {"threshold_db": -18.0, "ratio": 3.0}),
                           Effect("Gain", {"gain_db": 6.0})]
    out = render_mix(p, pool, 0, 20000)
    ref = pedalboard.Pedalboard([pedalboard.HighpassFilter(500.0),
                                 pedalboard.Compressor(threshold_db=-18.0, ratio=3.0),
                                 pedalboard.Gain(6.0)])(src, SR)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert not np.allclose(out, src, atol=1e-2)


def test_gain_effect_numbers_and_disabled_effect_skipped():
    p, pool, _ = one_clip_project(dc(0.25, 1000, 2))
    p.tracks[0].effects = [Effect("Gain", {"gain_db": 6.0}), Effect("Gain", {"gain_db": 20.0}, enabled=False)]
    out = render_mix(p, pool, 0, 1000)
    np.testing.assert_allclose(out, 0.25 * 10 ** (6 / 20), rtol=1e-5)


def test_highpass_removes_dc():
    p, pool, _ = one_clip_project(dc(0.5, 44100, 2))
    p.tracks[0].effects = [Effect("HighpassFilter", {"cutoff_frequency_hz": 200.0})]
    out = render_mix(p, pool, 0, 44100)
    assert np.abs(out[:, -1000:]).max() < 1e-3


@pytest.mark.parametrize("effect, words", [
    (Effect("VST3Plugin", {"path_to_plugin_file": "/tmp/x.vst3"}), "not allowed"),
    (Effect("__import__('os').system('true')", {}), "not allowed"),
    (Effect("Convolution", {}), "not allowed"),
    (Effect("Compressor", {"threshold": -3.0}), "unknown parameter"),
    (Effect("Compressor", {"ratio": "4"}), "must be a number"),
    (Effect("Compressor", {"ratio": 0.5}), "outside"),
    (Effect("Reverb", {"room_size": float("nan")}), "outside"),
    (Effect("LowpassFilter", {"cutoff_frequency_hz": 30000.0}), "Nyquist"),
    (Effect("LadderFilter", {"mode": "LPF99"}), "must be one of"),
])
def test_bad_effects_raise_clear_render_error(effect, words):
    p, pool, _ = one_clip_project(dc(0.5, 100))
    p.tracks[0].name = "Vocals"
    p.tracks[0].effects = [effect]
    with pytest.raises(RenderError) as err:
        render_mix(p, pool, 0, 100)
    assert words in str(err.value) and "Vocals" in str(err.value)


def test_live_effect_edit_rebuilds_chain():
    p, pool, _ = one_clip_project(dc(0.5, 1000, 2))
    r = Renderer(p, pool)
    p.tracks[0].effects = [Effect("Gain", {"gain_db": 0.0})]
    assert r.render_block(0, 100).mix[0, 0] == pytest.approx(0.5)
    p.tracks[0].effects[0].params["gain_db"] = -6.0
    assert r.render_block(100, 100).mix[0, 0] == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-5)


# ------------------------------------------------------------------------------ takes
def test_active_take_replaces_own_clips_in_its_range():
    p, pool = Project(sample_rate=SR), ArrayPool()
    own = pool.add(p, dc(1.0, 10000))
    alt = pool.add(p, dc(2.0, 10000))
    take = Take("alt", clips=[AudioClip(alt.id, 0, 0, 10000)])
    group = TakeGroup(2000, 5000, takes=[take], active_take_id=take.id)
    p.tracks.append(Track("T", clips=[AudioClip(own.id, 0, 0, 10000)], take_groups=[group]))
    out = render_mix(p, pool, 0, 10000)[0]
    assert (out[:2000] == 1.0).all() and (out[2000:5000] == 2.0).all() and (out[5000:] == 1.0).all()
    group.active_take_id = None
    assert (render_mix(p, pool, 0, 10000)[0] == 1.0).all()


# ------------------------------------------------------------------------------ raw, errors, cancel
def test_render_track_raw_is_pre_fader():
    p, pool, _ = one_clip_project(dc(0.5, 1000))
    t = p.tracks[0]
    t.gain_db, t.pan, t.mute = -20.0, 1.0, True
    t.effects = [Effect("Gain", {"gain_db": 12.0})]
    raw = render_track_raw(p, pool, t.id, 10, 510)
    assert raw.shape == (2, 500) and raw.dtype == np.float32
    assert (raw == 0.5).all()
    assert not render_mix(p, pool, 0, 1000).any()


def test_default_range_is_project_length_and_negative_start_is_silence():
    p, pool, _ = one_clip_project(dc(0.5, 1000), start=500)
    assert render_mix(p, pool).shape == (2, 1500)
    out = render_mix(p, pool, -100, 600)
    assert out.shape == (2, 700) and not out[:, :600].any() and (out[:, 600:] == 0.5).all()


def test_missing_media_and_unknown_track_raise_render_error():
    p, pool, clip = one_clip_project(dc(0.5, 100))
    with pytest.raises(RenderError, match="unknown track"):
        render_mix(p, pool, 0, 100, track_ids=["nope"])
    clip.media_id = "deadbeef"
    with pytest.raises(RenderError, match="deadbeef"):
        render_mix(p, pool, 0, 100)


def test_cancel_stops_render():
    p, pool, _ = one_clip_project(dc(0.5, 100))
    ev = threading.Event()
    ev.set()
    with pytest.raises(RenderCancelled):
        render_mix(p, pool, 0, 100, cancel=ev)


def test_progress_reaches_one():
    p, pool, _ = one_clip_project(dc(0.5, 300000))
    seen = []
    render_mix(p, pool, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 3


def test_module_render_block_with_and_without_a_renderer():
    p, pool, _ = one_clip_project(noise(2, 5000, seed=11))
    p.tracks[0].effects = [Effect("Delay", {"delay_seconds": 0.01, "feedback": 0.5, "mix": 0.5})]
    whole = render_mix(p, pool, 0, 5000)
    r = Renderer(p, pool)
    first = render_block(p, pool, 0, 2500, renderer=r)
    second = render_block(p, pool, 2500, 2500, renderer=r)
    np.testing.assert_allclose(np.concatenate([first.mix, second.mix], axis=1), whole, atol=1e-5)
    fresh = render_block(p, pool, 2500, 2500)  # new renderer: the delay line starts empty
    assert fresh.mix.shape == (2, 2500) and not np.allclose(fresh.mix, second.mix, atol=1e-4)
    assert list(fresh.stems) == [p.tracks[0].id]


def test_render_tail_lets_effects_ring_after_clips_stop_at_the_end():
    src = noise(2, 40000, seed=7)
    p, pool, clip = one_clip_project(src, start=1000)
    p.tracks[0].effects = [Effect("Reverb", {"room_size": 0.9, "wet_level": 0.5})]
    end, tail = 25000, 20000  # the range ends in the middle of the clip
    plain = render_mix(p, pool, 0, end)
    with_tail = render_mix(p, pool, 0, end, tail=tail)
    assert with_tail.shape == (2, end + tail)
    np.testing.assert_array_equal(with_tail[:, :end], plain)  # the range itself is unchanged
    # the tail is exactly what a project with the clip cut at `end` renders there: only reverb
    q, qpool, qclip = one_clip_project(src, start=1000, length=end - 1000)
    q.tracks[0].effects = p.tracks[0].effects
    np.testing.assert_allclose(with_tail, render_mix(q, qpool, 0, end + tail), atol=1e-6)
    ring = np.abs(with_tail[:, end:end + 2000]).max()
    assert ring > 1e-3  # audible decay, not silence
    # without effects the tail is silent: the clip really stops at `end`
    p.tracks[0].effects = []
    assert np.abs(render_mix(p, pool, 0, end, tail=tail)[:, end:]).max() == 0.0
    stems = render_stems(p, pool, 0, end, tail=tail)
    assert all(s.shape == (2, end + tail) for s in stems.values())
    with pytest.raises(RenderError, match="tail"):
        render_mix(p, pool, 0, end, tail=-1)
