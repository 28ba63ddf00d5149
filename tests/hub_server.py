"""A small local stand-in for the Hugging Face Hub, for testing uploads and downloads offline.

It answers the requests the real `huggingface_hub` client makes for `create_repo`, `update_repo_settings`,
`create_commit` (validate-yaml, preupload, commit), `add_space_variable`, `model_info` / `repo_info`,
`list_repo_tree`, and `hf_hub_download` / `snapshot_download` / `from_pretrained` (file metadata and
downloads), and records what arrived. Preupload answers "regular" for every file, so files come inline
(base64) in the commit and no LFS or Xet transfer is involved. Writes, and reads of private repositories,
need `Bearer <token>`; a wrong token is refused everywhere, as on the Hub.

    with HubServer() as hub:      # then HF_ENDPOINT=hub.url, HF_TOKEN=hub.token
        ...
        hub.repos["model", "user/name"].files["config.json"]
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
TYPED = r"(?P<kind>models|datasets|spaces)"


@dataclass
class Repo:
    """One repository: its files at each commit (the last is the head), visibility and Space variables."""

    repo_id: str
    type: str
    private: bool
    sdk: str | None = None
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    variables: dict[str, dict] = field(default_factory=dict)

    @property
    def sha(self) -> str:
        return self.commits[-1][0]

    @property
    def files(self) -> dict[str, bytes]:
        return self.commits[-1][1]

    def at(self, revision: str) -> dict[str, bytes] | None:
        if revision == "main":
            return self.files
        return next((files for sha, files in self.commits if sha == revision), None)

    def commit(self, files: dict[str, bytes]) -> str:
        sha = hashlib.sha1(f"{self.repo_id}:{len(self.commits)}:{sorted(files)}".encode()).hexdigest()
        self.commits.append((sha, files))
        return sha


def git_blob_sha(data: bytes) -> str:
    """The id git gives a file's content; the Hub's ETag for a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """The stand-in, served from a thread on 127.0.0.1 and a free port.

    Args:
        token: the only token accepted.
    """

    def __init__(self, token: str = "hf_standin_token"):
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), for debugging failures
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (Handler,), {"hub": self}))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def repo(self, repo_id: str, type: str = "model") -> Repo:
        return self.repos[type, repo_id]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer has a Content-Length
    hub: HubServer

    def log_message(self, *args):  # quiet: `hub.requests` keeps the log
        pass

    # -- plumbing ---------------------------------------------------------------------------------------
    def reply(self, status: int, body=b"", headers: dict | None = None, error_code: str | None = None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, str(value))
        if error_code:
            self.send_header("X-Error-Code", error_code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.hub.requests.append((self.command, self.path, status))

    def error(self, status: int, message: str, error_code: str | None = None):
        self.reply(status, {"error": message}, headers={"X-Error-Message": message}, error_code=error_code)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def refused(self) -> bool:
        """Writes need the token; any request with another token is refused, as the Hub does."""
        given = self.headers.get("Authorization")
        if self.authorized() or (given is None and self.command in ("GET", "HEAD")):
            return False
        if self.command in ("POST", "PUT"):
            self.body()
        self.error(401, "Invalid credentials in Authorization header")
        return True

    def readable(self, kind: str, repo_id: str) -> Repo | None:
        """The repository if it exists and this request may see it; otherwise answers 404 and returns None."""
        repo = self.hub.repos.get((TYPES.get(kind, kind), repo_id))
        if repo is None or (repo.private and not self.authorized()):
            self.error(404, "Repository not found", "RepoNotFound")
            return None
        return repo

    def snapshot(self, kind: str, repo_id: str, revision: str):
        """(repository, its files, commit id) at `revision` ("main" or a commit id), or None after a 404."""
        repo = self.readable(kind, repo_id)
        if repo is None:
            return None
        files = repo.at(revision)
        if files is None:
            return self.error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo, files, repo.sha if revision == "main" else revision

    def route(self, routes):
        path = unquote(urlsplit(self.path).path)
        for pattern, method in routes:
            match = re.fullmatch(pattern, path)
            if match:
                return method(**match.groupdict())
        if self.command in ("POST", "PUT"):
            self.body()
        self.error(404, f"the stand-in Hub does not implement {self.command} {path}")

    def do_GET(self):
        if self.refused():
            return
        self.route([
            (rf"/api/{TYPED}/{REPO}(?:/revision/(?P<revision>[^/]+))?", self.repo_info),
            (rf"/api/{TYPED}/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<folder>.*))?", self.tree),
            (rf"(?:/(?P<kind>datasets|spaces))?/{REPO}/resolve/(?P<revision>[^/]+)/(?P<name>.+)", self.resolve),
        ])

    do_HEAD = do_GET

    def do_POST(self):
        if self.refused():
            return
        self.route([
            (r"/api/repos/create", self.create_repo),
            (r"/api/validate-yaml", self.validate_yaml),
            (rf"/api/{TYPED}/{REPO}/preupload/(?P<revision>[^/]+)", self.preupload),
            (rf"/api/{TYPED}/{REPO}/commit/(?P<revision>[^/]+)", self.commit),
            (rf"/api/spaces/{REPO}/variables", self.add_variable),
        ])

    def do_PUT(self):
        if self.refused():
            return
        self.route([(rf"/api/{TYPED}/{REPO}/settings", self.settings)])

    # -- endpoints --------------------------------------------------------------------------------------
    def create_repo(self):
        payload = json.loads(self.body())
        kind = payload.get("type") or "model"
        repo_id = f"{payload['organization']}/{payload['name']}"
        prefix = "" if kind == "model" else f"{kind}s/"
        url = f"{self.hub.url}/{prefix}{repo_id}"
        with self.hub.lock:
            if (kind, repo_id) in self.hub.repos:
                return self.reply(409, {"error": "You already created this repo", "url": url})
            repo = Repo(repo_id, kind, payload.get("visibility") == "private", payload.get("sdk"))
            repo.commit({".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
            self.hub.repos[kind, repo_id] = repo
        self.reply(200, {"url": url, "name": repo_id})

    def settings(self, kind, repo):
        payload = json.loads(self.body())
        found = self.readable(kind, repo)
        if found:
            if "visibility" in payload:
                found.private = payload["visibility"] == "private"
            self.reply(200, {})

    def validate_yaml(self):
        """Parse the README's front matter; for models, check model-index the way the Hub reads it."""
        payload = json.loads(self.body())
        match = re.match(r"^---\n(.*?)\n---\n", payload["content"], re.S)
        errors = []
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as error:
            meta, errors = {}, [{"message": f"invalid YAML: {error}"}]
        if not isinstance(meta, dict):
            errors.append({"message": "the front matter is not a mapping"})
        elif "model-index" in meta:
            from huggingface_hub.repocard_data import model_index_to_eval_results

            try:
                model_index_to_eval_results(meta["model-index"])
            except (KeyError, TypeError, ValueError) as error:
                errors.append({"message": f"invalid model-index: {error!r}"})
        self.reply(400 if errors else 200, {"errors": errors, "warnings": []})

    def preupload(self, kind, repo, revision):
        payload = json.loads(self.body())
        if self.readable(kind, repo):
            self.reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                       for f in payload["files"]]})

    def commit(self, kind, repo, revision):
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        found = self.readable(kind, repo)
        if not found:
            return
        if revision != "main":
            return self.error(400, "the stand-in Hub only commits to main", "RevisionNotFound")
        with self.hub.lock:
            files = dict(found.files)
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "file" and value.get("encoding") == "base64":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key != "header":
                    return self.error(400, f"the stand-in Hub does not accept commit operations of kind {key}")
            sha = found.commit(files)
        prefix = "" if found.type == "model" else f"{found.type}s/"
        self.reply(200, {"commitOid": sha, "commitUrl": f"{self.hub.url}/{prefix}{repo}/commit/{sha}",
                         "success": True})

    def add_variable(self, repo):
        payload = json.loads(self.body())
        found = self.readable("space", repo)
        if found:
            found.variables[payload["key"]] = {"value": payload["value"], "description": payload.get("description")}
            self.reply(200, found.variables)

    def repo_info(self, kind, repo, revision=None):
        if snapshot := self.snapshot(kind, repo, revision or "main"):
            found, files, sha = snapshot
            siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())]
            self.reply(200, {"id": repo, "sha": sha, "private": found.private, "sdk": found.sdk, "siblings": siblings})

    def tree(self, kind, repo, revision, folder=None):
        """The files under `folder` (all of them, as for `recursive=true`), as snapshot_download lists them."""
        if not (snapshot := self.snapshot(kind, repo, revision)):
            return
        files, prefix = snapshot[1], folder.rstrip("/") + "/" if folder else ""
        self.reply(200, [{"type": "file", "path": name, "size": len(data), "oid": git_blob_sha(data)}
                         for name, data in sorted(files.items()) if name.startswith(prefix)])

    def resolve(self, repo, revision, name, kind=None):
        """A file's bytes, with the headers `hf_hub_download` reads: ETag, X-Repo-Commit, Content-Length."""
        if not (snapshot := self.snapshot(kind or "models", repo, revision)):
            return
        _, files, sha = snapshot
        if name not in files:
            return self.error(404, f"Entry not found: {name}", "EntryNotFound")
        data = files[name]
        self.reply(200, data, headers={"Content-Type": "application/octet-stream", "ETag": f'"{git_blob_sha(data)}"',
                                       "X-Repo-Commit": sha})
