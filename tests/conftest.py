"""Shared pytest fixtures: paths to ../shared test material, GPU skipping, temp bundles."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The test engine is a developer engine: registered for the tests (and the engine hosts
# they spawn, which inherit the environment), never in a musician's menus.
os.environ["SEED_STUDIO_DEV_ENGINES"] = "engines.testing.manifest"

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path to the read-only ``../shared`` folder with real test audio and MIDI."""
    if not SHARED.is_dir():
        pytest.skip("../shared test material is not present")
    return SHARED


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    the tiny-model tests are sized for one core, and on a shared machine a second OpenMP
    thread mostly waits at barriers."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return  # don't pay for importing torch
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU tests
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture
def register_engines():
    """``register_engines(engines=[...], models=[...])`` adds registry entries for one test."""
    from engines import registry

    added: list[tuple[list[str], list[str]]] = []

    def add(engines=(), models=()):
        registry.register(list(engines), list(models))
        added.append(([e.id for e in engines], [m.id for m in models]))

    yield add
    for engine_ids, model_ids in added:
        registry.unregister(engine_ids, model_ids)
