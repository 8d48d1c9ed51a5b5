"""Real-time playback: the same render code as export, streamed to the audio device.

A worker thread keeps one :class:`studio.audio.render.Renderer` and renders consecutive
blocks of the live project (so mute, solo, gain and pan changes are heard at the next
block) and writes them to an output: pedalboard's ``AudioStream`` (JUCE) by default.
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
    """Play, stop, seek and loop one document.

    Args:
        sink_factory: ``(sample_rate) -> sink`` with ``write((2, n) float32)`` and ``close()``;
            default :class:`PedalboardSink` on the device of the preferences.

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
        self._pos = 0
        self._loop: tuple[int, int] | None = None
        self._looping = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self._tick)

    def set_document(self, doc) -> None:
        """Stop, then play this document from now on."""
        self.stop()
        self.doc = doc

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

    def play(self, start: int, *, loop: bool = False) -> bool:
        """Start playing at ``start`` samples. Returns False (with a message) when it can't."""
        if self.doc is None:
            return False
        self.stop()
        try:
            sink = self.sink_factory(self.doc.project.sample_rate)
        except Exception as exc:  # no device, device busy, library missing
            text = str(exc) if str(exc) == NO_DEVICE else f"Playback can't start: {exc}. {NO_DEVICE.split('. ', 1)[1]}"
            self.message.emit(text)
            return False
        self._looping = loop
        self._pos = max(0, int(start))
        self._stop.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(sink,), name="playback", daemon=True)
        self._thread.start()
        self.timer.start()
        self.playing_changed.emit(True)
        return True

    def stop(self) -> None:
        """Stop playback (waits for the audio thread)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(2.0)
        self._thread = None
        self.timer.stop()
        self.position.emit(self._pos)
        self.playing_changed.emit(False)

    def _loop_range(self) -> tuple[int, int] | None:
        loop = self.doc.project.loop
        if self._looping and loop is not None and loop.end > loop.start:
            return loop.start, loop.end
        return None

    def _run(self, sink) -> None:
        from studio.audio.render import Renderer

        project, pool = self.doc.project, self.doc.pool
        renderer = Renderer(project, pool, threads=2)
        try:
            end_all = project.length_samples()
            while not self._stop.is_set():
                pos = self._pos
                lr = self._loop_range()
                if lr is not None and not lr[0] <= pos < lr[1]:
                    pos = lr[0]
                    renderer.reset()
                limit = lr[1] if lr is not None else max(end_all, pos + 1)
                if lr is None and pos >= end_all:
                    break
                n = min(BLOCK, limit - pos)
                block = renderer.render_block(pos, n, None)
                sink.write(np.ascontiguousarray(block.mix, dtype=np.float32))
                self._pos = pos + n
                if lr is not None and self._pos >= lr[1]:
                    self._pos = lr[0]
                    renderer.reset()
        except Exception as exc:  # never take the app down from the audio thread
            log.exception("playback failed")
            self._error = f"Playback stopped: {exc}"
        finally:
            renderer.close()
            sink.close()

    def _tick(self) -> None:
        self.position.emit(self._pos)
        if self._thread is not None and not self._thread.is_alive():
            self._thread = None
            self.timer.stop()
            if self._error:
                self.message.emit(self._error)
            self.playing_changed.emit(False)
