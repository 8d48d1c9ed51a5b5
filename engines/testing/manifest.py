"""The test engine's entry: registered only by the tests or with the developer setting
``SEED_STUDIO_DEV_ENGINES=engines.testing.manifest``, never in a musician's menus."""
from __future__ import annotations

from typing import Any

from engines.base.tasks import TASKS
from engines.records import EngineEntry, ModelRecord

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

FAKE = EngineEntry(
        id="fake",
        target="engines.testing.fake:FakeEngine",
        tasks=TASKS,
        title="Fake (test signal)",
        description="Deterministic sine/noise generator and band-split separator, for tests and smoke checks.",
        models=("fake-builtin",),
        param_schema=FAKE_PARAMS,
        offline=True,
        accepts_model_path=True,
)

ENGINES: list[EngineEntry] = [FAKE]
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


