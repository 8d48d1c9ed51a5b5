"""The inspector: the selected clip, time range or track, editable; and the provenance of the
selected take (engine, model, licence, seed and parameters), as recorded in ``Take.provenance``.

Positions show as bars|beats (``bar.beat.sixteenth``, counted from 1 as in the transport;
a fourth field gives the ticks past the sixteenth when there are any, so the text is
exact) next to minutes:seconds. Lengths show as ``bars.beats.sixteenths`` counted from 0.
Every edit is one undoable command: a clip's start (:class:`~studio.model.edits.MoveClip`),
length, gain, fades and name (:class:`~studio.model.edits.SetClipFields`), a track's name,
gain, pan, and a MIDI track's General MIDI program and drum flag
(:class:`~studio.model.edits.SetTrackProperty`).
"""
from __future__ import annotations

import json

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit,
                             QVBoxLayout, QWidget)

from studio.audio.gm import GM_DRUM_KITS, GM_PROGRAMS
from studio.model.project import AudioClip, MidiClip
from studio.model.timebase import SIXTEENTH, TempoMap, format_position

"""Ticks per sixteenth note at PPQ 960."""


ADHERENCE_LABELS = {"melody": "Melody accuracy", "dynamics": "Dynamics r", "rhythm": "Rhythm F1"}


def adherence_lines(prov: dict) -> list[tuple[str, str]]:
    """``(label, text)`` per control of a take: how closely it follows the control over the
    control's own range (melody accuracy, dynamics Pearson r, rhythm beat F1), this take's
    own figure (``provenance["output"]``) where there is one, and the unguided result's
    for comparison when the job measured it."""
    extra = prov.get("extra") or {}
    guided, unguided = extra.get("adherence") or {}, extra.get("adherence_unguided") or {}
    out = []
    for kind, a in guided.items():
        if not isinstance(a, dict):
            continue
        mine = (a.get("takes") or {}).get(prov.get("output"), a.get("value"))
        if mine is None:
            continue
        text = f"{float(mine):.2f}"
        u = unguided.get(kind) if isinstance(unguided.get(kind), dict) else None
        if u is not None:
            theirs = (u.get("takes") or {}).get(prov.get("output"), u.get("value"))
            if theirs is not None:
                text += f" (without the control: {float(theirs):.2f})"
        out.append((ADHERENCE_LABELS.get(kind, kind.capitalize()), text))
    return out


def _fmt_time(samples: int, sr: int) -> str:
    m, s = divmod(samples / sr, 60)
    return f"{int(m)}:{s:06.3f}"


def parse_position(tm: TempoMap, text: str) -> int:
    """Tick of a ``bar[.beat[.sixteenth[.ticks]]]`` position (from 1; ticks from 0).

    Raises:
        ValueError: not that form, or a field out of range (message in plain words).
    """
    parts = [p for p in text.replace(":", ".").replace("|", ".").strip().split(".") if p != ""]
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"'{text}' is not a position; write bar.beat.sixteenth, e.g. 5.1.1")
    vals = [int(p) for p in parts]
    bar, beat, six, ticks = vals[0], *(vals[1:] + [1, 1, 0][len(vals) - 1:])
    if bar < 1 or beat < 1 or six < 1:
        raise ValueError(f"'{text}': bars, beats and sixteenths count from 1")
    start = tm.bar_to_tick(bar - 1)
    sig = tm.signature_at(start)
    if beat > sig.numerator:
        raise ValueError(f"'{text}': bar {bar} has {sig.numerator} beats")
    if (six - 1) * SIXTEENTH + ticks >= sig.ticks_per_beat:
        raise ValueError(f"'{text}': a beat of {sig.numerator}/{sig.denominator} has "
                         f"{sig.ticks_per_beat // SIXTEENTH} sixteenths")
    return start + (beat - 1) * sig.ticks_per_beat + (six - 1) * SIXTEENTH + ticks


def format_length(tm: TempoMap, start_tick: int, ticks: int) -> str:
    """A duration as ``bars.beats.sixteenths`` (from 0) in the meter at ``start_tick``;
    a fourth field holds leftover ticks."""
    sig = tm.signature_at(int(start_tick))
    bars, rest = divmod(int(ticks), sig.ticks_per_bar)
    beats, rest = divmod(rest, sig.ticks_per_beat)
    six, rest = divmod(rest, SIXTEENTH)
    text = f"{bars}.{beats}.{six}"
    return f"{text}.{rest}" if rest else text


def parse_length(tm: TempoMap, start_tick: int, text: str) -> int:
    """Ticks of a ``bars[.beats[.sixteenths[.ticks]]]`` duration (from 0).

    Raises:
        ValueError: not that form, or zero.
    """
    parts = [p for p in text.replace(":", ".").strip().split(".") if p != ""]
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"'{text}' is not a length; write bars.beats.sixteenths, e.g. 2.0.0")
    vals = [int(p) for p in parts] + [0] * (4 - len(parts))
    sig = tm.signature_at(int(start_tick))
    ticks = vals[0] * sig.ticks_per_bar + vals[1] * sig.ticks_per_beat + vals[2] * SIXTEENTH + vals[3]
    if ticks <= 0:
        raise ValueError(f"'{text}': a length must be more than zero")
    return ticks


class Inspector(QWidget):
    """Facts about the selection, editable. ``fields`` maps label -> shown text (for tests);
    ``editors`` maps label -> its editing widget.

    Signals:
        error(str): an edit was refused (plain words; the window shows it).
    """

    error = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        self.title = QLabel("Nothing selected", self)
        self.title.setObjectName("InspectorTitle")
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.form_host = QWidget(self)
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 4, 0, 4)
        lay.addWidget(self.form_host)
        self.params = QPlainTextEdit(self)
        self.params.setReadOnly(True)
        self.params.setMaximumHeight(180)
        self.params.hide()
        lay.addWidget(self.params)
        lay.addStretch(1)
        self.fields: dict[str, str] = {}
        self.editors: dict[str, QWidget] = {}
        self.doc = None
        self._editing = False
        self._pending = None
        self._last = None
        self.setMinimumWidth(240)

    def clear(self) -> None:
        """Show nothing."""
        for w in self.editors.values():
            w.blockSignals(True)  # a field that loses focus while going away commits nothing
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        self.editors = {}
        self.params.hide()
        self.title.setText("Nothing selected")

    def _label(self, label: str) -> QLabel:
        lab = QLabel(label, self)
        lab.setObjectName("InspectorKey")
        return lab

    def _add(self, label: str, value) -> None:
        text = "—" if value in (None, "", {}) else str(value)
        self.fields[label] = text
        v = QLabel(text, self)
        v.setWordWrap(True)
        v.setObjectName("InspectorValue")
        self.form.addRow(self._label(label), v)

    def _edit(self, label: str, text: str, apply, tip: str = "") -> QLineEdit:
        """A text field; Enter (or leaving it) calls ``apply(text)``, which pushes a command."""
        self.fields[label] = text
        w = QLineEdit(text, self)
        w.setObjectName("InspectorEdit")
        if tip:
            w.setToolTip(tip)

        def done() -> None:
            if w.text() == self.fields.get(label):
                return
            self._try(apply, w.text())

        w.editingFinished.connect(done)
        self.editors[label] = w
        self.form.addRow(self._label(label), w)
        return w

    def _spin(self, label: str, value: float, lo: float, hi: float, suffix: str, apply, decimals: int = 1,
              step: float = 0.5) -> QDoubleSpinBox:
        w = QDoubleSpinBox(self)
        w.setRange(lo, hi)
        w.setDecimals(decimals)
        w.setSingleStep(step)
        w.setSuffix(suffix)
        w.setKeyboardTracking(False)
        w.setValue(value)
        self.fields[label] = f"{value:+.{decimals}f}{suffix}" if lo < 0 else f"{value:.{decimals}f}{suffix}"
        w.valueChanged.connect(lambda v: self._try(apply, float(v)))
        self.editors[label] = w
        self.form.addRow(self._label(label), w)
        return w

    def _try(self, apply, value) -> None:
        """Run an edit; the form is rebuilt only after the editing widget's signal returns."""
        from engines.base import UserError

        self._editing = True
        try:
            apply(value)
        except (UserError, ValueError) as exc:
            self.error.emit(str(exc))
            self._pending = self._pending or self._last
        finally:
            self._editing = False
        if self._pending is not None:
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[0](*pending[1])

    def _deferred(self, method, args) -> bool:
        """While an edit runs, remember the newest request to show something and return True."""
        self._last = (method, args)
        if self._editing:
            self._pending = (method, args)
            return True
        return False

    def _push(self, command) -> None:
        self.doc.push(command)

    def _program_box(self, track) -> None:
        box = QComboBox(self)
        if track.is_drum:
            items = [(p, f"Drums: {name}") for p, name in sorted(GM_DRUM_KITS.items())]
            if track.program not in GM_DRUM_KITS:
                items.append((track.program, f"Drums: kit {track.program + 1}"))
        else:
            items = [(p, f"{p + 1} {name}") for p, name in enumerate(GM_PROGRAMS)]
        for p, text in items:
            box.addItem(text, p)
        box.setCurrentIndex(max(0, box.findData(int(track.program))))
        box.setMaxVisibleItems(24)
        self.fields["Instrument"] = box.currentText()
        box.setToolTip("General MIDI instrument of this track (drum tracks: the drum kit)")

        def chosen(_i: int) -> None:
            from studio.model import edits

            self._try(self._push, edits.SetTrackProperty(track.id, "program", int(box.currentData())))

        box.currentIndexChanged.connect(chosen)
        self.editors["Instrument"] = box
        self.form.addRow(self._label("Instrument"), box)
        drums = QCheckBox("Drums (MIDI channel 10)", self)
        drums.setChecked(track.is_drum)
        self.fields["Drums"] = "yes" if track.is_drum else "no"

        def drum(on: bool) -> None:
            from studio.model import edits

            with self.doc.group("Set drum track"):
                self._push(edits.SetTrackProperty(track.id, "is_drum", bool(on)))
                self._push(edits.SetTrackProperty(track.id, "program", 0))

        drums.toggled.connect(lambda on: self._try(drum, on))
        self.editors["Drums"] = drums
        self.form.addRow(self._label(""), drums)

    # -- takes -------------------------------------------------------------------------------
    def show_take(self, doc, track, group, take) -> None:
        """Provenance of one take."""
        if self._deferred(self.show_take, (doc, track, group, take)):
            return
        self.clear()
        self.doc = doc
        prov = dict(take.provenance or {})
        self.title.setText(f"Take '{take.name}' on '{track.name}'")
        sr = doc.project.sample_rate
        self._add("Range", f"{_fmt_time(group.start, sr)} – {_fmt_time(group.end, sr)}")
        self._add("Playing", "yes" if group.active_take_id == take.id else "no")
        self._add("Engine", " ".join(x for x in (prov.get("engine_id", ""), prov.get("engine_version", "")) if x))
        self._add("Model", " @ ".join(x for x in (prov.get("model_id") or "", prov.get("revision") or "") if x))
        self._add("Licence", prov.get("licence"))
        self._add("Task", prov.get("task"))
        self._add("Seed", prov.get("seed"))
        self._add("Device", " ".join(x for x in (prov.get("device", ""), prov.get("dtype", "")) if x))
        self._add("Created", prov.get("created"))
        inputs = prov.get("input_sha256") or {}
        if inputs:
            self._add("Inputs", ", ".join(f"{k} {v[:12]}…" for k, v in inputs.items()))
        for label, text in adherence_lines(prov):
            self._add(label, text)
        params = prov.get("params") or {}
        self.fields["Parameters"] = json.dumps(params, sort_keys=True)
        self.params.setPlainText(json.dumps(params, indent=2, sort_keys=True))
        self.params.show()

    # -- clips, ranges, tracks -----------------------------------------------------------------
    def show_selection(self, doc, selection, clips, track) -> None:
        """The selected clips, time range or track."""
        from studio.model import edits

        if self._deferred(self.show_selection, (doc, selection, clips, track)):
            return
        self.clear()
        self.doc = doc
        proj = doc.project
        sr, tm = proj.sample_rate, proj.tempo_map
        if clips:
            t, c = clips[0]
            self.title.setText(f"Clip '{c.name or 'untitled'}' on '{t.name}'" +
                               (f" (+{len(clips) - 1} more)" if len(clips) > 1 else ""))
            s, e = proj.clip_span(c)
            start_tick = c.start if isinstance(c, MidiClip) else tm.sample_to_tick(s, sr)
            end_tick = c.end if isinstance(c, MidiClip) else tm.sample_to_tick(e, sr)
            self._edit("Name", c.name, lambda v: self._push(edits.SetClipProperty(c.id, "name", v.strip())))

            def move(text: str) -> None:
                tick = parse_position(tm, text)
                self._push(edits.MoveClip(c.id, tick if isinstance(c, MidiClip) else tm.tick_to_sample(tick, sr)))

            self._edit("Start", format_position(tm, start_tick), move,
                       "bar.beat.sixteenth (from 1), e.g. 5.1.1; Enter moves the clip")
            self._add("Start time", _fmt_time(s, sr))

            def resize(text: str) -> None:
                ticks = parse_length(tm, start_tick, text)
                if isinstance(c, MidiClip):
                    self._push(edits.SetClipProperty(c.id, "length", ticks))
                else:
                    n = tm.tick_to_sample(start_tick + ticks, sr) - s
                    self._push(edits.SetClipProperty(c.id, "length", max(1, n)))

            self._edit("Length", format_length(tm, start_tick, end_tick - start_tick), resize,
                       "bars.beats.sixteenths (from 0), e.g. 2.0.0 for two bars")
            self._add("Duration", _fmt_time(e - s, sr))
            if isinstance(c, AudioClip):
                item = proj.media.get(c.media_id)
                self._spin("Gain", c.gain_db, -60.0, 24.0, " dB",
                           lambda v: self._push(edits.SetClipProperty(c.id, "gain_db", round(v, 2))))
                self._spin("Fade in", c.fade_in / sr * 1000, 0.0, c.length / sr * 1000, " ms",
                           lambda v: self._push(edits.SetClipProperty(c.id, "fade_in", int(round(v / 1000 * sr)))),
                           decimals=0, step=10)
                self._spin("Fade out", c.fade_out / sr * 1000, 0.0, c.length / sr * 1000, " ms",
                           lambda v: self._push(edits.SetClipProperty(c.id, "fade_out", int(round(v / 1000 * sr)))),
                           decimals=0, step=10)
                if item is not None:
                    self._add("Source", item.original_name)
                    self._add("Format", f"{item.channels} ch, {item.sample_rate} Hz")
            elif isinstance(c, MidiClip):
                self._add("Notes", len(c.notes))
                self._program_box(t)
            return
        if not selection.empty:
            self.title.setText("Time selection")
            s_tick, e_tick = tm.sample_to_tick(selection.start, sr), tm.sample_to_tick(selection.end, sr)
            self._add("Start", f"{format_position(tm, s_tick)}   {_fmt_time(selection.start, sr)}")
            self._add("End", f"{format_position(tm, e_tick)}   {_fmt_time(selection.end, sr)}")
            self._add("Length", format_length(tm, s_tick, e_tick - s_tick))
            self._add("Tracks", len(selection.track_ids))
            return
        if track is not None:
            self.title.setText(f"Track '{track.name}'")
            self._edit("Name", track.name,
                       lambda v: self._push(edits.SetTrackProperty(track.id, "name", v.strip() or track.name)))
            self._add("Kind", track.kind)
            self._spin("Gain", track.gain_db, -60.0, 24.0, " dB",
                       lambda v: self._push(edits.SetTrackProperty(track.id, "gain_db", round(v, 2))))
            self._spin("Pan", track.pan * 100, -100.0, 100.0, "",
                       lambda v: self._push(edits.SetTrackProperty(track.id, "pan", round(v / 100.0, 3))),
                       decimals=0, step=5)
            if track.kind == "midi":
                self._program_box(track)
            self._add("Clips", len(track.clips))
            self._add("Take groups", len(track.take_groups))
            self._add("Control lanes", ", ".join(track.control_lanes) or "none")
