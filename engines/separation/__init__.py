"""Stem separation: HT-Demucs through the ``demucs`` library, plus an offline DSP fallback.

Modules (imported lazily; importing this package does not import torch):

* :mod:`engines.separation.core` - chunked, bounded-memory separation of any-rate audio.
* chunk plans and cross-fade windows: :mod:`engines.chunking` (shared by every engine).
* :mod:`engines.separation.demucs_adapter` - building/loading HT-Demucs models safely.
* :mod:`engines.separation.identity` - an exact identity separator for tests.
* :mod:`engines.separation.dsp` - HPSS + centre-channel fallback (no download).
* :mod:`engines.separation.engine` - the :class:`engines.base.Engine` classes.
"""
from __future__ import annotations
