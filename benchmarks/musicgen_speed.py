"""MusicGen decode speed: our loop (engines/generation/musicgen/decode.py) vs transformers'
``generate()``, in decoder steps per second, on the full musicgen-small architecture with
random weights (no download).

Both sides decode the same number of steps with classifier-free guidance 3.0 and top-k 250
sampling, from the same text states. ``generate()``'s final EnCodec decode is stubbed out so
that only the token loop is timed (ours never decodes in the loop either). Each measurement
is repeated (``--repeats``) with the sides interleaved, and the best time of each is kept
(the machine may be shared). Reported:

* steps/s of ``generate()`` in float32 (what ``from_pretrained`` gives on a CPU) and in the
  decode dtype (bfloat16 where the CPU / GPU supports it, else float32);
* steps/s of our loop in the decode dtype (CPU: prepacked oneDNN weights; CUDA: the
  one-token step replayed from a CUDA graph), for 1 variation and for ``--variations``;
* the ratios, against the targets: our loop >= 2x ``generate()`` on CPU, >= 3x on a GPU,
  and N variations at <= 1.5x the time of one;
* on CPU with packed weights, the memory-bandwidth floor measured in the same run: every
  weight matrix our step reads, run once per step through its oneDNN linear with nothing
  else (no attention, norms or sampling). That is the library's self-attention, feed-forward
  and LM-head weights, which any step must read whole (each new token needs all of them),
  plus the cross-attention folded into two small per-text matrices per layer. So no loop
  that keeps the weights in bfloat16 can be faster here, and ``generate()``'s time over the
  floor's is about the largest speed-up such a loop could show on this machine.

Run: ``python benchmarks/musicgen_speed.py`` (about 2-4 minutes on 2 CPU cores with the
defaults; ``--steps`` and ``--repeats`` trade time for stability). ``--threads`` defaults
to PyTorch's default, every core, as the engine host runs; one thread streams memory at
about half the bandwidth of two on the 2-core machine this was written on.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.generation.musicgen import decode as D


def build_small(seed: int = 0):
    """musicgen-small's architecture (T5-base text encoder, 32 kHz EnCodec, 24 x 1024 decoder
    with 4 codebooks of 2048) with random weights, as ``facebook/musicgen-small``'s config."""
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )
    from transformers.utils import logging

    logging.set_verbosity_error()
    text = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    audio = EncodecConfig(sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4], hidden_size=128, num_filters=64,
                          num_residual_layers=1, num_lstm_layers=2, codebook_size=2048, target_bandwidths=[2.2],
                          use_causal_conv=False, use_conv_shortcut=False, norm_type="weight_norm")
    dec = MusicgenDecoderConfig(vocab_size=2048, num_hidden_layers=24, hidden_size=1024, ffn_dim=4096,
                                num_attention_heads=16, num_codebooks=4, max_position_embeddings=2048)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(),
                                                            decoder=dec.to_dict())).eval()
    g = model.generation_config
    g.decoder_start_token_id = g.pad_token_id = g.bos_token_id = 2048
    return model


class _NoAudio:
    audio_values = torch.zeros(1, 1, 1)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_generate(model, ids, mask, steps: int, batch: int, device: str) -> float:
    """Seconds for ``generate()`` to decode ``steps`` tokens for ``batch`` prompts (CFG 3, top-k 250)."""
    model.audio_encoder.decode = lambda *a, **k: _NoAudio()  # only the token loop is timed
    inputs = {"input_ids": ids.repeat(batch, 1), "attention_mask": mask.repeat(batch, 1)}
    _sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        model.generate(**inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=steps)
    _sync(device)
    return time.perf_counter() - t


def guided_conditioning(model, ids, mask, batch: int) -> D.Conditioning:
    """The text conditioning of ``batch`` variations with guidance (conditional rows, then null rows)."""
    with torch.no_grad():
        h = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        h = model.enc_to_dec_proj(h) * mask[..., None].to(h.dtype)
    states = torch.cat([h.repeat(batch, 1, 1), torch.zeros_like(h).repeat(batch, 1, 1)])
    cmask = torch.cat([mask.bool().repeat(batch, 1), torch.zeros_like(mask).bool().repeat(batch, 1)])
    return D.Conditioning(cross_states=states, cross_mask=cmask)


def time_ours(model, ids, mask, steps: int, batch: int, device: str, packed, graph: bool) -> float:
    """Seconds for our loop to decode ``steps`` steps for ``batch`` variations (CFG 3, top-k 250),
    text encoding and cache allocation included."""
    _sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        cond = guided_conditioning(model, ids, mask, batch)
        frames = steps - 3
        dec = D.StaticDecoder(model.decoder, 2 * batch, D.cache_length(frames, 0, 3), packed=packed)
        dec.set_conditioning(cond)
        g = D.CudaGraphStep(dec) if graph else None
        D.generate_window(dec, cond, None, frames, D.SamplingParams(temperature=1.0, top_k=250, cfg=3.0),
                          D.make_generators(list(range(batch)), device), D.codebook_delays(4), 2048, graph=g)
    _sync(device)
    return time.perf_counter() - t


def time_weight_floor(weights: list[torch.Tensor], steps: int, rows: int = 2) -> float:
    """Seconds to run each packed weight once per step through its oneDNN linear, for
    ``steps`` steps, on ``rows`` rows of zeros: the weight traffic of a decoder step alone."""
    xs = [torch.zeros(rows, w.shape[1], dtype=torch.bfloat16) for w in weights]
    t = time.perf_counter()
    for _ in range(steps):
        for w, x in zip(weights, xs):
            D.onednn_linear(x, w)
    return time.perf_counter() - t


def step_weights(model, ids, mask, packed) -> list[torch.Tensor]:
    """The packed matrices our CPU step reads for this prompt and 1 variation (guided)."""
    dec = D.StaticDecoder(model.decoder, 2, 8, packed=packed)
    dec.set_conditioning(guided_conditioning(model, ids, mask, 1))
    return dec.streamed_weights()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None, help="decoder steps per run (default: 60 CPU, 500 GPU)")
    ap.add_argument("--repeats", type=int, default=None, help="runs of each measurement, best kept (default: 4 CPU, 3 GPU)")
    ap.add_argument("--variations", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's, every core)")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                    help="decode dtype (default: bfloat16 where supported, else float32)")
    args = ap.parse_args(argv)
    device = args.device
    gpu = device.startswith("cuda")
    if not gpu and args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (500 if gpu else 60)
    args.repeats = args.repeats or (3 if gpu else 4)
    if args.dtype:
        dtype = getattr(torch, args.dtype)
    elif gpu:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        try:
            dtype = torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32
        except Exception:
            dtype = torch.float32
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"musicgen-small architecture, random weights; {where}; {steps} steps per run, best of {args.repeats}")
    t0 = time.perf_counter()
    model = build_small()
    model.to(device)
    print(f"built in {time.perf_counter() - t0:.1f} s ({sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters)")
    ids = torch.randint(0, 32000, (1, 12), generator=torch.Generator().manual_seed(1)).to(device)
    mask = torch.ones_like(ids)
    res: dict[str, list[float]] = {}

    def rec(name: str, seconds: float) -> None:
        res.setdefault(name, []).append(seconds)

    warm = 8
    if dtype != torch.float32 and not gpu:  # the library default on CPU: float32
        time_generate(model, ids, mask, warm, 1, device)
        for _ in range(args.repeats):
            rec("generate() float32", time_generate(model, ids, mask, steps, 1, device))
    model.to(dtype)
    gc.collect()
    packed = D.PackedWeights(model.decoder) if D.PackedWeights.available(model.decoder) else None
    graph = gpu
    name = str(dtype).replace("torch.", "")
    time_generate(model, ids, mask, warm, 1, device)
    time_ours(model, ids, mask, warm, 1, device, packed, graph)
    for _ in range(args.repeats):
        rec(f"generate() {name}", time_generate(model, ids, mask, steps, 1, device))
        rec(f"ours {name}, 1 variation", time_ours(model, ids, mask, steps, 1, device, packed, graph))
        rec(f"ours {name}, {args.variations} variations",
            time_ours(model, ids, mask, steps, args.variations, device, packed, graph))
    weights = step_weights(model, ids, mask, packed) if packed is not None else []
    if weights:
        time_weight_floor(weights, 2)
        for _ in range(args.repeats):
            rec("weights alone (bandwidth floor)", time_weight_floor(weights, steps))
    if gpu:
        for _ in range(args.repeats):
            rec(f"ours {name}, 1 variation, no CUDA graph", time_ours(model, ids, mask, steps, 1, device, None, False))
    best = {k: min(v) for k, v in res.items()}
    print(f"\n{'':44s} {'steps/s':>9s} {'s/run (all runs)':>26s}")
    for k, v in best.items():
        runs = ", ".join(f"{x:.1f}" for x in res[k])
        print(f"{k:44s} {steps / v:9.2f} {runs:>26s}")
    one = best[f"ours {name}, 1 variation"]
    many = best[f"ours {name}, {args.variations} variations"]
    same = best[f"generate() {name}"] / one
    target = 3.0 if gpu else 2.0
    print(f"\nours vs generate(), both {name}:          {same:5.2f}x  (target >= {target:g}x: {'met' if same >= target else 'NOT met'})")
    if "generate() float32" in best:
        r = best["generate() float32"] / one
        print(f"ours {name} vs generate() float32:       {r:5.2f}x  (target >= {target:g}x: {'met' if r >= target else 'NOT met'})")
    cost = many / one
    print(f"{args.variations} variations / 1 variation (time):        {cost:5.2f}x  (target <= 1.5x: "
          f"{'met' if cost <= 1.5 else 'NOT met'})")
    if "weights alone (bandwidth floor)" in best:
        floor = best["weights alone (bandwidth floor)"]
        nbytes = sum(w.numel() * w.element_size() for w in weights)
        print(f"\nbandwidth floor: {nbytes / 1e6:.0f} MB of bfloat16 weights per step (the library's decoder "
              f"linears: {packed.nbytes / 1e6:.0f} MB; the cross-attention folded for this prompt), "
              f"{steps / floor:.1f} steps/s ({nbytes * steps / floor / 1e9:.1f} GB/s)")
        print(f"ours reaches {floor / one:5.0%} of the floor; the floor is "
              f"{best[f'generate() {name}'] / floor:.2f}x generate() {name}"
              + (f" and {best['generate() float32'] / floor:.2f}x generate() float32" if "generate() float32" in best else "")
              + ": the most any loop over these weights can gain here")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; median of all runs: "
          + ", ".join(f"{k}: {steps / statistics.median(v):.2f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
