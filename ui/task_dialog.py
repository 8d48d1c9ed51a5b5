"""The task dialog: one form per task, generated from its request schema
(:meth:`studio.tasks.base.Task.request_schema`), the same schema the CLI's flags come from.

Top to bottom: the model (each with its licence and whether it is installed, built in
or missing; a Download button that runs the model manager in a worker thread; "Use a
model folder…" for a local fine-tune or offline copy), the task's own fields (stems,
prompt, lyrics, length in bars...), the seed, and the engine's parameters in plain
words. OK validates the whole request (:meth:`~studio.tasks.base.Task.resolve`) and
shows a problem in the dialog instead of closing.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                             QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ui.engine_form import SchemaForm

HIDDEN = ("model", "model_path", "seed", "device", "params")


class ControlsEditor(QWidget):
    """The controls section: for melody, dynamics and rhythm, a source (off, the target
    track's drawn lane, another track's audio, a MIDI clip) and a strength.

    Args:
        project: the project (its tracks, lanes and MIDI clips are the choices).
        track_id: the job's target track (its lanes are offered first), or None.
    """

    KINDS = ("melody", "dynamics", "rhythm")

    def __init__(self, project, track_id: str | None, parent=None):
        super().__init__(parent)
        from studio.model.project import MidiClip

        lay = QFormLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[str, tuple[QComboBox, QDoubleSpinBox]] = {}
        for kind in self.KINDS:
            box = QComboBox(self)
            box.addItem("Off", None)
            if track_id is not None:
                try:
                    lane = project.track(track_id).control_lanes.get(kind)
                except KeyError:
                    lane = None
                if lane is not None and lane.points:
                    box.addItem(f"{kind.capitalize()} lane of this track", "lane")
            for t in project.tracks:
                lane = t.control_lanes.get(kind)
                if t.id != track_id and lane is not None and lane.points:
                    box.addItem(f"{kind.capitalize()} lane of '{t.name}'", f"lane:{t.id}")
            for t in project.tracks:
                if t.kind == "audio" and t.clips:
                    box.addItem(f"Audio of '{t.name}'", f"track:{t.id}")
            for t in project.tracks:
                for c in t.clips:
                    if isinstance(c, MidiClip):
                        box.addItem(f"MIDI clip '{c.name or t.name}'", f"clip:{c.id}")
            strength = QDoubleSpinBox(self)
            strength.setRange(0.0, 10.0)
            strength.setSingleStep(0.1)
            strength.setValue(1.0)
            strength.setToolTip("How strongly the result follows this control (1 = default)")
            row = QHBoxLayout()
            row.addWidget(box, 1)
            row.addWidget(QLabel("strength", self))
            row.addWidget(strength)
            lay.addRow(kind.capitalize(), row)
            self.rows[kind] = (box, strength)

    def values(self) -> dict:
        """The request's ``controls`` field."""
        out = {}
        for kind, (box, strength) in self.rows.items():
            if box.currentData():
                out[kind] = {"source": box.currentData(), "strength": float(strength.value())}
        return out

    def set_source(self, kind: str, source: str, strength: float = 1.0) -> None:
        """Choose a source (e.g. ``"lane"``) for a control kind."""
        box, s = self.rows[kind]
        i = box.findData(source)
        if i < 0:
            raise ValueError(f"no {kind} source {source!r} here")
        box.setCurrentIndex(i)
        s.setValue(strength)


class TaskDialog(QDialog):
    """Fill a task's request. ``request()`` returns it; OK = ``accepted`` (the caller submits).

    Args:
        task: a :class:`studio.tasks.base.Task`.
        target_text: what the job works on (header line).
        manager: a :class:`engines.models.ModelManager` (default: the user's models folder).
        model_id: preselect this model; default the task's default model.
        values: task field values to preset (e.g. ``{"stems": ["vocals"]}``).
    """

    def __init__(self, task, target_text: str, parent=None, *, manager=None, model_id: str | None = None,
                 values: dict[str, Any] | None = None, project=None, target=None):
        super().__init__(parent)
        from engines.models import ModelManager
        from studio.io.settings import load_settings

        self.task = task
        self.manager = manager or ModelManager(setting=load_settings().models_dir)
        self.model_path: str | None = None
        self.models = task.models()
        self._values = dict(values or {})
        self.setWindowTitle(task.title.rstrip("…"))
        self.setMinimumWidth(480)
        lay = QVBoxLayout(self)
        head = QLabel(f"<b>{task.title.rstrip('…')}</b> — {target_text}<br><span style='color:#9aa0a8'>"
                      f"{task.description}</span>", self)
        head.setWordWrap(True)
        lay.addWidget(head)

        top = QFormLayout()
        self.model_box = QComboBox(self)
        for m in self.models:
            self.model_box.addItem(self._model_text(m), m.id)
        row = QHBoxLayout()
        row.addWidget(self.model_box, 1)
        self.download_btn = QPushButton("Download", self)
        self.download_btn.clicked.connect(self.download_model)
        row.addWidget(self.download_btn)
        model_label = QLabel("Model", self)
        model_label.setMinimumWidth(model_label.fontMetrics().horizontalAdvance("Model") + 12)
        top.addRow(model_label, row)
        folder_row = QHBoxLayout()
        self.folder_label = QLabel("", self)
        self.folder_label.setStyleSheet("color:#9aa0a8;")
        self.folder_btn = QPushButton("Use a model folder…", self)
        self.folder_btn.clicked.connect(self.choose_model_folder)
        self.folder_clear = QPushButton("Clear", self)
        self.folder_clear.clicked.connect(lambda: self.set_model_path(None))
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.folder_btn)
        folder_row.addWidget(self.folder_clear)
        top.addRow("", folder_row)
        self.model_info = QLabel(self)
        self.model_info.setWordWrap(True)
        self.model_info.setStyleSheet("color:#9aa0a8;")
        top.addRow("", self.model_info)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.hide()
        top.addRow("", self.bar)
        self.seed_box = QSpinBox(self)
        self.seed_box.setRange(0, 2**31 - 1)
        top.addRow("Seed", self.seed_box)
        lay.addLayout(top)

        self.fields_box = QGroupBox("Settings", self)
        self.fields_lay = QVBoxLayout(self.fields_box)
        lay.addWidget(self.fields_box)
        self.controls: ControlsEditor | None = None
        if "controls" in task.fields and project is not None:
            box = QGroupBox("Controls (melody, dynamics, rhythm)", self)
            QVBoxLayout(box)
            track_id = getattr(target, "track_id", None)
            self.controls = ControlsEditor(project, track_id, box)
            box.layout().addWidget(self.controls)
            lay.addWidget(box)
        self.params_box = QGroupBox("Engine settings (advanced)", self)
        self.params_box.setCheckable(True)
        self.params_box.setChecked(False)
        self.params_lay = QVBoxLayout(self.params_box)
        self.params_box.toggled.connect(lambda on: self.params_form.setVisible(on) if self.params_form else None)
        lay.addWidget(self.params_box)
        self.fields_form: SchemaForm | None = None
        self.params_form: SchemaForm | None = None

        self.error = QLabel(self)
        self.error.setStyleSheet("color:#ff7b6b;")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self._download_task = None
        self.set_model_path(None)
        if not self.models:
            self.model_info.setText("No engine for this task is installed yet.")
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            self.download_btn.setEnabled(False)
            return
        pick = task.default_model().id if model_id is None else task.model(model_id).id
        idx = max(0, self.model_box.findData(pick))
        self.model_box.setCurrentIndex(idx)
        self._model_changed(idx)

    # -- models ------------------------------------------------------------------------
    def _status(self, m) -> str:
        try:
            return self.manager.status(m)
        except Exception as exc:  # a broken folder must not break the dialog
            return f"unknown ({exc})"

    def _model_text(self, m) -> str:
        return f"{m.title or m.id} — {m.licence} — {self._status(m)}"

    def current_model(self):
        """The chosen :class:`~engines.records.ModelRecord`."""
        return self.models[self.model_box.currentIndex()]

    def _model_changed(self, index: int) -> None:
        if not 0 <= index < len(self.models):
            return
        from engines.models import human_size

        m = self.models[index]
        entry = self.task.engine_for(m)
        status = self._status(m)
        size = f", {human_size(m.size)}" if m.size else ""
        needs = status not in ("installed", "built-in") and not self.model_path
        self.model_info.setText(
            f"{entry.description} Licence: {m.licence}{size}. "
            + ("Not installed: download it, or use a model folder." if needs else "")
            + (f" {m.notes}" if m.notes else ""))
        self.download_btn.setEnabled(status not in ("installed", "built-in"))
        self.folder_btn.setEnabled(entry.accepts_model_path)
        if not entry.accepts_model_path:
            self.set_model_path(None)
        keep = self.fields_form.values() if self.fields_form is not None else self._values
        for form in (self.fields_form, self.params_form):
            if form is not None:
                form.setParent(None)
                form.deleteLater()
        fields = self.task.field_schema(m)
        self.fields_form = SchemaForm({"type": "object", "properties": fields}, self.fields_box,
                                      empty_text="Nothing to set for this task.")
        self.fields_form.set_values({k: v for k, v in keep.items() if k in fields})
        self.fields_lay.addWidget(self.fields_form)
        self.params_form = SchemaForm(self.task.engine_schema(entry), self.params_box,
                                      empty_text="This engine has no settings.")
        self.params_form.setVisible(self.params_box.isChecked())
        self.params_lay.addWidget(self.params_form)
        self.error.setText("")

    def set_model_path(self, path: str | None) -> None:
        """Use a local model folder or file instead of the model's downloaded files (None = don't)."""
        self.model_path = path or None
        self.folder_label.setText(f"Model folder: {path}" if path else "")
        self.folder_clear.setVisible(bool(path))

    def choose_model_folder(self) -> None:
        """Ask for a model folder ("Use a model folder…")."""
        path = QFileDialog.getExistingDirectory(self, "Model folder")
        if path:
            self.set_model_path(path)
            self._model_changed(self.model_box.currentIndex())

    def download_model(self) -> None:
        """Download the chosen model with the model manager, in a worker thread."""
        from ui.qt_bridge import BackgroundTask

        m = self.current_model()
        self.bar.show()
        self.bar.setValue(0)
        self.download_btn.setEnabled(False)
        self.model_info.setText(f"Downloading {m.title or m.id} ({m.licence})…")

        def work(progress):
            return self.manager.download(m, lambda done, total, name: progress(done / total if total else 0.0))

        task = BackgroundTask(work, self)
        task.progress.connect(lambda f: self.bar.setValue(int(f * 1000)))
        task.finished.connect(self._downloaded)
        self._download_task = task
        task.start()

    def _downloaded(self, _value, error: str) -> None:
        self.bar.hide()
        i = self.model_box.currentIndex()
        self.model_box.setItemText(i, self._model_text(self.models[i]))
        self._model_changed(i)
        if error:
            self.error.setText(f"The download failed: {error}")

    # -- the request ---------------------------------------------------------------------
    def request(self) -> dict[str, Any]:
        """The request dict (model, model_path, seed, the fields, ``params``).

        Raises:
            ValueError: a field holds text where a number is needed.
        """
        req: dict[str, Any] = {"model": self.current_model().id, "model_path": self.model_path,
                               "seed": int(self.seed_box.value())}
        if self.fields_form is not None:
            req.update(self.fields_form.values())
        if self.controls is not None:
            req["controls"] = self.controls.values()
        req["params"] = self.params_form.values() if self.params_form is not None else {}
        return req

    def _ok(self) -> None:
        from engines.base import UserError

        try:
            self.task.resolve(self.request())
        except (UserError, ValueError) as exc:
            self.error.setText(str(exc))
            return
        self.accept()
