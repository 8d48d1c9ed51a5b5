"""Engine entries and model records of this package (filled in as the engine lands). Torch-free."""
from __future__ import annotations

from engines.records import EngineEntry, ModelRecord

ENGINES: list[EngineEntry] = []
MODELS: list[ModelRecord] = []
