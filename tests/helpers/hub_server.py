"""A small stand-in for the Hugging Face Hub on 127.0.0.1, for huggingface_hub pointed at it by HF_ENDPOINT.

It answers the endpoints gantk's hub code reaches through the library, and nothing else (anything else
is a 404 that the test sees):

* download: ``GET /api/models/{repo}/tree/{revision}`` (the file list), ``HEAD``/``GET
  /{repo}/resolve/{revision}/{path}`` (a file, with the ``X-Repo-Commit`` and ``ETag`` headers the cache
  is keyed by);
* upload: ``POST /api/repos/create``, ``POST /api/validate-yaml`` (the card's metadata: accepted), ``POST /api/models/{repo}/preupload/{revision}`` (every file
  answered as "regular", so contents come inline, base64, in the commit), ``POST
  /api/models/{repo}/commit/{revision}`` (the NDJSON commit). The large-file paths (LFS, Xet) that the
  real Hub uses for big files are not served: uploads here are of small test models.

Each commit is kept whole; ``main`` is the newest, and any earlier commit is reachable by its id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, list[tuple[str, dict[str, bytes]]]] = {}  # repo -> [(commit, files)], oldest first
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_commit(self, repo: str, files: dict[str, bytes]) -> str:
        """A new commit of ``repo`` holding ``files`` on top of the previous one; returns its id."""
        commits = self.repos.setdefault(repo, [])
        tree = {**(commits[-1][1] if commits else {}), **files}
        digest = hashlib.sha1(str(len(commits)).encode())
        for name, data in sorted(tree.items()):
            digest.update(name.encode() + hashlib.sha1(data).digest())
        commits.append((digest.hexdigest(), tree))
        return commits[-1][0]

    def snapshot(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        commits = self.repos.get(repo) or []
        if not commits:
            return None
        if revision in ("main", ""):
            return commits[-1]
        return next(((c, f) for c, f in commits if c == revision), None)


class Handler(BaseHTTPRequestHandler):
    """One request to the stand-in Hub (``self.server.hub``)."""

    def log_message(self, *args) -> None:  # quiet
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def _path(self, method: str) -> str:
        path = unquote(urlparse(self.path).path)
        self.hub.requests.append(f"{method} {path}")
        return path

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, code: int, value, headers: dict | None = None) -> None:
        self._send(code, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    # ---- download
    def do_HEAD(self) -> None:
        self._resolve(self._path("HEAD"), head=True)

    def do_GET(self) -> None:
        path = self._path("GET")
        if path.startswith("/api/models/") and "/tree/" in path:
            self._tree(path)
        else:
            self._resolve(path, head=False)

    def _tree(self, path: str) -> None:
        repo, _, rest = path[len("/api/models/") :].partition("/tree/")
        found = self.hub.snapshot(repo, rest.split("/")[0])
        if found is None:
            self._json(404, {"error": f"Repository {repo} not found"}, {"X-Error-Code": "RepoNotFound"})
            return
        listing = [
            {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for name, data in sorted(found[1].items())
        ]
        self._json(200, listing)

    def _resolve(self, path: str, head: bool) -> None:
        repo, sep, rest = path.lstrip("/").partition("/resolve/")
        revision, _, name = rest.partition("/")
        found = self.hub.snapshot(repo, revision) if sep else None
        if found is None or name not in found[1]:
            self._send(404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"}, head)
            return
        commit, files = found
        etag = '"' + hashlib.sha256(files[name]).hexdigest() + '"'
        self._send(200, files[name], {"X-Repo-Commit": commit, "ETag": etag}, head)

    # ---- upload
    def do_POST(self) -> None:
        path = self._path("POST")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if path == "/api/repos/create":
            request = json.loads(body)
            repo = f"{request.get('organization') or 'user'}/{request['name']}"
            self.hub.repos.setdefault(repo, [])
            self._json(200, {"url": f"{self.hub.url}/{repo}", "name": repo})
        elif path == "/api/validate-yaml":  # the model card's metadata, checked before the commit
            self._json(200, {"errors": [], "warnings": []})
        elif path.startswith("/api/models/") and "/preupload/" in path:
            files = json.loads(body)["files"]
            self._json(
                200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
            )
        elif path.startswith("/api/models/") and "/commit/" in path:
            self._commit(path[len("/api/models/") :].partition("/commit/")[0], body)
        else:
            self._json(404, {"error": f"no such endpoint: POST {path}"})

    def _commit(self, repo: str, body: bytes) -> None:
        files = {}
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        commit = self.hub.add_commit(repo, files)
        self._json(200, {"commitUrl": f"{self.hub.url}/{repo}/commit/{commit}", "commitOid": commit, "success": True})
