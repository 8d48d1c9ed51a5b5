"""Forms generated from an engine's parameter JSON Schema, and the engine dialog.

Each ``properties`` entry of ``EngineEntry.param_schema`` becomes one widget:
``number`` -> QDoubleSpinBox, ``integer`` -> QSpinBox, ``boolean`` -> QCheckBox,
``string`` with ``enum`` -> QComboBox, ``string`` -> QLineEdit, ``array`` of numbers
-> a comma-separated QLineEdit. ``title`` is the label, ``description`` the tooltip,
``default``/``minimum``/``maximum`` seed the widget (JSON Schema draft 2020-12, as the
engines declare it). Properties documented as test hooks are not shown to musicians.
Values are validated by :func:`engines.base.resolve_params` (the jsonschema library)
before a job is submitted.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                             QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget)


def _is_hidden(prop: dict) -> bool:
    return str(prop.get("description", "")).lower().startswith("test hook")


class SchemaForm(QWidget):
    """A form for one object schema. :meth:`values` returns the parameters as a dict.

    Raises (constructor): nothing; unknown property types get a JSON text field.
    """

    def __init__(self, schema: dict[str, Any], parent=None, *, show_hidden: bool = False):
        super().__init__(parent)
        self.schema = schema or {"type": "object", "properties": {}}
        self.widgets: dict[str, tuple[str, QWidget]] = {}
        lay = QFormLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for name, prop in (self.schema.get("properties") or {}).items():
            if not isinstance(prop, dict) or (_is_hidden(prop) and not show_hidden):
                continue
            kind, w = self._widget(prop)
            w.setObjectName(name)
            w.setToolTip(str(prop.get("description", "")))
            self.widgets[name] = (kind, w)
            lay.addRow(str(prop.get("title", name.replace("_", " ").capitalize())), w)
        if not self.widgets:
            lay.addRow(QLabel("This engine has no settings.", self))

    def _widget(self, prop: dict) -> tuple[str, QWidget]:
        t = prop.get("type")
        default = prop.get("default")
        if isinstance(t, list):  # e.g. ["number", "null"]: empty field = null ("automatic")
            base = next((x for x in t if x != "null"), "string")
            if "null" in t and base in ("number", "integer"):
                w = QLineEdit(self)
                w.setPlaceholderText("automatic")
                if default is not None:
                    w.setText(str(default))
                return ("null_int" if base == "integer" else "null_float"), w
            t = base
        if "enum" in prop:
            w = QComboBox(self)
            for v in prop["enum"]:
                w.addItem(str(v), v)
            if default in prop["enum"]:
                w.setCurrentIndex(prop["enum"].index(default))
            return "enum", w
        if t == "boolean":
            w = QCheckBox(self)
            w.setChecked(bool(default))
            return "bool", w
        if t == "integer":
            w = QSpinBox(self)
            lo = prop.get("minimum", prop.get("exclusiveMinimum", -1_000_000) + (1 if "exclusiveMinimum" in prop else 0))
            hi = prop.get("maximum", prop.get("exclusiveMaximum", 1_000_000) - (1 if "exclusiveMaximum" in prop else 0))
            w.setRange(int(lo), int(hi))
            w.setValue(int(default if default is not None else max(int(lo), 0)))
            return "int", w
        if t == "number":
            w = QDoubleSpinBox(self)
            lo = prop.get("minimum", prop.get("exclusiveMinimum", -1e9))
            hi = prop.get("maximum", prop.get("exclusiveMaximum", 1e9))
            w.setDecimals(3)
            w.setRange(float(lo), float(hi))
            span = float(hi) - float(lo)
            w.setSingleStep(0.01 if span <= 2 else 0.1 if span <= 20 else 1.0)
            w.setValue(float(default if default is not None else max(float(lo), 0.0)))
            return "float", w
        if t == "array":
            w = QLineEdit(self)
            if isinstance(default, list):
                w.setText(", ".join(str(x) for x in default))
            items = prop.get("items", {}) or {}
            return ("array_int" if items.get("type") == "integer" else
                    "array_str" if items.get("type") == "string" else "array_num"), w
        w = QLineEdit(self)
        if default is not None:
            w.setText(str(default))
        return "str", w

    def values(self) -> dict[str, Any]:
        """Current values, typed as the schema says.

        Raises:
            ValueError: a list field holds something that is not a number.
        """
        out: dict[str, Any] = {}
        for name, (kind, w) in self.widgets.items():
            if kind == "enum":
                out[name] = w.currentData()
            elif kind == "bool":
                out[name] = w.isChecked()
            elif kind in ("int", "float"):
                out[name] = w.value()
            elif kind in ("null_int", "null_float"):
                text = w.text().strip()
                try:
                    out[name] = None if not text else (int(text) if kind == "null_int" else float(text))
                except ValueError:
                    raise ValueError(f"'{name}' needs a number, or nothing for automatic") from None
            elif kind.startswith("array"):
                parts = [p.strip() for p in w.text().split(",") if p.strip()]
                conv = {"array_int": int, "array_num": float, "array_str": str}[kind]
                try:
                    out[name] = [conv(p) for p in parts]
                except ValueError:
                    raise ValueError(f"'{name}' needs a comma-separated list of numbers") from None
            else:
                out[name] = w.text()
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (names not in the form are ignored)."""
        for name, v in values.items():
            if name not in self.widgets:
                continue
            kind, w = self.widgets[name]
            if kind == "enum":
                i = w.findData(v)
                if i >= 0:
                    w.setCurrentIndex(i)
            elif kind == "bool":
                w.setChecked(bool(v))
            elif kind in ("int", "float"):
                w.setValue(v)
            elif kind.startswith("array"):
                w.setText(", ".join(str(x) for x in v))
            elif kind.startswith("null_"):
                w.setText("" if v is None else str(v))
            else:
                w.setText(str(v))


class EngineDialog(QDialog):
    """Pick an engine for a task and fill its form. OK = submit (the caller connects ``accepted``).

    Args:
        task: a task name of :data:`engines.base.TASKS`.
        target_text: what the job will work on, for the dialog's header.
        engine_id: preselect this engine; default the first offline-capable one, so that
            a fresh install works without downloads.
    """

    def __init__(self, task: str, target_text: str, parent=None, *, engine_id: str | None = None):
        super().__init__(parent)
        from engines.registry import list_engines

        self.task = task
        self.entries = list_engines(task)
        self.setWindowTitle(task.replace("_", " ").capitalize())
        self.setMinimumWidth(420)
        lay = QVBoxLayout(self)
        head = QLabel(f"<b>{task.replace('_', ' ').capitalize()}</b> on {target_text}", self)
        head.setWordWrap(True)
        lay.addWidget(head)
        top = QFormLayout()
        self.engine = QComboBox(self)
        for e in self.entries:
            self.engine.addItem((e.title or e.id) + ("" if e.offline else "  (needs model download)"), e.id)
        top.addRow("Engine", self.engine)
        self.seed_box = QSpinBox(self)
        self.seed_box.setRange(0, 2**31 - 1)
        top.addRow("Seed", self.seed_box)
        lay.addLayout(top)
        self.about = QLabel(self)
        self.about.setWordWrap(True)
        self.about.setStyleSheet("color:#9aa0a8;")
        lay.addWidget(self.about)
        self.form_host = QVBoxLayout()
        lay.addLayout(self.form_host)
        self.form: SchemaForm | None = None
        self.error = QLabel(self)
        self.error.setStyleSheet("color:#ff7b6b;")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.engine.currentIndexChanged.connect(self._engine_changed)
        if not self.entries:
            self.about.setText("No engine can do this yet.")
            buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return
        pick = 0
        if engine_id is not None:
            pick = next((i for i, e in enumerate(self.entries) if e.id == engine_id), 0)
        else:
            pick = next((i for i, e in enumerate(self.entries) if e.offline and e.id != "fake"),
                        next((i for i, e in enumerate(self.entries) if e.offline), 0))
        self.engine.setCurrentIndex(pick)
        self._engine_changed(pick)

    def _engine_changed(self, index: int) -> None:
        if not 0 <= index < len(self.entries):
            return
        entry = self.entries[index]
        self.about.setText(entry.description)
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
        self.form = SchemaForm(entry.param_schema, self)
        self.form_host.addWidget(self.form)

    def engine_id(self) -> str:
        """The chosen engine's registry id."""
        return self.engine.currentData()

    def seed(self) -> int:
        """The chosen random seed."""
        return int(self.seed_box.value())

    def params(self) -> dict[str, Any]:
        """The form's parameters (see :meth:`SchemaForm.values`)."""
        return self.form.values() if self.form is not None else {}

    def _ok(self) -> None:
        from engines.base import EngineError, resolve_params

        try:
            resolve_params(self.entries[self.engine.currentIndex()].param_schema, self.params())
        except (EngineError, ValueError) as exc:
            self.error.setText(str(exc))
            return
        self.accept()
