"""Which engines and models exist, what each can do, and their parameter schemas.

The registry collects the manifests of the engine packages: torch-free modules that
declare ``ENGINES`` (a list of :class:`~engines.records.EngineEntry`) and ``MODELS``
(a list of :class:`~engines.records.ModelRecord`). Manifests are found through the
``seed_studio.engines`` entry-point group of the installed distributions (as napari's
npe2 finds its plugins), so a package outside this one can add engines::

    [project.entry-points."seed_studio.engines"]
    separation = "engines.separation.manifest"

Where no distribution declares the group (a source checkout that was never
installed) every ``manifest.py`` under ``engines/`` is read instead. Developer
manifests (the test engine, :mod:`engines.testing.manifest`) are added only when the
environment variable ``SEED_STUDIO_DEV_ENGINES`` names them (comma-separated module
names) or when the tests call :func:`register`; a musician never sees them.

Listing is free: nothing here imports torch or a model library. An engine's module is
imported only by :func:`get_engine_class` (in the engine host, or in tests).
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from pathlib import Path
from types import ModuleType

from engines.base.errors import EngineNotFound
from engines.base.tasks import TASKS
from engines.records import EngineEntry, ModelFile, ModelRecord

__all__ = ["EngineEntry", "ModelFile", "ModelRecord", "ENTRY_POINT_GROUP", "ENV_DEV_ENGINES", "list_engines",
           "engines_for", "get_entry", "get_engine_class", "list_models", "get_model", "models_for_task", "engine_for_model",
           "register", "unregister", "reload"]

ENTRY_POINT_GROUP = "seed_studio.engines"
ENV_DEV_ENGINES = "SEED_STUDIO_DEV_ENGINES"

_lock = threading.RLock()
_engines: list[EngineEntry] | None = None
_models: list[ModelRecord] | None = None
_extra: list[tuple[list[EngineEntry], list[ModelRecord]]] = []


def _manifest_modules() -> list[str]:
    """Module names of every manifest: entry points (or the source tree), then developer ones."""
    from importlib.metadata import entry_points

    names = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if not names:
        root = Path(__file__).resolve().parent
        names = [m.name for m in pkgutil.walk_packages([str(root)], prefix="engines.")
                 if m.name.endswith(".manifest") and not m.name.startswith("engines.testing.")]
    dev = [n.strip() for n in os.environ.get(ENV_DEV_ENGINES, "").split(",") if n.strip()]
    return list(dict.fromkeys([*names, *dev]))


def _load_manifest(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise EngineNotFound(f"engine manifest {name!r} can't be imported: {exc}",
                             "reinstall Seed Studio (or fix SEED_STUDIO_DEV_ENGINES)") from exc


def _build() -> tuple[list[EngineEntry], list[ModelRecord]]:
    global _engines, _models
    with _lock:
        if _engines is None or _models is None:
            engines: list[EngineEntry] = []
            models: list[ModelRecord] = []
            for name in _manifest_modules():
                m = _load_manifest(name)
                engines += list(getattr(m, "ENGINES", []))
                models += list(getattr(m, "MODELS", []))
            for e, r in _extra:
                engines += e
                models += r
            _check(engines, models)
            _engines, _models = engines, models
        return _engines, _models


def _check(engines: list[EngineEntry], models: list[ModelRecord]) -> None:
    """Refuse duplicate ids: two manifests claiming one id is a packaging bug."""
    seen: set[str] = set()
    for e in engines:
        if e.id in seen:
            raise EngineNotFound(f"engine id {e.id!r} is declared twice", "reinstall Seed Studio")
        seen.add(e.id)
    seen = set()
    for r in models:
        if r.id in seen:
            raise EngineNotFound(f"model id {r.id!r} is declared twice", "reinstall Seed Studio")
        seen.add(r.id)


def reload() -> None:
    """Forget the collected manifests; the next lookup reads them again."""
    global _engines, _models
    with _lock:
        _engines = _models = None


def register(engines: list[EngineEntry] | tuple[EngineEntry, ...] = (),
             models: list[ModelRecord] | tuple[ModelRecord, ...] = ()) -> None:
    """Add entries and records at run time (tests and developer tools).

    Raises:
        EngineNotFound: an id is already taken (nothing is added).
    """
    with _lock:
        _extra.append((list(engines), list(models)))
        reload()
        try:
            _build()
        except EngineNotFound:
            _extra.pop()
            reload()
            raise


def unregister(engine_ids: list[str] | tuple[str, ...] = (), model_ids: list[str] | tuple[str, ...] = ()) -> None:
    """Remove entries and records added with :func:`register`."""
    with _lock:
        for i, (e, r) in enumerate(_extra):
            _extra[i] = ([x for x in e if x.id not in engine_ids], [x for x in r if x.id not in model_ids])
        reload()


def list_engines(task: str | None = None) -> list[EngineEntry]:
    """All engine entries, or those serving ``task``, in manifest order. Imports no engine."""
    return [e for e in _build()[0] if task is None or task in e.tasks]


def engines_for(task: str) -> list[EngineEntry]:
    """Engines serving ``task``.

    Raises:
        EngineNotFound: ``task`` is not a known task name.
    """
    if task not in TASKS:
        raise EngineNotFound(f"unknown task {task!r}", f"tasks are: {', '.join(TASKS)}")
    return list_engines(task)


def get_entry(engine_id: str) -> EngineEntry:
    """The entry registered as ``engine_id``.

    Raises:
        EngineNotFound: no such engine.
    """
    for e in _build()[0]:
        if e.id == engine_id:
            return e
    known = ", ".join(e.id for e in _build()[0])
    raise EngineNotFound(f"no engine named {engine_id!r}", f"known engines: {known}")


def get_engine_class(engine_id: str) -> type:
    """Import and return the engine class of ``engine_id`` (this imports its libraries).

    Raises:
        EngineNotFound: no such engine, or its module/class can't be imported
            (the message carries the import error).
    """
    entry = get_entry(engine_id)
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise EngineNotFound(
            f"engine {engine_id!r} can't be loaded: {exc}",
            "a library it needs may be missing; reinstall Seed Studio",
        ) from exc


def list_models(engine_id: str | None = None) -> list[ModelRecord]:
    """All model records, or those of one engine. Imports nothing."""
    return [m for m in _build()[1] if engine_id is None or m.engine == engine_id]


def models_for_task(task: str) -> list[ModelRecord]:
    """Model records of every engine serving ``task``, in engine order then the engine's
    own model order (its default first): the models an engine lists in its entry (another
    engine's record may serve it too, e.g. ACE-Step's base model for extraction) and the
    records that name it as their engine. Each model appears once."""
    out: list[ModelRecord] = []
    known = {m.id: m for m in _build()[1]}
    for e in list_engines(task):
        ids = [i for i in e.models if i in known] + [m.id for m in list_models(e.id) if m.id not in e.models]
        out += [known[i] for i in ids if known[i] not in out]
    return out


def engine_for_model(task: str, model_id: str) -> EngineEntry:
    """The engine that runs ``model_id`` for ``task``: the first engine serving the task
    that lists the model in its entry, else the model record's own engine.

    Raises:
        EngineNotFound: no engine serving ``task`` can run that model.
    """
    for e in list_engines(task):
        if model_id in e.models:
            return e
    m = get_model(model_id)
    entry = get_entry(m.engine)
    if task not in entry.tasks:
        raise EngineNotFound(f"model {model_id!r} can't {task.replace('_', ' ')}")
    return entry


def get_model(model_id: str) -> ModelRecord:
    """The model record ``model_id``.

    Raises:
        EngineNotFound: no such model (hint lists the known ids).
    """
    for m in _build()[1]:
        if m.id == model_id:
            return m
    known = ", ".join(m.id for m in _build()[1])
    raise EngineNotFound(f"no model named {model_id!r}", f"known models: {known}")
