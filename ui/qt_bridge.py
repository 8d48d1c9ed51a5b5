"""The only place where threads meet Qt.

:class:`JobsBridge` owns a :class:`studio.jobs.manager.JobManager`. The manager calls its
listeners on worker threads; the bridge re-emits every event through a Qt signal, which
Qt delivers to the UI thread as a queued call (the receiver lives there). Results are
applied on the UI thread only, as one undoable step (``JobManager.apply_result``), so
the window never blocks and the project is never touched from another thread.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from PyQt6.QtCore import QObject, Qt, pyqtSignal, pyqtSlot

log = logging.getLogger(__name__)


def plain_error(text: str, hint: str) -> str:
    """``"<what went wrong>. What to do: <hint>"`` for the jobs panel."""
    text = (text or "the engine failed").rstrip(".")
    return f"{text}. What to do: {hint}" if hint else f"{text}."


class JobsBridge(QObject):
    """Qt face of the job manager.

    Args:
        manager: a :class:`studio.jobs.manager.JobManager` (a new one, with the user's device
            setting, when None).

    Signals (all delivered on the UI thread):
        job_added(job_id, title)
        job_progress(job_id, fraction, stage, eta_seconds)  (eta < 0: unknown)
        job_finished(job_id, state, message): state is "done", "failed" or "cancelled";
            message says what happened in plain words (and what to do on failure).
        result_applied(job_id): the result entered the project (one undo step).
    """

    job_added = pyqtSignal(str, str)
    job_progress = pyqtSignal(str, float, str, float)
    job_finished = pyqtSignal(str, str, str)
    result_applied = pyqtSignal(str)
    _event = pyqtSignal(object)
    _mapped = pyqtSignal(str, str, str)

    def __init__(self, manager=None, parent=None, *, auto_apply: bool = True):
        super().__init__(parent)
        # import now what submitting and applying results need, not while a result is
        # being applied (compiling a module there stalls the window for tens of ms)
        import engines.registry  # noqa: F401
        import studio.jobs.tasks  # noqa: F401
        from studio.tasks import all_tasks

        all_tasks()  # every task module

        if manager is None:
            from studio.jobs.manager import JobManager
            from studio.io.settings import load_settings

            manager = JobManager(default_device=load_settings().device)
        self.manager = manager
        self.auto_apply = auto_apply
        self._docs: dict[str, Any] = {}
        self.states: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.analysis: dict[str, dict] = {}
        self._real: dict[str, str] = {}
        self._ui: dict[str, str] = {}
        self._early: dict[str, list] = {}
        self._cancel_asked: set[str] = set()
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._mapped.connect(self._on_mapped, Qt.ConnectionType.QueuedConnection)
        manager.add_listener(self._listener)

    # -- worker thread side: nothing but a queued signal ------------------------------
    def _listener(self, event) -> None:
        self._event.emit(event)

    # -- UI thread ---------------------------------------------------------------------
    def submit(self, doc, task: str, target, request: dict | None = None, *, label: str = "") -> str:
        """Queue a task job (:mod:`studio.tasks`) on ``target``. Returns the job's id at once.

        The request is checked and the target validated here (so a mistake is reported
        at once); the input is rendered in a worker thread from a snapshot of the tracks
        the task reads (so the window never blocks, and later edits don't change a job
        already asked for); the job then enters the manager's queue. The returned id is
        the one every signal uses.

        Args:
            doc: the :class:`ui.document.Document`.
            task: a task name (``"separate"``, ``"generate"``...).
            target: a :class:`studio.tasks.Target`.
            request: the request dict (see ``Task.request_schema``).

        Raises:
            TaskError: bad request or target (the message says what to fix).
        """
        import threading
        import uuid

        from studio.jobs.inputs import snapshot
        from studio.jobs.tasks import prepare_job
        from studio.tasks import get_task

        t = get_task(task)
        req = t.resolve(request)
        proj = doc.project
        t.check_target(proj, target, req)
        snap = snapshot(proj, t.input_tracks(proj, target, req))
        title = label or t.label(proj, target, req)
        uid = "ui-" + uuid.uuid4().hex[:10]
        self._docs[uid] = doc
        self.states[uid] = "queued"
        self.job_added.emit(uid, title)

        class _Snap:  # what prepare reads: the snapshot and the (thread-safe) media pool
            project, pool = snap, doc.pool

        def render_and_queue() -> None:
            try:
                _t, _req, spec, work_dir = prepare_job(self.manager, _Snap, t, target, req)
                real = self.manager.submit(spec, label=title, task=t.name, target=target, request=req,
                                           pool=doc.pool, work_dir=work_dir)
            except Exception as exc:  # shown as a failed job, in plain words
                self._mapped.emit(uid, "", str(exc))
                return
            self._mapped.emit(uid, real, "")

        self.job_progress.emit(uid, 0.0, "preparing input", -1.0)
        threading.Thread(target=render_and_queue, name=f"job-input-{uid}", daemon=True).start()
        return uid

    @pyqtSlot(str, str, str)
    def _on_mapped(self, uid: str, real: str, error: str) -> None:
        if not real:
            self._finish(uid, "failed", plain_error(f"the job's input could not be prepared: {error}",
                                                    "check the track's audio and try again"))
            return
        self._real[uid] = real
        self._ui[real] = uid
        if uid in self._cancel_asked:
            self.manager.cancel(real)
        for ev in self._early.pop(real, []):
            self._on_event(ev)

    def cancel(self, job_id: str) -> bool:
        """Ask the job to stop (the host is killed if it doesn't within its grace time)."""
        real = self._real.get(job_id)
        if real is None:
            if self.states.get(job_id) in ("queued", "running"):
                self._cancel_asked.add(job_id)
                return True
            return False
        try:
            return bool(self.manager.cancel(real))
        except Exception as exc:
            log.info("cancel %s: %s", job_id, exc)
            return False

    def job(self, job_id: str):
        """The manager's :class:`studio.jobs.manager.Job` snapshot for a UI job id, or None."""
        real = self._real.get(job_id)
        return self.manager.status(real) if real else None

    @pyqtSlot(object)
    def _on_event(self, ev) -> None:
        jid = self._ui.get(ev.job_id)
        if jid is None:  # an event of a job whose id mapping is still in the queue
            self._early.setdefault(ev.job_id, []).append(ev)
            return
        if ev.kind == "progress":
            self.states[jid] = "running"
            self.job_progress.emit(jid, float(ev.fraction), ev.stage or "", -1.0 if ev.eta is None else float(ev.eta))
        elif ev.kind == "started":
            self.states[jid] = "running"
            self.job_progress.emit(jid, 0.0, "starting", -1.0)
        elif ev.kind == "failed":
            self._finish(jid, "failed", plain_error(ev.text, ev.hint))
        elif ev.kind == "cancelled":
            self._finish(jid, "cancelled", "Cancelled; nothing was added to the project.")
        elif ev.kind == "succeeded":
            if not self.auto_apply:
                self._finish(jid, "done", "Finished.")
                return
            try:
                message = self.apply(jid)
            except Exception as exc:  # the result no longer fits the project, etc.
                self._finish(jid, "failed", plain_error(f"the result could not be added: {exc}",
                                                        "run the job again on the current project"))
                return
            self._finish(jid, "done", message)

    def _finish(self, jid: str, state: str, message: str) -> None:
        self.states[jid] = state
        self.messages[jid] = message
        self.job_finished.emit(jid, state, message)

    def apply(self, job_id: str) -> str:
        """Put a succeeded job's result into its project (one undo step). Returns a message."""
        from studio.jobs.tasks import apply_task_result
        from studio.tasks import get_task

        doc = self._docs.get(job_id)
        if doc is None:
            return "Finished."
        real = self._real[job_id]
        job = self.manager.status(real)
        task = get_task(job.task)
        summary = task.summary(job.result, job.spec) if job.result is not None else ""
        if job.task == "analyze" and job.result is not None:
            self.analysis[job_id] = dict(job.result.data)
        self._clear_work_dir_async(job)
        before = {t.id for t in doc.project.tracks}
        with doc.group(f"Add result: {job.label}"):
            cmd = apply_task_result(self.manager, real, doc)
            self._colour_new_tracks(doc, before)
        self.result_applied.emit(job_id)
        if cmd is None:
            return f"Finished: {summary}." if summary else "Finished (nothing to add)."
        return f"Added to the project: {cmd.label} — {summary} (undo with Ctrl+Z)."

    @staticmethod
    def _colour_new_tracks(doc, before: set[str]) -> None:
        """Stem colours (``studio.tasks.separate.STEM_COLOURS``) for new tracks still in the
        default colour; other new tracks take the next project colours."""
        from studio.model import edits
        from studio.model.project import TRACK_COLOURS, Track

        try:
            from studio.tasks.separate import STEM_COLOURS
        except ImportError:
            STEM_COLOURS = {}
        default = Track(name="").colour
        new = [t for t in doc.project.tracks if t.id not in before]
        for k, t in enumerate(new):
            if t.colour != default:
                continue
            colour = STEM_COLOURS.get(t.name.lower(), TRACK_COLOURS[(len(before) + k) % len(TRACK_COLOURS)])
            if colour != t.colour:
                doc.push(edits.SetTrackProperty(t.id, "colour", colour))

    @staticmethod
    def _clear_work_dir_async(job) -> None:
        """Move a finished job's temp folder aside and delete it in a thread.

        ``apply_result`` removes the folder itself; with minutes of float WAVs in it that
        takes long enough to stall the window. Done only when the outputs are already in
        the media pool (the folder is not needed any more)."""
        import shutil
        import threading
        from pathlib import Path

        wd = getattr(job, "work_dir", None)
        if not wd or not getattr(job, "media", None) or not Path(wd).is_dir():
            return
        trash = Path(f"{wd}.trash")
        try:
            os.replace(wd, trash)
        except OSError:
            return
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True},
                         name="job-cleanup", daemon=True).start()

    def shutdown(self) -> None:
        """Stop the manager's hosts and threads."""
        try:
            self.manager.remove_listener(self._listener)
        finally:
            self.manager.shutdown()


class PeaksLoader(QObject):
    """Loads peak caches off the UI thread; ``loaded(media_id)`` arrives on the UI thread.

    The first query of a :class:`studio.media.peaks.PeakCache` reads its levels from disk (or
    builds them), which can take tens of milliseconds per file; the timeline asks this
    loader instead and draws a flat line until the peaks are in.
    """

    loaded = pyqtSignal(str)
    _done = pyqtSignal(str, bool)

    def __init__(self, parent=None, workers: int = 2):
        super().__init__(parent)
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="peaks")
        self.ready: set[str] = set()
        self.failed: set[str] = set()
        self._pending: set[str] = set()
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

    def request(self, media_id: str, load) -> None:
        """Run ``load()`` (which warms the peak cache of ``media_id``) in a worker thread once."""
        if media_id in self.ready or media_id in self._pending or media_id in self.failed:
            return
        self._pending.add(media_id)

        def work() -> None:
            try:
                load()
                ok = True
            except Exception as exc:  # the display path never throws; retried on the next document
                log.debug("peaks of %s: %s", media_id, exc)
                ok = False
            self._done.emit(media_id, ok)

        self._pool.submit(work)

    @pyqtSlot(str, bool)
    def _on_done(self, media_id: str, ok: bool) -> None:
        self._pending.discard(media_id)
        (self.ready if ok else self.failed).add(media_id)
        self.loaded.emit(media_id)

    def reset(self) -> None:
        """Forget which peaks are loaded (new document)."""
        self.ready.clear()
        self.failed.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no load is pending (tests, screenshots). Processes Qt events."""
        import time

        from PyQt6.QtWidgets import QApplication

        end = time.monotonic() + timeout
        while self._pending and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()
        return not self._pending


class BackgroundTask(QObject):
    """Run ``fn(progress)`` in a worker thread; ``progress(fraction)`` and the end arrive as
    queued signals on the UI thread.

    Signals:
        progress(float): 0..1.
        finished(object, str): the return value and "" on success, or None and the error text.
    """

    progress = pyqtSignal(float)
    finished = pyqtSignal(object, str)

    def __init__(self, fn, parent=None):
        super().__init__(parent)
        self.fn = fn
        self.thread = None

    def start(self) -> None:
        """Start the worker thread."""
        import threading

        def work() -> None:
            try:
                value = self.fn(lambda f: self.progress.emit(float(f)))
            except Exception as exc:  # reported in plain words by the receiver
                self.finished.emit(None, str(exc) or type(exc).__name__)
                return
            self.finished.emit(value, "")

        self.thread = threading.Thread(target=work, name="ui-task", daemon=True)
        self.thread.start()
