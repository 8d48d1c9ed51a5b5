"""Note previews of MIDI clips, as cached tiles.

Notes are placed through the tempo map (ticks -> timeline samples) once per clip
version, then painted into ``TILE_PX``-wide RGBA tiles with numpy. The vertical
range is the clip's own pitch range (plus a margin), as Ableton Live draws clip
contents in the arrangement.
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QPixmap

from studio.model.project import MidiClip
from studio.model.timebase import TempoMap
from ui.timeline.tiles import TILE_PX, TileCache, pixmap_from_rgba


def note_spans(clip: MidiClip, tempo_map: TempoMap, sample_rate: int) -> np.ndarray:
    """``(n, 4)`` float64 rows ``[start, end, pitch, velocity]``; start/end in samples
    relative to the clip's start sample."""
    if not clip.notes:
        return np.zeros((0, 4))
    base = tempo_map.tick_to_sample(clip.start, sample_rate)
    rows = [
        (tempo_map.tick_to_sample(clip.start + n.start, sample_rate) - base,
         tempo_map.tick_to_sample(clip.start + n.end, sample_rate) - base, n.pitch, n.velocity)
        for n in clip.notes
    ]
    return np.asarray(rows, np.float64)


class NoteTiles:
    """Cached note-preview pixmaps of MIDI clips.

    Tiles and note positions are keyed by a clip's *signature*: its id, the identity and
    length of its notes list, its start and length, and the tempo map's identity. Edits
    replace these (``SetNotes`` installs a new list, ``SetTempoMap`` a new map), so an
    edit of one clip re-renders only that clip's tiles.
    """

    def __init__(self, cache: TileCache):
        self.cache = cache
        self._spans: dict[tuple, np.ndarray] = {}
        self.version = 0

    @staticmethod
    def signature(clip: MidiClip, tempo_map: TempoMap) -> tuple:
        """What a clip's tiles depend on (see the class docstring)."""
        return (clip.id, id(clip.notes), len(clip.notes), clip.start, clip.length, id(tempo_map))

    def invalidate(self) -> None:
        """Forget every clip's tiles (e.g. a new document)."""
        self._spans.clear()
        self.version += 1
        self.cache.clear(lambda k: isinstance(k, tuple) and k[0] == "notes")

    def spans(self, clip: MidiClip, tempo_map: TempoMap, sample_rate: int) -> np.ndarray:
        """Note positions of a clip (cached by signature)."""
        sig = self.signature(clip, tempo_map)
        s = self._spans.get(sig)
        if s is None:
            if len(self._spans) > 4096:
                self._spans.clear()
            s = self._spans[sig] = note_spans(clip, tempo_map, sample_rate)
        return s

    def tile(self, clip: MidiClip, tempo_map: TempoMap, sample_rate: int, samples_per_px: float,
             index: int, width: int, height: int, note_rgba: np.ndarray) -> QPixmap | None:
        """Tile ``index`` of the clip (clip-relative samples ``[index*TILE_PX*spp, ...)``)."""
        spp = float(samples_per_px)
        key = ("notes", self.signature(clip, tempo_map), self.version, spp, index, width, height,
               note_rgba.tobytes())

        def make() -> QPixmap | None:
            spans = self.spans(clip, tempo_map, sample_rate)
            img = np.zeros((height, width, 4), np.uint8)
            if len(spans):
                lo_p, hi_p = spans[:, 2].min() - 2, spans[:, 2].max() + 2
                rng = max(12.0, hi_p - lo_p)
                row_h = max(1.0, (height - 2) / (rng + 1))
                x0 = (spans[:, 0] - index * TILE_PX * spp) / spp
                x1 = (spans[:, 1] - index * TILE_PX * spp) / spp
                vis = (x1 >= 0) & (x0 < width)
                for a, b, p, v in zip(x0[vis], x1[vis], spans[vis, 2], spans[vis, 3]):
                    xa, xb = int(max(0, a)), int(min(width, max(a + 1, b)))
                    y = int(1 + (hi_p - p) / (rng + 1) * (height - 2))
                    yb = min(height, y + max(2, int(row_h)))
                    colour = note_rgba.copy()
                    colour[3] = int(140 + 115 * min(1.0, v / 127.0))
                    img[y:yb, xa:max(xa + 1, xb)] = colour
            return pixmap_from_rgba(img)

        return self.cache.get(key, make)
