"""Our MusicGen decode loop: delay pattern, one-batch classifier-free guidance, top-k/top-p
sampling with seeded generators, a static KV cache, cross-attention keys/values computed
once, sliding windows at the token level, and (on CUDA) the one-token step in a CUDA graph.

It runs the modules of transformers' ``MusicgenForCausalLM`` / ``MusicgenMelodyForCausalLM``
(embeddings, layer norms, projections, feed-forward layers, LM heads: the library's own
``nn.Module`` objects and weights); only the order of calls around them is ours, so that
the KV cache can be preallocated and the step captured. Why not ``generate()``: it runs
the prefill twice, ``num_return_sequences`` mixes codebooks across sequences, an early
stop crashes in its delay undo, and it returns audio but no tokens, so token-level
continuation (sliding windows, extend) is impossible through it.

Sources:

* Copet et al., "Simple and Controllable Music Generation", NeurIPS 2023 (MusicGen):
  the codebook delay pattern (section 2.2), classifier-free guidance (section 2.3,
  coefficient 3.0), top-k 250 sampling, 30 s windows extended with a stride.
* audiocraft (facebookresearch/audiocraft): ``LMModel.generate`` /
  ``_sample_next_token`` (CFG as ``uncond + (cond - uncond) * cfg``, softmax with
  temperature, top-k / top-p), ``MusicGen._generate_tokens`` (``extend_stride``: windows
  of ``max_duration`` moved by the stride, the last ``max_duration - stride`` seconds kept
  as the next window's prompt).
* transformers (``models/musicgen``): ``build_delay_pattern_mask`` (pad = the special
  token ``vocab_size``; stereo codebooks interleaved left/right sharing one delay), the
  conditioning layout (``[conditional; null]`` in one batch, null text = zeros, the
  melody model's ``[chroma; text]`` prefix in the decoder's self-attention).
* The exponential-race form of multinomial sampling (``argmax(p / E)``, E ~ Exp(1)) is
  exactly a draw from ``p``; it lets each variation draw from its own seeded generator.

Shapes: ``B`` variations, ``N = 2B`` rows with guidance (conditional rows first),
``K`` codebooks, ``V`` codebook size, ``T`` codec frames, ``S = T + max_delay + 1`` steps
of the delayed sequence. Codec frames run at the codec's frame rate (50 Hz for the
32 kHz EnCodec of MusicGen).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "Conditioning",
    "CudaGraphStep",
    "PackedWeights",
    "SamplingParams",
    "StaticDecoder",
    "WindowPlan",
    "apply_delay",
    "cache_length",
    "codebook_delays",
    "frames_for",
    "generate_long",
    "generate_window",
    "make_generators",
    "plan_windows",
    "sample_next",
    "undo_delay",
]


# --------------------------------------------------------------------------- delay pattern


def codebook_delays(num_codebooks: int, audio_channels: int = 1) -> list[int]:
    """Delay in steps of each codebook: ``k`` for mono, ``k // 2`` for stereo.

    Stereo MusicGen interleaves left/right codebooks (``[L0, R0, L1, R1, ...]``) and both
    streams of one level share its delay (transformers ``build_delay_pattern_mask``;
    audiocraft's stereo models).

    Args:
        num_codebooks: K (4 for mono MusicGen, 8 for stereo).
        audio_channels: 1 or 2.

    Returns:
        K non-negative ints.
    """
    return [k // int(audio_channels) for k in range(int(num_codebooks))]


def apply_delay(codes: torch.Tensor, delays: list[int], special: int, known: int | None = None) -> torch.Tensor:
    """Codes in time order -> the delayed sequence the decoder reads (Copet et al. 2023, 2.2).

    Step 0 holds the special (start) token in every codebook; codebook ``k`` holds its
    frame ``t`` at step ``1 + delays[k] + t``; every other position is the special token.

    Args:
        codes: ``(B, K, T)`` long codes.
        delays: per-codebook delays (:func:`codebook_delays`).
        special: the special token id (``vocab_size``; transformers' pad / decoder start).
        known: only the first ``known`` frames are written (the rest stay special); None = all.

    Returns:
        ``(B, K, T + max(delays) + 1)`` long.
    """
    b, k, t = codes.shape
    seq = torch.full((b, k, t + max(delays) + 1), int(special), dtype=torch.long, device=codes.device)
    n = t if known is None else int(known)
    for i, d in enumerate(delays):
        seq[:, i, 1 + d: 1 + d + n] = codes[:, i, :n]
    return seq


def undo_delay(seq: torch.Tensor, delays: list[int], frames: int) -> torch.Tensor:
    """Inverse of :func:`apply_delay`: ``(B, K, S)`` -> ``(B, K, frames)`` codes."""
    return torch.stack([seq[:, i, 1 + d: 1 + d + frames] for i, d in enumerate(delays)], dim=1)


def _generated_positions(delays: list[int], frames: int, prompt: int, device: torch.device) -> torch.Tensor:
    """``(K, S)`` bool: positions the model must fill (valid for the codebook and not in the prompt)."""
    s = frames + max(delays) + 1
    pos = torch.arange(s, device=device)
    rows = [(pos >= 1 + d + prompt) & (pos <= d + frames) for d in delays]
    return torch.stack(rows)


# --------------------------------------------------------------------------- sampling


@dataclass
class SamplingParams:
    """How the next token is chosen (audiocraft ``LMModel.generate`` defaults).

    Attributes:
        temperature: softmax temperature; ``0`` = greedy (argmax).
        top_k: keep the k most likely tokens (audiocraft: 250; transformers: 50); 0 = off.
        top_p: keep the smallest set of tokens with this cumulative probability; 0 = off
            (when > 0 it replaces top-k, as in audiocraft).
        cfg: classifier-free guidance coefficient (``uncond + (cond - uncond) * cfg``);
            ``1`` = no guidance (one row per variation instead of two).
    """

    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    cfg: float = 3.0

    @property
    def guided(self) -> bool:
        """True when guidance needs the null rows (``cfg != 1``)."""
        return float(self.cfg) != 1.0


def make_generators(seeds: list[int], device: str | torch.device) -> list[torch.Generator]:
    """One seeded ``torch.Generator`` per variation (variation v uses ``seeds[v]``), on
    ``device`` for CUDA, on the CPU otherwise (MPS draws its noise on the CPU)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        dev = torch.device("cpu")
    out = []
    for s in seeds:
        g = torch.Generator(device=dev)
        g.manual_seed(int(s))
        out.append(g)
    return out


def sample_next(logits: torch.Tensor, params: SamplingParams, generators: list[torch.Generator]) -> torch.Tensor:
    """Pick one token per codebook and variation.

    Args:
        logits: ``(N, K, V)`` float32; with guidance ``N = 2B`` (conditional rows first,
            then the null rows), else ``N = B``.
        params: :class:`SamplingParams`.
        generators: B seeded generators; variation ``b`` draws only from ``generators[b]``
            (so a variation's randomness does not depend on the batch it ran in).

    Returns:
        ``(B, K)`` long tokens.

    Method: CFG and temperature/top-k/top-p as audiocraft's ``_sample_next_token``;
    the draw is the exponential race ``argmax(p / E)``, E ~ Exp(1), an exact sample of ``p``.
    """
    b = len(generators)
    if params.guided:
        cond, uncond = logits[:b], logits[b:]
        logits = uncond + (cond - uncond) * float(params.cfg)
    if params.temperature <= 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / float(params.temperature), dim=-1)
    v = probs.shape[-1]
    if params.top_p > 0.0:
        sorted_p, idx = probs.sort(dim=-1, descending=True)
        cum = sorted_p.cumsum(dim=-1)
        sorted_p = sorted_p.masked_fill(cum - sorted_p > float(params.top_p), 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, idx, sorted_p)
    elif 0 < params.top_k < v:
        kth = probs.topk(int(params.top_k), dim=-1).values[..., -1:]
        probs = probs.masked_fill(probs < kth, 0.0)
    noise = torch.stack([torch.empty(probs.shape[1:], device=g.device, dtype=probs.dtype).exponential_(1.0, generator=g)
                         for g in generators]).to(probs.device)
    return (probs / noise).argmax(dim=-1)


# --------------------------------------------------------------------------- conditioning


@dataclass
class Conditioning:
    """What the decoder is conditioned on, for ``N`` rows (conditional rows, then null rows).

    Attributes:
        cross_states: ``(N, L, D)`` text states for the cross-attention (MusicGen), already
            projected to the decoder width and multiplied by their mask; None for melody.
        cross_mask: ``(N, L)`` bool, True where a text state may be attended to.
        prefix: ``(N, C, D)`` embeddings prepended to the decoder sequence
            (MusicGen-Melody: projected chroma then text states); None for MusicGen.
    """

    cross_states: torch.Tensor | None = None
    cross_mask: torch.Tensor | None = None
    prefix: torch.Tensor | None = None

    @property
    def prefix_len(self) -> int:
        """C, the number of prefix positions (0 without a prefix)."""
        return 0 if self.prefix is None else int(self.prefix.shape[1])


# --------------------------------------------------------------------------- the decoder


def onednn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, gelu: bool = False,
                  residual: torch.Tensor | None = None) -> torch.Tensor:
    """``residual + act(x @ W.T + b)`` in one oneDNN call, with ``w`` packed by
    ``torch.ops.mkldnn._reorder_linear_weight``.

    Args:
        x: ``(..., in)`` bfloat16.
        w: ``(out, in)`` packed bfloat16 weight; b: ``(out,)`` or None.
        gelu: apply the exact (erf) GELU inside the call.
        residual: a tensor of the output's shape ``(..., out)`` added inside the call
            (not together with ``gelu``).

    Returns:
        ``(..., out)`` bfloat16.
    """
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    if residual is not None:
        out = torch.ops.mkldnn._linear_pointwise.binary(x2, residual.reshape(x2.shape[0], -1), w, b, "add")
    else:
        out = torch.ops.mkldnn._linear_pointwise(x2, w, b, "gelu" if gelu else "none", [], "none" if gelu else "")
    return out.view(*shape[:-1], out.shape[-1])


def _decoder_parts(lm: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """``(decoder, lm_heads)`` of a ``MusicgenForCausalLM`` / ``MusicgenMelodyForCausalLM``."""
    return lm.model.decoder, lm.lm_heads


class PackedWeights:
    """The decoder's linear weights prepacked for oneDNN, for CPU bfloat16 decoding.

    On CPUs with bfloat16 matrix units (AVX512-BF16 / AMX), ``torch.nn.functional.linear``
    in bfloat16 re-lays the weight out on every call; with few rows (one token, a few
    variations) that dominates. Packing once (``torch.ops.mkldnn._reorder_linear_weight``,
    the weight format PyTorch's inductor uses for frozen CPU linears) and calling
    ``torch.ops.mkldnn._linear_pointwise`` gives the same numbers about 1.3x (one
    variation) to 4x (four) faster than float32. The query/key/value projections and the
    per-codebook LM heads are packed as one matrix each (one call instead of 3 or K).

    Args:
        lm: the ``MusicgenForCausalLM`` / ``MusicgenMelodyForCausalLM``, in bfloat16 on CPU.
        rows: expected rows per call (a layout hint; any row count works).

    Memory: one extra bfloat16 copy of the decoder's linear weights.

    Raises:
        RuntimeError: oneDNN packing is unavailable (check :meth:`available` first).
    """

    def __init__(self, lm: torch.nn.Module, rows: int = 2):
        decoder, heads = _decoder_parts(lm)
        reorder = torch.ops.mkldnn._reorder_linear_weight
        self._w: dict = {}
        self._b: dict = {}
        with torch.no_grad():
            for i, layer in enumerate(decoder.layers):
                a = layer.self_attn
                self._w[("qkv", i)] = reorder(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).contiguous(),
                                              int(rows))
                mods = [a.out_proj, layer.fc1, layer.fc2]
                if hasattr(layer, "encoder_attn"):
                    mods += [layer.encoder_attn.q_proj, layer.encoder_attn.out_proj]
                for m in mods:
                    self._w[id(m)] = reorder(m.weight.contiguous(), int(rows))
                    self._b[id(m)] = m.bias
            self._w["heads"] = reorder(torch.cat([h.weight for h in heads]).contiguous(), int(rows))

    @staticmethod
    def available(lm: torch.nn.Module) -> bool:
        """True on CPU, in bfloat16, where oneDNN bfloat16 linears are supported."""
        p = next(lm.parameters())
        if p.device.type != "cpu" or p.dtype != torch.bfloat16:
            return False
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        except (AttributeError, RuntimeError):
            return False

    def linear(self, key, x: torch.Tensor, gelu: bool = False, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``x @ W.T (+ b)`` with the packed weight ``key`` (a module's ``id`` or ``("qkv", i)``/``"heads"``).

        Args:
            gelu: apply the exact (erf) GELU inside the oneDNN call (one pass instead of two).
            residual: a tensor of the output's shape added inside the oneDNN call.
        """
        return onednn_linear(x, self._w[key], self._b.get(key), gelu=gelu, residual=residual)

    def has(self, key) -> bool:
        """True when ``key`` was packed."""
        return key in self._w

    def weight(self, key) -> torch.Tensor:
        """The packed weight ``key``."""
        return self._w[key]

    @property
    def nbytes(self) -> int:
        """Bytes of the packed weights (a step reads each once, except the cross-attention's
        q/out projections where :class:`StaticDecoder` folds them)."""
        return sum(w.numel() * w.element_size() for w in self._w.values())


class StaticDecoder:
    """The library's decoder layers run over a preallocated (static) KV cache.

    Each layer's modules are called as in transformers' ``MusicgenDecoderLayer.forward``
    (pre-norm self-attention, cross-attention for MusicGen, feed-forward) with
    ``torch.nn.functional.scaled_dot_product_attention``; keys and values of new
    positions are written into cache tensors of fixed size, and the cross-attention keys
    and values of the text are computed once per job (:meth:`set_conditioning`). On the
    CPU the cross-attention is folded into two small per-text matrices per layer
    (:meth:`_absorb`), which cuts the weight traffic of a step by about 11 % for a short
    description.

    Args:
        lm: a ``MusicgenForCausalLM`` or ``MusicgenMelodyForCausalLM`` in eval mode, on
            its device and dtype.
        rows: N, the batch rows (2 x variations with guidance).
        max_len: cache length in positions (prefix + steps of the longest window).
        packed: :class:`PackedWeights` of ``lm`` (CPU bfloat16), or None to call the
            modules themselves.
        fold_cross: fold the cross-attention where it applies (CPU only; see :meth:`_absorb`).

    Raises:
        torch.cuda.OutOfMemoryError (or RuntimeError "out of memory"): the cache does
            not fit; the engine host retries with a smaller ``chunk_scale``.
    """

    def __init__(self, lm: torch.nn.Module, rows: int, max_len: int, packed: PackedWeights | None = None,
                 fold_cross: bool = True):
        self.decoder, self.heads = _decoder_parts(lm)
        self.packed = packed
        self.fold_cross = bool(fold_cross)
        cfg = lm.config
        p = next(lm.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.rows, self.max_len = int(rows), int(max_len)
        self.num_codebooks = int(cfg.num_codebooks)
        self.hidden = int(cfg.hidden_size)
        self.heads_n = int(cfg.num_attention_heads)
        self.head_dim = self.hidden // self.heads_n
        self.layers = list(self.decoder.layers)
        self.cross = hasattr(self.layers[0], "encoder_attn")
        self.gelu = getattr(cfg, "activation_function", None) == "gelu"  # exact GELU: fused into packed fc1
        emb = self.decoder.embed_positions
        if emb.weights.shape[0] < self.max_len:  # the library's own way of growing the table
            emb.make_weights(self.max_len, emb.embedding_dim)
        self.positions = emb.weights[: self.max_len].to(self.device, self.dtype)
        shape = (self.rows, self.heads_n, self.max_len, self.head_dim)
        self.k_cache = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in self.layers]
        self.v_cache = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in self.layers]
        self.cross_k: list[torch.Tensor] = []
        self.cross_v: list[torch.Tensor] = []
        self.cross_mask: torch.Tensor | None = None
        self._cond: Conditioning | None = None
        self._absorbed: tuple[int, int, list[tuple[torch.Tensor, torch.Tensor]]] | None = None
        self._arange = torch.arange(self.max_len, device=self.device)

    # ------------------------------------------------------------------ conditioning

    @torch.no_grad()
    def set_conditioning(self, cond: Conditioning) -> None:
        """Compute the cross-attention keys/values of the text once (MusicGen only); passing
        the same :class:`Conditioning` object again (the next window) costs nothing.

        Rows whose mask is all False (the null condition) attend to every position: their
        states are zeros and the projections have no bias, so the result is zero either way,
        as in transformers, without a fully masked softmax row.
        """
        if cond is self._cond:  # the same text for every window: keys and values stay
            return
        self._cond = cond
        if not self.cross or cond.cross_states is None:
            self.cross_k, self.cross_v, self.cross_mask = [], [], None
            self._absorbed = None
            return
        states = cond.cross_states.to(self.device, self.dtype)
        n, length, _ = states.shape
        ks, vs = [], []
        for layer in self.layers:
            att = layer.encoder_attn
            ks.append(att.k_proj(states).view(n, length, self.heads_n, self.head_dim).transpose(1, 2).contiguous())
            vs.append(att.v_proj(states).view(n, length, self.heads_n, self.head_dim).transpose(1, 2).contiguous())
        mask = None
        if cond.cross_mask is not None:
            mask = cond.cross_mask.to(self.device, torch.bool).clone()
            empty = ~mask.any(dim=1)
            mask[empty] = True
            mask = None if bool(mask.all()) else mask[:, None, None, :]
        same = (len(self.cross_k) == len(ks) and self.cross_k[0].shape == ks[0].shape
                and (mask is None) == (self.cross_mask is None))
        if same:  # in place: a captured CUDA graph keeps reading these tensors
            for dst, src in zip(self.cross_k + self.cross_v, ks + vs):
                dst.copy_(src)
            if mask is not None:
                self.cross_mask.copy_(mask)
        else:
            self.cross_k, self.cross_v, self.cross_mask = ks, vs, mask
        self._absorbed = self._absorb(states, cond.cross_mask)

    #: Fold the cross-attention into per-text matrices when heads x text tokens is at most
    #: this share of the model width (the folded matrices are then smaller than q/out_proj).
    ABSORB_MAX_SHARE = 0.75

    @torch.no_grad()
    def _absorb(self, states: torch.Tensor, mask: torch.Tensor | None):
        """The cross-attention of the conditional rows folded into two matrices per layer
        (packed for oneDNN with packed weights), for the CPU step (None where it does not apply).

        With the text's keys ``K_h`` and values ``V_h`` fixed for the job, head ``h``'s
        scores are ``x W_q,h K_h^T / sqrt(d)`` and its output projection is
        ``softmax(.) V_h W_o,h^T``; so ``A = [W_q,h^T K_h^T / sqrt(d)]_h`` (width H x L) and
        ``B = [V_h W_o,h^T]_h`` replace q_proj and out_proj (width D each) when H x L < D.
        Masked text positions are left out of ``K`` and ``V`` (their weight is zero), and
        the null rows (all-zero text, no biases) get exactly zero from the cross-attention,
        so they skip it. The weight traffic of a step drops by ``2 D (D - H L)`` values per
        layer; the numbers differ from the unfolded path by rounding only.
        Source: the associativity of the attention products (as in "absorbed" attention,
        DeepSeek-V2's multi-head latent attention, 2024).

        Applies when: a CPU device (a captured CUDA graph would keep the first job's
        matrices), projections without biases, the conditional rows first and all equal
        (the same description for every variation), the rest all zero, and
        ``H x L <= ABSORB_MAX_SHARE x D``.
        """
        if self.device.type != "cpu" or not self.fold_cross or not self.cross:
            return None
        if any(layer.encoder_attn.q_proj.bias is not None or layer.encoder_attn.out_proj.bias is not None
               for layer in self.layers):
            return None
        live = states.flatten(1).ne(0).any(dim=1)
        nc = int(live.sum())
        if nc == 0 or not bool(live[:nc].all()) or not torch.equal(states[:nc], states[:1].expand(nc, -1, -1)):
            return None
        keep = torch.ones(states.shape[1], dtype=torch.bool) if mask is None else mask[0].cpu().bool()
        if mask is not None and not torch.equal(mask[:nc].cpu().bool(), keep[None].expand(nc, -1)):
            return None
        idx = keep.nonzero().squeeze(1).to(self.device)
        length, heads, hd, d = int(idx.numel()), self.heads_n, self.head_dim, self.hidden
        if length == 0 or heads * length > self.ABSORB_MAX_SHARE * d:
            return None
        mats = []
        for i, layer in enumerate(self.layers):
            att = layer.encoder_attn
            k = self.cross_k[i][0].index_select(1, idx).float()  # (H, L, hd): what the unfolded path attends to
            v = self.cross_v[i][0].index_select(1, idx).float()
            wq = att.q_proj.weight.float().view(heads, hd, d)
            wo = att.out_proj.weight.float().view(d, heads, hd)
            a = torch.einsum("hld,hdj->hlj", k, wq).reshape(heads * length, d) * hd ** -0.5
            b = torch.einsum("jhd,hld->jhl", wo, v).reshape(d, heads * length)
            a, b = a.to(self.dtype).contiguous(), b.to(self.dtype).contiguous()
            if self.packed is not None:  # oneDNN ops only where packing is available
                a = torch.ops.mkldnn._reorder_linear_weight(a, self.rows)
                b = torch.ops.mkldnn._reorder_linear_weight(b, self.rows)
            mats.append((a, b))
        return nc, length, mats

    @property
    def cross_absorbed(self) -> bool:
        """True when the step runs the folded cross-attention (see :meth:`_absorb`)."""
        return self._absorbed is not None

    def streamed_weights(self) -> list[torch.Tensor]:
        """The packed matrices one CPU step reads, in order (for the benchmark's bandwidth
        floor); empty without packed weights."""
        if self.packed is None:
            return []
        out = []
        for i, layer in enumerate(self.layers):
            out += [self.packed.weight(("qkv", i)), self.packed.weight(id(layer.self_attn.out_proj))]
            if self._absorbed is not None:
                out += list(self._absorbed[2][i])
            elif self.cross and self.cross_k:
                out += [self.packed.weight(id(layer.encoder_attn.q_proj)), self.packed.weight(id(layer.encoder_attn.out_proj))]
            out += [self.packed.weight(id(layer.fc1)), self.packed.weight(id(layer.fc2))]
        return out + [self.packed.weight("heads")]

    # ------------------------------------------------------------------ forward

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(N, K, n)`` tokens -> ``(N, n, D)``: the sum of the codebooks' embeddings (library tables)."""
        emb = self.decoder.embed_tokens
        x = emb[0](tokens[:, 0])
        for k in range(1, self.num_codebooks):
            x = x + emb[k](tokens[:, k])
        return x

    def _layer(self, layer: torch.nn.Module, i: int, x: torch.Tensor, start: int, n: int,
               pos: torch.Tensor | None, self_mask: torch.Tensor | None) -> torch.Tensor:
        rows, hd, heads = x.shape[0], self.head_dim, self.heads_n
        att = layer.self_attn
        lin = self._lin
        h = layer.self_attn_layer_norm(x)
        if self.packed is not None:
            q, k, v = self.packed.linear(("qkv", i), h).view(rows, n, 3, heads, hd).unbind(2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        else:
            q = att.q_proj(h).view(rows, n, heads, hd).transpose(1, 2)
            k = att.k_proj(h).view(rows, n, heads, hd).transpose(1, 2)
            v = att.v_proj(h).view(rows, n, heads, hd).transpose(1, 2)
        if pos is not None:  # static shapes (CUDA graph): write at a device-side position, attend over the whole cache
            self.k_cache[i].index_copy_(2, pos, k)
            self.v_cache[i].index_copy_(2, pos, v)
            o = F.scaled_dot_product_attention(q, self.k_cache[i], self.v_cache[i], attn_mask=self_mask)
        else:
            self.k_cache[i][:, :, start: start + n] = k
            self.v_cache[i][:, :, start: start + n] = v
            o = F.scaled_dot_product_attention(q, self.k_cache[i][:, :, : start + n], self.v_cache[i][:, :, : start + n],
                                               attn_mask=self_mask)
        x = lin(att.out_proj, o.transpose(1, 2).reshape(rows, n, self.hidden), residual=x)
        if self._absorbed is not None:
            x = self._cross_absorbed(layer, i, x)
        elif self.cross and self.cross_k:
            ca = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(x)
            q = lin(ca.q_proj, h).view(rows, n, heads, hd).transpose(1, 2)
            o = F.scaled_dot_product_attention(q, self.cross_k[i], self.cross_v[i], attn_mask=self.cross_mask)
            x = lin(ca.out_proj, o.transpose(1, 2).reshape(rows, n, self.hidden), residual=x)
        h = layer.final_layer_norm(x)
        return lin(layer.fc2, lin(layer.fc1, h, act=layer.activation_fn), residual=x)

    @torch.no_grad()
    def forward(self, embeds: torch.Tensor, start: int) -> torch.Tensor:
        """Run ``n`` new positions ``start .. start + n - 1`` (positions count the prefix).

        Args:
            embeds: ``(N, n, D)`` input embeddings (tokens or prefix), without positions.
            start: position of the first one; everything before it must be in the cache.

        Returns:
            ``(N, D)`` final hidden state of the last position (after the final layer norm).

        Raises:
            ValueError: the positions don't fit the cache.
        """
        n = embeds.shape[1]
        if start + n > self.max_len:
            raise ValueError(f"positions {start}..{start + n} exceed the KV cache of {self.max_len}")
        x = embeds.to(self.dtype) + self.positions[start: start + n]
        mask = None
        if n > 1:  # causal within the block, everything before it visible
            q_pos = torch.arange(start, start + n, device=self.device)[:, None]
            mask = self._arange[None, : start + n] <= q_pos
        for i, layer in enumerate(self.layers):
            x = self._layer(layer, i, x, start, n, None, mask)
        return self.decoder.layer_norm(x[:, -1])

    def _cross_absorbed(self, layer: torch.nn.Module, i: int, x: torch.Tensor) -> torch.Tensor:
        """The folded cross-attention (:meth:`_absorb`) for ``x`` ``(N, n, D)``."""
        nc, length, mats = self._absorbed
        a, b = mats[i]
        rows, n = x.shape[0], x.shape[1]
        xc = x[:nc]
        h = layer.encoder_attn_layer_norm(xc)
        if self.packed is not None:
            scores = onednn_linear(h, a).view(nc, n, self.heads_n, length)
            probs = torch.softmax(scores, dim=-1).view(nc, n, self.heads_n * length)
            xc = onednn_linear(probs, b, residual=xc)
        else:
            probs = torch.softmax(F.linear(h, a).view(nc, n, self.heads_n, length), dim=-1)
            xc = xc + F.linear(probs.view(nc, n, self.heads_n * length), b)
        return xc if nc == rows else torch.cat([xc, x[nc:]])

    def step_static(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """One token per row at the device-side position ``pos`` (``(1,)`` long), with
        static shapes only (what :class:`CudaGraphStep` captures).

        Returns:
            ``(N, K, V)`` logits in the model dtype.
        """
        x = self.embed(tokens) + self.positions.index_select(0, pos)[None]
        mask = (self._arange <= pos)[None, None, None, :]
        for i, layer in enumerate(self.layers):
            x = self._layer(layer, i, x, 0, 1, pos, mask)
        return self.logits(self.decoder.layer_norm(x[:, -1]))

    def _lin(self, module: torch.nn.Module, x: torch.Tensor, act: Callable | None = None,
             residual: torch.Tensor | None = None) -> torch.Tensor:
        """``act(module(x))`` or ``residual + module(x)`` (not both), fused into one oneDNN call
        where the weights are packed (the exact GELU and the residual add; any other
        activation runs after the call)."""
        if self.packed is not None and self.packed.has(id(module)):
            fuse = act is not None and self.gelu
            out = self.packed.linear(id(module), x, gelu=fuse, residual=residual)
            return act(out) if act is not None and not fuse else out
        out = module(x)
        if act is not None:
            out = act(out)
        return out if residual is None else residual + out

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` -> ``(N, K, V)`` through the library's per-codebook LM heads."""
        if self.packed is not None:
            return self.packed.linear("heads", hidden).view(hidden.shape[0], self.num_codebooks, -1)
        return torch.stack([head(hidden) for head in self.heads], dim=1)


class CudaGraphStep:
    """The one-token decoder step captured in a CUDA graph (``torch.cuda.CUDAGraph``).

    Static inputs (``tokens`` ``(N, K, 1)``, ``pos`` ``(1,)``) are copied in, the graph
    is replayed, and the logits come out in a static buffer. Sampling stays outside the
    graph (it needs the per-variation generators). Captured once per job: the cache and
    the cross-attention tensors are fixed for the job.

    Args:
        dec: the :class:`StaticDecoder` (on a CUDA device).

    Source: the capture recipe of the PyTorch CUDA graphs documentation (warm up on a
    side stream, then ``torch.cuda.graph``).
    """

    def __init__(self, dec: StaticDecoder):
        self.dec = dec
        self.tokens = torch.zeros((dec.rows, dec.num_codebooks, 1), dtype=torch.long, device=dec.device)
        self.pos = torch.zeros((1,), dtype=torch.long, device=dec.device)
        saved = [(k.clone(), v.clone()) for k, v in zip(dec.k_cache, dec.v_cache)]
        stream = torch.cuda.Stream(device=dec.device)
        stream.wait_stream(torch.cuda.current_stream(dec.device))
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(2):
                dec.step_static(self.tokens, self.pos)
        torch.cuda.current_stream(dec.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.out = dec.step_static(self.tokens, self.pos)
        for (k, v), (k0, v0) in zip(zip(dec.k_cache, dec.v_cache), saved):  # the warm-up wrote position 0
            k.copy_(k0)
            v.copy_(v0)

    def __call__(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits ``(N, K, V)`` for ``tokens`` ``(N, K, 1)`` at position ``pos``."""
        self.tokens.copy_(tokens)
        self.pos.fill_(int(pos))
        self.graph.replay()
        return self.out


# --------------------------------------------------------------------------- one window


StepCallback = Callable[[int], None]
"""``on_step(n)``: n more decoder steps are done (progress and cancel hook; may raise)."""


@torch.no_grad()
def generate_window(dec: StaticDecoder, cond: Conditioning, prompt: torch.Tensor | None, frames: int,
                    params: SamplingParams, generators: list[torch.Generator], delays: list[int], special: int,
                    on_step: StepCallback | None = None, graph: CudaGraphStep | None = None) -> torch.Tensor:
    """Generate one window of ``frames`` codec frames, continuing ``prompt``.

    The delayed sequence is built with :func:`apply_delay` (prompt frames known); the
    prefix (melody) and the known steps are prefilled in one block, then one token per
    step is decoded until every codebook has ``frames`` frames. Tokens the delay pattern
    fixes (special, prompt) are never overwritten.

    Args:
        dec: a :class:`StaticDecoder` with its conditioning set.
        cond: the window's :class:`Conditioning` (its ``prefix`` is used here).
        prompt: ``(B, K, P)`` codes the window starts with (kept as they are), or None.
        frames: T, codec frames in the window including the prompt (``T > P``).
        params, generators: see :func:`sample_next`.
        delays, special: see :func:`apply_delay`.
        on_step: called with 1 after each decoder step.
        graph: a :class:`CudaGraphStep` for the one-token steps (CUDA), or None.

    Returns:
        ``(B, K, T)`` long codes, the prompt first.

    Raises:
        ValueError: ``frames`` not larger than the prompt.
    """
    b = len(generators)
    p = 0 if prompt is None else int(prompt.shape[-1])
    if frames <= p:
        raise ValueError(f"a window of {frames} frames can't continue a prompt of {p} frames")
    k = len(delays)
    codes = torch.zeros((b, k, frames), dtype=torch.long, device=dec.device)
    if p:
        codes[..., :p] = prompt.to(dec.device)
    seq = apply_delay(codes, delays, special, known=p)
    fill = _generated_positions(delays, frames, p, dec.device)
    rows = dec.rows
    reps = rows // b
    c = cond.prefix_len
    s0 = 1 + p  # first step with an unknown token
    # prefill: the prefix and the delayed tokens before step s0 - 1
    pre = []
    if c:
        pre.append(cond.prefix.to(dec.device, dec.dtype))
    if s0 - 1 > 0:
        pre.append(dec.embed(seq[..., : s0 - 1].repeat(reps, 1, 1)))
    if pre:
        dec.forward(torch.cat(pre, dim=1), 0)
    total = seq.shape[-1]
    for s in range(s0, total):
        tok = seq[..., s - 1: s].repeat(reps, 1, 1)
        pos = c + s - 1
        if graph is not None:
            logits = graph(tok, pos)
        else:
            logits = dec.logits(dec.forward(dec.embed(tok), pos))
        nxt = sample_next(logits.float(), params, generators)
        seq[..., s] = torch.where(fill[:, s], nxt, seq[..., s])
        if on_step is not None:
            on_step(1)
    return undo_delay(seq, delays, frames)


# --------------------------------------------------------------------------- sliding windows


@dataclass(frozen=True)
class WindowPlan:
    """One window of a long generation, in codec frames of the whole timeline.

    Attributes:
        start: first frame of the window (its prompt starts here).
        known: frames ``start .. known`` are known (the prompt); ``known - start`` = P.
        end: the window generates frames ``known .. end``.
    """

    start: int
    known: int
    end: int

    @property
    def steps(self) -> int:
        """New frames this window writes (``end - known``)."""
        return self.end - self.known

    def decoder_steps(self, max_delay: int) -> int:
        """Steps including the delay tail (``max_delay`` extra steps per window)."""
        return self.end - self.known + max_delay


def plan_windows(total: int, prompt: int, window: int, stride: int) -> list[WindowPlan]:
    """Windows of at most ``window`` frames moved by ``stride`` frames (audiocraft ``extend_stride``).

    Each window after the first starts ``stride`` frames after the previous one and
    takes the previous window's last ``window - stride`` frames as its prompt (audiocraft
    ``MusicGen._generate_tokens``: 30 s windows, 18 s stride, 12 s kept).

    Args:
        total: frames of the whole timeline, prompt included.
        prompt: frames known at the start (extend); ``0 <= prompt < total``,
            ``prompt <= window - stride`` when ``total > window``.
        window: frames per window (30 s of frames).
        stride: frames between window starts (``0 < stride < window``).

    Returns:
        The windows, in order; the last one ends at ``total``.

    Raises:
        ValueError: inconsistent sizes.
    """
    if not (0 < stride < window):
        raise ValueError(f"the stride ({stride} frames) must be between 0 and the window ({window} frames)")
    if not (0 <= prompt < total):
        raise ValueError(f"a prompt of {prompt} frames can't start a timeline of {total} frames")
    if prompt > window - 1:
        raise ValueError(f"a prompt of {prompt} frames does not fit a window of {window} frames")
    out = []
    start, known = 0, prompt
    while True:
        end = min(start + window, total)
        out.append(WindowPlan(start, known, end))
        if end >= total:
            return out
        start += stride
        known = end


ConditioningFor = Callable[[WindowPlan], Conditioning]
"""``cond_for(window)``: the :class:`Conditioning` of one window (melody changes per window)."""


@torch.no_grad()
def generate_long(dec: StaticDecoder, cond_for: ConditioningFor, prompt: torch.Tensor | None, total: int,
                  window: int, stride: int, params: SamplingParams, generators: list[torch.Generator],
                  delays: list[int], special: int, on_step: StepCallback | None = None,
                  graph_factory: Callable[[StaticDecoder], CudaGraphStep] | None = None,
                  on_window: Callable[[WindowPlan], None] | None = None) -> torch.Tensor:
    """Generate ``total`` frames by sliding windows at the token level (no audio seams).

    Args:
        dec: a :class:`StaticDecoder` whose cache fits the longest window + prefix + delays.
        cond_for: conditioning per window (:data:`ConditioningFor`).
        prompt: ``(B, K, P)`` known codes at the start (extend), or None.
        total: frames of the timeline, prompt included.
        window, stride: see :func:`plan_windows`.
        params, generators, delays, special: see :func:`generate_window`.
        on_step: progress / cancel hook, called once per decoder step.
        graph_factory: builds a :class:`CudaGraphStep` once the conditioning is set
            (CUDA); None = eager steps.
        on_window: called with each window before it runs.

    Returns:
        ``(B, K, total)`` long codes, the prompt first.
    """
    b = len(generators)
    k = len(delays)
    p = 0 if prompt is None else int(prompt.shape[-1])
    codes = torch.zeros((b, k, total), dtype=torch.long, device=dec.device)
    if p:
        codes[..., :p] = prompt.to(dec.device)
    graph = None
    for w in plan_windows(total, p, window, stride):
        if on_window is not None:
            on_window(w)
        cond = cond_for(w)
        dec.set_conditioning(cond)
        if graph_factory is not None and graph is None:
            graph = graph_factory(dec)
        win_prompt = codes[..., w.start: w.known] if w.known > w.start else None
        out = generate_window(dec, cond, win_prompt, w.end - w.start, params, generators, delays, special,
                              on_step=on_step, graph=graph)
        codes[..., w.known: w.end] = out[..., w.known - w.start:]
    return codes


def cache_length(window: int, prefix: int, max_delay: int) -> int:
    """KV cache positions needed for a window: prefix + steps (``window + max_delay + 1``)."""
    return int(prefix) + int(window) + int(max_delay) + 1


def frames_for(samples: int, hop: int) -> int:
    """Codec frames covering ``samples`` samples: ``ceil(samples / hop)``."""
    return int(math.ceil(int(samples) / int(hop)))
