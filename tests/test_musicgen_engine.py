"""The musicgen engine (engines/generation/musicgen/engine.py) on tiny random-weight models
loaded through ``spec.model_path``: takes, seeds, 70 s by sliding windows, extend, melody,
progress/cancel, provenance and errors."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from engines.base import (
    CancelToken,
    ControlTarget,
    ExtendSpec,
    GenerateSpec,
    InvalidJob,
    JobCancelled,
    ProgressReporter,
    load_audio,
)
from engines.generation.musicgen import decode as D
from engines.generation.musicgen import manifest
from engines.generation.musicgen.engine import MusicgenEngine, describe
from engines.generation.musicgen.model import MusicgenModel
from tests.musicgen_tiny import TINY_HOP, TINY_SAMPLE_RATE, build_tiny_musicgen

FP32 = {"cpu_bfloat16": False}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("mg") / "tiny")


@pytest.fixture(scope="module")
def tiny_melody(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("mg") / "melody", melody=True)


@pytest.fixture(scope="module")
def engine():
    e = MusicgenEngine()
    e.load("cpu", "float32")
    yield e
    e.unload()


def _run(engine, spec, progress=None, cancel=None):
    return engine.run(spec, progress or ProgressReporter(), cancel or CancelToken())


def _gen(folder, **kw):
    kw.setdefault("params", dict(FP32))
    kw.setdefault("prompt", "calm piano")
    return GenerateSpec(engine_id="musicgen", model_path=str(folder), **kw)


# --------------------------------------------------------------------------- generate


def test_variations_differ_and_seeds_reproduce(engine, tiny):
    sr = 8000
    r = _run(engine, _gen(tiny, frames=3 * sr + 11, sample_rate=sr, variations=3, seed=7))
    assert sorted(r.outputs) == ["take1", "take2", "take3"] and r.sample_rate == sr
    takes = [r.outputs[f"take{v}"] for v in (1, 2, 3)]
    for t in takes:
        assert t.dtype == np.float32 and t.shape == (1, 3 * sr + 11) and np.isfinite(t).all() and np.abs(t).max() > 0.01
    assert all(np.abs(a - b).mean() > 1e-3 for i, a in enumerate(takes) for b in takes[i + 1:])
    assert r.data["placements"] == {f"take{v}": {"offset": 0, "variation": v, "region": None} for v in (1, 2, 3)}
    again = _run(engine, _gen(tiny, frames=3 * sr + 11, sample_rate=sr, variations=3, seed=7))
    assert all(np.array_equal(again.outputs[k], r.outputs[k]) for k in r.outputs)
    # variation 2 uses seed + 1: re-made alone it is the same take
    alone = _run(engine, _gen(tiny, frames=3 * sr + 11, sample_rate=sr, variations=1, seed=8))
    assert np.array_equal(alone.outputs["take1"], takes[1])
    other = _run(engine, _gen(tiny, frames=3 * sr + 11, sample_rate=sr, variations=1, seed=99))
    assert np.abs(other.outputs["take1"] - takes[0]).mean() > 1e-3
    assert r.provenance.extra["seeds"] == [7, 8, 9]


def test_seventy_seconds_exactly_from_sliding_windows(engine, tiny, monkeypatch):
    decoded = []
    real_decode = MusicgenModel.decode

    def spy(self, codes):
        decoded.append(tuple(codes.shape))
        return real_decode(self, codes)

    monkeypatch.setattr(MusicgenModel, "decode", spy)
    windows = []
    real_window = D.generate_window

    def spy_window(dec, cond, prompt, frames, *a, **kw):
        out = real_window(dec, cond, prompt, frames, *a, **kw)
        windows.append((0 if prompt is None else prompt.shape[-1], frames))
        return out

    monkeypatch.setattr(D, "generate_window", spy_window)
    sr = 44100
    r = _run(engine, _gen(tiny, frames=70 * sr, sample_rate=sr, variations=2, seed=1))
    assert [r.outputs[k].shape for k in ("take1", "take2")] == [(1, 70 * sr)] * 2
    fr = TINY_SAMPLE_RATE // TINY_HOP  # 5 codec frames per second
    total = 70 * fr + 1  # one spare frame for the resampler's edge
    assert r.provenance.extra["codec_frames"] == total
    # 30 s windows every 18 s, 12 s of tokens kept as the next prompt (audiocraft extend_stride)
    assert windows == [(0, 150), (60, 150), (60, 150), (60, total - 54 * fr)]
    assert r.provenance.extra["windows_s"] == [[0.0, 0.0, 30.0], [18.0, 30.0, 48.0], [36.0, 48.0, 66.0],
                                               [54.0, 66.0, total / fr]]
    # decoded once per take, from the tokens of all windows: no audio seams
    assert decoded == [(1, 4, total), (1, 4, total)]
    assert np.abs(r.outputs["take1"][:, -sr:]).max() > 0.01  # sound up to the last second


def test_greedy_take_is_the_audio_of_generate(engine, tiny):
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    frames = 20 * TINY_HOP  # 4 s at the model rate: no resampling
    params = dict(FP32, temperature=0.0)
    r = _run(engine, _gen(tiny, frames=frames, sample_rate=TINY_SAMPLE_RATE, variations=2, seed=0, params=params))
    hf = MusicgenForConditionalGeneration.from_pretrained(str(tiny), dtype=torch.float32).eval()
    inputs = AutoTokenizer.from_pretrained(str(tiny))(["calm piano"] * 2, return_tensors="pt")
    with torch.no_grad():  # the engine makes one spare codec frame: 21 frames = 21 + 3 new tokens
        audio = hf.generate(**inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=21 + 3)
    for v in (0, 1):
        np.testing.assert_allclose(r.outputs[f"take{v + 1}"][0], audio[v, 0, :frames].numpy(), atol=1e-5)


def test_default_cpu_path_runs_in_bfloat16_where_supported(engine, tiny):
    from engines.generation.musicgen.engine import _cpu_bf16

    r = _run(engine, _gen(tiny, frames=4000, sample_rate=8000, params={}))
    assert r.outputs["take1"].shape == (1, 4000) and np.isfinite(r.outputs["take1"]).all()
    assert r.provenance.dtype == ("bfloat16" if _cpu_bf16() else "float32")
    assert r.provenance.extra["cross_attention_folded"] is True  # a short description on the CPU


# --------------------------------------------------------------------------- extend


def test_extend_keeps_the_clip_and_outputs_only_new_material(engine, tiny, tmp_path, monkeypatch):
    import soundfile as sf

    sr = 8000
    t = np.arange(5 * sr + 123) / sr
    clip = (0.3 * np.sin(2 * np.pi * 110 * t) * np.linspace(1, 0.5, t.size)).astype(np.float32)[None]
    path = tmp_path / "clip.wav"
    sf.write(str(path), clip.T, sr, subtype="FLOAT")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    prompts = []
    real_window = D.generate_window

    def spy_window(dec, cond, prompt, frames, *a, **kw):
        prompts.append(None if prompt is None else prompt.clone())
        return real_window(dec, cond, prompt, frames, *a, **kw)

    monkeypatch.setattr(D, "generate_window", spy_window)
    frames = 3 * sr + 7
    spec = ExtendSpec(engine_id="musicgen", model_path=str(tiny), audio=str(path), prompt="calm piano", frames=frames,
                      variations=2, seed=4, params=dict(FP32, crossfade_ms=80.0))
    r = _run(engine, spec)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the clip is untouched
    assert r.provenance.input_sha256["audio"] == before
    for v in (1, 2):
        out = r.outputs[f"take{v}"]
        assert out.shape == (1, frames) and out.dtype == np.float32
        assert r.data["placements"][f"take{v}"] == {"offset": clip.shape[-1], "variation": v, "region": None}
    assert not np.array_equal(r.outputs["take1"], r.outputs["take2"])
    # the prompt is the EnCodec code of the clip's last whole codec frames (5 s -> 25 frames at 5 Hz)
    mg = MusicgenModel(tiny, "cpu", torch.float32)
    from engines.generation.musicgen.engine import resample_exact

    clip_m = resample_exact(clip, sr, TINY_SAMPLE_RATE)
    p = clip_m.shape[-1] // TINY_HOP
    assert r.provenance.extra["prompt_frames"] == p == 25
    want = mg.encode(clip_m[:, clip_m.shape[-1] - p * TINY_HOP:])
    assert torch.equal(prompts[0], want.repeat(2, 1, 1))
    # the crossfade lives inside the new material: it pulls the first frame towards the clip's
    # last sample, and after 80 ms the material is exactly the uncrossfaded one
    raw = _run(engine, spec.replace(params=dict(FP32, crossfade_ms=0.0)))
    xf = int(0.08 * sr)
    for v in (1, 2):
        a, b = r.outputs[f"take{v}"], raw.outputs[f"take{v}"]
        assert np.array_equal(a[:, xf:], b[:, xf:]) and not np.array_equal(a[:, :xf], b[:, :xf])
        assert abs(a[0, 0] - clip[0, -1]) < abs(b[0, 0] - clip[0, -1])
    assert r.provenance.extra["crossfade_frames"] == xf


def test_extend_matches_the_clip_channels_and_refuses_before(engine, tiny):
    sr = 8000
    clip = np.random.default_rng(0).normal(0, 0.1, (2, 2 * sr)).astype(np.float32)
    spec = ExtendSpec(engine_id="musicgen", model_path=str(tiny), audio=clip, sample_rate=sr, frames=sr, params=dict(FP32))
    r = _run(engine, spec)
    assert r.outputs["take1"].shape == (2, sr) and r.data["placements"]["take1"]["offset"] == 2 * sr
    with pytest.raises(InvalidJob, match="forwards"):
        _run(engine, spec.replace(direction="before"))
    with pytest.raises(InvalidJob, match="too short"):
        _run(engine, spec.replace(audio=clip[:, :50]))


# --------------------------------------------------------------------------- melody


def _tones(sr, seconds_each, freqs):
    t = np.arange(int(seconds_each * sr)) / sr
    return np.concatenate([np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32) * 0.5


def test_melody_changes_the_output_and_follows_the_reference_per_window(engine, tiny_melody, tmp_path, monkeypatch):
    import soundfile as sf

    sr = 8000
    ref = _tones(sr, 10, [196.0, 220.0, 246.94])  # G, A, B: 10 s each, 30 s in all
    path = tmp_path / "melody.wav"
    sf.write(str(path), ref, sr, subtype="FLOAT")
    seen = []
    real = MusicgenModel.conditioning

    def spy(self, text, batch, guided, chroma=None):
        seen.append(None if chroma is None else chroma[0].argmax(-1).cpu().numpy())
        return real(self, text, batch, guided, chroma)

    monkeypatch.setattr(MusicgenModel, "conditioning", spy)
    melody = {"melody": ControlTarget(kind="melody", audio=str(path)).to_dict()}
    frames = 70 * sr
    with_m = _run(engine, _gen(tiny_melody, frames=frames, sample_rate=sr, seed=2, controls=melody))
    assert with_m.outputs["take1"].shape == (1, frames)
    assert with_m.provenance.input_sha256["melody"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # one chroma per window, each read from the reference at the window's start, looped every 30 s
    assert len(seen) == 4
    fr_c = TINY_SAMPLE_RATE / 128  # chroma frames per second of the tiny model
    for start, pitches in zip((0.0, 18.0, 36.0, 54.0), seen):
        assert pitches.shape == (151,)
        t = start + np.arange(151) / fr_c
        ref_t = t % 30.0
        clear = np.abs(ref_t - np.round(ref_t / 10.0) * 10.0) > 1.0  # away from tone changes
        want = np.array([7, 9, 11])[(ref_t // 10).astype(int)]
        assert np.array_equal(pitches[clear], want[clear])
    seen.clear()
    without = _run(engine, _gen(tiny_melody, frames=frames, sample_rate=sr, seed=2))
    assert seen == [None]  # no melody: the null chroma, one text conditioning for all four windows
    assert np.abs(with_m.outputs["take1"] - without.outputs["take1"]).mean() > 1e-3
    other_ref = {"melody": ControlTarget(kind="melody", values=np.eye(12, dtype=np.float32)[:, [0, 4, 7]],
                                         frame_rate=0.5).to_dict()}
    other = _run(engine, _gen(tiny_melody, frames=frames, sample_rate=sr, seed=2, controls=other_ref))
    assert np.abs(other.outputs["take1"] - with_m.outputs["take1"]).mean() > 1e-3
    assert other.provenance.extra["melody"]["source"] == "values"
    # C, E, G for 2 s each, looped every 6 s: the window starting at 18 s reads C, E, G again
    assert len(seen) == 5 and [int(x) for x in seen[-3][[5, 15, 25, 35]]] == [0, 4, 7, 0]


def test_melody_needs_a_melody_model(engine, tiny):
    melody = {"melody": ControlTarget(kind="melody", values=np.eye(12)[:, :4], frame_rate=1.0).to_dict()}
    with pytest.raises(InvalidJob, match="no melody input"):
        _run(engine, _gen(tiny, frames=800, sample_rate=8000, controls=melody))


# --------------------------------------------------------------------------- job plumbing


def test_progress_every_step_and_cancel(engine, tiny):
    updates = []
    progress = ProgressReporter(lambda f, stage, eta: updates.append((f, stage)))
    r = _run(engine, _gen(tiny, frames=8000 * 4, sample_rate=8000), progress)
    steps = sum(1 for _, s in updates if s == "generating")
    assert steps == 21 + 3  # 4 s at 5 Hz + the spare frame, plus the delay tail
    assert [f for f, _ in updates] == sorted(f for f, _ in updates) and updates[-1] == (1.0, "done")
    assert r.outputs["take1"].shape == (1, 32000)
    cancel = CancelToken()
    count = [0]

    def sink(f, stage, eta):
        if stage == "generating":
            count[0] += 1
            if count[0] == 5:
                cancel.cancel()

    with pytest.raises(JobCancelled):
        _run(engine, _gen(tiny, frames=8000 * 20, sample_rate=8000), ProgressReporter(sink), cancel)
    assert count[0] == 5  # stopped at the next step


def test_outputs_as_files_and_complete_provenance(engine, tiny, tmp_path):
    spec = _gen(tiny, frames=1000, sample_rate=8000, variations=2, seed=11, output_dir=str(tmp_path / "out"),
                bpm=92.0, key="F minor", time_signature="3/4", params=dict(FP32, top_k=20))
    r = _run(engine, spec)
    for v in (1, 2):
        audio, sr = load_audio(r.outputs[f"take{v}"])
        assert sr == 8000 and audio.shape == (1, 1000)
    p = r.provenance
    assert p.licence == "CC-BY-NC-4.0" and p.seed == 11 and p.model_id == "local:tiny"
    assert p.params["top_k"] == 20 and p.params["cfg_coef"] == 3.0 and p.params["extend_stride"] == 18.0
    assert p.extra["description"] == "calm piano. bpm: 92. key: F minor" == r.data["description"]
    assert p.extra["model_config_sha256"] == hashlib.sha256((tiny / "config.json").read_bytes()).hexdigest()
    assert "time_signature_note" in p.extra and p.timings["total"] > 0
    assert describe("Lo-fi beat.", None, None, True) == "Lo-fi beat"
    assert describe("", 120, "C major", True) == "bpm: 120. key: C major"
    assert describe("x", 120, "C major", False) == "x"


def test_through_the_host_job_loop_with_an_out_of_memory_retry(engine, tiny, tmp_path, monkeypatch):
    """The host's own job loop (LocalHost): files out, provenance, and an out-of-memory error
    retried with chunk_scale halved, which splits the variations into smaller batches
    without changing the takes (each variation has its own seeded generator)."""
    from engines.host.local import LocalHost

    spec = _gen(tiny, frames=4000, sample_rate=8000, variations=2, seed=21)
    direct = _run(engine, spec)
    real_init = D.StaticDecoder.__init__
    tries = []

    def tight_memory(self, lm, rows, max_len, packed=None):
        tries.append(rows)
        if rows > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        real_init(self, lm, rows, max_len, packed)

    monkeypatch.setattr(D.StaticDecoder, "__init__", tight_memory)
    host = LocalHost(engines={"musicgen": engine})
    r = host.run("job-1", spec, work_dir=str(tmp_path))
    assert tries == [4, 2, 2]  # 2 variations x (cond, null) rows; then one variation per batch
    assert r.provenance.chunk_scale == 0.5 and r.provenance.extra["batches"] == [1, 1]
    assert r.provenance.licence == "CC-BY-NC-4.0" and r.provenance.engine_id == "musicgen"
    for v in (1, 2):
        audio, sr = load_audio(r.outputs[f"take{v}"])
        assert sr == 8000 and np.array_equal(audio, direct.outputs[f"take{v}"])
    assert r.data["placements"]["take2"] == {"offset": 0, "variation": 2, "region": None}


def test_model_id_from_the_models_folder(tiny, tmp_path, monkeypatch):
    """A record id loads from the models folder; the take records the record's revision and
    licence. (The records' byte sizes could not be looked up offline, so the folder is used
    unverified, with a log line: see manifest.MISSING_FACTS.)"""
    import shutil

    from engines.models import ENV_MODELS_DIR

    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    shutil.copytree(tiny, tmp_path / "musicgen-small")
    logs = []
    e = MusicgenEngine()
    e.load("cpu", "float32")
    r = e.run(GenerateSpec(engine_id="musicgen", model_id="musicgen-small", prompt="rock", frames=800, sample_rate=8000,
                           params=dict(FP32)), ProgressReporter(log_sink=logs.append), CancelToken())
    rec = next(m for m in manifest.MODELS if m.id == "musicgen-small")
    assert r.provenance.model_id == "musicgen-small" and r.provenance.revision == rec.revision
    assert r.provenance.licence == "CC-BY-NC-4.0" and r.outputs["take1"].shape == (1, 800)
    assert any("unverified" in line for line in logs)
    e.unload()
    shutil.rmtree(tmp_path / "musicgen-small")
    from engines.base import ModelNotInstalled

    with pytest.raises(ModelNotInstalled):
        e.run(GenerateSpec(engine_id="musicgen", model_id="musicgen-small", frames=800, sample_rate=8000),
              ProgressReporter(), CancelToken())


def test_invalid_jobs(engine, tiny):
    with pytest.raises(InvalidJob, match="frames > 0"):
        _run(engine, _gen(tiny, frames=0, sample_rate=8000))
    with pytest.raises(InvalidJob, match="window step"):
        _run(engine, _gen(tiny, frames=800, sample_rate=8000, params=dict(FP32, window=10.0, extend_stride=12.0)))
    with pytest.raises(InvalidJob, match="top_k"):
        _run(engine, _gen(tiny, frames=800, sample_rate=8000, params=dict(FP32, top_k=-1)))
    with pytest.raises(InvalidJob, match="no model"):
        _run(engine, GenerateSpec(engine_id="musicgen", model_id="musicgen-tiny", frames=800, sample_rate=8000))


def test_manifest_entry_and_records():
    from engines import registry

    e = registry.get_entry("musicgen")
    assert e.accepts_model_path and set(e.tasks) == {"generate", "extend"}
    props = e.param_schema["properties"]
    assert props["top_k"]["default"] == 250 and props["cfg_coef"]["default"] == 3.0
    assert props["extend_stride"]["default"] == 18.0 and props["window"]["default"] == 30.0
    assert all({"default", "title", "description"} <= set(p) for p in props.values())
    assert registry.get_engine_class("musicgen") is MusicgenEngine
    records = {m.id: m for m in registry.list_models() if m.engine == "musicgen"}
    assert set(records) == set(manifest.MODEL_IDS) == set(e.models)
    for m in records.values():
        assert m.licence == "CC-BY-NC-4.0" and m.hf_repo == f"facebook/{m.id}" and m.sample_rate == 32000
        assert m.revision and len(m.revision) == 40 and int(m.revision, 16) >= 0
        assert any(f.filename == "config.json" for f in m.files)
        assert all(f.sha256 == "" or len(f.sha256) == 64 for f in m.files)
