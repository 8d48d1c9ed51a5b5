"""engines/hub.py: whole-repository models from the Hub, against a loopback Hub server:
files at a pinned commit, sha256 checked, a lock record written last, bad files refused."""
from __future__ import annotations

import json

import pytest

from engines.base import ChecksumMismatch, ModelDownloadError
from engines.hub import ENV_ENDPOINT, LOCK_NAME, allowed_files, check_snapshot, download_snapshot, read_lock
from tests.hub_server import COMMIT, FakeHub

FILES = {
    "model_index.json": json.dumps({"_class_name": "AceStepPipeline"}).encode(),
    "vae/config.json": b'{"sampling_rate": 48000}',
    "vae/diffusion_pytorch_model.safetensors": bytes(range(256)) * 400,
    "transformer/diffusion_pytorch_model.safetensors": b"\x01\x02" * 5000,
    "text_encoder/pytorch_model.bin": b"pickle that must never be fetched",
}


@pytest.fixture
def hub(monkeypatch):
    with FakeHub("org/tiny", FILES) as h:
        monkeypatch.setenv(ENV_ENDPOINT, h.base)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield h


def test_snapshot_downloads_pins_the_commit_and_writes_the_lock_last(hub, tmp_path):
    seen = []
    lock = download_snapshot("org/tiny", None, tmp_path / "m", progress=lambda d, t, n: seen.append((d, t)))
    assert lock["commit"] == COMMIT and lock["revision"] == "main"
    assert set(lock["files"]) == set(FILES) - {"text_encoder/pytorch_model.bin"}  # no pickles
    for name, meta in lock["files"].items():
        assert (tmp_path / "m" / name).read_bytes() == FILES[name] and meta["size"] == len(FILES[name])
    assert read_lock(tmp_path / "m") == lock and (tmp_path / "m" / LOCK_NAME).is_file()
    assert check_snapshot(tmp_path / "m", full=True) == []
    assert allowed_files(tmp_path / "m") == set(lock["files"])
    total = sum(len(v) for k, v in FILES.items() if not k.endswith(".bin"))
    assert seen and seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    # a changed file is found by a full check, a missing one by the quick check
    (tmp_path / "m" / "vae/config.json").write_bytes(b'{"sampling_rate": 44100}')
    assert check_snapshot(tmp_path / "m", full=True) == ["vae/config.json: sha256 mismatch"]
    (tmp_path / "m" / "model_index.json").unlink()
    assert "model_index.json: missing" in check_snapshot(tmp_path / "m")


def test_a_corrupt_file_is_removed_and_no_lock_is_written(monkeypatch, tmp_path):
    with FakeHub("org/tiny", FILES, corrupt=("vae/diffusion_pytorch_model.safetensors",)) as h:
        monkeypatch.setenv(ENV_ENDPOINT, h.base)
        with pytest.raises(ChecksumMismatch, match="vae/diffusion_pytorch_model.safetensors"):
            download_snapshot("org/tiny", "main", tmp_path / "m")
    assert not (tmp_path / "m" / LOCK_NAME).exists()
    assert not (tmp_path / "m" / "vae" / "diffusion_pytorch_model.safetensors").exists()
    assert check_snapshot(tmp_path / "m") == [f"'{tmp_path / 'm'}' has no complete download (no {LOCK_NAME})"]


def test_offline_and_unknown_repo_are_clear_errors(monkeypatch, tmp_path, hub):
    with pytest.raises(ModelDownloadError, match="refused org/other"):
        download_snapshot("org/other", None, tmp_path / "x")
    monkeypatch.setenv(ENV_ENDPOINT, "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ModelDownloadError, match="can't reach the Hugging Face Hub") as info:
        download_snapshot("org/tiny", None, tmp_path / "y")
    assert "offline" in info.value.hint


def test_the_model_manager_downloads_checks_and_imports_whole_repository_models(hub, tmp_path):
    from engines.models import ModelManager
    from engines.records import ModelFile, ModelRecord

    snap = ModelRecord(id="tiny-snap", engine="fake", licence="MIT", hf_repo="org/tiny", revision="main")
    listed = ModelRecord(id="tiny-listed", engine="fake", licence="MIT", hf_repo="org/tiny", revision=COMMIT,
                         files=(ModelFile("vae/config.json", "", 0), ModelFile("model_index.json", "", 0)))
    mgr = ModelManager(tmp_path / "models", records=[snap, listed])
    assert not snap.builtin and mgr.status(snap) == "missing" and mgr.status(listed) == "missing"
    with pytest.raises(Exception, match="not installed"):
        mgr.require(snap)
    mgr.download(snap)
    assert mgr.status(snap) == "installed" and mgr.verify(snap) == []
    folder = mgr.require(snap)
    assert (folder / "vae/diffusion_pytorch_model.safetensors").read_bytes() == FILES[
        "vae/diffusion_pytorch_model.safetensors"]
    # only the listed files of a record whose sizes and hashes the Hub gives
    mgr.download(listed)
    assert sorted(read_lock(mgr.model_dir(listed))["files"]) == ["model_index.json", "vae/config.json"]
    assert mgr.status(listed) == "installed"
    # a replaced file is refused at load time and named by verify
    target = folder / "vae/config.json"
    target.write_bytes(b'{"sampling_rate": 44101}')
    with pytest.raises(ChecksumMismatch, match="vae/config.json"):
        mgr.require(snap)
    assert mgr.verify(snap) == ["vae/config.json: sha256 mismatch"]
    # an offline copy can be imported: the lock records what was copied
    mgr.remove(snap)
    assert mgr.status(snap) == "missing"
    src = tmp_path / "copy"
    for name, data in FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    mgr.import_from(snap, src)
    lock = read_lock(mgr.model_dir(snap))
    assert lock["commit"] == "imported" and "text_encoder/pytorch_model.bin" not in lock["files"]
    assert mgr.status(snap) == "installed" and mgr.require(snap)
