"""Writing results back to the Hub: a recommendations dataset, and the Gradio Space.

Every write starts with `check_write_access`, which validates the repo id and the token before
anything is created, so a bad token or a bad id never leaves a half-made repo behind. Tokens come
from `token=` or huggingface_hub's chain (`HF_TOKEN`, the saved login) and are only ever sent
in the `Authorization` header.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_spider import _paths
from hf_spider.errors import AuthError, HubConnectionError, UserInputError

if TYPE_CHECKING:
    from hf_spider.recommend._results import Recommendations

logger = logging.getLogger("hf_spider.recommend")

TEMPLATES = Path(__file__).parent / "templates"
SPACE_APP_DIR = _paths.REPO_DIR / "space_app"
_ENDPOINT_LOCK = threading.Lock()


def resolve_endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def _api(token: str | None, endpoint: str | None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=resolve_endpoint(endpoint), token=token, library_name="hf-spider")


def check_write_access(repo_id: str, *, token: str | None, endpoint: str | None) -> str:
    """Validate `repo_id` and the token (from `token=` or the usual chain) before any write.

    Returns the user name the token belongs to. Raises `UserInputError` for a malformed id,
    `AuthError` for a missing or rejected token, `HubConnectionError` when the endpoint is down.
    """
    import requests
    from huggingface_hub import get_token
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UserInputError(
            f"invalid repo id {repo_id!r}", hint="use 'namespace/name' with letters, digits, '-', '_', '.'"
        ) from exc
    token = token or get_token()
    if not token:
        raise AuthError(
            "no Hugging Face token found to write to the Hub",
            hint="pass --token, set HF_TOKEN, or run `hf auth login`",
        )
    try:
        who = _api(token, endpoint).whoami(token=token)
    except (HfHubHTTPError, requests.HTTPError) as exc:  # whoami re-raises a plain HTTPError
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise AuthError(
                "the Hub rejected the token",
                hint="check --token / HF_TOKEN (a write token is needed); nothing was uploaded",
            ) from exc
        raise HubConnectionError(f"the Hub answered {status} to whoami", hint="retry later") from exc
    except (requests.ConnectionError, requests.Timeout, OSError) as exc:
        raise HubConnectionError(
            f"cannot reach the Hub at {resolve_endpoint(endpoint)}",
            hint="check --endpoint / HF_ENDPOINT and the network",
        ) from exc
    return str(who.get("name", ""))


@contextlib.contextmanager
def _endpoint_of_record(endpoint: str):
    """For one write, make `endpoint` what `HF_ENDPOINT` would have made it at import time.

    huggingface_hub and `datasets` read `HF_ENDPOINT` once, at import: `datasets`' `push_to_hub`
    has no endpoint argument, and huggingface_hub parses the commit URLs a server returns against
    its import-time endpoint. Setting the same module values the variable sets keeps an explicit
    `endpoint=` (a mirror, the loopback test Hub) working end to end.
    """
    import datasets.config as dconfig
    from huggingface_hub import constants, file_download

    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    values = [
        (constants, "ENDPOINT", endpoint),
        (constants, "HUGGINGFACE_CO_URL_TEMPLATE", template),
        (file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template),
        (dconfig, "HF_ENDPOINT", endpoint),
        (dconfig, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"),
    ]
    with _ENDPOINT_LOCK:
        saved = [(module, name, getattr(module, name)) for module, name, _ in values]
        for module, name, value in values:
            setattr(module, name, value)
        try:
            yield
        finally:
            for module, name, value in saved:
                setattr(module, name, value)


def _counts(recs: Recommendations) -> dict[str, int]:
    rows = recs.rows
    return {
        "measured": sum(r["device_status"] == "measured" for r in rows),
        "estimated": sum(r["device_status"] == "estimated" for r in rows),
        "skipped": sum(r["device_status"] == "skipped" for r in rows),
        "probe": sum(r["transfer_source"] == "probe" for r in rows),
        "rank": sum(r["transfer_source"] == "rank" for r in rows),
    }


def render_dataset_card(recs: Recommendations, base_card_data: dict[str, Any] | None = None) -> str:
    """The dataset card: `datasets`' YAML (features, splits, configs) plus ours, from the Jinja template."""
    from huggingface_hub import DatasetCard, DatasetCardData

    meta = recs.meta
    data = dict(base_card_data or {})
    tags = list(dict.fromkeys([*(data.get("tags") or []), "hf-spider", "model-recommendation"]))
    data.update(tags=tags, pretty_name=f"hf-spider recommendations for {meta.get('dataset')}")
    body = recs.report(plot_path="pareto.png")
    body = body.split("## Ranked table", 1)[-1]
    target = meta.get("target") or {}
    card = DatasetCard.from_template(
        DatasetCardData(**data),
        template_path=str(TEMPLATES / "dataset_card.md.jinja"),
        dataset=meta.get("dataset"),
        target_name=target.get("description") or target.get("name") or "the target",
        best=recs.best,
        pick_reason=(meta.get("pick") or {}).get("reason"),
        task=meta.get("task") or {},
        catalog=meta.get("catalog") or {},
        protocol={"stages": [], **(meta.get("protocol") or {})},
        constraints={k: v for k, v in (meta.get("constraints") or {}).items() if v is not None},
        counts=_counts(recs),
        report_body="## Ranked table" + body,
    )
    return str(card)


def push_recommendations(
    recs: Recommendations,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> str:
    """See `Recommendations.push_to_hub`."""
    from huggingface_hub import CommitOperationAdd, DatasetCard, get_token

    check_write_access(repo_id, token=token, endpoint=endpoint)
    token = token or get_token()
    endpoint = resolve_endpoint(endpoint)
    api = _api(token, endpoint)

    # Everything that can fail locally is made before the first write.
    dataset = recs.to_dataset()
    plot = io.BytesIO()
    fig = recs.plot()
    fig.savefig(plot, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    payload = recs.dumps().encode()
    report = recs.report(plot_path="pareto.png").encode()

    message = commit_message or f"hf-spider recommendations for {recs.meta.get('dataset')}"
    with _endpoint_of_record(endpoint):
        dataset.push_to_hub(repo_id, private=private, token=token, commit_message=message)
        # `datasets` wrote a card with the features/splits YAML: keep that YAML, replace the body.
        card_path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", token=token)
        base = DatasetCard.load(card_path).data.to_dict()
        card = render_dataset_card(recs, base)
        api.create_commit(
            repo_id,
            repo_type="dataset",
            token=token,
            commit_message=f"{message}: card, plot and report",
            operations=[
                CommitOperationAdd("README.md", card.encode()),
                CommitOperationAdd("recommendations.json", payload),
                CommitOperationAdd("report.md", report),
                CommitOperationAdd("pareto.png", plot.getvalue()),
            ],
        )
    url = f"{endpoint}/datasets/{repo_id}"
    logger.info("pushed %d rows to %s", len(recs), url)
    return url


def load_recommendations(repo_id: str, *, token: str | None = None, endpoint: str | None = None):
    """Read back a recommendations dataset: rows from its parquet, metadata from `recommendations.json`."""
    import pandas as pd
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    from hf_spider.errors import DatasetError
    from hf_spider.recommend._results import Recommendations

    api = _api(token, endpoint)
    try:
        meta_path = api.hf_hub_download(repo_id, "recommendations.json", repo_type="dataset", token=token)
        files = api.list_repo_files(repo_id, repo_type="dataset", token=token)
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:
        raise DatasetError(
            f"{repo_id!r} is not a recommendations dataset on {resolve_endpoint(endpoint)}",
            hint="push one with `hf-spider recommend DATASET --push-to-hub REPO`",
        ) from exc
    data = json.loads(Path(meta_path).read_text())
    shards = sorted(f for f in files if f.startswith("data/") and f.endswith(".parquet"))
    if shards:
        frames = [
            pd.read_parquet(api.hf_hub_download(repo_id, f, repo_type="dataset", token=token)) for f in shards
        ]
        df = pd.concat(frames, ignore_index=True)
        data["rows"] = [
            {k: (None if pd.isna(v) else v) for k, v in row.items()} for row in df.to_dict("records")
        ]
    return Recommendations.from_json(data)


# ------------------------------------------------------------------ Space
def space_readme(
    *, title: str, datasets: list[str], sdk_version: str, dataset_repo: str | None = None
) -> str:
    """README.md of the Space: the YAML header the Hub needs to build a Gradio Space."""
    import yaml

    header = {
        "title": title,
        "emoji": "🕷️",
        "colorFrom": "indigo",
        "colorTo": "green",
        "sdk": "gradio",
        "sdk_version": sdk_version,
        "app_file": "app.py",
        "pinned": False,
        "license": "apache-2.0",
        "tags": ["hf-spider", "model-selection", "transfer-learning", "model-recommendation"],
        "datasets": datasets,
        "short_description": "Which pre-trained model to start from, on which hardware",
    }
    body = (
        f"# {title}\n\n"
        "Runs [hf-spider](https://github.com/hf-spider/hf-spider) recommendations for a dataset, a device\n"
        "target and constraints, and browses published recommendation datasets: ranked table, Pareto\n"
        "scatter (transfer score vs latency), filters.\n"
    )
    if dataset_repo:
        body += f"\nDefault recommendations shown: [`{dataset_repo}`](../../datasets/{dataset_repo}).\n"
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def _space_files(dataset_repo: str | None) -> dict[str, bytes]:
    """path in the Space -> content: the app, its requirements, and the hf_spider package it runs."""
    files: dict[str, bytes] = {}
    for path in sorted(SPACE_APP_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.name != "README.md":
            files[path.relative_to(SPACE_APP_DIR).as_posix()] = path.read_bytes()
    # The Space runs the same package: ship its source (the embedded catalog and the default ranker
    # weights included) rather than depend on a release.
    for root in (_paths.PACKAGE_DIR, _paths.EMBEDDED_CATALOG_DIR):
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(_paths.REPO_DIR)
            if (
                path.is_file()
                and "__pycache__" not in rel.parts
                and "testing" not in rel.parts
                and path.suffix not in (".pyc",)
            ):
                files[rel.as_posix()] = path.read_bytes()
    if dataset_repo:
        files["space_config.json"] = json.dumps({"recommendations_dataset": dataset_repo}).encode()
    return files


def publish_space(
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    dataset_repo: str | None = None,
    datasets: list[str] | None = None,
) -> str:
    """Create or update a Gradio Space running `space_app/` in one commit. Returns its URL.

    Args:
        dataset_repo: a recommendations dataset the Space shows by default.
        datasets: dataset ids for the README's `datasets:` field (defaults to `[dataset_repo]`).
    """
    import gradio
    from huggingface_hub import CommitOperationAdd, get_token

    check_write_access(repo_id, token=token, endpoint=endpoint)
    token = token or get_token()
    if not (SPACE_APP_DIR / "app.py").is_file():
        raise UserInputError(
            f"no Space app at {SPACE_APP_DIR}", hint="reinstall hf-spider from its repository"
        )
    files = _space_files(dataset_repo)
    name = repo_id.split("/")[-1]
    files["README.md"] = space_readme(
        title=name,
        datasets=datasets or ([dataset_repo] if dataset_repo else []),
        sdk_version=gradio.__version__,
        dataset_repo=dataset_repo,
    ).encode()
    api = _api(token, endpoint)
    with _endpoint_of_record(resolve_endpoint(endpoint)):
        api.create_repo(
            repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True, token=token
        )
        api.create_commit(
            repo_id,
            repo_type="space",
            token=token,
            commit_message="hf-spider: publish the Space",
            operations=[CommitOperationAdd(path, content) for path, content in files.items()],
        )
    url = f"{resolve_endpoint(endpoint)}/spaces/{repo_id}"
    logger.info("published %d files to %s", len(files), url)
    return url
