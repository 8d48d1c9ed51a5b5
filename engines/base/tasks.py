"""Task names: what an engine can be asked to do."""
from __future__ import annotations

SEPARATE = "separate"
GENERATE = "generate"
EXTEND = "extend"
INPAINT = "inpaint"
CONVERT_VOICE = "convert_voice"
TRANSCRIBE = "transcribe"
ANALYZE = "analyze"

TASKS: tuple[str, ...] = (SEPARATE, GENERATE, EXTEND, INPAINT, CONVERT_VOICE, TRANSCRIBE, ANALYZE)
"""Every task an engine can serve, in the order the UI lists them."""


