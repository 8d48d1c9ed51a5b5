"""Levels (studio.audio.levels): true peak (BS.1770-4), loudness (LUFS) against pyloudnorm,
overs, block independence, the over warning; the metronome and the GM names."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from studio.audio.levels import (LevelMeter, Loudness, TruePeak, block_levels, gain_to_db, measure,
                                 over_warning)

SR = 44100


def sine(freq: float, amp: float, seconds: float = 1.0, sr: int = SR, phase: float = 0.0,
         fade: bool = True) -> np.ndarray:
    """A stereo sine; with ``fade``, 10 ms raised-cosine ramps (an abrupt start is a step,
    and a step really does overshoot between samples)."""
    n = np.arange(int(seconds * sr))
    x = amp * np.sin(2 * np.pi * freq * n / sr + phase)
    if fade:
        k = int(0.01 * sr)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    x = x.astype(np.float32)
    return np.stack([x, x])


@pytest.mark.parametrize("freq", [100.0, 997.0, 5000.0, 15000.0, 18000.0])
@pytest.mark.parametrize("amp_db", [-6.0, -20.0])
def test_sine_peaks_read_within_a_tenth_of_a_db(freq, amp_db):
    x = sine(freq, 10 ** (amp_db / 20), phase=0.3)
    lv = measure(x, SR)
    assert lv.true_peak_dbfs == pytest.approx(amp_db, abs=0.1)
    assert lv.sample_peak_dbfs == pytest.approx(amp_db, abs=0.1 if freq < 10000 else 1.0)
    assert lv.sample_peak_dbfs <= lv.true_peak_dbfs + 1e-9
    b = block_levels(x[:, SR // 10: -SR // 10])  # away from the fades
    assert b.rms_db == pytest.approx(amp_db - 3.0103, abs=0.05)  # a sine's RMS is 3.01 dB below its peak
    assert lv.over_samples == lv.clipped_samples == 0


def test_true_peak_finds_the_peak_between_samples():
    """A sine at a quarter of the sample rate, sampled 45 degrees off its crests: every
    sample reads -3.01 dBFS, the waveform itself reaches 0 dBFS."""
    x = sine(SR / 4, 1.0, phase=np.pi / 4, fade=False)
    lv = measure(x, SR)
    assert lv.sample_peak_dbfs == pytest.approx(-3.0103, abs=0.01)
    assert lv.true_peak_dbfs == pytest.approx(0.0, abs=0.1)
    assert lv.is_over is False or lv.true_peak_dbfs > 0.0


def test_true_peak_does_not_depend_on_the_blocks():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, SR * 3)) * 0.2 * np.abs(np.sin(np.arange(SR * 3) / SR))).astype(np.float32)
    whole = TruePeak(SR)
    whole.process(x)
    parts = TruePeak(SR)
    for i in range(0, x.shape[1], 777):
        parts.process(x[:, i:i + 777])
    np.testing.assert_array_equal(whole.peak, parts.peak)
    # the skipped chunks never hide the peak: same as oversampling everything
    from scipy.signal import upfirdn

    from studio.audio.levels import _interpolator

    h = _interpolator(4)
    full = [np.abs(upfirdn(h, x[c].astype(np.float64), up=4)).max() for c in range(2)]
    np.testing.assert_allclose(whole.peak, np.maximum(full, np.abs(x).max(axis=1)), rtol=1e-5)


def test_loudness_matches_pyloudnorm_on_real_music(shared):
    import pyloudnorm

    x, sr = sf.read(str(shared / "audio" / "uncertain_future_30s.flac"), dtype="float32", always_2d=True)
    ref = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
    meter = Loudness(sr)
    for i in range(0, x.shape[0], 100_003):
        meter.process(x[i:i + 100_003].T)
    assert meter.integrated() == pytest.approx(ref, abs=0.01)
    assert -40 < ref < -5


def test_loudness_of_a_sine_and_of_silence():
    assert measure(sine(997.0, 0.1, seconds=3.0), SR).loudness_lufs == pytest.approx(-20.0, abs=0.1)
    assert measure(np.zeros((2, SR)), SR).loudness_lufs == -math.inf
    assert measure(sine(997.0, 0.5, seconds=0.2), SR).loudness_lufs == -math.inf  # shorter than one block
    assert gain_to_db(0.0) == -math.inf and gain_to_db(1.0) == 0.0


def test_overs_are_counted_in_float_and_clipped_in_pcm():
    x = sine(440.0, 1.5, fade=False)
    over = int(np.count_nonzero(np.abs(x) > 1.0))
    pcm = LevelMeter(SR, clips=True)
    flt = LevelMeter(SR, clips=False)
    for i in range(0, x.shape[1], 4096):
        pcm.add(x[:, i:i + 4096])
        flt.add(x[:, i:i + 4096])
    assert pcm.result().clipped_samples == pcm.result().over_samples == over > 0
    assert flt.result().clipped_samples == 0 and flt.result().over_samples == over
    assert flt.result().true_peak_dbfs == pytest.approx(20 * math.log10(1.5), abs=0.1)


def test_the_warning_names_files_peaks_loudness_and_what_to_do():
    loud = measure(sine(440.0, 1.6, seconds=2.0), SR)
    quiet = measure(sine(440.0, 0.1, seconds=2.0), SR)
    assert over_warning([("quiet.wav", quiet)], float_format=False, master_gain_db=0.0) is None
    text = over_warning([("Mix.wav", loud), ("quiet.wav", quiet)], float_format=False, master_gain_db=-2.0)
    assert "Mix.wav" in text and "quiet.wav" not in text
    assert f"{loud.clipped_samples:,} samples clipped" in text
    assert "true peak +4.1 dBFS" in text and "LUFS" in text
    # lower the master by true peak + 1 dB, to -1 dBFS: 4.1 + 1 = 5.1 dB, from -2 to -7.1 dB
    assert "lower the master by 5.1 dB" in text and "--master-gain -7.1" in text and "--float" in text
    app = over_warning([("Mix.wav", loud)], float_format=True, master_gain_db=0.0, app=True)
    assert "32-bit float" in app and "Master fader" in app and "--" not in app


def test_metronome_clicks_on_every_beat_with_the_downbeat_accented():
    from studio.audio.metronome import BEAT_GAIN, CLICK_S, DOWNBEAT_GAIN, beats_in, click_block
    from studio.model.timebase import TempoMap

    tm = TempoMap.constant(120.0, 3, 4)  # a beat every 0.5 s, 3 per bar
    beats = beats_in(tm, SR, 0, 3 * SR)
    assert [s for s, _ in beats] == [int(round(i * 0.5 * SR)) for i in range(6)]
    assert [d for _, d in beats] == [True, False, False, True, False, False]
    # any block boundary gives the same clicks (a click crossing a block edge continues)
    whole = click_block(tm, SR, 0, 3 * SR)
    parts = np.concatenate([click_block(tm, SR, i, 1000) for i in range(0, 3 * SR, 1000)], axis=1)[:, :3 * SR]
    np.testing.assert_array_equal(whole, parts)
    n = int(CLICK_S * SR)
    assert np.abs(whole[:, :n]).max() == pytest.approx(DOWNBEAT_GAIN, rel=0.05)
    assert np.abs(whole[:, SR // 2:SR // 2 + n]).max() == pytest.approx(BEAT_GAIN, rel=0.05)
    assert not whole[:, n:SR // 2].any()  # silence between clicks


def test_gm_names():
    from studio.audio.gm import GM_FAMILIES, GM_PROGRAMS, program_name

    assert len(GM_PROGRAMS) == 128 and len(GM_FAMILIES) == 16
    assert GM_PROGRAMS[0] == "Acoustic Grand Piano" and GM_PROGRAMS[33] == "Electric Bass (finger)"
    assert program_name(40) == "41 Violin" and program_name(0, is_drum=True) == "Drums: Standard"


def _has_gm() -> bool:
    try:
        from studio.audio.synth import find_soundfont

        find_soundfont()
        import fluidsynth  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.skipif(not _has_gm(), reason="no GM SoundFont / FluidSynth on this machine")
def test_playback_segments_and_warming_give_the_same_audio_as_export(shared):
    """Playback's short MIDI segments, synthesised ahead by warm_midi, sound like the export's
    30 s segments (notes crossing a segment edge are rendered from their onset)."""
    from studio.audio.render import PLAYBACK_MIDI_SEGMENT_S, Renderer, render_mix
    from studio.io.midi_io import read_midi
    from studio.model.project import Project, Track
    from studio.model.timebase import TempoMap

    parts, _ = read_midi(shared / "midi" / "blupi_music001.mid")
    p = Project(sample_rate=SR, tempo_map=TempoMap.constant(120.0))
    for name, clip, program, is_drum, _ch in parts[:3]:
        p.tracks.append(Track(name, kind="midi", program=program, is_drum=is_drum, clips=[clip]))
    start, end = 2 * SR, 11 * SR  # crosses two 4 s segment edges
    ref = render_mix(p, None, start, end)
    r = Renderer(p, None, threads=1, midi_segment_s=PLAYBACK_MIDI_SEGMENT_S)
    seg = int(PLAYBACK_MIDI_SEGMENT_S * SR)
    out, pos, warmed = [], start, 0
    while pos < end:
        warmed += r.warm_midi(pos + seg, limit=1)
        n = min(2048, end - pos)
        out.append(r.render_block(pos, n).mix)
        pos += n
    assert warmed >= 3  # segments were made ahead of the blocks that needed them
    got = np.concatenate(out, axis=1)
    assert np.abs(ref).max() > 0.01
    # the same up to FluidSynth's own state at a segment's start (reverb, voices): below -60 dBFS
    diff = got - ref
    assert np.abs(diff).max() < 1e-3 and np.sqrt(np.mean(diff ** 2)) < 1e-5
