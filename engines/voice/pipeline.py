"""The RVC conversion pipeline (``infer/vc/pipeline.py`` of RVC), with an exact output length.

Steps, as RVC runs them:

1. Mono mix, resample to 16 kHz (soxr), scale down if the peak exceeds 0.95, 5th-order
   Butterworth high-pass at 48 Hz, zero phase.
2. Frames of 10 ms (160 samples at 16 kHz). The signal is padded by reflection:
   ``pad_seconds`` (1 s, RVC's ``x_pad`` on CPU) on both sides, plus what completes the last
   frame, plus 320 samples so that the embedder (one frame per 320 samples, 400-sample
   receptive field) yields at least one feature frame per pair of 10 ms frames; without
   that, chunks with an odd frame count come out one frame short.
3. Long inputs are cut into chunks of about ``chunk_seconds`` (38 s, RVC's ``x_center``),
   each cut at the quietest 10 ms window within ``±query_seconds`` (6 s, ``x_query``) of
   its nominal place; inputs up to ``max_seconds`` (41 s, ``x_max``) are one chunk. Each
   chunk carries the padding length of real (or reflected) audio on both sides as context.
4. Per chunk: F0 (FCPE or RMVPE, :mod:`engines.voice.pitch`), median filter
   (``filter_radius``), transpose; ContentVec features (:mod:`engines.voice.embedder`);
   retrieval blend with the voice's index (``index_rate``,
   :func:`engines.voice.faiss_index.blend_features`); features doubled to 10 ms frames;
   ``protect``: on unvoiced frames the features lean back toward the un-blended ones
   (weight ``protect``); synthesis with torch's RNG seeded from ``(seed, chunk index)``
   so that the same seed renders the same audio; the context is cut off, which leaves
   exactly ``hop`` samples per 10 ms frame.
5. ``rms_mix_rate``: the output loudness envelope (RMS in 1 s windows, 0.5 s hop) moves
   toward the input's: ``out *= rms_in ** (1 - rate) * rms_out ** (rate - 1)`` (1 = keep
   the output's own envelope).
6. Back to the caller's sample rate (soxr), cut or zero-padded to the input's exact frame
   count, scaled down if its peak exceeds 0.99 (RVC does this before writing int16),
   copied to every input channel.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engines.base.errors import InvalidJob

__all__ = ["ConversionOptions", "ConversionResult", "convert", "SR16", "WINDOW", "EXTRA_PAD", "rms_envelope",
           "mix_rms", "chunk_cuts"]

SR16 = 16000
WINDOW = 160
"""Samples per 10 ms frame at 16 kHz."""
EXTRA_PAD = 320
"""Samples appended to each chunk so the embedder covers every 10 ms frame."""


@dataclass
class ConversionOptions:
    """Controls of one conversion (RVC's defaults).

    Attributes:
        transpose: semitones added to the source pitch.
        index_rate: 0..1, how far features move toward the voice's index neighbours.
        protect: 0..0.5, feature blend kept on unvoiced frames (0.5 = off).
        filter_radius: F0 median filter length in frames (< 3 = off).
        rms_mix_rate: 0..1, 1 = output keeps its own loudness envelope, 0 = the input's.
        speaker_id: row of the voice's speaker table.
        seed: random seed of the synthesizer's noise.
        pad_seconds, chunk_seconds, query_seconds, max_seconds: RVC's ``x_pad``,
            ``x_center``, ``x_query``, ``x_max`` (seconds).
        cpu_block_frames: on the CPU the decoder runs in blocks of this many 10 ms frames
            (with context, same result to float rounding): small temporaries cost fewer
            page faults and less memory. None = one pass.
    """

    transpose: float = 0.0
    index_rate: float = 0.75
    protect: float = 0.33
    filter_radius: int = 3
    rms_mix_rate: float = 0.25
    speaker_id: int = 0
    seed: int = 0
    pad_seconds: float = 1.0
    chunk_seconds: float = 38.0
    query_seconds: float = 6.0
    max_seconds: float = 41.0
    cpu_block_frames: int | None = 400


@dataclass
class ConversionResult:
    """Converted audio and what happened.

    Attributes:
        audio: float32 ``(channels, frames)`` at the input's rate, the input's exact shape.
        info: ``chunks`` (content-frame ranges), ``seconds`` per stage ("pitch",
            "embedder", "index", "synthesizer", "total": wall clock), ``cpu_seconds`` per
            stage (process CPU time, all threads), ``voiced_fraction``, ``model_rate``,
            ``frames_10ms``.
    """

    audio: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _highpass(x: np.ndarray) -> np.ndarray:
    from scipy import signal

    if x.size < 2:
        return x
    sos = signal.butter(N=5, Wn=48, btype="high", fs=SR16, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), x.size - 1)
    return signal.sosfiltfilt(sos, x.astype(np.float64), padlen=padlen).astype(np.float32)


def _reflect(x: np.ndarray, left: int, right: int) -> np.ndarray:
    if x.size == 1:
        return np.pad(x, (left, right), mode="edge")
    return np.pad(x, (left, right), mode="reflect")


def chunk_cuts(x16: np.ndarray, frames: int, chunk_frames: int, query_frames: int, max_frames: int) -> list[int]:
    """Chunk boundaries in 10 ms frames: ``[0, c1, ..., frames]``.

    ``frames <= max_frames`` gives one chunk. Otherwise near each multiple of
    ``chunk_frames`` the cut goes to the frame whose 160-sample window (centred on the
    frame start) has the smallest sum of absolute values, within ``±query_frames``.
    """
    if frames <= max_frames or chunk_frames <= 0:
        return [0, frames]
    padded = np.pad(np.abs(x16), (WINDOW // 2, WINDOW // 2 + frames * WINDOW))
    c = np.concatenate([[0.0], np.cumsum(padded, dtype=np.float64)])
    starts = np.arange(frames) * WINDOW
    energy = c[starts + WINDOW] - c[starts]
    cuts = [0]
    for nominal in range(chunk_frames, frames, chunk_frames):
        lo, hi = max(cuts[-1] + 1, nominal - query_frames), min(frames - 1, nominal + query_frames)
        if hi <= lo:
            continue
        cuts.append(lo + int(np.argmin(energy[lo:hi])))
    cuts.append(frames)
    return cuts


def rms_envelope(x: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """RMS per frame with centred frames and zero padding (``librosa.feature.rms`` with
    ``center=True``): ``1 + len(x) // hop`` values."""
    x = np.asarray(x, np.float64)
    half = frame_length // 2
    padded = np.pad(x * x, (half, half))
    c = np.concatenate([[0.0], np.cumsum(padded)])
    n = 1 + (padded.size - frame_length) // hop
    starts = np.arange(n) * hop
    return np.sqrt(np.maximum(c[starts + frame_length] - c[starts], 0.0) / frame_length)


def _interp_linear(curve: np.ndarray, size: int) -> np.ndarray:
    """``F.interpolate(curve, size, mode="linear")`` (align_corners=False) in numpy."""
    n = curve.size
    if n == 1 or size == 0:
        return np.full(size, curve[0] if n else 0.0)
    pos = np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0, n - 1)
    return np.interp(pos, np.arange(n), curve)


def mix_rms(source: np.ndarray, source_rate: int, out: np.ndarray, out_rate: int, rate: float) -> np.ndarray:
    """RVC's ``change_rms``: move ``out``'s loudness envelope toward ``source``'s.

    Envelopes are RMS over 1 s windows every 0.5 s, linearly interpolated to ``out``'s
    samples; ``out * rms_src ** (1 - rate) * max(rms_out, 1e-6) ** (rate - 1)``.
    ``rate`` = 1 returns ``out`` unchanged.
    """
    if rate >= 1 or out.size == 0:
        return out
    r1 = _interp_linear(rms_envelope(source, source_rate // 2 * 2, source_rate // 2), out.size)
    r2 = np.maximum(_interp_linear(rms_envelope(out, out_rate // 2 * 2, out_rate // 2), out.size), 1e-6)
    return (out * (np.power(r1, 1 - rate) * np.power(r2, rate - 1))).astype(np.float32)


def _chunk_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(k)]).generate_state(1)[0])


def convert(audio: np.ndarray, sample_rate: int, *, synthesizer: Any, version: str, embedder: Callable,
            f0_fn: Callable[[np.ndarray, int], np.ndarray], index: Any = None,
            options: ConversionOptions | None = None, progress: Callable[..., None] | None = None,
            cancel: Any = None, device: str = "cpu") -> ConversionResult:
    """Convert a voice.

    Args:
        audio: float ``(channels, frames)`` (or ``(frames,)``) at ``sample_rate``.
        sample_rate: Hz of ``audio`` and of the result.
        synthesizer: an RVC synthesizer (:mod:`engines.voice.rvc_models`) on ``device``;
            its ``sampling_rate``/``hop`` give the model rate.
        version: "v1" or "v2" (selects the embedder layer).
        embedder: ``embedder(audio (1, samples) float32 tensor at 16 kHz, version)`` ->
            ``(1, frames, dim)`` features at 20 ms (:class:`engines.voice.embedder.ContentVec`).
        f0_fn: ``f0_fn(samples (n,) float32 at 16 kHz, frames)`` -> ``(frames,)`` Hz, 0 =
            unvoiced, one value per 10 ms.
        index: a :class:`engines.voice.faiss_index.TorchIvf` or None.
        options: :class:`ConversionOptions` (defaults if None).
        progress: ``progress(fraction, stage)``. cancel: object with ``raise_if_cancelled()``.
        device: torch device of the synthesizer and embedder.

    Returns:
        :class:`ConversionResult`, audio of exactly ``audio``'s shape.

    Raises:
        InvalidJob: not 1-D/2-D audio, non-finite samples, a speaker id outside the voice.
        JobCancelled: from ``cancel``.
    """
    import soxr
    import torch

    from engines.voice.faiss_index import blend_features
    from engines.voice.pitch import coarse_pitch, median_filter_f0, transpose_f0

    opts = options or ConversionOptions()
    t_start, cpu_start = time.monotonic(), time.process_time()
    a = np.asarray(audio, np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise InvalidJob(f"voice conversion needs (channels, frames) audio, got shape {a.shape}")
    channels, n_in = a.shape
    sr = int(sample_rate)
    seconds = {"pitch": 0.0, "embedder": 0.0, "index": 0.0, "synthesizer": 0.0}
    if n_in == 0 or channels == 0:
        return ConversionResult(np.zeros_like(a), {
            "chunks": [], "seconds": dict(seconds, total=0.0), "cpu_seconds": dict(seconds, total=0.0),
            "voiced_fraction": 0.0, "model_rate": int(synthesizer.sampling_rate), "frames_10ms": 0})
    if not np.all(np.isfinite(a)):
        raise InvalidJob("the input audio contains NaN or infinite samples")
    n_spk = int(synthesizer.emb_g.weight.shape[0])
    if not 0 <= int(opts.speaker_id) < n_spk:
        raise InvalidJob(f"speaker id {opts.speaker_id} is outside this voice's {n_spk} speakers",
                         f"use a speaker id from 0 to {n_spk - 1}")
    tgt_sr, hop = int(synthesizer.sampling_rate), int(synthesizer.hop)

    mono = a.mean(axis=0)
    x16 = mono if sr == SR16 else soxr.resample(mono, sr, SR16).astype(np.float32)
    peak = float(np.abs(x16).max()) / 0.95 if x16.size else 0.0
    if peak > 1:
        x16 = x16 / peak
    x16 = _highpass(x16)
    if x16.size == 0:  # a few samples at a high rate can resample to nothing
        x16 = np.zeros(1, np.float32)
    n16 = x16.size
    frames = max(1, math.ceil(n16 / WINDOW) + 1)  # content frames; the +1 covers resampler rounding
    pad_f = max(1, int(round(opts.pad_seconds * 100)))
    left = pad_f * WINDOW
    right = pad_f * WINDOW + (frames * WINDOW - n16) + EXTRA_PAD
    xp = _reflect(x16, left, right)

    cuts = chunk_cuts(x16, frames, int(round(opts.chunk_seconds * 100)), int(round(opts.query_seconds * 100)),
                      int(round(opts.max_seconds * 100)))
    param = next(synthesizer.parameters())
    dtype = param.dtype
    cuda = str(device).startswith("cuda")

    cpu_seconds = dict.fromkeys(seconds, 0.0)
    marks: list[tuple[float, float]] = []

    def now() -> float:  # stage times: wait for queued GPU work so it is counted where it belongs
        if cuda:
            torch.cuda.synchronize(device)
        marks.append((time.monotonic(), time.process_time()))
        return marks[-1][0]

    def stage(name: str) -> None:  # charge the time since the previous mark to a stage
        (w0, c0), (w1, c1) = marks[-2], marks[-1]
        seconds[name] += w1 - w0
        cpu_seconds[name] += c1 - c0

    sid = torch.tensor([int(opts.speaker_id)], device=device)
    pieces: list[np.ndarray] = []
    voiced = 0
    n_chunks = len(cuts) - 1
    for k in range(n_chunks):
        if cancel is not None:
            cancel.raise_if_cancelled()
        a0, b0 = cuts[k], cuts[k + 1]
        m = b0 - a0 + 2 * pad_f
        seg = xp[a0 * WINDOW: (b0 + 2 * pad_f) * WINDOW + EXTRA_PAD]

        now()
        f0 = f0_fn(np.ascontiguousarray(seg[: m * WINDOW]), m)
        f0 = median_filter_f0(np.asarray(f0, np.float32)[:m], int(opts.filter_radius))
        f0 = transpose_f0(f0, opts.transpose)
        voiced += int(np.count_nonzero(f0[pad_f: m - pad_f] > 0))
        pitch = torch.from_numpy(coarse_pitch(f0))[None].to(device)
        pitchf = torch.from_numpy(f0)[None].to(device)
        now()
        stage("pitch")

        feats = embedder(torch.from_numpy(np.ascontiguousarray(seg))[None], version)
        feats = feats.to(device=device, dtype=dtype)
        now()
        stage("embedder")
        feats0 = feats
        if index is not None and opts.index_rate > 0:
            feats = blend_features(feats[0].float(), index, float(opts.index_rate))[None].to(dtype)
        now()
        stage("index")

        feats = torch.repeat_interleave(feats, 2, dim=1)
        feats0 = torch.repeat_interleave(feats0, 2, dim=1)
        if feats.shape[1] < m:  # only with non-standard embedders: repeat the last frame
            extra = m - feats.shape[1]
            feats = torch.cat([feats, feats[:, -1:].expand(-1, extra, -1)], 1)
            feats0 = torch.cat([feats0, feats0[:, -1:].expand(-1, extra, -1)], 1)
        feats, feats0 = feats[:, :m], feats0[:, :m]
        if opts.protect < 0.5:
            w = torch.where(pitchf >= 1, torch.ones_like(pitchf), torch.full_like(pitchf, float(opts.protect)))
            w = w[:, :, None].to(dtype)
            feats = feats * w + feats0 * (1 - w)
        lengths = torch.tensor([m], device=device)
        devices = [torch.device(device)] if str(device).startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(_chunk_seed(opts.seed, k))
            out = synthesizer.infer(feats, lengths, pitch, pitchf, sid,
                                    block_frames=opts.cpu_block_frames if str(device) == "cpu" else None)
        y = out[0, 0].float().cpu().numpy()
        pieces.append(y[pad_f * hop: (m - pad_f) * hop])
        now()
        stage("synthesizer")
        if progress is not None:
            progress((k + 1) / n_chunks, "converting")

    y = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    y = mix_rms(x16, SR16, y, tgt_sr, float(opts.rms_mix_rate))
    if tgt_sr != sr:
        y = soxr.resample(y, tgt_sr, sr).astype(np.float32)
    y = y[:n_in] if y.size >= n_in else np.pad(y, (0, n_in - y.size))
    top = float(np.abs(y).max()) / 0.99 if y.size else 0.0
    if top > 1:
        y = y / top
    out = np.ascontiguousarray(np.broadcast_to(y.astype(np.float32), (channels, n_in)))
    seconds["total"] = time.monotonic() - t_start
    cpu_seconds["total"] = time.process_time() - cpu_start
    info = {"chunks": [[int(cuts[i]), int(cuts[i + 1])] for i in range(n_chunks)], "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "voiced_fraction": voiced / max(1, frames), "model_rate": tgt_sr, "frames_10ms": frames}
    return ConversionResult(out, info)
