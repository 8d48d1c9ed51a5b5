"""The engine host process: runs engine jobs one at a time, keeps engines loaded, streams
progress, and retries out-of-memory jobs with smaller chunks.

Entry point: :func:`host_main` (target of the spawned process). It lowers its own CPU
priority, ignores Ctrl-C (that is for the studio), starts a heartbeat thread and serves
the pipe (see :mod:`engines.host.protocol`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from engines.base import (
    CancelToken,
    EngineError,
    JobCancelled,
    JobResult,
    JobSpec,
    OutOfMemory,
    ProgressReporter,
    is_out_of_memory,
    write_output,
)
from engines.host.protocol import HostConfig, jsonable

log = logging.getLogger(__name__)


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
            self.send({"type": "result", "job_id": job_id, "result": jsonable(result.to_dict())})
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
        if spec.model_path:  # a local model used as is: record where it was and what it held
            from engines.models import local_model_hashes

            prov.extra.setdefault("model_path", spec.model_path)
            prov.extra.setdefault("model_files", local_model_hashes(spec.model_path))
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
    _start_heartbeat(runner, config.heartbeat_interval)  # beats only while a job runs
    handler = _PipeLogHandler(runner)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    runner.loop()


# =========================================================================== studio side




def _start_heartbeat(runner: _Runner, interval: float) -> threading.Thread:
    """Send ``{"type": "heartbeat"}`` every ``interval`` seconds until the pipe closes, and
    exit the host when its parent (the studio process) is gone, so an orphaned host never
    goes on writing into a project whose lock was released.

    A thread of its own, so that a job that reports no progress for a while (a long
    model load, one long kernel) still shows the studio that the host is alive, and a
    stopped (SIGSTOP) or deadlocked host stops sending it."""

    parent = os.getppid()

    def beat() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:  # the studio died (even by SIGKILL): never outlive it
                os._exit(3)
            if runner.job_id is None:
                continue  # idle: nobody waits for us, and the pipe must not fill up
            try:
                runner.send({"type": "heartbeat", "job_id": runner.job_id})
            except (OSError, EOFError, ValueError):
                return

    t = threading.Thread(target=beat, name="seed-host-heartbeat", daemon=True)
    t.start()
    return t
