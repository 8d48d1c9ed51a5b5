"""Speed of RVC voice conversion per stage: embedder, pitch, index, synthesizer.

Setup: full-size models with random weights (speed does not depend on the weights):

* ContentVec: transformers ``HubertModel`` in ContentVec's configuration (HuBERT-Base:
  12 layers, 768 wide, 512-channel convolutional front end) plus ``final_proj``;
* pitch: FCPE with torchfcpe's shipped weights (the default), and RMVPE ``E2E(4, 1, (2, 2))``
  (90 M parameters, as RVC's ``rmvpe.pt``), timed on the same padded audio;
* synthesizer: RVC v2 at 40 kHz (RVC's full config, fp16 checkpoint as RVC writes it,
  run in float32 on CPU and float16 on CUDA);
* index (with faiss installed, to write it): an ``IVF{16 sqrt(N)},Flat`` index of N random
  768-d vectors (default 20 000), nprobe 1, as RVC's ``train_index.py`` writes.

Input: a seeded "sung" signal at 44.1 kHz (vibrato tone with harmonics, syllable-like
amplitude envelope and breath noise), default 20 s. Each device first converts 2 s to warm
up, then the whole signal with :func:`engines.voice.pipeline.convert` and the engine
defaults (1 s pads, chunks of 38 s, transpose 0, index_rate 0.75, protect 0.33).

Printed per device: wall seconds and real-time factor (RTF = processing seconds / audio
seconds, lower is faster) for each stage and the whole conversion ("total" includes
resampling, filtering and the RMS mix), the same in process CPU seconds (all threads; on
a shared machine the steadier figure), RMVPE in place of FCPE; peak CPU RSS, and on CUDA
``torch.cuda.max_memory_allocated``. On CUDA the stage timers synchronise the device.
The audio seconds include neither the 1 s pads nor the warm-up.

Usage::

    python benchmarks/voice_speed.py --seconds 20
    python benchmarks/voice_speed.py --seconds 60 --device cuda --json voice_speed.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR = 44100


def _rss_peak_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024) / 1e6


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sung_signal(seconds: float, sr: int = SR, seed: int = 0):
    """A seeded vocal-like test signal, ``(1, frames)`` float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    notes = 196.0 * 2 ** (rng.integers(0, 12, size=int(seconds * 2) + 2) / 12)
    f0 = notes[(t * 2).astype(int)] * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.clip(np.sin(np.pi * (t * 2 % 1)) * 1.4, 0, 1)
    x = 0.25 * tone * env + 0.01 * rng.standard_normal(n)
    return x[None].astype(np.float32)


def _build(folder: Path, n_index: int):
    import torch
    from transformers import HubertConfig

    from engines.voice.embedder import _model_class
    from tests.voice_tiny import write_checkpoint

    torch.manual_seed(0)
    voice = write_checkpoint(folder / "voice.pth", "v2", "40k", seed=0, n_speakers=1)
    emb_dir = folder / "contentvec"
    _model_class()(HubertConfig()).save_pretrained(str(emb_dir))
    from engines.voice.rmvpe import E2E

    rmvpe = E2E(4, 1, (2, 2))
    index_path = None
    if n_index:
        try:
            import faiss
            import numpy as np

            feats = np.random.default_rng(1).standard_normal((n_index, 768)).astype(np.float32)
            nlist = max(1, min(int(16 * np.sqrt(n_index)), n_index // 39))
            index = faiss.index_factory(768, f"IVF{nlist},Flat")
            index.train(feats)
            faiss.extract_index_ivf(index).nprobe = 1
            index.add(feats)
            index_path = folder / f"added_IVF{nlist}_Flat_nprobe_1.index"
            faiss.write_index(index, str(index_path))
        except ImportError:
            print("faiss is not installed: no index stage")
    return voice, emb_dir, rmvpe, index_path


def run_device(device: str, dtype: str, audio, voice: Path, emb_dir: Path, rmvpe_model, index_path) -> dict:
    """Convert ``audio`` on ``device``; returns the figures."""
    import numpy as np
    import torch

    from engines.analysis.melody import load_fcpe
    from engines.voice.checkpoint import load_voice
    from engines.voice.embedder import ContentVec
    from engines.voice.faiss_index import read_index
    from engines.voice.pipeline import ConversionOptions, convert
    from engines.voice.pitch import fcpe_f0
    from engines.voice.rmvpe import RMVPE

    net, ckpt = load_voice(voice, device, dtype)
    emb = ContentVec(emb_dir, device, dtype)
    fcpe = load_fcpe(device)
    rmvpe = RMVPE(model=rmvpe_model, device=device, dtype=dtype)
    index = read_index(index_path).to_torch(device) if index_path else None
    kw = dict(synthesizer=net, version=ckpt.version, embedder=emb, index=index, device=device,
              options=ConversionOptions())
    fcpe_fn = lambda a, n: fcpe_f0(a, n, fcpe)  # noqa: E731
    convert(audio[:, : 2 * SR], SR, f0_fn=fcpe_fn, **kw)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds = audio.shape[1] / SR
    cpu0, t0 = _cpu_seconds(), time.monotonic()
    r = convert(audio, SR, f0_fn=fcpe_fn, **kw)
    wall, cpu = time.monotonic() - t0, _cpu_seconds() - cpu0
    assert r.audio.shape == audio.shape and np.isfinite(r.audio).all()
    # RMVPE on the same padded chunk audio the pipeline tracks (1 s reflect pads)
    x16 = np.pad(np.ascontiguousarray(r.audio[0, :: max(1, SR // 16000)][: int(seconds * 16000)]), 16000,
                 mode="reflect")
    rmvpe.f0(x16[:32000], 201)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t1 = time.monotonic()
    rmvpe.f0(x16, x16.size // 160)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_rmvpe = time.monotonic() - t1
    stages = {k: float(v) for k, v in r.info["seconds"].items()}
    cpu_stages = {k: float(v) for k, v in r.info["cpu_seconds"].items()}
    out = {
        "device": device, "dtype": dtype, "audio_seconds": seconds, "chunks": len(r.info["chunks"]),
        "stage_seconds": stages, "stage_rtf": {k: v / seconds for k, v in stages.items()},
        "stage_cpu_seconds": cpu_stages, "stage_cpu_rtf": {k: v / seconds for k, v in cpu_stages.items()},
        "total_seconds": wall, "total_rtf": wall / seconds, "cpu_seconds_per_audio_second": cpu / seconds,
        "rmvpe_seconds": t_rmvpe, "rmvpe_rtf": t_rmvpe / seconds, "peak_rss_mb": _rss_peak_mb(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 1e6
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def _print(fig: dict) -> None:
    print(f"\n{fig['device']} ({fig['dtype']}{', ' + fig['gpu'] if 'gpu' in fig else ''}, "
          f"{fig['torch_threads']} torch threads): {fig['audio_seconds']:.0f} s of audio in {fig['chunks']} chunk(s)")
    print(f"  {'stage':<12}{'seconds':>9}{'RTF':>9}{'CPU s':>9}{'CPU RTF':>9}")
    for k in ("embedder", "pitch", "index", "synthesizer", "total"):
        print(f"  {k:<12}{fig['stage_seconds'][k]:>9.2f}{fig['stage_rtf'][k]:>9.3f}"
              f"{fig['stage_cpu_seconds'][k]:>9.2f}{fig['stage_cpu_rtf'][k]:>9.3f}")
    print(f"  {'rmvpe':<12}{fig['rmvpe_seconds']:>9.2f}{fig['rmvpe_rtf']:>9.3f}   (pitch by RMVPE instead of FCPE)")
    print(f"  CPU s per audio s: {fig['cpu_seconds_per_audio_second']:.2f}; peak RSS {fig['peak_rss_mb']:.0f} MB"
          + (f"; CUDA peak {fig['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in fig else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="signal length in seconds (default 20)")
    ap.add_argument("--device", action="append", help="cpu or cuda[:N]; repeatable (default: cpu, and cuda if present)")
    ap.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="GPU dtype (CPU: float32)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--index-size", type=int, default=20000, help="vectors in the test index (0 = no index)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    audio = sung_signal(args.seconds)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        voice, emb_dir, rmvpe_model, index_path = _build(Path(tmp), args.index_size)
        print(f"built random full-size models in {time.monotonic() - t:.1f} s")
        for dev in devices:
            dtype = "float32" if dev == "cpu" else args.dtype
            fig = run_device(dev, dtype, audio, voice, emb_dir, rmvpe_model, index_path)
            _print(fig)
            figures.append(fig)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
