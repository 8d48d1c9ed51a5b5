"""Speed of our ACE-Step 1.5 engine vs ``AceStepPipeline.__call__``, with random weights.

Architecture: the full-size **ACE-Step 1.5 XL turbo** (the engine's default model,
``ACE-Step/acestep-v15-xl-turbo-diffusers``), built from these published configs:

* DiT (``transformer``): hidden 2560, 32 layers alternating sliding (window 128) and full
  attention, 32 query heads / 8 KV heads of 128, MLP 9728, condition width 2048, patch 2,
  64 latent channels, RoPE theta 1e6, ``is_turbo``. Sources: the model card of
  ``ACE-Step/acestep-v15-xl-base-diffusers`` ("hidden_size=2560, 32 layers, 32 heads;
  encoder_hidden_size=2048"; diffusers' docs: turbo, base and sft share the DiT
  architecture), the XL DiT table of ``scragnog/ace-step-1.5-gguf-merge-models`` (MLP
  9728, 8 KV heads, head dim 128, ~4.7 B parameters), and diffusers'
  ``scripts/convert_ace_step_to_diffusers.py`` for the field mapping.
* condition encoder: hidden 2048, MLP 6144, 16 heads / 8 KV, 8 lyric and 4 timbre
  layers, text width 1024, timbre width 64 (the XL ``AceStepConditionEncoder``
  ``config.json`` published in ``TensorStack/TextEncoder`` ``AceStepXLCondition/``,
  identical to ``Runware/acestep-v15-sft-diffusers/condition_encoder/config.json``).
* text encoder: Qwen3-Embedding-0.6B's body (hidden 1024, 28 layers, 16 heads / 8 KV of
  128, MLP 3072), with the byte-level tokenizer of ``tests/acestep_tiny.py`` (no
  download; about 3-4 times more tokens than Qwen's BPE, so the text encoder does a little
  more work than the real one).
* VAE: ``ACE-Step/Ace-Step1.5/vae/config.json`` (Oobleck, 128 channels, multiples
  1-2-4-8-16, strides 2-4-4-6-10, 48 kHz).

**What is not full size, exactly:** to fit the 6 GB per-process budget of the shared
development machine, the repeated layers share weights: the DiT's 32 layers are 16 copies
of one (sliding, full) pair of random layers, the lyric encoder's 8 layers 4 copies of
one pair, the timbre encoder's 4 two copies, the text encoder's 28 layers 14 copies.
Every layer still runs, with the full widths and sequence lengths, so the arithmetic,
the activation memory and the weight traffic per layer are the full model's (each
layer's weights, 0.25 GB in fp32 for the DiT, are far larger than the CPU caches, so
re-reading a shared tensor costs what reading a distinct one would). ``--no-tie`` builds
every layer separately (needs ~25 GB in fp32, ~12 GB in bf16).

Runs, one process, same seeded weights, same prompt and lyrics:

1. ours: ``AceStepEngine.run`` (generate, ``--seconds`` of audio at 48 kHz, 1 variation,
   ``--compare-steps`` steps);
2. baseline: ``pipe(prompt, lyrics, audio_duration, num_inference_steps, generator)``
   at the same settings; the max absolute difference of the audio is printed;
3. ours with ``--variations`` variations at the same settings (4 vs 1);
4. ours, 1 variation, the model's own ``--steps`` (8): the real-time factor of a
   ``--seconds`` generate.

Printed: wall seconds, CPU seconds (user + system, all threads: less sensitive to other
programs on a shared machine), RTF = seconds / audio seconds, per-stage times of ours
(text, steps, decode), ratios, and the peak RSS. The machine's load average is printed
too: on a shared machine, compare figures of the same run only.

Usage::

    python benchmarks/generation_speed.py                    # CPU, fp32, ~10 min on 2 idle cores
    python benchmarks/generation_speed.py --compare-steps 1 --skip-full   # quicker
    python benchmarks/generation_speed.py --device cuda --dtype bfloat16 --seconds 30 --compare-steps 8
    python benchmarks/generation_speed.py --vae-memory      # decode memory: tiled vs untiled

``--vae-memory`` decodes 5, 10 and 20 s of latents untiled and 20 s in 5 s tiles with
the real VAE (fp32, CPU), each in a fresh process, and prints the growth of the peak
resident memory: untiled it grows with the length, tiled it stays at one tile's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "uplifting synth-pop with punchy drums, warm bass and a bright female vocal"
LYRICS = ("[verse]\nCity lights are calling out my name\nEvery window burning like a flame\n"
          "[chorus]\nWe run, we run into the night\nHearts like thunder, eyes so bright\n")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def build_full_size(dtype: str = "float32", seed: int = 0, tie: bool = True):
    """The XL turbo AceStepPipeline with random weights (see the module docstring)."""
    import torch
    from diffusers import AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder, AceStepPipeline
    from torch import nn
    from transformers import Qwen3Config, Qwen3Model

    from tests.acestep_tiny import build_tokenizer

    def tied(layers: nn.ModuleList, n: int) -> nn.ModuleList:
        return nn.ModuleList([layers[i % len(layers)] for i in range(n)])

    dit_layers, lyric_layers, timbre_layers, text_layers = 32, 8, 4, 28
    torch.manual_seed(seed)
    transformer = AceStepTransformer1DModel(
        hidden_size=2560, intermediate_size=9728, num_hidden_layers=2 if tie else dit_layers, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, in_channels=192, audio_acoustic_hidden_dim=64, patch_size=2,
        rope_theta=1000000.0, sliding_window=128, encoder_hidden_size=2048, is_turbo=True, model_version="turbo")
    if tie:
        transformer.layers = tied(transformer.layers, dit_layers)
        transformer.layer_types = ["sliding_attention", "full_attention"] * (dit_layers // 2)
    condition_encoder = AceStepConditionEncoder(
        hidden_size=2048, intermediate_size=6144, text_hidden_dim=1024, timbre_hidden_dim=64,
        num_lyric_encoder_hidden_layers=2 if tie else lyric_layers,
        num_timbre_encoder_hidden_layers=2 if tie else timbre_layers, num_attention_heads=16, num_key_value_heads=8,
        head_dim=128, rope_theta=1000000.0, sliding_window=128)
    if tie:
        for enc, n in ((condition_encoder.lyric_encoder, lyric_layers), (condition_encoder.timbre_encoder, timbre_layers)):
            enc.layers = tied(enc.layers, n)
            enc._layer_types = ["sliding_attention", "full_attention"] * (n // 2)
    g = torch.Generator().manual_seed(seed + 1)
    condition_encoder.silence_latent.copy_(0.1 * torch.randn(condition_encoder.silence_latent.shape, generator=g))
    tokenizer = build_tokenizer()
    cfg = Qwen3Config(hidden_size=1024, intermediate_size=3072, num_hidden_layers=2 if tie else text_layers,
                      num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=len(tokenizer),
                      max_position_embeddings=32768, rope_theta=1000000.0, use_cache=False)
    text_encoder = Qwen3Model(cfg)
    if tie:
        text_encoder.layers = tied(text_encoder.layers, text_layers)
        text_encoder.config.num_hidden_layers = text_layers
        text_encoder.config.layer_types = ["full_attention"] * text_layers
    vae = AutoencoderOobleck(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 6, 10],
                             channel_multiples=[1, 2, 4, 8, 16], decoder_channels=128, decoder_input_channels=64,
                             audio_channels=2, sampling_rate=48000)
    pipe = AceStepPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                           condition_encoder=condition_encoder,
                           scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0))
    pipe.set_progress_bar_config(disable=True)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    for m in (transformer, condition_encoder, text_encoder, vae):
        m.to(torch_dtype).eval()
    return pipe


def _params(module) -> int:
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def _layer_count_params(module) -> int:
    """Parameters as if every (tied) layer were its own."""
    return sum(p.numel() for _, p in module.named_parameters(remove_duplicate=False))


def _vae_peak(seconds: float, tile_seconds: float | None, queue) -> None:
    """In a fresh process: peak RSS growth (GB) while decoding ``seconds`` of random latents
    with the real VAE (fp32, CPU), untiled (``tile_seconds`` None) or in tiles."""
    import torch
    from diffusers import AutoencoderOobleck

    from engines.generation.acestep import vae as tiled

    torch.manual_seed(0)
    model = AutoencoderOobleck(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 6, 10],
                               channel_multiples=[1, 2, 4, 8, 16], decoder_channels=128, decoder_input_channels=64,
                               audio_channels=2, sampling_rate=48000).eval()
    z = torch.randn(1, int(seconds * 25), 64)
    base = _rss_peak_gb()
    t0 = time.monotonic()
    tiles = tiled.Tiling(z.shape[1], 0) if tile_seconds is None else tiled.tiling(tile_seconds, 1.0, 25.0)
    tiled.decode(model, z, tiles)
    queue.put((round(_rss_peak_gb() - base, 3), round(time.monotonic() - t0, 1), tiles.tile))


def vae_memory(pairs: list[tuple[float, float | None]]) -> list[dict]:
    """Peak memory of VAE decode per (audio seconds, tile seconds or None), each in its own process."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = []
    for seconds, tile in pairs:
        q = ctx.Queue()
        p = ctx.Process(target=_vae_peak, args=(seconds, tile, q))
        p.start()
        gb, wall, frames = q.get()
        p.join()
        out.append({"audio_s": seconds, "tile_s": tile, "tile_frames": frames, "peak_growth_gb": gb, "wall_s": wall})
        print(f"VAE decode of {seconds:5.1f} s, {'untiled' if tile is None else f'{tile:.0f} s tiles'}: "
              f"peak memory +{gb:.2f} GB, {wall:.1f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="audio length in seconds (default 10)")
    ap.add_argument("--steps", type=int, default=8, help="steps of the RTF run (turbo's own: 8)")
    ap.add_argument("--compare-steps", type=int, default=2, help="steps of the ours-vs-pipeline and 4-vs-1 runs")
    ap.add_argument("--variations", type=int, default=4, help="variations of the batch run (default 4)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                    help="default: the engine's policy (float32 on CPU, bfloat16 on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--no-tie", action="store_true", help="distinct weights for every layer (much more memory)")
    ap.add_argument("--skip-full", action="store_true", help="skip run 4 (the --steps RTF run)")
    ap.add_argument("--vae-memory", action="store_true",
                    help="only measure the VAE decode's peak memory, tiled vs untiled (fp32 CPU, real VAE)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from engines.base import CancelToken, GenerateSpec, ProgressReporter
    from engines.generation.acestep.engine import AceStepEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.vae_memory:
        figures = {"vae_memory": vae_memory([(5.0, None), (10.0, None), (20.0, None), (20.0, 5.0)])}
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
        return 0
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    sr = 48000
    frames = int(round(args.seconds * sr))
    figures: dict = {"device": args.device, "dtype": dtype, "seconds": args.seconds, "threads": torch.get_num_threads(),
                     "load_average_start": os.getloadavg(), "tied_layers": not args.no_tie}
    t0 = time.monotonic()
    pipe = build_full_size(dtype, tie=not args.no_tie)
    pipe.to(args.device)
    figures["build_s"] = round(time.monotonic() - t0, 1)
    figures["params_unique_B"] = round(sum(_params(m) for m in (pipe.transformer, pipe.condition_encoder,
                                                                 pipe.text_encoder, pipe.vae)) / 1e9, 3)
    figures["params_full_model_B"] = round(sum(_layer_count_params(m) for m in (
        pipe.transformer, pipe.condition_encoder, pipe.text_encoder, pipe.vae)) / 1e9, 3)
    figures["dit_params_full_model_B"] = round(_layer_count_params(pipe.transformer) / 1e9, 3)
    print(f"built XL turbo ({figures['params_full_model_B']} B parameters as run, "
          f"{figures['params_unique_B']} B distinct) in {figures['build_s']} s on {args.device} {dtype}, "
          f"{figures['threads']} threads, load average {figures['load_average_start']}", flush=True)

    engine = AceStepEngine()
    engine.load(args.device, dtype)
    engine.use_pipeline(pipe, model_id="bench-xl-turbo")

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def ours(steps: int, variations: int, seed: int = 1):
        marks: dict[str, float] = {}

        def sink(fraction, stage, eta):
            now = time.monotonic()
            key = stage.split(" ")[0]
            marks.setdefault(f"first {key}", now)
            marks[f"last {key}"] = now

        spec = GenerateSpec(engine_id="acestep", model_id="bench-xl-turbo", prompt=PROMPT, lyrics=LYRICS, bpm=120,
                            key="A minor", time_signature="4/4", frames=frames, sample_rate=sr, seed=seed,
                            variations=variations, params={"steps": steps})
        sync()
        c0, w0 = _cpu_seconds(), time.monotonic()
        res = engine.run(spec, ProgressReporter(sink), CancelToken())
        sync()
        wall, cpu = time.monotonic() - w0, _cpu_seconds() - c0
        stages = {
            "text_s": round(marks.get("first generating", w0) - w0, 2),
            "steps_s": round(marks.get("last step", w0) - marks.get("first generating", w0), 2),
            "decode_s": round(marks.get("last decoding", w0) - marks.get("last step", w0), 2),
        }
        return res, wall, cpu, stages

    def report(name: str, wall: float, cpu: float, extra: str = "") -> dict:
        rtf = wall / args.seconds
        print(f"{name:<34} wall {wall:8.1f} s  cpu {cpu:8.1f} s  RTF {rtf:7.2f}  {extra}", flush=True)
        return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rtf": round(rtf, 3)}

    # 1. ours, compare steps
    res1, wall, cpu, stages = ours(args.compare_steps, 1)
    figures["ours_1var"] = {**report(f"ours, 1 variation, {args.compare_steps} steps", wall, cpu, str(stages)),
                            **stages}
    # 2. the pipeline's own __call__ at the same settings
    gen = torch.Generator("cpu").manual_seed(1)
    sync()
    c0, w0 = _cpu_seconds(), time.monotonic()
    ref = pipe(prompt=PROMPT, lyrics=LYRICS, audio_duration=args.seconds, num_inference_steps=args.compare_steps,
               generator=gen, bpm=120, keyscale="A minor", timesignature="4").audios
    sync()
    wall_p, cpu_p = time.monotonic() - w0, _cpu_seconds() - c0
    figures["pipeline_1var"] = report(f"pipeline __call__, {args.compare_steps} steps", wall_p, cpu_p)
    diff = float(np.abs(ref[0].float().cpu().numpy() - res1.outputs["take1"]).max())
    figures["max_abs_diff_ours_vs_pipeline"] = diff
    figures["speedup_vs_pipeline_wall"] = round(wall_p / figures["ours_1var"]["wall_s"], 3)
    figures["speedup_vs_pipeline_cpu"] = round(cpu_p / figures["ours_1var"]["cpu_s"], 3)
    print(f"ours vs pipeline: max |audio difference| = {diff:.3g} (peak {float(ref.abs().max()):.3f}); "
          f"speed-up x{figures['speedup_vs_pipeline_wall']} wall, x{figures['speedup_vs_pipeline_cpu']} cpu",
          flush=True)
    del ref
    # 3. variations
    if args.variations > 1:
        resn, wall, cpu, stages = ours(args.compare_steps, args.variations)
        figures[f"ours_{args.variations}var"] = {**report(f"ours, {args.variations} variations, {args.compare_steps} "
                                                          f"steps", wall, cpu, str(stages)), **stages}
        one = figures["ours_1var"]
        figures["variations_cost_ratio_wall"] = round(wall / one["wall_s"], 3)
        figures["variations_cost_ratio_cpu"] = round(cpu / one["cpu_s"], 3)
        step_ratio = stages["steps_s"] / max(1e-9, one["steps_s"])
        figures["variations_step_ratio"] = round(step_ratio, 3)
        print(f"{args.variations} variations cost x{figures['variations_cost_ratio_wall']} (wall) "
              f"x{figures['variations_cost_ratio_cpu']} (cpu) one variation; DiT steps alone x{step_ratio:.2f}",
              flush=True)
        del resn
    # 4. the real-time factor at the model's own step count
    if not args.skip_full:
        _, wall, cpu, stages = ours(args.steps, 1)
        figures["ours_full_steps"] = {**report(f"ours, 1 variation, {args.steps} steps", wall, cpu, str(stages)),
                                      **stages, "steps": args.steps}
    figures["peak_rss_gb"] = round(_rss_peak_gb(), 2)
    if args.device.startswith("cuda"):
        figures["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    figures["load_average_end"] = os.getloadavg()
    print(f"peak RSS {figures['peak_rss_gb']} GB; load average at the end {figures['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
