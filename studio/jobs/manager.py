"""The job manager: one queue of engine jobs for the CLI and the UI.

:class:`JobManager` takes :class:`~engines.base.JobSpec` objects, queues them per
device, runs them one at a time in an :class:`~engines.host.EngineHost` process,
and reports events (queued, started, progress, log, succeeded, failed, cancelled)
to listeners. Listeners are called **from a background thread**; the UI marshals
them to Qt (``ui/qt_bridge.py``), the CLI can print them.

The manager knows nothing of tasks: :mod:`studio.jobs.tasks` prepares a task's job
(its input rendered into the job's temp folder), submits it here with a media pool,
and applies the result through the task's ``apply``. Output audio is imported into the
media pool by the engine host itself (:mod:`studio.jobs.outputs` as the host's outputs
hook), so the studio process spends no time hashing and writing stems while the window
runs (pool files are immutable and not yet referenced by the project). Nothing touches
the project until the caller's thread applies the result as ONE undoable step. A
failed or cancelled job leaves the project untouched and no partial take.
"""
from __future__ import annotations

import copy
import os
import logging
import queue
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from engines.base import EngineError, JobCancelled, JobResult, JobSpec
from engines.host import EngineHost, HostConfig, OutputsHook
from studio.errors import StudioError

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)


WORK_PREFIX = "seed-jobs-"
OWNER_FILE = ".owner-pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_work_roots(tmp: str | Path | None = None) -> int:
    """Delete the temp folders of job managers whose process is gone (a CLI killed mid-job
    leaves its inputs and outputs behind). Folders of live processes, and folders without
    an owner file, are left alone. Returns how many were removed."""
    removed = 0
    for d in Path(tmp or tempfile.gettempdir()).glob(WORK_PREFIX + "*"):
        try:
            pid = int((d / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    return removed


class JobError(StudioError):
    """A job-manager request that can't be honoured (unknown job, job not finished,
    result already applied, bad target). Engine failures are reported as job states,
    not raised."""


@dataclass
class JobEvent:
    """One event of a job, as passed to listeners.

    Attributes:
        job_id: the job.
        kind: "queued", "started", "progress", "log", "succeeded", "failed", "cancelled".
        fraction: 0..1 (progress).
        stage: stage label (progress).
        eta: seconds left, or None.
        text: log line, or the error message for "failed".
        hint: what to do, for "failed".
    """

    job_id: str
    kind: str
    fraction: float = 0.0
    stage: str = ""
    eta: float | None = None
    text: str = ""
    hint: str = ""


@dataclass
class Job:
    """A job's state (snapshots are returned by :meth:`JobManager.status`).

    Attributes:
        id, label: identity and display name.
        spec: the job spec (input audio as the rendered WAV path).
        state: one of queued/running/succeeded/failed/cancelled.
        fraction, stage, eta: latest progress.
        error, hint: message and hint when failed or cancelled.
        result: the :class:`~engines.base.JobResult` when succeeded.
        media: output name -> imported ``MediaItem`` (project jobs).
        task: the task name (:mod:`studio.tasks`) for task jobs, else "".
        target: the :class:`studio.tasks.base.Target` of a task job.
        request: the resolved :class:`studio.tasks.base.Request` of a task job.
        log: log lines from the engine host.
        submitted, started, finished: ``time.monotonic()`` stamps.
        applied: True once :meth:`JobManager.apply_result` pushed its command.
        work_dir: the job's temp folder (input WAV, outputs); removed when the job fails,
            is cancelled, or its result is applied.
        pool: the media pool outputs are imported into, or None.
        cancel_event: set by :meth:`JobManager.cancel`.
    """

    id: str
    spec: JobSpec
    label: str = ""
    state: str = QUEUED
    fraction: float = 0.0
    stage: str = ""
    eta: float | None = None
    error: str = ""
    hint: str = ""
    result: JobResult | None = None
    media: dict[str, Any] = field(default_factory=dict)
    task: str = ""
    target: Any = None
    request: Any = None
    log: list[str] = field(default_factory=list)
    submitted: float = 0.0
    started: float | None = None
    finished: float | None = None
    applied: bool = False
    work_dir: str = ""
    pool: Any = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)


Listener = Callable[[JobEvent], None]


class _Lane:
    """One device's queue, worker thread and engine host."""

    def __init__(self, manager: JobManager, key: str, host: EngineHost):
        self.manager, self.key, self.host = manager, key, host
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.current: str | None = None
        self.thread = threading.Thread(target=self._work, name=f"seed-jobs-{key}", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            job_id = self.queue.get()
            if job_id is None:
                return
            self.manager._run(self, job_id)


class JobManager:
    """Queue, run, cancel and watch engine jobs; turn results into undoable commands.

    Args:
        host_config: settings of each engine host process.
        cancel_grace: seconds a cancelled job may take before its host is killed.
        default_device: device for specs that don't name one (e.g. the user's
            setting ``Settings.device``); None or "auto" = the device policy.
        work_root: folder for per-job temp folders; a new temp folder if None.
        host_factory: builds an :class:`~engines.host.EngineHost` (tests may inject).

    Jobs with the same device run one at a time, in submission order, in one host
    process per device (``spec.device`` or "auto"); jobs on different devices run
    concurrently. Thread-safe: every public method may be called from any thread,
    except :meth:`apply_result`, which must run on the thread that owns the undo stack.
    """

    def __init__(
        self,
        host_config: HostConfig | None = None,
        *,
        cancel_grace: float = 1.0,
        default_device: str | None = None,
        work_root: str | Path | None = None,
        host_factory: Callable[[], EngineHost] | None = None,
    ):
        self.host_config = host_config or HostConfig()
        self.cancel_grace = cancel_grace
        self.default_device = None if default_device in (None, "auto") else default_device
        self._own_root = work_root is None
        if self._own_root:
            sweep_stale_work_roots()
        self.work_root = Path(work_root) if work_root else Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
        if self._own_root:
            (self.work_root / OWNER_FILE).write_text(str(os.getpid()))
        self._host_factory = host_factory or (lambda: EngineHost(self.host_config, cancel_grace=self.cancel_grace))
        self._jobs: dict[str, Job] = {}
        self._lanes: dict[str, _Lane] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self._done = threading.Condition(self._lock)

    # ------------------------------------------------------------------ listeners

    def add_listener(self, cb: Listener) -> None:
        """Call ``cb(JobEvent)`` for every job event (from a worker thread)."""
        with self._lock:
            self._listeners.append(cb)

    def remove_listener(self, cb: Listener) -> None:
        """Stop calling ``cb``."""
        with self._lock:
            if cb in self._listeners:
                self._listeners.remove(cb)

    def _emit(self, event: JobEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(event)
            except Exception:  # a listener bug must not stop the queue
                log.exception("job listener failed")

    # ------------------------------------------------------------------ hosts

    def lane(self, device: str | None = None) -> _Lane:
        """The lane (queue + host) for a device key, created on first use."""
        key = device or "auto"
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(self, key, self._host_factory())
            return lane

    def host(self, device: str | None = None) -> EngineHost:
        """The engine host serving ``device`` (e.g. to preload an engine or read its pid)."""
        return self.lane(device).host

    def shutdown(self) -> None:
        """Cancel running jobs, stop the worker threads and host processes, remove temp files."""
        with self._lock:
            lanes = list(self._lanes.values())
            self._lanes.clear()
            queued = [j for j in self._jobs.values() if j.state == QUEUED]
        for j in queued:
            self.cancel(j.id)
        for lane in lanes:
            if lane.current:
                self.cancel(lane.current)
            lane.queue.put(None)
        for lane in lanes:
            lane.thread.join(5)
            lane.host.stop()
        if self._own_root:
            shutil.rmtree(self.work_root, ignore_errors=True)

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ submit

    def new_work_dir(self) -> Path:
        """A new, empty temp folder for one job (inputs and outputs), under ``work_root``."""
        wd = self.work_root / uuid.uuid4().hex[:12]
        wd.mkdir(parents=True, exist_ok=True)
        return wd

    def submit(self, spec: JobSpec, *, label: str = "", task: str = "", target: Any = None, request: Any = None,
               pool: Any = None, work_dir: str | Path | None = None) -> str:
        """Queue a job and return its id.

        Args:
            spec: the job (``engine_id`` required).
            label: display name; default "<task> (<engine>)".
            task, target, request: the task job's identity (see :mod:`studio.jobs.tasks`);
                kept on the job for applying its result.
            pool: a :class:`~studio.media.pool.MediaPool`: outputs are imported into it when
                the job succeeds (on the worker thread).
            work_dir: the job's temp folder (default: a new one under ``work_root``).

        Raises:
            JobError: the spec names no engine.
        """
        if not spec.engine_id:
            raise JobError("the job names no engine")
        if spec.device is None and self.default_device:
            spec = spec.replace(device=self.default_device)
        job_id = uuid.uuid4().hex[:12]
        wd = Path(work_dir) if work_dir else self.work_root / job_id
        wd.mkdir(parents=True, exist_ok=True)
        if spec.output_dir is None:
            spec = spec.replace(output_dir=str(wd / "out"))
        job = Job(id=job_id, spec=spec, label=label or f"{spec.task} ({spec.engine_id})", task=task, target=target,
                  request=request, submitted=time.monotonic(), work_dir=str(wd), pool=pool)
        with self._lock:
            self._jobs[job_id] = job
        lane = self.lane(spec.device)
        self._emit(JobEvent(job_id, QUEUED))
        lane.queue.put(job_id)
        return job_id

    # ------------------------------------------------------------------ control

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job. Returns False if it had already finished.

        A running job ends within about ``cancel_grace`` + 0.5 s (its host is killed
        if it doesn't stop cooperatively). Raises JobError for an unknown id.
        """
        with self._lock:
            job = self._get(job_id)
            if job.state in FINAL_STATES:
                return False
            job.cancel_event.set()  # seen by the host loop, even if the job is just starting
            if job.state == QUEUED:
                self._finish(job, CANCELLED, error="job cancelled")
        return True

    def status(self, job_id: str) -> Job:
        """A snapshot (copy) of the job. Raises JobError for an unknown id."""
        with self._lock:
            job = self._get(job_id)
            snap = copy.copy(job)
            snap.log = list(job.log)
            return snap

    def jobs(self) -> list[Job]:
        """Snapshots of every job, in submission order."""
        with self._lock:
            return [self.status(j) for j in self._jobs]

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job reaches a final state (or ``timeout`` seconds); return a snapshot."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._get(job_id).state not in FINAL_STATES:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._done.wait(left)
            return self.status(job_id)

    def _get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobError(f"no job {job_id}") from None

    # ------------------------------------------------------------------ worker

    def _finish(self, job: Job, state: str, *, error: str = "", hint: str = "") -> None:
        if state != SUCCEEDED:  # no partial output survives a failed or cancelled job
            shutil.rmtree(job.work_dir, ignore_errors=True)
        with self._done:
            job.state, job.error, job.hint = state, error, hint
            job.finished = time.monotonic()
            self._done.notify_all()
        self._emit(JobEvent(job.id, state, fraction=job.fraction, stage=job.stage, text=error, hint=hint))

    def _run(self, lane: _Lane, job_id: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if job.state != QUEUED:
                return
            job.state, job.started = RUNNING, time.monotonic()
            lane.current = job_id
        self._emit(JobEvent(job_id, "started"))

        def on_event(m: dict[str, Any]) -> None:
            if m.get("type") == "progress":
                with self._lock:
                    job.fraction, job.stage, job.eta = m["fraction"], m.get("stage", ""), m.get("eta")
                self._emit(JobEvent(job_id, "progress", m["fraction"], m.get("stage", ""), m.get("eta")))
            else:
                with self._lock:
                    job.log.append(m.get("text", ""))
                self._emit(JobEvent(job_id, "log", job.fraction, job.stage, text=m.get("text", "")))

        try:
            result = lane.host.run(job_id, job.spec, on_event, work_dir=job.work_dir, cancel=job.cancel_event,
                                   outputs_hook=self._outputs_hook(job))
            if job.pool is not None:
                job.media = self._import_outputs(job, result)
        except JobCancelled as exc:
            lane.current = None
            self._finish(job, CANCELLED, error=exc.message, hint=exc.hint)
            return
        except EngineError as exc:
            lane.current = None
            self._finish(job, FAILED, error=exc.message, hint=exc.hint)
            return
        except StudioError as exc:  # importing the outputs failed
            lane.current = None
            self._finish(job, FAILED, error=str(exc), hint="")
            return
        except Exception as exc:  # pragma: no cover - a bug; never kill the worker
            log.exception("job %s crashed the job manager", job_id)
            lane.current = None
            self._finish(job, FAILED, error=f"{type(exc).__name__}: {exc}", hint="this is a bug; see the log")
            return
        lane.current = None
        with self._lock:
            job.result = result
            job.fraction = 1.0
        self._finish(job, SUCCEEDED)

    @staticmethod
    def _outputs_hook(job: Job) -> OutputsHook | None:
        """The host-side import of a project job's outputs into its pool (None without a pool)."""
        pool = job.pool
        if pool is None or not hasattr(pool, "root"):
            return None
        return OutputsHook("studio.jobs.outputs:import_outputs", {
            "pool_root": str(pool.root), "pool_sample_rate": int(pool.sample_rate),
            "peaks_dir": str(pool.peaks_dir), "label": job.label})

    def _import_outputs(self, job: Job, result: JobResult) -> dict[str, Any]:
        """``{output name: MediaItem}``: the items the host stored, checked to be in the
        pool, plus any output still to import (imported here, on the calling thread)."""
        from studio.errors import AudioFileError
        from studio.jobs.outputs import import_into
        from studio.model.project import MediaItem

        media = {}
        for name, record in result.stored.items():
            item = MediaItem.from_dict(record)
            if not job.pool.has(item):
                raise AudioFileError(item.path, f"output {name!r} of the job is missing from the media pool")
            media[name] = item
        media.update(import_into(job.pool, result.outputs, result.sample_rate, label=job.label))
        return media

    # ------------------------------------------------------------------ results

    def mark_applied(self, job_id: str) -> None:
        """Record that the job's result entered the project, and delete its temp folder in
        a thread (deleting minutes of float WAVs can take ~100 ms: not on the UI thread).

        Raises:
            JobError: unknown job, not succeeded, or already applied.
        """
        with self._lock:
            job = self._get(job_id)
            if job.state != SUCCEEDED:
                raise JobError(f"job '{job.label}' has not succeeded ({job.state}); nothing to apply")
            if job.applied:
                raise JobError(f"the result of job '{job.label}' was already added")
            job.applied = True
        threading.Thread(target=shutil.rmtree, args=(job.work_dir, True), daemon=True, name="job-cleanup").start()
