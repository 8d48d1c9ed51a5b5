"""Which engines and models exist, what each can do, and their parameter schemas.

Listing is free: nothing here imports torch or a model library. An engine's module is
imported only by :func:`get_engine_class` (in the engine host, or in tests).

To add an engine, append ONE :class:`EngineEntry` to :data:`ENGINES`; to add a model,
append ONE :class:`~engines.models.ModelRecord` to :data:`MODELS`. Example::

    ENGINES.append(EngineEntry(
        id="htdemucs", target="engines.separation.demucs_engine:DemucsEngine",
        tasks=("separate",), title="HT-Demucs", models=("htdemucs", "htdemucs_ft"),
        param_schema={"type": "object", "properties": {"shifts": {"type": "integer", "default": 1}}},
    ))
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from engines.base import TASKS, EngineNotFound
from engines.models import ModelFile, ModelRecord  # noqa: F401 - re-exported for appenders


@dataclass(frozen=True)
class EngineEntry:
    """One registered engine.

    Attributes:
        id: unique engine id (``JobSpec.engine_id``).
        target: ``"package.module:ClassName"``; imported lazily.
        tasks: task names served (``engines.base.TASKS``).
        title: short name for menus.
        description: one sentence for tooltips.
        models: ids of the model records it can use, default first (empty = needs no model files).
        param_schema: JSON Schema of ``JobSpec.params`` (the UI builds its form from it).
        offline: True when it works with no download at all (DSP fallbacks, the fake engine).
    """

    id: str
    target: str
    tasks: tuple[str, ...]
    title: str = ""
    description: str = ""
    models: tuple[str, ...] = ()
    param_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    offline: bool = False


FAKE_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "frequency": {"type": "number", "default": 440.0, "minimum": 1.0, "title": "Frequency (Hz)",
                      "description": "Sine frequency for generate/extend/inpaint."},
        "noise": {"type": "number", "default": 0.0, "minimum": 0.0, "maximum": 1.0, "title": "Noise",
                  "description": "Amount of seeded white noise mixed in."},
        "crossovers": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                       "default": [200.0, 2000.0], "title": "Crossovers (Hz)",
                       "description": "Band edges of the band-split separator."},
        "chunk_seconds": {"type": "number", "default": 1.0, "exclusiveMinimum": 0, "title": "Chunk (s)",
                          "description": "Processing chunk length; progress and cancel happen per chunk."},
        "delay_per_chunk": {"type": "number", "default": 0.0, "minimum": 0.0, "title": "Delay per chunk (s)",
                            "description": "Test hook: sleep this long per chunk."},
        "oom_above_chunk_scale": {"type": "number", "default": 2.0, "title": "Simulated OOM",
                                  "description": "Test hook: raise a simulated CUDA out-of-memory error while chunk_scale is above this."},
        "crash": {"type": "boolean", "default": False, "title": "Crash",
                  "description": "Test hook: kill the host process mid-job."},
    },
}

ENGINES: list[EngineEntry] = [
    EngineEntry(
        id="fake",
        target="engines.fake:FakeEngine",
        tasks=TASKS,
        title="Fake (test signal)",
        description="Deterministic sine/noise generator and band-split separator, for tests and smoke checks.",
        models=("fake-builtin",),
        param_schema=FAKE_PARAMS,
        offline=True,
    ),
]
"""Every engine. Append to it; don't reorder."""

MODELS: list[ModelRecord] = [
    ModelRecord(
        id="fake-builtin",
        engine="fake",
        title="Fake engine (no weights)",
        licence="GPL-3.0-or-later",
        files=(),
        notes="Built in; needs no download.",
    ),
]
"""Every model record (see ``engines.models``). Append to it; don't reorder."""


def list_engines(task: str | None = None) -> list[EngineEntry]:
    """All engine entries, or those serving ``task``, in registration order. Imports nothing."""
    return [e for e in ENGINES if task is None or task in e.tasks]


def engines_for(task: str) -> list[EngineEntry]:
    """Engines serving ``task``.

    Raises:
        EngineNotFound: ``task`` is not a known task name.
    """
    if task not in TASKS:
        raise EngineNotFound(f"unknown task {task!r}", f"tasks are: {', '.join(TASKS)}")
    return list_engines(task)


def get_entry(engine_id: str) -> EngineEntry:
    """The entry registered as ``engine_id``.

    Raises:
        EngineNotFound: no such engine.
    """
    for e in ENGINES:
        if e.id == engine_id:
            return e
    known = ", ".join(e.id for e in ENGINES)
    raise EngineNotFound(f"no engine named {engine_id!r}", f"known engines: {known}")


def get_engine_class(engine_id: str) -> type:
    """Import and return the engine class of ``engine_id`` (this imports its libraries).

    Raises:
        EngineNotFound: no such engine, or its module/class can't be imported
            (the message carries the import error).
    """
    entry = get_entry(engine_id)
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise EngineNotFound(
            f"engine {engine_id!r} can't be loaded: {exc}",
            "a library it needs may be missing; reinstall Seed Studio",
        ) from exc


def list_models(engine_id: str | None = None) -> list[ModelRecord]:
    """All model records, or those of one engine. Imports nothing."""
    return [m for m in MODELS if engine_id is None or m.engine == engine_id]


def get_model(model_id: str) -> ModelRecord:
    """The model record ``model_id``.

    Raises:
        EngineNotFound: no such model (hint lists the known ids).
    """
    for m in MODELS:
        if m.id == model_id:
            return m
    known = ", ".join(m.id for m in MODELS)
    raise EngineNotFound(f"no model named {model_id!r}", f"known models: {known}")


# --------------------------------------------------------------------------- separation (issue 4)
_HTDEMUCS_URL = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/"
# Official weight files of demucs' remote/files.txt; their names carry sha256[:8]. The full
# sha256 values are not published by Meta: they are the digests of those files as recorded
# by independent downstream manifests, each consistent with the official 8-hex prefix.
_HTDEMUCS_FILES = {
    "htdemucs": [("955717e8-8726e21a.th", "8726e21a993978c7ba086d3872e7608d7d5bfca646ca4aca459ffda844faa8b4", 84141911)],
    "htdemucs_ft": [
        ("f7e0c4bc-ba3fe64a.th", "ba3fe64ae8ef66ac9a4857222ce48efbdc5eb3ad375cb79dd13debee5aaa4066", 84141271),
        ("d12395a8-e57c48e6.th", "e57c48e6b0e38af4f7118d7bd08c49f0a0c0edf7d09143bdd902ea0d237303e6", 84141271),
        ("92cfc3b6-ef3bcb9c.th", "ef3bcb9c8b40d14ae5d51b6db2587339cc12c6b77c0be151ce6d69002e087bf2", 84141271),
        ("04573f0d-f3cf25b2.th", "f3cf25b222c4eed7cd49dd8b2c9597d50c18bd154090f7b919cfa5f93cf22c49", 84141271),
    ],
    "htdemucs_6s": [("5c90dfd2-34c22ccb.th", "34c22ccb381c6f9fdbf324f04e1e2fe21aaaf293f5ded163a162697ff9a02ddd", 54996327)],
}
_HTDEMUCS_TITLES = {
    "htdemucs": "HT-Demucs (4 stems)",
    "htdemucs_ft": "HT-Demucs fine-tuned bag (4 stems, 4x slower, best quality)",
    "htdemucs_6s": "HT-Demucs 6 stems (adds guitar and piano)",
}
_SEPARATION_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "residual": {"type": "boolean", "default": False, "title": "Stems sum to the mix",
                     "description": "Residual-consistent mode: whatever the model misses goes to 'other', so the stems add up exactly to the mixture."},
        "shifts": {"type": "integer", "default": 0, "minimum": 0, "maximum": 20, "title": "Shifts",
                   "description": "Test-time augmentation: average this many randomly time-shifted passes (slower, slightly better)."},
        "segment": {"type": ["number", "null"], "default": None, "exclusiveMinimum": 0, "title": "Segment (s)",
                    "description": "Chunk length in seconds; empty = the model's own (7.8 s for HT-Demucs, which is also the maximum)."},
        "overlap": {"type": "number", "default": 0.25, "minimum": 0.0, "maximum": 0.9, "title": "Overlap",
                    "description": "Minimum overlap between chunks, as a fraction of the segment."},
        "batch_size": {"type": ["integer", "null"], "default": None, "minimum": 1, "maximum": 64, "title": "Batch",
                       "description": "Chunks per model call; empty = 1 on CPU, 4 on GPU."},
    },
}
ENGINES += [
    EngineEntry(
        id="htdemucs", target="engines.separation.engine:DemucsEngine", tasks=("separate",),
        title="HT-Demucs", description="Hybrid Transformer Demucs stem separation (Meta, MIT licence).",
        models=("htdemucs", "htdemucs_ft", "htdemucs_6s"), param_schema=_SEPARATION_PARAMS,
    ),
    EngineEntry(
        id="dsp-separation", target="engines.separation.engine:DspSeparationEngine", tasks=("separate",),
        title="DSP fallback (offline)",
        description="DSP fallback, no download: harmonic/percussive split plus centre-channel vocal extraction. Rough stems.",
        models=("dsp-hpss-centre",), offline=True,
        param_schema={"type": "object", "properties": {
            "n_fft": {"type": "integer", "default": 4096, "enum": [1024, 2048, 4096, 8192], "title": "FFT size",
                      "description": "STFT size of the analysis."},
            "centre_power": {"type": "number", "default": 4.0, "minimum": 0.5, "maximum": 32, "title": "Centre focus",
                             "description": "How strictly vocals must be centre-panned (higher = stricter)."},
        }},
    ),
]
MODELS += [
    ModelRecord(
        id=_name, engine="htdemucs", title=_HTDEMUCS_TITLES[_name], licence="MIT",
        files=tuple(ModelFile(f, sha, size, _HTDEMUCS_URL + f) for f, sha, size in _files),
        homepage="https://github.com/facebookresearch/demucs",
        notes="Défossez et al., Hybrid Transformers for Music Source Separation, ICASSP 2023.",
    )
    for _name, _files in _HTDEMUCS_FILES.items()
] + [
    ModelRecord(
        id="dsp-hpss-centre", engine="dsp-separation", title="DSP fallback: HPSS + centre channel (no download)",
        licence="GPL-3.0-or-later", files=(), notes="DSP fallback, not a neural model; works offline.",
    ),
]

# Analysis engines (issue 5): entries and model records live in engines/analysis/registry_entries.py,
# which imports nothing heavy.
from engines.analysis.registry_entries import ANALYSIS_ENGINES as _ANALYSIS_ENGINES  # noqa: E402
from engines.analysis.registry_entries import ANALYSIS_MODELS as _ANALYSIS_MODELS  # noqa: E402

ENGINES.extend(EngineEntry(**_e) for _e in _ANALYSIS_ENGINES)
MODELS.extend(_ANALYSIS_MODELS)
