"""Files dragged in from a file manager (or a DAW's browser): which of them the arrange
canvas takes. Only local audio and MIDI files count; a drag that started inside Seed
Studio (a clip dragged out as a .mid) is not taken back in."""
from __future__ import annotations

from pathlib import Path

from studio.media.importing import AUDIO_SUFFIXES, MIDI_SUFFIXES


def importable_paths(mime) -> list[str]:
    """Local paths of the audio and MIDI files in a drag's ``QMimeData`` (``text/uri-list``),
    in the drag's order; other URLs and files are left out."""
    if mime is None or not mime.hasUrls():
        return []
    out = []
    for url in mime.urls():
        if not url.isLocalFile():
            continue
        path = url.toLocalFile()
        if Path(path).suffix.lower() in AUDIO_SUFFIXES | MIDI_SUFFIXES:
            out.append(path)
    return out


def accepts(event) -> bool:
    """True when a drag event carries files to import and did not start in this app."""
    return event.source() is None and bool(importable_paths(event.mimeData()))
