"""The write side of the loopback Hub: what `create_repo`, `upload_folder` / `create_commit`,
`delete_repo` and `datasets`' `push_to_hub` send, written into the server's root so the read side
(`hub_server.py`) serves exactly what was pushed.

    from hf_spider.testing import HubServer
    from hf_spider.testing.hub_writes import install

    with install(HubServer(tmp_path, token="hf_writer")) as hub:
        HfApi(endpoint=hub.url, token="hf_writer").create_repo("me/data", repo_type="dataset")

Endpoints, as huggingface_hub 0.36 calls them:
- `POST /api/repos/create` (`name`, `organization`, `type`, `private`, `sdk`): 409 if it exists.
- `DELETE /api/repos/delete`: 404 if absent.
- `PUT /api/{type}s/{id}/settings` (`private`).
- `POST /api/{type}s/{id}/preupload/{rev}`: `uploadMode` per file (`lfs` for binary samples,
  data/weight/image suffixes or files over 10 MiB, else `regular`) and the remote `oid` of the
  current file at that path (git blob id for regular files, sha256 for LFS ones), so unchanged
  files are skipped by the client as on the Hub.
- `POST /[{type}s/]{id}.git/info/lfs/objects/batch` (basic transfer): upload actions for objects
  not stored yet; `PUT /_lfs/{oid}` stores the bytes after checking their sha256 and size.
- `POST /api/{type}s/{id}/commit/{rev}`: the NDJSON payload (`header`, `file` base64,
  `lfsFile`, `deletedFile`, `deletedFolder`), applied atomically under `server.write_lock`;
  `parentCommit` other than the current sha -> 412. Returns `commitOid` (the new content sha).
- `POST /api/validate-yaml`: the README front matter must be a YAML mapping; a Space's needs `sdk`.

Every write needs the server's token (no token: 401; a wrong one is refused by the server
itself). Only the `main` revision exists; pull requests are refused with 400.
LFS upload URLs carry no `Authorization` header (as presigned storage URLs on the Hub), so use
`require_auth=False` (the default) on a server that takes LFS uploads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from hf_spider.testing.hub_server import (
    META_FILE,
    HubServer,
    Request,
    Response,
    _blob_id,
    error_response,
    json_response,
)

_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_KINDS = "(?P<kind>models|datasets|spaces)"
LFS_SUFFIXES = (
    ".parquet",
    ".arrow",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".onnx",
    ".h5",
    ".msgpack",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".zip",
    ".gz",
    ".tar",
    ".npy",
    ".npz",
)
LFS_SIZE = 10 * 1024 * 1024
SPACE_SDKS = ("gradio", "streamlit", "docker", "static")
_FRONT_MATTER = re.compile(r"\A\s*---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)


def _kind(repo_type: str | None) -> str:
    return f"{repo_type or 'model'}s"


def _repo_url(server: HubServer, kind: str, repo_id: str) -> str:
    prefix = "" if kind == "models" else f"/{kind}"
    return f"{server.url}{prefix}/{repo_id}"


def _safe_rel(path: str) -> str | None:
    """A path inside a repo, or None for one that escapes it or touches hidden server files."""
    rel = path.strip("/")
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts) or rel == META_FILE or parts[0].startswith(".git"):
        return None
    return rel


class HubWrites:
    """Write endpoints for one `HubServer`; `install(server)` is the usual way in."""

    def __init__(self, server: HubServer):
        self.server = server
        self.lfs_dir = Path(server.root) / ".lfs"

    # --- helpers ---
    def _need_token(self, request: Request) -> Response | None:
        if request.token is None:
            return error_response(401, "Invalid credentials in Authorization header: a token is required")
        return None

    def _lfs_path(self, oid: str) -> Path:
        return self.lfs_dir / oid[:2] / oid

    def _existing(self, request: Request) -> tuple[str, str, Path] | Response:
        kind = request.params.get("kind") or "models"
        repo_id = request.params["repo"]
        folder = self.server.repo_dir(kind, repo_id)
        if self.server.snapshot(kind, repo_id) is None:
            return error_response(404, "Repository not found", "RepoNotFound")
        if request.params.get("rev", "main") != "main":
            return error_response(404, f"Invalid rev id: {request.params['rev']}", "RevisionNotFound")
        if request.arg("create_pr") in ("1", "true", "True"):
            return error_response(400, "pull requests are not supported by the loopback Hub")
        return kind, repo_id, folder

    # --- repos ---
    def create_repo(self, request: Request) -> Response:
        if denied := self._need_token(request):
            return denied
        body = request.json() or {}
        name, org = body.get("name"), body.get("organization")
        if not name or "/" in name:
            return error_response(400, "invalid repo name")
        repo_id = f"{org}/{name}" if org else f"{self.server.user}/{name}"
        kind = _kind(body.get("type"))
        if kind not in ("models", "datasets", "spaces"):
            return error_response(400, f"invalid repo type {body.get('type')!r}")
        if kind == "spaces" and body.get("sdk") not in SPACE_SDKS:
            return error_response(400, f"a Space needs an sdk among {SPACE_SDKS}")
        url = _repo_url(self.server, kind, repo_id)
        with self.server.write_lock:
            folder = self.server.repo_dir(kind, repo_id)
            if folder.exists():
                # The Hub's 409 carries the URL: create_repo(exist_ok=True) returns it.
                return json_response(
                    {"error": "You already created this repo", "url": url},
                    409,
                    {"X-Error-Message": "You already created this repo"},
                )
            folder.mkdir(parents=True)
            meta: dict[str, Any] = {"private": bool(body.get("private", False))}
            if kind == "spaces":
                meta["sdk"] = body["sdk"]
            (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
            # A new repo on the Hub starts with a .gitattributes file.
            (folder / ".gitattributes").write_text(
                "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES), encoding="utf-8"
            )
        self.server.invalidate(kind, repo_id)
        return json_response({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self, request: Request) -> Response:
        if denied := self._need_token(request):
            return denied
        body = request.json() or {}
        name, org = body.get("name"), body.get("organization")
        repo_id = f"{org}/{name}" if org else f"{self.server.user}/{name}"
        kind = _kind(body.get("type"))
        with self.server.write_lock:
            folder = self.server.repo_dir(kind, repo_id)
            if not name or not folder.is_dir():
                return error_response(404, "Repository not found", "RepoNotFound")
            shutil.rmtree(folder)
            parent = folder.parent
            if parent != self.server.root / kind and not any(parent.iterdir()):
                parent.rmdir()
        self.server.invalidate(kind, repo_id)
        return Response(200, b"")

    def _authorized_repo(self, request: Request):
        """(kind, repo_id, folder) of the existing repo a write names, or the error response."""
        if denied := self._need_token(request):
            return denied
        return self._existing(request)

    def settings(self, request: Request) -> Response:
        found = self._authorized_repo(request)
        if isinstance(found, Response):
            return found
        kind, repo_id, folder = found
        body = request.json() or {}
        with self.server.write_lock:
            meta_path = folder / META_FILE
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            if "private" in body:
                meta["private"] = bool(body["private"])
            meta_path.write_text(json.dumps(meta), encoding="utf-8")
        self.server.invalidate(kind, repo_id)
        return json_response({"private": meta.get("private", False)})

    # --- uploads ---
    def preupload(self, request: Request) -> Response:
        found = self._authorized_repo(request)
        if isinstance(found, Response):
            return found
        kind, repo_id, folder = found
        out = []
        for item in (request.json() or {}).get("files", []):
            path = item.get("path", "")
            sample = base64.b64decode(item.get("sample", ""))
            size = int(item.get("size", 0))
            lfs = path.lower().endswith(LFS_SUFFIXES) or b"\x00" in sample or size > LFS_SIZE
            current = folder / path
            oid = None
            if _safe_rel(path) and current.is_file():
                data = current.read_bytes()
                oid = hashlib.sha256(data).hexdigest() if lfs else _blob_id(data)
            out.append(
                {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return json_response({"files": out, "commitOid": self.server.snapshot(kind, repo_id).sha})

    def lfs_batch(self, request: Request) -> Response:
        if denied := self._need_token(request):
            return denied
        kind = request.params.get("kind") or "models"
        if self.server.snapshot(kind, request.params["repo"]) is None:
            return error_response(404, "Repository not found", "RepoNotFound")
        body = request.json() or {}
        if body.get("operation") != "upload":
            return error_response(400, "only uploads are supported")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", 0))
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                entry["error"] = {"code": 422, "message": "invalid oid"}
            elif not self._lfs_path(oid).is_file():
                entry["actions"] = {"upload": {"href": f"{self.server.url}/_lfs/{oid}", "header": {}}}
            objects.append(entry)
        return Response(
            200,
            json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def lfs_put(self, request: Request) -> Response:
        oid = request.params["oid"]
        if hashlib.sha256(request.body).hexdigest() != oid:
            return error_response(400, "content does not match its sha256 oid")
        path = self._lfs_path(oid)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with open(fd, "wb") as fh:
            fh.write(request.body)
        Path(tmp).replace(path)
        return Response(200, b"")

    # --- commits ---
    def commit(self, request: Request) -> Response:
        found = self._authorized_repo(request)
        if isinstance(found, Response):
            return found
        kind, repo_id, folder = found
        try:
            items = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return error_response(400, "the commit payload is not NDJSON")
        if not items or items[0].get("key") != "header":
            return error_response(400, "the commit payload must start with a header")
        header = items[0].get("value") or {}
        writes: dict[str, bytes | Path] = {}
        deletes: list[tuple[str, bool]] = []
        for item in items[1:]:
            key, value = item.get("key"), item.get("value") or {}
            rel = _safe_rel(value.get("path", ""))
            if rel is None:
                return error_response(400, f"invalid path {value.get('path')!r}")
            if key == "file":
                if value.get("encoding") != "base64":
                    return error_response(400, "file content must be base64")
                writes[rel] = base64.b64decode(value.get("content", ""))
            elif key == "lfsFile":
                blob = self._lfs_path(str(value.get("oid", "")))
                if not blob.is_file():
                    return error_response(422, f"LFS object {value.get('oid')} was never uploaded")
                writes[rel] = blob
            elif key in ("deletedFile", "deletedFolder"):
                deletes.append((rel, key == "deletedFolder"))
            else:
                return error_response(400, f"unknown commit operation {key!r}")
        with self.server.write_lock:
            snap = self.server.snapshot(kind, repo_id)
            parent = header.get("parentCommit")
            if parent and parent != snap.sha:
                return error_response(
                    412, "A commit has happened since the parent commit", "PreconditionFailed"
                )
            for rel, is_folder in deletes:
                target = folder / rel
                if is_folder and target.is_dir():
                    shutil.rmtree(target)
                elif not is_folder and target.is_file():
                    target.unlink()
                else:
                    return error_response(404, f"A file with this name doesn't exist: {rel}", "EntryNotFound")
            for rel, content in writes.items():
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                with open(fd, "wb") as fh:
                    fh.write(content.read_bytes() if isinstance(content, Path) else content)
                Path(tmp).replace(target)
            self.server.invalidate(kind, repo_id)
            new = self.server.snapshot(kind, repo_id)
        url = _repo_url(self.server, kind, repo_id)
        return json_response(
            {
                "success": True,
                "commitOid": new.sha,
                "commitUrl": f"{url}/commit/{new.sha}",
                "pullRequestUrl": None,
            }
        )

    def validate_yaml(self, request: Request) -> Response:
        body = request.json() or {}
        content, repo_type = body.get("content", ""), body.get("repoType") or "model"
        errors = []
        match = _FRONT_MATTER.match(content)
        data: Any = {}
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                errors.append(f"invalid YAML: {exc}")
            if not errors and data is not None and not isinstance(data, dict):
                errors.append("the metadata must be a YAML mapping")
        if not errors and repo_type == "space" and (data or {}).get("sdk") not in SPACE_SDKS:
            errors.append(f'"sdk" must be one of {", ".join(SPACE_SDKS)}')
        if errors:
            return json_response({"errors": [{"message": e} for e in errors], "warnings": []}, 400)
        return json_response({"errors": [], "warnings": []})


def install(server: HubServer) -> HubServer:
    """Add the write endpoints to `server` (started or not) and return it."""
    writes = HubWrites(server)
    server.hub_writes = writes
    server.add_route("POST", r"/api/repos/create", writes.create_repo)
    server.add_route("DELETE", r"/api/repos/delete", writes.delete_repo)
    server.add_route("PUT", rf"/api/{_KINDS}/{_REPO}/settings", writes.settings)
    server.add_route("POST", rf"/api/{_KINDS}/{_REPO}/preupload/(?P<rev>[^/]+)", writes.preupload)
    server.add_route("POST", rf"/api/{_KINDS}/{_REPO}/commit/(?P<rev>[^/]+)", writes.commit)
    server.add_route(
        "POST", rf"(?:/(?P<kind>datasets|spaces))?/{_REPO}\.git/info/lfs/objects/batch", writes.lfs_batch
    )
    server.add_route("PUT", r"/_lfs/(?P<oid>[0-9a-f]{64})", writes.lfs_put)
    server.add_route("POST", r"/api/validate-yaml", writes.validate_yaml)
    return server


__all__ = ["LFS_SUFFIXES", "HubWrites", "install"]
