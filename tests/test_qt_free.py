"""The core (studio) and the engines import with Qt blocked: no Qt in the core."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules(package: str) -> list[str]:
    root = REPO / package
    return [f"{package}.{m.name}" for m in pkgutil.walk_packages([str(root)], prefix="")
            if not m.name.startswith("_")] + [package]


def test_studio_and_engines_import_with_qt_blocked():
    mods = _modules("studio") + _modules("engines")
    script = textwrap.dedent(f"""
        import sys, importlib
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PyQt6', 'PyQt5', 'PySide6', 'PySide2', 'qtpy'):
                    raise ImportError('Qt is blocked in the core: ' + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(REPO)!r})
        failed = []
        for m in {mods!r}:
            try:
                importlib.import_module(m)
            except ImportError as e:
                if 'Qt is blocked' in str(e):
                    failed.append((m, str(e)))
        assert not failed, failed
        assert not any(k.startswith(('PyQt', 'PySide')) for k in sys.modules)
        print(len({mods!r}))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.strip()) >= 10
