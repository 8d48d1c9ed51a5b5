"""One module per task: its request schema, ``prepare`` (project -> engine job) and
``apply`` (engine result -> one undoable command). See :mod:`studio.tasks.base`.

:func:`get_task` returns a task by name; :data:`TASK_MODULES` lists them in menu order.
"""
from __future__ import annotations

import importlib

from studio.tasks.base import Request, Target, Task, TaskError

__all__ = ["Request", "Target", "Task", "TaskError", "TASK_MODULES", "get_task", "all_tasks"]

TASK_MODULES: dict[str, str] = {
    "separate": "studio.tasks.separate:SeparateTask",
    "transcribe": "studio.tasks.transcribe:TranscribeTask",
    "analyze": "studio.tasks.analyze:AnalyzeTask",
    "generate": "studio.tasks.generate:GenerateTask",
    "extend": "studio.tasks.extend:ExtendTask",
    "inpaint": "studio.tasks.inpaint:InpaintTask",
    "add_stem": "studio.tasks.add_stem:AddStemTask",
    "restyle": "studio.tasks.restyle:RestyleTask",
    "convert_voice": "studio.tasks.convert_voice:ConvertVoiceTask",
}
"""Task name -> ``"module:Class"``, in the order menus list them."""

_cache: dict[str, Task] = {}


def get_task(name: str) -> Task:
    """The task called ``name`` (``"add-stem"`` is accepted for ``"add_stem"``).

    Raises:
        TaskError: no such task.
    """
    key = name.replace("-", "_")
    if key not in _cache:
        target = TASK_MODULES.get(key)
        if target is None:
            raise TaskError(f"no task named '{name}' (tasks: {', '.join(TASK_MODULES)})")
        module, _, cls = target.partition(":")
        _cache[key] = getattr(importlib.import_module(module), cls)()
    return _cache[key]


def all_tasks() -> list[Task]:
    """Every task, in menu order."""
    return [get_task(n) for n in TASK_MODULES]
