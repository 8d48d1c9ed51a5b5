"""Error hints worded for the app.

Engine and core errors carry hints for the command line ("download it with
`seed-studio models download beat-this-final0`"). In the app the same thing is a button
in the Models window, so :func:`for_app` rewrites those hints to point there. Text
without such a hint is returned unchanged.
"""
from __future__ import annotations

import re

MODELS_WINDOW = "the Models window (View > Models…)"

_ID = r"([\w.\-]+)"
_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"download (?:it|them)(?: again)? with `?seed-studio models download " + _ID
                + r"`? \(after `?seed-studio models remove [\w.\-]+`?\)"),
     "open " + MODELS_WINDOW + r", select '\1', press Remove, then Download"),
    (re.compile(r"download (?:it|them)(?: again)? with `?seed-studio models download " + _ID
                + r"`?,? or import (?:it|them|the right files) with `?seed-studio models import [\w.\-]+ FOLDER`?"),
     "open " + MODELS_WINDOW + r", select '\1' and press Download (or Import from Folder… with files you have)"),
    (re.compile(r"download (?:it|them)(?: again)? with `?seed-studio models download " + _ID + "`?"),
     "open " + MODELS_WINDOW + r", select '\1' and press Download"),
    (re.compile(r"\(?`?seed-studio models download " + _ID + r"`?\)?"),
     "(" + MODELS_WINDOW + r": select '\1', press Download)"),
    (re.compile(r"\s*\(after `?seed-studio models remove [\w.\-]+`?\)"), " (press Remove first)"),
    (re.compile(r"`?seed-studio models import(?: [\w.\-]+ FOLDER)?`?"), "Import from Folder… in " + MODELS_WINDOW),
    (re.compile(r"see `?seed-studio models list`?"), "see " + MODELS_WINDOW),
    (re.compile(r"(?:with )?`?seed-studio models (?:list|verify)(?: [\w.\-]+)?`?"), "in " + MODELS_WINDOW),
]


def for_app(text: str) -> str:
    """``text`` with command-line model hints replaced by the Models window's buttons."""
    if not text or "seed-studio models" not in text:
        return text
    out = text
    for pattern, repl in _RULES:
        out = pattern.sub(repl, out)
    return out


def mentions_models(text: str) -> bool:
    """True when the (app-worded) text sends the musician to the Models window."""
    return MODELS_WINDOW in (text or "")
