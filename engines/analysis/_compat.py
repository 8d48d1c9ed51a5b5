"""Import helpers for model libraries whose only use of torchaudio is optional.

torchfcpe, torchcrepe and beat_this import ``torchaudio`` at module level, but the
code paths used here never call it: audio is read with soundfile and resampled with
soxr before it reaches them. torchaudio wheels pin one exact torch build, so the app
does not install it. :func:`import_without_torchaudio` imports such a module with a
placeholder ``torchaudio`` that raises on use, and removes the placeholder again so
that nothing else in the process can mistake it for the real library.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__all__ = ["import_without_torchaudio"]


class _Missing:
    """Stands for any torchaudio attribute; using it raises a clear ImportError."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"torchaudio is not installed, so '{self._name}' is unavailable; "
                          "Seed Studio resamples with soxr and reads audio with soundfile instead")

    def __getattr__(self, item: str) -> "_Missing":
        if item.startswith("__"):
            raise AttributeError(item)
        return _Missing(f"{self._name}.{item}")


def _placeholder(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)

    def __getattr__(item: str) -> _Missing:
        if item.startswith("__"):
            raise AttributeError(item)
        return _Missing(f"{name}.{item}")

    mod.__getattr__ = __getattr__  # type: ignore[attr-defined]
    mod.__path__ = []  # a package, so submodule imports resolve to placeholders
    return mod


def import_without_torchaudio(module_name: str) -> types.ModuleType:
    """Import ``module_name``; if torchaudio is missing, behind a temporary placeholder.

    Returns:
        the imported module.

    Raises:
        ImportError: the module itself (or another dependency) is missing.
    """
    if module_name in sys.modules or importlib.util.find_spec("torchaudio") is not None:
        return importlib.import_module(module_name)
    import torch  # noqa: F401 - import the real torch before any placeholder exists

    names = ("torchaudio", "torchaudio.transforms", "torchaudio.functional")
    stubs = {n: _placeholder(n) for n in names}
    stubs["torchaudio"].transforms = stubs["torchaudio.transforms"]  # type: ignore[attr-defined]
    stubs["torchaudio"].functional = stubs["torchaudio.functional"]  # type: ignore[attr-defined]
    sys.modules.update(stubs)
    try:
        return importlib.import_module(module_name)
    finally:
        for n, stub in stubs.items():
            if sys.modules.get(n) is stub:
                del sys.modules[n]
