"""Whole-repository models from the Hugging Face Hub (diffusers and transformers folders).

Some models are a folder of many files whose list is only known to the Hub
(``model_index.json``, one subfolder per module). :func:`download_snapshot` asks the
Hub for the repository's files at a revision (``HfApi.model_info`` with file metadata),
pins the commit it resolved to, downloads each file with
``huggingface_hub.hf_hub_download`` at that commit (which resumes an interrupted
transfer), checks every LFS file against the sha256 the Hub gives, and finally writes
a lock record, :data:`LOCK_NAME`, with the commit and every file's size and sha256.
The record is written last and atomically: a folder without it is an unfinished
download, never a model.

:func:`read_lock` and :func:`check_snapshot` let the model manager tell an installed
snapshot from a partial one and verify it later; the engines load only the files the
record names (``allowed_files``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from engines.base.errors import ChecksumMismatch, ModelDownloadError
from engines.files import atomic_write_text, sha256_file

LOCK_NAME = ".seed-studio-snapshot.json"
"""The lock record of a downloaded snapshot, in the model's folder."""

ENV_ENDPOINT = "SEED_STUDIO_HF_ENDPOINT"
"""Overrides the Hub address (a mirror, or the tests' loopback server)."""

DEFAULT_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.py.lock")
"""File patterns a snapshot keeps: configs, tokenizer files and safetensors weights.
Pickle-based weights (``*.bin``, ``*.pt``, ``*.ckpt``) are never downloaded."""


def _endpoint() -> str | None:
    return os.environ.get(ENV_ENDPOINT) or None


def _match(name: str, patterns: tuple[str, ...]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(Path(name).name, p) or fnmatch(name, p) for p in patterns)


def download_snapshot(repo: str, revision: str | None, dest: str | os.PathLike, *,
                      patterns: tuple[str, ...] = DEFAULT_PATTERNS,
                      progress: Callable[[int, int, str], None] | None = None,
                      model_id: str = "") -> dict[str, Any]:
    """Download ``repo`` at ``revision`` into ``dest`` and write its lock record.

    Args:
        repo: Hub repository id (``"org/name"``).
        revision: a commit sha, branch or tag; None = ``"main"`` (the commit it resolves
            to is recorded).
        dest: the model folder.
        patterns: which files to take (fnmatch on the path or the file name).
        progress: ``progress(done_bytes, total_bytes, filename)``.
        model_id: for messages.

    Returns:
        The lock record (``{"repo", "revision", "commit", "files": {path: {"size", "sha256"}}}``).

    Raises:
        ModelDownloadError: offline, the Hub refused (gated, moved), no matching files.
        ChecksumMismatch: a file's sha256 differs from the Hub's (the file is removed).
    """
    try:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub import errors as hf_errors
        from tqdm.auto import tqdm as _tqdm
    except ImportError as exc:  # pragma: no cover - dependency of the app
        raise ModelDownloadError(f"huggingface_hub is missing: {exc}", "reinstall Seed Studio") from exc
    name = model_id or repo
    dest = Path(dest)
    endpoint = _endpoint()
    try:
        info = HfApi(endpoint=endpoint).model_info(repo, revision=revision or "main", files_metadata=True)
    except hf_errors.HfHubHTTPError as exc:
        raise ModelDownloadError(f"the Hugging Face Hub refused {repo}@{revision or 'main'} ({name}): {exc}",
                                 "the repository may be gated or moved; import a copy with "
                                 "`seed-studio models import ID FOLDER`") from None
    except Exception as exc:  # connection errors come in several types
        raise ModelDownloadError(f"can't reach the Hugging Face Hub for {repo} ({name}): {exc}",
                                 "you may be offline: connect, or import a copy with "
                                 "`seed-studio models import ID FOLDER`") from None
    siblings = [s for s in (info.siblings or []) if _match(s.rfilename, patterns)]
    if not siblings:
        raise ModelDownloadError(f"{repo}@{info.sha} holds no model files ({', '.join(patterns)})", "")
    for s in siblings:
        if ".." in Path(s.rfilename).parts or Path(s.rfilename).is_absolute():
            raise ModelDownloadError(f"{repo} lists a file outside its folder: {s.rfilename!r}", "")
    total = sum(int(s.size or 0) for s in siblings)
    done = 0
    files: dict[str, dict[str, Any]] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for s in siblings:
        base = done

        class _Bar(_tqdm):  # forwards the byte count of this file
            def update(self, n=1):  # type: ignore[override]
                r = super().update(n)
                if progress is not None:
                    progress(base + int(self.n), total, s.rfilename)
                return r

        try:
            path = Path(hf_hub_download(repo, s.rfilename, revision=info.sha, local_dir=str(dest), endpoint=endpoint,
                                        tqdm_class=_Bar))
        except hf_errors.HfHubHTTPError as exc:
            raise ModelDownloadError(f"the Hugging Face Hub refused '{s.rfilename}' of {name}: {exc}", "") from None
        except Exception as exc:
            raise ModelDownloadError(f"the download of '{s.rfilename}' of {name} was interrupted: {exc}",
                                     "run the download again: it resumes where it stopped") from None
        digest = sha256_file(path)
        lfs = s.lfs
        expected = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
        if expected and digest != expected:
            path.unlink(missing_ok=True)
            raise ChecksumMismatch(f"downloaded file '{s.rfilename}' of {name} is corrupt: sha256 {digest[:12]}... "
                                   f"instead of {expected[:12]}...; the file was removed")
        files[s.rfilename] = {"size": path.stat().st_size, "sha256": digest}
        done = base + int(s.size or path.stat().st_size)
        if progress is not None:
            progress(done, total, s.rfilename)
    lock = {"repo": repo, "revision": revision or "main", "commit": info.sha, "files": files}
    atomic_write_text(dest / LOCK_NAME, json.dumps(lock, indent=1, sort_keys=True))
    return lock


def read_lock(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The lock record of a snapshot folder, or None when there is none (or it is unreadable)."""
    p = Path(folder) / LOCK_NAME
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    return data


def check_snapshot(folder: str | os.PathLike, *, full: bool = False) -> list[str]:
    """Problems of a snapshot folder against its lock record, in plain words (empty = good).

    Args:
        full: also hash every file (else sizes only).
    """
    folder = Path(folder)
    lock = read_lock(folder)
    if lock is None:
        return [f"'{folder}' has no complete download (no {LOCK_NAME})"]
    problems = []
    for name, meta in lock["files"].items():
        p = folder / name
        if ".." in Path(name).parts or not p.is_file():
            problems.append(f"{name}: missing")
        elif p.stat().st_size != int(meta.get("size", -1)):
            problems.append(f"{name}: size {p.stat().st_size} bytes, expected {meta.get('size')}")
        elif full and sha256_file(p) != meta.get("sha256"):
            problems.append(f"{name}: sha256 mismatch")
    return problems


def allowed_files(folder: str | os.PathLike) -> set[str] | None:
    """The relative paths the lock record names (None: no record, e.g. a ``--model-path``)."""
    lock = read_lock(folder)
    return None if lock is None else set(lock["files"])
