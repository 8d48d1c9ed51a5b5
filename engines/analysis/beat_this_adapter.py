"""Beat This! beat and downbeat tracker (thin adapter over the ``beat-this`` package).

Model: F. Foscarin, J. Schlüter, G. Widmer, "Beat This! Accurate Beat Tracking Without
DBN Postprocessing", ISMIR 2024 (arXiv:2407.21658); code and weights MIT,
https://github.com/CPJKU/beat_this. The checkpoint (``final0.ckpt``) comes through the
model manager (record ``beat-this-final0``), never from the package's own downloader.

The package's model (``beat_this.model.beat_tracker.BeatThis``), chunked inference
(``beat_this.inference.split_predict_aggregate``) and peak-picking post-processor
(``beat_this.model.postprocessor.Postprocessor``, "minimal") are used as they are. Only
the input spectrogram is computed here, because the package builds it with torchaudio
(not installed: its wheels pin one torch build). :func:`log_mel_spect` reproduces
``beat_this.preprocessing.LogMelSpect`` (22.05 kHz, 1024-point STFT with a periodic
Hann window, hop 441 = 50 fps, frame-length-normalised magnitude, 128 Slaney mel bands
30 Hz-11 kHz without area normalisation, ``log1p(1000 x)``) with ``torch.stft`` and
``librosa.filters.mel``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engines.analysis._audio import mono_float32
from engines.analysis._compat import import_without_torchaudio
from engines.analysis.beats import BeatGrid

__all__ = ["FPS", "SPECT_RATE", "log_mel_spect", "load_beat_this", "tiny_beat_this", "BeatThisTracker",
           "CHECKPOINT_FILE"]

SPECT_RATE = 22050
FPS = 50
CHECKPOINT_FILE = "final0.ckpt"
_N_FFT = 1024
_HOP = 441


@lru_cache(maxsize=2)
def _mel_fb() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SPECT_RATE, n_fft=_N_FFT, n_mels=128, fmin=30.0, fmax=11000.0, htk=False,
                               norm=None).astype(np.float32)


def log_mel_spect(audio: np.ndarray, sample_rate: int, device: str = "cpu") -> "Any":
    """Beat This! input spectrogram.

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio (downmixed to mono).
        sample_rate: its rate in Hz (resampled to 22.05 kHz with soxr).
        device: torch device for the result.

    Returns:
        float32 torch tensor ``(n_frames, 128)`` at 50 frames per second.

    Raises:
        ValueError: bad shape, empty or non-finite audio.
    """
    import torch

    a = mono_float32(audio, sample_rate, SPECT_RATE)
    x = torch.from_numpy(np.ascontiguousarray(a)).to(device)
    window = torch.hann_window(_N_FFT, periodic=True, device=device)
    spec = torch.stft(x, n_fft=_N_FFT, hop_length=_HOP, window=window, center=True, pad_mode="reflect",
                      normalized=True, return_complex=True).abs()
    mel = torch.as_tensor(_mel_fb(), device=device) @ spec
    return torch.log1p(1000.0 * mel).T.contiguous()


def _model_class() -> type:
    return import_without_torchaudio("beat_this.model.beat_tracker").BeatThis


def load_beat_this(checkpoint: str | Path, device: str = "cpu") -> Any:
    """Load a Beat This! checkpoint (PyTorch Lightning ``.ckpt``) with ``weights_only=True``.

    Raises:
        FileNotFoundError: the checkpoint file does not exist (never downloads).
        RuntimeError: the file is not a Beat This! checkpoint.
    """
    import inspect

    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"Beat This! checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors, truncated zip, foreign globals
        raise RuntimeError(f"'{path}' can't be loaded safely as a Beat This! checkpoint ({str(exc)[:200]})") from None
    try:
        hparams = dict(ckpt["hyper_parameters"])
        state = ckpt["state_dict"]
    except (KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"'{path}' is not a Beat This! checkpoint (no {exc})") from None
    cls = _model_class()
    allowed = set(inspect.signature(cls).parameters)
    try:
        model = cls(**{k: v for k, v in hparams.items() if k in allowed})
        utils = import_without_torchaudio("beat_this.utils")
        model.load_state_dict(utils.replace_state_dict_key(state, "model.", ""))
    except Exception as exc:  # noqa: BLE001 - wrong shapes, bad hyper-parameters
        raise RuntimeError(f"'{path}': its weights don't fit the Beat This! model ({str(exc).splitlines()[0][:200]})") from None
    return model.to(device).eval()


def tiny_beat_this(seed: int = 0) -> Any:
    """A tiny random-weight instance of the real ``BeatThis`` class (for tests and smoke runs)."""
    import torch

    torch.manual_seed(seed)
    model = _model_class()(transformer_dim=32, ff_mult=2, n_layers=1, head_dim=16, stem_dim=16)
    return model.eval()


class BeatThisTracker:
    """Run a loaded Beat This! model on audio.

    Args:
        model: a ``BeatThis`` module (from :func:`load_beat_this` or :func:`tiny_beat_this`).
        device: torch device the model is on.
        chunk_frames: spectrogram frames per inference chunk (1500 = 30 s, the training length).
    """

    def __init__(self, model: Any, device: str = "cpu", chunk_frames: int = 1500):
        self.model = model
        self.device = device
        self.chunk_frames = int(chunk_frames)

    def activations(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame-wise beat and downbeat logits, each ``(n_frames,)`` float32 at 50 fps."""
        import torch

        inference = import_without_torchaudio("beat_this.inference")
        spect = log_mel_spect(audio, sample_rate, self.device)
        with torch.inference_mode():
            pred = inference.split_predict_aggregate(spect, self.chunk_frames, 6, "keep_first", self.model)
        return pred["beat"].float().cpu().numpy(), pred["downbeat"].float().cpu().numpy()

    def track(self, audio: np.ndarray, sample_rate: int) -> BeatGrid:
        """Beats, downbeats, tempo and meter of ``audio``.

        Returns:
            :class:`BeatGrid` (``method="beat_this"``) with positions in samples at ``sample_rate``.
            The tempo is 60 / median inter-beat interval; the meter is the most common
            number of beats between downbeats (4 when there are fewer than two downbeats).
        """
        import torch

        post = import_without_torchaudio("beat_this.model.postprocessor").Postprocessor("minimal", fps=FPS)
        beat, downbeat = self.activations(audio, sample_rate)
        beat_s, down_s = post(torch.from_numpy(beat), torch.from_numpy(downbeat))
        beat_s = np.asarray(beat_s, dtype=np.float64)
        down_s = np.asarray(down_s, dtype=np.float64)
        bpm = 60.0 / float(np.median(np.diff(beat_s))) if beat_s.size >= 2 else 0.0
        numerator = 4
        if down_s.size >= 2 and beat_s.size:
            counts = [int(((beat_s >= a) & (beat_s < b)).sum()) for a, b in zip(down_s[:-1], down_s[1:])]
            counts = [c for c in counts if 2 <= c <= 12]
            if counts:
                numerator = int(np.bincount(counts).argmax())
        return BeatGrid(
            beats=np.round(beat_s * sample_rate).astype(np.int64),
            downbeats=np.round(down_s * sample_rate).astype(np.int64),
            sample_rate=int(sample_rate),
            bpm=bpm,
            numerator=numerator,
            denominator=4,
            method="beat_this",
            extra={"fps": FPS},
        )
