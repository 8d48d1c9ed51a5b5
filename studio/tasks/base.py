"""What every task has: a target in the project, a request schema, ``prepare`` and ``apply``.

A *task* (separate, transcribe, analyze, generate, extend, inpaint, add_stem, restyle,
convert_voice) is one home for everything that a job of that kind means:

* its **request schema** (:meth:`Task.request_schema`): a JSON Schema (draft 2020-12) of
  the task's own fields (stems, prompt, lyrics, length in bars or seconds, target
  voice...), the model, an optional local model folder (``model_path``), the seed and
  the engine's parameters (``params``, the engine's own schema for the chosen model).
  The app's dialog and the CLI's flags are both generated from it, so their defaults
  agree;
* :meth:`Task.prepare` ``(session, target, request, work_dir) -> JobSpec``: renders the
  input audio from the project into ``work_dir`` and builds the engine job;
* :meth:`Task.apply` ``(session, target, spec, result, media) -> Command``: turns the
  engine's result into ONE undoable command (not pushed: the caller pushes it on the
  thread that owns the undo stack).

The app (``ui.qt_bridge``), the CLI (:mod:`studio.cli.tasks`) and the tests all submit
through :mod:`studio.jobs.tasks`, which runs the spec in the engine host.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from engines.base import JobResult, JobSpec
from engines.records import EngineEntry, ModelRecord
from studio.errors import StudioError


class TaskError(StudioError):
    """A task request that can't be honoured: bad field, unknown model, wrong target."""


@dataclass(frozen=True)
class Target:
    """What a task works on in a project. Positions are samples at the project rate.

    Attributes:
        track_id: the source track (None: the result goes on a new track).
        start, end: the time range ``[start, end)``; None = the whole track (or, for
            generate, ``start`` is where the result is placed).
        track_ids: several source tracks (the context of add_stem).
        clip_id: the clip an extend continues.
        regions: several ``(start, end)`` ranges in one job (inpaint).
    """

    track_id: str | None = None
    start: int | None = None
    end: int | None = None
    track_ids: tuple[str, ...] = ()
    clip_id: str | None = None
    regions: tuple[tuple[int, int], ...] = ()

    def span(self, project: Any) -> tuple[int, int]:
        """``(start, end)``: the range, or the extent of the track's audio.

        Raises:
            TaskError: the track no longer exists, is not an audio track, or holds nothing.
        """
        if self.start is not None and self.end is not None:
            return int(self.start), int(self.end)
        if self.track_id is None:
            raise TaskError("the job has no source track and no time range")
        try:
            s, e = project.audio_track_span(self.track_id)
        except KeyError:
            raise TaskError(f"no track {self.track_id} in the project") from None
        except ValueError as exc:
            raise TaskError(str(exc)) from None
        return (s if self.start is None else int(self.start)), (e if self.end is None else int(self.end))

    def describe(self, project: Any) -> str:
        """``"'Drums', selection 3.1.1 (0:04.000) – 7.1.1 (0:12.000)"`` for dialogs and job
        titles: bar.beat.sixteenth on the project's tempo map, then minutes:seconds."""
        from studio.model.timebase import format_position

        sr = project.sample_rate
        tm = project.tempo_map

        def fmt(x: int) -> str:
            m, sec = divmod(x / sr, 60)
            return f"{format_position(tm, tm.sample_to_tick(x, sr))} ({int(m)}:{sec:06.3f})"

        names = []
        for tid in ([self.track_id] if self.track_id else []) + list(self.track_ids):
            try:
                names.append(f"'{project.track(tid).name}'")
            except KeyError:
                names.append("(deleted track)")
        what = ", ".join(dict.fromkeys(names)) or "a new track"
        if self.regions:
            return f"{what}, {len(self.regions)} region(s)"
        if self.start is not None and self.end is not None:
            return f"{what}, selection {fmt(int(self.start))} – {fmt(int(self.end))}"
        if self.start is not None:
            return f"{what} at {fmt(int(self.start))}"
        return f"{what}, whole track"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        d = dataclasses.asdict(self)
        d["track_ids"] = list(self.track_ids)
        d["regions"] = [list(r) for r in self.regions]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Target:
        """Inverse of :meth:`to_dict`."""
        return cls(track_id=d.get("track_id"), start=d.get("start"), end=d.get("end"),
                   track_ids=tuple(d.get("track_ids") or ()), clip_id=d.get("clip_id"),
                   regions=tuple(tuple(int(x) for x in r) for r in d.get("regions") or ()))


@dataclass
class Request:
    """A validated request: the request dict with defaults filled, and what it names.

    Attributes:
        task: the task name.
        model: the chosen model record; engine: its engine entry.
        model_path: a local model folder or file used instead of the record's files, or None.
        seed: the random seed.
        fields: the task's own fields (defaults filled).
        params: the engine parameters (defaults filled, validated).
        device: device override ("cpu", "cuda", ...) or None.
    """

    task: str
    model: ModelRecord
    engine: EngineEntry
    model_path: str | None
    seed: int
    fields: dict[str, Any]
    params: dict[str, Any]
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The request as a plain dict (what :meth:`Task.resolve` accepts)."""
        return {"model": self.model.id, "model_path": self.model_path, "seed": self.seed, "device": self.device,
                **self.fields, "params": dict(self.params)}

    def spec_fields(self) -> dict[str, Any]:
        """The :class:`~engines.base.JobSpec` fields every task sets from the request. A task
        field with the name of an engine parameter (e.g. ``context_seconds``) is passed to the
        engine as that parameter: the task's setting is the one the musician sees."""
        params = dict(self.params)
        engine_props = self.engine.param_schema.get("properties") or {}
        params.update({k: v for k, v in self.fields.items() if k in engine_props})
        return {"engine_id": self.engine.id, "model_id": self.model.id, "model_path": self.model_path,
                "params": params, "seed": int(self.seed), "device": self.device}


MODEL_PATH_DESCRIPTION = ("A local model folder or file (a fine-tune, an offline copy) used as is instead of the "
                          "model's downloaded files; its path and file hashes go into the take's provenance.")


class Task:
    """Base class of the task modules (see the module docstring).

    Class attributes:
        name: the task name (``engines.base.TASKS``); also the CLI command (``_`` -> ``-``).
        title: menu title ("Separate stems…").
        description: one sentence for the dialog and ``--help``.
        engine_task: the engine task it runs (default: ``name``).
        fields: JSON Schema ``properties`` of the task's own fields; every property has
            ``title``, ``description`` and (unless required) ``default``.
        required: names of fields without a default.
        model_aliases: short names accepted for model ids (``"dsp"``).
        preferred_model: the default model id (default: the first model of the first engine).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    engine_task: ClassVar[str] = ""
    fields: ClassVar[dict[str, dict[str, Any]]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    model_aliases: ClassVar[dict[str, str]] = {}
    preferred_model: ClassVar[str | None] = None

    # ------------------------------------------------------------------ models and schema

    def runs(self) -> str:
        """The engine task name this task runs."""
        return self.engine_task or self.name

    def models(self) -> list[ModelRecord]:
        """Every model that can run this task (their engines serve :meth:`runs`)."""
        from engines.registry import models_for_task

        return models_for_task(self.runs())

    def default_model(self) -> ModelRecord:
        """The model used when a request names none.

        Raises:
            TaskError: no engine can do this task.
        """
        models = self.models()
        if not models:
            raise TaskError(f"no engine can {self.name.replace('_', ' ')} in this installation")
        if self.preferred_model:
            for m in models:
                if m.id == self.preferred_model:
                    return m
        return models[0]

    def model(self, model_id: str | None) -> ModelRecord:
        """The model record for ``model_id`` (an id or an alias; None = the default).

        Raises:
            TaskError: no such model for this task (the message lists the choices).
        """
        if model_id is None:
            return self.default_model()
        model_id = self.model_aliases.get(model_id, model_id)
        for m in self.models():
            if m.id == model_id:
                return m
        choices = ", ".join([*(m.id for m in self.models()), *self.model_aliases])
        raise TaskError(f"'{model_id}' is not a model for {self.name.replace('_', ' ')} (models: {choices})")

    def engine_for(self, model: ModelRecord) -> EngineEntry:
        """The engine that runs ``model`` for this task (see :func:`engines.registry.engine_for_model`)."""
        from engines.registry import engine_for_model

        return engine_for_model(self.runs(), model.id)

    def field_schema(self, model: ModelRecord | None = None) -> dict[str, dict[str, Any]]:
        """The task's own fields for ``model`` (subclasses narrow enums, e.g. the stems)."""
        return json.loads(json.dumps(self.fields))

    def request_schema(self, model_id: str | None = None) -> dict[str, Any]:
        """The full request schema for the given model (default: the default model).

        Properties: ``model``, ``model_path``, ``seed``, ``device``, the task's fields,
        and ``params`` (the model's engine's parameter schema).
        """
        model = self.model(model_id)
        entry = self.engine_for(model)
        model_ids = [m.id for m in self.models()]
        props: dict[str, Any] = {
            "model": {"type": "string", "enum": model_ids + [a for a in self.model_aliases if a not in model_ids],
                      "default": self.default_model().id, "title": "Model",
                      "description": "Which model runs the job (see `seed-studio models list` for licences "
                                     "and sizes)."},
            "model_path": {"type": ["string", "null"], "default": None, "title": "Model folder",
                           "description": MODEL_PATH_DESCRIPTION},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0, "title": "Seed",
                     "description": "Random seed: the same seed and settings give the same result."},
            "device": {"type": ["string", "null"], "default": None, "title": "Device",
                       "description": "cpu, cuda, cuda:N or mps; empty = the best available."},
        }
        props.update(self.field_schema(model))
        props["params"] = self.engine_schema(entry)
        props["params"].setdefault("title", f"{entry.title or entry.id} settings")
        return {"type": "object", "title": self.title, "description": self.description, "properties": props,
                "required": list(self.required), "additionalProperties": False}

    def engine_schema(self, entry: EngineEntry) -> dict[str, Any]:
        """The engine's parameter schema as this task sees it: parameters marked for other
        tasks only (``"x-tasks": [...]`` in the property) are left out."""
        schema = json.loads(json.dumps(entry.param_schema))
        props = schema.get("properties") or {}
        schema["properties"] = {k: v for k, v in props.items()
                                if not isinstance(v, dict) or self.runs() in v.get("x-tasks", [self.runs()])}
        return schema

    def resolve(self, request: dict[str, Any] | None) -> Request:
        """Validate a request dict against :meth:`request_schema` and fill defaults.

        Raises:
            TaskError: a field is missing, of the wrong type or out of range (the message
                names the field and the problem), the model is unknown, or the model
                folder does not exist or can't be used with that model.
        """
        import jsonschema

        from engines.base import EngineError, resolve_params

        req = dict(request or {})
        model = self.model(req.get("model"))
        req["model"] = model.id
        schema = self.request_schema(model.id)
        props = schema["properties"]
        full = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
        full.update({k: v for k, v in req.items() if v is not None or k in ("model_path", "device")})
        full["params"] = dict(req.get("params") or {})
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(full))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path if not isinstance(p, int)) or "request"
            message = error.message
            hint = error.schema.get("x-pattern-words") if isinstance(error.schema, dict) else None
            if error.validator == "pattern" and hint:
                message = f"{error.instance!r} is not {hint}"
            raise TaskError(f"{self.name.replace('_', ' ')}: {where}: {message}")
        entry = self.engine_for(model)
        unused = sorted(set(full["params"]) - set(props["params"].get("properties") or {}))
        if unused and (props["params"].get("additionalProperties") is not False):
            raise TaskError(f"{entry.title or entry.id} has no setting '{unused[0]}' for "
                            f"{self.name.replace('_', ' ')}")
        try:
            params = resolve_params(props["params"], full["params"])
        except EngineError as exc:
            raise TaskError(str(exc)) from None
        model_path = full.get("model_path") or None
        if model_path is not None:
            if not entry.accepts_model_path:
                raise TaskError(f"{entry.title or entry.id} can't load a model folder; choose a model instead")
            if not Path(model_path).expanduser().exists():
                raise TaskError(f"model folder '{model_path}' does not exist")
            model_path = str(Path(model_path).expanduser().resolve())
        fields = {k: full[k] for k in self.field_schema(model) if k in full}
        self.check_fields(fields)
        return Request(task=self.name, model=model, engine=entry, model_path=model_path, seed=int(full["seed"]),
                       fields=fields, params=params, device=full.get("device") or None)

    def check_fields(self, fields: dict[str, Any]) -> None:
        """Checks that a schema can't express (e.g. "bars or seconds, not both").

        Raises:
            TaskError: a field combination is not allowed.
        """

    # ------------------------------------------------------------------ project work

    def input_tracks(self, project: Any, target: Target, request: Request) -> list[str]:
        """Track ids whose audio :meth:`prepare` renders (a snapshot copies only these)."""
        ids = ([target.track_id] if target.track_id else []) + list(target.track_ids)
        if request.fields.get("controls"):
            from studio.tasks.controls import source_tracks

            ids += source_tracks(project, request.fields["controls"])
        return list(dict.fromkeys(ids))

    def check_target(self, project: Any, target: Target, request: Request) -> None:
        """Refuse a target the task can't work on, before any work starts (on the caller's
        thread, so the musician hears at once).

        Raises:
            TaskError: unknown track, wrong kind of track, empty range...
        """
        for tid in self.input_tracks(project, target, request):
            try:
                project.track(tid)
            except KeyError:
                raise TaskError(f"no track {tid} in the project") from None

    def need_audio_track(self, project: Any, target: Target) -> Any:
        """The target's track, which must be an audio track with audio in the range.

        Raises:
            TaskError: no track chosen, a MIDI track, an empty track or range.
        """
        verb = self.name.replace("_", " ")
        if target.track_id is None:
            raise TaskError(f"choose the track to {verb}")
        try:
            track = project.track(target.track_id)
        except KeyError:
            raise TaskError(f"no track {target.track_id} in the project") from None
        if track.kind != "audio":
            raise TaskError(f"track '{track.name}' is a MIDI track; {verb} an audio track")
        start, end = target.span(project)
        if end <= start or start < 0:
            raise TaskError(f"the range {start}..{end} samples is empty")
        return track

    def render_target(self, session: Any, target: Target, work_dir: Path,
                      margin: int = 0) -> tuple[str, tuple[int, int], tuple[int, int]]:
        """Render the target track over its range plus ``margin`` samples each side (clamped
        at the project start) into ``work_dir``.

        Returns:
            ``(wav path, (start, end) of the range, (before, after) margins rendered)``:
            a spec's ``audio``, ``region`` and ``context``.
        """
        from studio.jobs.inputs import render_input

        project = session.project
        start, end = target.span(project)
        a, b = max(0, start - int(margin)), end + int(margin)
        wav = render_input(project, session.pool, [target.track_id], a, b, work_dir)
        return wav, (start, end), (start - a, b - end)

    def prepare(self, session: Any, target: Target, request: Request, work_dir: Path) -> JobSpec:
        """Render the input into ``work_dir`` and build the engine job. May run on a worker
        thread with a snapshot of the project (``session.project``) and the real pool.

        Raises:
            TaskError: the target can't be worked on. RenderError: missing media.
        """
        raise NotImplementedError

    def apply(self, session: Any, target: Target, request: Request, spec: JobSpec, result: JobResult,
              media: dict[str, Any]) -> Any:
        """ONE undoable command that puts the result into the project (not pushed), or None
        when there is nothing to add.

        Args:
            media: output name -> :class:`~studio.model.project.MediaItem` already in the pool.

        Raises:
            TaskError: the result no longer fits the project (e.g. the track was deleted).
        """
        raise NotImplementedError

    def summary(self, result: JobResult, spec: JobSpec) -> str:
        """One plain-words line about the result, for the CLI and the jobs panel."""
        n = len(result.outputs) + len(result.stored)
        return f"{n} result(s)" if n else "finished"

    def label(self, project: Any, target: Target, request: Request) -> str:
        """The job's display name."""
        return f"{self.title.rstrip('…')} · {request.engine.title or request.engine.id} · {target.describe(project)}"
