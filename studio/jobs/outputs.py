"""Storing a job's output audio in a project's media pool.

:func:`import_outputs` is the one routine that turns engine outputs (arrays or audio
files) into :class:`~studio.model.project.MediaItem` records. The job manager names it as the
engine host's *outputs hook* (:class:`engines.host.OutputsHook`), so that the hashing,
writing and peak building of minutes of stems run in the host process, not in the
studio process where they would compete with the window for the interpreter lock. The
job manager calls the same function itself for hosts without the hook.

Writing from another process is safe: pool files are content-addressed, each import
writes its own temp file and renames it into place atomically (an equal file already
there is kept), and the media pool's in-memory state is only caches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.media.pool import MediaPool

Progress = Callable[..., None]


def import_outputs(
    outputs: dict[str, Any],
    sample_rate: int | None,
    *,
    pool_root: str,
    pool_sample_rate: int,
    peaks_dir: str | None = None,
    label: str = "",
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Import every output into the media pool at ``pool_root``.

    Args:
        outputs: output name -> float32 ``(channels, frames)`` array or audio file path.
        sample_rate: rate of the arrays, Hz (files carry their own); resampled to the
            pool's rate with soxr where it differs.
        pool_root: the bundle's media folder; ``pool_sample_rate``: its rate, Hz.
        peaks_dir: the bundle's peak-cache folder (default: the pool's).
        label: prefix of the items' ``original_name`` (``"<label> <output>"``).
        progress: called as ``progress(fraction, stage)`` with fractions 0..1.

    Returns:
        ``{output name: MediaItem.to_dict()}`` (peak caches saved too).

    Raises:
        studio.errors.AudioFileError: an output is not valid audio (NaN/Inf, no frames,
            unreadable file), naming the output. Outputs imported before it stay in the
            pool unreferenced (pool files are immutable and cost only disk space).
    """
    pool = MediaPool(pool_root, int(pool_sample_rate), peaks_dir=peaks_dir)
    items = import_into(pool, outputs, sample_rate, label=label, progress=progress)
    return {name: item.to_dict() for name, item in items.items()}


def import_into(pool: MediaPool, outputs: dict[str, Any], sample_rate: int | None, *, label: str = "",
                progress: Progress | None = None) -> dict[str, Any]:
    """As :func:`import_outputs` on an open ``pool``; returns ``{name: MediaItem}``."""
    items: dict[str, Any] = {}
    n = max(1, len(outputs))
    for k, (name, ref) in enumerate(outputs.items()):
        if progress is not None:
            progress(k / n, f"saving {name}")
        display = f"{label} {name}".strip()
        if isinstance(ref, np.ndarray):
            items[name] = pool.import_array(ref, int(sample_rate or 0), name=display)
        else:
            items[name] = pool.import_file(Path(ref), name=display)
    if progress is not None:
        progress(1.0, "saved")
    return items
