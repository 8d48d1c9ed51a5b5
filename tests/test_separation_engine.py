"""Separation engines (htdemucs with tiny models, DSP fallback) and safe model loading."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from engines.base import CancelToken, InvalidJob, ModelNotInstalled, ProgressReporter, SeparateSpec  # noqa: E402
from engines.registry import get_engine_class, get_entry, get_model, list_engines  # noqa: E402
from engines.separation.core import SeparationOptions, separate  # noqa: E402
from engines.separation.demucs_adapter import (  # noqa: E402
    full_size_htdemucs, load_model_path, load_pretrained, load_safetensors, load_th, tiny_htdemucs,
)


@pytest.fixture(scope="module")
def mixture(shared):
    audio, sr = sf.read(str(shared / "multitrack" / "blupi001" / "mixture.flac"), dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio[sr * 2: sr * 4].T), sr


def _run(engine, spec):
    engine.load("cpu")
    return engine.run(spec, ProgressReporter(), CancelToken())


def test_registry_lists_engines_and_models_without_torch_models():
    ids = [e.id for e in list_engines("separate")]
    assert "htdemucs" in ids and "dsp-separation" in ids
    assert get_entry("dsp-separation").offline and "fallback" in get_entry("dsp-separation").description.lower()
    for name, n_files in (("htdemucs", 1), ("htdemucs_ft", 4), ("htdemucs_6s", 1)):
        rec = get_model(name)
        assert rec.licence == "MIT" and len(rec.files) == n_files
        for f in rec.files:
            # official file names carry the first 8 hex digits of the sha256
            assert f.filename.split("-")[1].startswith(f.sha256[:8]) and len(f.sha256) == 64
            assert f.url.endswith(f.filename) and f.size > 50_000_000


def test_full_size_architecture_has_published_parameter_count():
    model = full_size_htdemucs()
    n = sum(p.numel() for p in model.parameters())
    assert 41_900_000 < n < 42_100_000
    assert float(model.segment) == 7.8 and model.samplerate == 44100


def test_demucs_engine_vocals_to_files_exact_length(mixture, tmp_path):
    x, sr = mixture
    engine = get_engine_class("htdemucs")()
    engine.use_model("htdemucs", tiny_htdemucs(segment=0.5))
    spec = SeparateSpec(engine_id="htdemucs", audio=x, sample_rate=sr, stems=["vocals"],
                        output_dir=str(tmp_path), params={"residual": True}, seed=7)
    res = _run(engine, spec)
    assert set(res.outputs) == {"vocals", "instrumental"}
    vocals, vsr = res.load_output("vocals")
    inst, _ = res.load_output("instrumental")
    assert vsr == sr and vocals.shape == x.shape and inst.shape == x.shape
    assert np.abs(vocals + inst - x).max() < 1e-6  # float WAV keeps the samples
    p = res.provenance
    assert p.licence == "MIT" and p.model_id == "htdemucs" and p.task == "separate"
    assert p.params["residual"] is True and p.params["overlap"] == 0.25
    assert p.input_sha256["audio"] and p.extra["stems"] == ["vocals", "instrumental"]


def test_demucs_engine_trims_context_and_scales_batch(mixture):
    x, sr = mixture
    engine = get_engine_class("htdemucs")()
    engine.use_model("htdemucs", tiny_htdemucs(segment=0.5))
    spec = SeparateSpec(audio=x, sample_rate=sr, context=(1000, 2345), chunk_scale=0.5, params={"batch_size": 4})
    res = _run(engine, spec)
    assert list(res.outputs) == ["drums", "bass", "other", "vocals"]
    assert all(v.shape == (2, x.shape[1] - 3345) for v in res.outputs.values())
    assert res.provenance.extra["batch_size"] == 2


def test_demucs_engine_rejects_bad_params_and_missing_model(mixture, tmp_path, monkeypatch):
    x, sr = mixture
    engine = get_engine_class("htdemucs")()
    engine.use_model("htdemucs", tiny_htdemucs(segment=0.5))
    with pytest.raises(InvalidJob, match="shifts"):
        _run(engine, SeparateSpec(audio=x, sample_rate=sr, params={"shifts": -1}))
    with pytest.raises(InvalidJob, match="kazoo"):
        _run(engine, SeparateSpec(audio=x, sample_rate=sr, stems=["kazoo"]))
    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelNotInstalled):
        _run(get_engine_class("htdemucs")(), SeparateSpec(audio=x, sample_rate=sr, model_id="htdemucs_6s"))


def _package(model):
    args, kwargs = model._init_args_kwargs
    state = {k: v.half() for k, v in model.state_dict().items()}
    return {"klass": type(model), "args": args, "kwargs": kwargs, "state": state, "training_args": {"lr": 3e-4}}


def test_legacy_th_loads_with_weights_only(tmp_path, mixture):
    x, sr = mixture
    model = tiny_htdemucs(segment=0.5, seed=3)
    path = tmp_path / "955717e8-8726e21a.th"  # the file name the model record names
    torch.save(_package(model), path)
    loaded = load_pretrained("htdemucs", tmp_path)
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    a = separate(model, x, sr).stems["vocals"]
    b = separate(loaded, x, sr).stems["vocals"]
    assert np.abs(a - b).max() < 1e-6


class Evil:  # a pickled global outside the allow-list
    def __reduce__(self):
        return (print, ("this must never run",))


def test_legacy_th_with_foreign_globals_is_refused(tmp_path):
    path = tmp_path / "evil.th"
    pkg = _package(tiny_htdemucs(segment=0.5))
    pkg["training_args"] = Evil()
    torch.save(pkg, path)
    with pytest.raises(InvalidJob, match="can't be loaded safely"):
        load_th(path)


def _save_safetensors(model, path):
    from safetensors.torch import save_file

    args, kwargs = model._init_args_kwargs

    def enc(v):
        if isinstance(v, Fraction):
            return {"_type": "fraction", "numerator": v.numerator, "denominator": v.denominator}
        return v

    meta = {"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(list(args)),
            "kwargs": json.dumps({k: enc(v) for k, v in kwargs.items()})}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)


def test_fine_tuned_bag_from_safetensors_runs_only_needed_members(tmp_path, mixture):
    from demucs.apply import BagOfModels

    x, sr = mixture
    x = x[:, : sr // 2]
    sigs = ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d")
    for i, sig in enumerate(sigs):
        _save_safetensors(tiny_htdemucs(segment=0.5, seed=i), tmp_path / f"{sig}.safetensors")
    # the demucs HF layout: a bag file beside the members (loaded through --model-path)
    weights = [[1.0 if j == i else 0.0 for j in range(4)] for i in range(4)]
    (tmp_path / "htdemucs_ft.yaml").write_text(json.dumps({"models": list(sigs), "weights": weights}))
    bag = load_model_path(tmp_path)
    assert isinstance(bag, BagOfModels) and len(bag.models) == 4
    full = separate(bag, x, sr)
    vocals_only = separate(bag, x, sr, SeparationOptions(stems=["vocals"]))
    assert full.info["members_run"] == 4 and vocals_only.info["members_run"] == 1
    assert np.abs(full.stems["vocals"] - vocals_only.stems["vocals"]).max() < 1e-6
    # the vocals of the bag are the vocals of its 4th member
    single = separate(tiny_htdemucs(segment=0.5, seed=3), x, sr)
    assert np.abs(single.stems["vocals"] - full.stems["vocals"]).max() < 1e-6


def test_safetensors_with_foreign_class_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "955717e8.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"klass": "os.system", "args": "[]", "kwargs": "{}"})
    with pytest.raises(InvalidJob, match="not a demucs model"):
        load_safetensors(path)
    with pytest.raises(InvalidJob, match="not a demucs model"):
        load_model_path(tmp_path)


def test_dsp_fallback_engine(shared):
    stems_dir = shared / "multitrack" / "blupi001"
    mix, sr = sf.read(str(stems_dir / "mixture.flac"), dtype="float32", always_2d=True)
    sl = slice(sr * 2, sr * 6)
    mix = np.ascontiguousarray(mix[sl].T)
    truth = {n: sf.read(str(stems_dir / f"{n}.flac"), dtype="float32", always_2d=True)[0][sl].T for n in ("drums", "bass")}
    engine = get_engine_class("dsp-separation")()
    res = _run(engine, SeparateSpec(engine_id="dsp-separation", audio=mix, sample_rate=sr))
    out = res.outputs
    assert list(out) == ["drums", "bass", "other", "vocals"]
    assert all(v.shape == mix.shape for v in out.values())
    assert np.abs(sum(v.astype(np.float64) for v in out.values()) - mix).max() < 1e-5
    assert res.provenance.extra["fallback"] == "dsp" and res.provenance.model_id == "dsp-hpss-centre"

    def corr(a, b):
        a, b = a.ravel(), b.ravel()
        return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))

    assert corr(out["drums"], truth["drums"]) > corr(out["drums"], truth["bass"])
    assert corr(out["bass"], truth["bass"]) > corr(out["bass"], truth["drums"])
    sel = _run(engine, SeparateSpec(audio=mix, sample_rate=sr, stems=["vocals"]))
    assert list(sel.outputs) == ["vocals", "instrumental"]
    assert np.abs(sel.outputs["vocals"] + sel.outputs["instrumental"] - mix).max() < 1e-5
