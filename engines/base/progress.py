"""Progress (fraction, stage, ETA) and cooperative cancel, as engines see them."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from engines.base.errors import JobCancelled

# --------------------------------------------------------------------------- progress and cancel

ProgressCallback = Callable[..., None]
"""``progress(fraction, stage="")``: fraction in [0, 1], stage a short label ("separating")."""


class ProgressReporter:
    """A progress callback with monotonic fractions, sub-ranges and an ETA.

    Engines receive one as ``progress`` in :meth:`Engine.run` and call it as
    ``progress(fraction, stage)``. ``progress.sub(a, b)`` returns a reporter that maps
    its own 0..1 onto ``a..b`` of the parent (for multi-stage jobs), and
    ``progress.log(text)`` sends a log line to the UI.

    Args:
        sink: ``sink(fraction, stage, eta_s)`` receives every accepted update
            (``eta_s`` seconds or None); ``None`` discards updates.
        log_sink: ``log_sink(text)`` receives log lines.

    The ETA is linear extrapolation from the time of the first update.
    """

    def __init__(
        self,
        sink: Callable[[float, str, float | None], None] | None = None,
        log_sink: Callable[[str], None] | None = None,
        *,
        _parent: ProgressReporter | None = None,
        _range: tuple[float, float] = (0.0, 1.0),
    ):
        self._sink = sink
        self._log_sink = log_sink
        self._parent = _parent
        self._range = _range
        self._t0 = time.monotonic()
        self.fraction = 0.0
        self.stage = ""

    def __call__(self, fraction: float, stage: str = "") -> None:
        f = float(min(1.0, max(0.0, fraction)))
        if f < self.fraction:
            f = self.fraction  # never go backwards
        self.fraction = f
        if stage:
            self.stage = stage
        if self._parent is not None:
            a, b = self._range
            self._parent(a + (b - a) * f, self.stage)
            return
        eta = None
        elapsed = time.monotonic() - self._t0
        if 0.0 < f < 1.0:
            eta = elapsed * (1.0 - f) / f
        elif f >= 1.0:
            eta = 0.0
        if self._sink is not None:
            self._sink(f, self.stage, eta)

    def sub(self, start: float, end: float) -> ProgressReporter:
        """A child reporter whose 0..1 maps onto ``start..end`` of this one."""
        return ProgressReporter(_parent=self, _range=(float(start), float(end)))

    def log(self, text: str) -> None:
        """Send one log line to whoever watches the job."""
        if self._parent is not None:
            self._parent.log(text)
        elif self._log_sink is not None:
            self._log_sink(str(text))


class CancelToken:
    """Cooperative cancel flag, checked by engines at chunk boundaries.

    Engines call :meth:`raise_if_cancelled` between chunks; the host kills the job
    if it does not stop within its grace period.

    Args:
        event: anything with ``is_set()``/``set()`` (a ``threading.Event`` or a
            ``multiprocessing.Event``); a new ``threading.Event`` if omitted.
    """

    def __init__(self, event: Any | None = None):
        self._event = event if event is not None else threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return bool(self._event.is_set())

    def cancel(self) -> None:
        """Ask the job to stop."""
        self._event.set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if cancel was requested."""
        if self.cancelled:
            raise JobCancelled("job cancelled")


