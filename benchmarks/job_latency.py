"""Job-system latency: host start, and submit -> first progress event for a loaded engine.

Targets (issue 3): submit -> first progress <= 50 ms for an already-loaded engine;
engine host start (spawn to ready, no torch model loaded) <= 3 s.

Baselines measured in the same run, on the same machine:
* a bare ``multiprocessing`` spawn of a process that does nothing (the floor for host start);
* ``import torch`` in a fresh interpreter (what the host would pay if it imported torch at start);
* a ping round-trip over the host's pipe (the floor for submit -> first event).

Usage: ``python benchmarks/job_latency.py [--repeats N]``. Prints one figure per line.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engines import base  # noqa: E402
from engines.host import EngineHost  # noqa: E402
from studio.jobs.manager import JobManager  # noqa: E402


def _ready(conn) -> None:
    conn.send("ready")


def bare_spawn_s() -> float:
    """Spawn a process that only says "ready" over a pipe: start -> message received."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    t0 = time.perf_counter()
    p = ctx.Process(target=_ready, args=(child,))
    p.start()
    parent.recv()
    dt = time.perf_counter() - t0
    p.join()
    return dt


def torch_import_s() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def host_start_s() -> tuple[float, bool]:
    h = EngineHost()
    t0 = time.perf_counter()
    h.start()
    dt = time.perf_counter() - t0
    torch_imported = h.status()["torch_imported"]  # it must not, before a torch engine loads
    h.stop()
    return dt, torch_imported


def submit_to_first_progress(manager: JobManager, spec: base.JobSpec, from_engine: bool = False) -> float:
    """Seconds from ``submit`` to the first progress event (``from_engine``: the first one
    sent by the engine itself, not the host's immediate "starting" event)."""
    got = threading.Event()
    stamp = {}

    def listener(e):
        if from_engine and e.stage == "starting" and e.fraction == 0.0:
            return
        if e.kind == "progress" and e.job_id == stamp.get("id") and not got.is_set():
            stamp["t"] = time.perf_counter()
            got.set()

    manager.add_listener(listener)
    try:
        t0 = time.perf_counter()
        stamp["id"] = jid = manager.submit(spec)
        got.wait(30)
        manager.wait(jid, 60)
    finally:
        manager.remove_listener(listener)
    return stamp["t"] - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    n_start = max(3, args.repeats // 5)

    spawn = statistics.median(bare_spawn_s() for _ in range(n_start))
    torch_imp = statistics.median(torch_import_s() for _ in range(2))
    runs = [host_start_s() for _ in range(n_start)]
    starts = [s for s, _ in runs]
    host_start = statistics.median(starts)
    host_torch = any(t for _, t in runs)

    with JobManager() as manager:
        host = manager.host()
        host.start()
        spec = base.GenerateSpec(engine_id="fake", frames=8000, sample_rate=8000)
        host.preload(spec)  # engine already loaded, as in the target
        pings = [host.ping() for _ in range(args.repeats)]
        submit_to_first_progress(manager, spec)  # warm-up
        lat = sorted(submit_to_first_progress(manager, spec) for _ in range(args.repeats))
        lat_engine = sorted(submit_to_first_progress(manager, spec, True) for _ in range(args.repeats))
        wav = base.write_output(np.zeros((2, 44100 * 10), np.float32), 44100, manager.work_root, "bench-input")
        audio_spec = base.AnalyzeSpec(engine_id="fake", audio=wav, sample_rate=44100)
        lat_audio = sorted(submit_to_first_progress(manager, audio_spec) for _ in range(args.repeats))

    def pct(xs, q):
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    ping = statistics.median(pings)
    med, med_audio = statistics.median(lat), statistics.median(lat_audio)
    print(f"machine: {mp.cpu_count()} CPU cores; load average {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"baseline bare spawn, start -> 'ready' msg : {spawn * 1000:8.1f} ms")
    print(f"baseline 'import torch' in a fresh python : {torch_imp * 1000:8.1f} ms")
    print(f"engine host start, spawn -> ready (median of {n_start}): {host_start * 1000:8.1f} ms  "
          f"[{', '.join(f'{s * 1000:.0f}' for s in starts)}]  "
          f"= {host_start / spawn:.2f}x bare spawn, {host_start / torch_imp:.2f}x torch import; target <= 3000 ms: "
          f"{'PASS' if host_start <= 3.0 else 'FAIL'}; torch imported in the host: {host_torch}")
    print(f"baseline pipe ping round-trip (median)    : {ping * 1000:8.2f} ms")
    print(f"submit -> first progress, loaded engine, no input (median/p95 of {args.repeats}): "
          f"{med * 1000:.2f} / {pct(lat, 0.95) * 1000:.2f} ms = {med / ping:.1f}x ping; target <= 50 ms: "
          f"{'PASS' if pct(lat, 0.95) <= 0.05 else 'FAIL'}")
    print(f"submit -> first progress sent by the engine itself (after param validation and its first "
          f"chunk; median/p95): {statistics.median(lat_engine) * 1000:.2f} / {pct(lat_engine, 0.95) * 1000:.2f} ms")
    print(f"submit -> first progress, loaded engine, 10 s stereo WAV input (median/p95): "
          f"{med_audio * 1000:.2f} / {pct(lat_audio, 0.95) * 1000:.2f} ms; target <= 50 ms: "
          f"{'PASS' if pct(lat_audio, 0.95) <= 0.05 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
