"""Crawl the Hub (or a folder of Hub-layout repos) into a catalog of model tokens.

How it works:
- The listing (`GET /api/models` with the `expand` fields: card data, config, safetensors,
  downloads, likes, last modified, library, tags, base models, eval results, sha, siblings) is
  read page by page through huggingface_hub's HTTP session, following the `Link` header. Each
  page is retried on its own (429/5xx, honouring `Retry-After`), so one bad page does not restart
  the whole listing as `HfApi.list_models` would.
- A model whose sha (or, lacking one, last-modified) equals the catalogued one is *unchanged*:
  no request is made for it; only its downloads/likes are refreshed from the listing.
- New or updated models are fetched by a bounded pool of workers: `model_info` when the listing
  lacks sha/siblings, a GET of `config.json` (its `hf_hub_url`) when the listing's config is the Hub's
  short subset, the README (card body) when its metadata did not parse or a figure is still
  missing, and the sentence-transformers module configs. Nothing fetched is ever executed.
- The main thread writes each token in its own SQLite transaction, so a crawl killed at any
  moment loses at most the models in flight; the next run picks them up (their sha differs).

The token passed in is handed to huggingface_hub only; it never reaches the catalog, a log line
or the report.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hf_spider import _paths
from hf_spider.catalog._store import CatalogStore, _storage_file
from hf_spider.catalog._token import ModelToken
from hf_spider.catalog._tokenizer import tokenize
from hf_spider.errors import CatalogError, HubConnectionError, UserInputError, hub_error

logger = logging.getLogger("hf_spider.catalog")

# Pipeline tags the Hub knows (huggingface.js `PIPELINE_DATA`); `--task` must be one of them.
KNOWN_TASKS = frozenset(
    [
        "text-classification",
        "token-classification",
        "table-question-answering",
        "question-answering",
        "zero-shot-classification",
        "translation",
        "summarization",
        "feature-extraction",
        "text-generation",
        "text2text-generation",
        "fill-mask",
        "sentence-similarity",
        "text-to-speech",
        "text-to-audio",
        "automatic-speech-recognition",
        "audio-to-audio",
        "audio-classification",
        "audio-text-to-text",
        "voice-activity-detection",
        "depth-estimation",
        "image-classification",
        "object-detection",
        "image-segmentation",
        "text-to-image",
        "image-to-text",
        "image-to-image",
        "image-to-video",
        "unconditional-image-generation",
        "video-classification",
        "reinforcement-learning",
        "robotics",
        "tabular-classification",
        "tabular-regression",
        "tabular-to-text",
        "table-to-text",
        "multiple-choice",
        "text-ranking",
        "text-retrieval",
        "time-series-forecasting",
        "text-to-video",
        "image-text-to-text",
        "visual-question-answering",
        "document-question-answering",
        "zero-shot-image-classification",
        "graph-ml",
        "mask-generation",
        "zero-shot-object-detection",
        "text-to-3d",
        "image-to-3d",
        "image-feature-extraction",
        "video-text-to-text",
        "keypoint-detection",
        "visual-document-retrieval",
        "any-to-any",
        "video-to-video",
        "other",
    ]
)
EXPAND = [
    "sha",
    "lastModified",
    "cardData",
    "config",
    "safetensors",
    "downloads",
    "likes",
    "library_name",
    "pipeline_tag",
    "tags",
    "baseModels",
    "model-index",
    "siblings",
]
SORT_KEYS = {
    "downloads": "downloads",
    "likes": "likes",
    "last_modified": "lastModified",
    "lastModified": "lastModified",
    "created_at": "createdAt",
    "createdAt": "createdAt",
    "trending_score": "trendingScore",
    "trending": "trendingScore",
    "id": "id",
}
RETRY_STATUS = (429, 500, 502, 503, 504)
MAX_CONFIG_BYTES = 5_000_000
# Config keys beyond the Hub listing's short subset: their presence means config.json was read.
_DETAIL_KEYS = (
    "hidden_size",
    "dim",
    "d_model",
    "num_features",
    "hidden_sizes",
    "embed_dim",
    "vocab_size",
    "pretrained_cfg",
)
_ST_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "2_Dense/config.json",
    "config_setfit.json",
)

ProgressFn = Callable[[str, str, int, int | None], None]
"""progress(event, model_id, done, total): event is new/updated/unchanged/failed/listed."""


@dataclass
class CrawlReport:
    """What a crawl did. `failed` maps model id -> reason."""

    catalog: str = ""
    source: str = ""
    listed: int = 0
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = {
            "listed": self.listed,
            "new": len(self.new),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
        }
        return data

    def summary(self) -> str:
        return (
            f"{self.listed} listed: {len(self.new)} new, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.failed)} failed ({self.seconds:.1f}s)"
        )


class _Retrying:
    """Run a Hub call again on 429/5xx and connection errors, honouring `Retry-After`."""

    def __init__(self, max_retries: int, max_wait: float = 30.0):
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.requests = 0
        self.stop = threading.Event()  # set when the crawl gives up: pending retries end at once
        self._lock = threading.Lock()

    def __call__(self, fn: Callable[[], Any], what: str, *, connect_retries: int | None = None) -> Any:
        attempt = 0
        while True:
            with self._lock:
                self.requests += 1
            try:
                return fn()
            except Exception as exc:
                status, retry_after, connection = _classify(exc)
                limit = connect_retries if connection and connect_retries is not None else self.max_retries
                if not (status in RETRY_STATUS or connection) or attempt >= limit or self.stop.is_set():
                    raise
                wait = retry_after if retry_after is not None else min(8.0, 0.25 * 2**attempt)
                wait = min(self.max_wait, wait) * (1.0 + 0.25 * random.random())
                logger.info(
                    "%s: %s, retry %d/%d in %.2fs",
                    what,
                    status or "connection error",
                    attempt + 1,
                    limit,
                    wait,
                )
                if self.stop.wait(wait):
                    raise
                attempt += 1


def _classify(exc: BaseException) -> tuple[int | None, float | None, bool]:
    """(HTTP status, Retry-After seconds, is-a-connection-error) of an exception or its causes."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if response is not None and getattr(response, "status_code", None):
            retry = response.headers.get("Retry-After")
            try:
                retry_after = float(retry) if retry is not None else None
            except ValueError:
                retry_after = None
            return int(response.status_code), retry_after, False
        if isinstance(seen, requests.ConnectionError | requests.Timeout):
            return None, None, True
        seen = seen.__cause__ or seen.__context__
    return None, None, False


def _check_writable(catalog_path: Path) -> Path:
    file = _storage_file(catalog_path, must_exist=False)
    if file is None or file.suffix == ".jsonl":
        raise CatalogError(
            f"{catalog_path} is a JSON Lines catalog; crawl writes SQLite catalogs",
            hint="pass --catalog with a folder or a .sqlite path",
        )
    # Nothing is created here: the store makes its folder once the source answered, so a crawl
    # of an unreachable endpoint leaves no empty catalog folder behind.
    parent = _paths.nearest_existing(file.parent)
    if not parent.is_dir():
        raise CatalogError(
            f"cannot create the catalog folder {file.parent}: {parent} is a file",
            hint="pass --catalog with a writable path (or set HF_SPIDER_HOME)",
        )
    target = file if file.exists() else parent
    if not os.access(target, os.W_OK) or (file.exists() and not os.access(file.parent, os.W_OK)):
        raise CatalogError(
            f"the catalog path {file} is not writable",
            hint="pass --catalog with a writable path (or set HF_SPIDER_HOME)",
        )
    return file


def crawl(
    catalog_path: str | os.PathLike | None = None,
    *,
    tasks: list[str] | str | None = None,
    library: str | None = None,
    limit: int | None = None,
    sort: str | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    workers: int = 8,
    from_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 30.0,
    max_retries: int = 8,
) -> CrawlReport:
    """Crawl model cards into the catalog at `catalog_path` (default: the user catalog).

    Args:
        tasks: pipeline tags to list (any of them); None lists every model.
        library: only models of this library (`transformers`, `timm`, ...).
        limit: stop after this many listed models.
        sort: `downloads`, `likes`, `last_modified`, `created_at`, `trending_score` (descending).
        endpoint: the Hub URL (default `HF_ENDPOINT`, else huggingface.co).
        token: passed to huggingface_hub (None: its token chain). Never stored or logged.
        workers: concurrent per-model fetches.
        from_dir: crawl a folder of Hub-layout repos instead of a Hub.
        progress: called after each model, see `ProgressFn`.

    Returns:
        A `CrawlReport` (new / updated / unchanged / failed with reasons).

    Raises:
        UserInputError: unknown task tag or bad option. CatalogError: unwritable catalog path.
        HubConnectionError: endpoint unreachable. AuthError: token rejected.
    """
    started = time.perf_counter()
    task_list = [tasks] if isinstance(tasks, str) else list(tasks or [])
    unknown = [t for t in task_list if t not in KNOWN_TASKS]
    if unknown:
        raise UserInputError(
            f"unknown task tag {unknown[0]!r}",
            hint="use a Hub pipeline tag such as image-classification or text-classification",
        )
    if workers < 1:
        raise UserInputError(f"--workers must be at least 1, got {workers}", hint="pass --workers 1 or more")
    if limit is not None and limit < 1:
        raise UserInputError(f"--limit must be at least 1, got {limit}", hint="pass a positive --limit")
    if sort is not None and sort not in SORT_KEYS:
        raise UserInputError(f"unknown sort key {sort!r}", hint=f"use one of {', '.join(sorted(SORT_KEYS))}")
    path = Path(catalog_path) if catalog_path is not None else _paths.default_catalog_path()
    file = _check_writable(path)
    report = CrawlReport(catalog=str(file))
    if from_dir is not None:
        source = Path(from_dir)
        if not source.is_dir():
            raise UserInputError(
                f"--from-dir {source} is not a folder", hint="pass a folder of Hub-layout model repos"
            )
        report.source = str(source)
        _crawl_dir(file, source, report, task_list, library, limit, progress)
    else:
        # huggingface_hub logs "Invalid model-index" for cards it cannot parse; the token says so
        # itself, as a warning on that model, so the line is not repeated on the terminal
        card_log = logging.getLogger("huggingface_hub.repocard_data")
        level = card_log.level
        card_log.setLevel(logging.ERROR)
        try:
            _crawl_hub(
                file,
                report,
                tasks=task_list,
                library=library,
                limit=limit,
                sort=sort,
                endpoint=endpoint,
                token=token,
                workers=workers,
                progress=progress,
                timeout=timeout,
                max_retries=max_retries,
            )
        finally:
            card_log.setLevel(level)
    report.seconds = time.perf_counter() - started
    logger.info("crawl of %s: %s", report.source, report.summary())
    return report


# --- the Hub ---------------------------------------------------------------------------------------
def _resolve_endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _listing(
    api, endpoint: str, retry: _Retrying, params: dict[str, Any], timeout: float
) -> Iterator[dict[str, Any]]:
    """Yield the raw JSON items of a model listing, page by page, each page retried on its own."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    session = get_session()
    headers = api._build_hf_headers()
    url: str | None = f"{endpoint}/api/models"
    query: dict[str, Any] | None = params
    first = True
    while url:

        def fetch(url=url, query=query):
            response = session.get(url, params=query, headers=headers, timeout=timeout)
            hf_raise_for_status(response)
            return response

        try:
            response = retry(fetch, "listing", connect_retries=2 if first else None)
        except Exception as exc:
            raise _hub_error(exc, endpoint) from None
        first = False
        yield from response.json()
        url, query = response.links.get("next", {}).get("url"), None


def _hub_error(exc: BaseException, endpoint: str) -> Exception:
    """A failed listing -> the user error it stands for (the token never goes into the message)."""
    return hub_error(exc, "the model listing", endpoint=endpoint, not_found=HubConnectionError)


def _crawl_hub(
    file: Path,
    report: CrawlReport,
    *,
    tasks: list[str],
    library: str | None,
    limit: int | None,
    sort: str | None,
    endpoint: str | None,
    token: str | bool | None,
    workers: int,
    progress: ProgressFn | None,
    timeout: float,
    max_retries: int,
) -> None:
    from huggingface_hub import HfApi

    endpoint = _resolve_endpoint(endpoint)
    report.source = endpoint
    api = HfApi(endpoint=endpoint, token=token)
    retry = _Retrying(max_retries)
    base: dict[str, Any] = {"expand": EXPAND}
    if library:
        base["filter"] = [library]
    if sort:
        base["sort"] = SORT_KEYS[sort]
        base["direction"] = -1
    if limit:
        base["limit"] = min(limit, 1000)
    listings = [{**base, "pipeline_tag": t} for t in tasks] or [base]

    def items() -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for params in listings:
            for item in _listing(api, endpoint, retry, params, timeout):
                model_id = item.get("id") or item.get("modelId")
                if not model_id or model_id in seen:
                    continue
                seen.add(model_id)
                yield item
                if limit and len(seen) >= limit:
                    return

    stream = items()
    first = next(stream, None)  # the first page decides endpoint/token errors, before the catalog is opened
    store = CatalogStore(file)  # opened only once the Hub answered: errors above leave it untouched
    try:
        store.set_meta("last_crawl_source", endpoint)
        known = store.known()
        fetcher = _Fetcher(api, endpoint, retry, timeout)
        _run(
            store,
            known,
            _chain(first, stream),
            fetcher.fetch,
            workers,
            report,
            progress,
            source=endpoint,
            stop=retry.stop,
        )
    finally:
        store.close()
    report.requests = retry.requests


def _chain(first: dict | None, rest: Iterator[dict]) -> Iterator[dict]:
    if first is not None:
        yield first
        yield from rest


def _run(
    store: CatalogStore,
    known: dict[str, tuple[str | None, str | None]],
    items: Iterator[dict[str, Any]],
    fetch: Callable[[dict[str, Any]], ModelToken],
    workers: int,
    report: CrawlReport,
    progress: ProgressFn | None,
    *,
    source: str = "",
    stop: threading.Event | None = None,
) -> None:
    """Decide new/updated/unchanged per listed item; fetch the changed ones on a bounded pool.

    Gives up (HubConnectionError) when `max(4, workers)` models in a row fail on connection
    errors: the endpoint went away, and retrying every remaining model would take hours.
    Committed models stay; the next run resumes.
    """
    pending: dict[cf.Future, tuple[str, str]] = {}
    done = 0
    lost_in_a_row = 0

    def note(event: str, model_id: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(event, model_id, done, None)

    def collect(block: bool) -> None:
        nonlocal lost_in_a_row
        if not pending:
            return
        finished, _ = cf.wait(list(pending), timeout=None if block else 0, return_when=cf.FIRST_COMPLETED)
        for future in finished:
            model_id, kind = pending.pop(future)
            try:
                token = future.result()
            except Exception as exc:
                reason = _reason(exc)
                report.failed[model_id] = reason
                store.record_failure(model_id, reason)
                logger.warning("failed %s: %s", model_id, reason)
                note("failed", model_id)
                lost_in_a_row = lost_in_a_row + 1 if reason.startswith("connection error") else 0
                if lost_in_a_row >= max(4, workers):
                    raise HubConnectionError(
                        f"lost the connection to {source or 'the Hub'} ({lost_in_a_row} models in a row failed)",
                        hint="check the endpoint and re-run: the crawl resumes where it stopped",
                    ) from None
                continue
            lost_in_a_row = 0
            store.upsert(token)
            (report.new if kind == "new" else report.updated).append(model_id)
            note(kind, model_id)

    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crawl")
    try:
        for item in items:
            report.listed += 1
            model_id = item.get("id") or item["modelId"]
            sha, last_modified = item.get("sha"), item.get("lastModified")
            previous = known.get(model_id)
            if previous is not None and (
                (sha is not None and previous[0] == sha)
                or (sha is None and last_modified and previous[1] == last_modified)
            ):
                store.update_stats(model_id, item.get("downloads"), item.get("likes"))
                report.unchanged.append(model_id)
                note("unchanged", model_id)
                continue
            kind = "new" if previous is None else "updated"
            pending[pool.submit(fetch, item)] = (model_id, kind)
            while len(pending) >= 2 * workers:
                collect(block=True)
            collect(block=False)
        while pending:
            collect(block=True)
    except BaseException:
        if stop is not None:
            stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _reason(exc: BaseException) -> str:
    status, _, connection = _classify(exc)
    if status in (401, 403):  # gated or private: say how in; these are never retried
        return f"HTTP {status} (gated or private: accept its terms on the Hub, then pass --token)"
    if status:
        return f"HTTP {status} after retries" if status in RETRY_STATUS else f"HTTP {status}"
    if connection:
        return "connection error after retries"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200]


class _Fetcher:
    """Per-model requests for a listed item that is new or changed."""

    def __init__(self, api, endpoint: str, retry: _Retrying, timeout: float):
        self.api = api
        self.endpoint = endpoint
        self.retry = retry
        self.timeout = timeout

    def _get_text(self, model_id: str, filename: str, revision: str | None) -> str:
        """One small repo file (config, card, module config) as text, pinned to the listed sha.

        A plain GET of the file's resolve URL (`hf_hub_url`) through huggingface_hub's session,
        headers and error mapping, rather than `hf_hub_download`: one request instead of HEAD +
        GET, nothing written to disk, a size cap, and our retry policy (which honours
        `Retry-After`; hf_hub_download's own retries ignore it and wait up to 30 s on a dead host).
        """
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import get_session, hf_raise_for_status

        url = hf_hub_url(model_id, filename, revision=revision, endpoint=self.endpoint)
        headers = self.api._build_hf_headers()

        def get() -> str:
            with get_session().get(url, headers=headers, timeout=self.timeout, stream=True) as response:
                hf_raise_for_status(response)
                body = response.raw.read(MAX_CONFIG_BYTES + 1, decode_content=True)
            if len(body) > MAX_CONFIG_BYTES:
                raise ValueError(f"{filename} is larger than {MAX_CONFIG_BYTES} bytes")
            return body.decode("utf-8", errors="replace")

        return self.retry(get, f"{model_id}/{filename}", connect_retries=3)

    def fetch(self, item: dict[str, Any]) -> ModelToken:
        from huggingface_hub import ModelInfo

        model_id = item.get("id") or item["modelId"]
        if item.get("sha") is None or item.get("siblings") is None:
            info = self.retry(
                lambda: self.api.model_info(model_id, expand=EXPAND, timeout=self.timeout),
                f"{model_id} info",
                connect_retries=3,
            )
        else:
            info = ModelInfo(**item)
        sha = info.sha
        siblings = {s.rfilename for s in info.siblings or []}
        read: list[str] = []
        config: dict[str, Any] | None = None
        listed_config = info.config if isinstance(info.config, dict) else {}
        if "config.json" in siblings and not any(k in listed_config for k in _DETAIL_KEYS):
            config = _parse_json(self._get_text(model_id, "config.json", sha))
            read.append("config.json")
        files: dict[str, Any] = {}
        if "modules.json" in siblings:
            for name in _ST_FILES:
                if name in siblings:
                    files[name] = self._get_text(model_id, name, sha)
                    read.append(name)
        card: str | None = None
        need_card = info.card_data is None or info.library_name == "timm" or "timm" in (info.tags or [])
        if not need_card:
            probe = tokenize(model_id, config=config, files=files or None, info=info)
            need_card = probe.num_parameters is None
        if "README.md" in siblings and need_card:
            card = self._get_text(model_id, "README.md", sha)
            read.append("README.md")
        token = tokenize(model_id, card=card, config=config, files=files or None, info=info)
        token.provenance = {"source": "hub", "endpoint": self.endpoint, "revision": sha, "files_read": read}
        return token


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # tokenize records the warning


# --- a folder of Hub-layout repos -----------------------------------------------------------------
def _repo_folders(root: Path) -> Iterator[tuple[str, Path, str | None]]:
    """(model id, folder, commit sha or None) of every repo under `root`.

    Layouts: Hub-layout repos (`root/models/org/name`, `root/org/name`, `root/name`, or `root` itself)
    and a Hugging Face cache (`root/models--org--name/snapshots/<sha>`, the sha of `refs/main`);
    both in one folder are read (cache entries were read alone).
    """
    cached = sorted(p for p in root.glob("models--*") if p.is_dir())
    for folder in cached:
        org, _, name = folder.name[len("models--") :].partition("--")
        ref = folder / "refs" / "main"
        sha = ref.read_text().strip() if ref.is_file() else None
        snaps = sorted((folder / "snapshots").glob("*")) if (folder / "snapshots").is_dir() else []
        snapshot = folder / "snapshots" / sha if sha and (folder / "snapshots" / sha).is_dir() else None
        snapshot = snapshot or (snaps[-1] if snaps else None)
        if snapshot is not None:
            yield (f"{org}/{name}" if name else org), snapshot, sha or snapshot.name
    base = root / "models" if (root / "models").is_dir() else root

    def is_repo(folder: Path) -> bool:
        return any((folder / n).is_file() for n in ("README.md", "config.json", "modules.json")) or any(
            folder.glob("*.onnx")
        )

    if is_repo(base) and not cached:
        yield base.name, base, None
        return
    hub_cache = re.compile(r"^(models|datasets|spaces)--")
    for first in sorted(
        p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".") and not hub_cache.match(p.name)
    ):
        if is_repo(first):
            yield first.name, first, None
            continue
        for second in sorted(p for p in first.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if is_repo(second):
                yield f"{first.name}/{second.name}", second, None


_HASHED_BYTES = 10_000_000  # bigger files (weights) enter the sha by name and size only


def _folder_item(model_id: str, folder: Path, sha: str | None = None) -> dict[str, Any]:
    """A listing-like item for a local repo; without a known commit, a sha from the content."""
    import datetime as dt

    digest = hashlib.sha1()
    names = []
    newest = 0.0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue
        names.append(rel)
        stat = path.stat()
        newest = max(newest, stat.st_mtime)
        if sha is None:
            data = path.read_bytes() if stat.st_size <= _HASHED_BYTES else b"size:%d" % stat.st_size
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            digest.update(f"{rel}\0{blob}\n".encode())
    return {
        "id": model_id,
        "sha": sha or digest.hexdigest(),
        "lastModified": dt.datetime.fromtimestamp(newest, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "siblings": names,
        "_folder": folder,
    }


def _safetensors_meta(
    folder: Path, names: list[str], warnings: list[str] | None = None
) -> dict[str, Any] | None:
    from hf_spider.models import read_safetensors_header

    params: dict[str, int] = {}
    for name in names:
        if name.endswith(".safetensors"):
            header = read_safetensors_header(folder / name)
            header = header if isinstance(header, dict) else None
            if header is None and warnings is not None:
                warnings.append(f"{name} has no readable safetensors header; its parameters are not counted")
            header = header or {}
            for key, tensor in header.items():
                if key != "__metadata__" and isinstance(tensor, dict):
                    count = 1
                    for dim in tensor.get("shape", []):
                        count *= int(dim)
                    params[tensor.get("dtype", "F32")] = params.get(tensor.get("dtype", "F32"), 0) + count
    return {"parameters": params, "total": sum(params.values())} if params else None


def _tokenize_folder(item: dict[str, Any]) -> ModelToken:
    folder: Path = item["_folder"]
    names: list[str] = item["siblings"]
    card = (
        (folder / "README.md").read_text(encoding="utf-8", errors="replace") if "README.md" in names else None
    )
    config = None
    if "config.json" in names and (folder / "config.json").stat().st_size <= MAX_CONFIG_BYTES:
        config = (folder / "config.json").read_text(encoding="utf-8", errors="replace")
    files: dict[str, Any] = dict.fromkeys(names)
    for name in _ST_FILES:
        if name in names:
            files[name] = (folder / name).read_text(encoding="utf-8", errors="replace")
    info = {"id": item["id"], "sha": item["sha"], "lastModified": item["lastModified"]}
    too_big = "config.json" in names and config is None
    unread = [f"config.json is over {MAX_CONFIG_BYTES / 1e6:g} MB; not read"] if too_big else []
    token = tokenize(
        item["id"],
        card=card,
        config=config,
        safetensors=_safetensors_meta(folder, names, unread),
        info=info,
        files=files,
    )
    # a config too big to read is there: not also "no config.json"
    token.warnings = [*unread, *[w for w in token.warnings if not (too_big and w == "no config.json")]]
    token.provenance = {"source": "folder", "revision": item["sha"]}
    return token


def _crawl_dir(file, root: Path, report, tasks, library, limit, progress) -> None:
    store = CatalogStore(file)
    try:
        store.set_meta("last_crawl_source", str(root))
        known = store.known()

        def items() -> Iterator[dict[str, Any]]:
            count = 0
            for model_id, folder, sha in _repo_folders(root):
                item = _folder_item(model_id, folder, sha)
                if tasks or library:
                    token = _tokenize_folder(item)
                    if (tasks and token.pipeline_tag not in tasks) or (library and token.library != library):
                        continue
                yield item
                count += 1
                if limit and count >= limit:
                    return

        _run(store, known, items(), _tokenize_folder, 1, report, progress)
    finally:
        store.close()
