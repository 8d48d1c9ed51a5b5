"""Task jobs: one path from a request to a take, for the app, the CLI and the tests.

* :func:`prepare_job` resolves a request, checks the target and renders the job's input
  (:meth:`studio.tasks.base.Task.prepare`);
* :func:`submit_task` prepares and queues it on a :class:`~studio.jobs.manager.JobManager`
  (the engine runs in the engine host process);
* :func:`apply_task_result` turns a succeeded job into ONE undoable step on the thread
  that owns the undo stack (:meth:`~studio.tasks.base.Task.apply`);
* :func:`run_task` does all three and waits, reporting progress: the CLI's path
  (Ctrl-C cancels the job; nothing is added).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engines.base import JobSpec
from studio.errors import StudioError
from studio.jobs.manager import CANCELLED, FAILED, SUCCEEDED, Job, JobManager
from studio.tasks import Request, Target, Task, get_task


class JobFailed(StudioError):
    """A task job failed or was cancelled; the project is unchanged.

    Attributes:
        state: "failed" or "cancelled".
        hint: what to do (may be empty).
    """

    def __init__(self, message: str, hint: str = "", state: str = FAILED):
        super().__init__(message)
        self.hint = hint
        self.state = state


def _task(task: str | Task) -> Task:
    return get_task(task) if isinstance(task, str) else task


def _request(task: Task, request: dict[str, Any] | Request | None) -> Request:
    return request if isinstance(request, Request) else task.resolve(request)


def prepare_job(manager: JobManager, session: Any, task: str | Task, target: Target,
                request: dict[str, Any] | Request | None) -> tuple[Task, Request, JobSpec, Any]:
    """Resolve, check and prepare a task job (its input rendered into a new work folder).

    Returns:
        ``(task, request, spec, work_dir)``.

    Raises:
        TaskError: bad request or target. RenderError: missing media.
    """
    t = _task(task)
    req = _request(t, request)
    t.check_target(session.project, target, req)
    work_dir = manager.new_work_dir()
    try:
        spec = t.prepare(session, target, req, work_dir)
    except BaseException:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return t, req, spec, work_dir


def submit_task(manager: JobManager, session: Any, task: str | Task, target: Target,
                request: dict[str, Any] | Request | None, *, label: str = "") -> str:
    """Prepare a task job on the calling thread and queue it. Returns the job id.

    Args:
        session: anything with ``project`` and ``pool`` (a :class:`~studio.io.session.Session`).

    Raises:
        TaskError, RenderError: see :func:`prepare_job`.
    """
    t, req, spec, work_dir = prepare_job(manager, session, task, target, request)
    return manager.submit(spec, label=label or t.label(session.project, target, req), task=t.name, target=target,
                          request=req, pool=session.pool, work_dir=work_dir)


def apply_task_result(manager: JobManager, job_id: str, session: Any) -> Any:
    """Put a succeeded task job's result into the project as ONE undoable step.

    Must run on the thread that owns ``session.undo_stack``.

    Returns:
        The pushed command, or None when there was nothing to add (an analysis that
        only reports figures).

    Raises:
        JobError: unknown job, not succeeded, already applied.
        TaskError / CommandError: the result no longer fits the project; it is unchanged.
    """
    from studio.jobs.manager import JobError

    job = manager.status(job_id)
    if job.state != SUCCEEDED or job.result is None:
        raise JobError(f"job '{job.label}' has not succeeded ({job.state}); nothing to apply")
    if job.applied:
        raise JobError(f"the result of job '{job.label}' was already added")
    t = get_task(job.task)
    cmd = t.apply(session, job.target, job.request, job.spec, job.result, dict(job.media))
    if cmd is not None:
        session.undo_stack.push(cmd)
    manager.mark_applied(job_id)
    return cmd


@dataclass
class TaskOutcome:
    """What :func:`run_task` did.

    Attributes:
        job: the finished job (a snapshot: spec, result, provenance, log).
        command: the undoable step pushed (None when nothing was added).
        summary: one plain-words line about the result.
    """

    job: Job
    command: Any
    summary: str


def run_task(session: Any, task: str | Task, target: Target, request: dict[str, Any] | Request | None, *,
             manager: JobManager | None = None, progress: Callable[[float, str], None] | None = None,
             on_submitted: Callable[[str], None] | None = None, poll: float = 0.05) -> TaskOutcome:
    """Run a task job in the engine host and apply its result: the CLI's path.

    Args:
        session: the project session (its undo stack gets the result).
        manager: a job manager (a new one, shut down afterwards, when None).
        progress: ``progress(fraction, stage)`` on the calling thread.
        on_submitted: called with the job id once it is queued.

    Returns:
        :class:`TaskOutcome`.

    Raises:
        JobFailed: the engine failed, the host crashed or stopped responding, or the job
            was cancelled (KeyboardInterrupt cancels the job first, then re-raises).
        TaskError, RenderError: bad request or target (before anything runs).
    """
    own = manager is None
    manager = manager or JobManager()
    try:
        t = _task(task)
        job_id = submit_task(manager, session, t, target, request)
        if on_submitted is not None:
            on_submitted(job_id)
        try:
            while True:
                job = manager.wait(job_id, timeout=poll)
                if progress is not None:
                    progress(job.fraction, job.stage)
                if job.state in (SUCCEEDED, FAILED, CANCELLED):
                    break
        except KeyboardInterrupt:
            manager.cancel(job_id)
            manager.wait(job_id, timeout=10)
            raise
        if job.state != SUCCEEDED:
            raise JobFailed(job.error or f"the job {job.state}", job.hint, job.state)
        cmd = apply_task_result(manager, job_id, session)
        return TaskOutcome(job=manager.status(job_id), command=cmd, summary=t.summary(job.result, job.spec))
    finally:
        if own:
            manager.shutdown()
