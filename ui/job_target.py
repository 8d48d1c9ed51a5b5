"""What an engine job works on: a track, or a time range of a track."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobTarget:
    """A track id and an optional range ``[start, end)`` in timeline samples (None = whole track)."""

    track_id: str
    start: int | None = None
    end: int | None = None

    def span(self, project) -> tuple[int, int]:
        """``(start, end)`` samples: the range, or the extent of the track's clips.

        Raises:
            KeyError: the track no longer exists.
        """
        if self.start is not None and self.end is not None:
            return int(self.start), int(self.end)
        track = project.track(self.track_id)
        spans = [project.clip_span(c) for c in track.clips]
        if not spans:
            return 0, 0
        return min(s for s, _ in spans), max(e for _, e in spans)

    def describe(self, project) -> str:
        """``"'Drums', 0:04.000–0:12.500"`` for dialogs."""
        try:
            track = project.track(self.track_id)
        except KeyError:
            return "(deleted track)"
        s, e = self.span(project)
        sr = project.sample_rate

        def fmt(x: int) -> str:
            m, sec = divmod(x / sr, 60)
            return f"{int(m)}:{sec:06.3f}"

        what = "whole track" if self.start is None else "selection"
        return f"'{track.name}', {what} {fmt(s)}–{fmt(e)}"
