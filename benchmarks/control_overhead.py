"""Cost of time-varying control guidance in the ACE-Step engine (issue 14), full-size
architecture with random weights.

Architecture and memory budget: ``benchmarks/generation_speed.py``'s ``build_full_size``
(ACE-Step 1.5 XL turbo: 4.7 B DiT, XL condition encoder, Qwen3-0.6B-sized text encoder,
the real 48 kHz Oobleck VAE), with the repeated layers tied so that it fits a 6 GB process
on the CPU; every layer still runs at full width.

One process, the same weights, prompt, lyrics, seed and settings (the engine's defaults:
turbo's 8 steps; controls steer step 5 with one nudge), in this order:

1. unguided: ``AceStepEngine.run`` of a ``--seconds`` generate, 1 variation;
2. guided: the same job with melody, dynamics and rhythm controls over the whole take
   (a C-D-E-G-A-G-E-D melody in half-second notes, a -40 to -10 dB crescendo, onsets every
   0.25 s; the values do not change the cost);
3. with ``--aba``: the unguided job again (on a shared machine: how much the load drifted).

Printed: wall and CPU seconds (user + system, all threads) of each job, the ratio guided /
unguided (the issue asks for <= 3 at the default settings), the seconds the guidance itself
took and the latent frames it decoded, the peak resident memory after each job (its growth
during the guided job is the guidance's extra peak) and, on CUDA, each job's peak
allocated memory. The load average is printed too: on a shared machine compare figures of
the same run only.

Usage::

    python benchmarks/control_overhead.py                      # CPU fp32, 4 s, ~10 min on 1 core
    python benchmarks/control_overhead.py --seconds 2 --threads 1
    python benchmarks/control_overhead.py --device cuda --seconds 30 --aba   # bf16
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generation_speed import LYRICS, PROMPT, build_full_size  # noqa: E402

LIMIT = 3.0
"""Most a guided job may cost, in unguided jobs (issue 14)."""


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def controls(frames: int, sr: int):
    """Melody, dynamics and rhythm targets over ``frames`` at ``sr`` (studio format)."""
    import numpy as np

    from engines.base import ControlTarget

    hop = 512
    n = 1 + frames // hop
    t = np.arange(n) * hop / sr
    melody = np.zeros((12, n), np.float32)
    notes = np.array([0, 2, 4, 7, 9, 7, 4, 2])
    melody[notes[(t / 0.5).astype(int) % notes.size], np.arange(n)] = 1.0
    dynamics = np.linspace(-40.0, -10.0, n).astype(np.float32)
    rhythm = np.zeros(n, np.float32)
    rhythm[np.round(np.arange(0.0, t[-1], 0.25) * sr / hop).astype(int)] = 1.0
    return {k: ControlTarget(kind=k, values=v, frame_rate=sr / hop).to_dict()
            for k, v in (("melody", melody), ("dynamics", dynamics), ("rhythm", rhythm))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="audio length in seconds (default 4)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                    help="default: the engine's policy (float32 on CPU, bfloat16 on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--kinds", default="melody,dynamics,rhythm", help="controls of the guided job")
    ap.add_argument("--params", default="{}", help="extra engine parameters for both jobs, as JSON")
    ap.add_argument("--aba", action="store_true", help="run the unguided job again after the guided one")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from engines.base import CancelToken, GenerateSpec, ProgressReporter
    from engines.generation.acestep.engine import AceStepEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    dtype = args.dtype or ("bfloat16" if cuda else "float32")
    sr = 48000
    frames = int(round(args.seconds * sr))
    figures: dict = {"device": args.device, "dtype": dtype, "seconds": args.seconds,
                     "threads": torch.get_num_threads(), "load_average_start": os.getloadavg(), "limit": LIMIT}
    if cuda:
        figures["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    t0 = time.monotonic()
    pipe = build_full_size(dtype)
    pipe.to(args.device)
    figures["build_s"] = round(time.monotonic() - t0, 1)
    figures["peak_rss_after_build_gb"] = round(_rss_peak_gb(), 2)
    print(f"built XL turbo (tied layers) in {figures['build_s']} s on {args.device} {dtype}, "
          f"{figures['threads']} threads, load average {figures['load_average_start']}", flush=True)
    engine = AceStepEngine()
    engine.load(args.device, dtype)
    engine.use_pipeline(pipe, model_id="bench-xl-turbo")
    extra = json.loads(args.params)
    wanted = controls(frames, sr)
    guided_controls = {k: wanted[k] for k in args.kinds.split(",") if k}

    def job(name: str, with_controls: bool) -> dict:
        spec = GenerateSpec(engine_id="acestep", model_id="bench-xl-turbo", prompt=PROMPT, lyrics=LYRICS, bpm=120,
                            key="A minor", time_signature="4/4", frames=frames, sample_rate=sr, seed=1,
                            params=dict(extra), controls=guided_controls if with_controls else {})
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        c0, w0 = _cpu_seconds(), time.monotonic()
        res = engine.run(spec, ProgressReporter(), CancelToken())
        if cuda:
            torch.cuda.synchronize()
        out = {"wall_s": round(time.monotonic() - w0, 2), "cpu_s": round(_cpu_seconds() - c0, 2),
               "peak_rss_gb": round(_rss_peak_gb(), 2)}
        if cuda:
            out["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
        x = res.provenance.extra
        if with_controls:
            g = x["control_guidance"]
            out.update({"guidance_s": g["seconds"], "guided_steps": g["guided_steps"],
                        "nudges": g["inner_steps"], "decoder_frames": g["decoder_frames"],
                        "adherence": {k: v["value"] for k, v in x["adherence"].items()},
                        "control_loss": {k: v["take1"] for k, v in x["control_loss"].items()}})
        print(f"{name:<10} wall {out['wall_s']:8.1f} s  cpu {out['cpu_s']:8.1f} s  peak RSS {out['peak_rss_gb']} GB"
              + (f"  peak CUDA {out['peak_cuda_gb']} GB" if cuda else "")
              + (f"  guidance {out['guidance_s']:.1f} s on steps {out['guided_steps']}" if with_controls else ""),
              flush=True)
        return out

    figures["unguided"] = job("unguided", False)
    figures["guided"] = job("guided", True)
    if args.aba:
        figures["unguided_again"] = job("unguided", False)
    base_wall = figures["unguided"]["wall_s"]
    base_cpu = figures["unguided"]["cpu_s"]
    if args.aba:
        base_wall = (base_wall + figures["unguided_again"]["wall_s"]) / 2
        base_cpu = (base_cpu + figures["unguided_again"]["cpu_s"]) / 2
    figures["ratio_wall"] = round(figures["guided"]["wall_s"] / base_wall, 3)
    figures["ratio_cpu"] = round(figures["guided"]["cpu_s"] / base_cpu, 3)
    figures["guidance_peak_rss_growth_gb"] = round(figures["guided"]["peak_rss_gb"]
                                                   - figures["unguided"]["peak_rss_gb"], 2)
    figures["load_average_end"] = os.getloadavg()
    ok = figures["ratio_wall"] <= LIMIT and figures["ratio_cpu"] <= LIMIT
    figures["pass"] = ok
    print(f"guided / unguided: x{figures['ratio_wall']} wall, x{figures['ratio_cpu']} cpu (limit x{LIMIT}: "
          f"{'pass' if ok else 'FAIL'}); peak RSS +{figures['guidance_peak_rss_growth_gb']} GB in the guided job; "
          f"load average at the end {figures['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
