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

from engines.host.client import EngineHost
from engines.host.process import host_main, lower_priority
from engines.host.protocol import HostConfig, HostEvent, OutputsHook

__all__ = ["EngineHost", "HostConfig", "HostEvent", "OutputsHook", "host_main", "lower_priority"]
