"""engines/registry.py and engines/devices.py: lazy listing, lookups, device and dtype policy."""
from __future__ import annotations

import subprocess
import sys

import pytest

from engines import registry
from engines.base import TASKS, EngineNotFound, InvalidJob
from engines.devices import ENV_DEVICE, choose_device, choose_dtype, free_memory


def test_listing_imports_no_engine_or_torch():
    code = ("import sys, engines.registry as r; r.list_engines(); r.list_models(); "
            "import engines.base, engines.models, engines.host, engines.chunking, engines.devices; "
            "print(sorted(m for m in ('torch', 'demucs', 'PyQt6', 'engines.fake') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(registry.__file__).rsplit("/engines/", 1)[0])
    assert out.stdout.strip() == "[]"


def test_entries_are_consistent():
    ids = [e.id for e in registry.ENGINES]
    assert len(ids) == len(set(ids))
    model_ids = {m.id for m in registry.MODELS}
    assert len(model_ids) == len(registry.MODELS)
    for e in registry.ENGINES:
        assert e.tasks and set(e.tasks) <= set(TASKS), e.id
        assert ":" in e.target, e.id
        assert e.param_schema.get("type") == "object", e.id
        assert set(e.models) <= model_ids, e.id
    for m in registry.MODELS:
        assert m.engine in ids and m.licence, m.id


def test_lookups():
    assert registry.get_engine_class("fake").__name__ == "FakeEngine"
    assert "fake" in [e.id for e in registry.engines_for("separate")]
    assert all("separate" in e.tasks for e in registry.engines_for("separate"))
    with pytest.raises(EngineNotFound, match="no engine named 'nope'"):
        registry.get_engine_class("nope")
    with pytest.raises(EngineNotFound, match="unknown task"):
        registry.engines_for("dance")
    assert registry.get_model("fake-builtin").builtin
    with pytest.raises(EngineNotFound):
        registry.get_model("nope")


def test_broken_engine_import_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(registry, "ENGINES", [*registry.ENGINES,
                                              registry.EngineEntry("broken", "engines.no_such_module:X", ("analyze",))])
    with pytest.raises(EngineNotFound, match="can't be loaded"):
        registry.get_engine_class("broken")


def test_device_policy(monkeypatch):
    monkeypatch.delenv(ENV_DEVICE, raising=False)
    assert choose_device(None, ("cpu",)) == "cpu"
    assert choose_device("cpu") == "cpu"
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    assert choose_device(None) == "cpu"
    with pytest.raises(InvalidJob, match="unknown device"):
        choose_device("tpu")
    with pytest.raises(InvalidJob, match="can't run on"):
        choose_device("cuda", ("cpu",))
    assert choose_dtype("cpu", ("bfloat16", "float32")) == "float32"
    assert choose_dtype("mps", ("float16", "float32")) == "float16"
    assert choose_dtype("cpu", ("bfloat16",), override="bfloat16") == "bfloat16"
    with pytest.raises(InvalidJob):
        choose_dtype("cpu", ("float32",), override="float16")
    assert free_memory("cpu") is None or free_memory("cpu") > 0


def test_missing_cuda_is_a_clear_error(monkeypatch):
    import engines.devices as d

    monkeypatch.setattr(d, "available_devices", lambda: ["cpu"])
    monkeypatch.delenv(ENV_DEVICE, raising=False)
    with pytest.raises(InvalidJob, match="not available"):
        choose_device("cuda")
    assert choose_device(None) == "cpu"


@pytest.mark.gpu
def test_cuda_policy_prefers_gpu_and_half_precision(monkeypatch):
    monkeypatch.delenv(ENV_DEVICE, raising=False)
    dev = choose_device(None)
    assert dev.startswith("cuda")
    assert choose_dtype(dev, ("bfloat16", "float16", "float32")) in ("bfloat16", "float16")
    assert free_memory(dev) > 0
