"""Forms generated from a JSON Schema: the task fields and engine parameters of the task
dialog (:mod:`ui.task_dialog`).

Each ``properties`` entry becomes one widget: ``number`` -> QDoubleSpinBox, ``integer``
-> QSpinBox, ``boolean`` -> QCheckBox, ``string`` with ``enum`` -> QComboBox,
``string`` -> QLineEdit (``"x-widget": "multiline"``: a text box), nullable numbers and
strings -> a QLineEdit whose empty text means null ("automatic"), ``array`` of an
``enum`` -> a list of check boxes (e.g. stems), other arrays -> a comma-separated QLineEdit. ``title`` is the label, ``description`` the tooltip,
``default``/``minimum``/``maximum`` seed the widget (JSON Schema draft 2020-12, as the
engines declare it). Properties documented as test hooks are not shown to musicians.
Values are validated by :func:`engines.base.resolve_params` (the jsonschema library)
before a job is submitted.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QListWidget,
                             QListWidgetItem, QPlainTextEdit, QSpinBox, QWidget)


def _is_hidden(prop: dict) -> bool:
    return str(prop.get("description", "")).lower().startswith("test hook")


class SchemaForm(QWidget):
    """A form for one object schema. :meth:`values` returns the parameters as a dict.

    Raises (constructor): nothing; unknown property types get a JSON text field.
    """

    def __init__(self, schema: dict[str, Any], parent=None, *, show_hidden: bool = False,
                 empty_text: str = "No settings."):
        super().__init__(parent)
        self.schema = schema or {"type": "object", "properties": {}}
        self.widgets: dict[str, tuple[str, QWidget]] = {}
        lay = QFormLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for name, prop in (self.schema.get("properties") or {}).items():
            if not isinstance(prop, dict) or (_is_hidden(prop) and not show_hidden):
                continue
            if prop.get("x-widget") == "controls":  # edited by the task dialog's controls section
                continue
            kind, w = self._widget(prop)
            w.setObjectName(name)
            w.setToolTip(str(prop.get("description", "")))
            self.widgets[name] = (kind, w)
            lay.addRow(str(prop.get("title", name.replace("_", " ").capitalize())), w)
        if not self.widgets:
            lay.addRow(QLabel(empty_text, self))

    def _widget(self, prop: dict) -> tuple[str, QWidget]:
        t = prop.get("type")
        default = prop.get("default")
        if isinstance(t, list):  # e.g. ["number", "null"]: empty field = null ("automatic")
            base = next((x for x in t if x != "null"), "string")
            if "null" in t and base in ("number", "integer", "string") and "enum" not in prop:
                w = QLineEdit(self)
                w.setPlaceholderText("automatic")
                if default is not None:
                    w.setText(str(default))
                return {"integer": "null_int", "number": "null_float"}.get(base, "null_str"), w
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
        if t == "array" and (prop.get("items") or {}).get("enum"):
            w = QListWidget(self)
            chosen = set(default or [])
            for v in prop["items"]["enum"]:
                it = QListWidgetItem(str(v), w)
                it.setData(Qt.ItemDataRole.UserRole, v)
                it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                it.setCheckState(Qt.CheckState.Checked if v in chosen else Qt.CheckState.Unchecked)
            w.setMaximumHeight(22 * min(6, max(1, w.count())) + 6)
            return "array_enum", w
        if t == "string" and prop.get("x-widget") == "multiline":
            w = QPlainTextEdit(self)
            w.setMinimumHeight(64)
            w.setMaximumHeight(110)
            if default:
                w.setPlainText(str(default))
            return "text", w
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
            elif kind == "array_enum":
                out[name] = [w.item(i).data(Qt.ItemDataRole.UserRole) for i in range(w.count())
                             if w.item(i).checkState() == Qt.CheckState.Checked]
            elif kind == "text":
                out[name] = w.toPlainText()
            elif kind == "null_str":
                out[name] = w.text().strip() or None
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
            elif kind == "array_enum":
                for i in range(w.count()):
                    on = w.item(i).data(Qt.ItemDataRole.UserRole) in set(v or [])
                    w.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            elif kind == "text":
                w.setPlainText(str(v or ""))
            elif kind.startswith("array"):
                w.setText(", ".join(str(x) for x in v))
            elif kind.startswith("null_"):
                w.setText("" if v is None else str(v))
            else:
                w.setText(str(v))
