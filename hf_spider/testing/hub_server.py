"""A Hub-compatible HTTP server on loopback, for tests and benchmarks (read side).

It serves a folder of Hub-layout repos to huggingface_hub (and libraries built on it) over real
HTTP, so the product's real Hub code paths run unchanged against it:

    root/models/<org>/<name>/...      (also root/models/<name>/... for ids without an org)
    root/datasets/<org>/<name>/...
    root/spaces/<org>/<name>/...

Each repo has one revision, `main`; its sha is computed from the content (git blob ids of the
files), so it changes exactly when a file changes. An optional hidden `.hub.json` in a repo
folder sets what a folder cannot say: `downloads`, `likes`, `lastModified`, `createdAt`,
`private`, `gated`, `tags` (extra). Everything else (card data, config, safetensors parameter
counts, library, pipeline tag, tags) is derived from the files as the Hub does.

Endpoints (huggingface_hub 0.36 URLs): `GET /api/{models,datasets,spaces}` (search, author,
filter, pipeline_tag, sort, direction, limit, expand, full, config, cardData; `Link` header
pagination), `GET /api/{type}s/{id}[/revision/{rev}]`, `GET /api/{type}s/{id}/tree/{rev}[/{path}]`,
`POST /api/{type}s/{id}/paths-info/{rev}`, `GET|HEAD /[{datasets,spaces}/]{id}/resolve/{rev}/{path}`
(X-Repo-Commit, ETag, Content-Length, Range), `GET /api/whoami-v2`.

Auth: `HubServer(root, token="hf_x")` rejects a request carrying any other bearer token with 401
(as the Hub does); with `require_auth=True` also one carrying none. Repos whose `.hub.json` says
`"private": true` need the token. Without `token=`, any bearer token is accepted (whoami answers
for it) and private repos are hidden.

Faults: `Faults(rate_429=..., rate_500=..., rate_503=..., retry_after=..., delay=..., drop=..., forbid=...,
malformed_yaml={repo ids}, missing_config={repo ids})` (see the class).

Extension point: `server.add_route(method, pattern, handler)`. `pattern` is a regular expression
matched (fullmatch) against the percent-encoded request path; named groups are percent-decoded and
passed in `request.params`. `handler(request) -> Response`. Routes added later win over earlier
ones, so a module (e.g. `hub_writes.py`) can add or override endpoints:

    def install(server):
        server.add_route("POST", r"/api/repos/create", lambda req: json_response({"url": ...}))

A handler that changes files under a repo must call `server.invalidate(repo_type, repo_id)` and
should hold `server.write_lock` while it writes. Every request (method, path, query, status) is
recorded in `server.requests` for tests that count them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import yaml

from hf_spider.models import read_safetensors_header

REPO_TYPES = ("models", "datasets", "spaces")
META_FILE = ".hub.json"
DEFAULT_PAGE_SIZE = 100
_FRONT_MATTER = re.compile(r"\A\s*---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_SAFETENSORS_DTYPES = (
    "F64",
    "F32",
    "F16",
    "BF16",
    "I64",
    "I32",
    "I16",
    "I8",
    "U8",
    "BOOL",
    "F8_E4M3",
    "F8_E5M2",
)


# --- requests and responses --------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str  # percent-decoded path
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    server: HubServer | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name) or self.query.get(f"{name}[]")
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return [*self.query.get(name, []), *self.query.get(f"{name}[]", [])]

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes | Path = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}
    return json_response({"error": message}, status, extra)


# --- fault injection ---------------------------------------------------------------------------
@dataclass
class Faults:
    """What goes wrong, on purpose.

    Attributes:
        rate_429 / rate_500 / rate_503: probability that a response is replaced by that error
            (429 and 503 carry `Retry-After: retry_after`).
        delay: seconds to sleep before answering each request matching `delay_pattern`.
        only: regular expression; errors are injected only on paths it matches (None: all).
        drop: regular expression matched against "METHOD path": such a request is read, then
            the connection is closed without an answer (a network failure mid-request).
        forbid: regular expression matched against "METHOD path": such a request is answered 403,
            as the Hub answers a write with a token that may only read.
        malformed_yaml: repo ids whose README front matter is served broken.
        missing_config: repo ids whose config.json is hidden.
        seed: for a reproducible sequence of injected errors.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    retry_after: float = 1.0
    delay: float = 0.0
    delay_pattern: str | None = None
    only: str | None = None
    drop: str | None = None
    forbid: str | None = None
    malformed_yaml: frozenset[str] = frozenset()
    missing_config: frozenset[str] = frozenset()
    seed: int = 0


# --- repo snapshots -----------------------------------------------------------------------------
@dataclass
class FileEntry:
    path: str
    size: int
    blob_id: str
    abs_path: Path
    content: bytes | None = None  # served instead of the file on disk (fault injection)


@dataclass
class RepoSnapshot:
    repo_type: str
    repo_id: str
    sha: str
    files: dict[str, FileEntry]
    meta: dict[str, Any]
    last_modified: str
    info: dict[str, Any] = field(default_factory=dict)  # derived API fields, computed once


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _safetensors_info(files: dict[str, FileEntry]) -> dict[str, Any] | None:
    params: dict[str, int] = {}
    found = False
    for name, entry in sorted(files.items()):
        if not name.endswith(".safetensors"):
            continue
        header = read_safetensors_header(entry.abs_path)
        if header is None:
            continue
        found = True
        for key, tensor in header.items():
            if key == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = 1
            for dim in tensor.get("shape", []):
                count *= int(dim)
            params[tensor.get("dtype", "F32")] = params.get(tensor.get("dtype", "F32"), 0) + count
    if not found:
        return None
    return {"parameters": params, "total": sum(params.values())}


def _card_data(text: str) -> dict[str, Any] | None:
    match = _FRONT_MATTER.match(text)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _pipeline_from_config(config: dict[str, Any]) -> str | None:
    archs = config.get("architectures") or []
    arch = archs[0] if isinstance(archs, list) and archs else ""
    for key, tag in (
        ("ImageClassification", "image-classification"),
        ("SequenceClassification", "text-classification"),
        ("TokenClassification", "token-classification"),
        ("MaskedLM", "fill-mask"),
        ("QuestionAnswering", "question-answering"),
        ("CausalLM", "text-generation"),
    ):
        if key in arch:
            return tag
    if "architecture" in config and "model_type" not in config:
        return "image-classification"  # timm
    return None


def _derive_info(snap: RepoSnapshot) -> dict[str, Any]:
    """The API fields the Hub derives from a repo's files."""
    files = snap.files
    card_text = ""
    if "README.md" in files:
        entry = files["README.md"]
        card_text = (entry.content or entry.abs_path.read_bytes()).decode("utf-8", "replace")
    card = _card_data(card_text) or {}
    config: dict[str, Any] = {}
    if "config.json" in files and files["config.json"].content is None:
        try:
            loaded = json.loads(files["config.json"].abs_path.read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else {}
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            config = {}
    library = card.get("library_name")
    if not library:
        if "architecture" in config and "model_type" not in config:
            library = "timm"
        elif "modules.json" in files:
            library = "sentence-transformers"
        elif config.get("model_type"):
            library = "transformers"
        elif any(f.endswith(".onnx") for f in files):
            library = "onnx"
    pipeline = card.get("pipeline_tag") or _pipeline_from_config(config)
    if library == "sentence-transformers" and not pipeline:
        pipeline = "sentence-similarity"
    tags: list[str] = []
    for value in (library, pipeline, config.get("model_type")):
        if value and value not in tags:
            tags.append(str(value))
    if any(f.endswith(".safetensors") for f in files):
        tags.append("safetensors")
    if any(f.endswith(".onnx") for f in files) and "onnx" not in tags:
        tags.append("onnx")
    for key, prefix in (("datasets", "dataset:"), ("base_model", "base_model:"), ("license", "license:")):
        value = card.get(key)
        for item in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            tags.append(f"{prefix}{item}")
    lang = card.get("language")
    tags += [str(x) for x in ([lang] if isinstance(lang, str) else lang if isinstance(lang, list) else [])]
    card_tags = card.get("tags")
    tags += [
        str(x) for x in ([card_tags] if isinstance(card_tags, str) else card_tags or []) if x is not None
    ]
    tags += [str(x) for x in snap.meta.get("tags", [])]
    tags = list(dict.fromkeys(tags))
    base = card.get("base_model")
    config_subset = {k: config[k] for k in ("architectures", "model_type") if k in config}
    if library == "timm" and "architecture" in config:
        config_subset["architecture"] = config["architecture"]
    return {
        "cardData": card or None,
        "config": config_subset or None,
        "library_name": library,
        "pipeline_tag": pipeline,
        "tags": tags,
        "safetensors": _safetensors_info(files),
        "model-index": card.get("model-index"),
        "baseModels": (
            {
                "relation": "finetune",
                "models": [{"id": b} for b in ([base] if isinstance(base, str) else base)],
            }
            if base
            else None
        ),
    }


# --- the server ---------------------------------------------------------------------------------
Handler = Callable[[Request], Response]


class HubServer:
    """A read-side Hub on `http://127.0.0.1:<free port>` serving repos under `root`.

    Example:
        >>> with HubServer(tmp_path) as hub:
        ...     HfApi(endpoint=hub.url).model_info("org/name")
    """

    def __init__(
        self,
        root: str | Path,
        *,
        token: str | None = None,
        require_auth: bool = False,
        faults: Faults | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        user: str = "hf-spider-tester",
    ):
        self.root = Path(root)
        self.token = token
        self.require_auth = require_auth
        self.faults = faults or Faults()
        self.page_size = page_size
        self.user = user
        self.requests: list[tuple[str, str, str, int]] = []
        self.write_lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._cache: dict[tuple[str, str], tuple[tuple, RepoSnapshot]] = {}
        self._cache_lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._listings: dict[str, list[RepoSnapshot]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._install_read_routes()

    # --- lifecycle ---
    def start(self, port: int = 0) -> HubServer:
        server = self

        class _Handler(_RequestHandler):
            hub = server

        self._httpd = _QuietHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- extension point ---
    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler` for `method` on paths fully matching `pattern` (later routes win)."""
        self._routes.insert(0, (method.upper(), re.compile(pattern), handler))

    # --- request log ---
    def count(self, pattern: str = ".*", method: str | None = None) -> int:
        """Number of recorded requests whose path matches `pattern` (regex search)."""
        rx = re.compile(pattern)
        with self._log_lock:
            return sum(1 for m, p, _, _ in self.requests if rx.search(p) and (method is None or m == method))

    def reset_log(self) -> None:
        with self._log_lock:
            self.requests.clear()

    # --- repos ---
    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        return self.root / _plural(repo_type) / repo_id

    def repo_ids(self, repo_type: str = "models") -> list[str]:
        base = self.root / _plural(repo_type)
        if not base.is_dir():
            return []
        ids = []
        for first in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            children = list(first.iterdir())
            if any(c.is_file() for c in children):
                ids.append(first.name)
            ids += [
                f"{first.name}/{c.name}"
                for c in sorted(children)
                if c.is_dir() and not c.name.startswith(".")
            ]
        return ids

    def invalidate(self, repo_type: str, repo_id: str) -> None:
        with self._cache_lock:
            self._cache.pop((_plural(repo_type), repo_id), None)

    def snapshot(self, repo_type: str, repo_id: str) -> RepoSnapshot | None:
        """The current state of a repo (cached until its files change), or None if absent."""
        kind = _plural(repo_type)
        folder = self.root / kind / repo_id
        if not folder.is_dir() or ".." in repo_id.split("/"):
            return None
        stats = []
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and not any(part.startswith(".git") for part in rel.split("/")):
                st = path.stat()
                stats.append((rel, st.st_size, st.st_mtime_ns))
        key = (tuple(stats), repo_id in self.faults.malformed_yaml, repo_id in self.faults.missing_config)
        with self._cache_lock:
            cached = self._cache.get((kind, repo_id))
            if cached and cached[0] == key:
                return cached[1]
        snap = self._build_snapshot(kind, repo_id, folder, stats)
        with self._cache_lock:
            self._cache[(kind, repo_id)] = (key, snap)
        return snap

    def _build_snapshot(self, kind: str, repo_id: str, folder: Path, stats: list[tuple]) -> RepoSnapshot:
        files: dict[str, FileEntry] = {}
        meta: dict[str, Any] = {}
        newest = 0.0
        for rel, _size, mtime_ns in stats:
            path = folder / rel
            if rel == META_FILE:
                try:
                    meta = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    meta = {}
                continue
            if rel.startswith("."):
                continue
            data = path.read_bytes()
            content = None
            if rel == "README.md" and repo_id in self.faults.malformed_yaml:
                content = b"---\nlicense: [apache-2.0\ntags: {broken: \n---\n" + data.split(b"\n---", 1)[-1]
            if rel == "config.json" and repo_id in self.faults.missing_config:
                continue
            body = content if content is not None else data
            files[rel] = FileEntry(rel, len(body), _blob_id(body), path, content)
            newest = max(newest, mtime_ns / 1e9)
        digest = hashlib.sha1()
        for rel in sorted(files):
            digest.update(f"{rel}\0{files[rel].blob_id}\n".encode())
        digest.update(json.dumps(meta, sort_keys=True).encode())
        last_modified = str(meta.get("lastModified") or _iso(newest or time.time()))
        snap = RepoSnapshot(kind, repo_id, digest.hexdigest(), files, meta, last_modified)
        snap.info = _derive_info(snap)
        return snap

    # --- JSON views ---
    def repo_json(self, snap: RepoSnapshot, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """The Hub's JSON for one repo; `fields` None: everything model_info returns."""
        meta = snap.meta
        author = snap.repo_id.split("/")[0] if "/" in snap.repo_id else None
        full: dict[str, Any] = {
            "_id": hashlib.sha1(f"{snap.repo_type}/{snap.repo_id}".encode()).hexdigest()[:24],
            "id": snap.repo_id,
            "author": author,
            "sha": snap.sha,
            "lastModified": snap.last_modified,
            "createdAt": meta.get("createdAt", snap.last_modified),
            "private": bool(meta.get("private", False)),
            "gated": meta.get("gated", False),
            "disabled": False,
            "downloads": int(meta.get("downloads", 0)),
            "likes": int(meta.get("likes", 0)),
            "tags": snap.info["tags"],
            "cardData": snap.info["cardData"],
            "siblings": [{"rfilename": f} for f in sorted(snap.files)],
            "usedStorage": sum(f.size for f in snap.files.values()),
            "trendingScore": 0,
        }
        if snap.repo_type == "models":
            full.update(
                {
                    "modelId": snap.repo_id,
                    "library_name": snap.info["library_name"],
                    "pipeline_tag": snap.info["pipeline_tag"],
                    "config": snap.info["config"],
                    "safetensors": snap.info["safetensors"],
                    "model-index": snap.info["model-index"],
                    "baseModels": snap.info["baseModels"],
                    "spaces": [],
                }
            )
        if fields is None:
            return {k: v for k, v in full.items() if v is not None or k in ("cardData",)}
        return {"_id": full["_id"], "id": snap.repo_id, **{f: full.get(f) for f in fields if f in full}}

    # --- routes ---
    def _install_read_routes(self) -> None:
        kinds = "(?P<kind>models|datasets|spaces)"
        self.add_route("GET", rf"/api/{kinds}", self._list)
        self.add_route("GET", rf"/api/{kinds}/{_REPO}", self._info)
        self.add_route("GET", rf"/api/{kinds}/{_REPO}/revision/(?P<rev>[^/]+)", self._info)
        self.add_route("GET", rf"/api/{kinds}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", self._tree)
        self.add_route("POST", rf"/api/{kinds}/{_REPO}/paths-info/(?P<rev>[^/]+)", self._paths_info)
        self.add_route("GET", r"/api/whoami-v2", self._whoami)
        resolve = rf"(?:/(?P<kind>datasets|spaces))?/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"
        self.add_route("GET", resolve, self._resolve)
        self.add_route("HEAD", resolve, self._resolve)

    def _authorised(self, request: Request, snap: RepoSnapshot) -> bool:
        return not snap.meta.get("private") or (self.token is not None and request.token == self.token)

    def _repo_or_error(self, request: Request) -> RepoSnapshot | Response:
        kind = request.params.get("kind") or "models"
        snap = self.snapshot(kind, request.params["repo"])
        if snap is None or not self._authorised(request, snap):
            return error_response(404, "Repository not found", "RepoNotFound")
        rev = request.params.get("rev")
        if rev is not None and rev not in ("main", snap.sha):
            return error_response(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return snap

    def _list(self, request: Request) -> Response:
        # The first page takes a snapshot of the matching repos; later pages (cursor > 0) page through
        # that same snapshot, as a Hub cursor does, instead of rescanning every repo per page.
        start = int(request.arg("cursor", "0") or 0)
        query = sorted((k, v) for k, v in request.query.items() if k != "cursor")
        key = json.dumps([request.params["kind"], request.token, query])
        with self._cache_lock:
            out = self._listings.get(key) if start else None
        if out is None:
            out = self._matching(request)
            with self._cache_lock:
                self._listings[key] = out
        limit = request.arg("limit")
        page = min(int(limit), self.page_size) if limit else self.page_size
        chunk = out[start : start + page]
        expand = request.args("expand")
        if expand:
            fields: list[str] | None = expand
        elif request.arg("full") in ("True", "true", "1"):
            fields = None
        else:
            fields = [
                "likes",
                "trendingScore",
                "private",
                "downloads",
                "tags",
                "pipeline_tag",
                "library_name",
                "createdAt",
                "modelId",
            ]
            if request.arg("config") in ("True", "true", "1"):
                fields.append("config")
            if request.arg("cardData") in ("True", "true", "1"):
                fields.append("cardData")
        items = [self.repo_json(s, fields) for s in chunk]
        headers = {}
        if start + page < len(out) and not (limit and start + page >= int(limit)):
            query = {k: v for k, v in request.query.items() if k != "cursor"}
            query["cursor"] = [str(start + page)]
            headers["Link"] = (
                f'<{self.url}{request.raw_path.split("?")[0]}?{urlencode(query, doseq=True)}>; rel="next"'
            )
        return json_response(items, headers=headers)

    def _matching(self, request: Request) -> list[RepoSnapshot]:
        kind = request.params["kind"]
        snaps = [
            s
            for s in (self.snapshot(kind, r) for r in self.repo_ids(kind))
            if s and self._authorised(request, s)
        ]
        search = [s.lower() for s in request.args("search")]
        author = request.arg("author")
        filters = request.args("filter")
        pipeline = request.arg("pipeline_tag")
        out = []
        for snap in snaps:
            info = snap.info
            if search and not all(s in snap.repo_id.lower() for s in search):
                continue
            if author and not snap.repo_id.startswith(f"{author}/"):
                continue
            if pipeline and info.get("pipeline_tag") != pipeline:
                continue
            if filters and not all(f in info["tags"] or f == info.get("library_name") for f in filters):
                continue
            out.append(snap)
        sort = request.arg("sort")
        if sort:
            key = {
                "lastModified": "lastModified",
                "last_modified": "lastModified",
                "createdAt": "createdAt",
            }.get(sort, sort)
            descending = request.arg("direction", "-1") == "-1"
            out.sort(key=lambda s: (self.repo_json(s).get(key) or 0, s.repo_id), reverse=descending)
        return out

    def _info(self, request: Request) -> Response:
        snap = self._repo_or_error(request)
        if isinstance(snap, Response):
            return snap
        expand = request.args("expand")
        data = self.repo_json(snap, expand or None)
        if request.arg("blobs") in ("True", "true", "1") and "siblings" in data:
            data["siblings"] = [
                {"rfilename": f, "size": e.size, "blobId": e.blob_id} for f, e in sorted(snap.files.items())
            ]
        return json_response(data)

    def _entries(self, snap: RepoSnapshot) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for name, entry in snap.files.items():
            entries[name] = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": name}
            parts = name.split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                oid = hashlib.sha1(f"{snap.sha}:{folder}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "oid": oid, "size": 0, "path": folder})
        return entries

    def _tree(self, request: Request) -> Response:
        snap = self._repo_or_error(request)
        if isinstance(snap, Response):
            return snap
        base = (request.params.get("path") or "").strip("/")
        recursive = request.arg("recursive") in ("True", "true", "1")
        entries = self._entries(snap)
        if base and (base not in entries or entries[base]["type"] != "directory"):
            return error_response(404, f"{base} does not exist on main", "EntryNotFound")
        prefix = f"{base}/" if base else ""
        out = []
        for path, item in sorted(entries.items()):
            if not path.startswith(prefix):
                continue
            if not recursive and "/" in path[len(prefix) :]:
                continue
            out.append(item)
        return json_response(out)

    def _paths_info(self, request: Request) -> Response:
        snap = self._repo_or_error(request)
        if isinstance(snap, Response):
            return snap
        form = request.form() if request.body else {}
        if not form and request.headers.get("content-type", "").startswith("application/json"):
            form = {"paths": request.json().get("paths", [])}
        entries = self._entries(snap)
        return json_response(
            [entries[p.strip("/")] for p in form.get("paths", []) if p.strip("/") in entries]
        )

    def _whoami(self, request: Request) -> Response:
        if request.token is None or (self.token is not None and request.token != self.token):
            return error_response(401, "Invalid credentials in Authorization header")
        return json_response(
            {"type": "user", "name": self.user, "auth": {"type": "access_token"}, "orgs": []}
        )

    def _resolve(self, request: Request) -> Response:
        snap = self._repo_or_error(request)
        if isinstance(snap, Response):
            return snap
        entry = snap.files.get(request.params["path"])
        if entry is None:
            return error_response(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": snap.sha})
        headers = {
            "X-Repo-Commit": snap.sha,
            "ETag": f'"{entry.blob_id}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        body: bytes | Path = entry.content if entry.content is not None else entry.abs_path
        rng = request.headers.get("range")
        if rng and request.method == "GET":
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if match:
                data = body if isinstance(body, bytes) else body.read_bytes()
                start = (
                    int(match.group(1)) if match.group(1) else max(0, entry.size - int(match.group(2) or 0))
                )
                end = int(match.group(2)) if match.group(1) and match.group(2) else entry.size - 1
                end = min(end, entry.size - 1)
                if start >= entry.size:
                    return Response(416, b"", {"Content-Range": f"bytes */{entry.size}"})
                headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
                return Response(206, data[start : end + 1], headers)
        return Response(200, body, headers)

    # --- dispatch (called by the request handler) ---
    def _handle(self, request: Request) -> Response:
        faults = self.faults
        if faults.delay and (faults.delay_pattern is None or re.search(faults.delay_pattern, request.path)):
            time.sleep(faults.delay)
        if faults.only is None or re.search(faults.only, request.path):
            with self._log_lock:
                roll = self._rng.random()
            retry = {"Retry-After": f"{faults.retry_after:g}"}
            if roll < faults.rate_429:
                return error_response(429, "Too many requests (injected)", headers=retry)
            roll -= faults.rate_429
            if roll < faults.rate_500:
                return error_response(500, "Internal error (injected)")
            roll -= faults.rate_500
            if roll < faults.rate_503:
                return error_response(503, "Service unavailable (injected)", headers=retry)
        if faults.forbid and re.search(faults.forbid, f"{request.method} {request.path}"):
            return error_response(403, "You don't have the rights to write to this repo (injected)")
        presented = request.token
        if self.token is not None and presented is not None and presented != self.token:
            return error_response(401, "Invalid credentials in Authorization header")
        if self.require_auth and presented is None:
            return error_response(401, "Authorization header is required")
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            match = pattern.fullmatch(request.raw_path.split("?")[0])
            if match:
                request.params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                return handler(request)
        return error_response(404, f"no route for {request.method} {request.path}")


def _plural(repo_type: str) -> str:
    return repo_type if repo_type.endswith("s") else f"{repo_type}s"


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.open_sockets: set[Any] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open client connection, so a stopped server is really gone for keep-alive clients."""
        with self.sockets_lock:
            sockets, self.open_sockets = list(self.open_sockets), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping a keep-alive connection is normal; anything else is logged, not printed.
        import sys

        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            logging.getLogger("hf_spider.testing").exception("hub server error for %s", client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=unquote(parts.path),
            raw_path=self.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            server=self.hub,
        )
        drop = self.hub.faults.drop
        if drop and re.search(drop, f"{request.method} {request.path}"):
            with self.hub._log_lock:
                self.hub.requests.append((request.method, request.path, parts.query, 0))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            response = self.hub._handle(request)
        except Exception as exc:  # a bug in a handler: answer 500 rather than hang the client
            response = error_response(500, f"server error: {type(exc).__name__}: {exc}")
        with self.hub._log_lock:
            self.hub.requests.append((request.method, request.path, parts.query, response.status))
        payload = response.body.read_bytes() if isinstance(response.body, Path) else response.body
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve


def write_repo(
    root: str | Path,
    repo_id: str,
    files: dict[str, str | bytes | dict],
    *,
    repo_type: str = "models",
    meta: dict | None = None,
) -> Path:
    """Create (or overwrite) a Hub-layout repo under `root`: a test helper.

    `files` maps a path in the repo to text, bytes, or a dict written as JSON. `meta` becomes `.hub.json`.
    """
    folder = Path(root) / _plural(repo_type) / repo_id
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict | list):
            content = json.dumps(content, indent=2)
        path.write_bytes(content if isinstance(content, bytes) else str(content).encode("utf-8"))
    if meta is not None:
        (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    """Serve a folder on loopback until interrupted: `python -m hf_spider.testing.hub_server ROOT`."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve a folder of Hub-layout repos on 127.0.0.1.")
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None, help="the one token accepted")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    args = parser.parse_args(argv)
    hub = HubServer(args.root, token=args.token, page_size=args.page_size).start(args.port)
    print(hub.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = [
    "META_FILE",
    "Faults",
    "FileEntry",
    "HubServer",
    "RepoSnapshot",
    "Request",
    "Response",
    "error_response",
    "json_response",
    "write_repo",
]
