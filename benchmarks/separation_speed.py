"""Speed and peak memory of our HT-Demucs separation vs ``demucs.apply.apply_model``.

Setup: the full-size htdemucs architecture (41.98 M parameters, random weights: speed
does not depend on the weights) on a seeded stereo noise signal at 44.1 kHz (default
4 minutes; ``--seconds`` for a shorter run on slow machines). Each measurement runs in
its own fresh process (same seed, so the same weights and signal), alternating baseline
and ours, so the peak-memory figures are not polluted by the other run.

* baseline: ``apply_model(model, mix[None], device=DEVICE)`` with the library's defaults
  (shifts=1, split=True, overlap=0.25, batch of 1), after the ``demucs.api``
  normalisation; the output stays on the CPU, as in ``demucs.separate``.
* ours: :func:`engines.separation.core.separate` with the engine defaults (shifts=0,
  overlap 0.25, evenly spread chunks ending at the last frame, batch 1 on CPU; on CUDA
  batch 4, float16 autocast, pinned and overlapped transfers), and ``ours-shifts1``,
  the same with one random shift (the library default's work).

Printed: RTF = processing seconds / audio seconds (lower is faster), speed-up =
baseline RTF / our RTF, CPU seconds (user + system, all threads) per audio second, which
is less sensitive than wall time to other programs on a shared machine, peak memory: CPU RSS high-water mark above the one after setup,
and on CUDA ``torch.cuda.max_memory_allocated``. On CUDA it also checks our float16
output against our float32 output on the same weights (must be below -60 dB).

Usage::

    python benchmarks/separation_speed.py --seconds 240 --device cpu --repeats 1
    python benchmarks/separation_speed.py --device cuda --repeats 3
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR = 44100


def _rss_peak_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _setup(seconds: float, device: str):
    import numpy as np
    import torch

    from engines.separation.demucs_adapter import full_size_htdemucs

    torch.manual_seed(0)
    model = full_size_htdemucs(seed=0).to(device)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)
    return model, audio


def _child(method: str, seconds: float, device: str, dtype: str, batch: int | None, queue) -> None:
    try:
        import numpy as np
        import torch

        model, audio = _setup(seconds, device)
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        base_rss = _rss_peak_bytes()
        c0 = _cpu_seconds()
        t0 = time.perf_counter()
        if method == "baseline":
            from demucs.apply import apply_model

            wav = torch.from_numpy(audio)
            ref = wav.mean(0)
            mean, std = ref.mean(), ref.std() + 1e-8
            out = apply_model(model, ((wav - mean) / std)[None], device=device)
            out *= std  # in place, as demucs.api.Separator does
            out += mean
            out = out[0].numpy()
        else:
            from engines.separation.core import SeparationOptions, separate

            shifts = 1 if method == "ours-shifts1" else 0
            opts = SeparationOptions(device=device, dtype=dtype if cuda else "float32", batch_size=batch, shifts=shifts)
            res = separate(model, audio, SR, opts)
            out = np.stack([res.stems[s] for s in res.model_sources])
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds() - c0
        result = {
            "method": method, "seconds": elapsed, "rtf": elapsed / seconds,
            "cpu_seconds": cpu, "cpu_rtf": cpu / seconds,
            "rss_peak_above_setup_mb": (_rss_peak_bytes() - base_rss) / 1e6,
            "rss_peak_mb": _rss_peak_bytes() / 1e6,
            "shape": list(out.shape),
        }
        if cuda:
            result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 1e6
        queue.put(result)
    except BaseException as exc:  # report, don't hang the parent
        queue.put({"method": method, "error": repr(exc)})


def _measure(method: str, args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(method, args.seconds, args.device, args.dtype, args.batch_size, q))
    p.start()
    res = q.get()
    p.join()
    if "error" in res:
        raise SystemExit(f"{method} failed: {res['error']}")
    return res


def _precision_check(args) -> float:
    """Our float16/bfloat16 output vs our float32 output on the same weights, in dB."""
    import numpy as np

    from engines.separation.core import SeparationOptions, separate

    model, audio = _setup(min(args.seconds, 30.0), args.device)
    ref = separate(model, audio, SR, SeparationOptions(device=args.device, dtype="float32"))
    fast = separate(model, audio, SR, SeparationOptions(device=args.device, dtype=args.dtype, batch_size=args.batch_size))
    worst = -np.inf
    for s in ref.model_sources:
        err = np.sum((fast.stems[s] - ref.stems[s]) ** 2) / max(np.sum(ref.stems[s] ** 2), 1e-20)
        worst = max(worst, 10 * np.log10(max(err, 1e-30)))
    return float(worst)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=240.0, help="signal length in seconds (default 240)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"), help="our CUDA dtype")
    ap.add_argument("--batch-size", type=int, default=None, help="our batch size (default 1 CPU, 4 CUDA)")
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs per method (best is reported)")
    ap.add_argument("--skip-shifts1", action="store_true", help="don't run ours with shifts=1")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    methods = ["baseline", "ours"] + ([] if args.skip_shifts1 else ["ours-shifts1"])
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"htdemucs full size, random weights; {args.seconds:g} s stereo at {SR} Hz; device {args.device}; "
          f"{os.cpu_count()} CPU cores, load average {load:.2f} at start", flush=True)
    for r in range(args.repeats):
        for m in methods:
            res = _measure(m, args)
            runs[m].append(res)
            print(f"  run {r + 1} {m:<13} {res['seconds']:8.2f} s  RTF {res['rtf']:.3f}  "
                  f"CPU {res['cpu_seconds']:.1f} s ({res['cpu_rtf']:.3f} CPU-s per audio-s)  "
                  f"RSS peak +{res['rss_peak_above_setup_mb']:.0f} MB"
                  + (f"  CUDA peak {res['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in res else ""), flush=True)
    summary = {}
    for m in methods:
        best = min(runs[m], key=lambda x: x["rtf"])
        summary[m] = {
            "rtf_best": best["rtf"], "rtf_median": statistics.median(x["rtf"] for x in runs[m]),
            "cpu_rtf_best": min(x["cpu_rtf"] for x in runs[m]),
            "rss_peak_above_setup_mb": min(x["rss_peak_above_setup_mb"] for x in runs[m]),
            **({"cuda_peak_mb": min(x["cuda_peak_mb"] for x in runs[m])} if "cuda_peak_mb" in best else {}),
        }
    print("\nmethod         RTF(best)  RTF(median)  speed-up vs baseline  CPU-s/audio-s (speed-up)  RSS peak above setup")
    for m in methods:
        s = summary[m]
        speed = summary["baseline"]["rtf_best"] / s["rtf_best"]
        cpu_speed = summary["baseline"]["cpu_rtf_best"] / s["cpu_rtf_best"]
        print(f"{m:<14} {s['rtf_best']:9.3f}  {s['rtf_median']:11.3f}  {speed:19.2f}x  "
              f"{s['cpu_rtf_best']:13.3f} ({cpu_speed:.2f}x)  {s['rss_peak_above_setup_mb']:10.0f} MB"
              + (f"   CUDA peak {s['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in s else ""))
    if args.device.startswith("cuda") and args.dtype != "float32":
        db = _precision_check(args)
        summary["precision_db_vs_fp32"] = db
        print(f"\n{args.dtype} vs float32 output (same weights): {db:.1f} dB (target <= -60 dB)")
    if hasattr(os, "getloadavg"):
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "summary": summary, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
