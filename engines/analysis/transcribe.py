"""Audio-to-MIDI with basic-pitch's model, run by onnxruntime (no TensorFlow).

Model: R. Bittner et al., "A Lightweight Instrument-Agnostic Model for Polyphonic Note
Transcription and Multipitch Estimation", ICASSP 2022 (Spotify's basic-pitch, Apache-2.0).
The ``basic-pitch`` wheel ships the model as ONNX (``saved_models/icassp_2022/nmp.onnx``);
this module uses the package's own pieces: ``basic_pitch.inference.Model`` (an
onnxruntime session when TensorFlow is absent), ``window_audio_file`` and
``unwrap_output`` for the 2-second windows with 30 frames of overlap, and
``basic_pitch.note_creation.model_output_to_notes`` for note creation. The only thing
done differently from ``basic_pitch.inference.predict`` is that audio arrives as an
array (resampled to 22.05 kHz with soxr) instead of being read from a file with librosa.
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engines.analysis._audio import mono_float32
from engines.analysis.melody import NoteEvent

__all__ = ["TranscribeParams", "Transcription", "load_basic_pitch", "transcribe", "MODEL_RATE"]

MODEL_RATE = 22050


@dataclass
class TranscribeParams:
    """basic-pitch note-creation parameters (defaults = basic-pitch's).

    Attributes:
        onset_threshold: minimum onset activation to start a note (0..1).
        frame_threshold: minimum frame activation to continue a note (0..1).
        minimum_note_length_ms: shorter notes are dropped.
        minimum_frequency, maximum_frequency: Hz range of kept notes (None = any).
        pitch_bends: estimate pitch bends (on/off).
        melodia_trick: basic-pitch's "melodia" post-processing (more complete notes).
    """

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_length_ms: float = 127.7
    minimum_frequency: float | None = None
    maximum_frequency: float | None = None
    pitch_bends: bool = True
    melodia_trick: bool = True

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        for name in ("onset_threshold", "frame_threshold"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be within 0..1, got {v}")
        if self.minimum_note_length_ms < 0:
            raise ValueError(f"minimum_note_length_ms must be >= 0, got {self.minimum_note_length_ms}")
        lo, hi = self.minimum_frequency, self.maximum_frequency
        if lo is not None and lo <= 0 or hi is not None and hi <= 0:
            raise ValueError("frequency range limits must be positive Hz")
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"minimum_frequency {lo} must be below maximum_frequency {hi}")


@dataclass
class Transcription:
    """Notes found in audio.

    Attributes:
        notes: sorted by start; positions in samples at ``sample_rate``; pitch bends (if
            any) as ``(sample, semitones)``.
        sample_rate: rate of the positions (the input's).
        frames: length of the analysed audio in samples.
        activations: basic-pitch's ``note``/``onset``/``contour`` posteriorgrams
            (``(n_frames, bins)``, 86 frames per second at 22.05 kHz/256).
    """

    notes: list[NoteEvent]
    sample_rate: int
    frames: int
    activations: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def load_basic_pitch() -> Any:
    """The basic-pitch ONNX model as a ``basic_pitch.inference.Model`` (onnxruntime session).

    Raises:
        ImportError: basic-pitch or onnxruntime missing.
        FileNotFoundError: the wheel has no ONNX model file.
    """
    from pathlib import Path

    with _quiet():
        import basic_pitch
        from basic_pitch import inference

    path = Path(basic_pitch.build_icassp_2022_model_path(basic_pitch.FilenameSuffix.onnx))
    if not path.is_file():
        raise FileNotFoundError(f"basic-pitch ONNX model '{path}' is missing; reinstall basic-pitch")
    model = inference.Model(path)
    if model.model_type != inference.Model.MODEL_TYPES.ONNX:
        raise ImportError("basic-pitch did not load its ONNX model (is onnxruntime installed?)")
    return model


@contextlib.contextmanager
def _quiet():
    """Silence basic-pitch's import-time warnings about TF/CoreML/TFLite and its prints."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def transcribe(audio: np.ndarray, sample_rate: int, params: TranscribeParams | None = None, *, model: Any = None,
               progress: Callable[[float], None] | None = None,
               check_cancel: Callable[[], None] | None = None) -> Transcription:
    """Polyphonic notes of ``audio`` with basic-pitch.

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio (downmixed to mono).
        sample_rate: Hz.
        params: :class:`TranscribeParams` (defaults if None).
        model: from :func:`load_basic_pitch` (loaded if None).
        progress: called with a fraction 0..1 after each 2-second window.
        check_cancel: called between windows; may raise to stop.

    Returns:
        :class:`Transcription` with note positions in samples at ``sample_rate``.

    Raises:
        ValueError: bad/empty/non-finite audio or parameters.
    """

    params = params or TranscribeParams()
    params.validate()
    frames = np.asarray(audio).shape[-1]
    a = mono_float32(audio, sample_rate, MODEL_RATE)
    with _quiet():
        from basic_pitch import constants
        from basic_pitch import inference
        from basic_pitch import note_creation
    if model is None:
        model = load_basic_pitch()

    n_overlap = 30  # as basic_pitch.inference.run_inference
    overlap_len = n_overlap * constants.FFT_HOP
    hop_size = constants.AUDIO_N_SAMPLES - overlap_len
    padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), a])
    n_windows = max(1, int(np.ceil(padded.size / hop_size)))
    out: dict[str, list] = {"note": [], "onset": [], "contour": []}
    for i, (window, _times) in enumerate(inference.window_audio_file(padded, hop_size)):
        if check_cancel is not None:
            check_cancel()
        for k, v in model.predict(window[None].astype(np.float32)).items():
            out[k].append(v)
        if progress is not None:
            progress(min(1.0, (i + 1) / n_windows))
    output = {k: inference.unwrap_output(np.concatenate(v), a.size, n_overlap) for k, v in out.items()}

    min_note_len = int(np.round(params.minimum_note_length_ms / 1000 * (MODEL_RATE / constants.FFT_HOP)))
    with _quiet():
        _midi, events = note_creation.model_output_to_notes(
            output,
            onset_thresh=params.onset_threshold,
            frame_thresh=params.frame_threshold,
            min_note_len=min_note_len,
            min_freq=params.minimum_frequency,
            max_freq=params.maximum_frequency,
            multiple_pitch_bends=False,
            melodia_trick=params.melodia_trick,
            include_pitch_bends=params.pitch_bends,
        )
    notes = []
    bend_step = 1.0 / constants.CONTOURS_BINS_PER_SEMITONE  # bend units -> semitones
    frame_s = constants.FFT_HOP / MODEL_RATE
    for start_s, end_s, pitch, amplitude, bends in events:
        start = int(round(start_s * sample_rate))
        end = max(start + 1, min(int(round(end_s * sample_rate)), frames))
        pb: list[tuple[int, float]] = []
        if params.pitch_bends and bends:
            pb = [(start + int(round(j * frame_s * sample_rate)), float(b) * bend_step) for j, b in enumerate(bends)]
        notes.append(NoteEvent(start=start, end=end, pitch=int(pitch),
                               velocity=int(np.clip(round(127 * float(amplitude)), 1, 127)), pitch_bends=pb))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return Transcription(notes=notes, sample_rate=int(sample_rate), frames=frames, activations=output)
