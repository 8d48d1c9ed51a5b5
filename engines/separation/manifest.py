"""Separation engines and their models: HT-Demucs (htdemucs, htdemucs_ft, htdemucs_6s) and the
offline DSP fallback. Torch-free: read by :mod:`engines.registry` to list engines and models.
"""
from __future__ import annotations

from typing import Any

from engines.base.tasks import SEPARATE
from engines.records import EngineEntry, ModelFile, ModelRecord

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
_HTDEMUCS_STEMS = {"htdemucs": ("drums", "bass", "other", "vocals"),
                   "htdemucs_ft": ("drums", "bass", "other", "vocals"),
                   "htdemucs_6s": ("drums", "bass", "other", "vocals", "guitar", "piano")}

HTDEMUCS = EngineEntry(
    id="htdemucs", target="engines.separation.engine:DemucsEngine", tasks=(SEPARATE,),
    title="HT-Demucs", description="Hybrid Transformer Demucs stem separation (Meta, MIT licence).",
    models=("htdemucs", "htdemucs_ft", "htdemucs_6s"), param_schema=_SEPARATION_PARAMS, accepts_model_path=True,
)
DSP_SEPARATION = EngineEntry(
    id="dsp-separation", target="engines.separation.engine:DspSeparationEngine", tasks=(SEPARATE,),
    title="DSP fallback (offline)",
    description="DSP fallback, no download: harmonic/percussive split plus centre-channel vocal extraction. Rough stems.",
    models=("dsp-hpss-centre",), offline=True,
    param_schema={"type": "object", "properties": {
        "n_fft": {"type": "integer", "default": 4096, "enum": [1024, 2048, 4096, 8192], "title": "FFT size",
                  "description": "STFT size of the analysis."},
        "centre_power": {"type": "number", "default": 4.0, "minimum": 0.5, "maximum": 32, "title": "Centre focus",
                         "description": "How strictly vocals must be centre-panned (higher = stricter)."},
    }},
)

ENGINES: list[EngineEntry] = [HTDEMUCS, DSP_SEPARATION]
MODELS: list[ModelRecord] = [
    ModelRecord(
        id=_name, engine="htdemucs", title=_HTDEMUCS_TITLES[_name], licence="MIT",
        files=tuple(ModelFile(f, sha, size, _HTDEMUCS_URL + f) for f, sha, size in _files),
        homepage="https://github.com/facebookresearch/demucs",
        notes="Défossez et al., Hybrid Transformers for Music Source Separation, ICASSP 2023.",
        outputs=_HTDEMUCS_STEMS[_name], sample_rate=44100,
    )
    for _name, _files in _HTDEMUCS_FILES.items()
] + [
    ModelRecord(
        id="dsp-hpss-centre", engine="dsp-separation", title="DSP fallback: HPSS + centre channel (no download)",
        licence="GPL-3.0-or-later", files=(), notes="DSP fallback, not a neural model; works offline.",
        outputs=("drums", "bass", "other", "vocals"),
    ),
]
