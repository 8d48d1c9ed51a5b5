"""The engine host: a separate process that runs engine jobs, one at a time.

:class:`EngineHost` lives in the studio process; it starts the host process with the
``multiprocessing`` *spawn* context and talks to it over a ``Pipe``. The host process
(:func:`host_main`) imports engines lazily from ``engines.registry``, keeps loaded
engines between jobs (an LRU cache, unloading the least recently used when more than
``max_loaded`` are loaded or the device runs low on memory), and streams progress
(fraction, stage, ETA) and log lines back while a job runs.

Failure handling:

* cancel: a shared ``multiprocessing.Event`` is set; engines see it through their
  :class:`~engines.base.CancelToken` at chunk boundaries. If the job hasn't ended after
  ``cancel_grace`` seconds (default 1 s), the host process is killed. Either way the
  job ends with :class:`~engines.base.JobCancelled` within about 1.5 s.
* host death (crash, SIGKILL, out of host memory): the job fails with
  :class:`~engines.base.HostCrashed` naming the exit code or signal; the next job starts
  a fresh host.
* GPU out of memory (``torch.cuda.OutOfMemoryError`` or
  :class:`~engines.base.OutOfMemory`): the host unloads other engines, empties the
  allocator cache and retries the job with ``chunk_scale`` halved, down to
  ``min_chunk_scale``; then the job fails with ``OutOfMemory``.

Messages are plain dicts (JSON-able): the spec goes as ``JobSpec.to_dict()`` with
audio arrays replaced by WAV files, and results come back as ``JobResult.to_dict()``
with output audio as file paths.

Keeping the studio responsive:

* the host runs at a lower CPU priority than the studio (``HostConfig.nice``, and the
  ``SCHED_BATCH`` policy on Linux), set before any worker thread exists, so that every
  thread of the host yields to the UI and to audio playback on a busy machine;
* an *outputs hook* (``run(..., outputs_hook=OutputsHook(...))``) stores the outputs in
  the host process: the studio names a function (``"module:function"``) that takes the
  output arrays or files and returns a JSON record per output (the job manager uses it
  to import stems straight into the project's media pool). The heavy work of hashing,
  writing and building peaks then holds no lock in the studio process, and arrays are
  written once instead of twice. The host resolves the name at run time; ``engines``
  imports nothing of the studio.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import types
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import numpy as np

from engines.base import (
    CancelToken,
    EngineError,
    HostCrashed,
    JobCancelled,
    JobResult,
    JobSpec,
    OutOfMemory,
    ProgressReporter,
    error_from_dict,
    is_out_of_memory,
    write_output,
)

log = logging.getLogger(__name__)

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
    """

    max_loaded: int = 2
    min_free_bytes: int = 512 * 1024 * 1024
    min_chunk_scale: float = 1.0 / 16
    env: dict[str, str] | None = None
    nice: int = 10
    batch_policy: bool = True


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


def _resolve(target: str) -> Callable[..., Any]:
    """The function named ``"module:function"``. Raises EngineError when it doesn't exist."""
    import importlib

    module, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise EngineError(f"outputs hook {target!r} not found: {exc}", "this is a bug; see the log") from None
    if not callable(fn):
        raise EngineError(f"outputs hook {target!r} is not callable", "this is a bug; see the log")
    return fn


def lower_priority(nice: int, batch: bool) -> None:
    """Lower the calling process's CPU priority: ``nice`` steps and, on Linux, the
    ``SCHED_BATCH`` policy. Best effort (ignored where the OS refuses or lacks it).

    Linux keeps both per thread, and new threads inherit them from their creator, so
    this sets every thread that exists now (e.g. the BLAS pool numpy started on import)
    and every thread started later inherits it."""
    task_dir = f"/proc/{os.getpid()}/task"
    tids = [int(t) for t in os.listdir(task_dir)] if os.path.isdir(task_dir) else [0]
    for tid in tids:
        if nice > 0 and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):
                current = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(19, current + int(nice)))
        if batch and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))


# =========================================================================== host process side


class _Runner:
    """State of the host process: the engine cache and the job loop."""

    def __init__(self, conn: Any, cancel_event: Any, config: HostConfig):
        self.conn = conn
        self.cancel_event = cancel_event
        self.config = config
        self.cache: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self.send_lock = threading.Lock()
        self.job_id: str | None = None

    def send(self, msg: dict[str, Any]) -> None:
        with self.send_lock:
            self.conn.send(msg)

    # -------------------------------------------------------------- engine cache

    def _evict(self, device: str, keep: tuple[str, str, str] | None = None, *, all_others: bool = False) -> None:
        from engines.devices import empty_cache, free_memory

        def victims() -> list[tuple[str, str, str]]:
            return [k for k in self.cache if k != keep]

        while victims():
            over = len(self.cache) > self.config.max_loaded - (0 if keep in self.cache else 1)
            free = free_memory(device)
            low = free is not None and free < self.config.min_free_bytes
            if not (all_others or over or low):
                break
            key = victims()[0]
            engine = self.cache.pop(key)
            try:
                engine.unload()
            finally:
                empty_cache(key[1])
            self.send({"type": "log", "job_id": self.job_id, "text": f"unloaded engine {key[0]} from {key[1]}"})

    def engine_for(self, spec: JobSpec) -> tuple[Any, str, str, float]:
        """Get (and load if needed) the engine for ``spec``. Returns (engine, device, dtype, load_seconds)."""
        from engines.devices import choose_device, choose_dtype
        from engines.registry import get_engine_class

        cls = get_engine_class(spec.engine_id)
        devices = tuple(getattr(cls, "devices", ("cuda", "mps", "cpu")))
        device = choose_device(spec.device, devices)
        dtype = choose_dtype(device, tuple(getattr(cls, "dtypes", ("float32",))), spec.dtype)
        key = (spec.engine_id, device, dtype)
        t0 = time.monotonic()
        engine = self.cache.get(key)
        if engine is None:
            self._evict(device, keep=None)
            engine = cls()
            engine.load(device, dtype) if _takes_dtype(engine) else engine.load(device)
            self.cache[key] = engine
        self.cache.move_to_end(key)
        return engine, device, dtype, time.monotonic() - t0

    # -------------------------------------------------------------- jobs

    def run_job(self, job_id: str, spec_dict: dict[str, Any], hook: dict[str, Any] | None = None) -> None:
        self.job_id = job_id  # the studio side clears cancel_event before sending the job
        t_start = time.monotonic()

        def sink(fraction: float, stage: str, eta: float | None) -> None:
            self.send({"type": "progress", "job_id": job_id, "fraction": fraction, "stage": stage, "eta": eta})

        def log_sink(text: str) -> None:
            self.send({"type": "log", "job_id": job_id, "text": text})

        try:
            reporter = ProgressReporter(sink, log_sink)
            reporter(0.0, "starting")  # immediate feedback, before any engine work
            spec = JobSpec.from_dict(spec_dict)
            cancel = CancelToken(self.cancel_event)
            engine, device, dtype, load_s = self.engine_for(spec)
            engine_progress = reporter.sub(0.0, 0.97) if hook else reporter
            attempt_progress = engine_progress
            while True:
                cancel.raise_if_cancelled()
                t_run = time.monotonic()
                try:
                    result = engine.run(spec, attempt_progress, cancel)
                    break
                except Exception as exc:
                    if not is_out_of_memory(exc) or isinstance(exc, JobCancelled):
                        raise
                    from engines.devices import empty_cache

                    key = (spec.engine_id, device, dtype)
                    self._evict(device, keep=key, all_others=True)
                    empty_cache(device)
                    new_scale = spec.chunk_scale / 2
                    if new_scale < self.config.min_chunk_scale:
                        raise OutOfMemory(
                            f"{device} ran out of memory even with chunks at {spec.chunk_scale:g}x their size: {exc}"
                        ) from None
                    log_sink(f"out of memory on {device}; retrying with chunk_scale {new_scale:g}")
                    spec = spec.replace(chunk_scale=new_scale)
                    attempt_progress = engine_progress.sub(engine_progress.fraction, 1.0)
            if hook:
                cancel.raise_if_cancelled()
                result = self._store_outputs(hook, result, spec, reporter.sub(0.97, 1.0), cancel)
            result = self._finish(result, spec, engine, device, dtype, load_s, t_run, t_start)
            self.send({"type": "result", "job_id": job_id, "result": _jsonable(result.to_dict())})
        except JobCancelled as exc:
            self.send({"type": "error", "job_id": job_id, "error": exc.to_dict()})
        except EngineError as exc:
            self.send({"type": "error", "job_id": job_id, "error": exc.to_dict()})
        except Exception as exc:  # an engine bug: report it, keep the host alive
            if is_out_of_memory(exc):
                err = OutOfMemory(f"out of memory: {exc}")
            else:
                err = EngineError(
                    f"engine {spec_dict.get('engine_id')!r} failed: {type(exc).__name__}: {exc}",
                    "this is a bug in the engine; the log has the details",
                )
            self.send({"type": "log", "job_id": job_id, "text": traceback.format_exc()})
            self.send({"type": "error", "job_id": job_id, "error": err.to_dict()})
        finally:
            self.job_id = None

    @staticmethod
    def _store_outputs(hook: dict[str, Any], result: JobResult, spec: JobSpec,
                       progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Run the outputs hook (see :class:`OutputsHook`) on ``result.outputs``.

        Its progress calls check ``cancel``, so a cancel while saving stops cleanly
        between outputs (the hook's own cleanup runs) instead of the host being killed."""
        if not isinstance(result, JobResult) or not result.outputs:
            return result
        fn = _resolve(str(hook.get("target", "")))

        def checked(fraction: float, stage: str = "") -> None:
            cancel.raise_if_cancelled()
            progress(fraction, stage)

        checked(0.0, "saving results")
        try:
            stored = fn(dict(result.outputs), result.sample_rate, progress=checked, **(hook.get("kwargs") or {}))
        except EngineError:
            raise
        except OSError as exc:
            raise EngineError(f"the results of {spec.engine_id!r} could not be saved: {exc}",
                              "check the free disk space and that the project folder is writable") from None
        except Exception as exc:
            log.exception("outputs hook %s failed", hook.get("target"))
            raise EngineError(f"the results of {spec.engine_id!r} could not be saved: {exc}",
                              "the engine produced audio that can't be stored; see the log") from None
        stored = dict(stored or {})
        for name in stored:
            result.outputs.pop(name, None)
        result.stored.update(stored)
        progress(1.0, "saving results")
        return result

    def _finish(self, result: JobResult, spec: JobSpec, engine: Any, device: str, dtype: str,
                load_s: float, t_run: float, t_start: float) -> JobResult:
        if not isinstance(result, JobResult):
            raise EngineError(f"engine {spec.engine_id!r} returned {type(result).__name__}, not a JobResult")
        # Arrays never cross the pipe: write them as float WAV files.
        arrays = {k: v for k, v in result.outputs.items() if isinstance(v, np.ndarray)}
        if arrays:
            out_dir = spec.output_dir or tempfile.mkdtemp(prefix="seed-job-")
            if result.sample_rate is None:
                raise EngineError(f"engine {spec.engine_id!r} returned arrays without a sample rate")
            for k, v in arrays.items():
                result.outputs[k] = write_output(v, result.sample_rate, out_dir, k)
        prov = result.provenance
        prov.engine_id = prov.engine_id or spec.engine_id
        prov.task = prov.task or spec.task
        prov.model_id = prov.model_id or spec.model_id
        prov.seed = spec.seed if prov.seed is None else prov.seed
        prov.device, prov.dtype, prov.chunk_scale = device, dtype, spec.chunk_scale
        if prov.model_id and (prov.licence is None or prov.revision is None):
            try:
                from engines.registry import get_model

                rec = get_model(prov.model_id)
                prov.licence = prov.licence or rec.licence
                prov.revision = prov.revision or rec.revision
            except EngineError:
                pass
        now = time.monotonic()
        prov.timings.update({"load": round(load_s, 6), "run": round(now - t_run, 6), "total": round(now - t_start, 6)})
        prov.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return result

    def preload(self, spec_dict: dict[str, Any]) -> dict[str, Any]:
        spec = JobSpec.from_dict(spec_dict)
        _engine, device, dtype, load_s = self.engine_for(spec)
        return {"device": device, "dtype": dtype, "load": load_s}

    def loop(self) -> None:
        self.send({"type": "ready", "pid": os.getpid()})
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                return  # the studio went away
            op = msg.get("op")
            if op == "run":
                self.run_job(msg["job_id"], msg["spec"], msg.get("outputs_hook"))
            elif op == "preload":
                try:
                    self.send({"type": "preloaded", **self.preload(msg["spec"])})
                except EngineError as exc:
                    self.send({"type": "error", "job_id": None, "error": exc.to_dict()})
            elif op == "status":
                self.send({"type": "status", "loaded": [list(k) for k in self.cache], "pid": os.getpid(),
                           "torch_imported": "torch" in sys.modules, "qt_imported": "PyQt6" in sys.modules})
            elif op == "ping":
                self.send({"type": "pong"})
            elif op == "shutdown":
                for engine in self.cache.values():
                    try:
                        engine.unload()
                    except Exception:
                        pass
                self.send({"type": "bye"})
                return


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
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


class _PipeLogHandler(logging.Handler):
    def __init__(self, runner: _Runner):
        super().__init__(logging.INFO)
        self.runner = runner

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.runner.send({"type": "log", "job_id": self.runner.job_id, "text": self.format(record)})
        except Exception:
            pass


def host_main(conn: Any, cancel_event: Any, config: HostConfig) -> None:
    """Entry point of the host process (target of the spawned ``Process``)."""
    if config.env:
        os.environ.update(config.env)
    lower_priority(config.nice, config.batch_policy)  # before the engines start threads
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the studio
    runner = _Runner(conn, cancel_event, config)
    handler = _PipeLogHandler(runner)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    runner.loop()


# =========================================================================== studio side


class EngineHost:
    """Handle on one engine host process, used from one worker thread at a time.

    Args:
        config: :class:`HostConfig`.
        cancel_grace: seconds a cancelled job may take to stop cooperatively before
            the host process is killed.
        start_timeout: seconds to wait for a new host to report ready.

    :meth:`run` blocks the calling thread until the job ends; :meth:`cancel` may be
    called from any thread. The process is started on first use and restarted after
    it dies.
    """

    def __init__(self, config: HostConfig | None = None, *, cancel_grace: float = 1.0, start_timeout: float = 60.0):
        self.config = config or HostConfig()
        self.cancel_grace = cancel_grace
        self.start_timeout = start_timeout
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._cancel_event = self._ctx.Event()
        self._cancel_requested = threading.Event()
        self._lock = threading.RLock()
        self.starts = 0

    # -------------------------------------------------------------- process lifecycle

    @property
    def pid(self) -> int | None:
        """The host process id, or None when not running."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def is_alive(self) -> bool:
        """True while the host process runs."""
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> float:
        """Start the host process if it isn't running; return the seconds it took (0 if running).

        Raises:
            HostCrashed: the process did not report ready within ``start_timeout``.
        """
        with self._lock:
            if self.is_alive():
                return 0.0
            self._cleanup()
            t0 = time.monotonic()
            parent, child = self._ctx.Pipe(duplex=True)
            self._cancel_event.clear()
            proc = self._ctx.Process(
                target=host_main, args=(child, self._cancel_event, self.config), name="seed-engine-host", daemon=True
            )
            with _bare_main():
                proc.start()
            child.close()
            self._proc, self._conn = proc, parent
            self.starts += 1
            if not parent.poll(self.start_timeout):
                self._kill()
                raise HostCrashed(f"the engine host did not start within {self.start_timeout:g} s")
            try:
                msg = parent.recv()
            except (EOFError, OSError):
                msg = {}
            if msg.get("type") != "ready":
                code = self._kill()
                raise HostCrashed(f"the engine host failed to start ({_describe_exit(code)})")
            return time.monotonic() - t0

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the host to unload its engines and exit; kill it if it doesn't."""
        with self._lock:
            if self.is_alive():
                try:
                    self._conn.send({"op": "shutdown"})
                    if self._conn.poll(timeout):
                        self._conn.recv()
                except (OSError, EOFError, BrokenPipeError):
                    pass
                self._proc.join(timeout)
            self._kill()

    def kill(self) -> None:
        """Kill the host process now (SIGKILL). The next job starts a fresh one."""
        with self._lock:
            self._kill()

    def _kill(self) -> int | None:
        code = None
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
            code = self._proc.exitcode
        self._cleanup()
        return code

    def _cleanup(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        if self._proc is not None and not self._proc.is_alive():
            try:
                self._proc.close()
            except ValueError:
                pass
        self._proc = self._conn = None

    # -------------------------------------------------------------- requests

    def _request(self, msg: dict[str, Any], reply: str, timeout: float = 600.0) -> dict[str, Any]:
        with self._lock:
            self.start()
            self._send(msg)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self._conn.poll(0.05):
                    if not self.is_alive():
                        raise HostCrashed(f"the engine host died ({_describe_exit(self._kill())})")
                    continue
                try:
                    m = self._conn.recv()
                except (EOFError, OSError):
                    raise HostCrashed(f"the engine host died ({_describe_exit(self._kill())})") from None
                if m.get("type") == reply:
                    return m
                if m.get("type") == "error":
                    raise error_from_dict(m["error"])
            raise HostCrashed(f"the engine host did not answer {msg.get('op')!r} within {timeout:g} s")

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self._conn.send(msg)
        except (OSError, EOFError):  # died between start() and now
            raise HostCrashed(f"the engine host died ({_describe_exit(self._kill())})") from None

    def ping(self) -> float:
        """Round-trip time to the host in seconds (starts it if needed)."""
        self.start()
        t0 = time.monotonic()
        self._request({"op": "ping"}, "pong")
        return time.monotonic() - t0

    def status(self) -> dict[str, Any]:
        """``{"loaded": [[engine, device, dtype], ...], "pid", "torch_imported", "qt_imported"}`` from the host."""
        m = self._request({"op": "status"}, "status")
        return {k: m[k] for k in ("loaded", "pid", "torch_imported", "qt_imported")}

    def loaded(self) -> list[tuple[str, str, str]]:
        """(engine id, device, dtype) of the engines loaded in the host, LRU first."""
        return [tuple(k) for k in self._request({"op": "status"}, "status")["loaded"]]  # type: ignore[misc]

    def preload(self, spec: JobSpec) -> dict[str, Any]:
        """Load the engine ``spec`` would use, without running a job.

        Returns ``{"device", "dtype", "load"}`` (load seconds, 0 if it was loaded).
        """
        m = self._request({"op": "preload", "spec": _spec_for_pipe(spec, None)}, "preloaded")
        return {k: m[k] for k in ("device", "dtype", "load")}

    def cancel(self) -> None:
        """Cancel the running job (any thread). It ends with JobCancelled within
        ``cancel_grace`` seconds plus the time to kill the host."""
        self._cancel_requested.set()
        self._cancel_event.set()

    def run(
        self,
        job_id: str,
        spec: JobSpec,
        on_event: Callable[[HostEvent], None] | None = None,
        *,
        work_dir: str | None = None,
        cancel: threading.Event | None = None,
        outputs_hook: OutputsHook | None = None,
    ) -> JobResult:
        """Run one job in the host and wait for its result.

        Args:
            job_id: any unique string (echoed in events).
            spec: the job; array inputs are written to ``work_dir`` as float WAV first.
            on_event: receives progress and log events, on the calling thread.
            work_dir: folder for input/output files; a temp folder if None (the caller
                owns it and removes it when done with the outputs).
            cancel: a per-job event; setting it cancels this job like :meth:`cancel`
                (and, unlike :meth:`cancel`, it can't be missed if set before the job starts).
            outputs_hook: stores the outputs in the host process (see :class:`OutputsHook`);
                its records arrive in ``JobResult.stored``.

        Returns:
            The :class:`JobResult` with output audio as file paths (and ``stored``).

        Raises:
            JobCancelled: cancelled (cooperatively, or by killing the host).
            HostCrashed: the host process died during the job.
            OutOfMemory: still out of memory at the smallest chunk scale.
            EngineError: any other failure reported by the engine.
        """
        with self._lock:
            self._cancel_requested.clear()
            self.start()
            work = work_dir or tempfile.mkdtemp(prefix="seed-job-")
            msg = {"op": "run", "job_id": job_id, "spec": _spec_for_pipe(spec, work)}
            if outputs_hook is not None:
                msg["outputs_hook"] = outputs_hook.to_dict()
            self._cancel_event.clear()
            self._send(msg)
            cancel_at: float | None = None
            while True:
                wants_cancel = self._cancel_requested.is_set() or (cancel is not None and cancel.is_set())
                if wants_cancel and cancel_at is None:
                    cancel_at = time.monotonic()
                    self._cancel_event.set()
                if cancel_at is not None and time.monotonic() - cancel_at > self.cancel_grace:
                    self._kill()
                    raise JobCancelled("job cancelled (the engine did not stop in time and was killed)")
                if not self._conn.poll(0.02):
                    if not self.is_alive():
                        code = self._kill()
                        if cancel_at is not None:
                            raise JobCancelled("job cancelled")
                        raise HostCrashed(f"the engine host died during the job ({_describe_exit(code)})")
                    continue
                try:
                    m = self._conn.recv()
                except (EOFError, OSError):
                    code = self._kill()
                    if cancel_at is not None:
                        raise JobCancelled("job cancelled") from None
                    raise HostCrashed(f"the engine host died during the job ({_describe_exit(code)})") from None
                kind = m.get("type")
                if kind in ("progress", "log"):
                    if on_event is not None and m.get("job_id") in (job_id, None):
                        try:
                            on_event(m)
                        except Exception:  # a listener bug must not kill the job
                            log.exception("job event listener failed")
                elif kind == "result" and m.get("job_id") == job_id:
                    return JobResult.from_dict(m["result"])
                elif kind == "error" and m.get("job_id") == job_id:
                    raise error_from_dict(m["error"])


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Hide the studio's ``__main__`` module while spawning the host.

    The spawn start method re-imports the parent's main module in the child; for the
    desktop app that would import PyQt6 and the whole UI into the engine host. The host's
    entry point (:func:`host_main`) is importable by name, so the child needs no main.
    """
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _spec_for_pipe(spec: JobSpec, work_dir: str | None) -> dict[str, Any]:
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


def _describe_exit(code: int | None) -> str:
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
