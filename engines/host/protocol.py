"""What the studio and the engine host say to each other: settings, the outputs hook,
messages and their JSON payloads.

Messages are plain dicts over a ``multiprocessing`` pipe. Studio -> host:
``{"op": "run", "job_id", "spec", "outputs_hook"?}``, ``{"op": "preload", "spec"}``,
``{"op": "status"}``, ``{"op": "ping"}``, ``{"op": "shutdown"}``. Host -> studio:
``{"type": "ready", "pid"}``, ``{"type": "progress", "job_id", "fraction", "stage", "eta"}``,
``{"type": "log", "job_id", "text"}``, ``{"type": "heartbeat"}`` (every
``HostConfig.heartbeat_interval`` seconds from a thread of its own, so a stopped or
hung host is noticed), ``{"type": "result", "job_id", "result"}``, ``{"type": "error",
"job_id", "error"}``, ``{"type": "preloaded"|"status"|"pong"|"bye", ...}``.
"""
from __future__ import annotations

import os
import signal
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.base import JobSpec, write_output

ENV_HANG_TIMEOUT = "SEED_STUDIO_HOST_HANG_TIMEOUT"

HostEvent = dict
"""An event from a running job: ``{"type": "progress", "fraction", "stage", "eta"}`` or
``{"type": "log", "text"}``."""


@dataclass
class HostConfig:
    """Settings of one host process.

    Attributes:
        max_loaded: engines kept loaded at once (least recently used unloaded first).
        min_free_bytes: unload LRU engines before a load while the device has less free
            memory than this (CUDA: ``torch.cuda.mem_get_info``; CPU: MemAvailable).
        min_chunk_scale: smallest ``chunk_scale`` tried on out-of-memory retries.
        env: environment variables set in the host process before anything is imported.
        nice: added to the host's POSIX nice value at start (0 = the studio's priority).
            Jobs are throughput work; the window and audio playback are not.
        batch_policy: also use Linux's ``SCHED_BATCH`` policy (CPU-bound, never
            preempts interactive threads early).
        heartbeat_interval: seconds between the host's heartbeat messages.
        hang_timeout: seconds without any message (progress, log or heartbeat) after
            which a running job's host counts as not responding: it is killed and the
            job fails with :class:`~engines.base.HostNotResponding`. Default 60 s, or the
            environment variable ``SEED_STUDIO_HOST_HANG_TIMEOUT``.
    """

    max_loaded: int = 2
    min_free_bytes: int = 512 * 1024 * 1024
    min_chunk_scale: float = 1.0 / 16
    env: dict[str, str] | None = None
    nice: int = 10
    batch_policy: bool = True
    heartbeat_interval: float = 1.0
    hang_timeout: float = field(default_factory=lambda: float(os.environ.get(ENV_HANG_TIMEOUT) or 60.0))


@dataclass
class OutputsHook:
    """A function the host calls on a job's outputs before returning them.

    Attributes:
        target: ``"package.module:function"``. It is called in the host process as
            ``function(outputs, sample_rate, progress=reporter, **kwargs)`` where
            ``outputs`` maps output names to float32 ``(channels, frames)`` arrays or
            audio file paths, ``sample_rate`` is the arrays' rate (Hz, or None) and
            ``reporter`` a :class:`~engines.base.ProgressReporter`. It returns
            ``{output name: JSON-able record}`` for the outputs it stored; those leave
            ``JobResult.outputs`` and arrive in ``JobResult.stored``.
        kwargs: JSON-able keyword arguments.

    Errors the function raises fail the job with a message naming the cause.
    """

    target: str
    kwargs: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kwargs": dict(self.kwargs or {})}


def jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` as plain JSON types (numpy scalars/arrays -> numbers/lists), so that results
    can go into ``project.json`` as provenance without surprises."""
    import json

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (set, tuple)):
            return list(o)
        return str(o)

    return json.loads(json.dumps(d, default=default))


def _takes_dtype(engine: Any) -> bool:
    import inspect

    try:
        return len(inspect.signature(engine.load).parameters) >= 2
    except (TypeError, ValueError):
        return False


def spec_for_pipe(spec: JobSpec, work_dir: str | None) -> dict[str, Any]:
    """``spec.to_dict()`` with array inputs written as WAV files into ``work_dir``."""
    changes: dict[str, Any] = {}
    if isinstance(spec.audio, np.ndarray):
        if spec.sample_rate is None:
            from engines.base import InvalidJob

            raise InvalidJob("input audio array has no sample rate")
        work_dir = work_dir or tempfile.mkdtemp(prefix="seed-job-")
        changes["audio"] = write_output(spec.audio, spec.sample_rate, work_dir, "input")
    controls = getattr(spec, "controls", None)
    if isinstance(controls, dict) and any(isinstance(v, np.ndarray) for v in controls.values()):
        work_dir = work_dir or tempfile.mkdtemp(prefix="seed-job-")
        changes["controls"] = {
            k: write_output(v, spec.sample_rate or 44100, work_dir, f"control-{k}") if isinstance(v, np.ndarray) else v
            for k, v in controls.items()
        }
    if work_dir is not None and spec.output_dir is None:
        changes["output_dir"] = os.path.join(work_dir, "out")
    return (spec.replace(**changes) if changes else spec).to_dict()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " - possibly out of memory" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"

