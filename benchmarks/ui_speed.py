"""UI speed on a 32-track x 5-minute project (offscreen Qt).

Prints, with baselines measured in the same run:

* first paint: seconds from the loaded project to the first finished paint of the arrange
  view (target <= 1 s); baseline: loading the project itself.
* full-width repaint: median ms of ``canvas.repaint()`` at zoom levels from 8 samples/px
  to the whole song, with warm tile caches (target <= 16 ms), the same while scrolling
  a page per repaint (new tiles every time), and the baseline of drawing with the pixmap
  cache emptied before every repaint (what the cache saves).
* event-loop stall: the longest gap between ticks of a 5 ms QTimer while a separation
  job (offline DSP engine in the engine host process) runs on one 5-minute track
  (target <= 50 ms), reported separately for the job's run and for applying its result
  (4 stem tracks added); each gap over 50 ms is listed with the job's stage. Baselines:
  the same timer with no job, and a plain Python process (no Qt, normal priority)
  sleeping 5 ms at a time during the same job: what the OS gives any process then.

Usage::

    python benchmarks/ui_speed.py [--tracks 32] [--seconds 300] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pump(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()


def measure_stall(app, seconds: float, until=None, trace: bool = False, threshold: float = 50.0
                  ) -> tuple[float, int, list]:
    """Longest gap (ms) between 5 ms timer ticks over ``seconds`` (or until ``until()``).

    Returns ``(max gap ms, ticks, gaps)`` with ``gaps`` = ``(start time, ms)`` of gaps over
    ``threshold`` ms. With ``trace``, a watchdog thread prints the UI thread's stack during
    gaps over 50 ms."""
    import threading
    import traceback

    from PyQt6.QtCore import QTimer

    stamps: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    timer.start()
    stop = threading.Event()
    main_id = threading.get_ident()

    def watchdog() -> None:
        while not stop.is_set():
            time.sleep(0.01)
            if stamps and time.perf_counter() - stamps[-1] > 0.05:
                frame = sys._current_frames().get(main_id)
                if frame is not None:
                    print("  stall trace:", " <- ".join(
                        f"{fs.name}@{Path(fs.filename).name}:{fs.lineno}"
                        for fs in reversed(traceback.extract_stack(frame, limit=6))))
                time.sleep(0.05)

    if trace:
        threading.Thread(target=watchdog, daemon=True).start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.001)
    for _ in range(40):  # let queued work (result application, repaint) run
        app.processEvents()
        time.sleep(0.005)
    timer.stop()
    stop.set()
    gaps = [(a, (b - a) * 1000) for a, b in zip(stamps, stamps[1:])]
    long = [(a, g) for a, g in gaps if g > threshold]
    return (max(g for _, g in gaps) if gaps else float("nan")), len(stamps), long


_MONITOR = r"""
import signal, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
gaps, end = [0.0], time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end and not stop:
    t = time.perf_counter(); time.sleep(0.005); gaps.append(time.perf_counter() - t - 0.005)
print(max(gaps) * 1000, sum(d > 0.045 for d in gaps), flush=True)
"""


def start_monitor(seconds: float):
    """A plain Python process measuring its own 5 ms sleep overshoot for ``seconds``."""
    import subprocess

    return subprocess.Popen([sys.executable, "-c", _MONITOR, str(seconds)], stdout=subprocess.PIPE, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--keep", help="folder to build (or reuse) the project in")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--trace", action="store_true", help="print the UI thread's stack during long stalls")
    args = ap.parse_args()

    from ui.demo import build_synthetic_project

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ui-speed-"))
    root.mkdir(parents=True, exist_ok=True)
    bundle = root / f"Bench{args.tracks}x{int(args.seconds)}.seedproj"
    if not (bundle / "project.json").exists():
        t = time.perf_counter()
        build_synthetic_project(bundle, tracks=args.tracks, seconds=args.seconds).close()
        print(f"built {args.tracks} tracks x {args.seconds:.0f} s in {time.perf_counter() - t:.1f} s")

    from PyQt6.QtWidgets import QApplication

    from ui.document import Document
    from ui.main_window import MainWindow, new_app
    from ui.qt_bridge import JobsBridge

    app = new_app()
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} (others may be working)")

    # ---- first paint ----------------------------------------------------------------------
    t0 = time.perf_counter()
    doc = Document.open(bundle)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    win = MainWindow(None, ask=False)
    win.resize(1600, 950)
    win.set_document(doc)
    win.show()
    canvas = win.canvas
    while canvas.paint_count == 0 and time.perf_counter() - t1 < 30:
        app.processEvents()
    t_first = time.perf_counter() - t1
    print(f"project load (baseline): {t_load * 1000:.0f} ms")
    print(f"first paint after load:  {t_first * 1000:.0f} ms   (target <= 1000 ms)  "
          f"ratio to load {t_first / t_load:.2f}x")
    _pump(app, 0.3)

    canvas.peaks_loader.wait_idle(60.0)
    while True:  # until every visible waveform is drawn (no placeholders left)
        canvas.repaint()
        if not canvas.cache.deferred:
            break
    print(f"all visible waveforms drawn: {(time.perf_counter() - t1) * 1000:.0f} ms after load "
          f"(peaks load in worker threads; placeholders until then)")

    # ---- repaint at zoom levels -----------------------------------------------------------
    canvas.tile_budget_s = None  # measure complete paints (no deferred tiles)
    geom = win.timeline.geom
    sr = doc.project.sample_rate
    total = doc.project.length_samples()
    width = canvas.width()
    print(f"canvas {width}x{canvas.height()} px, {len(canvas.rows)} rows, "
          f"{sum(1 for r in canvas.rows if r.y < canvas.height())} visible")
    zooms = [8, 64, 512, 4096, total / width]
    worst_warm = 0.0
    for spp in zooms:
        geom.samples_per_px = float(spp)
        geom.origin = max(0.0, total / 2 - width * spp / 2) if spp < total / width else 0.0
        canvas.repaint()  # fill the tiles
        warm = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            canvas.repaint()
            warm.append((time.perf_counter() - t) * 1000)
        scroll, scroll_idle = [], []
        if spp < total / width:
            canvas.prefetch_enabled = False
            for k in range(args.repeats):  # back to back: every repaint makes new tiles
                geom.origin = min(total - width * spp, geom.origin + width * spp * 0.5)
                t = time.perf_counter()
                canvas.repaint()
                scroll.append((time.perf_counter() - t) * 1000)
            canvas.prefetch_enabled = True
            for k in range(args.repeats):  # 1/4 page per 60 Hz frame, idle time between frames
                geom.origin = min(total - width * spp, geom.origin + width * spp * 0.25)
                t = time.perf_counter()
                canvas.repaint()
                scroll_idle.append((time.perf_counter() - t) * 1000)
                _pump(app, 0.016)
        cold = []
        for _ in range(max(3, args.repeats // 3)):
            canvas.cache.clear()
            canvas.notes.invalidate()
            t = time.perf_counter()
            canvas.repaint()
            cold.append((time.perf_counter() - t) * 1000)
        mw, mc = statistics.median(warm), statistics.median(cold)
        worst_warm = max(worst_warm, mw)
        sc = (f"scroll back-to-back {statistics.median(scroll):6.2f} ms, at 60 fps with prefetch "
              f"{statistics.median(scroll_idle):6.2f} ms" if scroll else "scrolling n/a")
        label = "whole song" if spp == zooms[-1] else f"{spp:>6.0f} spp"
        print(f"repaint {label} ({spp / sr * width:7.1f} s shown): warm median {mw:6.2f} ms, {sc}, "
              f"no-cache baseline {mc:7.2f} ms -> cache speed-up {mc / max(mw, 1e-6):5.1f}x")
    print(f"worst warm full-width repaint median: {worst_warm:.2f} ms   (target <= 16 ms)")

    # ---- event-loop stall during a separation job ------------------------------------------
    canvas.tile_budget_s = 0.008  # the app's setting
    win.timeline.zoom_to_fit()
    idle, ticks, _ = measure_stall(app, 2.0)
    print(f"event-loop max gap, idle (baseline): {idle:6.1f} ms over {ticks} ticks")
    from studio.jobs.manager import JobManager

    manager = JobManager(default_device="cpu")
    bridge = JobsBridge(manager, parent=win)
    win._jobs = bridge
    win.jobs_panel.set_bridge(bridge)
    track = next(t for t in doc.project.tracks if t.kind == "audio")
    from ui.job_target import JobTarget

    manager.host("cpu").start()  # start the host process first, as the app does when idle
    stages: list[tuple[float, str]] = [(time.perf_counter(), "preparing input")]
    bridge.job_progress.connect(lambda _j, _f, stage, _e: stages.append((time.perf_counter(), stage))
                                if stage != stages[-1][1] else None)
    t = time.perf_counter()
    jid = bridge.submit(doc, "separate", "dsp-separation", {}, JobTarget(track.id))
    t_submit = time.perf_counter() - t
    finished_at = []
    bridge.job_finished.connect(lambda *_a: finished_at.append(time.perf_counter()))
    monitor = start_monitor(600.0)
    import gc

    gc_pauses: list[float] = []
    gc_t0 = [0.0]

    def gc_watch(phase: str, info: dict) -> None:
        if info.get("generation") == 2:
            if phase == "start":
                gc_t0[0] = time.perf_counter()
            else:
                gc_pauses.append((time.perf_counter() - gc_t0[0]) * 1000)

    gc.callbacks.append(gc_watch)
    stall, ticks, every = measure_stall(app, 600.0, trace=args.trace, threshold=0.0,
                                        until=lambda: bridge.states.get(jid) in ("done", "failed", "cancelled"))
    t_job = time.perf_counter() - t
    gc.callbacks.remove(gc_watch)
    monitor.terminate()
    mon_out = (monitor.communicate()[0] or "").split() if monitor.stdout else []
    fin = finished_at[0] if finished_at else float("inf")
    during = max((g for a, g in every if a < fin - 0.5), default=0.0)
    applying = max((g for a, g in every if a >= fin - 0.5), default=0.0)
    long = [(a, g) for a, g in every if g > 50]
    print(f"gaps over 50 ms: {len(long)}; longest while the job ran {during:.0f} ms, "
          f"while its result was applied {applying:.0f} ms")
    for a, g in long:
        stage = next((st for ts, st in reversed(stages) if ts <= a), "")
        print(f"  {g:5.0f} ms at {a - t:6.2f} s ({'applying the result' if a >= fin - 0.5 else stage})")
    print(f"submit (renders the 5-min input on the UI thread): {t_submit * 1000:.0f} ms")
    print(f"separation job: {bridge.states.get(jid)} in {t_job:.1f} s; "
          f"{bridge.messages.get(jid, '')}")
    print(f"event-loop max gap while it ran (result applied included): {stall:6.1f} ms over {ticks} ticks "
          f"(target <= 50 ms), ratio to idle {stall / max(idle, 1e-6):.1f}x")
    print(f"full GC passes in the studio process during the job: {len(gc_pauses)}"
          + (f", longest {max(gc_pauses):.1f} ms" if gc_pauses else "")
          + f" (heap frozen after load: {gc.get_freeze_count()} objects)")
    print("plain Python process during the job (baseline): "
          + (f"longest gap between 5 ms sleeps {float(mon_out[0]) + 5:.0f} ms, {mon_out[1]} over 50 ms"
             if len(mon_out) >= 2 else "no report"))
    manager.shutdown()
    win._jobs = None
    win.close()
    doc.close()
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
