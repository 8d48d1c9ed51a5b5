"""GM synth (FluidSynth): sample-exact note-ons, drums, programs, CC, pitch bend, SoundFont lookup."""
from __future__ import annotations

import numpy as np
import pytest

import studio.audio.synth as synth
from studio.errors import RenderError
from studio.model.project import ControlChange, MidiClip, Note, PitchBend, Project, Track
from studio.audio.render import render_mix
from studio.model.timebase import TempoMap

SR = 44100


@pytest.fixture(scope="module")
def gm():
    try:
        synth.find_soundfont()
        synth._fluidsynth_module()
    except RenderError as exc:
        pytest.skip(f"no GM synth on this machine: {exc}")
    return True


def midi_project(notes, *, bpm=123.0, program=0, is_drum=False, cc=(), bends=(), sr=SR):
    p = Project(sample_rate=sr, tempo_map=TempoMap.constant(bpm))
    clip = MidiClip(0, 960 * 64, notes=list(notes), cc=list(cc), pitch_bends=list(bends))
    p.tracks.append(Track("Synth", kind="midi", program=program, is_drum=is_drum, clips=[clip]))
    return p


def first_sound(x: np.ndarray, after: int = 0) -> int:
    return after + int(np.flatnonzero(np.abs(x[:, after:]).max(0) > 0)[0])


def test_note_onsets_land_on_their_samples(gm):
    # at 123 BPM one tick is 22.41 samples, so these onsets fall on many phases of FluidSynth's 64-sample blocks
    ticks = [0, 37, 1001, 1960, 2891, 4003, 5111]
    notes = [Note(60 + k, 100, t, 200) for k, t in enumerate(ticks)]
    tm = TempoMap.constant(123.0)
    samples = [tm.tick_to_sample(t, SR) for t in ticks]
    assert len({s % 64 for s in samples}) == len(samples)
    end = samples[-1] + 20000
    prev = np.zeros((2, end), np.float32)
    for k in range(1, len(notes) + 1):
        out = render_mix(midi_project(notes[:k]), None, 0, end)
        diff = out - prev
        on = samples[k - 1]
        assert not diff[:, :on].any(), f"note {k} changed audio before its onset {on}"
        # a voice starts at gain 0: its first non-zero sample is the onset or the one after
        assert first_sound(diff, on) in (on, on + 1)
        assert np.abs(diff[:, on:on + 2000]).max() > 1e-3
        prev = out


def test_render_is_non_silent_and_deterministic(gm):
    notes = [Note(48 + (i * 5) % 24, 100, i * 240, 400) for i in range(32)]
    a = render_mix(midi_project(notes, program=0), None)
    b = render_mix(midi_project(notes, program=0), None)
    assert a.shape[0] == 2 and a.dtype == np.float32
    assert np.sqrt(np.mean(a ** 2)) > 1e-3 and np.abs(a).max() < 1.0
    assert np.array_equal(a, b)


def test_drums_and_programs_sound_different(gm):
    notes = [Note(38, 110, 0, 480)]
    piano = render_mix(midi_project(notes, program=0), None, 0, 20000)
    organ = render_mix(midi_project(notes, program=19), None, 0, 20000)
    snare = render_mix(midi_project(notes, is_drum=True), None, 0, 20000)
    for x in (piano, organ, snare):
        assert np.abs(x).max() > 1e-3
    assert not np.allclose(piano, organ, atol=1e-3) and not np.allclose(piano, snare, atol=1e-3)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    mono = x.mean(0) * np.hanning(x.shape[1])
    spec = np.abs(np.fft.rfft(mono, 1 << 17))
    return float(np.argmax(spec) * sr / (1 << 17))


def test_pitch_bend_raises_pitch_by_two_semitones(gm):
    note = [Note(69, 100, 0, 960 * 4)]  # A4, 440 Hz, on a flute (program 73)
    tm = TempoMap.constant(123.0)
    a, b = tm.tick_to_sample(960, SR), tm.tick_to_sample(960 * 3, SR)
    plain = render_mix(midi_project(note, program=73), None, a, b)
    bent = render_mix(midi_project(note, program=73, bends=[PitchBend(0, 8191)]), None, a, b)
    assert _peak_hz(plain, SR) == pytest.approx(440.0, rel=0.01)
    assert _peak_hz(bent, SR) == pytest.approx(440.0 * 2 ** (2 / 12), rel=0.01)


def test_volume_cc_silences_after_its_tick(gm):
    tm = TempoMap.constant(123.0)
    note = [Note(60, 100, 0, 960 * 8)]
    out = render_mix(midi_project(note, program=19, cc=[ControlChange(960 * 2, 7, 0)]), None, 0,
                     tm.tick_to_sample(960 * 6, SR))
    cut = tm.tick_to_sample(960 * 2, SR)
    assert np.abs(out[:, cut - 5000:cut - 100]).max() > 1e-3
    assert np.abs(out[:, cut + 2000:]).max() < 1e-4


def test_other_sample_rate(gm):
    out = render_mix(midi_project([Note(60, 100, 0, 960)], sr=48000), None, 0, 48000)
    assert first_sound(out) in (0, 1) and np.abs(out).max() > 1e-3


def test_soundfont_search_order(tmp_path, monkeypatch):
    user = tmp_path / "data"
    (user / "soundfonts").mkdir(parents=True)
    sf2 = user / "soundfonts" / "My GM.sf2"
    sf2.write_bytes(b"RIFF")
    system = tmp_path / "system.sf2"
    system.write_bytes(b"RIFF")
    monkeypatch.delenv("SEED_STUDIO_SOUNDFONT", raising=False)
    monkeypatch.setattr(synth, "_settings_soundfont", lambda: None)
    monkeypatch.setattr(synth, "SYSTEM_SOUNDFONT_PATHS", [str(system)])
    monkeypatch.setattr(synth, "user_soundfont_dir", lambda: user / "soundfonts")
    assert synth.find_soundfont() == sf2
    sf2.unlink()
    assert synth.find_soundfont() == system
    monkeypatch.setattr(synth, "_settings_soundfont", lambda: str(sf2.with_name("set.sf2")))
    with pytest.raises(RenderError, match="'soundfont' setting"):
        synth.find_soundfont()
    monkeypatch.setenv("SEED_STUDIO_SOUNDFONT", str(system))
    assert synth.find_soundfont() == system


def test_missing_soundfont_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "SYSTEM_SOUNDFONT_PATHS", [str(tmp_path / "nothing.sf2")])
    monkeypatch.setattr(synth, "user_soundfont_dir", lambda: tmp_path / "soundfonts")
    monkeypatch.setattr(synth, "_settings_soundfont", lambda: None)
    monkeypatch.setenv("SEED_STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(RenderError) as err:
        render_mix(midi_project([Note(60, 100, 0, 960)]), None, 0, 1000)
    msg = str(err.value)
    assert "gone.sf2" in msg and "SEED_STUDIO_SOUNDFONT" in msg and "fluid-soundfont-gm" in msg
    monkeypatch.delenv("SEED_STUDIO_SOUNDFONT")
    with pytest.raises(RenderError) as err:
        synth.find_soundfont()
    msg = str(err.value)
    assert "no General MIDI SoundFont found" in msg and str(tmp_path / "soundfonts") in msg
    assert "apt install fluid-soundfont-gm" in msg


def test_missing_fluidsynth_library_gives_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "fluidsynth":
            raise ImportError("Couldn't find the FluidSynth library.")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RenderError, match="libfluidsynth3"):
        synth._fluidsynth_module()


def test_segmented_render_joins_seamlessly_and_matches_a_whole_render(gm):
    # notes every 0.4 s, 1..3 s long, across the 30 s segment edge of the renderer
    tm = TempoMap.constant(120.0)  # 1920 ticks per second
    notes = [Note(48 + (i * 7) % 24, 100, 1920 * 27 + i * 768, 1920 + (i % 3) * 1920) for i in range(15)]
    p = midi_project(notes, bpm=120.0, program=0)
    a, b = 28 * SR, 33 * SR
    seg = render_mix(p, None, a, b)
    whole = synth.render_midi_windows(p.sounding_clips(p.tracks[0]), tm, SR)
    whole = np.pad(whole, ((0, 0), (0, max(0, b - whole.shape[1]))))
    assert np.abs(whole[:, a:b]).max() > 1e-2
    np.testing.assert_allclose(seg, whole[:, a:b], atol=1e-7)
    # a render that starts mid-song hears notes that began before its start
    late = synth.get_synth(SR).render(*synth.midi_events(p.sounding_clips(p.tracks[0]), tm, SR),
                                      start=30 * SR, frames=SR)
    np.testing.assert_allclose(late, whole[:, 30 * SR:31 * SR], atol=1e-7)


def test_renderer_notices_replaced_notes(gm):
    from studio.audio.render import Renderer

    p = midi_project([Note(60, 100, 0, 960)])
    r = Renderer(p, None)
    before = r.render_block(0, 20000).mix
    assert np.array_equal(r.render_block(0, 20000).mix, before)  # cached segment, same audio
    p.tracks[0].clips[0].notes = [Note(67, 100, 0, 960)]  # what SetNotes does
    after = r.render_block(0, 20000).mix
    assert np.abs(after).max() > 1e-3 and not np.allclose(after, before, atol=1e-3)


def test_parallel_midi_tracks_equal_serial_render(gm):
    from studio.audio.render import Renderer

    p = midi_project([Note(60 + i % 12, 100, i * 300, 400) for i in range(40)])
    for prog, drum in ((33, False), (0, True)):
        t = Track(f"P{prog}", kind="midi", program=prog, is_drum=drum,
                  clips=[MidiClip(0, 960 * 16, notes=[Note(36 + i % 10, 100, i * 410, 300) for i in range(30)])])
        p.tracks.append(t)
    with Renderer(p, None, threads=3) as par, Renderer(p, None, threads=1) as ser:
        a = par.render_block(0, 5 * SR)
        b = ser.render_block(0, 5 * SR)
    assert np.array_equal(a.mix, b.mix) and np.abs(a.mix).max() > 1e-3
    assert all(np.array_equal(a.stems[k], b.stems[k]) for k in a.stems)
