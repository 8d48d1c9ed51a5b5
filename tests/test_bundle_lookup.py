"""The desktop bundle's lookups: its own GM SoundFont and libfluidsynth (studio.audio.synth),
and the launcher's multiprocessing support for a frozen app."""
from __future__ import annotations

import ctypes.util
import sys

import pytest

import studio.audio.synth as synth


@pytest.fixture
def fake_bundle(tmp_path, monkeypatch):
    """A frozen app whose ``sys._MEIPASS`` is ``tmp_path/bundle``; no env/settings/user SoundFont."""
    base = tmp_path / "bundle"
    (base / "soundfonts").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(base), raising=False)
    monkeypatch.delenv("SEED_STUDIO_SOUNDFONT", raising=False)
    monkeypatch.setattr(synth, "_settings_soundfont", lambda: None)
    monkeypatch.setattr(synth, "user_soundfont_dir", lambda: tmp_path / "user" / "soundfonts")
    return base


def test_not_frozen_means_no_bundle(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert synth.bundle_dir() is None
    assert synth.bundled_soundfont_dir() is None
    assert synth.bundled_fluidsynth_library() is None


def test_bundled_soundfont_comes_after_the_musicians_own_and_before_the_system(fake_bundle, tmp_path, monkeypatch):
    bundled = fake_bundle / "soundfonts" / "FluidR3_GM.sf2"
    bundled.write_bytes(b"RIFF")
    system = tmp_path / "system.sf2"
    system.write_bytes(b"RIFF")
    monkeypatch.setattr(synth, "SYSTEM_SOUNDFONT_PATHS", [str(system)])
    assert synth.bundled_soundfont_dir() == fake_bundle / "soundfonts"
    assert synth.find_soundfont() == bundled
    # the musician's own SoundFont (user folder, setting, environment) wins over the bundle's
    user = tmp_path / "user" / "soundfonts"
    user.mkdir(parents=True)
    (user / "Mine.sf2").write_bytes(b"RIFF")
    assert synth.find_soundfont() == user / "Mine.sf2"
    monkeypatch.setattr(synth, "_settings_soundfont", lambda: str(system))
    assert synth.find_soundfont() == system
    # without its SoundFont the bundle falls back to the system's
    monkeypatch.setattr(synth, "_settings_soundfont", lambda: None)
    (user / "Mine.sf2").unlink()
    bundled.unlink()
    assert synth.find_soundfont() == system


def test_bundled_fluidsynth_library_answers_find_library_only_for_fluidsynth(fake_bundle):
    assert synth.bundled_fluidsynth_library() is None
    lib = fake_bundle / "libfluidsynth.so.3"
    lib.write_bytes(b"\x7fELF")
    assert synth.bundled_fluidsynth_library() == lib
    before = ctypes.util.find_library
    with synth._library_override(lib):
        for name in ("fluidsynth", "libfluidsynth-3", "fluidsynth-3"):
            assert ctypes.util.find_library(name) == str(lib)
        assert ctypes.util.find_library("c") == before("c")
    assert ctypes.util.find_library is before
    with synth._library_override(None):
        assert ctypes.util.find_library is before


def test_launcher_calls_freeze_support_first(monkeypatch, capsys):
    import multiprocessing

    import ui.launcher as launcher

    calls = []
    monkeypatch.setattr(multiprocessing, "freeze_support", lambda: calls.append("freeze"))
    with pytest.raises(SystemExit) as done:
        launcher.main(["--version"])
    assert done.value.code == 0 and calls == ["freeze"]
    assert "seed-studio" in capsys.readouterr().out


def test_startup_probe_opens_the_app_through_the_probe(monkeypatch):
    import ui.launcher as launcher

    opened = []
    monkeypatch.setattr(launcher, "_open_app_probed", lambda project=None: opened.append(project) or 0)
    monkeypatch.setenv(launcher.ENV_STARTUP_PROBE, "1")
    assert launcher.main([]) == 0 and opened == [None]
