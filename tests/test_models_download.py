"""engines/models.py and `seed-studio models`: download (success, checksum mismatch, interrupted and
resumed, server down) against a loopback HTTP server serving a file the test made; offline import."""
from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading

import pytest

from engines import registry
from engines.base import ChecksumMismatch, ModelDownloadError, ModelNotInstalled
from engines.models import ENV_MODELS_DIR, ModelFile, ModelManager, ModelRecord, default_models_dir, human_size

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "loopback"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "not found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        chunk = body[start:]
        if srv.truncate_next > 0:  # simulate a dropped connection mid-transfer
            srv.truncate_next -= 1
            self.wfile.write(chunk[: len(chunk) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(chunk)


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files = {"/model.bin": PAYLOAD}
    srv.requests = []
    srv.truncate_next = 0
    srv.timeout = 5
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def record(url, sha=SHA, size=len(PAYLOAD), mid="tiny"):
    return ModelRecord(id=mid, engine="fake", title="Tiny test model", licence="MIT",
                       files=(ModelFile("weights/model.bin", sha, size, url),))


def test_download_success_with_progress_and_verify(server, tmp_path):
    rec = record(server.base + "/model.bin")
    mgr = ModelManager(tmp_path, records=[rec])
    assert mgr.status(rec) == "missing"
    with pytest.raises(ModelNotInstalled, match="models download tiny"):
        mgr.require("tiny")
    seen = []
    path = mgr.download("tiny", lambda done, total, name: seen.append((done, total, name)))
    target = path / "weights/model.bin"
    assert target.read_bytes() == PAYLOAD
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen) and seen[-1][:2] == (len(PAYLOAD),) * 2
    assert mgr.status(rec) == "installed" and mgr.verify(rec) == [] and mgr.require("tiny") == path
    assert not list(path.rglob("*.part"))
    n = len(server.requests)
    mgr.download(rec)  # already there: no new request
    assert len(server.requests) == n


def test_checksum_mismatch_is_refused_and_file_removed(server, tmp_path):
    rec = record(server.base + "/model.bin", sha="0" * 64)
    mgr = ModelManager(tmp_path, records=[rec])
    with pytest.raises(ChecksumMismatch, match="corrupt") as info:
        mgr.download(rec)
    assert "removed" in info.value.message and info.value.hint
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    assert mgr.status(rec) == "missing"


def test_interrupted_transfer_resumes_automatically(server, tmp_path):
    server.truncate_next = 1
    rec = record(server.base + "/model.bin")
    path = ModelManager(tmp_path, records=[rec]).download(rec, retries=2)
    assert (path / "weights/model.bin").read_bytes() == PAYLOAD
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and ranges[1] == f"bytes={len(PAYLOAD) // 3}-"


def test_interrupted_transfer_resumes_on_next_call(server, tmp_path):
    server.truncate_next = 1
    rec = record(server.base + "/model.bin")
    mgr = ModelManager(tmp_path, records=[rec])
    with pytest.raises(ModelDownloadError, match="interrupted after 100000 of 300000 bytes") as info:
        mgr.download(rec, retries=0)
    assert "resumes" in info.value.hint
    assert mgr.status(rec) == "partial"
    mgr.download(rec, retries=0)
    assert (tmp_path / "tiny/weights/model.bin").read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=100000-"


def test_server_down_is_a_clear_offline_error(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rec = record(f"http://127.0.0.1:{port}/model.bin")
    with pytest.raises(ModelDownloadError, match="can't reach") as info:
        ModelManager(tmp_path, records=[rec]).download(rec, timeout=5)
    assert "offline" in info.value.hint and "models import" in info.value.hint


def test_http_error_names_the_status(server, tmp_path):
    rec = record(server.base + "/missing.bin")
    with pytest.raises(ModelDownloadError, match="HTTP 404"):
        ModelManager(tmp_path, records=[rec]).download(rec)


def test_import_from_folder_verifies_hashes(tmp_path):
    rec = record("http://unused.invalid/model.bin")
    mgr = ModelManager(tmp_path / "models", records=[rec])
    src = tmp_path / "usb"
    src.mkdir()
    with pytest.raises(ModelNotInstalled, match="not found"):
        mgr.import_from(rec, src)
    (src / "model.bin").write_bytes(PAYLOAD[:-1] + b"\0")
    with pytest.raises(ChecksumMismatch, match="does not match"):
        mgr.import_from(rec, src)
    assert mgr.status(rec) == "missing"
    (src / "model.bin").write_bytes(PAYLOAD)
    path = mgr.import_from(rec, src)
    assert (path / "weights/model.bin").read_bytes() == PAYLOAD and mgr.verify(rec) == []
    (path / "weights/model.bin").chmod(0o644)
    (path / "weights/model.bin").write_bytes(PAYLOAD[:-1] + b"\1")
    assert mgr.verify(rec) == ["weights/model.bin: sha256 mismatch"]
    assert mgr.remove(rec) and not mgr.remove(rec) and mgr.status(rec) == "missing"


def test_models_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_MODELS_DIR, raising=False)
    assert default_models_dir(tmp_path / "setting") == tmp_path / "setting"
    assert default_models_dir().name == "models"
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path / "env"))
    assert default_models_dir(tmp_path / "setting") == tmp_path / "env"
    assert ModelManager().root == tmp_path / "env"


def test_hub_source_goes_through_hf_hub_download(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    rec = ModelRecord(id="hub", engine="fake", licence="MIT", hf_repo="org/repo", revision="abc123",
                      files=(ModelFile("model.bin", SHA, len(PAYLOAD)),))
    calls = []

    def fake_download(repo_id, filename, *, revision, local_dir, tqdm_class, **kw):
        calls.append((repo_id, filename, revision))
        bar = tqdm_class(total=len(PAYLOAD), disable=True)
        (tmp_path / "hub").mkdir(exist_ok=True)
        (tmp_path / "hub" / filename).write_bytes(PAYLOAD)
        bar.update(len(PAYLOAD))
        bar.close()
        return str(tmp_path / "hub" / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    seen = []
    mgr = ModelManager(tmp_path, records=[rec])
    mgr.download(rec, lambda d, t, n: seen.append(d))
    assert calls == [("org/repo", "model.bin", "abc123")] and seen[-1] == len(PAYLOAD)
    assert mgr.verify(rec) == [] and rec.source == "hf:org/repo@abc123"

    def offline(*a, **kw):
        raise hf_errors.LocalEntryNotFoundError("cannot reach the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    mgr.remove(rec)
    with pytest.raises(ModelDownloadError, match="Hugging Face Hub") as info:
        mgr.download(rec)
    assert "offline" in info.value.hint


def _cli(argv, capsys):
    from studio.cli import models as cli_models

    import argparse

    parser = argparse.ArgumentParser(prog="seed-studio")
    cli_models.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    from studio.errors import StudioError

    try:
        code = args.func(args)
    except StudioError as exc:
        return 1, "", str(exc)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_models_list_shows_every_model_with_licence_and_size(tmp_path, capsys):
    code, out, _ = _cli(["models", "--models-dir", str(tmp_path), "list"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["MODEL", "ENGINE", "LICENCE", "SIZE"]
    for rec in registry.list_models():
        row = next(line for line in lines if line.split()[0] == rec.id)
        size = human_size(rec.size) if rec.size or rec.builtin else "see Hub"  # Hub models: the Hub gives the size
        assert rec.licence in row and size in row and rec.engine in row
    code, out, _ = _cli(["models", "--models-dir", str(tmp_path), "list", "--json"], capsys)
    import json

    data = json.loads(out)
    assert {m["id"] for m in data["models"]} == {m.id for m in registry.list_models()}
    assert all(m["licence"] and isinstance(m["size"], int) for m in data["models"])


def test_cli_download_verify_import_remove(server, tmp_path, capsys, register_engines):
    rec = record(server.base + "/model.bin")
    register_engines(models=[rec])
    base_args = ["models", "--models-dir", str(tmp_path / "m")]
    assert _cli([*base_args, "download", "tiny"], capsys)[0] == 0
    code, out, _ = _cli([*base_args, "verify", "tiny"], capsys)
    assert code == 0 and "tiny: ok" in out
    code, out, _ = _cli([*base_args, "remove", "tiny"], capsys)
    assert "removed" in out and not (tmp_path / "m/tiny").exists()
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb/model.bin").write_bytes(PAYLOAD)
    assert _cli([*base_args, "import", "tiny", str(tmp_path / "usb")], capsys)[0] == 0
    assert (tmp_path / "m/tiny/weights/model.bin").read_bytes() == PAYLOAD
    code, _, err = _cli([*base_args, "download", "nope"], capsys)
    assert code == 1 and "no model named 'nope'" in err


def test_seed_studio_cli_main_runs_models_list(tmp_path, capsys):
    from studio.cli.main import main

    assert main(["models", "--models-dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert all(rec.id in out for rec in registry.list_models())
    assert main(["models", "--models-dir", str(tmp_path), "download", "nope"]) == 1
    assert "error: no model named 'nope'" in capsys.readouterr().err
