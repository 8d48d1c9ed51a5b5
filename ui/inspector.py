"""The inspector: what is selected, and the provenance of the selected take
(engine, model, licence, seed and parameters), as recorded in ``Take.provenance``."""
from __future__ import annotations

import json

from PyQt6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from studio.model.project import AudioClip, MidiClip


def _fmt_time(samples: int, sr: int) -> str:
    m, s = divmod(samples / sr, 60)
    return f"{int(m)}:{s:06.3f}"


class Inspector(QWidget):
    """Read-only facts about the selection. ``fields`` maps label -> shown text (for tests)."""

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
        self.setMinimumWidth(240)

    def clear(self) -> None:
        """Show nothing."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        self.params.hide()
        self.title.setText("Nothing selected")

    def _add(self, label: str, value) -> None:
        text = "—" if value in (None, "", {}) else str(value)
        self.fields[label] = text
        v = QLabel(text, self)
        v.setWordWrap(True)
        v.setObjectName("InspectorValue")
        lab = QLabel(label, self)
        lab.setObjectName("InspectorKey")
        self.form.addRow(lab, v)

    def show_take(self, doc, track, group, take) -> None:
        """Provenance of one take."""
        self.clear()
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
        params = prov.get("params") or {}
        self.fields["Parameters"] = json.dumps(params, sort_keys=True)
        self.params.setPlainText(json.dumps(params, indent=2, sort_keys=True))
        self.params.show()

    def show_selection(self, doc, selection, clips, track) -> None:
        """The selected clips, time range or track."""
        self.clear()
        proj = doc.project
        sr = proj.sample_rate
        if clips:
            t, c = clips[0]
            self.title.setText(f"Clip '{c.name or 'untitled'}' on '{t.name}'" +
                               (f" (+{len(clips) - 1} more)" if len(clips) > 1 else ""))
            s, e = proj.clip_span(c)
            self._add("Start", _fmt_time(s, sr))
            self._add("Length", _fmt_time(e - s, sr))
            if isinstance(c, AudioClip):
                item = proj.media.get(c.media_id)
                self._add("Gain", f"{c.gain_db:+.1f} dB")
                self._add("Fades", f"in {c.fade_in / sr * 1000:.0f} ms, out {c.fade_out / sr * 1000:.0f} ms")
                if item is not None:
                    self._add("Source", item.original_name)
                    self._add("Format", f"{item.channels} ch, {item.sample_rate} Hz")
            elif isinstance(c, MidiClip):
                self._add("Notes", len(c.notes))
                self._add("Program", f"{t.program}{' (drums)' if t.is_drum else ''}")
            return
        if not selection.empty:
            self.title.setText("Time selection")
            self._add("Start", _fmt_time(selection.start, sr))
            self._add("End", _fmt_time(selection.end, sr))
            self._add("Tracks", len(selection.track_ids))
            return
        if track is not None:
            self.title.setText(f"Track '{track.name}'")
            self._add("Kind", track.kind)
            self._add("Gain", f"{track.gain_db:+.1f} dB")
            self._add("Pan", f"{track.pan:+.2f}")
            self._add("Clips", len(track.clips))
            self._add("Take groups", len(track.take_groups))
            self._add("Control lanes", ", ".join(track.control_lanes) or "none")
