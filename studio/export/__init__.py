"""Exports out of a project: the Ableton Live hand-off folder (:mod:`studio.export.ableton`)."""
from __future__ import annotations
