"""Task names: what an engine can be asked to do."""
from __future__ import annotations

SEPARATE = "separate"
GENERATE = "generate"
EXTEND = "extend"
INPAINT = "inpaint"
ADD_STEM = "add_stem"
RESTYLE = "restyle"
CONVERT_VOICE = "convert_voice"
TRANSCRIBE = "transcribe"
ANALYZE = "analyze"

TASKS: tuple[str, ...] = (SEPARATE, GENERATE, EXTEND, INPAINT, ADD_STEM, RESTYLE, CONVERT_VOICE, TRANSCRIBE, ANALYZE)
"""Every task an engine can serve, in the order the UI lists them."""

GENERATIVE_TASKS: tuple[str, ...] = (GENERATE, EXTEND, INPAINT, ADD_STEM, RESTYLE)
"""Tasks whose outputs are new takes named ``take1..takeN`` (one per variation; see
:class:`engines.base.specs.MusicSpec`)."""
