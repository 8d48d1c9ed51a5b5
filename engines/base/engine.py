"""The Engine protocol, a base class with its bookkeeping, and parameter validation."""
from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from engines.base.audio import sha256_audio
from engines.base.errors import InvalidJob
from engines.base.progress import CancelToken, ProgressReporter
from engines.base.results import JobResult, Provenance
from engines.base.specs import JobSpec

# --------------------------------------------------------------------------- engines


@runtime_checkable
class Engine(Protocol):
    """What every engine implements. Engines live in ``engines/<task>/`` and are listed
    in ``engines/registry.py``; the host constructs them with no arguments.

    Attributes:
        id: registry id (e.g. "htdemucs").
        tasks: task names served (see :data:`TASKS`).
        param_schema: JSON Schema (draft 2020-12, ``type: object``) of ``spec.params``;
            the UI turns it into a form. Give every property a ``default``,
            ``title`` and ``description``.
        dtypes: dtypes the engine can run in on GPU, preferred first
            (``("bfloat16", "float16", "float32")``); ``("float32",)`` if unsure.
        devices: (optional, default ``("cuda", "mps", "cpu")``) device kinds it can use;
            ``("cpu",)`` for CPU-only engines, which then never make the host import torch.
    """

    id: str
    tasks: tuple[str, ...]
    param_schema: dict[str, Any]
    dtypes: tuple[str, ...]

    def load(self, device: str, dtype: str = "float32") -> None:
        """Load weights onto ``device`` in ``dtype``. Raises ModelNotInstalled, OutOfMemory."""

    def unload(self) -> None:
        """Free all device memory held by the engine."""

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Run one job. Call ``progress(fraction, stage)`` and ``cancel.raise_if_cancelled()``
        at least once per chunk. Raise EngineError subclasses for expected failures."""


class EngineBase:
    """Convenience base class implementing the bookkeeping of :class:`Engine`.

    Subclasses set ``entry`` to their :class:`~engines.records.EngineEntry` (from the
    package's ``manifest.py``), which gives ``id``, ``tasks`` and ``param_schema``;
    optionally ``dtypes``, ``devices`` and ``version``. They and override :meth:`_load`/:meth:`_unload`/:meth:`run`.
    ``self.device``/``self.dtype`` hold what :meth:`load` was given.
    """

    entry: ClassVar[Any] = None
    id: str = ""
    tasks: tuple[str, ...] = ()
    param_schema: dict[str, Any] = {"type": "object", "properties": {}}
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[str, ...] = ("cuda", "mps", "cpu")
    version: str = "0"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entry = cls.__dict__.get("entry")
        if entry is not None:  # identity stated once, in the package's manifest
            cls.id, cls.tasks, cls.param_schema = entry.id, tuple(entry.tasks), entry.param_schema

    def __init__(self) -> None:
        self.device: str | None = None
        self.dtype: str = "float32"
        self.loaded = False

    def load(self, device: str, dtype: str = "float32") -> None:
        """Load onto ``device`` (no-op if already loaded there in that dtype)."""
        if self.loaded and self.device == device and self.dtype == dtype:
            return
        if self.loaded:
            self.unload()
        self._load(device, dtype)
        self.device, self.dtype, self.loaded = device, dtype, True

    def unload(self) -> None:
        """Release the model."""
        if self.loaded:
            self._unload()
        self.loaded = False

    def _load(self, device: str, dtype: str) -> None:  # pragma: no cover - default
        pass

    def _unload(self) -> None:  # pragma: no cover - default
        pass

    def memory_bytes(self) -> int:
        """Approximate device memory held while loaded (used by the host's LRU)."""
        return 0

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        raise NotImplementedError

    def provenance(self, spec: JobSpec, **extra: Any) -> Provenance:
        """A :class:`Provenance` pre-filled from this engine and ``spec`` (inputs hashed)."""
        inputs: dict[str, str] = {}
        if spec.audio is not None:
            try:
                inputs["audio"] = sha256_audio(spec.audio)
            except OSError:
                pass
        return Provenance(
            engine_id=self.id,
            engine_version=self.version,
            model_id=spec.model_id,
            task=spec.task,
            seed=spec.seed,
            params=dict(spec.params),
            input_sha256=inputs,
            device=self.device or "cpu",
            dtype=self.dtype,
            chunk_scale=spec.chunk_scale,
            extra=extra,
        )


def resolve_params(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults from a JSON Schema and validate ``params`` against it.

    Args:
        schema: an object schema with ``properties`` (each may have ``default``).
        params: user parameters.

    Returns:
        A new dict: defaults for missing keys, then the given values.

    Raises:
        InvalidJob: the parameters don't satisfy the schema (message names the field).

    Validation uses the ``jsonschema`` library.
    """
    out = {
        k: v["default"]
        for k, v in (schema.get("properties") or {}).items()
        if isinstance(v, dict) and "default" in v
    }
    out.update(params or {})
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(out))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "params"
        raise InvalidJob(f"parameter '{where}': {error.message}")
    return out


_VALIDATORS: dict[str, Any] = {}


def _validator(schema: dict[str, Any]) -> Any:
    """A cached ``jsonschema`` validator for ``schema`` (checking a schema costs ~20 ms)."""
    import json

    import jsonschema

    key = json.dumps(schema, sort_keys=True, default=str)
    v = _VALIDATORS.get(key)
    if v is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = _VALIDATORS[key] = cls(schema)
    return v

