"""Musical metadata and task instructions in the form ACE-Step 1.5 was trained on.

The DiT's text condition carries "- bpm: N", "- timesignature: N", "- keyscale: X major"
lines (``AceStepPipeline._build_metadata_string``, upstream ``acestep/constants.py``:
BPM 30-300, time signatures 2, 3, 4, 6 given by their numerator, keys "C major",
"F# minor", "Bb major"...). These helpers turn the project's tempo, meter and key into
those values; anything the model does not know becomes None ("N/A").
"""
from __future__ import annotations

import re

from engines.generation.acestep.manifest import TRACK_NAMES

BPM_RANGE = (30, 300)
TIME_SIGNATURES = (2, 3, 4, 6)

_TRACK_ALIASES = {
    "vocal": "vocals", "voice": "vocals", "lead vocals": "vocals", "lead_vocals": "vocals", "singing": "vocals",
    "backing vocals": "backing_vocals", "backing-vocals": "backing_vocals", "choir": "backing_vocals",
    "drum": "drums", "drum kit": "drums", "beat": "drums",
    "bass guitar": "bass", "synth bass": "bass",
    "guitars": "guitar", "electric guitar": "guitar", "acoustic guitar": "guitar",
    "keys": "keyboard", "piano": "keyboard", "organ": "keyboard", "keyboards": "keyboard",
    "perc": "percussion",
    "string": "strings", "violin": "strings", "cello": "strings", "orchestra": "strings",
    "synths": "synth", "pad": "synth", "lead": "synth",
    "effects": "fx", "sfx": "fx",
    "horns": "brass", "trumpet": "brass", "trombone": "brass",
    "winds": "woodwinds", "flute": "woodwinds", "clarinet": "woodwinds", "sax": "woodwinds", "saxophone": "woodwinds",
}


def bpm_for_model(bpm: float | None) -> int | None:
    """Tempo in BPM rounded to the model's integer BPM in 30..300; None when not given or out of range."""
    if bpm is None or not bpm > 0:
        return None
    value = int(round(float(bpm)))
    return value if BPM_RANGE[0] <= value <= BPM_RANGE[1] else None


def meter_for_model(time_signature: str | None) -> str | None:
    """``"4/4"`` -> ``"4"``, ``"3/4"`` -> ``"3"``, ``"6/8"`` -> ``"6"``; None for meters the
    model was not trained on (``5/4``, ``7/8``...) or when not given."""
    if not time_signature:
        return None
    m = re.match(r"^\s*(\d+)\s*(?:/\s*\d+)?\s*$", str(time_signature))
    if not m:
        return None
    num = int(m.group(1))
    return str(num) if num in TIME_SIGNATURES else None


def key_for_model(key: str | None) -> str | None:
    """``"c# minor"``, ``"C#m"``, ``"Bb"``, ``"F♯ min"`` -> ``"C# minor"``, ``"C# minor"``,
    ``"Bb major"``, ``"F# minor"``; None when not a key."""
    if not key:
        return None
    m = re.match(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(.*?)\s*$", str(key))
    if not m:
        return None
    note = m.group(1).upper()
    acc = {"♯": "#", "♭": "b"}.get(m.group(2), m.group(2))
    mode = m.group(3).lower()
    if mode in ("", "maj", "major", "ma", "dur"):
        mode = "major"
    elif mode in ("m", "min", "minor", "mi", "moll"):
        mode = "minor"
    else:
        return None
    return f"{note}{acc} {mode}"


def track_name(instrument: str) -> str:
    """A musician's instrument name -> ACE-Step's track name (``TRACK_NAMES``).

    Raises:
        ValueError: not an instrument ACE-Step knows (the message lists them).
    """
    name = str(instrument or "").strip().lower().replace("-", " ")
    if name.replace(" ", "_") in TRACK_NAMES:
        return name.replace(" ", "_")
    if name in _TRACK_ALIASES:
        return _TRACK_ALIASES[name]
    raise ValueError(f"ACE-Step knows no instrument {instrument!r}; choose one of {', '.join(TRACK_NAMES)}")
