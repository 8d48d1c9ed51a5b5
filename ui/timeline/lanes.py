"""Vertical layout of the arrange view: one row per track, then its take lanes and
control lanes (Reaper-style take lanes under the track)."""
from __future__ import annotations

from dataclasses import dataclass

from studio.model.project import CONTROL_KINDS, Project, Track

TRACK_H = 60
TAKE_H = 34
CONTROL_H = 38


@dataclass
class Row:
    """One horizontal strip of the arrange view.

    Attributes:
        kind: ``"track"``, ``"take"`` (take lane ``index`` of the track's take groups)
            or ``"control"`` (control lane ``key``).
        track: the track the row belongs to.
        y, h: top and height in pixels (content coordinates).
        index: take-lane index (take ``index`` of each take group).
        key: control lane kind.
        depth: nesting level (stems under their source track).
    """

    kind: str
    track: Track
    y: int
    h: int
    index: int = 0
    key: str = ""
    depth: int = 0


def layout_rows(project: Project, track_h: int = TRACK_H, collapsed: set[str] | None = None) -> list[Row]:
    """Rows of every track in display order. Raises nothing."""
    collapsed = collapsed or set()
    ids = {t.id for t in project.tracks}
    rows: list[Row] = []
    y = 0
    for t in project.tracks:
        depth = 1 if t.parent_id in ids else 0
        rows.append(Row("track", t, y, track_h, depth=depth))
        y += track_h
        if t.id in collapsed:
            continue
        n_takes = max((len(g.takes) for g in t.take_groups), default=0)
        for i in range(n_takes):
            rows.append(Row("take", t, y, TAKE_H, index=i, depth=depth))
            y += TAKE_H
        for kind in CONTROL_KINDS:
            if kind in t.control_lanes:
                rows.append(Row("control", t, y, CONTROL_H, key=kind, depth=depth))
                y += CONTROL_H
    return rows


def total_height(rows: list[Row]) -> int:
    """Height of all rows, pixels."""
    return rows[-1].y + rows[-1].h if rows else 0


def row_at(rows: list[Row], y: float) -> Row | None:
    """The row containing content y, or None."""
    lo, hi = 0, len(rows) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        r = rows[mid]
        if y < r.y:
            hi = mid - 1
        elif y >= r.y + r.h:
            lo = mid + 1
        else:
            return r
    return None
