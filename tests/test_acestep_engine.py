"""The ACE-Step 1.5 engine on a tiny random-weight AceStepPipeline (tests/acestep_tiny.py).

The tiny model is saved with ``save_pretrained`` and loaded through ``spec.model_path``,
the same code path as a downloaded model. Its VAE has the real geometry (48 kHz, 1920
samples per latent frame), so lengths, windows, tiles and resampling are the real ones;
only the widths are tiny. Random weights make noise-like audio: the tests check numbers
that do not depend on musical quality (lengths, bit-identity, equality with the pipeline,
determinism, progress, cancel, memory retries, provenance).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engines.base import (AddStemSpec, CancelToken, ExtendSpec, GenerateSpec, InpaintSpec, InvalidJob, JobCancelled,  # noqa: E402
                          ModelNotInstalled, ProgressReporter, RestyleSpec, SeparateSpec, is_out_of_memory)
from engines.generation.acestep import manifest  # noqa: E402
from tests.acestep_tiny import build_tiny_pipeline, save_tiny_model  # noqa: E402

SR44, SR48 = 44100, 48000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("acestep") / "tiny"))


@pytest.fixture(scope="module")
def engine(model_dir):
    from engines.generation.acestep.engine import AceStepEngine

    e = AceStepEngine()
    e.load("cpu", "float32")
    return e


def _run(engine, spec, sink=None, cancel=None):
    return engine.run(spec, ProgressReporter(sink), cancel or CancelToken())


def _music(seconds: float, sr: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A real-ish test signal: two partials plus a little noise, (channels, frames) float32."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 331 * t) + 0.01 * rng.standard_normal(t.size)
    return np.repeat(x[None].astype(np.float32), channels, axis=0)


# --------------------------------------------------------------------------- manifest


def test_manifest_entries_records_and_schema():
    from engines import registry

    ace = registry.get_engine_class("acestep")
    assert set(ace.tasks) == {"generate", "extend", "inpaint", "add_stem", "restyle"}
    assert manifest.ACESTEP.accepts_model_path and manifest.ACESTEP_EXTRACT.accepts_model_path
    assert registry.get_engine_class("acestep-extract").tasks == ("separate",)
    for entry in manifest.ENGINES:
        for name, prop in entry.param_schema["properties"].items():
            assert {"default", "title", "description"} <= set(prop), (entry.id, name)
    recs = {m.id: m for m in manifest.MODELS}
    assert recs["acestep-v15-xl-turbo"].hf_repo == "ACE-Step/acestep-v15-xl-turbo-diffusers"
    assert recs["acestep-v15-base"].hf_repo == "ACE-Step/acestep-v15-base"
    assert recs["acestep-v15-sft"].hf_repo == "ACE-Step/acestep-v15-sft"
    assert all(m.licence == "MIT" and m.sample_rate == 48000 for m in manifest.MODELS)
    assert manifest.ACESTEP.models[0] == "acestep-v15-xl-turbo"
    assert "vocals" in recs[manifest.ACESTEP_EXTRACT.models[0]].outputs


def test_metadata_for_the_model():
    from engines.generation.acestep.prompting import bpm_for_model, key_for_model, meter_for_model, track_name

    assert bpm_for_model(97.4) == 97 and bpm_for_model(None) is None and bpm_for_model(400) is None
    assert meter_for_model("4/4") == "4" and meter_for_model("6/8") == "6" and meter_for_model("7/8") is None
    assert key_for_model("f# minor") == "F# minor" and key_for_model("Bbm") == "Bb minor"
    assert key_for_model("C") == "C major" and key_for_model("H dorian") is None
    assert track_name("keys") == "keyboard" and track_name("backing vocals") == "backing_vocals"
    with pytest.raises(ValueError, match="knows no instrument"):
        track_name("theremin")


def test_crossfade_and_mask_helpers():
    from engines.generation.acestep.audio import declick, fade_curves, splice_inside
    from engines.generation.acestep.sampler import soft_mask

    fo, fi = fade_curves(64)
    assert fi[0] == 0.0 and fo[0] == 1.0 and np.allclose(fo ** 2 + fi ** 2, 1.0)
    orig, new = _music(0.1, SR44), -_music(0.1, SR44, seed=1)
    out = splice_inside(orig, new, 100)
    assert np.array_equal(out[:, [0, -1]], orig[:, [0, -1]]) and np.array_equal(out[:, 200:-200], new[:, 200:-200])
    d = declick(new, orig[:, -1] - new[:, 0] + 0.0, 50)
    assert np.allclose(d[:, 0], orig[:, -1]) and np.array_equal(d[:, 50:], new[:, 50:])
    mask = torch.zeros(1, 40)
    mask[0, 10:15] = 1
    mask[0, 30:40] = 1
    s = soft_mask(mask, 3)[0]
    assert s[10:15].eq(1).all() and s[30:].eq(1).all() and s[:7].eq(0).all() and s[18:27].eq(0).all()
    assert torch.allclose(s[7:10], torch.tensor([0.25, 0.5, 0.75])) and torch.allclose(s[15:18], torch.tensor([0.75, 0.5, 0.25]))


# --------------------------------------------------------------------------- equality with the pipeline


def test_generate_equals_pipeline_call(engine, model_dir):
    """Our loop (through the engine, 2 variations with their own seeds) against
    ``AceStepPipeline.__call__`` at the same settings: latents are bit-identical; the audio
    differs only by the per-variation VAE decode (float32 rounding)."""
    from engines.generation.acestep import sampler

    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, prompt="warm piano", lyrics="[verse]\nhello",
                        frames=4 * SR48, sample_rate=SR48, seed=11, variations=2, bpm=97, key="C major",
                        time_signature="4/4")
    res = _run(engine, spec)
    pipe = engine.pipeline
    gens = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    kw = dict(prompt=["warm piano"] * 2, lyrics=["[verse]\nhello"] * 2, audio_duration=4.0, num_inference_steps=8,
              bpm=97, keyscale="C major", timesignature="4")
    ref = pipe(generator=gens, **kw).audios.numpy()
    diff = max(float(np.abs(ref[v] - res.outputs[f"take{v + 1}"]).max()) for v in range(2))
    print(f"\nengine vs AceStepPipeline.__call__ (tiny, CPU fp32): max |audio diff| = {diff:.3g}")
    assert diff < 1e-5
    ref_lat = pipe(generator=[torch.Generator().manual_seed(s) for s in (11, 12)], output_type="latent", **kw).audios
    hidden = sampler.encode_conditions(pipe, prompt="warm piano", lyrics="[verse]\nhello", language="en",
                                       duration_s=4.0, instruction=pipe._get_task_instruction("text2music"), bpm=97,
                                       keyscale="C major", timesignature="4", batch=2)
    ctx = torch.cat([sampler.silence_latents(pipe, 100, 2), sampler.window_mask(100, None, 2, 8)], dim=-1)
    noise = sampler.initial_noise((2, 100, 8), [11, 12], "cpu", torch.float32)
    lat = sampler.sample(pipe, noise, sampler.Conditioning(hidden, ctx), sampler.schedule(pipe, 8, 3.0))
    assert torch.equal(lat, ref_lat)


def test_guided_base_model_equals_pipeline_call(engine, tmp_path):
    """CFG/APG path (base variant): engine steps=4, guidance=5 vs the pipeline."""
    folder = str(save_tiny_model(tmp_path / "base", seed=5, turbo=False))
    spec = GenerateSpec(engine_id="acestep", model_path=folder, prompt="drums", frames=2 * SR48, sample_rate=SR48,
                        seed=2, params={"steps": 4, "guidance": 5.0, "guidance_start": 0.2})
    res = _run(engine, spec)
    pipe = engine.pipeline
    assert not pipe.is_turbo
    ref = pipe(prompt="drums", audio_duration=2.0, num_inference_steps=4, guidance_scale=5.0, cfg_interval_start=0.2,
               generator=torch.Generator().manual_seed(2)).audios.numpy()[0]
    diff = float(np.abs(ref - res.outputs["take1"]).max())
    print(f"\nguided (APG) engine vs pipeline: max |audio diff| = {diff:.3g}")
    assert diff < 1e-5 and res.provenance.extra["guidance_scale"] == 5.0


def test_repaint_conditioning_equals_pipeline(engine, model_dir, monkeypatch):
    """With re-injection off, our repaint conditioning and loop give the pipeline's repaint
    latents (the pipeline samples the VAE posterior; both use its mean here)."""
    from diffusers.models.autoencoders.autoencoder_oobleck import OobleckDiagonalGaussianDistribution

    from engines.generation.acestep import sampler, vae

    _run(engine, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=SR48, sample_rate=SR48))
    pipe = engine.pipeline
    monkeypatch.setattr(OobleckDiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean)
    src = torch.from_numpy(_music(4.0, SR48))
    # audio_duration: the pipeline's metadata says 60 s unless told (its default), ours the real length
    ref = pipe(prompt="x", task_type="repaint", src_audio=src, audio_duration=4.0, repainting_start=1.0,
               repainting_end=2.0, num_inference_steps=8, generator=torch.Generator().manual_seed(7), output_type="latent").audios
    lat = vae.encode(pipe.vae, src[None], vae.Tiling(512, 64))
    chunk = sampler.window_mask(100, [(25, 50)], 1, 8)
    ctx = torch.cat([torch.where(chunk > 0.5, sampler.silence_latents(pipe, 100, 1), lat), chunk], dim=-1)
    hidden = sampler.encode_conditions(pipe, prompt="x", lyrics="", language="en", duration_s=4.0,
                                       instruction=pipe._get_task_instruction("repaint"), bpm=None, keyscale=None,
                                       timesignature=None, batch=1)
    noise = sampler.initial_noise((1, 100, 8), [7], "cpu", torch.float32)
    out = sampler.sample(pipe, noise, sampler.Conditioning(hidden, ctx), sampler.schedule(pipe, 8, 3.0))
    assert float((out - ref).abs().max()) < 1e-6


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("sr", [SR44, SR48])
def test_exact_lengths(engine, model_dir, sr):
    bars2_97bpm = round(2 * 4 * 60 / 97 * sr)  # 2 bars of 4/4 at 97 BPM: 218228 frames at 44.1 kHz
    res = _run(engine, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=bars2_97bpm, sample_rate=sr,
                                    bpm=97, time_signature="4/4"))
    assert res.outputs["take1"].shape == (2, bars2_97bpm) and res.sample_rate == sr
    assert res.outputs["take1"].dtype == np.float32
    src = _music(3.1, sr, seed=3)
    ext = _run(engine, ExtendSpec(engine_id="acestep", model_path=model_dir, audio=src, sample_rate=sr, frames=sr + 77))
    assert ext.outputs["take1"].shape == (2, sr + 77)
    inp = _run(engine, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=src, sample_rate=sr,
                                   regions=[(1001, 1001 + sr // 2 + 3)]))
    assert inp.outputs["take1"].shape == (2, sr // 2 + 3)
    stem = _run(engine, AddStemSpec(engine_id="acestep", model_path=model_dir, audio=src, sample_rate=sr,
                                    instrument="bass", context=(333, 444)))
    assert stem.outputs["take1"].shape == (2, src.shape[1] - 777)
    assert stem.data["placements"]["take1"]["offset"] == 333


# --------------------------------------------------------------------------- the original stays untouched


def test_inpaint_two_regions_leave_the_rest_bit_identical(engine, model_dir):
    sr = SR44
    song = _music(6.0, sr, seed=4)
    regions = [(int(1.0 * sr), int(2.2 * sr)), (int(3.5 * sr) + 7, int(4.6 * sr))]
    res = _run(engine, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=sr,
                                   regions=regions, variations=2, seed=5))
    assert set(res.outputs) == {"take1_region1", "take1_region2", "take2_region1", "take2_region2"}
    for v in (1, 2):
        spliced = song.copy()
        inside = np.zeros(song.shape[1], bool)
        for r, (m0, m1) in enumerate(regions, 1):
            name = f"take{v}_region{r}"
            out = res.outputs[name]
            assert res.data["placements"][name] == {"offset": m0, "variation": v, "region": r}
            assert out.shape == (2, m1 - m0)
            # edges continuous: the output starts and ends on the original's own samples
            assert np.array_equal(out[:, [0, -1]], song[:, [m0, m1 - 1]])
            assert not np.allclose(out, song[:, m0:m1], atol=1e-3)  # the region really is new
            spliced[:, m0:m1] = out
            inside[m0:m1] = True
        assert np.array_equal(spliced[:, ~inside], song[:, ~inside])
        assert np.isfinite(spliced).all()
    assert not np.array_equal(res.outputs["take1_region1"], res.outputs["take2_region1"])
    gains = res.provenance.extra["loudness_gain_db"]
    assert set(gains) == set(res.outputs) and all(abs(g) <= 24 for g in gains.values())


def test_inpaint_loudness_matches_context(engine, model_dir):
    from engines.generation.acestep.audio import loudness_db

    sr = SR48
    song = _music(8.0, sr, seed=6)
    region = (int(3 * sr), int(5 * sr))
    fade = int(0.025 * sr)
    matched = _run(engine, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=sr,
                                       regions=[region], seed=1)).outputs["take1"]
    context = np.concatenate([song[:, :region[0]], song[:, region[1]:]], axis=1)
    assert abs(loudness_db(matched[:, fade:-fade], sr) - loudness_db(context, sr)) < 1.0
    raw = _run(engine, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=sr,
                                   regions=[region], seed=1, match_loudness=False)).outputs["take1"]
    assert not np.allclose(raw, matched)


@pytest.mark.parametrize("direction", ["after", "before"])
def test_extend_leaves_the_source_alone_without_a_click(engine, model_dir, direction):
    sr = SR44
    clip = _music(3.0, sr, seed=7)
    n = int(1.5 * sr) + 11
    res = _run(engine, ExtendSpec(engine_id="acestep", model_path=model_dir, audio=clip, sample_rate=sr, frames=n,
                                  direction=direction, seed=9))
    new = res.outputs["take1"]
    assert new.shape == (2, n)
    place = res.data["placements"]["take1"]
    assert place["offset"] == (clip.shape[1] if direction == "after" else -n)
    # the clip and the new take side by side: the source is untouched ...
    joined = np.concatenate([clip, new] if direction == "after" else [new, clip], axis=1)
    seam = clip.shape[1] if direction == "after" else n
    assert np.array_equal(joined[:, :seam] if direction == "after" else joined[:, seam:], clip)
    # ... and the step across the seam is no bigger than the new audio's own steps
    step = np.abs(joined[:, seam] - joined[:, seam - 1])
    typical = np.abs(np.diff(new, axis=1)).max(axis=1)
    assert (step <= typical + 1e-6).all()


def test_mono_inpaint_stays_mono(engine, model_dir):
    song = _music(3.0, SR44, channels=1, seed=8)
    res = _run(engine, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR44,
                                   regions=[(SR44, 2 * SR44)]))
    assert res.outputs["take1"].shape == (1, SR44)


# --------------------------------------------------------------------------- seeds and variations


def test_variations_differ_and_the_same_seed_reproduces(engine, model_dir):
    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, prompt="synth", frames=3 * SR44, sample_rate=SR44,
                        seed=21, variations=3)
    a = _run(engine, spec)
    pipe = engine.pipeline
    b = _run(engine, spec)
    assert engine.pipeline is pipe  # loaded once, kept between jobs
    for name in ("take1", "take2", "take3"):
        assert np.array_equal(a.outputs[name], b.outputs[name])
    assert not np.allclose(a.outputs["take1"], a.outputs["take2"], atol=1e-3)
    assert not np.allclose(a.outputs["take2"], a.outputs["take3"], atol=1e-3)
    assert a.provenance.extra["seeds"] == [21, 22, 23]
    alone = _run(engine, spec.replace(seed=22, variations=1)).outputs["take1"]
    assert np.abs(alone - a.outputs["take2"]).max() < 1e-4  # variation 2 re-made alone (batch rounding only)


# --------------------------------------------------------------------------- progress, cancel, memory


def test_progress_per_step_and_tile_and_cancel(engine, model_dir, tmp_path):
    seen: list[tuple[float, str]] = []
    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, frames=3 * SR48, sample_rate=SR48,
                        params={"decode_tile_seconds": 2.0})
    _run(engine, spec, sink=lambda f, stage, eta: seen.append((f, stage)))
    stages = [s for _, s in seen]
    assert [s for s in stages if s.startswith("step ")] == [f"step {i}/8" for i in range(1, 9)]
    tiles = [s for s in stages if s.startswith("decoding tile")]
    assert len(tiles) >= 2 and tiles[-1].endswith(f"/{len(tiles)}")
    fr = [f for f, _ in seen]
    assert fr == sorted(fr) and fr[-1] == 1.0

    cancel = CancelToken()

    def sink(f, stage, eta):
        if stage == "step 3/8":
            cancel.cancel()

    out_dir = tmp_path / "out"
    with pytest.raises(JobCancelled):
        _run(engine, spec.replace(output_dir=str(out_dir), variations=2), sink=sink, cancel=cancel)
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_out_of_memory_in_decode_retries_with_smaller_tiles(engine, model_dir, monkeypatch):
    """A (simulated) out-of-memory error in VAE decode; like the engine host, retry with
    ``chunk_scale`` halved: the tiles shrink and the job succeeds."""
    _run(engine, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=SR48, sample_rate=SR48))
    decoder = engine.pipeline.vae.decoder
    real = decoder.forward
    sizes: list[int] = []

    def forward(z):
        sizes.append(int(z.shape[-1]))
        if z.shape[-1] > 60:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real(z)

    monkeypatch.setattr(decoder, "forward", forward)
    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, frames=4 * SR48, sample_rate=SR48, seed=3,
                        variations=2, params={"decode_tile_seconds": 4.0})
    attempts = []
    while True:
        try:
            res = _run(engine, spec)
            break
        except Exception as exc:  # the host's loop (engines/host/process.py)
            assert is_out_of_memory(exc)
            attempts.append(spec.chunk_scale)
            spec = spec.replace(chunk_scale=spec.chunk_scale / 2)
    assert attempts == [1.0] and spec.chunk_scale == 0.5
    assert res.provenance.extra["decode_tile_frames"] == 50 < 100 and max(sizes[-6:]) <= 60
    assert res.provenance.extra["batch"] == 1  # the variations also run one at a time now
    for name in ("take1", "take2"):
        assert res.outputs[name].shape == (2, 4 * SR48) and np.isfinite(res.outputs[name]).all()
    assert not np.allclose(res.outputs["take1"], res.outputs["take2"])


def test_tiled_vae_joins_to_float_rounding():
    """Tiles with the minimum overlap give the untiled decode and encode (the tiny VAE has
    the real VAE's kernels, dilations and strides, hence its receptive field)."""
    from engines.generation.acestep import vae

    pipe = build_tiny_pipeline(seed=2)
    z = torch.randn(1, 200, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = pipe.vae.decoder(z.transpose(1, 2))
    tiles = vae.tiling(2.0, 1.0, 25.0)
    assert (tiles.tile, tiles.overlap) == (50, vae.MIN_OVERLAP) and len(tiles.bounds(200)) == 8
    assert float((vae.decode(pipe.vae, z, tiles) - full).abs().max()) < 1e-5
    x = 0.3 * torch.randn(1, 2, 200 * 1920, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        enc = pipe.vae.encoder(x).chunk(2, dim=1)[0].transpose(1, 2)
    assert float((vae.encode(pipe.vae, x, tiles) - enc).abs().max()) < 1e-5
    assert vae.tiling(20.0, 0.5, 25.0) == vae.Tiling(250, 16) and vae.tiling(20.0, 1 / 64, 25.0).tile == 48


# --------------------------------------------------------------------------- provenance


def test_provenance_is_complete(engine, model_dir, tmp_path):
    song = _music(4.0, SR44, seed=12)
    spec = InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR44, seed=77,
                       regions=[(SR44, 2 * SR44)], prompt="jazz trio", lyrics="[instrumental]", bpm=123.6,
                       key="f# min", time_signature="3/4", output_dir=str(tmp_path / "o"), params={"steps": 6})
    res = _run(engine, spec)
    p = res.provenance
    assert res.outputs["take1"].endswith("take1.wav")
    assert p.engine_id == "acestep" and p.task == "inpaint" and p.seed == 77 and p.licence == "MIT"
    assert set(p.params) == set(manifest.ACESTEP.param_schema["properties"]) and p.params["steps"] == 6
    assert re.fullmatch(r"[0-9a-f]{64}", p.input_sha256["audio"])
    x = p.extra
    assert x["model_path"] == model_dir
    assert "transformer/diffusion_pytorch_model.safetensors" in x["model_files_sha256"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in x["model_files_sha256"].values())
    assert x["seeds"] == [77] and x["steps"] == 6 and x["shift"] == 3.0 and x["guidance_scale"] == 1.0
    assert x["conditioning"]["bpm"] == 124 and x["conditioning"]["keyscale"] == "F# minor"
    assert x["conditioning"]["timesignature"] == "3" and x["conditioning"]["prompt"] == "jazz trio"
    assert x["requested"] == {"bpm": 123.6, "key": "f# min", "time_signature": "3/4"}
    assert x["regions"] == [[SR44, 2 * SR44]] and x["latent_windows"] == [[25, 50]]
    assert x["ace_step_task"] == "repaint" and x["instruction"].startswith("Repaint")
    assert x["sample_rate"] == SR44 and x["decode_tile_frames"] > 0 and x["encode_tile_frames"] > 0
    assert "diffusers" in x["library"] and p.timings["total"] > 0


def test_model_manager_snapshot_gives_revision_and_hashes(model_dir, tmp_path, monkeypatch):
    """A model from the models folder (a whole-repository snapshot): loaded only when its lock
    record is there; provenance takes the commit and the file hashes from the lock."""
    import json
    import shutil

    from engines.files import sha256_file
    from engines.generation.acestep.engine import AceStepEngine
    from engines.hub import LOCK_NAME
    from engines.models import ENV_MODELS_DIR

    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    folder = tmp_path / manifest.DEFAULT_MODEL
    shutil.copytree(model_dir, folder)
    e = AceStepEngine()
    e.load("cpu", "float32")
    spec = GenerateSpec(engine_id="acestep", frames=SR44, sample_rate=SR44)
    with pytest.raises(ModelNotInstalled, match="not installed"):
        _run(e, spec)
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
             for p in folder.rglob("*") if p.is_file()}
    (folder / LOCK_NAME).write_text(json.dumps({"repo": "ACE-Step/acestep-v15-xl-turbo-diffusers",
                                                "revision": "main", "commit": "c0ffee" * 6 + "c0ff",
                                                "files": files}))
    res = _run(e, spec)
    p = res.provenance
    assert p.model_id == manifest.DEFAULT_MODEL and p.revision == "c0ffee" * 6 + "c0ff" and p.licence == "MIT"
    assert p.extra["model_files_sha256"] == {k: v["sha256"] for k, v in files.items()}
    assert p.extra["model_path"] is None and res.outputs["take1"].shape == (2, SR44)


# --------------------------------------------------------------------------- other tasks


def test_add_stem_restyle_and_extract(engine, model_dir):
    from engines.generation.acestep.engine import AceStepExtractEngine

    mix = _music(3.0, SR44, seed=13)
    stem = _run(engine, AddStemSpec(engine_id="acestep", model_path=model_dir, audio=mix, sample_rate=SR44,
                                    instrument="keys"))
    assert stem.provenance.extra["instruction"] == "Generate the KEYBOARD track based on the audio context:"
    assert stem.outputs["take1"].shape == mix.shape
    comp = _run(engine, AddStemSpec(engine_id="acestep", model_path=model_dir, audio=mix, sample_rate=SR44,
                                    instrument="strings", params={"stem_mode": "complete"}))
    assert comp.provenance.extra["ace_step_task"] == "complete"
    soft = _run(engine, RestyleSpec(engine_id="acestep", model_path=model_dir, audio=mix, sample_rate=SR44,
                                    strength=0.3, params={"cover_conditioning": 0.5}))
    hard = _run(engine, RestyleSpec(engine_id="acestep", model_path=model_dir, audio=mix, sample_rate=SR44,
                                    strength=1.0))
    assert soft.outputs["take1"].shape == hard.outputs["take1"].shape == mix.shape
    assert soft.provenance.extra["restyle_start_time"] < hard.provenance.extra["restyle_start_time"] == 1.0
    ex = AceStepExtractEngine()
    ex.load("cpu", "float32")
    res = ex.run(SeparateSpec(engine_id="acestep-extract", model_path=model_dir, audio=mix, sample_rate=SR44,
                              stems=["vocals"], context=(100, 200)), ProgressReporter(), CancelToken())
    assert list(res.outputs) == ["vocals"] and res.outputs["vocals"].shape == (2, mix.shape[1] - 300)
    assert res.provenance.extra["instruction"] == "Extract the VOCALS track from the audio:"
    with pytest.raises(InvalidJob, match="one stem"):
        ex.run(SeparateSpec(engine_id="acestep-extract", model_path=model_dir, audio=mix, sample_rate=SR44,
                            stems=["vocals", "drums"]), ProgressReporter(), CancelToken())


def test_bad_jobs_are_clear_errors(engine, model_dir, tmp_path):
    song = _music(2.0, SR44)
    with pytest.raises(InvalidJob, match="region"):
        _run(engine, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR44,
                                 regions=[(0, 10 * SR44)]))
    with pytest.raises(InvalidJob, match="instrument"):
        _run(engine, AddStemSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR44,
                                 instrument="theremin"))
    with pytest.raises(InvalidJob, match="frames"):
        _run(engine, GenerateSpec(engine_id="acestep", model_path=model_dir, sample_rate=SR44))
    with pytest.raises(ModelNotInstalled):
        _run(engine, GenerateSpec(engine_id="acestep", model_path=str(tmp_path), frames=SR44, sample_rate=SR44))


# --------------------------------------------------------------------------- the guidance hook (issue 14)


def test_step_hook_sees_the_state_and_can_steer(engine, model_dir):
    """The hook gets x_t, t, the velocity and x0 estimate, and a differentiable decoder; a
    hook that moves the velocity changes the result."""
    from engines.generation.acestep.sampler import StepUpdate

    calls = []

    def hook(state):
        calls.append((state.index, state.t, state.t_next))
        assert torch.allclose(state.x0, state.x_t - state.t * state.velocity)
        if state.index == 3:
            with torch.enable_grad():
                x0 = state.x0[:, 10:20].detach().requires_grad_(True)
                audio = state.decode(x0)
                assert audio.shape == (1, 2, 10 * 1920)
                loss = audio.pow(2).mean()
                loss.backward()
                assert x0.grad is not None and torch.isfinite(x0.grad).all()
            return StepUpdate(velocity=state.velocity * 1.1)
        return None

    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, frames=2 * SR48, sample_rate=SR48, seed=4)
    plain = _run(engine, spec).outputs["take1"]
    engine.step_hook = hook
    try:
        steered = _run(engine, spec).outputs["take1"]
    finally:
        engine.step_hook = None
    assert [c[0] for c in calls] == list(range(8)) and calls[0][1] == 1.0 and calls[-1][2] == 0.0
    assert not np.allclose(plain, steered)
    assert math.isclose(calls[1][1], calls[0][2])


def test_in_memory_pipeline_helper_builds():
    pipe = build_tiny_pipeline(seed=1)
    assert pipe.sample_rate == 48000 and pipe.latents_per_second == 25.0 and pipe.is_turbo


def test_bf16_weights_on_cpu(model_dir):
    """The dtype plumbing of the CUDA policy (bf16 weights, float32 audio out), checked on the CPU."""
    from engines.generation.acestep.engine import AceStepEngine

    e = AceStepEngine()
    e.load("cpu", "bfloat16")
    res = _run(e, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=SR44, sample_rate=SR44, variations=2))
    assert e.pipeline.transformer.dtype == torch.bfloat16 and res.provenance.dtype == "bfloat16"
    assert res.outputs["take1"].dtype == np.float32 and np.isfinite(res.outputs["take2"]).all()
    song = _music(3.0, SR44, seed=5)
    inp = _run(e, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR44,
                              regions=[(SR44, 2 * SR44)]))
    assert np.array_equal(inp.outputs["take1"][:, [0, -1]], song[:, [SR44, 2 * SR44 - 1]])
    e.unload()


@pytest.mark.gpu
def test_bf16_on_cuda_generates_and_inpaints(model_dir):
    """The CUDA policy: bf16 weights, the same job shapes, finite audio, untouched edges."""
    from engines.generation.acestep.engine import AceStepEngine

    e = AceStepEngine()
    e.load("cuda:0", "bfloat16")
    res = _run(e, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=3 * SR44, sample_rate=SR44,
                               variations=2))
    assert e.pipeline.transformer.dtype == torch.bfloat16 and res.provenance.dtype == "bfloat16"
    assert res.outputs["take1"].shape == (2, 3 * SR44) and np.isfinite(res.outputs["take2"]).all()
    song = _music(4.0, SR44, seed=2)
    inp = _run(e, InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR44,
                              regions=[(SR44, 2 * SR44)]))
    assert np.array_equal(inp.outputs["take1"][:, [0, -1]], song[:, [SR44, 2 * SR44 - 1]])
    e.unload()
