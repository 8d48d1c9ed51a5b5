"""Tempo map conversions: ticks <-> seconds <-> samples <-> bars."""
from __future__ import annotations

import pytest

from studio.timebase import PPQ, TempoChange, TempoMap, TimeSignature


def test_constant_tempo_conversions():
    tm = TempoMap.constant(120)
    assert tm.tick_to_seconds(PPQ) == pytest.approx(0.5)
    assert tm.tick_to_sample(PPQ * 4, 44100) == 88200
    assert tm.sample_to_tick(88200, 44100) == PPQ * 4
    assert tm.seconds_to_tick(1.25) == pytest.approx(2.5 * PPQ)


def test_tempo_change_is_piecewise_and_invertible():
    tm = TempoMap([TempoChange(0, 120), TempoChange(4 * PPQ, 60)], [TimeSignature(0, 4, 4)])
    # 4 beats at 120 = 2 s, then each beat at 60 BPM = 1 s
    assert tm.tick_to_seconds(4 * PPQ) == pytest.approx(2.0)
    assert tm.tick_to_seconds(6 * PPQ) == pytest.approx(4.0)
    assert tm.bpm_at(4 * PPQ - 1) == 120 and tm.bpm_at(4 * PPQ) == 60
    for tick in (0, 1, 959, 3840, 3841, 10_000, 123_457):
        assert tm.seconds_to_tick(tm.tick_to_seconds(tick)) == pytest.approx(tick)
        assert tm.sample_to_tick(tm.tick_to_sample(tick, 48000), 48000) == tick


def test_bars_with_meter_change():
    tm = TempoMap([TempoChange(0, 100)], [TimeSignature(0, 4, 4), TimeSignature(8 * PPQ, 3, 4),
                                          TimeSignature(8 * PPQ + 6 * PPQ, 6, 8)])
    assert tm.bar_to_tick(2) == 8 * PPQ           # after two 4/4 bars
    assert tm.bar_to_tick(3) == 11 * PPQ          # one 3/4 bar later
    assert tm.bar_beat_at(11 * PPQ + 480) == (3, 0, 480.0)
    assert tm.bar_beat_at(14 * PPQ) == (4, 0, 0.0)  # first 6/8 bar
    assert tm.signature_at(14 * PPQ).ticks_per_beat == 480
    assert tm.bar_beat_at(14 * PPQ + 3 * 480 + 10) == (4, 3, 10.0)
    assert tm.grid_ticks(0, 12 * PPQ, 4 * PPQ)[:2] == [0, 4 * PPQ]


def test_round_trip_and_validation():
    tm = TempoMap([TempoChange(0, 97.5), TempoChange(1920, 140)], [TimeSignature(0, 7, 8)])
    assert TempoMap.from_dict(tm.to_dict()) == tm
    with pytest.raises(ValueError):
        TempoMap([TempoChange(10, 120)], [TimeSignature(0)])
    with pytest.raises(ValueError):
        TempoMap([TempoChange(0, -5)], [TimeSignature(0)])
    with pytest.raises(ValueError):
        TempoMap([TempoChange(0, 120)], [TimeSignature(0, 4, 3)])
