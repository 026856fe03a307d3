"""The device agent (`hf-spider agent`) and its client (`--target http://HOST:PORT`).

The agent runs on the device (a Raspberry Pi, a Jetson, any board with Python, numpy and ONNX
Runtime). The host uploads an ONNX variant and the sample's inputs (`.npz`, loaded without
pickle), then submits a job; the agent runs the same protocol as `local` (`_runtime.run_protocol`)
one job at a time from a bounded queue and returns JSON.

HTTP API (every route but `/health` needs `Authorization: Bearer <token>`):
    GET  /health            liveness, no details
    GET  /info              the device's facts (CPU, ISA, cores, memory, ONNX Runtime, limits)
    HEAD /files/NAME        200 when the file is already there
    PUT  /files/NAME        upload a file (NAME: letters, digits, `._-`; size limit; 413 above it)
    POST /jobs              {"model": NAME, "inputs": NAME, "params": {...}} -> 202 {"id", "position"}
    GET  /jobs/ID           {"status": queued|running|done|failed, "result" | "error"}
Errors are JSON `{"error": "..."}` with 400, 401, 404, 411, 413, 429 or 500; the agent keeps serving.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from hf_spider.errors import AuthError, TargetError, UserInputError, VariantRejectedError
from hf_spider.hardware.config import MeasureConfig
from hf_spider.hardware.device import local_info

logger = logging.getLogger("hf_spider.hardware.agent")

AGENT_VERSION = 2  # 2: job params are `MeasureConfig.wire()` (`iterations`, not `min_iterations`)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEEP_JOBS = 200
MIN_TOKEN_LENGTH = 16
_TOKEN_HINT = (
    "write a long random token into it, or create one with `hf-spider agent --new-token --token-file F`"
)
# Idle connections are closed after this many seconds without a byte, so they cannot pin threads;
# at most this many connections are served at once, the rest are closed at once.
IDLE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 64


class _HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def encode_array(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_array(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def read_token_file(path: str | os.PathLike) -> str:
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise UserInputError(
            f"cannot read the token file {path}: {exc.strerror}", hint="check --token-file"
        ) from None
    if not token:
        raise UserInputError(f"the token file {path} is empty", hint=_TOKEN_HINT)
    return token


def check_token_strength(token: str, what: str = "the agent token") -> None:
    """Refuse tokens a guesser could find: fewer than `MIN_TOKEN_LENGTH` characters or one repeated."""
    if len(token) < MIN_TOKEN_LENGTH or len(set(token)) < 8:
        raise UserInputError(
            f"{what} is too weak: use at least {MIN_TOKEN_LENGTH} characters, not a repeated few",
            hint=_TOKEN_HINT,
        )


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    import secrets

    return secrets.token_urlsafe(32)


class AgentServer:
    """A device agent serving on `host:port`.

    Example:
        >>> server = AgentServer("127.0.0.1", 0, token=new_token()).start()  # background thread
        >>> server.url
        'http://127.0.0.1:...'
        >>> server.shutdown()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        token: str,
        workdir: str | os.PathLike | None = None,
        max_upload_mb: float = 512.0,
        queue_size: int = 8,
        idle_timeout: float = IDLE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ):
        if not token:
            raise UserInputError("the agent needs a token", hint="pass --token-file FILE")
        check_token_strength(token)
        self._token = token.encode()
        self.idle_timeout = idle_timeout
        if workdir is None:
            from hf_spider import _paths

            workdir = _paths.cache_dir("agent")
        self.files_dir = Path(workdir).resolve() / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.max_upload_bytes = int(max_upload_mb * 2**20)
        self.queue: queue.Queue[str] = queue.Queue(maxsize=queue_size)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.httpd = _Server((host, port), _Handler)
        self.httpd.agent = self
        self.httpd.slots = threading.BoundedSemaphore(max_connections)
        self._worker = threading.Thread(target=self._work, name="hf-spider-agent-worker", daemon=True)
        self._worker.start()
        self._serve_thread: threading.Thread | None = None
        self.device = local_info()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AgentServer:
        """Serve in a background thread (tests, notebooks)."""
        self._serve_thread = threading.Thread(
            target=self.httpd.serve_forever, name="hf-spider-agent", daemon=True
        )
        self._serve_thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait("")  # wakes the worker so it ends

    # ------------------------------------------------------------ requests

    def scrub(self, text: str) -> str:
        """`text` without the agent's own folders: a host learns nothing about the device's disk."""
        for folder in sorted({str(self.files_dir), str(self.files_dir.parent)}, key=len, reverse=True):
            text = text.replace(folder + os.sep, "").replace(folder, "<workdir>")
        return text

    def check_token(self, header: str | None) -> None:
        given = (header or "").removeprefix("Bearer ").strip().encode()
        if not given or not hmac.compare_digest(given, self._token):
            raise _HttpError(401, "missing or wrong token")

    def file_path(self, name: str) -> Path:
        if not _NAME.match(name) or ".." in name:
            raise _HttpError(400, f"bad file name {name[:80]!r}: use letters, digits, '.', '_' and '-' only")
        path = (self.files_dir / name).resolve()
        if path.parent != self.files_dir:
            raise _HttpError(400, "bad file name: outside the agent's folder")
        return path

    def info(self) -> dict[str, Any]:
        from hf_spider.hardware.sensors import SensorReader

        return {
            **self.device,
            "sensors": SensorReader().available(),
            "agent": {
                "version": AGENT_VERSION,
                "max_upload_mb": self.max_upload_bytes / 2**20,
                "queue_size": self.queue.maxsize,
            },
        }

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _HttpError(400, "the job must be a JSON object")
        unknown = set(body) - {"model", "inputs", "params"}
        if unknown:
            raise _HttpError(400, f"unknown job fields: {', '.join(sorted(unknown))}")
        for key in ("model", "inputs"):
            if not isinstance(body.get(key), str):
                raise _HttpError(400, f"the job needs {key!r}: the name of an uploaded file")
            if not self.file_path(body[key]).exists():
                raise _HttpError(404, f"{key} file {body[key]!r} was not uploaded")
        params = _check_params(body.get("params") or {})
        job_id = uuid.uuid4().hex[:16]
        job = {
            "id": job_id,
            "status": "queued",
            "submitted": time.time(),
            "request": {**body, "params": params},
        }
        with self.lock:
            try:
                self.queue.put_nowait(job_id)
            except queue.Full:
                raise _HttpError(
                    429, f"the queue is full ({self.queue.maxsize} jobs); try again later"
                ) from None
            self.jobs[job_id] = job
            while len(self.jobs) > _KEEP_JOBS:
                oldest = next(k for k, j in self.jobs.items() if j["status"] in ("done", "failed"))
                del self.jobs[oldest]
            position = self.queue.qsize()
        return {"id": job_id, "status": "queued", "position": position}

    def job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise _HttpError(404, f"no job {job_id[:40]!r}")
            return {k: v for k, v in job.items() if k != "request"}

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            job_id = self.queue.get()
            if not job_id:
                return
            with self.lock:
                job = self.jobs.get(job_id)
                if job is None:
                    continue
                job["status"] = "running"
                job["started"] = time.time()
            try:
                result = self._run(job["request"])
                update = {"status": "done", "result": result}
            except Exception as exc:  # every failure becomes a clear job error; the agent lives on
                error = self.scrub(_one_line(exc))
                logger.warning("job %s failed: %s", job_id, error)
                update = {"status": "failed", "error": error}
            with self.lock:
                job.update(update, finished=time.time())

    def _run(self, request: dict[str, Any]) -> dict[str, Any]:
        from hf_spider.hardware._runtime import run_protocol

        model = self.file_path(request["model"])
        inputs = self.file_path(request["inputs"])
        try:
            with np.load(inputs, allow_pickle=False) as data:
                feeds = {k: data[k] for k in data.files}
        except Exception as exc:
            raise ValueError(f"inputs file is not a valid .npz of arrays ({type(exc).__name__})") from None
        if not feeds:
            raise ValueError("inputs file holds no arrays")
        try:
            from hf_spider.hardware._runtime import make_session

            make_session(model, 1)
        except Exception as exc:
            raise ValueError(f"model file is not a valid ONNX model: {_one_line(exc)[:300]}") from None
        params = request["params"]
        config = MeasureConfig.from_wire(params["config"])
        if config.threads is None:
            config = config.replace(threads=self.device["cores"])
        raw = run_protocol(model, feeds, config, output_name=params["output_name"])
        raw["outputs"] = encode_array(raw["outputs"])
        raw["device"] = self.info()
        return raw


class _Server(ThreadingHTTPServer):
    """A threading HTTP server with a cap on connections served at once and quiet disconnects."""

    daemon_threads = True
    agent: AgentServer
    slots: threading.BoundedSemaphore

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            logger.warning("refusing %s: too many connections open", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        """A client that went away (reset, half-open, timed out) is logged in one line, no traceback."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.info("connection from %s ended: %s", client_address[0], type(exc).__name__)
        else:
            logger.error("error serving %s: %s", client_address[0], _one_line(exc) if exc else "unknown")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _check_params(params: Any) -> dict[str, Any]:
    """A job's `params`: the `MeasureConfig` wire fields plus `output_name`, checked."""
    if not isinstance(params, dict):
        raise _HttpError(400, "params must be a JSON object")
    params = dict(params)
    output_name = params.pop("output_name", None)
    if output_name is not None and not isinstance(output_name, str):
        raise _HttpError(400, "output_name must be a string")
    try:
        config = MeasureConfig.from_wire(params)
    except UserInputError as exc:
        raise _HttpError(400, str(exc)) from None
    return {"config": config.wire(), "output_name": output_name}


class _Handler(BaseHTTPRequestHandler):
    server_version = "hf-spider-agent"
    protocol_version = "HTTP/1.1"

    @property
    def agent(self) -> AgentServer:
        return self.server.agent

    def setup(self):
        self.timeout = self.server.agent.idle_timeout  # socket timeout: idle clients are dropped
        super().setup()

    def log_message(self, format, *args):  # the default writes to stderr; route to logging
        logger.info("%s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (unsupported method, malformed request line) as JSON too."""
        self.close_connection = True
        self._send(code, {"error": message or self.responses.get(code, ("error",))[0]}, close=True)

    def _send(self, status: int, body: dict[str, Any] | None = None, *, close: bool = False) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self, handler) -> None:
        try:
            status, body = handler()
            self._send(status, body)
        except _HttpError as exc:
            # a body we did not read would be taken for the next request: close instead
            self._send(exc.status, {"error": str(exc)}, close=exc.status in (401, 411, 413) or self._unread)
        except (ConnectionError, TimeoutError):
            raise  # the client went away: nothing to answer (see `_Server.handle_error`)
        except Exception as exc:
            error = self.agent.scrub(_one_line(exc))
            logger.error("unexpected error on %s %s: %s", self.command, self.path[:100], error)
            self._send(500, {"error": f"internal error: {error}"}, close=True)

    @property
    def _unread(self) -> bool:
        return self.command in ("PUT", "POST") and not getattr(self, "_body_read", False)

    def _route(self) -> list[str]:
        return [p for p in urlsplit(self.path).path.split("/") if p != ""]

    def _json_body(self) -> Any:
        length = self._content_length(limit=1 << 20)
        raw = self.rfile.read(length)
        self._body_read = True
        try:
            return json.loads(raw)
        except RecursionError:
            raise _HttpError(400, "the JSON body is nested too deeply") from None
        except ValueError:
            raise _HttpError(400, "the body is not valid JSON") from None

    def _content_length(self, limit: int) -> int:
        header = self.headers.get("Content-Length")
        if header is None:
            raise _HttpError(411, "Content-Length is required")
        try:
            length = int(header)
        except ValueError:
            raise _HttpError(400, "bad Content-Length") from None
        if length < 0:
            raise _HttpError(400, "bad Content-Length")
        if length > limit:
            raise _HttpError(413, f"upload of {length} bytes is over the agent's limit of {limit} bytes")
        return length

    def do_GET(self):
        def handle():
            route = self._route()
            if route == ["health"]:
                return 200, {"ok": True, "service": "hf-spider-agent"}
            self.agent.check_token(self.headers.get("Authorization"))
            if route == ["info"]:
                return 200, self.agent.info()
            if len(route) == 2 and route[0] == "jobs":
                return 200, self.agent.job(route[1])
            raise _HttpError(404, f"no route GET {self.path[:100]}")

        self._dispatch(handle)

    def do_HEAD(self):
        def handle():
            self.agent.check_token(self.headers.get("Authorization"))
            route = self._route()
            if len(route) == 2 and route[0] == "files":
                if self.agent.file_path(route[1]).exists():
                    return 200, {}
                raise _HttpError(404, "not uploaded")
            raise _HttpError(404, "no route")

        self._dispatch(handle)

    def do_PUT(self):
        def handle():
            self.agent.check_token(self.headers.get("Authorization"))
            route = self._route()
            if len(route) < 2 or route[0] != "files":
                raise _HttpError(404, f"no route PUT {self.path[:100]}")
            if len(route) != 2:
                raise _HttpError(400, "bad file name: no '/' allowed")
            path = self.agent.file_path(route[1])
            length = self._content_length(self.agent.max_upload_bytes)
            return 201, self._store(path, length)

        self._dispatch(handle)

    def _store(self, path: Path, length: int) -> dict[str, Any]:
        digest = hashlib.sha256()
        remaining = length
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".upload-") as handle:
            try:
                while remaining:
                    block = self.rfile.read(min(remaining, 1 << 20))
                    if not block:
                        break
                    handle.write(block)
                    digest.update(block)
                    remaining -= len(block)
            except Exception:
                os.unlink(handle.name)
                raise
        self._body_read = True
        if remaining:
            os.unlink(handle.name)
            self.close_connection = True
            raise _HttpError(400, f"upload ended after {length - remaining} of {length} bytes")
        os.replace(handle.name, path)
        return {"name": path.name, "size": length, "sha256": digest.hexdigest()}

    def do_POST(self):
        def handle():
            self.agent.check_token(self.headers.get("Authorization"))
            if self._route() != ["jobs"]:
                raise _HttpError(404, f"no route POST {self.path[:100]}")
            return 202, self.agent.submit(self._json_body())

        self._dispatch(handle)


# ---------------------------------------------------------------- the host side


class AgentClient:
    """Talks to a running `hf-spider agent` from the host."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 30.0, job_timeout: float = 3600.0
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise TargetError(f"bad agent URL {url!r}", hint="use http://HOST:PORT")
        self.url = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        self._token = token
        self.timeout = timeout
        self.job_timeout = job_timeout

    def _request(self, method: str, path: str, **kwargs):
        import requests

        if not self._token:
            raise AuthError(
                f"the agent at {self.url} needs a token",
                hint="pass --token-file FILE (the file the agent was started with) or set HF_SPIDER_AGENT_TOKEN",
            )
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        try:
            response = requests.request(
                method,
                self.url + path,
                headers=headers,
                timeout=kwargs.pop("timeout", self.timeout),
                **kwargs,
            )
        except requests.ConnectionError:
            raise TargetError(
                f"cannot reach the device agent at {self.url}",
                hint="start it on the device with `hf-spider agent --host H --port P --token-file F`, check host and port",
            ) from None
        except requests.Timeout:
            raise TargetError(
                f"the device agent at {self.url} did not answer in time", hint="is it busy? retry"
            ) from None
        if response.status_code == 401:
            raise AuthError(
                f"the device agent at {self.url} rejected the token",
                hint="use the token file the agent was started with",
            )
        if response.status_code >= 400 and method != "HEAD":
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text[:200]
            raise TargetError(
                f"the device agent refused {method} {path}: {message} (HTTP {response.status_code})"
            )
        return response

    def info(self) -> dict[str, Any]:
        response = self._request("GET", "/info")
        try:
            info = response.json()
        except ValueError:
            raise TargetError(f"{self.url} is not an hf-spider agent", hint="check the URL") from None
        if not isinstance(info, dict) or not isinstance(info.get("agent"), dict):
            raise TargetError(f"{self.url} is not an hf-spider agent", hint="check the URL")
        version = info["agent"].get("version")
        if version != AGENT_VERSION:
            raise TargetError(
                f"the agent at {self.url} speaks protocol version {version}, this host {AGENT_VERSION}",
                hint="install the same hf-spider version on the device and on the host",
            )
        return info

    def upload(self, path: str | os.PathLike, suffix: str | None = None) -> str:
        """Upload a file under a content-derived name (skipped when already there); returns the name."""
        path = Path(path)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        name = f"{digest.hexdigest()[:32]}{suffix or path.suffix}"
        if self._request("HEAD", f"/files/{name}").status_code == 200:
            return name
        with open(path, "rb") as handle:
            self._request(
                "PUT",
                f"/files/{name}",
                data=handle,
                headers={"Content-Length": str(path.stat().st_size)},
                timeout=600,
            )
        return name

    def measure(
        self,
        model_path: str | os.PathLike,
        feeds: dict[str, np.ndarray],
        config: MeasureConfig | None = None,
        *,
        output_name: str | None = None,
    ) -> dict:
        """Run the measurement protocol on the agent; returns the same raw dict as `run_protocol`."""
        params = {**(config or MeasureConfig()).wire(), "output_name": output_name}
        limit = self.info()["agent"]["max_upload_mb"]
        size_mb = Path(model_path).stat().st_size / 2**20
        if size_mb > limit:
            raise VariantRejectedError(
                f"{Path(model_path).name} is {size_mb:.0f} MiB, over the agent's upload limit of {limit:.0f} MiB",
                hint="start the agent with a larger --max-upload-mb, or use an int8 variant",
            )
        model_name = self.upload(model_path)
        with tempfile.TemporaryDirectory(prefix="hf-spider-feeds-") as tmp:
            inputs = Path(tmp) / "inputs.npz"
            np.savez(inputs, **feeds)
            inputs_name = self.upload(inputs)
        job = self._request(
            "POST", "/jobs", json={"model": model_name, "inputs": inputs_name, "params": params}
        ).json()
        deadline = time.monotonic() + self.job_timeout
        delay = 0.1
        while time.monotonic() < deadline:
            state = self._request("GET", f"/jobs/{job['id']}").json()
            if state["status"] == "done":
                raw = state["result"]
                raw["outputs"] = decode_array(raw["outputs"])
                return raw
            if state["status"] == "failed":
                raise VariantRejectedError(
                    f"the device agent failed the job: {state.get('error')}",
                    hint="check that the variant runs with the agent's ONNX Runtime",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        raise TargetError(
            f"the agent's job {job['id']} did not finish in {self.job_timeout:.0f} s", hint="retry later"
        )
