"""The arrange canvas: lanes, grid, clips, takes, control lanes, selection and playhead.

One custom-painted widget (no QGraphicsScene: a DAW lane view repaints often and a
flat painter loop over visible clips is cheaper). Waveforms and note previews are
blitted from the tile caches of :mod:`ui.timeline.waveform` and
:mod:`ui.timeline.midi_preview`. Mouse gestures never edit the model while they
run; on release they push one command from :mod:`studio.model.edits` on the document's
undo stack.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QLineF, QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from PyQt6.QtWidgets import QMenu, QWidget

from studio.model.project import AudioClip, ControlLane, MidiClip, Track
from ui import theme
from ui.timeline.geometry import TimelineGeometry, grid_step_ticks, snap_sample
from ui.timeline.lanes import Row, layout_rows, row_at, total_height
from ui.timeline.midi_preview import NoteTiles
from ui.timeline.tiles import TILE_PX, TileCache, rgba
from ui.timeline.waveform import WaveformTiles

log = logging.getLogger(__name__)

CLIP_TITLE_H = 14
EDGE_PX = 6


@dataclass
class TimeSelection:
    """A time range ``[start, end)`` in samples over a set of track ids (empty range = none)."""

    start: int = 0
    end: int = 0
    track_ids: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.end <= self.start


@dataclass
class _Drag:
    mode: str  # select | move | trim_l | trim_r | fade_in | fade_out | control
    x0: float
    y0: float
    sample0: int
    clip_id: str = ""
    track_id: str = ""
    row: Row | None = None
    dx_samples: int = 0
    target_track: str = ""
    points: list = field(default_factory=list)
    moved: bool = False


class ArrangeCanvas(QWidget):
    """The lanes of the arrange view.

    Signals:
        selection_changed(): time selection, selected clips or selected take changed.
        clip_activated(str): a clip was double-clicked (MIDI clips open the piano roll).
        take_selected(str): a take lane was clicked (its id).
        playhead_moved(int): the musician clicked a new playhead position (samples).
        scrolled(): the horizontal geometry changed (zoom or scroll).
        files_dropped(list, int): audio/MIDI files dragged in from outside the app
            (local paths), and the snapped timeline sample where they were dropped.
    """

    selection_changed = pyqtSignal()
    clip_activated = pyqtSignal(str)
    take_selected = pyqtSignal(str)
    playhead_moved = pyqtSignal(int)
    scrolled = pyqtSignal()
    drag_out_requested = pyqtSignal(str)
    files_dropped = pyqtSignal(list, int)

    def __init__(self, doc, geom: TimelineGeometry, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.geom = geom
        self.vscroll = 0
        self.track_h = 60
        self.rows: list[Row] = []
        self.selection = TimeSelection()
        self.selected_clips: set[str] = set()
        self.selected_take: str | None = None
        self.selected_track: str | None = None
        self.playhead = 0
        self.snap = True
        self.loop: tuple[int, int] | None = None
        self.setAcceptDrops(True)
        self._drag: _Drag | None = None
        self.cache = TileCache()
        from ui.qt_bridge import PeaksLoader

        self.peaks_loader = PeaksLoader(self)
        self.peaks_loader.loaded.connect(lambda _m: self.update())
        self.waves = WaveformTiles(self._peaks_of, self.cache, self.peaks_loader)
        self.notes = NoteTiles(self.cache)
        self.paint_count = 0
        self.tile_budget_s: float | None = 0.008  # new tiles per paint, then placeholders
        self.prefetch_enabled = True
        self._prefetch_key = None
        self._prefetch_iter = None
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setInterval(2)
        self._prefetch_timer.timeout.connect(self._prefetch_step)
        self._grid_key = None
        self._grid: tuple[list[int], list[int]] = ([], [])
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 100)
        self.relayout()

    # -- model ------------------------------------------------------------------
    def set_document(self, doc) -> None:
        """Show another document (caches dropped)."""
        self.doc = doc
        self.cache.clear()
        self.peaks_loader.reset()
        self.notes.invalidate()
        self.selection = TimeSelection()
        self.selected_clips.clear()
        self.selected_take = None
        self.relayout()

    def model_changed(self) -> None:
        """Recompute rows after an edit (note tiles follow clip signatures); drop stale selections."""
        if self.doc is None:
            self.relayout()
            return
        p = self.doc.project
        existing = set()
        for t in p.tracks:
            existing.update(c.id for c in t.all_clips())
        self.selected_clips &= existing
        self.relayout()

    def relayout(self) -> None:
        """Recompute the rows and repaint."""
        self.rows = layout_rows(self.doc.project, self.track_h) if self.doc is not None else []
        self.update()

    def content_height(self) -> int:
        """Height of all rows, pixels."""
        return total_height(self.rows)

    def _peaks_of(self, media_id: str):
        item = self.doc.project.media.get(media_id)
        if item is None or self.doc.pool is None:
            return None
        return self.doc.pool.peaks(item)

    # -- geometry helpers -----------------------------------------------------------
    def _snap(self, sample: int) -> int:
        if not self.snap:
            return sample
        p = self.doc.project
        step = grid_step_ticks(p.tempo_map, p.sample_rate, self.geom.samples_per_px)
        return snap_sample(sample, p.tempo_map, p.sample_rate, step)

    def row_at_y(self, y: float) -> Row | None:
        """The row at widget y, or None."""
        return row_at(self.rows, y + self.vscroll)

    def clip_rect(self, row: Row, span: tuple[int, int]) -> QRectF:
        """Widget rectangle of a timeline span in a row."""
        x0, x1 = self.geom.x_of(span[0]), self.geom.x_of(span[1])
        return QRectF(x0, row.y - self.vscroll + 1, max(1.0, x1 - x0), row.h - 2)

    def clips_of_row(self, row: Row):
        """``(clip, span, group_range_or_None, take)`` for what a row shows."""
        p = self.doc.project
        if row.kind == "track":
            for c in row.track.clips:
                yield c, p.clip_span(c), None, None
        elif row.kind == "take":
            for g in row.track.take_groups:
                if row.index < len(g.takes):
                    tk = g.takes[row.index]
                    for c in tk.clips:
                        yield c, p.clip_span(c), (g.start, g.end), tk

    def hit_clip(self, x: float, y: float):
        """``(row, clip, span, zone)`` under a point; zone in body/left/right/fade_in/fade_out."""
        row = self.row_at_y(y)
        if row is None or row.kind == "control":
            return row, None, None, ""
        for c, span, _, _ in reversed(list(self.clips_of_row(row))):
            r = self.clip_rect(row, span)
            if r.left() - 1 <= x <= r.right() + 1:
                zone = "body"
                if y - r.top() < CLIP_TITLE_H and isinstance(c, AudioClip):
                    if x - r.left() < 3 * EDGE_PX + self.geom.x_of(span[0] + c.fade_in) - r.left() and x < r.center().x():
                        zone = "fade_in"
                    elif r.right() - x < 3 * EDGE_PX + r.right() - self.geom.x_of(span[1] - c.fade_out):
                        zone = "fade_out"
                elif x - r.left() < EDGE_PX and r.width() > 3 * EDGE_PX:
                    zone = "left"
                elif r.right() - x < EDGE_PX and r.width() > 3 * EDGE_PX:
                    zone = "right"
                elif y - r.top() >= CLIP_TITLE_H:
                    zone = "content"  # Ableton-style: drag in the content selects time
                return row, c, span, zone
        return row, None, None, ""

    # -- painting ---------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.paint_count += 1
        painter = QPainter(self)
        cache = self.cache
        cache.deferred = 0
        cache.deadline = None if self.tile_budget_s is None else time.perf_counter() + self.tile_budget_s
        try:
            self._paint(painter)
        except Exception:  # the display path never throws
            log.exception("arrange paint failed")
        finally:
            painter.end()
            cache.deadline = None
        if cache.deferred:  # finish the missing tiles in the next event-loop turns
            QTimer.singleShot(1, self.update)
        elif self.prefetch_enabled:
            key = (self.geom.origin, self.geom.samples_per_px, self.vscroll, self.width(), self.height())
            if key != self._prefetch_key:
                self._prefetch_key = key
                self._prefetch_iter = self._prefetch_jobs()
                if not self._prefetch_timer.isActive():
                    self._prefetch_timer.start()

    # -- prefetch: render the tiles a page to the left and right while the loop is idle ----------
    def _prefetch_jobs(self):
        """Yield once per tile made for the pages left and right of the view (track rows)."""
        if self.doc is None:
            return
        spp = self.geom.samples_per_px
        w, h = self.width(), self.height()
        media = self.doc.project.media
        fg = QColor(20, 20, 22)
        peak, rmsc = rgba(fg, 150), rgba(fg, 235)
        span = TILE_PX * spp
        ranges = [(self.geom.sample_at(w), self.geom.sample_at(2 * w)),
                  (self.geom.sample_at(-w) if self.geom.origin > 0 else 0, self.geom.sample_at(0))]
        rows = [r for r in self.rows if r.kind == "track" and r.y + r.h > self.vscroll and r.y < self.vscroll + h
                and not r.track.mute]
        for a, b in ranges:
            if b <= a:
                continue
            for row in rows:
                ch = int(row.h - 2 - CLIP_TITLE_H)
                for clip in row.track.clips:
                    if not isinstance(clip, AudioClip) or clip.end <= a or clip.start >= b:
                        continue
                    item = media.get(clip.media_id)
                    if item is None:
                        continue
                    gain = 10 ** (clip.gain_db / 20.0)
                    mf0 = clip.offset + max(a, clip.start) - clip.start
                    mf1 = clip.offset + min(b, clip.end) - clip.start
                    for ti in range(max(0, int(mf0 // span)), int(mf1 // span) + 1):
                        self.waves.tile(item.id, item.frames, spp, ti, ch, peak, rmsc, gain)
                        yield

    def _prefetch_step(self) -> None:
        it = self._prefetch_iter
        if it is None:
            self._prefetch_timer.stop()
            return
        end = time.perf_counter() + 0.004
        try:
            while time.perf_counter() < end:
                next(it)
        except StopIteration:
            self._prefetch_iter = None
            self._prefetch_timer.stop()
        except Exception:  # the display path never throws
            self._prefetch_iter = None
            self._prefetch_timer.stop()

    def _paint(self, p: QPainter) -> None:
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, theme.BG)
        if self.doc is None:
            return
        vis_rows = [r for r in self.rows if r.y + r.h > self.vscroll and r.y < self.vscroll + h]
        for row in vis_rows:
            y = row.y - self.vscroll
            if row.kind == "track":
                bg = theme.LANE_A if (row.y // max(1, self.track_h)) % 2 == 0 else theme.LANE_B
                if row.track.id == self.selected_track:
                    bg = bg.lighter(112)
            elif row.kind == "take":
                bg = theme.TAKE_BG
            else:
                bg = theme.CONTROL_BG
            p.fillRect(0, y, w, row.h, bg)
            p.fillRect(0, y + row.h - 1, w, 1, QColor("#17181a"))
        self._paint_grid(p, w, h)
        if self.loop:
            x0, x1 = self.geom.x_of(self.loop[0]), self.geom.x_of(self.loop[1])
            p.fillRect(QRectF(x0, 0, x1 - x0, h), QColor(255, 200, 60, 18))
        for row in vis_rows:
            if row.kind == "control":
                self._paint_control(p, row, w)
            else:
                self._paint_clips(p, row, w)
        self._paint_drag_ghost(p)
        self._paint_selection(p, h)
        x = self.geom.x_of(self.playhead)
        if -2 <= x <= w + 2:
            p.fillRect(QRectF(x, 0, 1.5, h), theme.PLAYHEAD)

    def _paint_grid(self, p: QPainter, w: int, h: int) -> None:
        proj = self.doc.project
        tm, sr = proj.tempo_map, proj.sample_rate
        key = (self.geom.origin, self.geom.samples_per_px, w, id(tm), len(tm.tempos), len(tm.signatures))
        if self._grid_key != key:
            step = grid_step_ticks(tm, sr, self.geom.samples_per_px, 14.0)
            t0 = tm.sample_to_tick(self.geom.sample_at(0), sr)
            t1 = tm.sample_to_tick(self.geom.sample_at(w), sr) + step
            bar_ticks = tm.signatures[0].ticks_per_bar
            bars, beats = [], []
            simple = len(tm.signatures) == 1
            for tick in tm.grid_ticks(max(0, t0 - step), t1, step):
                x = int(self.geom.x_of(tm.tick_to_sample(tick, sr)))
                if simple:
                    is_bar = tick % bar_ticks == 0
                else:
                    _, beat, in_beat = tm.bar_beat_at(tick)
                    is_bar = beat == 0 and in_beat == 0
                (bars if is_bar or step >= bar_ticks else beats).append(x)
            self._grid_key, self._grid = key, (bars, beats)
        bars, beats = self._grid
        for xs, colour in ((beats, theme.GRID_BEAT), (bars, theme.GRID_BAR)):
            if xs:
                p.setPen(QPen(colour, 1))
                p.drawLines([QLineF(x + 0.5, 0, x + 0.5, h) for x in xs])

    def _paint_clips(self, p: QPainter, row: Row, w: int) -> None:
        proj = self.doc.project
        track = row.track
        colour = QColor(track.colour)
        muted = track.mute
        y = row.y - self.vscroll
        if row.kind == "take":
            for g in track.take_groups:
                if row.index >= len(g.takes):
                    continue
                tk = g.takes[row.index]
                gx0, gx1 = self.geom.x_of(g.start), self.geom.x_of(g.end)
                active = g.active_take_id == tk.id
                p.fillRect(QRectF(gx0, y + 1, gx1 - gx0, row.h - 2),
                           QColor(colour.red(), colour.green(), colour.blue(), 34 if active else 14))
                if tk.id == self.selected_take:
                    p.setPen(QPen(theme.ACCENT, 1.5))
                    p.drawRect(QRectF(gx0 + 0.5, y + 1.5, gx1 - gx0 - 1, row.h - 3))
        for clip, span, grange, take in self.clips_of_row(row):
            r = self.clip_rect(row, span)
            if r.right() < 0 or r.left() > w:
                continue
            p.save()
            if grange is not None:
                gx0, gx1 = self.geom.x_of(grange[0]), self.geom.x_of(grange[1])
                p.setClipRect(QRectF(gx0, r.top(), gx1 - gx0, r.height()))
            dim = muted
            if row.kind == "take":
                g = next(gg for gg in track.take_groups if any(t is take for t in gg.takes))
                dim = dim or g.active_take_id != take.id
            self._paint_clip(p, clip, span, r, colour, dim, w)
            p.restore()
        if row.kind == "take":
            p.setFont(_small_font())
            for g in track.take_groups:
                if row.index < len(g.takes):
                    tk = g.takes[row.index]
                    gx0 = max(2.0, self.geom.x_of(g.start) + 3)
                    label = ("▶ " if g.active_take_id == tk.id else "") + (tk.name or f"Take {row.index + 1}")
                    p.setPen(theme.ACCENT if g.active_take_id == tk.id else theme.TEXT_DIM)
                    p.drawText(QPointF(gx0, y + row.h - 5), label)
        else:
            # dim the track's own clips where an active take plays instead
            for g in track.take_groups:
                gx0, gx1 = self.geom.x_of(g.start), self.geom.x_of(g.end)
                if g.active_take() is not None:
                    p.fillRect(QRectF(gx0, y + 1, gx1 - gx0, row.h - 2), QColor(20, 21, 24, 150))
                    p.save()
                    p.setClipRect(QRectF(gx0, y, gx1 - gx0, row.h))
                    for c in g.active_take().clips:
                        self._paint_clip(p, c, proj.clip_span(c), self.clip_rect(row, proj.clip_span(c)),
                                         colour, muted, w)
                    p.restore()
                p.fillRect(QRectF(gx0, y + row.h - 4, gx1 - gx0, 3), theme.ACCENT)

    def _paint_clip(self, p: QPainter, clip, span, r: QRectF, colour: QColor, dim: bool, w: int) -> None:
        selected = clip.id in self.selected_clips
        vis = r.intersected(QRectF(-4, r.top(), w + 8, r.height()))
        p.fillRect(vis, _blend(colour, 0.27 if dim else 0.47))
        title = QColor(colour).darker(115) if not dim else QColor(colour).darker(260)
        p.fillRect(QRectF(vis.left(), r.top(), vis.width(), CLIP_TITLE_H), title)
        content = QRectF(r.left(), r.top() + CLIP_TITLE_H, r.width(), r.height() - CLIP_TITLE_H)
        fg = QColor(20, 20, 22) if not dim else QColor(60, 62, 66)
        if isinstance(clip, AudioClip):
            self._paint_wave(p, clip, content, fg, w)
            self._paint_fades(p, clip, r, selected)
        elif isinstance(clip, MidiClip):
            self._paint_notes(p, clip, content, fg, w)
        if r.width() > 24:
            p.setFont(_small_font())
            p.setPen(QColor(15, 15, 16) if not dim else theme.TEXT_DIM)
            name = clip.name or ("MIDI" if isinstance(clip, MidiClip) else "Audio")
            p.drawText(QRectF(max(r.left(), 0) + 4, r.top(), min(r.width(), w) - 6, CLIP_TITLE_H),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
        # outline from fills of the visible part only (a stroked rect of a clip that runs far
        # off-screen is slow to rasterise)
        edge = QColor("#ffffff") if selected else QColor(0, 0, 0, 120)
        t = 2.0 if selected else 1.0
        p.fillRect(QRectF(vis.left(), r.top(), vis.width(), t), edge)
        p.fillRect(QRectF(vis.left(), r.bottom() - t, vis.width(), t), edge)
        if r.left() >= vis.left():
            p.fillRect(QRectF(r.left(), r.top(), t, r.height()), edge)
        if r.right() <= vis.right():
            p.fillRect(QRectF(r.right() - t, r.top(), t, r.height()), edge)

    def _paint_wave(self, p: QPainter, clip: AudioClip, content: QRectF, fg: QColor, w: int) -> None:
        item = self.doc.project.media.get(clip.media_id)
        if item is None or content.height() < 4:
            return
        spp = self.geom.samples_per_px
        h = int(content.height())
        peak = rgba(fg, 150)
        rmsc = rgba(fg, 235)
        gain = 10 ** (clip.gain_db / 20.0)
        vis_x0 = max(content.left(), 0.0)
        vis_x1 = min(content.right(), float(w))
        if vis_x1 <= vis_x0:
            return
        media_origin = clip.start - clip.offset  # timeline sample of media frame 0
        mf0 = clip.offset + (self.geom.sample_at(vis_x0) - clip.start)
        mf1 = clip.offset + (self.geom.sample_at(vis_x1) - clip.start)
        span = TILE_PX * spp
        p.save()
        p.setClipRect(QRectF(vis_x0, content.top(), vis_x1 - vis_x0, content.height()), Qt.ClipOperation.IntersectClip)
        for ti in range(max(0, int(mf0 // span)), int(mf1 // span) + 1):
            pm = self.waves.tile(item.id, item.frames, spp, ti, h, peak, rmsc, gain)
            x = self.geom.x_of(media_origin + ti * span)
            if pm is None:
                p.fillRect(QRectF(x, content.top() + h / 2, span / spp, 1), fg)
                continue
            p.drawPixmap(QPointF(round(x), content.top()), pm)
        p.restore()

    def _paint_fades(self, p: QPainter, clip: AudioClip, r: QRectF, selected: bool = False) -> None:
        p.setPen(QPen(QColor(255, 255, 255, 150), 1))
        if clip.fade_in > 0:
            x = self.geom.x_of(clip.start + clip.fade_in)
            p.drawLine(QPointF(r.left(), r.bottom()), QPointF(x, r.top() + CLIP_TITLE_H))
            if selected:
                p.fillRect(QRectF(x - 3, r.top() + 1, 6, 6), QColor(255, 255, 255, 170))
        if clip.fade_out > 0:
            x = self.geom.x_of(clip.end - clip.fade_out)
            p.drawLine(QPointF(x, r.top() + CLIP_TITLE_H), QPointF(r.right(), r.bottom()))
            if selected:
                p.fillRect(QRectF(x - 3, r.top() + 1, 6, 6), QColor(255, 255, 255, 170))

    def _paint_notes(self, p: QPainter, clip: MidiClip, content: QRectF, fg: QColor, w: int) -> None:
        proj = self.doc.project
        spp = self.geom.samples_per_px
        h = int(content.height())
        if h < 4:
            return
        x0c = content.left()
        vis_x0, vis_x1 = max(x0c, 0.0), min(content.right(), float(w))
        if vis_x1 <= vis_x0:
            return
        colour = rgba(fg, 230)
        p.save()
        p.setClipRect(QRectF(vis_x0, content.top(), vis_x1 - vis_x0, content.height()), Qt.ClipOperation.IntersectClip)
        t0 = int((vis_x0 - x0c) // TILE_PX)
        t1 = int((vis_x1 - x0c) // TILE_PX)
        for ti in range(max(0, t0), t1 + 1):
            pm = self.notes.tile(clip, proj.tempo_map, proj.sample_rate, spp, ti, TILE_PX, h, colour)
            if pm is not None:
                p.drawPixmap(QPointF(round(x0c + ti * TILE_PX), content.top()), pm)
        p.restore()

    def _paint_control(self, p: QPainter, row: Row, w: int) -> None:
        lane = row.track.control_lanes.get(row.key)
        y = row.y - self.vscroll
        colour = QColor(row.track.colour).lighter(130)
        if lane is None:
            return
        pts = lane.points
        if self._drag and self._drag.mode == "control" and self._drag.row is not None \
                and self._drag.row.track.id == row.track.id and self._drag.row.key == row.key:
            pts = _merge_points(pts, self._drag.points)
        if not pts:
            p.setPen(theme.TEXT_DIM)
            p.setFont(_small_font())
            p.drawText(QPointF(8, y + row.h / 2 + 4), "draw with the mouse, or fill from a track")
            return
        arr = np.asarray(pts, dtype=np.float64)
        xs = (arr[:, 0] - self.geom.origin) / self.geom.samples_per_px
        lo = max(0, int(np.searchsorted(xs, -10.0)) - 1)
        hi = min(len(xs), int(np.searchsorted(xs, w + 10.0)) + 1)
        xs, vals = xs[lo:hi], arr[lo:hi, 1]
        top, height = y + 4, row.h - 8
        if row.key == "rhythm":
            p.setPen(QPen(colour, 1.5))
            for x, v in zip(xs, vals):
                hh = height * min(1.0, max(0.0, v / 2.0))
                p.drawLine(QPointF(x, top + height), QPointF(x, top + height - hh))
            return
        if row.key == "melody":
            ys = np.where(vals < 0, np.nan, top + height - (vals / 11.0) * height)
        else:  # dynamics, dB from -60 to 0
            ys = top + height - (np.clip(vals, -60.0, 0.0) + 60.0) / 60.0 * height
        p.setPen(QPen(colour, 1.5))
        if row.key == "melody":
            for i in range(len(xs)):
                if math.isnan(ys[i]):
                    continue
                x_next = xs[i + 1] if i + 1 < len(xs) else xs[i] + 4
                p.drawLine(QPointF(xs[i], ys[i]), QPointF(x_next, ys[i]))
        else:
            poly = QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys)])
            p.drawPolyline(poly)

    def _paint_drag_ghost(self, p: QPainter) -> None:
        d = self._drag
        if d is None or d.mode not in ("move", "trim_l", "trim_r") or not d.moved:
            return
        try:
            track, clip, _ = self.doc.project.find_clip(d.clip_id)
        except KeyError:
            return
        s, e = self.doc.project.clip_span(clip)
        if d.mode == "move":
            s, e = s + d.dx_samples, e + d.dx_samples
        elif d.mode == "trim_l":
            s = min(e - 1, s + d.dx_samples)
        else:
            e = max(s + 1, e + d.dx_samples)
        target = d.target_track or track.id
        row = next((r for r in self.rows if r.kind == "track" and r.track.id == target), None)
        if row is None:
            return
        r = self.clip_rect(row, (s, e))
        p.setPen(QPen(QColor(255, 255, 255, 220), 1, Qt.PenStyle.DashLine))
        p.setBrush(QColor(255, 255, 255, 30))
        p.drawRect(r)

    def _paint_selection(self, p: QPainter, h: int) -> None:
        sel = self.selection
        if sel.empty:
            return
        x0, x1 = self.geom.x_of(sel.start), self.geom.x_of(sel.end)
        ids = set(sel.track_ids)
        for row in self.rows:
            if row.track.id in ids:
                p.fillRect(QRectF(x0, row.y - self.vscroll, x1 - x0, row.h), theme.SELECTION)
        p.fillRect(QRectF(x0, 0, 1, h), theme.SELECTION_EDGE)
        p.fillRect(QRectF(x1, 0, 1, h), theme.SELECTION_EDGE)

    # -- files dragged in --------------------------------------------------------------------

    def dragEnterEvent(self, e) -> None:  # noqa: N802
        from ui.timeline.file_drop import accepts

        if accepts(e):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        self.dragEnterEvent(e)

    def dropEvent(self, e) -> None:  # noqa: N802
        from ui.timeline.file_drop import accepts, importable_paths

        if not accepts(e):
            e.ignore()
            return
        e.acceptProposedAction()
        sample = self._snap(max(0, self.geom.sample_at(e.position().x())))
        self.files_dropped.emit(importable_paths(e.mimeData()), int(sample))

    # -- mouse ----------------------------------------------------------------------------
    def mousePressEvent(self, e) -> None:  # noqa: N802
        pos = e.position()
        x, y = pos.x(), pos.y()
        sample = self.geom.sample_at(x)
        if e.button() == Qt.MouseButton.RightButton:
            return
        row, clip, span, zone = self.hit_clip(x, y)
        if row is not None:
            self.selected_track = row.track.id
        if row is not None and row.kind == "control":
            self._drag = _Drag("control", x, y, sample, track_id=row.track.id, row=row)
            self._add_control_point(x, y)
            return
        if row is not None and row.kind == "take":
            tk = self._take_at(row, sample)
            if tk is not None:
                self.selected_take = tk.id
                self.take_selected.emit(tk.id)
        if clip is not None and zone == "content" and not (e.modifiers() & Qt.KeyboardModifier.AltModifier):
            self.selected_clips = {clip.id}
            start = self._snap(sample)
            self.selection = TimeSelection(start, start, [row.track.id])
            self._drag = _Drag("select", x, y, start, track_id=row.track.id, row=row)
            self.playhead = start
            self.playhead_moved.emit(start)
        elif clip is not None:
            if not (e.modifiers() & Qt.KeyboardModifier.ShiftModifier):
                self.selected_clips = {clip.id}
            else:
                self.selected_clips ^= {clip.id}
            if e.modifiers() & Qt.KeyboardModifier.AltModifier:
                self.drag_out_requested.emit(clip.id)
                return
            mode = {"body": "move", "content": "move", "left": "trim_l", "right": "trim_r",
                    "fade_in": "fade_in", "fade_out": "fade_out"}[zone]
            if row.kind == "take" and mode == "move":
                mode = "none"
            self._drag = _Drag(mode, x, y, sample, clip_id=clip.id, track_id=row.track.id, row=row)
        else:
            self.selected_clips.clear()
            start = self._snap(sample)
            tid = row.track.id if row is not None else ""
            self.selection = TimeSelection(start, start, [tid] if tid else [])
            self._drag = _Drag("select", x, y, start, track_id=tid, row=row)
            self.playhead = start
            self.playhead_moved.emit(start)
        self.selection_changed.emit()
        self.update()

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        d = self._drag
        pos = e.position()
        if d is None:
            _, clip, _, zone = self.hit_clip(pos.x(), pos.y())
            cursors = {"left": Qt.CursorShape.SizeHorCursor, "right": Qt.CursorShape.SizeHorCursor,
                       "fade_in": Qt.CursorShape.PointingHandCursor, "fade_out": Qt.CursorShape.PointingHandCursor}
            self.setCursor(cursors.get(zone, Qt.CursorShape.ArrowCursor))
            return
        sample = self.geom.sample_at(pos.x())
        d.moved = d.moved or abs(pos.x() - d.x0) > 2 or abs(pos.y() - d.y0) > 2
        if d.mode == "select":
            s = self._snap(sample)
            self.selection.start, self.selection.end = min(d.sample0, s), max(d.sample0, s)
            r0 = d.row
            r1 = self.row_at_y(pos.y())
            if r0 is not None and r1 is not None:
                i0 = next(i for i, r in enumerate(self.doc.project.tracks) if r.id == r0.track.id)
                i1 = next(i for i, r in enumerate(self.doc.project.tracks) if r.id == r1.track.id)
                lo, hi = min(i0, i1), max(i0, i1)
                self.selection.track_ids = [t.id for t in self.doc.project.tracks[lo:hi + 1]]
            self.selection_changed.emit()
        elif d.mode in ("move", "trim_l", "trim_r"):
            try:
                _, clip, _ = self.doc.project.find_clip(d.clip_id)
            except KeyError:
                self._drag = None
                return
            s0 = self.doc.project.clip_span(clip)[0 if d.mode != "trim_r" else 1]
            d.dx_samples = self._snap(s0 + sample - d.sample0) - s0
            if d.mode == "move":
                r1 = self.row_at_y(pos.y())
                if r1 is not None and r1.kind == "track" and r1.track.kind == d.row.track.kind:
                    d.target_track = r1.track.id
        elif d.mode in ("fade_in", "fade_out"):
            d.dx_samples = sample - d.sample0
        elif d.mode == "control":
            self._add_control_point(pos.x(), pos.y())
        self.update()

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        d, self._drag = self._drag, None
        if d is None:
            return
        try:
            self._finish_drag(d)
        except Exception as exc:
            from studio.errors import StudioError

            if not isinstance(exc, (StudioError, KeyError, ValueError)):
                raise
            self.window().statusBar().showMessage(f"Can't do that: {exc}", 5000) if hasattr(
                self.window(), "statusBar") else None
        self.update()

    def _finish_drag(self, d: _Drag) -> None:
        from studio.model import edits

        if d.mode == "select":
            if self.selection.end - self.selection.start <= 0:
                self.selection = TimeSelection(track_ids=self.selection.track_ids)
            self.selection_changed.emit()
            return
        if d.mode == "control":
            lane = d.row.track.control_lanes.get(d.row.key)
            if lane is None or not d.points:
                return
            new = ControlLane(lane.kind, _merge_points(lane.points, d.points), "drawn")
            self.doc.push(edits.SetControlLane(d.row.track.id, lane.kind, new))
            return
        if not d.moved:
            return
        proj = self.doc.project
        track, clip, _ = proj.find_clip(d.clip_id)
        if d.mode == "move":
            s, _ = proj.clip_span(clip)
            new_start = max(0, s + d.dx_samples)
            if isinstance(clip, MidiClip):
                new_start = proj.tempo_map.sample_to_tick(new_start, proj.sample_rate)
            target = d.target_track if d.target_track and d.target_track != track.id else None
            if new_start != clip.start or target:
                self.doc.push(edits.MoveClip(clip.id, new_start, target))
        elif d.mode in ("trim_l", "trim_r") and isinstance(clip, AudioClip):
            if d.mode == "trim_r":
                item = proj.media.get(clip.media_id)
                max_len = (item.frames - clip.offset) if item else clip.length
                length = int(min(max_len, max(1, clip.length + d.dx_samples)))
                self.doc.push(edits.SetClipProperty(clip.id, "length", length))
            else:
                dx = int(max(-clip.offset, min(clip.length - 1, d.dx_samples)))
                self.doc.push(edits.SetClipFields(
                    clip.id, {"start": clip.start + dx, "offset": clip.offset + dx,
                              "length": clip.length - dx, "fade_in": min(clip.fade_in, clip.length - dx)},
                    label="Trim clip start"))
        elif d.mode in ("trim_l", "trim_r") and isinstance(clip, MidiClip):
            tm, sr = proj.tempo_map, proj.sample_rate
            s, e = proj.clip_span(clip)
            if d.mode == "trim_r":
                end_tick = tm.sample_to_tick(max(s + 1, e + d.dx_samples), sr)
                self.doc.push(edits.SetClipProperty(clip.id, "length", max(1, end_tick - clip.start)))
        elif d.mode == "fade_in" and isinstance(clip, AudioClip):
            v = int(min(clip.length, max(0, clip.fade_in + d.dx_samples)))
            self.doc.push(edits.SetClipProperty(clip.id, "fade_in", v))
        elif d.mode == "fade_out" and isinstance(clip, AudioClip):
            v = int(min(clip.length, max(0, clip.fade_out - d.dx_samples)))
            self.doc.push(edits.SetClipProperty(clip.id, "fade_out", v))

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        pos = e.position()
        row, clip, _, _ = self.hit_clip(pos.x(), pos.y())
        if row is not None and row.kind == "take":
            tk = self._take_at(row, self.geom.sample_at(pos.x()))
            if tk is not None:
                from studio.model import edits

                _, g, _ = self.doc.project.find_take(tk.id)
                self.doc.push(edits.SetActiveTake(g.id, None if g.active_take_id == tk.id else tk.id))
                return
        if clip is not None:
            self.clip_activated.emit(clip.id)

    def contextMenuEvent(self, e) -> None:  # noqa: N802
        win = self.window()
        menu = QMenu(self)
        for name in ("split", "delete", "copy", "cut", "paste", "open_piano_roll", None,
                     "take_activate", "take_delete", "take_comp", None,
                     "generate", "extend", "inpaint", "add_stem", "restyle", "convert_voice", "separate",
                     "transcribe", "analyze"):
            if name is None:
                menu.addSeparator()
                continue
            act = getattr(win, "actions_by_name", {}).get(name)
            if act is not None:
                menu.addAction(act)
        menu.exec(e.globalPos())

    def wheelEvent(self, e) -> None:  # noqa: N802
        dy = e.angleDelta().y()
        dx = e.angleDelta().x()
        mods = e.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.geom.zoom(0.8 if dy > 0 else 1.25, e.position().x())
            self.scrolled.emit()
        elif mods & Qt.KeyboardModifier.ShiftModifier or dx:
            delta = dx or dy
            self.geom.set_origin(self.geom.origin - delta / 120 * 60 * self.geom.samples_per_px)
            self.scrolled.emit()
        else:
            self.parent_scroll(-dy / 120 * 40)
        self.update()

    def parent_scroll(self, dy: float) -> None:
        """Scroll vertically (the panel keeps its scroll bar in sync)."""
        maxv = max(0, self.content_height() - self.height())
        self.vscroll = int(min(maxv, max(0, self.vscroll + dy)))
        self.scrolled.emit()
        self.update()

    # -- helpers ------------------------------------------------------------------
    def _take_at(self, row: Row, sample: int):
        for g in row.track.take_groups:
            if g.start <= sample < g.end and row.index < len(g.takes):
                return g.takes[row.index]
        return None

    def _add_control_point(self, x: float, y: float) -> None:
        d = self._drag
        row = d.row
        top, height = row.y - self.vscroll + 4, row.h - 8
        frac = min(1.0, max(0.0, (top + height - y) / height))
        sample = self.geom.sample_at(x)
        if row.key == "melody":
            value = float(round(frac * 11))
        elif row.key == "dynamics":
            value = round(frac * 60.0 - 60.0, 2)
        else:
            sample = self._snap(sample)
            value = 2.0 if frac > 0.75 else 1.0
            if any(abs(pt[0] - sample) < 1 for pt in d.points):
                return
        d.points.append([int(sample), value])
        self.update()

    def selected_clip_objects(self) -> list[tuple[Track, object]]:
        """``(track, clip)`` of the selected clips."""
        out = []
        for cid in self.selected_clips:
            try:
                t, c, _ = self.doc.project.find_clip(cid)
                out.append((t, c))
            except KeyError:
                pass
        return out


def _merge_points(old: list, new: list) -> list:
    """Old points outside the span of ``new``, plus ``new``; sorted by sample."""
    if not new:
        return list(old)
    s0 = min(p[0] for p in new)
    s1 = max(p[0] for p in new)
    kept = [list(p) for p in old if p[0] < s0 or p[0] > s1]
    merged = {int(p[0]): float(p[1]) for p in kept}
    for p in new:
        merged[int(p[0])] = float(p[1])
    return [[s, v] for s, v in sorted(merged.items())]


_BLEND: dict[tuple[int, float], QColor] = {}


def _blend(colour: QColor, alpha: float) -> QColor:
    """``colour`` at ``alpha`` over the clip backdrop, as one opaque colour (one fill, not two)."""
    key = (colour.rgb(), alpha)
    c = _BLEND.get(key)
    if c is None:
        base = (28, 29, 32)
        c = _BLEND[key] = QColor(*(int(b + (v - b) * alpha) for b, v in zip(base, (colour.red(), colour.green(), colour.blue()))))
    return c


_FONT: QFont | None = None


def _small_font() -> QFont:
    global _FONT
    if _FONT is None:
        _FONT = QFont()
        _FONT.setPointSizeF(7.5)
    return _FONT
