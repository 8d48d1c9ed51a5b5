"""What the registry holds: engine entries and model records. Plain data, no imports.

Each engine package declares its :class:`EngineEntry` objects and :class:`ModelRecord`
objects in a torch-free ``manifest.py``; :mod:`engines.registry` collects them, the
model manager (:mod:`engines.models`) downloads the records' files, and engine classes
take their id, tasks and parameter schema from their entry (``EngineBase.entry``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EngineEntry:
    """One engine.

    Attributes:
        id: unique engine id (``JobSpec.engine_id``).
        target: ``"package.module:ClassName"``; imported lazily (only in the engine host
            or in tests).
        tasks: task names served (``engines.base.TASKS``).
        title: short name for menus.
        description: one sentence for tooltips.
        models: ids of the model records it can use, default first.
        param_schema: JSON Schema (draft 2020-12, ``type: object``) of ``JobSpec.params``;
            forms and CLI flags are generated from it. Every property has a ``default``,
            a ``title`` and a ``description``.
        offline: True when it works with no download at all (DSP fallbacks).
        accepts_model_path: True when ``JobSpec.model_path`` (a local model folder or
            file, ``--model-path``) can replace a model record.
    """

    id: str
    target: str
    tasks: tuple[str, ...]
    title: str = ""
    description: str = ""
    models: tuple[str, ...] = ()
    param_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    offline: bool = False
    accepts_model_path: bool = False


@dataclass(frozen=True)
class ModelFile:
    """One file of a model.

    Attributes:
        filename: path inside the model folder (and inside the Hub repo), e.g. "model.safetensors".
        sha256: hex sha256 of the file's bytes.
        size: bytes.
        url: download URL for URL sources; None for Hub sources.
    """

    filename: str
    sha256: str
    size: int
    url: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A downloadable model.

    Attributes:
        id: unique model id (``JobSpec.model_id``), also the folder name.
        engine: registry id of the engine that uses it.
        title: display name.
        licence: SPDX id or short licence name of the weights (shown before download).
        files: the files, with checksums; empty for built-in engines that need none.
        hf_repo: Hugging Face repo id when the source is the Hub, else None.
        revision: pinned Hub revision (commit sha or tag); required with ``hf_repo``.
        homepage: where the model is described.
        notes: free text (e.g. "offline DSP fallback").
        outputs: the output names the model produces (stems such as ``"vocals"``),
            when the musician may choose among them; empty otherwise.
        sample_rate: the model's native sample rate in Hz (0 = not relevant).
    """

    id: str
    engine: str
    title: str = ""
    licence: str = "unknown"
    files: tuple[ModelFile, ...] = ()
    hf_repo: str | None = None
    revision: str | None = None
    homepage: str = ""
    notes: str = ""
    outputs: tuple[str, ...] = ()
    sample_rate: int = 0

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(f.size for f in self.files)

    @property
    def builtin(self) -> bool:
        """True when the model needs no files (it ships with the app or a wheel)."""
        return not self.files and not self.hf_repo

    @property
    def snapshot(self) -> bool:
        """True for a whole Hub repository whose file list the Hub gives at download time
        (diffusers/transformers folders): see :mod:`engines.hub`."""
        return bool(self.hf_repo) and not self.files

    @property
    def source(self) -> str:
        """Human-readable source: ``hf:repo@revision``, the URL host, or ``built-in``."""
        if self.builtin:
            return "built-in"
        if self.snapshot:
            return f"hf:{self.hf_repo}@{self.revision or 'main'} (whole repository)"
        if self.hf_repo:
            return f"hf:{self.hf_repo}@{self.revision or 'main'}"
        urls = {f.url for f in self.files if f.url}
        return ", ".join(sorted(urls)) if len(urls) == 1 else f"{len(urls)} URLs"
