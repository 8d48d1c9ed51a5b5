"""Tempo map conversions: ticks <-> seconds <-> samples <-> bars."""
from __future__ import annotations

import pytest

from studio.model.timebase import PPQ, TempoChange, TempoMap, TimeSignature


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


def test_with_change_inserts_tempo_and_meter_at_a_bar():
    tm = TempoMap.constant(120.0, 4, 4)
    a = tm.with_change(4, 90.0)
    assert [(t.tick, t.bpm) for t in a.tempos] == [(0, 120.0), (16 * PPQ, 90.0)]
    assert a.tick_to_seconds(16 * PPQ) == pytest.approx(8.0)  # 4 bars of 4 beats at 120
    assert a.tick_to_seconds(20 * PPQ) == pytest.approx(8.0 + 4 * 60 / 90)
    assert tm.with_change(0, 100.0).tempos == [TempoChange(0, 100.0)]
    # a meter change keeps later changes on their bar numbers
    b = a.with_change(8, 100.0).with_change(0, None, 3, 4)
    assert [b.bar_beat_at(t.tick)[:2] for t in b.tempos] == [(0, 0), (4, 0), (8, 0)]
    assert [t.bpm for t in b.tempos] == [120.0, 90.0, 100.0]
    assert b.signatures == [TimeSignature(0, 3, 4)] and b.bar_to_tick(4) == 12 * PPQ
    c = tm.with_change(2, None, 7, 8).with_change(6, None, 4, 4)
    assert [(s.tick, s.numerator, s.denominator) for s in c.signatures] == [
        (0, 4, 4), (8 * PPQ, 7, 8), (8 * PPQ + 4 * 7 * PPQ // 2, 4, 4)]
    d = c.with_change(0, None, 6, 8)  # earlier bars shorter: later meter changes follow their bars
    assert [d.bar_beat_at(s.tick)[0] for s in d.signatures] == [0, 2, 6]
    with pytest.raises(ValueError, match="before the start"):
        tm.with_change(-1, 100.0)
    with pytest.raises(ValueError, match="BPM"):
        tm.with_change(2, 0.0)
    with pytest.raises(ValueError, match="time signature"):
        tm.with_change(2, None, 7, 9)
