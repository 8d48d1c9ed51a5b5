"""Key estimation (Krumhansl-Schmuckler) on synthetic chords and on the real multitrack vs its MIDI."""
from __future__ import annotations

import mido
import numpy as np
import pytest
import soundfile as sf

from engines.analysis.key import PITCH_CLASSES, estimate_key, key_from_chroma, key_from_notes


def _tones(midi_pitches, sr=22050, seconds=0.5):
    t = np.arange(int(sr * seconds)) / sr
    out = []
    for chord in midi_pitches:
        out.append(sum(np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t) for p in chord) / len(chord))
    return np.concatenate(out).astype(np.float32), sr


def test_profiles_recover_every_key_from_their_own_profile():
    from engines.analysis.key import PROFILES

    for name, prof in PROFILES.items():
        for mode in ("major", "minor"):
            for tonic in range(12):
                k = key_from_chroma(np.roll(prof[mode], tonic), profile=name)
                assert (k.tonic, k.mode) == (tonic, mode)
                assert k.correlation == pytest.approx(1.0)


@pytest.mark.parametrize("progression,expected", [
    ([[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]], "C major"),    # I IV V I in C
    ([[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]], "A minor"),    # i iv V i in A minor
    ([[62, 66, 69], [67, 71, 74], [69, 73, 76], [62, 66, 69]], "D major"),
])
def test_synthetic_progressions(progression, expected):
    audio, sr = _tones(progression)
    assert estimate_key(audio, sr).name == expected


def test_blupi_mixture_key_matches_its_midi(shared):
    mf = mido.MidiFile(str(shared / "midi" / "blupi_music001.mid"))
    tempo = next(m.tempo for tr in mf.tracks for m in tr if m.type == "set_tempo")
    notes = []
    for tr in mf.tracks:
        tick, on = 0, {}
        for m in tr:
            tick += m.time
            if getattr(m, "channel", None) == 9:
                continue  # drums
            if m.type == "note_on" and m.velocity > 0:
                on[m.note] = tick
            elif m.type in ("note_off", "note_on") and m.note in on:
                a = mido.tick2second(on.pop(m.note), mf.ticks_per_beat, tempo)
                b = mido.tick2second(tick, mf.ticks_per_beat, tempo)
                if 5.0 <= a < 25.0:
                    notes.append((m.note, b - a))
    symbolic = key_from_notes(notes)
    x, sr = sf.read(shared / "multitrack" / "blupi001" / "mixture.flac", dtype="float32", always_2d=True)
    audio_key = estimate_key(x.T, sr)
    assert audio_key.name == symbolic.name, (audio_key.name, symbolic.name)
    assert audio_key.name == "Eb major"
    assert audio_key.to_dict()["name"] == f"{PITCH_CLASSES[audio_key.tonic]} {audio_key.mode}"


def test_silence_and_bad_input_raise():
    with pytest.raises(ValueError, match="silent"):
        estimate_key(np.zeros((2, 22050), np.float32), 22050)
    with pytest.raises(ValueError, match="12"):
        key_from_chroma(np.ones(11))
    with pytest.raises(ValueError, match="profile"):
        key_from_chroma(np.arange(12.0), profile="nope")
    with pytest.raises(ValueError, match="no notes"):
        key_from_notes([])
