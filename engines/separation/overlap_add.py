"""Chunk planning and overlap-add accumulation for segment-wise separation.

The plan covers ``[0, length)`` with chunks of ``segment`` frames whose starts are spread
evenly so that the last chunk ends exactly at ``length`` (no wasted tail chunk, unlike
``demucs.apply.apply_model`` whose ``range(0, length, stride)`` ends with a short chunk
that still costs a full model call). Consecutive chunks overlap by *at least*
``overlap * segment`` frames.

Cross-fade weights are the triangle window of ``demucs.apply.apply_model`` (maximal in
the middle of a chunk), raised to ``transition_power``; the accumulated output is divided
by the accumulated weights, so any positive window reconstructs a chunk-invariant model
exactly (proved by the identity-model test).

Source of the method: Défossez et al., "Hybrid Transformers for Music Source Separation"
(ICASSP 2023) and ``demucs/apply.py`` (overlap-add with triangular transitions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
