"""MusicGen decode loop (engines/generation/musicgen/decode.py, model.py, chroma.py) on tiny
random-weight models: the delay pattern against transformers', greedy codes equal to
``generate()``'s (mono, stereo, melody), seeded sampling, sliding windows, CUDA graph (gpu)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from engines.generation.musicgen import decode as D
from engines.generation.musicgen.chroma import (
    ChromaParams,
    melody_chroma,
    null_chroma,
    reference_window,
    values_window,
)
from engines.generation.musicgen.model import MusicgenModel
from tests.musicgen_tiny import TINY_CODEBOOK_SIZE, build_tiny_musicgen

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("mg") / "tiny")


@pytest.fixture(scope="module")
def tiny_stereo(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("mg") / "stereo", stereo=True)


@pytest.fixture(scope="module")
def tiny_melody(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("mg") / "melody", melody=True)


def _hf(folder):
    import json

    from transformers import (
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    melody = json.loads((folder / "config.json").read_text())["model_type"] == "musicgen_melody"
    cls = MusicgenMelodyForConditionalGeneration if melody else MusicgenForConditionalGeneration
    return cls.from_pretrained(str(folder), dtype=torch.float32).eval()


def _hf_codes(model, frames, batch, **inputs):
    """Codes generate() decodes (it returns only audio): captured at the codec's decode call."""
    seen = {}
    decode = model.audio_encoder.decode

    def spy(codes, *a, **kw):
        seen.setdefault("codes", []).append(codes.clone())
        return decode(codes, *a, **kw)

    model.audio_encoder.decode = spy
    k = model.decoder.config.num_codebooks
    kc = k // model.decoder.config.audio_channels
    with torch.no_grad():
        model.generate(**inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=frames + kc - 1)
    model.audio_encoder.decode = decode
    c = seen["codes"]
    if len(c) == 1:
        return c[0][0]
    out = torch.empty((batch, k, frames), dtype=torch.long)  # stereo: left codebooks, then right
    out[:, ::2], out[:, 1::2] = c[0][0], c[1][0]
    return out


# --------------------------------------------------------------------------- delay pattern


@pytest.mark.parametrize("channels", [1, 2])
def test_delay_pattern_round_trips_and_matches_transformers(tiny, tiny_stereo, channels):
    model = _hf(tiny if channels == 1 else tiny_stereo)
    k = model.decoder.config.num_codebooks
    delays = D.codebook_delays(k, channels)
    assert delays == ([0, 1, 2, 3] if channels == 1 else [0, 0, 1, 1, 2, 2, 3, 3])
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, TINY_CODEBOOK_SIZE, (2, k, 9), generator=g)
    seq = D.apply_delay(codes, delays, TINY_CODEBOOK_SIZE)
    assert seq.shape == (2, k, 9 + 3 + 1)
    assert torch.equal(D.undo_delay(seq, delays, 9), codes)
    # codebook k holds frame t at step 1 + delay + t, the special token everywhere else
    assert (seq[:, :, 0] == TINY_CODEBOOK_SIZE).all()
    assert int(seq[1, k - 1, 1 + delays[-1]]) == int(codes[1, k - 1, 0])
    assert int((seq == TINY_CODEBOOK_SIZE).sum()) == 2 * k * (seq.shape[-1] - 9)
    # the same layout as transformers' build_delay_pattern_mask given [start token, codes]
    start = torch.full((2, k, 1), TINY_CODEBOOK_SIZE)
    ids = torch.cat([start, codes], dim=-1).reshape(2 * k, -1)
    _, mask = model.decoder.build_delay_pattern_mask(ids, TINY_CODEBOOK_SIZE, max_length=seq.shape[-1])
    assert torch.equal(mask.reshape(2, k, -1), seq)
    # a prompt: only its frames are written, the rest stays to be generated
    part = D.apply_delay(codes, delays, TINY_CODEBOOK_SIZE, known=4)
    assert torch.equal(D.undo_delay(part, delays, 4), codes[..., :4])
    assert (D.undo_delay(part, delays, 9)[..., 4:] == TINY_CODEBOOK_SIZE).all()


# --------------------------------------------------------------------------- greedy = generate()


@pytest.mark.parametrize("kind", ["mono", "stereo", "melody"])
def test_greedy_codes_equal_generate(tiny, tiny_stereo, tiny_melody, kind):
    folder = {"mono": tiny, "stereo": tiny_stereo, "melody": tiny_melody}[kind]
    mg = MusicgenModel(folder, "cpu", torch.float32)
    hf = _hf(folder)
    batch, frames = 2, 37
    text = mg.text_states("calm piano")
    chroma = None
    inputs = dict(mg.tokenizer(["calm piano"] * batch, return_tensors="pt"))
    if kind == "melody":
        t = np.arange(30 * mg.sample_rate) / mg.sample_rate
        wav = np.sin(2 * np.pi * 220.0 * t).astype(np.float32)
        chroma = melody_chroma(torch.from_numpy(wav)[None], mg.chroma)
        assert chroma.shape == (1, mg.chroma.chroma_length, 12) and int(chroma[0, 50].argmax()) == 9  # A
        inputs["input_features"] = chroma.repeat(batch, 1, 1)
    expected = _hf_codes(hf, frames, batch, **inputs)
    cond = mg.conditioning(text, batch, True, chroma)
    dec = D.StaticDecoder(mg.model.decoder, 2 * batch, D.cache_length(frames, cond.prefix_len, mg.max_delay))
    dec.set_conditioning(cond)
    gens = D.make_generators([0, 1], "cpu")
    codes = D.generate_window(dec, cond, None, frames, D.SamplingParams(temperature=0.0, cfg=3.0), gens,
                              mg.delays, mg.special)
    assert codes.shape == expected.shape == (batch, mg.num_codebooks, frames)
    assert torch.equal(codes, expected)
    assert len(set(codes[0, 0].tolist())) > 3  # a real sequence, not a constant


def test_decoder_logits_match_the_library_forward(tiny):
    """Prefill of a block and one-token steps over the static cache give the library's logits."""
    mg = MusicgenModel(tiny, "cpu", torch.float32)
    text = mg.text_states("loud rock drums")
    cond = mg.conditioning(text, 1, True)
    seq = torch.randint(0, TINY_CODEBOOK_SIZE, (1, 4, 12), generator=torch.Generator().manual_seed(3))
    rows = seq.repeat(2, 1, 1)
    with torch.no_grad():
        ref = mg.model.decoder(input_ids=rows.reshape(8, -1), encoder_hidden_states=cond.cross_states,
                               encoder_attention_mask=cond.cross_mask.long()).logits.reshape(2, 4, 12, -1)
    dec = D.StaticDecoder(mg.model.decoder, 2, 32)
    dec.set_conditioning(cond)
    last = dec.logits(dec.forward(dec.embed(rows[..., :8]), 0))
    torch.testing.assert_close(last, ref[:, :, 7], rtol=1e-4, atol=1e-4)
    for s in range(8, 12):
        step = dec.logits(dec.forward(dec.embed(rows[..., s: s + 1]), s))
        torch.testing.assert_close(step, ref[:, :, s], rtol=1e-4, atol=1e-4)
    # the static-shape step (what the CUDA graph captures) agrees as well
    dec2 = D.StaticDecoder(mg.model.decoder, 2, 32)
    dec2.set_conditioning(cond)
    for s in range(12):
        out = dec2.step_static(rows[..., s: s + 1], torch.tensor([s]))
    torch.testing.assert_close(out, ref[:, :, 11], rtol=1e-4, atol=1e-4)


def test_packed_cpu_weights_give_the_module_results(tiny):
    """CPU bfloat16 with oneDNN-prepacked weights (GELU and residual adds fused into the
    calls, the cross-attention folded into per-text matrices) computes what the library
    modules compute: against a float32 run of the same model, its error is no larger than
    the modules' own bfloat16 error. With padding in the text, and in the prefill block
    (several positions) as in the one-token step."""
    mg = MusicgenModel(tiny, "cpu", torch.bfloat16)
    if not D.PackedWeights.available(mg.model.decoder):
        pytest.skip("this CPU has no oneDNN bfloat16 support")
    ref_model = MusicgenModel(tiny, "cpu", torch.float32)
    for model in (mg, ref_model):  # sharper attention over the text, so that its details show in the logits
        with torch.no_grad():
            for layer in model.model.decoder.model.decoder.layers:
                for proj, gain in (("q_proj", 8.0), ("k_proj", 8.0), ("v_proj", 4.0), ("out_proj", 4.0)):
                    getattr(layer.encoder_attn, proj).weight.mul_(gain)
    rows = torch.randint(0, TINY_CODEBOOK_SIZE, (4, 4, 10), generator=torch.Generator().manual_seed(5))
    packed = D.PackedWeights(mg.model.decoder)

    def padded(cond: D.Conditioning) -> D.Conditioning:  # the last text position is padding
        mask = cond.cross_mask.clone()
        mask[:2, -1] = False
        states = cond.cross_states * mask[..., None].to(cond.cross_states.dtype)
        return D.Conditioning(cross_states=states, cross_mask=mask)

    def run(model, pk, pad):
        cond = model.conditioning(model.text_states("soft jazz guitar"), 2, True)
        cond = padded(cond) if pad else cond
        dec = D.StaticDecoder(model.model.decoder, 4, 16, packed=pk, fold_cross=pk is not None)
        dec.set_conditioning(cond)
        assert dec.cross_absorbed == (pk is not None)
        block = dec.logits(dec.forward(dec.embed(rows[..., :9]), 0))
        step = dec.logits(dec.forward(dec.embed(rows[..., 9:]), 9))
        return torch.cat([block.float(), step.float()])

    for pad in (False, True):
        ref = run(ref_model, None, pad)
        module_err = (run(mg, None, pad) - ref).abs().max().item()
        packed_err = (run(mg, packed, pad) - ref).abs().max().item()
        assert 0 < module_err < 0.1
        assert packed_err <= 1.25 * module_err
    assert (run(ref_model, None, True) - run(ref_model, None, False)).abs().max() > 1e-3  # the padding matters
    assert mg.packed is not None  # the model builds and keeps one packed copy
    assert mg.packed.nbytes == sum(p.numel() * 2 for n, p in mg.model.decoder.named_parameters()
                                   if n.endswith("weight") and p.dim() == 2 and "embed" not in n and "encoder_attn.k_" not in n
                                   and "encoder_attn.v_" not in n)


def test_folded_cross_attention_equals_the_library_attention_in_float32(tiny):
    """On the float32 CPU path (CPUs without bfloat16 units) the folded cross-attention
    gives the library modules' logits to float32 rounding, with padding in the text, over
    a prefill block and one-token steps, with and without the null rows."""
    mg = MusicgenModel(tiny, "cpu", torch.float32)
    with torch.no_grad():  # sharper attention over the text, so that its details show in the logits
        for layer in mg.model.decoder.model.decoder.layers:
            for proj, gain in (("q_proj", 8.0), ("k_proj", 8.0), ("v_proj", 4.0), ("out_proj", 4.0)):
                getattr(layer.encoder_attn, proj).weight.mul_(gain)
    rows = torch.randint(0, TINY_CODEBOOK_SIZE, (4, 4, 10), generator=torch.Generator().manual_seed(6))
    for guided in (True, False):
        cond = mg.conditioning(mg.text_states("soft jazz guitar"), 2 if guided else 4, guided)
        mask = cond.cross_mask.clone()
        mask[: 2 if guided else 4, -1] = False  # the last text position is padding
        cond = D.Conditioning(cross_states=cond.cross_states * mask[..., None].float(), cross_mask=mask)
        out = []
        for fold in (True, False):
            dec = D.StaticDecoder(mg.model.decoder, 4, 16, fold_cross=fold)
            dec.set_conditioning(cond)
            assert dec.cross_absorbed == fold
            block = dec.logits(dec.forward(dec.embed(rows[..., :8]), 0))
            steps = [dec.logits(dec.forward(dec.embed(rows[..., s: s + 1]), s)) for s in (8, 9)]
            out.append(torch.cat([block, *steps]))
        torch.testing.assert_close(out[0], out[1], rtol=1e-5, atol=1e-5)
        assert out[1].abs().max() > 0.1


def test_cross_attention_is_folded_only_where_it_applies(tiny):
    """The folded cross-attention needs one description for every conditional row and a
    short text; otherwise the step runs the library's q/out projections."""
    mg = MusicgenModel(tiny, "cpu", torch.bfloat16)
    if not D.PackedWeights.available(mg.model.decoder):
        pytest.skip("this CPU has no oneDNN bfloat16 support")
    packed = D.PackedWeights(mg.model.decoder)
    dec = D.StaticDecoder(mg.model.decoder, 4, 16, packed=packed)
    text = mg.text_states("soft jazz guitar")
    one = mg.conditioning(text, 2, True)
    dec.set_conditioning(one)
    assert dec.cross_absorbed
    folded = sum(w.numel() for w in dec.streamed_weights())
    other = mg.conditioning(mg.text_states("loud rock drums"), 2, True)
    mixed = D.Conditioning(cross_states=torch.cat([one.cross_states[:1], other.cross_states[1:]]),
                           cross_mask=torch.cat([one.cross_mask[:1], other.cross_mask[1:]]))
    dec.set_conditioning(mixed)  # two descriptions: not folded
    assert not dec.cross_absorbed
    assert sum(w.numel() for w in dec.streamed_weights()) > folded
    words = " ".join(["soft"] * 40)  # 2 heads x 41 tokens > 3/4 of the width 32
    dec.set_conditioning(mg.conditioning(mg.text_states(words), 2, True))
    assert not dec.cross_absorbed
    dec.set_conditioning(one)
    assert dec.cross_absorbed and sum(w.numel() for w in dec.streamed_weights()) == folded


# --------------------------------------------------------------------------- sampling


def test_sampling_is_seeded_per_variation_and_filters_top_k():
    logits = torch.randn(4, 3, 50, generator=torch.Generator().manual_seed(1))  # 2 variations x (cond, null)
    p = D.SamplingParams(temperature=1.0, top_k=5, cfg=3.0)
    a = D.sample_next(logits, p, D.make_generators([10, 11], "cpu"))
    b = D.sample_next(logits, p, D.make_generators([10, 11], "cpu"))
    c = D.sample_next(logits[[1, 3]], p, D.make_generators([11], "cpu"))  # variation 2 alone
    assert torch.equal(a, b) and torch.equal(a[1], c[0])
    guided = logits[2:] + (logits[:2] - logits[2:]) * 3.0
    top5 = guided.topk(5, dim=-1).indices
    draws = torch.stack([D.sample_next(logits, p, D.make_generators([s, s + 1], "cpu")) for s in range(200)])
    assert ((draws[..., None] == top5[None]).any(-1)).all()  # never outside the top 5
    assert len(set(draws[:, 0, 0].tolist())) > 1  # but not always the same token
    greedy = D.sample_next(logits, D.SamplingParams(temperature=0.0, cfg=3.0), D.make_generators([0, 1], "cpu"))
    assert torch.equal(greedy, guided.argmax(-1))
    # the exponential race draws with the softmax probabilities
    one = torch.tensor([[[0.0, np.log(3.0)]]])
    n = sum(int(D.sample_next(one, D.SamplingParams(cfg=1.0), D.make_generators([s], "cpu"))[0, 0]) for s in range(2000))
    assert abs(n / 2000 - 0.75) < 0.04


# --------------------------------------------------------------------------- windows


def test_window_plan_is_audiocraft_extend_stride():
    fr = 50
    plan = D.plan_windows(70 * fr, 0, 30 * fr, 18 * fr)
    assert [(w.start, w.known, w.end) for w in plan] == [(0, 0, 1500), (900, 1500, 2400), (1800, 2400, 3300),
                                                         (2700, 3300, 3500)]
    assert sum(w.end - w.known for w in plan) == 70 * fr
    ext = D.plan_windows(600 + 40 * fr, 600, 30 * fr, 18 * fr)  # extend: a 12 s prompt, 40 s of new material
    assert [(w.start, w.known, w.end) for w in ext] == [(0, 600, 1500), (900, 1500, 2400), (1800, 2400, 2600)]
    assert D.plan_windows(100, 0, 1500, 900) == [D.WindowPlan(0, 0, 100)]
    with pytest.raises(ValueError):
        D.plan_windows(100, 0, 10, 10)


def test_long_generation_continues_tokens_across_windows(tiny, monkeypatch):
    mg = MusicgenModel(tiny, "cpu", torch.float32)
    calls = []
    real = D.generate_window

    def spy(dec, cond, prompt, frames, *a, **kw):
        out = real(dec, cond, prompt, frames, *a, **kw)
        calls.append((None if prompt is None else prompt.clone(), out.clone()))
        return out

    monkeypatch.setattr(D, "generate_window", spy)
    text = mg.text_states("jazz")
    cond = mg.conditioning(text, 2, True)
    window, stride, total = 30, 18, 70  # frames
    dec = D.StaticDecoder(mg.model.decoder, 4, D.cache_length(window, 0, mg.max_delay))
    steps = []
    codes = D.generate_long(dec, lambda w: cond, None, total, window, stride, D.SamplingParams(),
                            D.make_generators([5, 6], "cpu"), mg.delays, mg.special, on_step=steps.append)
    assert codes.shape == (2, 4, total)
    assert len(calls) == 4 and len(steps) == (30 + 3) + (18 + 3) + (18 + 3) + (4 + 3)
    assert calls[0][0] is None
    for (_, prev), (prompt, out) in zip(calls, calls[1:]):  # the next prompt is the previous window's last 12 frames
        assert torch.equal(prompt, prev[..., stride:])
        assert torch.equal(out[..., : prompt.shape[-1]], prompt)
    assert torch.equal(codes[..., 66:], calls[3][1][..., 12:])


# --------------------------------------------------------------------------- chroma


def test_melody_chroma_and_window_slicing():
    cp = ChromaParams(sample_rate=640, n_fft=512, hop_length=128, chroma_length=151)
    t = np.arange(10 * 640) / 640
    tone = lambda f: np.sin(2 * np.pi * f * t).astype(np.float32)
    ref = np.concatenate([tone(196.0), tone(220.0), tone(246.94)])  # G, A, B for 10 s each
    c = melody_chroma(torch.from_numpy(ref)[None], cp)
    assert c.shape == (1, 1 + ref.size // 128, 12) and torch.equal(c.sum(-1), torch.ones(1, c.shape[1]))
    assert [int(c[0, i].argmax()) for i in (5, 25, 45, 55, 75, 95, 105, 125, 145)] == [7, 7, 7, 9, 9, 9, 11, 11, 11]
    assert int(melody_chroma(torch.zeros(1, 4000), cp)[0, 3].argmax()) == 0  # silence = the null chroma (C)
    assert torch.equal(null_chroma(3)[0, :, 0], torch.ones(3))
    # a window starting at 18 s reads 18..30 s, then loops to the start of the reference
    win = reference_window(ref, 18 * 640, 30 * 640)
    assert np.array_equal(win[: 12 * 640], ref[18 * 640:]) and np.array_equal(win[12 * 640:], ref[: 18 * 640])
    off = reference_window(ref, 0, 30 * 640, cover=(5 * 640, 20 * 640))  # control on from 5 s to 20 s
    assert not off[: 5 * 640].any() and not off[20 * 640:].any()
    assert np.array_equal(off[5 * 640: 20 * 640], ref[: 15 * 640])
    # chroma values (12 x T at 2 Hz) re-sliced for a window starting at 4 s, looped
    vals = np.zeros((12, 6), np.float32)
    vals[[2, 4, 5, 7, 9, 11], range(6)] = 1.0  # D E F G A B, one per half second
    w = values_window(vals, 2.0, cp, 4.0)
    assert w.shape == (1, 151, 12)
    got = w[0].argmax(-1).numpy()
    times = 4.0 + np.arange(151) / cp.frame_rate
    want = np.array([2, 4, 5, 7, 9, 11])[np.floor(times * 2 + 1e-9).astype(int) % 6]
    assert np.array_equal(got, want)
    cov = values_window(vals, 2.0, cp, 0.0, (1.0, 2.0))[0].argmax(-1).numpy()
    t0 = np.arange(151) / cp.frame_rate
    assert (cov[(t0 < 1.0) | (t0 >= 2.0)] == 0).all() and (cov[(t0 >= 1.0) & (t0 < 1.5)] == 2).all()


# --------------------------------------------------------------------------- CUDA graph


@pytest.mark.gpu
def test_cuda_graph_step_gives_the_eager_codes(tiny):
    mg = MusicgenModel(tiny, "cuda", torch.float32)
    text = mg.text_states("calm piano")
    cond = mg.conditioning(text, 2, True)
    out = []
    for graph in (False, True):
        dec = D.StaticDecoder(mg.model.decoder, 4, D.cache_length(40, 0, mg.max_delay))
        dec.set_conditioning(cond)
        g = D.CudaGraphStep(dec) if graph else None
        out.append(D.generate_window(dec, cond, None, 40, D.SamplingParams(temperature=0.0), D.make_generators([0, 1], "cuda"),
                                     mg.delays, mg.special, graph=g))
    assert torch.equal(out[0], out[1])
    # sampled, with sliding windows: the graph is captured once and reused across windows
    res = []
    for graph in (False, True):
        dec = D.StaticDecoder(mg.model.decoder, 4, D.cache_length(30, 0, mg.max_delay))
        res.append(D.generate_long(dec, lambda w: cond, None, 70, 30, 18, D.SamplingParams(), D.make_generators([3, 4], "cuda"),
                                   mg.delays, mg.special, graph_factory=D.CudaGraphStep if graph else None))
    assert torch.equal(res[0], res[1])
