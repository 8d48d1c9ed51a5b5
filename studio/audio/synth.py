"""General MIDI rendering of MIDI tracks through FluidSynth (pyfluidsynth + a GM SoundFont).

Method: FluidSynth (libfluidsynth 2.x, through pyfluidsynth's ctypes binding) renders
float32 stereo with ``fluid_synth_write_float``. FluidSynth computes audio in fixed
64-sample blocks and applies an event at the start of the next block, so calling it
between events alone would place notes up to 63 samples late. To make **note-ons
sample-exact**, notes are grouped by the phase of their onset modulo 64 and each group
is rendered on its own synth timeline aligned so that its onsets fall on block
boundaries; the groups are summed (synthesis is linear in the voices). Note-offs, CC
and pitch bends go to the nearest block boundary (at most 32 samples, 0.7 ms at
44.1 kHz). Silent stretches are skipped without rendering. Limitation: hi-hat style
exclusive classes and same-key retriggers only interact between notes of the same
onset phase. FluidSynth's own reverb and chorus are off (they would need continuous
rendering); use a Reverb/Chorus in the track's effect chain instead.

SoundFont lookup (:func:`find_soundfont`), first hit wins:

1. the environment variable ``SEED_STUDIO_SOUNDFONT``;
2. the ``soundfont`` key of the settings (:func:`studio.io.settings.load_settings`);
3. ``<platformdirs.user_data_dir("seed-studio")>/soundfonts/*.sf2`` (or ``*.sf3``);
4. in the desktop bundle (a frozen app), the SoundFont it ships in
   ``<bundle>/soundfonts/`` (:func:`bundled_soundfont_dir`);
5. the usual system locations (:data:`SYSTEM_SOUNDFONT_PATHS`: Debian/Ubuntu
   ``fluid-soundfont-gm``, Fedora, Arch ``soundfont-fluid``, Homebrew).

An explicitly configured path (1 or 2) that does not exist is an error, not skipped.
The desktop bundle also ships libfluidsynth: :func:`bundled_fluidsynth_library` finds it
and pyfluidsynth loads that one instead of searching the system's libraries.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import platformdirs

from studio.errors import RenderError

BLOCK = 64
"""FluidSynth's internal block size (FLUID_BUFSIZE), samples."""
SYNTH_GAIN = 0.2
"""FluidSynth master gain (its own default, as used by the ``fluidsynth`` command)."""
MAX_TAIL_S = 8.0
"""Longest release tail rendered after the last event, seconds."""
DRUM_CHANNEL = 9
"""GM percussion channel (channel 10 counted from 1)."""

SYSTEM_SOUNDFONT_PATHS: list[str] = [
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",          # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf2",          # Fedora fluid-soundfont-gm, Arch soundfont-fluid
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/usr/local/share/soundfonts/default.sf2",       # Homebrew (Intel) fluid-synth convention
    "/opt/homebrew/share/soundfonts/default.sf2",    # Homebrew (Apple silicon)
    "/usr/local/share/sounds/sf2/FluidR3_GM.sf2",
]
"""Where GM SoundFonts are installed by Linux distributions and Homebrew (checked in order)."""

INSTALL_HINT = (
    "install a General MIDI SoundFont (Debian/Ubuntu: 'sudo apt install fluid-soundfont-gm'; "
    "Fedora: 'sudo dnf install fluid-soundfont-gm'; Arch: 'sudo pacman -S soundfont-fluid'), "
    "or copy any GM .sf2 file into {user_dir}, or set SEED_STUDIO_SOUNDFONT=/path/to/file.sf2 "
    "(or the 'soundfont' setting)"
)


def user_soundfont_dir() -> Path:
    """``<user data dir>/soundfonts``, where a musician can drop a GM .sf2 file."""
    return Path(platformdirs.user_data_dir("seed-studio")) / "soundfonts"


def bundle_dir() -> Path | None:
    """The folder holding a desktop bundle's own files (PyInstaller's ``sys._MEIPASS``),
    or None when not running from a bundle (``sys.frozen`` unset)."""
    if not getattr(sys, "frozen", False):
        return None
    return Path(getattr(sys, "_MEIPASS", None) or Path(sys.executable).resolve().parent)


def bundled_soundfont_dir() -> Path | None:
    """``<bundle>/soundfonts``, where the desktop bundle ships its GM SoundFont; None outside a bundle."""
    base = bundle_dir()
    return None if base is None else base / "soundfonts"


FLUIDSYNTH_LIBRARY_GLOBS = ("libfluidsynth.so.*", "libfluidsynth.so", "libfluidsynth*.dylib",
                            "libfluidsynth*.dll", "fluidsynth*.dll")
"""File names of the FluidSynth library a bundle may ship (Linux, macOS, Windows)."""


def bundled_fluidsynth_library() -> Path | None:
    """The libfluidsynth shipped in the desktop bundle, or None (not a bundle, or none shipped)."""
    base = bundle_dir()
    if base is None or not base.is_dir():
        return None
    for pattern in FLUIDSYNTH_LIBRARY_GLOBS:
        found = sorted(p for p in base.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


@contextlib.contextmanager
def _library_override(path: Path | None) -> Iterator[None]:
    """While active, ``ctypes.util.find_library`` answers ``path`` for FluidSynth's names
    (pyfluidsynth looks its library up that way at import); other names are unchanged."""
    if path is None:
        yield
        return
    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        if "fluidsynth" in name.lower():
            return str(path)
        return original(name)

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = original


def _settings_soundfont() -> str | None:
    try:
        from studio.io.settings import load_settings
    except ImportError:  # settings module not available
        return None
    try:
        return load_settings().soundfont
    except Exception:  # settings must never stop a render; load_settings itself never raises
        return None


def find_soundfont() -> Path:
    """The General MIDI SoundFont to use (see the module docstring for the search order).

    Raises:
        RenderError: a configured path does not exist, or none was found; the message
            says how to install one.
    """
    env = os.environ.get("SEED_STUDIO_SOUNDFONT")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise RenderError(
                f"SoundFont '{p}' (from SEED_STUDIO_SOUNDFONT) does not exist; "
                + INSTALL_HINT.format(user_dir=user_soundfont_dir()))
        return p
    configured = _settings_soundfont()
    if configured:
        p = Path(configured).expanduser()
        if not p.is_file():
            raise RenderError(
                f"SoundFont '{p}' (from the 'soundfont' setting) does not exist; "
                + INSTALL_HINT.format(user_dir=user_soundfont_dir()))
        return p
    user_dir = user_soundfont_dir()
    if user_dir.is_dir():
        for pattern in ("*.sf2", "*.sf3"):
            found = sorted(user_dir.glob(pattern))
            if found:
                return found[0]
    bundled = bundled_soundfont_dir()
    if bundled is not None and bundled.is_dir():
        for pattern in ("*.sf2", "*.sf3"):
            found = sorted(bundled.glob(pattern))
            if found:
                return found[0]
    for cand in SYSTEM_SOUNDFONT_PATHS:
        p = Path(cand)
        if p.is_file():
            return p
    raise RenderError("no General MIDI SoundFont found to render MIDI tracks; "
                      + INSTALL_HINT.format(user_dir=user_dir))


def _fluidsynth_module() -> Any:
    try:
        with _library_override(bundled_fluidsynth_library()):
            import fluidsynth  # pyfluidsynth; loads libfluidsynth at import
    except (ImportError, OSError) as exc:
        raise RenderError(
            "FluidSynth is not available to render MIDI tracks "
            f"({exc}); install the library (Debian/Ubuntu: 'sudo apt install libfluidsynth3', "
            "Fedora: 'sudo dnf install fluidsynth-libs', Arch: 'sudo pacman -S fluidsynth', "
            "macOS: 'brew install fluid-synth') and 'pip install pyfluidsynth'") from None
    return fluidsynth


@dataclass(frozen=True)
class NoteEvent:
    """A note to synthesise: samples on the output timeline (``off > on``), key and velocity 1..127."""

    on: int
    off: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class ControlEvent:
    """A CC (``kind="cc"``, ``a`` = controller, ``b`` = value) or pitch bend
    (``kind="pb"``, ``a`` = -8192..8191) at ``sample``."""

    sample: int
    kind: str
    a: int
    b: int = 0


class GMSynth:
    """General MIDI synthesis with one SoundFont at one sample rate, through FluidSynth.

    Each :meth:`render` runs on a fresh FluidSynth instance, so a render depends only on
    its own events. Renders are serialised by a process-wide lock: FluidSynth instances
    running in parallel threads were seen to give slightly different (non-reproducible) audio.

    Args:
        sample_rate: Hz, 8000..96000 (FluidSynth's range).
        soundfont: .sf2/.sf3 path; :func:`find_soundfont` when None.

    Raises:
        RenderError: FluidSynth missing, or the SoundFont can't be loaded.
    """

    def __init__(self, sample_rate: int, soundfont: str | Path | None = None):
        self._fs = _fluidsynth_module()
        if not 8000 <= sample_rate <= 96000:
            raise RenderError(f"FluidSynth renders at 8000..96000 Hz, not {sample_rate} Hz")
        self.sample_rate = int(sample_rate)
        self.soundfont = Path(soundfont) if soundfont else find_soundfont()
        if not self.soundfont.is_file():
            raise RenderError(f"SoundFont '{self.soundfont}' does not exist")
        write = self._fs._fl.fluid_synth_write_float
        write.restype = ctypes.c_int
        write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._write = write
        self._buf = np.zeros((2, 4096), dtype=np.float32)
        self._synth: Any = None
        self._sfid = -1

    def _open(self) -> None:
        """A fresh FluidSynth instance, so that a render never depends on earlier renders.
        With dynamic sample loading the SoundFont opens in tens of milliseconds and only
        the samples of the selected preset are read."""
        self._synth = self._fs.Synth(gain=SYNTH_GAIN, samplerate=float(self.sample_rate), **{
            "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.dynamic-sample-loading": 1})
        self._sfid = self._synth.sfload(str(self.soundfont))
        if self._sfid < 0:
            self._synth.delete()
            self._synth = None
            raise RenderError(f"SoundFont '{self.soundfont}' could not be loaded by FluidSynth")

    def _close(self) -> None:
        if self._synth is not None:
            self._synth.delete()
            self._synth = None

    # -- low level -------------------------------------------------------------------
    def _select(self, channel: int, program: int, is_drum: bool) -> None:
        s = self._synth  # fresh, or silenced and reset by _silence()
        bank = 128 if is_drum else 0
        if s.program_select(channel, self._sfid, bank, program) < 0:
            s.program_select(channel, self._sfid, bank, 0)

    def _advance(self, out: np.ndarray, pos: int, n: int, base: int) -> int:
        """Render ``n`` (a multiple of 64) samples at output position ``pos``; skip when silent."""
        if n <= 0:
            return pos
        if self._synth.get_active_voice_count() == 0:
            return pos + n
        buf = self._buf
        end = pos + n
        while pos < end:
            k = min(buf.shape[1], end - pos)
            self._write(self._synth.synth, k, buf[0].ctypes.data, 0, 1, buf[1].ctypes.data, 0, 1)
            a, b = max(pos, base), min(pos + k, base + out.shape[1])
            if b > a:
                out[:, a - base:b - base] += buf[:, a - pos:b - pos]
            pos += k
        return pos

    def _apply(self, channel: int, kind: str, a: int, b: int) -> None:
        s = self._synth
        if kind == "on":
            s.noteon(channel, a, b)
        elif kind == "off":
            s.noteoff(channel, a)
        elif kind == "cc":
            s.cc(channel, a, b)
        elif kind == "pb":
            s.pitch_bend(channel, a)

    # -- public ----------------------------------------------------------------------
    def render(self, notes: Sequence[NoteEvent], controls: Sequence[ControlEvent], *,
               program: int = 0, is_drum: bool = False, start: int = 0, frames: int | None = None
               ) -> np.ndarray:
        """Synthesise notes and controls on one GM channel.

        Args:
            notes: note events in timeline samples.
            controls: CC and pitch-bend events in timeline samples (all of them, also
                those before ``start``: they set the channel state).
            program: GM program 0..127 (drum kit number when ``is_drum``).
            is_drum: play on channel 10 with the percussion bank (128).
            start: timeline sample of the first output frame. Notes that start before
                it are rendered from their onset, so their sound continues seamlessly.
            frames: output length; None = up to the end of the release tail
                (until every voice is silent, at most :data:`MAX_TAIL_S` after the last event).

        Returns:
            ``(2, frames)`` float32 at :attr:`sample_rate` for timeline samples
            ``[start, start + frames)``.
        """
        channel = DRUM_CHANNEL if is_drum else 0
        program = int(min(127, max(0, program)))
        notes = [n for n in notes if n.velocity > 0 and n.off > n.on]
        last = max([n.off for n in notes] + [c.sample for c in controls] + [0])
        cap = last + int(MAX_TAIL_S * self.sample_rate)
        length = max(0, cap - start) if frames is None else int(frames)
        out = np.zeros((2, max(length, 0)), dtype=np.float32)
        if not notes or length <= 0:
            return out[:, :0] if frames is None else out
        groups: dict[int, list[NoteEvent]] = {}
        for n in notes:
            groups.setdefault(n.on % BLOCK, []).append(n)
        ctl = [(c.sample, 1, c.kind, c.a, c.b) for c in controls]
        run = copy.copy(self)  # own FluidSynth instance and buffer
        run._buf = np.zeros((2, 4096), dtype=np.float32)
        with _FLUID_LOCK:  # concurrent FluidSynth instances give slightly different audio
            run._open()
            try:
                reached = run._render_groups(out, start, groups, ctl, channel, program, is_drum, cap)
            finally:
                run._close()
        if frames is None:
            return np.ascontiguousarray(out[:, :reached])
        return out

    def _render_groups(self, out: np.ndarray, start: int, groups: dict[int, list[NoteEvent]], ctl: list,
                       channel: int, program: int, is_drum: bool, cap: int) -> int:
        """Render each onset-phase group into ``out`` (timeline ``[start, start + len)``);
        returns the number of output frames reached."""
        out_end = start + out.shape[1]
        stop = min(out_end, cap)
        reached = start
        for phase, group in sorted(groups.items()):
            self._select(channel, program, is_drum)
            events = ctl + [(n.on, 2, "on", n.pitch, n.velocity) for n in group] \
                + [(n.off, 0, "off", n.pitch, 0) for n in group]
            events.sort(key=lambda e: (e[0], e[1]))
            # this group's synth timeline has its block boundaries at samples == phase (mod 64)
            pos = phase
            for sample, _, kind, a, b in events:
                target = pos + BLOCK * max(0, round((sample - pos) / BLOCK))
                if kind == "on":
                    target = sample  # exact by construction: sample == phase (mod 64)
                if target >= out_end:
                    break  # later events can't be heard in the output
                if target > pos:
                    pos = self._advance(out, pos, target - pos, start)
                self._apply(channel, kind, a, b)
            # release tail (or up to the output end)
            while pos < stop and self._synth.get_active_voice_count() > 0:
                step = min(4096, -(-(stop - pos) // BLOCK) * BLOCK)
                pos = self._advance(out, pos, step, start)
            reached = max(reached, min(pos, out_end))
            self._silence()
        return reached - start

    def _silence(self) -> None:
        """Kill every voice and let FluidSynth retire them, rendering into a scratch buffer:
        a killed voice keeps sounding until the synth renders again, and must not leak
        into the next group's output."""
        self._synth.system_reset()
        buf = self._buf
        for _ in range(1 + int(MAX_TAIL_S * self.sample_rate) // BLOCK):
            self._write(self._synth.synth, BLOCK, buf[0].ctypes.data, 0, 1, buf[1].ctypes.data, 0, 1)
            if self._synth.get_active_voice_count() == 0:
                break


_FLUID_LOCK = threading.Lock()
_SYNTHS: dict[tuple[str, int], GMSynth] = {}
_SYNTHS_LOCK = threading.Lock()


def get_synth(sample_rate: int, soundfont: str | Path | None = None) -> GMSynth:
    """A shared :class:`GMSynth` for ``(soundfont, sample_rate)`` (one per process and key).

    Raises:
        RenderError: see :class:`GMSynth` and :func:`find_soundfont`.
    """
    sf = Path(soundfont) if soundfont else find_soundfont()
    key = (str(sf.resolve()), int(sample_rate))
    with _SYNTHS_LOCK:
        synth = _SYNTHS.get(key)
        if synth is None:
            synth = _SYNTHS[key] = GMSynth(sample_rate, sf)
        return synth


def midi_events(windows: Iterable[tuple[Any, int, int]], tempo_map: Any, sample_rate: int
                ) -> tuple[list[NoteEvent], list[ControlEvent]]:
    """Notes and controls of MIDI clips, in timeline samples, limited to each clip's window.

    Args:
        windows: ``(MidiClip, window_start, window_end)`` as given by
            :meth:`studio.model.project.Project.sounding_clips` (samples).
        tempo_map: :class:`studio.model.timebase.TempoMap` (ticks -> samples).
        sample_rate: Hz.

    A note plays when its onset lies in the window; it ends at its own end, the clip end
    or the window end, whichever is first. Pitch bend and sustain (CC64) are reset at
    the end of a window that used them.
    """
    notes: list[NoteEvent] = []
    controls: list[ControlEvent] = []
    t2s = tempo_map.tick_to_sample
    for clip, ws, we in windows:
        clip_end = t2s(clip.end, sample_rate)
        limit = min(we, clip_end)
        for n in clip.notes:
            if n.start >= clip.length:
                continue
            on = t2s(clip.start + n.start, sample_rate)
            if not ws <= on < limit:
                continue
            off = min(t2s(clip.start + min(n.end, clip.length), sample_rate), limit)
            notes.append(NoteEvent(on, max(off, on + 1), n.pitch, n.velocity))
        sustain = False
        for c in clip.cc:
            s = t2s(clip.start + c.tick, sample_rate)
            if ws <= s < limit:
                controls.append(ControlEvent(s, "cc", c.controller, c.value))
                sustain = sustain or c.controller == 64
        bent = False
        for p in clip.pitch_bends:
            s = t2s(clip.start + p.tick, sample_rate)
            if ws <= s < limit:
                controls.append(ControlEvent(s, "pb", p.value))
                bent = True
        if sustain:
            controls.append(ControlEvent(limit, "cc", 64, 0))
        if bent:
            controls.append(ControlEvent(limit, "pb", 0))
    controls.sort(key=lambda c: c.sample)
    return notes, controls


def render_midi_windows(windows: Iterable[tuple[Any, int, int]], tempo_map: Any, sample_rate: int, *,
                        program: int = 0, is_drum: bool = False, soundfont: str | Path | None = None
                        ) -> np.ndarray:
    """Render a MIDI track's sounding clips through the GM synth.

    Args:
        windows: ``(MidiClip, window_start, window_end)`` from ``Project.sounding_clips``.
        tempo_map: the project's tempo map.
        sample_rate: project rate, Hz. Above 96 kHz the synth runs at half the rate
            and the result is resampled with soxr (:func:`studio.io.audio_io.resample`).
        program: GM program; is_drum: channel 10 / percussion bank.
        soundfont: path; :func:`find_soundfont` when None.

    Returns:
        ``(2, frames)`` float32 from timeline sample 0 to the end of the release tail.

    Raises:
        RenderError: no SoundFont or no FluidSynth library (with install instructions).
    """
    windows = list(windows)
    synth_rate = sample_rate if sample_rate <= 96000 else sample_rate // 2
    notes, controls = midi_events(windows, tempo_map, synth_rate)
    if not notes:
        return np.zeros((2, 0), dtype=np.float32)
    audio = get_synth(synth_rate, soundfont).render(notes, controls, program=program, is_drum=is_drum)
    if synth_rate != sample_rate:
        from studio.io.audio_io import resample

        audio = resample(audio, synth_rate, sample_rate)
    return audio
