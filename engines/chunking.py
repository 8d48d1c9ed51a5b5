"""Overlap-add over long audio, with progress and cancel.

Long inputs are cut into segments of ``segment`` frames that overlap by ``overlap``
frames; each segment is processed, and the outputs are cross-faded back together with
complementary window weights (the fade-out of one segment plus the fade-in of the next
sum to 1), then divided by the accumulated weight. An identity ``fn`` therefore
reconstructs the input exactly. This is the scheme of demucs' ``apply_model``
(``demucs/apply.py``: weighted segments, normalised by the weight sum), with
complementary linear or raised-cosine cross-fades instead of a triangle.

Memory stays bounded by one output buffer plus one batch of segments; callers that
keep results on a GPU can use :class:`OverlapAdd` directly and move each segment's
output to the CPU before adding it.

Separation plans its chunks with :func:`plan_chunks` instead (starts spread evenly so
the last chunk ends exactly at the input's end, unlike ``demucs.apply.apply_model``
whose last chunk is short but costs a full model call) and weights them with
demucs' triangle :func:`transition_window`, normalised by :func:`weight_sum`; any
positive window reconstructs a chunk-invariant model exactly.

Sources: Défossez et al., "Hybrid Transformers for Music Source Separation" (ICASSP
2023) and ``demucs/apply.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engines.base import CancelToken, ProgressReporter


def scaled_segment(segment: int, chunk_scale: float = 1.0, minimum: int = 1) -> int:
    """``segment * chunk_scale`` rounded down, at least ``minimum`` frames.

    Engines call this with ``JobSpec.chunk_scale`` so that the host's out-of-memory
    retries (which halve the scale) really shrink the work per step.
    """
    return max(int(minimum), int(segment * float(chunk_scale)))


def segment_bounds(frames: int, segment: int, overlap: int) -> list[tuple[int, int]]:
    """Start/end frames of the segments covering ``frames``.

    Consecutive segments overlap by exactly ``overlap`` frames; the last one may end
    beyond ``frames`` (its input is zero-padded).

    Raises:
        ValueError: ``segment < 1``, ``overlap < 0`` or ``overlap > segment // 2``.
    """
    if segment < 1:
        raise ValueError(f"segment must be at least 1 frame, got {segment}")
    if overlap < 0 or overlap > segment // 2:
        raise ValueError(f"overlap must be between 0 and segment/2 ({segment // 2}) frames, got {overlap}")
    if frames <= 0:
        return []
    hop = segment - overlap
    bounds = []
    start = 0
    while True:
        bounds.append((start, start + segment))
        if start + segment >= frames:
            break
        start += hop
    return bounds


def window_weights(segment: int, overlap: int, *, fade_in: bool, fade_out: bool, shape: str = "linear") -> np.ndarray:
    """Weights (float64, ``segment`` long) for one segment.

    The fade-in over the first ``overlap`` frames and the fade-out over the last
    ``overlap`` frames are complementary: ``fade_out[k] + fade_in[k] == 1``.

    Args:
        shape: ``"linear"`` or ``"cosine"`` (raised cosine / sin² cross-fade).

    Raises:
        ValueError: unknown shape.
    """
    w = np.ones(segment, dtype=np.float64)
    if overlap <= 0:
        return w
    x = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
    if shape == "linear":
        ramp = x
    elif shape == "cosine":
        ramp = np.sin(0.5 * np.pi * x) ** 2
    else:
        raise ValueError(f"unknown window shape {shape!r} (use 'linear' or 'cosine')")
    if fade_in:
        w[:overlap] = ramp
    if fade_out:
        w[segment - overlap:] = ramp[::-1]
    return w


class OverlapAdd:
    """Accumulator for weighted segment outputs.

    Args:
        out_shape: leading output dims (e.g. ``(stems, channels)``); the last axis is frames.
        frames: output length in frames.

    ``add(start, output, weights)`` adds ``output[..., :n] * weights[:n]`` at ``start``
    (clipped to ``frames``); ``result()`` divides by the summed weights and returns
    float32 ``(*out_shape, frames)``.
    """

    def __init__(self, out_shape: tuple[int, ...], frames: int):
        self.frames = int(frames)
        self.out = np.zeros((*out_shape, self.frames), dtype=np.float64)
        self.weight = np.zeros(self.frames, dtype=np.float64)

    def add(self, start: int, output: np.ndarray, weights: np.ndarray) -> None:
        """Add one segment's output (``(..., segment)``) with its weights at ``start``."""
        n = min(output.shape[-1], self.frames - start)
        if n <= 0:
            return
        self.out[..., start:start + n] += output[..., :n] * weights[:n]
        self.weight[start:start + n] += weights[:n]

    def result(self) -> np.ndarray:
        """The normalised output, float32 ``(*out_shape, frames)``."""
        w = np.where(self.weight > 0, self.weight, 1.0)
        return (self.out / w).astype(np.float32)


def overlap_add(
    audio: np.ndarray,
    sample_rate: int,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    segment: int,
    overlap: int,
    shape: str = "linear",
    batch_size: int | None = None,
    progress: ProgressReporter | Callable[..., None] | None = None,
    cancel: CancelToken | None = None,
    stage: str = "processing",
) -> np.ndarray:
    """Process long audio segment by segment and cross-fade the outputs back together.

    Args:
        audio: float32 ``(channels, frames)``.
        sample_rate: Hz (not used for the arithmetic; kept so every audio API takes it).
        fn: maps one segment ``(channels, segment)`` to ``(..., segment)``; with
            ``batch_size`` it maps ``(n, channels, segment)`` to ``(n, ..., segment)``.
            The last segment is zero-padded to ``segment`` frames.
        segment: frames per segment.
        overlap: frames shared by consecutive segments (``<= segment // 2``).
        shape: cross-fade shape, ``"linear"`` or ``"cosine"``.
        batch_size: segments per ``fn`` call; None = one unbatched segment per call.
        progress: called ``progress(fraction, stage)`` after each call of ``fn``.
        cancel: checked before each call of ``fn``.

    Returns:
        float32 ``(..., frames)``: the same length as the input.

    Raises:
        ValueError: bad shapes or segment/overlap; ``JobCancelled`` on cancel.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, frames), got shape {audio.shape}")
    channels, frames = audio.shape
    bounds = segment_bounds(frames, segment, overlap)
    acc: OverlapAdd | None = None
    step = batch_size or 1
    for i in range(0, len(bounds), step):
        if cancel is not None:
            cancel.raise_if_cancelled()
        group = bounds[i:i + step]
        chunks = []
        for start, end in group:
            chunk = audio[:, start:min(end, frames)]
            if chunk.shape[1] < segment:
                chunk = np.pad(chunk, ((0, 0), (0, segment - chunk.shape[1])))
            chunks.append(chunk)
        if batch_size:
            outs = np.asarray(fn(np.stack(chunks)))
        else:
            outs = np.asarray(fn(chunks[0]))[None]
        if outs.shape[0] != len(group) or outs.shape[-1] != segment:
            raise ValueError(f"fn must keep the segment length {segment}, returned shape {outs.shape}")
        if acc is None:
            acc = OverlapAdd(outs.shape[1:-1], frames)
        for j, (start, _end) in enumerate(group):
            k = i + j
            w = window_weights(segment, overlap, fade_in=k > 0, fade_out=k < len(bounds) - 1, shape=shape)
            acc.add(start, outs[j], w)
        if progress is not None:
            progress(min(1.0, (i + len(group)) / len(bounds)), stage)
    if acc is None:  # empty input
        return np.zeros((channels, 0), dtype=np.float32)
    return acc.result()


@dataclass(frozen=True)
class ChunkPlan:
    """Where the chunks of one pass start.

    Attributes:
        length: total frames covered.
        segment: frames per chunk (the model's input length).
        offsets: start frame of each chunk, ascending; the last chunk ends at
            ``max(length, segment)``.
    """

    length: int
    segment: int
    offsets: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.offsets)


def plan_chunks(length: int, segment: int, overlap: float) -> ChunkPlan:
    """Plan chunk starts covering ``length`` frames.

    Args:
        length: frames to cover (> 0).
        segment: frames per chunk (> 0).
        overlap: minimum overlap between neighbours as a fraction of ``segment``, in [0, 1).

    Returns:
        A :class:`ChunkPlan`. A single chunk at 0 when ``length <= segment``.

    Raises:
        ValueError: non-positive length/segment or overlap outside [0, 1).
    """
    if length <= 0 or segment <= 0:
        raise ValueError(f"length and segment must be positive, got {length} and {segment}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if length <= segment:
        return ChunkPlan(length, segment, (0,))
    stride = max(1, int((1.0 - overlap) * segment))
    n = math.ceil((length - segment) / stride) + 1
    span = length - segment
    offsets = tuple(int(round(i * span / (n - 1))) for i in range(n))
    return ChunkPlan(length, segment, offsets)


def transition_window(segment: int, transition_power: float = 1.0) -> np.ndarray:
    """The cross-fade weight of one chunk: a triangle peaking mid-chunk, to a power.

    Args:
        segment: chunk length in frames.
        transition_power: >= 1; larger values give sharper transitions.

    Returns:
        ``(segment,)`` float32, strictly positive, max 1. Same window as
        ``demucs.apply.apply_model``.

    Raises:
        ValueError: ``transition_power < 1``.
    """
    if transition_power < 1.0:
        raise ValueError(f"transition_power must be >= 1, got {transition_power}")
    half = segment // 2
    w = np.concatenate([np.arange(1, half + 1), np.arange(segment - half, 0, -1)]).astype(np.float64)
    w = (w / w.max()) ** transition_power
    return w.astype(np.float32)


def weight_sum(plan: ChunkPlan, window: np.ndarray) -> np.ndarray:
    """Sum of the windows of every chunk of ``plan`` over ``[0, plan.length)``.

    Returns:
        ``(length,)`` float32, strictly positive everywhere.
    """
    total = np.zeros(plan.length, dtype=np.float64)
    for off in plan.offsets:
        n = min(plan.segment, plan.length - off)
        total[off: off + n] += window[:n]
    return total.astype(np.float32)
