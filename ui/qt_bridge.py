"""The only place where threads meet Qt.

:class:`JobsBridge` owns a :class:`studio.jobs.JobManager`. The manager calls its
listeners on worker threads; the bridge re-emits every event through a Qt signal, which
Qt delivers to the UI thread as a queued call (the receiver lives there). Results are
applied on the UI thread only, as one undoable step (``JobManager.apply_result``), so
the window never blocks and the project is never touched from another thread.
"""
from __future__ import annotations

import logging
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
        manager: a :class:`studio.jobs.JobManager` (a new one, with the user's device
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

    def __init__(self, manager=None, parent=None, *, auto_apply: bool = True):
        super().__init__(parent)
        if manager is None:
            from studio.jobs import JobManager
            from studio.settings import load_settings

            manager = JobManager(default_device=load_settings().device)
        self.manager = manager
        self.auto_apply = auto_apply
        self._docs: dict[str, Any] = {}
        self.states: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.analysis: dict[str, dict] = {}
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        manager.add_listener(self._listener)

    # -- worker thread side: nothing but a queued signal ------------------------------
    def _listener(self, event) -> None:
        self._event.emit(event)

    # -- UI thread ---------------------------------------------------------------------
    def submit(self, doc, task: str, engine_id: str, params: dict, target, *, seed: int = 0,
               context: int = 0, **spec_fields) -> str:
        """Render the target's audio and queue ``task`` on ``engine_id``. Returns the job id.

        Args:
            doc: the :class:`ui.document.Document`.
            target: a :class:`ui.job_target.JobTarget`.
            spec_fields: extra fields of the task's JobSpec (``stems``, ``prompt``...).

        Raises:
            JobError, EngineError: bad target or spec (shown to the musician by the caller).
        """
        from engines.base import spec_class
        from engines.registry import get_entry

        entry = get_entry(engine_id)
        if task in ("generate", "inpaint") and target.start is not None and target.end is not None:
            n = int(target.end) - int(target.start)
            spec_fields.setdefault("frames" if task == "generate" else "mask", n if task == "generate" else (0, n))
            context = 0
        spec = spec_class(task)(engine_id=engine_id, model_id=entry.models[0] if entry.models else None,
                                params=dict(params), seed=int(seed), **spec_fields)
        track = doc.project.track(target.track_id)
        title = f"{task.replace('_', ' ').capitalize()} · {entry.title or engine_id} · {track.name}"
        job_id = self.manager.submit_for_project(doc.project, doc.pool, spec, track_id=target.track_id,
                                                 start=target.start, end=target.end, context=context,
                                                 label=f"{entry.title or engine_id}: {track.name}")
        self._docs[job_id] = doc
        self.states[job_id] = "queued"
        self.job_added.emit(job_id, title)
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Ask the job to stop (the host is killed if it doesn't within its grace time)."""
        try:
            return bool(self.manager.cancel(job_id))
        except Exception as exc:
            log.info("cancel %s: %s", job_id, exc)
            return False

    @pyqtSlot(object)
    def _on_event(self, ev) -> None:
        jid = ev.job_id
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
        from engines.base import ANALYZE

        doc = self._docs.get(job_id)
        if doc is None:
            return "Finished."
        job = self.manager.status(job_id)
        if job.spec.task == ANALYZE:
            return self._apply_analysis(doc, job)
        cmd = self.manager.apply_result(job_id, doc.undo_stack, doc.pool)
        self.result_applied.emit(job_id)
        if cmd is None:
            return "Finished (nothing to add)."
        return f"Added to the project: {job.label} (undo with Ctrl+Z)."

    def _apply_analysis(self, doc, job) -> str:
        """Set the project grid from an analysis result (tempo and meter)."""
        from studio import edits
        from studio.timebase import TempoMap

        data = dict(job.result.data if job.result else {})
        self.analysis[job.id] = data
        bpm = data.get("bpm", data.get("tempo"))
        if not bpm:
            return "Analysis finished (no tempo found)."
        num = int(data.get("numerator", doc.project.tempo_map.signatures[0].numerator))
        den = int(data.get("denominator", doc.project.tempo_map.signatures[0].denominator))
        doc.push(edits.SetTempoMap(TempoMap.constant(float(bpm), num, den)))
        self.result_applied.emit(job.id)
        return f"Grid set to {float(bpm):.1f} BPM, {num}/{den} (undo with Ctrl+Z)."

    def shutdown(self) -> None:
        """Stop the manager's hosts and threads."""
        try:
            self.manager.remove_listener(self._listener)
        finally:
            self.manager.shutdown()
