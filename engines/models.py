"""The model manager: model records, download with resume and checksum, offline import.

A :class:`ModelRecord` names a model, the engine that uses it, its licence and its
files (each with sha256 and size) and where they come from: a Hugging Face repo at a
pinned revision (downloaded with ``huggingface_hub.hf_hub_download``), or plain URLs
(downloaded with ``urllib`` using HTTP Range requests to resume). Records are declared
in each engine package's ``manifest.py`` and collected by :mod:`engines.registry`.

Files live in ``<models dir>/<model id>/<filename>``. The models dir is, in order:
the environment variable ``SEED_STUDIO_MODELS_DIR``, then the user's setting (passed as
``setting=``), then ``platformdirs.user_cache_dir("seed-studio")/models``.

Integrity: :meth:`ModelManager.require` (what engines call before loading) checks every
recorded file's sha256, not only its size, and refuses a damaged or replaced file with
:class:`~engines.base.ChecksumMismatch` naming it and saying what to do. A file is hashed
once per change: the digest is cached by (size, mtime) in memory and in
``<models dir>/.verified.json``, so loading a multi-GB model again costs a ``stat``.
Engines load exactly the recorded file names (never a glob, never a path read from a
file in the folder).

Nothing here imports torch.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

from engines.files import atomic_write_text, replace_durably, sha256_file
from engines.records import ModelFile, ModelRecord
from engines.base import ChecksumMismatch, EngineNotFound, ModelDownloadError, ModelNotInstalled

ENV_MODELS_DIR = "SEED_STUDIO_MODELS_DIR"

DownloadProgress = Callable[[int, int, str], None]
"""``progress(done_bytes, total_bytes, filename)`` over the whole model."""


def default_models_dir(setting: str | os.PathLike | None = None) -> Path:
    """The models folder: env ``SEED_STUDIO_MODELS_DIR``, else ``setting``, else the user cache."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    if setting:
        return Path(setting).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("seed-studio", appauthor=False)) / "models"


def human_size(n: int) -> str:
    """``1536000`` -> ``"1.5 MB"`` (decimal units)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


class ModelManager:
    """Downloads, imports, verifies and removes model files.

    Args:
        root: the models folder; None = :func:`default_models_dir` (``setting`` applies).
        setting: the user's models-folder setting, used when ``root`` is None.
        records: model records to know; None = every record of the registry
            (:func:`engines.registry.list_models`).

    Errors raised: :class:`~engines.base.ModelDownloadError` (offline, HTTP error,
    interrupted transfer), :class:`~engines.base.ChecksumMismatch` (bad file, removed),
    :class:`~engines.base.ModelNotInstalled`, :class:`~engines.base.EngineNotFound`
    (unknown model id).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        setting: str | os.PathLike | None = None,
        records: Iterable[ModelRecord] | None = None,
    ):
        self.root = Path(root) if root is not None else default_models_dir(setting)
        self._records = list(records) if records is not None else None

    # ------------------------------------------------------------------ records

    @property
    def records(self) -> list[ModelRecord]:
        """All known model records."""
        if self._records is not None:
            return list(self._records)
        from engines.registry import list_models

        return list_models()

    def record(self, model: str | ModelRecord) -> ModelRecord:
        """Resolve a model id (or pass a record through).

        Raises:
            EngineNotFound: unknown id.
        """
        if isinstance(model, ModelRecord):
            return model
        for r in self.records:
            if r.id == model:
                return r
        known = ", ".join(r.id for r in self.records)
        raise EngineNotFound(f"no model named {model!r}", f"known models: {known}")

    def model_dir(self, model: str | ModelRecord) -> Path:
        """Folder holding the model's files (may not exist)."""
        return self.root / self.record(model).id

    def status(self, model: str | ModelRecord) -> str:
        """``"built-in"``, ``"installed"`` (every file present with the right size),
        ``"partial"`` or ``"missing"``. Cheap: does not hash (use :meth:`verify`)."""
        rec = self.record(model)
        if rec.builtin:
            return "built-in"
        d = self.model_dir(rec)
        if hub_verified(rec):
            from engines.hub import check_snapshot, read_lock

            lock = read_lock(d)
            named = all(f.filename in lock["files"] for f in rec.files) if lock else False
            if lock is not None and named and not check_snapshot(d):
                return "installed"
            return "partial" if d.is_dir() and any(d.iterdir()) else "missing"
        present = [(d / f.filename).is_file() and (d / f.filename).stat().st_size == f.size for f in rec.files]
        if all(present):
            return "installed"
        if any(present) or any((d / (f.filename + ".part")).exists() for f in rec.files):
            return "partial"
        return "missing"

    def require(self, model: str | ModelRecord) -> Path:
        """The model's folder, for engines to load from, after checking every recorded file:
        present, the recorded size, and the recorded sha256 (hashed once per change of the
        file's size or mtime, see the module docstring).

        Raises:
            ModelNotInstalled: a file is missing or has the wrong size.
            ChecksumMismatch: a file's sha256 differs from its record (damaged, or replaced
                by another file); the message names the file and what to do.
        """
        rec = self.record(model)
        if self.status(rec) not in ("installed", "built-in"):
            raise ModelNotInstalled(
                f"model {rec.id!r} is not installed in '{self.model_dir(rec)}'",
                f"download it with `seed-studio models download {rec.id}` "
                f"or import it with `seed-studio models import {rec.id} FOLDER`",
            )
        d = self.model_dir(rec)
        if hub_verified(rec):
            from engines.hub import read_lock

            for name, meta in (read_lock(d) or {"files": {}})["files"].items():
                p = d / name
                if self.file_sha256(p) != meta.get("sha256"):
                    raise ChecksumMismatch(
                        f"model file '{p}' of {rec.id!r} does not match the sha256 recorded when it was "
                        "downloaded: it is damaged or was replaced, so it is not loaded",
                        f"download it again with `seed-studio models download {rec.id}` (after "
                        f"`seed-studio models remove {rec.id}`)")
            return d
        for f in rec.files:
            p = self.file_path(rec, f)
            if not f.sha256:
                continue  # a record without a checksum (an unpublished one) can only be size-checked
            if self.file_sha256(p) != f.sha256.lower():
                raise ChecksumMismatch(
                    f"model file '{p}' of {rec.id!r} does not match its recorded sha256: it is damaged or "
                    "was replaced by another file, so it is not loaded",
                    f"download it again with `seed-studio models download {rec.id}` (after "
                    f"`seed-studio models remove {rec.id}`), or import the right files with "
                    f"`seed-studio models import {rec.id} FOLDER`",
                )
        return d

    def file_path(self, model: str | ModelRecord, f: ModelFile) -> Path:
        """Where a recorded file lives: ``<model dir>/<filename>``.

        Raises:
            ModelNotInstalled: the record names a path outside the model's folder.
        """
        rec = self.record(model)
        rel = Path(f.filename)
        if rel.is_absolute() or rel.drive or ".." in rel.parts:
            raise ModelNotInstalled(f"model {rec.id!r} names the file {f.filename!r}, outside its folder",
                                    "the model record is broken; reinstall Seed Studio")
        return self.model_dir(rec) / rel

    def file_sha256(self, path: str | os.PathLike) -> str:
        """sha256 of a model file, cached by (path, size, mtime, ctime, inode) in memory and
        in ``<models dir>/.verified.json`` (any write, rename or replacement changes the key).

        Raises:
            OSError: the file can't be read.
        """
        p = Path(path)
        st = p.stat()
        key = str(p.resolve())
        stamp = _stamp(st)
        with _CACHE_LOCK:
            hit = _HASH_CACHE.get((key, *stamp))
            if hit is None:
                disk = self._disk_cache().get(key)
                if isinstance(disk, dict) and tuple(disk.get("stamp") or ()) == stamp:
                    hit = str(disk.get("sha256", ""))
                    _HASH_CACHE[(key, *stamp)] = hit
        if hit:
            return hit
        digest = sha256_file(p)
        self._remember(p, digest)
        return digest

    def _cache_file(self) -> Path:
        return self.root / ".verified.json"

    def _disk_cache(self) -> dict:
        try:
            data = json.loads(self._cache_file().read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remember(self, path: Path, digest: str) -> None:
        """Cache a digest just computed (memory, and the models folder when writable)."""
        try:
            st = path.stat()
        except OSError:
            return
        key = str(path.resolve())
        with _CACHE_LOCK:
            _HASH_CACHE[(key, *_stamp(st))] = digest
            data = self._disk_cache()
            data[key] = {"stamp": list(_stamp(st)), "sha256": digest}
            try:
                atomic_write_text(self._cache_file(), json.dumps(data, indent=1))
            except OSError:
                pass  # a read-only models folder: the memory cache still serves this process

    # ------------------------------------------------------------------ verify / remove / import

    def verify(self, model: str | ModelRecord) -> list[str]:
        """Hash every file against its record.

        Returns:
            Problems in plain words (empty list = all good), e.g.
            ``"weights.bin: sha256 mismatch"``, ``"weights.bin: missing"``.
        """
        rec = self.record(model)
        d = self.model_dir(rec)
        if hub_verified(rec):
            from engines.hub import check_snapshot

            return check_snapshot(d, full=True)
        problems = []
        for f in rec.files:
            p = d / f.filename
            if not p.is_file():
                problems.append(f"{f.filename}: missing")
            elif p.stat().st_size != f.size:
                problems.append(f"{f.filename}: size {p.stat().st_size} bytes, expected {f.size}")
            else:
                digest = sha256_file(p)
                self._remember(p, digest)
                if digest != f.sha256.lower():
                    problems.append(f"{f.filename}: sha256 mismatch")
        return problems

    def remove(self, model: str | ModelRecord) -> bool:
        """Delete the model's folder. Returns True if something was removed."""
        d = self.model_dir(model)
        if d.exists():
            shutil.rmtree(d)
            return True
        return False

    def import_from(self, model: str | ModelRecord, folder: str | os.PathLike) -> Path:
        """Install model files from a local folder (for machines without internet).

        Each file is looked up as ``folder/filename``, then ``folder/basename``; it must
        match its sha256 before it is copied (atomically) into the models folder.

        Raises:
            ModelNotInstalled: the folder or a file is missing (names it).
            ChecksumMismatch: a file's sha256 differs (names it; nothing is copied for it).
        """
        rec = self.record(model)
        src_root = Path(folder)
        if not src_root.is_dir():
            raise ModelNotInstalled(f"import folder '{src_root}' does not exist", "give the folder holding the model files")
        d = self.model_dir(rec)
        if hub_verified(rec):
            return self._import_snapshot(rec, src_root, d)
        for f in rec.files:
            src = src_root / f.filename
            if not src.is_file():
                src = src_root / Path(f.filename).name
            if not src.is_file():
                raise ModelNotInstalled(
                    f"model file '{f.filename}' of {rec.id!r} not found in '{src_root}'",
                    "the folder must hold every file the model lists (see `seed-studio models list`)",
                )
            digest = sha256_file(src)
            if digest != f.sha256.lower():
                raise ChecksumMismatch(
                    f"model file '{src}': sha256 {digest[:12]}... does not match the expected {f.sha256[:12]}...",
                    "this is not the right file for this model (wrong version or corrupt)",
                )
            dst = d / f.filename
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".import")
            shutil.copyfile(src, tmp)
            replace_durably(tmp, dst)
            if sha256_file(dst) == digest:  # the copy is what was checked: remember it
                self._remember(dst, digest)
        return d

    def _import_snapshot(self, rec: ModelRecord, src_root: Path, d: Path) -> Path:
        """Copy a whole-repository model (or one whose file facts the Hub gives) from a local
        folder, and write its lock record with the sha256 of what was copied (``"commit":
        "imported"``: the Hub could not vouch for it offline)."""
        from fnmatch import fnmatch

        from engines.hub import DEFAULT_PATTERNS, LOCK_NAME

        wanted = [f.filename for f in rec.files]
        if wanted:
            names = wanted
        else:
            names = sorted(str(p.relative_to(src_root)) for p in src_root.rglob("*")
                           if p.is_file() and not p.name.startswith(".")
                           and any(fnmatch(p.name, pat) for pat in DEFAULT_PATTERNS))
        if not names:
            raise ModelNotInstalled(f"'{src_root}' holds no model files for {rec.id!r}",
                                    "give the folder of a downloaded copy (model_index.json, *.safetensors...)")
        files = {}
        for name in names:
            src = src_root / name
            if not src.is_file():
                raise ModelNotInstalled(f"model file '{name}' of {rec.id!r} not found in '{src_root}'",
                                        "the folder must hold every file the model lists")
            dst = d / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".import")
            shutil.copyfile(src, tmp)
            replace_durably(tmp, dst)
            digest = sha256_file(dst)
            self._remember(dst, digest)
            files[name] = {"size": dst.stat().st_size, "sha256": digest}
        lock = {"repo": rec.hf_repo, "revision": rec.revision or "main", "commit": "imported", "files": files}
        atomic_write_text(d / LOCK_NAME, json.dumps(lock, indent=1, sort_keys=True))
        return d

    # ------------------------------------------------------------------ download

    def download(
        self,
        model: str | ModelRecord,
        progress: DownloadProgress | None = None,
        *,
        retries: int = 2,
        timeout: float = 30.0,
    ) -> Path:
        """Download every missing file, verify its sha256, and return the model folder.

        URL files are fetched into ``<file>.part`` with HTTP Range requests, so an
        interrupted transfer resumes (automatically up to ``retries`` times in this call,
        and on the next call otherwise). Hub files go through
        ``huggingface_hub.hf_hub_download`` (which resumes itself) at the record's revision.

        Args:
            model: id or record.
            progress: ``progress(done_bytes, total_bytes, filename)``.
            retries: extra attempts per file after an interrupted transfer.
            timeout: socket timeout in seconds.

        Raises:
            ModelDownloadError: offline / server unreachable / HTTP error / still
                interrupted after the retries (the partial file is kept for resuming).
            ChecksumMismatch: a downloaded file has the wrong sha256 (it is removed).
        """
        rec = self.record(model)
        d = self.model_dir(rec)
        if hub_verified(rec):
            from engines.hub import DEFAULT_PATTERNS, download_snapshot

            patterns = tuple(f.filename for f in rec.files) or DEFAULT_PATTERNS
            lock = download_snapshot(rec.hf_repo or "", rec.revision, d, patterns=patterns, progress=progress,
                                     model_id=rec.id)
            for name, meta in lock["files"].items():
                self._remember(d / name, meta["sha256"])
            return d
        total = rec.size
        done = 0
        for f in rec.files:
            dst = d / f.filename
            if dst.is_file() and dst.stat().st_size == f.size and sha256_file(dst) == f.sha256.lower():
                done += f.size
                if progress:
                    progress(done, total, f.filename)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            base = done

            def file_progress(n: int, _base: int = base, _name: str = f.filename) -> None:
                if progress:
                    progress(_base + n, total, _name)

            if rec.hf_repo:
                self._download_hub(rec, f, dst, file_progress)
            elif f.url:
                self._download_url(f, dst, file_progress, retries=retries, timeout=timeout)
            else:
                raise ModelDownloadError(f"model file '{f.filename}' of {rec.id!r} has no source", "")
            digest = sha256_file(dst)
            if digest != f.sha256.lower():
                dst.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"downloaded file '{f.filename}' of {rec.id!r} is corrupt: sha256 {digest[:12]}... "
                    f"instead of {f.sha256[:12]}...; the file was removed"
                )
            self._remember(dst, digest)
            done = base + f.size
            if progress:
                progress(done, total, f.filename)
        return d

    def _download_url(
        self, f: ModelFile, dst: Path, file_progress: Callable[[int], None], *, retries: int, timeout: float
    ) -> None:
        part = dst.with_name(dst.name + ".part")
        attempt = 0
        while True:
            try:
                self._fetch_range(f, part, file_progress, timeout)
                break
            except _Interrupted as exc:
                attempt += 1
                if attempt > retries:
                    raise ModelDownloadError(
                        f"download of '{f.filename}' from {f.url} was interrupted after "
                        f"{exc.have} of {f.size} bytes",
                        "run the download again: it resumes where it stopped",
                    ) from None
        replace_durably(part, dst)

    def _fetch_range(self, f: ModelFile, part: Path, file_progress: Callable[[int], None], timeout: float) -> None:
        have = part.stat().st_size if part.exists() else 0
        if have > f.size:
            part.unlink()
            have = 0
        if have == f.size:
            return
        req = urllib.request.Request(f.url or "", headers={"User-Agent": "seed-studio"})
        if have:
            req.add_header("Range", f"bytes={have}-")
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # range not satisfiable: start over
                part.unlink(missing_ok=True)
                raise _Interrupted(0) from None
            raise ModelDownloadError(
                f"download of '{f.filename}' failed: the server at {f.url} answered HTTP {exc.code} {exc.reason}",
                "the model may have moved; try again later or import the files with `seed-studio models import`",
            ) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelDownloadError(
                f"can't reach {f.url} to download '{f.filename}': {reason}",
                "you may be offline: connect to the internet, or copy the files from another machine "
                "and run `seed-studio models import ID FOLDER`",
            ) from None
        with resp:
            mode = "ab" if have and resp.status == 206 else "wb"
            if mode == "wb":
                have = 0
            with open(part, mode) as out:
                try:
                    while True:
                        block = resp.read(1 << 16)
                        if not block:
                            break
                        out.write(block)
                        have += len(block)
                        file_progress(have)
                except (OSError, socket.timeout, ConnectionError, _http_incomplete()):
                    raise _Interrupted(have) from None
        if have < f.size:
            raise _Interrupted(have)

    def _download_hub(self, rec: ModelRecord, f: ModelFile, dst: Path, file_progress: Callable[[int], None]) -> None:
        try:
            import huggingface_hub
            from huggingface_hub import errors as hf_errors
            from tqdm.auto import tqdm as _tqdm
        except ImportError as exc:  # pragma: no cover - dependency of the app
            raise ModelDownloadError(f"huggingface_hub is missing: {exc}", "reinstall Seed Studio") from exc

        class _Bar(_tqdm):  # forwards hf's byte counts to our callback
            def update(self, n=1):  # type: ignore[override]
                r = super().update(n)
                file_progress(int(self.n))
                return r

        try:
            huggingface_hub.hf_hub_download(
                rec.hf_repo or "",
                f.filename,
                revision=rec.revision,
                local_dir=str(self.model_dir(rec)),
                tqdm_class=_Bar,
            )
        except (hf_errors.LocalEntryNotFoundError, OSError) as exc:
            raise ModelDownloadError(
                f"can't download '{f.filename}' of {rec.id!r} from the Hugging Face Hub ({rec.hf_repo}): {exc}",
                "you may be offline: connect, or import the files with `seed-studio models import ID FOLDER`",
            ) from None
        except hf_errors.HfHubHTTPError as exc:
            raise ModelDownloadError(
                f"the Hugging Face Hub refused '{f.filename}' of {rec.id!r} ({rec.hf_repo}@{rec.revision}): {exc}",
                "the repo may be gated or moved; import the files with `seed-studio models import ID FOLDER`",
            ) from None
        if not dst.is_file():
            raise ModelDownloadError(f"the Hub download of '{f.filename}' left no file at '{dst}'", "")


class _Interrupted(Exception):
    def __init__(self, have: int):
        super().__init__(have)
        self.have = have


def _http_incomplete() -> type[BaseException]:
    import http.client

    return http.client.IncompleteRead


_HASH_CACHE: dict[tuple, str] = {}
_CACHE_LOCK = threading.RLock()


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file's bytes may have: size, mtime, ctime, inode."""
    return (int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns), int(st.st_ino))


def local_model_hashes(path: str | os.PathLike, limit: int = 256) -> dict[str, str]:
    """sha256 of every file of a local model (``--model-path``): a file, or the files of a
    folder (relative paths, sorted; at most ``limit`` files, hidden ones skipped). Each
    digest is cached per process by (path, size, mtime), so a model used for many jobs is
    hashed once. Unreadable files map to ``"unreadable"``.
    """
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    out: dict[str, str] = {}
    for f in files[:limit]:
        try:
            st = f.stat()
            key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
            if key not in _HASH_CACHE:
                _HASH_CACHE[key] = sha256_file(f)
            out[f.name if f == p else str(f.relative_to(p))] = _HASH_CACHE[key]
        except OSError:
            out[f.name if f == p else str(f.relative_to(p))] = "unreadable"
    return out


def hub_verified(rec: ModelRecord) -> bool:
    """True for a Hub model whose file facts come from the Hub at download time: a whole
    repository (no file list), or a file list with sizes or sha256 not known offline. Such
    models are downloaded, checked and recorded by :mod:`engines.hub` (a lock record
    with the commit and every file's sha256)."""
    return bool(rec.hf_repo) and (rec.snapshot or any(not f.sha256 or not f.size for f in rec.files))
