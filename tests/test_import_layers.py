"""The import layers: ui -> studio -> engines. Engines never import studio (or ui), studio
never imports ui, and neither imports Qt (see test_qt_free). Checked on the source: every
``import`` and ``from ... import`` statement, at any depth (lazy imports included)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {"engines": ("studio", "ui", "PyQt6"), "studio": ("ui", "PyQt6")}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def test_each_layer_imports_only_the_layers_below():
    bad = []
    counted = 0
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((REPO / package).rglob("*.py")):
            counted += 1
            for line, top in imports_of(path):
                if top in forbidden:
                    bad.append(f"{path.relative_to(REPO)}:{line} imports {top}")
    assert counted > 50
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from studio.model import edits\n    import ui.app as a\n")
    assert imports_of(p) == [(2, "studio"), (3, "ui")]
