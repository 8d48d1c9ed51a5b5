"""The voices library: RVC voice models the musician has imported, with what they said about them.

A voice is an RVC voice model file (``.pth``) with an optional feature index
(``.index``), a name, and its source and licence as the user states them (Seed Studio
does not check them). Voices live in ``<voices folder>/<voice id>/``::

    model.pth      the voice model, copied as is
    model.index    its feature index, when given
    voice.json     name, source, licence, when it was added, sha256 of the files, and what
                   the model is (RVC version, sample rate, speakers)

The voices folder is, in order: the ``root`` argument (tests, a setting), the environment
variable ``SEED_STUDIO_VOICES_DIR``, then ``platformdirs.user_data_dir("seed-studio")/voices``.

Importing validates the ``.pth`` by loading it the safe way (``torch.load`` with
``weights_only=True``, then building the synthesizer with a strict weight check, see
:mod:`engines.voice.checkpoint`); a refused file stores nothing. Files are copied with
atomic writes (:func:`engines.files.atomic_output`) into a hidden work folder, which is
renamed into place once ``voice.json`` is written, so a crash mid-import leaves no half
voice in the list (and a replaced voice stays until its successor is complete).

Converting someone's voice needs their consent: :data:`CONSENT_REMINDER` is shown on
import (CLI and app).

Qt-free; torch is imported only while validating a ``.pth``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import unicodedata
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engines.files import atomic_output, atomic_write_text, clean_temp_files, fsync_dir, sha256_file
from studio.errors import StudioError

__all__ = ["CONSENT_REMINDER", "ENV_VOICES_DIR", "Voice", "VoiceLibrary", "VoiceLibraryError", "default_voices_dir"]

ENV_VOICES_DIR = "SEED_STUDIO_VOICES_DIR"
CONSENT_REMINDER = ("Only convert a voice with the consent of the person it belongs to, and respect the licence "
                    "its source gives. Do not use a voice to deceive anyone.")
MODEL_FILE = "model.pth"
INDEX_FILE = "model.index"
META_FILE = "voice.json"
SCHEMA_VERSION = 1


class VoiceLibraryError(StudioError):
    """A voice can't be imported, found or removed; the message says which and why."""


def default_voices_dir(root: str | os.PathLike | None = None) -> Path:
    """The voices folder: ``root``, else ``$SEED_STUDIO_VOICES_DIR``, else the user data folder."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VOICES_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("seed-studio", appauthor=False)) / "voices"


@dataclass(frozen=True)
class Voice:
    """One voice of the library.

    Attributes:
        id: folder name (a slug of the name), stable.
        name: display name as given.
        model_path: the stored ``.pth``. index_path: the stored ``.index`` or None.
        source: where the user says the voice comes from ("" = not stated).
        licence: the licence the user states ("" = not stated).
        added: UTC ISO-8601 time of the import.
        model_sha256, index_sha256: hex digests of the stored files.
        version: "v1" or "v2". sample_rate: the model's rate in Hz. speakers: speaker count.
        info: the model's own ``info`` text (e.g. "300epoch").
        original_files: the file names the voice was imported from.
    """

    id: str
    name: str
    model_path: Path
    index_path: Path | None
    source: str
    licence: str
    added: str
    model_sha256: str
    index_sha256: str | None
    version: str
    sample_rate: int
    speakers: int
    info: str = ""
    original_files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        d = asdict(self)
        d["model_path"] = str(self.model_path)
        d["index_path"] = str(self.index_path) if self.index_path else None
        d["original_files"] = list(self.original_files)
        return d


def _slug(name: str) -> str:
    """Folder name for a voice name: ASCII letters and digits joined by '-' (accents dropped);
    names with other characters (e.g. not Latin) get a short hash so that they stay apart."""
    decomposed = unicodedata.normalize("NFKD", name)
    text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "voice"
    if any(not c.isascii() and not unicodedata.combining(c) for c in decomposed):
        text = f"{text}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"
    return text


class VoiceLibrary:
    """The voices in one folder.

    Args:
        root: the voices folder (see :func:`default_voices_dir`); created on first import.

    Errors raised: :class:`VoiceLibraryError` with a plain message (the ``.pth`` refused
    and why, a name already taken, an unknown voice...).
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = default_voices_dir(root)

    # ------------------------------------------------------------------ reading

    def _read(self, folder: Path) -> Voice | None:
        meta = folder / META_FILE
        if not meta.is_file():
            return None
        try:
            d = json.loads(meta.read_text(encoding="utf-8"))
            index = folder / INDEX_FILE if d.get("index_sha256") else None
            return Voice(id=folder.name, name=str(d["name"]), model_path=folder / MODEL_FILE, index_path=index,
                         source=str(d.get("source", "")), licence=str(d.get("licence", "")),
                         added=str(d.get("added", "")), model_sha256=str(d["model_sha256"]),
                         index_sha256=d.get("index_sha256"), version=str(d.get("version", "")),
                         sample_rate=int(d.get("sample_rate", 0)), speakers=int(d.get("speakers", 1)),
                         info=str(d.get("info", "")), original_files=tuple(d.get("original_files", ())))
        except (ValueError, KeyError, TypeError, OSError):
            return None

    def list(self) -> list[Voice]:
        """Every complete voice, sorted by name (folders without a readable ``voice.json`` are skipped)."""
        if not self.root.is_dir():
            return []
        voices = [v for f in sorted(self.root.iterdir()) if f.is_dir() and not f.name.startswith(".")
                  for v in [self._read(f)] if v is not None]
        return sorted(voices, key=lambda v: (v.name.lower(), v.id))

    def get(self, name: str) -> Voice:
        """The voice whose id or name (case-insensitive) is ``name``.

        Raises:
            VoiceLibraryError: no such voice (the message lists the voices there are).
        """
        voices = self.list()
        key = name.strip().lower()
        for v in voices:
            if v.id == name or v.name.lower() == key:
                return v
        known = ", ".join(v.name for v in voices) or "none yet"
        raise VoiceLibraryError(f"no voice named '{name}' in the voices library '{self.root}' (voices: {known})")

    def resolve(self, voice: str, index: str | None = None) -> tuple[Path, Path | None]:
        """A voice given as a library name or as a ``.pth`` path -> ``(model path, index path)``.

        ``index`` overrides the stored index. Raises VoiceLibraryError: neither a voice
        nor an existing file.
        """
        p = Path(voice).expanduser()
        if p.suffix.lower() == ".pth" or p.is_file():
            if not p.is_file():
                raise VoiceLibraryError(f"voice model file '{p}' does not exist")
            return p, Path(index) if index else None
        v = self.get(voice)
        return v.model_path, Path(index) if index else v.index_path

    # ------------------------------------------------------------------ import / remove

    def import_voice(self, model: str | os.PathLike, *, name: str | None = None, index: str | os.PathLike | None = None,
                     source: str = "", licence: str = "", replace: bool = False) -> Voice:
        """Validate and copy a voice into the library.

        Args:
            model: the voice's ``.pth``.
            name: display name; default the file name without extension.
            index: the voice's ``.index`` (faiss ``IVF…,Flat``), optional.
            source, licence: as the user states them (free text, stored as given).
            replace: replace a voice of the same name instead of refusing.

        Returns:
            the stored :class:`Voice`.

        Raises:
            VoiceLibraryError: the ``.pth`` is refused (unsafe pickle, not an RVC model,
                unsupported variant: nothing is stored), the index is unreadable or of
                another feature size, the name is taken (without ``replace``), or a file
                can't be written.
        """
        from engines.base.errors import UserError

        src = Path(model).expanduser()
        idx = Path(index).expanduser() if index else None
        name = (name or src.stem).strip()
        if not name:
            raise VoiceLibraryError("a voice needs a name")
        for p, what in ((src, "voice model"), (idx, "index")):
            if p is not None and not p.is_file():
                raise VoiceLibraryError(f"voice not imported: the {what} file '{p}' does not exist")
        vid = _slug(name)
        existing = [v for v in self.list() if v.id == vid or v.name.lower() == name.lower()]
        if existing and not replace:
            raise VoiceLibraryError(
                f"a voice named '{existing[0].name}' is already in the library; choose another name or replace it")
        folder = self.root / vid
        work = self.root / f".import-{vid}-{uuid.uuid4().hex[:8]}"
        try:
            work.mkdir(parents=True)
            # copy first, then validate the copy: what is stored is exactly what was checked
            with atomic_output(work / MODEL_FILE) as tmp:
                shutil.copyfile(src, tmp)
            if idx is not None:
                with atomic_output(work / INDEX_FILE) as tmp:
                    shutil.copyfile(idx, tmp)
            try:
                from engines.voice.checkpoint import voice_info

                info = voice_info(work / MODEL_FILE)
                if idx is not None:
                    from engines.voice.faiss_index import read_index

                    ix = read_index(work / INDEX_FILE)
                    want = 768 if info.version == "v2" else 256
                    if ix.d != want:
                        raise VoiceLibraryError(
                            f"the index '{idx.name}' holds {ix.d}-d features but the voice '{src.name}' is "
                            f"{info.version} ({want}-d): they don't belong together")
            except VoiceLibraryError:
                raise
            except UserError as exc:
                raise VoiceLibraryError(f"voice not imported: {exc}".replace(str(work / MODEL_FILE), str(src))
                                        .replace(f"'{MODEL_FILE}'", f"'{src.name}'")
                                        .replace(f"'{INDEX_FILE}'", f"'{idx.name if idx else INDEX_FILE}'")) from None
            model_sha = sha256_file(work / MODEL_FILE)
            index_sha = sha256_file(work / INDEX_FILE) if idx is not None else None
            meta = {
                "schema": SCHEMA_VERSION, "name": name, "source": source, "licence": licence,
                "added": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "model_sha256": model_sha, "index_sha256": index_sha, "version": info.version,
                "sample_rate": info.sample_rate, "speakers": info.n_speakers, "info": info.info,
                "original_files": [src.name] + ([idx.name] if idx else []),
            }
            atomic_write_text(work / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
            for v in existing:  # replace: the old voice leaves only once the new one is complete
                self._delete(self.root / v.id)
            if folder.exists():  # a half import left by a crash (no voice.json)
                self._delete(folder)
            os.replace(work, folder)
            fsync_dir(self.root)
        except VoiceLibraryError:
            with contextlib.suppress(OSError):
                self._delete(work)
            raise
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._delete(work)
            raise VoiceLibraryError(f"can't store the voice '{name}' in '{self.root}': {exc.strerror or exc}") from exc
        stored = self._read(folder)
        assert stored is not None
        return stored

    def remove(self, name: str) -> Voice:
        """Delete a voice (its folder). Returns what was removed.

        Raises:
            VoiceLibraryError: no such voice, or the folder can't be deleted.
        """
        v = self.get(name)
        try:
            self._delete(self.root / v.id)
        except OSError as exc:
            raise VoiceLibraryError(f"can't remove the voice '{v.name}': {exc.strerror or exc}") from exc
        return v

    def _delete(self, folder: Path) -> None:
        """Rename the folder out of the way (one atomic step: it leaves the list), then delete it."""
        if not folder.exists():
            return
        trash = folder.with_name(f".trash-{folder.name}-{uuid.uuid4().hex[:8]}")
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        clean_temp_files(self.root)
