"""Real-time playback: the same render code as export, streamed to the audio device.

A worker thread keeps one :class:`studio.audio.render.Renderer` and renders consecutive
blocks of the live project (so mute, solo, gain and pan changes are heard within
:data:`AHEAD_S`) and another writes them to an output: pedalboard's ``AudioStream``
(JUCE) by default. The meters read the blocks as they go out.
The UI thread polls the position with a timer and moves the playhead; no Qt object is
touched from the worker. Where no output device exists (a server, a CI machine) playback
says so in plain words and does nothing else; it never crashes.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

log = logging.getLogger(__name__)

BLOCK = 2048
"""Frames per playback block."""
AHEAD_S = 0.3
"""How far the render thread may run ahead of the device, seconds (edits are heard after
at most this long). While it waits for room it synthesises the next MIDI segment, one
track at a time (:meth:`studio.audio.render.Renderer.warm_midi`), so a segment boundary
doesn't hold up the device."""
NO_DEVICE = ("No audio output device was found, so playback is off. Connect an audio interface "
             "or headphones, or pick a device in Preferences; exporting still works.")


class PedalboardSink:
    """Blocking writes to pedalboard's ``AudioStream`` (output only).

    Raises (constructor):
        RuntimeError: no output device, or the device can't be opened.
    """

    def __init__(self, sample_rate: int, device: str | None = None):
        from pedalboard.io import AudioStream

        names = list(AudioStream.output_device_names)
        if not names:
            raise RuntimeError(NO_DEVICE)
        name = device if device in names else names[0]
        self.stream = AudioStream(output_device_name=name, sample_rate=float(sample_rate),
                                  buffer_size=512, num_output_channels=2)
        self.sample_rate = sample_rate

    def write(self, audio: np.ndarray) -> None:
        self.stream.write(audio, self.sample_rate)

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:
            pass


def output_devices() -> list[str]:
    """Names of the audio output devices (empty when there are none). Never raises."""
    try:
        from pedalboard.io import AudioStream

        return list(AudioStream.output_device_names)
    except Exception:
        return []


class PlaybackController(QObject):
    """Play, stop, seek and loop one document; meter what plays; click the beats.

    Two threads run while playing: a *render* thread renders blocks of the live project
    with one :class:`~studio.audio.render.Renderer` (kept between plays, so MIDI renders
    and effect chains are reused) up to :data:`AHEAD_S` ahead, and an *output* thread
    writes them to the device. The output thread also measures each block it writes
    (:func:`studio.audio.levels.block_levels` of every track's stem and of the mix, and
    the master's true peak), so the meters show what is heard, from the render path
    itself, and adds the metronome (:mod:`studio.audio.metronome`) when it is on; the
    click is never part of a render or an export. While stopped, :meth:`prime` renders
    the block at the playhead in the background, so that Play starts at once.

    Args:
        sink_factory: ``(sample_rate) -> sink`` with ``write((2, n) float32)`` and ``close()``;
            default :class:`PedalboardSink` on the device of the preferences.

    Attributes:
        metronome: click on every beat while playing (accent on the bar's first beat).
        first_block_s: seconds from :meth:`play` to the first block handed to the device
            (None before the first play).

    Signals:
        position(int): playhead sample (UI thread, about 30 times a second while playing).
        message(str): plain-words status (e.g. no device).
        playing_changed(bool)
    """

    position = pyqtSignal(int)
    message = pyqtSignal(str)
    playing_changed = pyqtSignal(bool)

    def __init__(self, parent=None, *, sink_factory: Callable | None = None, device: str | None = None):
        super().__init__(parent)
        self.doc = None
        self.sink_factory = sink_factory or (lambda sr: PedalboardSink(sr, device))
        self.metronome = False
        self.first_block_s: float | None = None
        self._pos = 0
        self._loop: tuple[int, int] | None = None
        self._looping = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._render_thread: threading.Thread | None = None
        self._prime_thread: threading.Thread | None = None
        self._renderer = None
        self._render_lock = threading.Lock()
        self._error: str | None = None
        self._levels_lock = threading.Lock()
        self._levels: dict[str, list] = {}
        self._overs: set[str] = set()
        self._true_peak = None
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self._tick)

    def set_document(self, doc) -> None:
        """Stop, then play this document from now on."""
        self.stop()
        self._join_prime()
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.doc = doc
        self.reset_overs()

    @property
    def is_playing(self) -> bool:
        """True while the audio thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pos(self) -> int:
        """Current play position, samples."""
        return self._pos

    def seek(self, sample: int) -> None:
        """Move the play position (samples)."""
        self._pos = max(0, int(sample))

    def set_looping(self, on: bool) -> None:
        """Loop the project's loop range or not."""
        self._looping = bool(on)

    # -- meters -------------------------------------------------------------------------
    def take_levels(self) -> dict[str, tuple[float, float, float]]:
        """What the meters show, per track id and ``"master"``: ``(peak, rms, true_peak)``
        in linear full-scale units (peak: the largest since the previous call; rms: of
        the last block; true peak: master only, the largest since play, else 0). Tracks
        that played nothing since the previous call are absent. UI thread."""
        with self._levels_lock:
            out = {k: (v[0], v[1], v[2]) for k, v in self._levels.items()}
            for v in self._levels.values():
                v[0] = 0.0
        return out

    @property
    def overs(self) -> set[str]:
        """Ids (track ids, ``"master"``) that went above full scale since :meth:`reset_overs`:
        a track's post-fader stem, or the master's samples or true peak."""
        with self._levels_lock:
            return set(self._overs)

    def reset_overs(self, key: str | None = None) -> None:
        """Clear the over indicators (of one id, or all)."""
        with self._levels_lock:
            if key is None:
                self._overs.clear()
            else:
                self._overs.discard(key)

    def _meter(self, block) -> None:
        """Measure one block as it goes to the device (output thread)."""
        from studio.audio.levels import block_levels

        got = {tid: block_levels(stem) for tid, stem in block.stems.items()}
        mix = block_levels(block.mix)
        tp = float(self._true_peak.process(block.mix).max()) if self._true_peak is not None else 0.0
        with self._levels_lock:
            for key, lv in list(got.items()) + [("master", mix)]:
                peak, rms = float(lv.peak.max()), float(lv.rms.max())
                cur = self._levels.get(key)
                if cur is None:
                    self._levels[key] = [peak, rms, tp if key == "master" else 0.0]
                else:
                    cur[0] = max(cur[0], peak)
                    cur[1] = rms
                    if key == "master":
                        cur[2] = tp
                if lv.overs:
                    self._overs.add(key)
            if tp > 1.0:
                self._overs.add("master")

    # -- transport ------------------------------------------------------------------------
    def _get_renderer(self):
        from studio.audio.render import PLAYBACK_MIDI_SEGMENT_S, Renderer

        if self._renderer is None or self._renderer.project is not self.doc.project:
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = Renderer(self.doc.project, self.doc.pool, threads=2,
                                      midi_segment_s=PLAYBACK_MIDI_SEGMENT_S)
        return self._renderer

    def prime(self, sample: int | None = None) -> None:
        """Render the block at ``sample`` (default: the play position) in the background
        while stopped: MIDI synth segments and effect chains get ready, so Play starts at
        once. Never raises; does nothing while playing."""
        if self.doc is None or self.is_playing:
            return
        self._join_prime()
        pos = self._pos if sample is None else max(0, int(sample))
        renderer = self._get_renderer()

        def work() -> None:
            try:
                with self._render_lock:
                    renderer.render_block(pos, BLOCK, None)
                    renderer.reset()
            except Exception as exc:  # only a warm-up: play reports real problems
                log.debug("playback prime: %s", exc)

        self._prime_thread = threading.Thread(target=work, name="playback-prime", daemon=True)
        self._prime_thread.start()

    def _join_prime(self) -> None:
        if self._prime_thread is not None:
            self._prime_thread.join()
            self._prime_thread = None

    def play(self, start: int, *, loop: bool = False) -> bool:
        """Start playing at ``start`` samples. Returns False (with a message) when it can't."""
        import queue
        import time

        if self.doc is None:
            return False
        self.stop()
        t0 = time.perf_counter()
        try:
            sink = self.sink_factory(self.doc.project.sample_rate)
        except Exception as exc:  # no device, device busy, library missing
            text = str(exc) if str(exc) == NO_DEVICE else f"Playback can't start: {exc}. {NO_DEVICE.split('. ', 1)[1]}"
            self.message.emit(text)
            return False
        from studio.audio.levels import TruePeak

        self._join_prime()
        self._looping = loop
        self._pos = max(0, int(start))
        self._stop.clear()
        self._error = None
        self._true_peak = TruePeak(self.doc.project.sample_rate, 2)
        with self._levels_lock:
            self._levels.clear()
        sr = self.doc.project.sample_rate
        q: queue.Queue = queue.Queue(maxsize=max(2, int(AHEAD_S * sr / BLOCK)))
        self._render_thread = threading.Thread(target=self._render_loop, args=(q, self._get_renderer()),
                                               name="playback-render", daemon=True)
        self._thread = threading.Thread(target=self._output_loop, args=(q, sink, t0), name="playback", daemon=True)
        self._render_thread.start()
        self._thread.start()
        self.timer.start()
        self.playing_changed.emit(True)
        return True

    def stop(self) -> None:
        """Stop playback (waits for the audio threads)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(2.0)
        if self._render_thread is not None:
            self._render_thread.join(2.0)
            self._render_thread = None
        self._thread = None
        self.timer.stop()
        self.position.emit(self._pos)
        self.playing_changed.emit(False)

    def _loop_range(self) -> tuple[int, int] | None:
        loop = self.doc.project.loop
        if self._looping and loop is not None and loop.end > loop.start:
            return loop.start, loop.end
        return None

    def _put(self, q, item, idle=None) -> bool:
        """Put ``item`` when there is room; while the queue is full, call ``idle()`` once
        (the render thread is ahead: time to synthesise the next MIDI segment)."""
        import queue

        try:
            q.put_nowait(item)
            return True
        except queue.Full:
            if idle is not None:
                idle()
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _render_loop(self, q, renderer) -> None:
        """Render thread: blocks of the live project into ``q``; None ends the stream."""
        project = self.doc.project
        pos = self._pos
        seg_len = int(renderer.midi_segment_s * project.sample_rate)
        try:
            with self._render_lock:
                renderer.reset()
            end_all = project.length_samples()
            while not self._stop.is_set():
                lr = self._loop_range()
                if lr is not None and not lr[0] <= pos < lr[1]:
                    pos = lr[0]
                    renderer.reset()
                limit = lr[1] if lr is not None else max(end_all, pos + 1)
                if lr is None and pos >= end_all:
                    break
                n = min(BLOCK, limit - pos)
                with self._render_lock:
                    block = renderer.render_block(pos, n, None)
                nxt = pos + n + seg_len
                if not self._put(q, block, lambda: renderer.warm_midi(nxt, limit=1)):
                    return
                pos += n
                if lr is not None and pos >= lr[1]:
                    pos = lr[0]
                    renderer.reset()
        except Exception as exc:  # never take the app down from the audio thread
            log.exception("playback failed")
            self._error = f"Playback stopped: {exc}"
        self._put(q, None)

    def _output_loop(self, q, sink, t0: float) -> None:
        """Output thread: meter, add the click, write to the device, advance the position."""
        import queue
        import time

        from studio.audio.metronome import click_block

        project = self.doc.project
        first = True
        try:
            while not self._stop.is_set():
                try:
                    block = q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if block is None:
                    break
                self._meter(block)
                out = block.mix
                if self.metronome:
                    out = out + click_block(project.tempo_map, project.sample_rate, block.start, out.shape[1])
                sink.write(np.ascontiguousarray(out, dtype=np.float32))
                if first:
                    self.first_block_s = time.perf_counter() - t0
                    first = False
                self._pos = block.start + out.shape[1]
                lr = self._loop_range()
                if lr is not None and self._pos >= lr[1]:
                    self._pos = lr[0]
        except Exception as exc:  # a device error: say so, never crash
            log.exception("playback output failed")
            self._error = f"Playback stopped: {exc}"
            self._stop.set()
        finally:
            sink.close()

    def _tick(self) -> None:
        self.position.emit(self._pos)
        if self._thread is not None and not self._thread.is_alive():
            self._thread = None
            if self._render_thread is not None:
                self._stop.set()
                self._render_thread.join(2.0)
                self._render_thread = None
            self.timer.stop()
            if self._error:
                self.message.emit(self._error)
            self.playing_changed.emit(False)
