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
    ids = [e.id for e in registry.list_engines()]
    assert len(ids) == len(set(ids))
    model_ids = {m.id for m in registry.list_models()}
    assert len(model_ids) == len(registry.list_models())
    for e in registry.list_engines():
        assert e.tasks and set(e.tasks) <= set(TASKS), e.id
        assert ":" in e.target, e.id
        assert e.param_schema.get("type") == "object", e.id
        assert set(e.models) <= model_ids, e.id
    for m in registry.list_models():
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


def test_broken_engine_import_is_a_clear_error(register_engines):
    register_engines([registry.EngineEntry("broken", "engines.no_such_module:X", ("analyze",))])
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


def test_each_engine_class_agrees_with_its_manifest_entry():
    for entry in registry.list_engines():
        cls = registry.get_engine_class(entry.id)
        assert cls.id == entry.id, entry.id
        assert tuple(cls.tasks) == tuple(entry.tasks), entry.id
        assert cls.param_schema == entry.param_schema, entry.id
        assert cls.entry is entry, entry.id


def test_normal_run_lists_no_test_engine():
    import os

    env = {k: v for k, v in os.environ.items() if k != registry.ENV_DEV_ENGINES}
    code = ("import engines.registry as r; print(sorted(e.id for e in r.list_engines())); "
            "print(sorted(m.id for m in r.list_models()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=str(registry.__file__).rsplit("/engines/", 1)[0]).stdout
    assert "fake" not in out and "htdemucs" in out and "dsp-separation" in out and "basic-pitch" in out
    out = subprocess.run([sys.executable, "-m", "studio.cli.main", "models", "list"], capture_output=True,
                         text=True, env=env, cwd=str(registry.__file__).rsplit("/engines/", 1)[0]).stdout
    assert "fake" not in out and "htdemucs_6s" in out
    # the app's dialogs list each task's models: no test engine in any of them
    code = ("from studio.tasks import all_tasks; "
            "print(sorted({m.id for t in all_tasks() for m in t.models()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=str(registry.__file__).rsplit("/engines/", 1)[0]).stdout
    assert "fake" not in out and "dsp-hpss-centre" in out and "basic-pitch-icassp2022" in out


def test_manifests_come_from_entry_points():
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert {"engines.separation.manifest", "engines.analysis.manifest"} <= names
