"""Loading ACE-Step 1.5 pipelines from a model folder, and the file hashes for provenance.

A model folder is a diffusers ``AceStepPipeline`` layout (``model_index.json`` plus
``transformer/``, ``condition_encoder/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/`` and optionally ``audio_tokenizer/`` and ``audio_token_detokenizer/``), from
the model manager (a whole-repository snapshot with its lock record, :mod:`engines.hub`)
or given as is with ``--model-path``. Weights are read by ``AceStepPipeline.from_pretrained``
with ``use_safetensors=True``: pickled weights are never loaded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engines.base import ModelNotInstalled

_HASHES: dict[tuple[str, int, int], str] = {}


def load_pipeline(folder: str | os.PathLike, device: str, dtype: str) -> Any:
    """``AceStepPipeline.from_pretrained(folder)`` on ``device`` in ``dtype``.

    Args:
        folder: a diffusers AceStepPipeline folder.
        device: ``"cpu"``, ``"cuda:0"``...
        dtype: ``"float32"`` (CPU), ``"bfloat16"`` (CUDA) or ``"float16"``.

    Returns:
        The pipeline, in eval mode, progress bars off.

    Raises:
        ModelNotInstalled: the folder does not exist or holds no ``model_index.json``.
    """
    path = Path(folder)
    if not (path / "model_index.json").is_file():
        raise ModelNotInstalled(
            f"'{path}' is not an ACE-Step 1.5 model folder (no model_index.json)",
            "give a diffusers AceStepPipeline folder with --model-path, or download the model",
        )
    import torch
    from diffusers import AceStepPipeline

    from engines.devices import torch_dtype

    pipe = AceStepPipeline.from_pretrained(str(path), dtype=torch_dtype(dtype), use_safetensors=True)
    pipe = pipe.to(torch.device(device))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_files(folder: str | os.PathLike, *, require_lock: bool) -> tuple[dict[str, str], str | None]:
    """The model's files with their sha256, and the Hub commit they come from.

    A snapshot downloaded by the model manager carries a lock record
    (:data:`engines.hub.LOCK_NAME`) with the commit and every file's sha256: it is checked
    (sizes) and used as is. Without one (a ``--model-path`` folder), every file is hashed
    (:func:`folder_sha256`) and the commit is unknown (None).

    Args:
        require_lock: the folder must be a complete snapshot (model-manager folders).

    Raises:
        ModelNotInstalled: no lock record while one is required, or a file is missing or
            has the wrong size.
    """
    from engines.hub import LOCK_NAME, check_snapshot, read_lock

    lock = read_lock(folder)
    if lock is None:
        if require_lock:
            raise ModelNotInstalled(f"'{folder}' holds no complete download ({LOCK_NAME} is missing)",
                                    "download the model again: the download resumes where it stopped")
        return folder_sha256(folder), None
    problems = check_snapshot(folder)
    if problems:
        raise ModelNotInstalled(f"the model in '{folder}' is incomplete: {'; '.join(problems[:3])}",
                                "download the model again: the download resumes where it stopped")
    return {name: str(meta.get("sha256", "")) for name, meta in sorted(lock["files"].items())}, lock.get("commit")


def folder_sha256(folder: str | os.PathLike) -> dict[str, str]:
    """sha256 (hex) of every file in a model folder, by path relative to it.

    Hashes are cached per (path, size, mtime) for the life of the process, so a folder is
    read once per engine host.
    """
    from engines.files import sha256_file

    root = Path(folder)
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        digest = _HASHES.get(key)
        if digest is None:
            digest = _HASHES[key] = sha256_file(p)
        out[p.relative_to(root).as_posix()] = digest
    return out


def module_bytes(pipe: Any) -> int:
    """Bytes of the pipeline's parameters and buffers (for the host's memory accounting)."""
    total = 0
    for name in ("transformer", "condition_encoder", "text_encoder", "vae", "audio_tokenizer",
                 "audio_token_detokenizer"):
        module = getattr(pipe, name, None)
        if module is None:
            continue
        for t in list(module.parameters()) + list(module.buffers()):
            total += t.numel() * t.element_size()
    return total
