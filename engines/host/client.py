"""The studio's handle on an engine host process: start, run a job, cancel, kill, and
notice a host that died or stopped responding.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import sys
import tempfile
import threading
import time
import types
from typing import Any, Callable, Iterator

from engines.base import HostCrashed, HostNotResponding, JobCancelled, JobResult, JobSpec, error_from_dict
from engines.host.process import host_main
from engines.host.protocol import HostConfig, HostEvent, OutputsHook, describe_exit, spec_for_pipe

log = logging.getLogger(__name__)


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
                raise HostCrashed(f"the engine host failed to start ({describe_exit(code)})")
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
                        raise HostCrashed(f"the engine host died ({describe_exit(self._kill())})")
                    continue
                try:
                    m = self._conn.recv()
                except (EOFError, OSError):
                    raise HostCrashed(f"the engine host died ({describe_exit(self._kill())})") from None
                if m.get("type") == reply:
                    return m
                if m.get("type") == "error":
                    raise error_from_dict(m["error"])
            raise HostCrashed(f"the engine host did not answer {msg.get('op')!r} within {timeout:g} s")

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self._conn.send(msg)
        except (OSError, EOFError):  # died between start() and now
            raise HostCrashed(f"the engine host died ({describe_exit(self._kill())})") from None

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
        m = self._request({"op": "preload", "spec": spec_for_pipe(spec, None)}, "preloaded")
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
            msg = {"op": "run", "job_id": job_id, "spec": spec_for_pipe(spec, work)}
            if outputs_hook is not None:
                msg["outputs_hook"] = outputs_hook.to_dict()
            self._cancel_event.clear()
            self._send(msg)
            cancel_at: float | None = None
            last_seen = time.monotonic()
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
                        raise HostCrashed(f"the engine host died during the job ({describe_exit(code)})")
                    silent = time.monotonic() - last_seen
                    if silent > self.config.hang_timeout:
                        self._kill()
                        raise HostNotResponding(
                            f"the engine host stopped responding (nothing heard for {silent:.0f} s, "
                            f"limit {self.config.hang_timeout:g} s) and was stopped; nothing was added")
                    continue
                last_seen = time.monotonic()
                try:
                    m = self._conn.recv()
                except (EOFError, OSError):
                    code = self._kill()
                    if cancel_at is not None:
                        raise JobCancelled("job cancelled") from None
                    raise HostCrashed(f"the engine host died during the job ({describe_exit(code)})") from None
                kind = m.get("type")
                if kind == "heartbeat":
                    continue
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


