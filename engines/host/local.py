"""An engine host that runs jobs in the calling process, through the host's own job loop.

:class:`LocalHost` has the interface of :class:`~engines.host.client.EngineHost` and runs
each job through the same code as the host process (:class:`~engines.host.process._Runner`:
engine cache, out-of-memory retries with smaller chunks, the outputs hook, provenance),
but in the caller's thread: no crash isolation and no kill on cancel (cancel is only
cooperative). It exists for tests and benchmarks that hand in an engine built in the
test (an identity separator, a model with injected weights); the app and the CLI always
use the real host process.
"""
from __future__ import annotations

import os
import tempfile
import threading
from typing import Any, Callable

from engines.base import JobResult, JobSpec, error_from_dict
from engines.host.process import _Runner
from engines.host.protocol import HostConfig, HostEvent, OutputsHook, spec_for_pipe


class _Collect:
    """A stand-in for the pipe: progress and log events go to ``on_event`` at once; the
    last result or error is kept."""

    def __init__(self, on_event: Callable[[HostEvent], None] | None):
        self.on_event = on_event
        self.final: dict[str, Any] | None = None

    def send(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind in ("progress", "log") and self.on_event is not None:
            self.on_event(msg)
        elif kind in ("result", "error"):
            self.final = msg


class LocalHost:
    """Run jobs in this process (see the module docstring).

    Args:
        config: host settings (OOM retry floor...).
        engines: engine id -> an engine instance to use instead of constructing one
            (loaded on first use with the device and dtype policy).
    """

    def __init__(self, config: HostConfig | None = None, *, engines: dict[str, Any] | None = None):
        self.config = config or HostConfig()
        self.engines = dict(engines or {})
        self._cancel = threading.Event()
        self._runner: _Runner | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        """This process's id (the jobs run here)."""
        return os.getpid()

    def is_alive(self) -> bool:
        return True

    def start(self) -> float:
        self.starts += 1
        return 0.0

    def stop(self, timeout: float = 2.0) -> None:
        if self._runner is not None:
            for engine in self._runner.cache.values():
                engine.unload()
            self._runner.cache.clear()

    def kill(self) -> None:
        self.stop()

    def cancel(self) -> None:
        self._cancel.set()

    def _runner_for(self, conn: _Collect, cancel: threading.Event) -> _Runner:
        runner = _Runner(conn, cancel, self.config)
        if self._runner is not None:
            runner.cache = self._runner.cache  # engines stay loaded between jobs
        injected = self.engines
        engine_for = runner.engine_for

        def engine_for_injected(spec: JobSpec) -> tuple[Any, str, str, float]:
            if spec.engine_id not in injected:
                return engine_for(spec)
            from engines.devices import choose_device, choose_dtype

            engine = injected[spec.engine_id]
            device = choose_device(spec.device, tuple(getattr(engine, "devices", ("cpu",))))
            dtype = choose_dtype(device, tuple(getattr(engine, "dtypes", ("float32",))), spec.dtype)
            if not getattr(engine, "loaded", False):
                engine.load(device, dtype)
            runner.cache[(spec.engine_id, device, dtype)] = engine
            return engine, device, dtype, 0.0

        runner.engine_for = engine_for_injected  # type: ignore[method-assign]
        self._runner = runner
        return runner

    def run(self, job_id: str, spec: JobSpec, on_event: Callable[[HostEvent], None] | None = None, *,
            work_dir: str | None = None, cancel: threading.Event | None = None,
            outputs_hook: OutputsHook | None = None) -> JobResult:
        """Run one job here; same contract as :meth:`EngineHost.run`.

        Raises:
            JobCancelled, OutOfMemory, EngineError: as the engine host reports them.
        """
        self._cancel.clear()
        event = cancel if cancel is not None else self._cancel
        work = work_dir or tempfile.mkdtemp(prefix="seed-job-")
        conn = _Collect(on_event)
        runner = self._runner_for(conn, event)
        hook = outputs_hook.to_dict() if outputs_hook is not None else None
        runner.run_job(job_id, spec_for_pipe(spec, work), hook)
        msg = conn.final or {"type": "error", "error": {"type": "EngineError", "message": "the job ended silently"}}
        if msg["type"] == "error":
            raise error_from_dict(msg["error"])
        return JobResult.from_dict(msg["result"])
