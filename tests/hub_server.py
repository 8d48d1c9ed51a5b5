"""A loopback stand-in for the Hugging Face Hub's HTTP API, for download tests: repo info
with file metadata (``/api/models/{repo}/revision/{rev}``) and file downloads with Range
support (``/{repo}/resolve/{rev}/{path}``), from files held in memory."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serve ``files`` (path -> bytes) as repo ``repo``; ``.base`` is the endpoint URL.

    ``corrupt`` names files served with different bytes than their advertised sha256;
    ``fail_after`` cuts a file's first transfer after that many bytes (resume tests)."""

    def __init__(self, repo: str, files: dict[str, bytes], *, lfs: tuple[str, ...] = (".safetensors",),
                 corrupt: tuple[str, ...] = (), fail_after: dict[str, int] | None = None):
        self.repo, self.files, self.lfs, self.corrupt = repo, files, lfs, corrupt
        self.fail_after = dict(fail_after or {})
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _file(self):
                path = unquote(urlparse(self.path).path)
                prefix = f"/{hub.repo}/resolve/"
                if not path.startswith(prefix):
                    return None, None
                rest = path[len(prefix):]
                _rev, _, name = rest.partition("/")
                return name, hub.files.get(name)

            def do_HEAD(self):  # noqa: N802
                self._serve(head=True)

            def do_GET(self):  # noqa: N802
                hub.requests.append(self.path)
                path = urlparse(self.path).path
                if path.startswith(f"/api/models/{hub.repo}"):
                    body = json.dumps(hub.info()).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self._serve(head=False)

            def _serve(self, head: bool):
                name, data = self._file()
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if name in hub.corrupt:
                    data = bytes(b ^ 0xFF for b in data)
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                etag = hashlib.sha256(hub.files[name]).hexdigest()
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                if any(name.endswith(x) for x in hub.lfs):
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return
                cut = hub.fail_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(data[start:start + cut])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def info(self) -> dict:
        siblings = []
        for name, data in self.files.items():
            s = {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
            if any(name.endswith(x) for x in self.lfs):
                s["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(s)
        return {"id": self.repo, "modelId": self.repo, "sha": COMMIT, "siblings": siblings, "private": False}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
