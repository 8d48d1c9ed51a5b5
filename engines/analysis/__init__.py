"""Analysis engines: audio-to-MIDI (basic-pitch), tempo/beats/downbeats (Beat This! with a
DSP fallback), key, and melody F0 (torchfcpe).

The submodules hold pure functions (numpy audio ``(channels, frames)`` + sample rate in,
plain dataclasses out); :mod:`engines.analysis.engine` wraps them as engines for the host.
Nothing here imports Qt or the studio model.
"""
from __future__ import annotations
