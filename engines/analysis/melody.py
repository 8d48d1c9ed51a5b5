"""Melody (F0) of a monophonic stem with torchfcpe, and its conversion to notes or a curve.

Pitch tracker: FCPE, "Fast Context-based Pitch Estimation" (Y. Luo et al.,
arXiv:2509.15140; https://github.com/CNChTu/FCPE), through the ``torchfcpe`` package,
whose wheel ships the trained weights (``assets/fcpe_c_v001.pt``, MIT). The checkpoint is
read here with ``torch.load(weights_only=True)`` and built with torchfcpe's own
``InferCFNaiveMelPE``; audio is resampled to the model's 16 kHz with soxr first.
FCPE gives one F0 value every 10 ms (hop 160 at 16 kHz).

F0 -> notes: frames are converted to MIDI pitch, median-filtered (5 frames), rounded
to semitones, and runs of equal voiced pitch become notes; runs shorter than
``min_note_seconds`` are absorbed by their neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.analysis._audio import mono_float32
from engines.analysis._compat import import_without_torchaudio

__all__ = ["F0Track", "NoteEvent", "load_fcpe", "track_f0", "f0_to_midi_curve", "f0_to_notes", "MODEL_RATE",
           "HOP_SECONDS"]

MODEL_RATE = 16000
HOP_SECONDS = 0.01


@dataclass
class F0Track:
    """Frame-wise fundamental frequency.

    Attributes:
        positions: ``(n,)`` int64 frame centres in samples at ``sample_rate``.
        f0_hz: ``(n,)`` float32 F0 in Hz; 0 where unvoiced.
        voiced: ``(n,)`` bool.
        sample_rate: rate (Hz) of ``positions``.
    """

    positions: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    sample_rate: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"positions": [int(p) for p in self.positions], "f0_hz": [round(float(f), 3) for f in self.f0_hz],
                "voiced": [bool(v) for v in self.voiced], "sample_rate": int(self.sample_rate)}


@dataclass
class NoteEvent:
    """One note found in audio.

    Attributes:
        start, end: samples at the analysed audio's sample rate (end exclusive).
        pitch: MIDI note number.
        velocity: MIDI velocity 1..127.
        pitch_bends: optional ``(sample, bend)`` pairs, bend in semitones relative to ``pitch``.
    """

    start: int
    end: int
    pitch: int
    velocity: int = 100
    pitch_bends: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"start": int(self.start), "end": int(self.end), "pitch": int(self.pitch),
                "velocity": int(self.velocity), "pitch_bends": [[int(s), float(b)] for s, b in self.pitch_bends]}


def _bundled_checkpoint() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("torchfcpe")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchfcpe is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "fcpe_c_v001.pt"


def load_fcpe(device: str = "cpu", checkpoint: str | Path | None = None) -> Any:
    """Load the FCPE model (the wheel's bundled weights unless ``checkpoint`` is given).

    Returns:
        a ``torchfcpe.models_infer.InferCFNaiveMelPE`` in eval mode on ``device``.

    Raises:
        ImportError: torchfcpe missing. FileNotFoundError: no checkpoint file.
    """
    import torch

    path = Path(checkpoint) if checkpoint else _bundled_checkpoint()
    if not path.is_file():
        raise FileNotFoundError(f"FCPE checkpoint '{path}' does not exist")
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    mi = import_without_torchaudio("torchfcpe.models_infer")
    tools = import_without_torchaudio("torchfcpe.tools")
    cfg = ckpt["config_dict"]
    cfg["model"]["conv_dropout"] = 0.0  # inference: as torchfcpe's spawn_bundled_infer_model
    cfg["model"]["atten_dropout"] = 0.0
    model = mi.InferCFNaiveMelPE(tools.DotDict(cfg), ckpt["model"])
    return model.to(device).eval()


def track_f0(audio: np.ndarray, sample_rate: int, *, model: Any = None, device: str = "cpu",
             f0_min: float = 32.7, f0_max: float = 1975.5, threshold: float = 0.006,
             chunk_seconds: float = 60.0) -> F0Track:
    """F0 of monophonic audio with FCPE.

    Args:
        audio: ``(channels, frames)`` or ``(frames,)`` float audio (downmixed to mono).
        sample_rate: Hz.
        model: a loaded model (:func:`load_fcpe`); loaded on ``device`` if None.
        f0_min, f0_max: Hz; frames outside are unvoiced.
        threshold: FCPE's voicing threshold on its salience (its default 0.006).
        chunk_seconds: audio per inference call (bounds memory on long stems).

    Returns:
        :class:`F0Track` with one frame every 10 ms.

    Raises:
        ValueError: bad/empty/non-finite audio or f0 range.
    """
    import soxr
    import torch

    a = mono_float32(audio, sample_rate)
    if not (0 < f0_min < f0_max):
        raise ValueError(f"F0 range must satisfy 0 < f0_min < f0_max, got {f0_min}..{f0_max}")
    if model is None:
        model = load_fcpe(device)
    y = a if int(sample_rate) == MODEL_RATE else soxr.resample(a, int(sample_rate), MODEL_RATE).astype(np.float32)
    hop = int(MODEL_RATE * HOP_SECONDS)
    n_frames = y.size // hop + 1
    step = max(hop, int(chunk_seconds * MODEL_RATE) // hop * hop)
    parts = []
    with torch.inference_mode():
        for s in range(0, y.size, step):
            seg = torch.from_numpy(np.ascontiguousarray(y[s:s + step]))[None, :, None]
            f = model.infer(seg.to(next(model.parameters()).device), sr=MODEL_RATE, decoder_mode="local_argmax",
                            threshold=threshold, f0_min=f0_min, interp_uv=False)
            parts.append(f[0, : seg.shape[1] // hop, 0].float().cpu().numpy())
    f0 = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    f0 = np.pad(f0, (0, max(0, n_frames - f0.size)))[:n_frames].astype(np.float32)
    voiced = (f0 >= f0_min) & (f0 <= f0_max)
    f0[~voiced] = 0.0
    positions = np.round(np.arange(n_frames) * HOP_SECONDS * sample_rate).astype(np.int64)
    return F0Track(positions=positions, f0_hz=f0, voiced=voiced, sample_rate=int(sample_rate))


def f0_to_midi_curve(track: F0Track) -> np.ndarray:
    """Control curve: fractional MIDI pitch per frame (``69 + 12 log2(f0 / 440)``), NaN when unvoiced."""
    out = np.full(track.f0_hz.shape, np.nan, dtype=np.float32)
    v = track.voiced & (track.f0_hz > 0)
    out[v] = 69.0 + 12.0 * np.log2(track.f0_hz[v] / 440.0)
    return out


def f0_to_notes(track: F0Track, *, min_note_seconds: float = 0.06, median_frames: int = 5,
                velocity: int = 100, pitch_bends: bool = False) -> list[NoteEvent]:
    """Segment an F0 track into notes.

    Args:
        track: from :func:`track_f0`.
        min_note_seconds: shorter pitch runs are merged into the neighbour before them
            (or dropped if unvoiced around).
        median_frames: median filter length (frames) applied to the pitch curve first.
        velocity: MIDI velocity given to every note.
        pitch_bends: attach the per-frame deviation from the note's pitch (semitones).

    Returns:
        notes sorted by start, positions in samples at ``track.sample_rate``.
    """
    from scipy.signal import medfilt

    curve = f0_to_midi_curve(track)
    n = curve.size
    if n == 0:
        return []
    filled = np.where(np.isnan(curve), -1.0, curve)
    if median_frames > 1:
        filled = medfilt(filled, kernel_size=median_frames | 1)
    q = np.where(filled > 0, np.round(filled), -1).astype(np.int64)
    # runs of equal rounded pitch
    edges = np.flatnonzero(np.diff(q)) + 1
    starts = np.r_[0, edges]
    ends = np.r_[edges, n]
    runs = [[int(s), int(e), int(q[s])] for s, e in zip(starts, ends)]
    min_frames = max(1, int(round(min_note_seconds / HOP_SECONDS)))
    merged: list[list[int]] = []
    for r in runs:
        joinable = merged and merged[-1][2] >= 0 and r[2] >= 0 and merged[-1][1] == r[0]
        if joinable and (r[1] - r[0] < min_frames or r[2] == merged[-1][2]):
            merged[-1][1] = r[1]  # a short glitch (and the same pitch after it) continues the previous note
        else:
            merged.append(r)
    hop_samples = HOP_SECONDS * track.sample_rate
    notes = []
    for s, e, p in merged:
        if p < 0 or e - s < min_frames:
            continue
        bends: list[tuple[int, float]] = []
        if pitch_bends:
            seg = curve[s:e]
            bends = [(int(round((s + i) * hop_samples)), float(v - p)) for i, v in enumerate(seg) if np.isfinite(v)]
        notes.append(NoteEvent(start=int(round(s * hop_samples)), end=int(round(e * hop_samples)), pitch=int(p),
                               velocity=int(velocity), pitch_bends=bends))
    return notes
