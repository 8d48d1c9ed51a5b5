"""Model-folder integrity: sha256 at load (cached by file stamp), exactly the recorded files,
no paths outside the folder, no code named by file metadata, one clear error per bad file,
and the analysis engine's fallback to DSP when the Beat This! checkpoint is bad."""
from __future__ import annotations

import json
import logging
import os
import sys
from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from engines.base import ChecksumMismatch, InvalidJob  # noqa: E402
from engines.files import sha256_file  # noqa: E402
from engines.models import ModelManager  # noqa: E402
from engines.records import ModelFile, ModelRecord  # noqa: E402
from engines.separation.demucs_adapter import (  # noqa: E402
    load_model_path, load_pretrained, load_safetensors, load_th, save_th, tiny_htdemucs,
)

OFFICIAL = "955717e8-8726e21a.th"


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def _record(folder, filename=OFFICIAL) -> ModelRecord:
    path = folder / "htdemucs" / filename
    return ModelRecord(id="htdemucs", engine="htdemucs", title="test", licence="MIT",
                       files=(ModelFile(filename, sha256_file(path), path.stat().st_size, None),))


@pytest.fixture
def installed(tmp_path):
    """A models folder holding a tiny htdemucs under the official file name, and its record."""
    folder = tmp_path / "models"
    (folder / "htdemucs").mkdir(parents=True)
    model = tiny_htdemucs(segment=0.5, seed=1)
    save_th(model, folder / "htdemucs" / OFFICIAL)
    return folder, _record(folder), model


def test_swapped_model_file_is_refused_at_load_and_hashed_once_per_change(installed, monkeypatch):
    import engines.models as models

    folder, rec, _ = installed
    calls = []
    real = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    models._HASH_CACHE.clear()
    mgr = ModelManager(folder, records=[rec])
    assert mgr.require("htdemucs") == folder / "htdemucs"
    assert mgr.require("htdemucs") == folder / "htdemucs"
    assert len(calls) == 1  # hashed once
    models._HASH_CACHE.clear()  # a new process: the digest comes from .verified.json
    assert ModelManager(folder, records=[rec]).require("htdemucs")
    assert len(calls) == 1
    # the file is replaced by one of the same size (one byte changed)
    path = folder / "htdemucs" / OFFICIAL
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch) as err:
        mgr.require("htdemucs")
    assert str(path) in str(err.value) and "download it again" in str(err.value)
    assert mgr.verify("htdemucs") == [f"{OFFICIAL}: sha256 mismatch"]  # verify and require agree
    assert len(calls) == 3


def test_a_stray_file_never_wins_over_the_recorded_one(installed):
    folder, _, official = installed
    save_th(tiny_htdemucs(segment=0.5, seed=2), folder / "htdemucs" / "955717e8-0.th")  # sorts first
    loaded = load_pretrained("htdemucs", folder / "htdemucs")
    assert _same_weights(loaded, official)


def test_a_bag_file_naming_paths_outside_is_never_followed(installed, tmp_path):
    folder, _, official = installed
    evil = tmp_path / "evil"
    evil.mkdir()
    save_th(tiny_htdemucs(segment=0.5, seed=9), evil / "x-0.th")
    (folder / "htdemucs" / "htdemucs.yaml").write_text(json.dumps({"models": ["../../../evil/x"]}))
    assert _same_weights(load_pretrained("htdemucs", folder / "htdemucs"), official)  # the yaml is not read
    # --model-path folders may have a bag file, but members are plain names inside the folder
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bag.yaml").write_text(json.dumps({"models": ["../evil/x"]}))
    with pytest.raises(InvalidJob, match="not a plain file name"):
        load_model_path(mine)
    (mine / "bag.yaml").write_text(json.dumps({"models": ["x"]}))
    os.symlink(evil / "x-0.th", mine / "x-0.th")
    with pytest.raises(InvalidJob, match="points outside"):
        load_model_path(mine)


def _safetensors(model, path, **extra_meta):
    from safetensors.torch import save_file

    args, kwargs = model._init_args_kwargs

    def enc(v):
        if isinstance(v, Fraction):
            return {"_type": "fraction", "numerator": v.numerator, "denominator": v.denominator}
        return v

    meta = {"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(list(args)),
            "kwargs": json.dumps({k: enc(v) for k, v in kwargs.items()}), **extra_meta}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)


def test_safetensors_metadata_never_imports_a_module(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "seed_evil_module.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Boom: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = tiny_htdemucs(segment=0.5)
    path = tmp_path / "955717e8.safetensors"
    names = list(model.state_dict())
    structure = {"_dict": [[n, {"_tensor": n}] for n in names] + [["extra", {"_class": "seed_evil_module.Boom"}]]}
    _safetensors(model, path, structure=json.dumps(structure))
    with pytest.raises(InvalidJob, match="seed_evil_module.Boom") as err:
        load_safetensors(path)
    assert str(path) in str(err.value) and "not loaded" in str(err.value)
    assert not marker.exists() and "seed_evil_module" not in sys.modules
    # the plain layout of the same file loads
    structure = {"_dict": [[n, {"_tensor": n}] for n in names]}
    _safetensors(model, path, structure=json.dumps(structure))
    assert _same_weights(load_safetensors(path), model)


def test_wrong_tensor_shapes_give_one_clear_error(tmp_path):
    four, six = tiny_htdemucs(segment=0.5), tiny_htdemucs(["a", "b", "c", "d", "e", "f"], segment=0.5)
    st = tmp_path / "m.safetensors"
    _safetensors(six, st)
    meta_four = json.dumps(list(four._init_args_kwargs[0]))
    from safetensors.torch import save_file

    args, kwargs = four._init_args_kwargs
    kw = {k: ({"_type": "fraction", "numerator": v.numerator, "denominator": v.denominator}
              if isinstance(v, Fraction) else v) for k, v in kwargs.items()}
    save_file({k: v.contiguous() for k, v in six.state_dict().items()}, str(st),
              metadata={"klass": "demucs.htdemucs.HTDemucs", "args": meta_four, "kwargs": json.dumps(kw)})
    with pytest.raises(InvalidJob) as err:
        load_safetensors(st)
    assert str(st) in str(err.value) and "don't fit the model" in str(err.value) and "size mismatch" in str(err.value)
    th = tmp_path / "m.th"
    package = {"klass": type(four), "args": args, "kwargs": kwargs,
               "state": {k: v.float() for k, v in six.state_dict().items()}}
    torch.save(package, th)
    with pytest.raises(InvalidJob, match="don't fit the model") as err:
        load_th(th)
    assert str(th) in str(err.value)


def test_separation_engine_refuses_a_swapped_model_before_loading(installed, monkeypatch):
    """The engine path (ModelManager().require then load_pretrained) with a damaged file."""
    from engines.base import CancelToken, ProgressReporter, SeparateSpec
    from engines.registry import get_engine_class
    import engines.models as models

    folder, rec, _ = installed
    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(folder))
    monkeypatch.setattr(ModelManager, "records", property(lambda self: [rec]))
    models._HASH_CACHE.clear()
    path = folder / "htdemucs" / OFFICIAL
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    engine = get_engine_class("htdemucs")()
    engine.load("cpu")
    x = np.zeros((2, 4410), np.float32)
    with pytest.raises(ChecksumMismatch, match=OFFICIAL):
        engine.run(SeparateSpec(audio=x, sample_rate=44100, model_id="htdemucs"), ProgressReporter(), CancelToken())


def test_bad_beat_this_checkpoint_falls_back_to_dsp_with_a_log_line(tmp_path, monkeypatch, caplog):
    from engines.analysis.beat_this_adapter import CHECKPOINT_FILE
    from engines.analysis.engine import MusicAnalysisEngine
    from engines.analysis.manifest import BEAT_THIS_MODEL_ID
    from engines.base import AnalyzeSpec, CancelToken, ProgressReporter
    from engines.registry import get_model

    rec = get_model(BEAT_THIS_MODEL_ID)
    folder = tmp_path / "models" / BEAT_THIS_MODEL_ID
    folder.mkdir(parents=True)
    ckpt = folder / CHECKPOINT_FILE
    with open(ckpt, "wb") as f:  # the right size, the wrong bytes (sparse)
        f.truncate(rec.files[0].size)
    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(tmp_path / "models"))
    sr = 22050
    t = np.arange(sr * 6) / sr
    clicks = (np.sin(2 * np.pi * 1000 * t) * (np.mod(t, 0.5) < 0.02)).astype(np.float32)
    spec = AnalyzeSpec(engine_id="music-analysis", audio=np.stack([clicks, clicks]), sample_rate=sr,
                       features=["beats"])
    for case in ("sha256", "load"):
        if case == "load":  # a checkpoint that passes the checksum but is not a checkpoint
            monkeypatch.setattr(ModelManager, "require", lambda self, model: folder)
            ckpt.write_bytes(b"PK\x03\x04 not a torch checkpoint")
        caplog.clear()
        engine = MusicAnalysisEngine()
        with caplog.at_level(logging.WARNING, logger="engines.analysis.engine"):
            engine.load("cpu")
            res = engine.run(spec, ProgressReporter(), CancelToken())
        assert res.data["beat_tracker"] == "dsp" and res.provenance.extra["fallback"] == "dsp"
        assert any("DSP tracker" in r.getMessage() and CHECKPOINT_FILE in r.getMessage() for r in caplog.records), case
