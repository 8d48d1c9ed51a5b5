"""basic-pitch transcription (ONNX) on the real bass stem; MIDI file output; engine margins."""
from __future__ import annotations

import mir_eval
import mido
import numpy as np
import pytest
import soundfile as sf

from engines.analysis.transcribe import TranscribeParams, load_basic_pitch, transcribe
from engines.base import CancelToken, InvalidJob, ProgressReporter, TranscribeSpec


@pytest.fixture(scope="module")
def model():
    return load_basic_pitch()


@pytest.fixture(scope="module")
def bass(shared):
    x, sr = sf.read(shared / "multitrack" / "blupi001" / "bass.flac", dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.T), sr


def bass_reference(midi_path, t0=5.0, t1=25.0):
    """Onsets (s, relative to t0) and pitches of the MIDI track named 'Bass' in [t0, t1)."""
    mf = mido.MidiFile(str(midi_path))
    tempo = next(m.tempo for tr in mf.tracks for m in tr if m.type == "set_tempo")
    for tr in mf.tracks:
        if any(m.type == "track_name" and m.name.strip().lower() == "bass" for m in tr):
            break
    else:
        raise AssertionError("no Bass track in the MIDI file")
    notes, tick = [], 0
    for m in tr:
        tick += m.time
        if m.type == "note_on" and m.velocity > 0:
            t = mido.tick2second(tick, mf.ticks_per_beat, tempo)
            if t0 <= t < t1:
                notes.append((t - t0, m.note))
    return notes


def test_bass_stem_note_onset_f1(shared, bass, model):
    x, sr = bass
    ref = bass_reference(shared / "midi" / "blupi_music001.mid")
    assert len(ref) > 20
    result = transcribe(x, sr, model=model)
    est = [(n.start / sr, n.pitch) for n in result.notes]
    ref_iv = np.array([[t, t + 0.1] for t, _ in ref])
    est_iv = np.array([[t, t + 0.1] for t, _ in est])
    _p, _r, f1 = mir_eval.transcription.onset_precision_recall_f1(ref_iv, est_iv, onset_tolerance=0.05)
    assert f1 >= 0.5, f1
    # the pitches are right too (onset + pitch within 50 cents)
    hz = lambda ps: np.array([440.0 * 2 ** ((p - 69) / 12) for _, p in ps])  # noqa: E731
    _p, _r, f1_pitch, _o = mir_eval.transcription.precision_recall_f1_overlap(
        ref_iv, hz(ref), est_iv, hz(est), onset_tolerance=0.05, offset_ratio=None)
    assert f1_pitch >= 0.5, f1_pitch
    assert all(25 <= n.pitch <= 55 for n in result.notes)  # a bass line
    assert result.frames == x.shape[1] and result.activations["note"].shape[1] == 88


def test_parameters_change_the_result(bass, model):
    x, sr = bass
    x = x[:, : 8 * sr]
    base = transcribe(x, sr, model=model)
    strict = transcribe(x, sr, TranscribeParams(onset_threshold=0.9, frame_threshold=0.6), model=model)
    assert len(strict.notes) < len(base.notes)
    high_only = transcribe(x, sr, TranscribeParams(minimum_frequency=200.0), model=model)
    assert all(440 * 2 ** ((n.pitch - 69) / 12) >= 200.0 - 1e-6 for n in high_only.notes)
    assert len(high_only.notes) < len(base.notes)
    no_bends = transcribe(x, sr, TranscribeParams(pitch_bends=False), model=model)
    assert all(not n.pitch_bends for n in no_bends.notes)


@pytest.mark.parametrize("field,value", [("onset_threshold", 1.5), ("frame_threshold", -0.1),
                                         ("minimum_note_length_ms", -1.0)])
def test_bad_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        transcribe(np.zeros((1, 22050), np.float32), 22050, TranscribeParams(**{field: value}))


def test_engine_writes_midi_and_trims_context(bass, model, tmp_path):
    from engines.analysis.engine import BasicPitchEngine

    x, sr = bass
    x = x[:, 2 * sr: 10 * sr]
    engine = BasicPitchEngine()
    engine._model, engine.loaded, engine.device = model, True, "cpu"
    before = sr
    spec = TranscribeSpec(engine_id="basic-pitch", audio=x, sample_rate=sr, context=(before, 0))
    res = engine.run(spec, ProgressReporter(), CancelToken())
    notes = res.data["notes"]
    assert res.data["frames"] == x.shape[1] - before
    assert notes and all(0 <= n["start"] < res.data["frames"] for n in notes)
    full = transcribe(x, sr, model=model)
    expected = [(n.start - before, n.pitch) for n in full.notes if n.start >= before]
    assert [(n["start"], n["pitch"]) for n in notes] == expected
    # written as a MIDI file through studio's path, it holds the same notes at 120 BPM, PPQ 960
    from studio.io.midi_io import MidiPart, write_midi
    from studio.model.timebase import TempoMap
    from studio.tasks.transcribe import midi_clip_from_notes

    tm = TempoMap.constant(120.0)
    clip = midi_clip_from_notes(notes, tm, sr, 0, x.shape[1] - before, name="transcription")
    write_midi(str(tmp_path / "t.mid"), [MidiPart("transcription", [clip])], tm, name="transcription")
    mf = mido.MidiFile(str(tmp_path / "t.mid"))
    assert mf.ticks_per_beat == 960
    ons, tick = [], 0
    for m in mf.tracks[1]:
        tick += m.time
        if m.type == "note_on" and m.velocity > 0:
            ons.append((tick, m.note))
    assert [p for _, p in ons] == [p for _, p in sorted(expected, key=lambda e: (e[0], e[1]))]
    samples_per_tick = sr * 60 / 120 / 960
    assert max(abs(t * samples_per_tick - s) for (t, _), (s, _) in zip(ons, sorted(expected))) <= samples_per_tick
    with pytest.raises(InvalidJob):
        engine.run(TranscribeSpec(engine_id="basic-pitch", audio=x, sample_rate=sr,
                                  params={"onset_threshold": 2.0}), ProgressReporter(), CancelToken())
