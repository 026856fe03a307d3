"""Writing results back to the Hub: a recommendations dataset, and the Gradio Space.

Every write starts with `check_write_access`, which validates the repo id and the token before
anything is created, so a bad token or a bad id never leaves a half-made repo behind. Tokens come
from `token=` or huggingface_hub's chain (`HF_TOKEN`, the saved login) and are only ever sent
in the `Authorization` header.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_spider import _paths
from hf_spider._hub import check_repo_id, check_write_access, resolve_endpoint, unparsed_commit_reply
from hf_spider._hub import hub_api as _api
from hf_spider.errors import AuthError, HfSpiderError, HubConnectionError, UserInputError, hub_error

if TYPE_CHECKING:
    from hf_spider.recommend._results import Recommendations

logger = logging.getLogger("hf_spider.recommend")

TEMPLATES = Path(__file__).parent / "templates"
SPACE_APP_DIR = _paths.REPO_DIR / "space_app"
DATA_FILE = "data/train-00000-of-00001.parquet"
# files a recommendations dataset holds besides its data; `check_push_target` accepts a repo holding them
RESULT_FILES = ("README.md", "recommendations.json", "report.md", "pareto.png")


def _counts(recs: Recommendations) -> dict[str, int]:
    rows = recs.rows
    return {
        "measured": sum(r["device_status"] == "measured" for r in rows),
        "estimated": sum(r["device_status"] == "estimated" for r in rows),
        "skipped": sum(r["device_status"] == "skipped" for r in rows),
        "probe": sum(r["transfer_source"] == "probe" for r in rows),
        "rank": sum(r["transfer_source"] == "rank" for r in rows),
        # what the ranker's estimate of a row came from (`rank_basis`), over the estimated rows
        "history": sum(r["transfer_source"] == "rank" and r.get("rank_basis") == "history" for r in rows),
        "card": sum(
            r["transfer_source"] == "rank" and r.get("rank_basis") in ("card", "card_facts") for r in rows
        ),
        "none": sum(r["transfer_source"] == "rank" and r.get("rank_basis") == "none" for r in rows),
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


def check_push_target(repo_id: str, *, token: str | None, endpoint: str | None) -> str | None:
    """Refuse to push into an existing dataset that is not a recommendations dataset.

    Returns the repo's current commit sha, or None when it does not exist yet. A repo holding
    only `.gitattributes` (an empty repo) is accepted; anything else needs `recommendations.json`.
    """
    from huggingface_hub import get_token
    from huggingface_hub.errors import RepositoryNotFoundError

    api = _api(token or get_token(), endpoint)
    try:
        info = api.dataset_info(repo_id, files_metadata=False)
    except RepositoryNotFoundError:
        return None
    except OSError as exc:  # requests' errors are OSErrors, huggingface_hub's HTTP errors too
        raise hub_error(exc, f"dataset {repo_id}", endpoint=resolve_endpoint(endpoint)) from None
    files = {s.rfilename for s in info.siblings or []}
    if files - {".gitattributes"} and "recommendations.json" not in files:
        raise UserInputError(
            f"dataset {repo_id} already exists and is not an hf-spider recommendations dataset",
            hint="push to a new repo id; nothing was uploaded",
        )
    return info.sha


def _request_error(exc: BaseException) -> BaseException:
    """The failed request behind an upload error (a failed LFS upload is a RuntimeError raised
    from it)."""
    while exc.__cause__ is not None and not isinstance(exc, OSError):
        exc = exc.__cause__
    return exc


def _why(exc: BaseException) -> str:
    """A failed request in a few words: the HTTP status, or the kind of connection failure."""
    exc = _request_error(exc)
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code}"
    text = str(exc)
    for needle, words in (
        ("RemoteDisconnected", "connection dropped"),
        ("Connection aborted", "connection dropped"),
        ("Connection reset", "connection reset"),
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return words
    return type(exc).__name__


# A local path in a published string: absolute or in the home folder, not part of a URL or an id.
_LOCAL_PATH = re.compile(r"(?<![\w:/.~-])~?/[^\s'\"`,;()\[\]{}<>|*]+")


def public_text(text: str) -> str:
    """`text` with local paths replaced: a path in the repository by its repo-relative form,
    any other by its last part (a dataset folder by its name)."""

    def shown(match: re.Match) -> str:
        path = Path(os.path.expanduser(match.group(0)))
        try:
            return path.resolve().relative_to(_paths.REPO_DIR.resolve()).as_posix()
        except (ValueError, OSError):
            return path.name or match.group(0)

    return _LOCAL_PATH.sub(shown, text)


def _public(value: Any) -> Any:
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_public(v) for v in value]
    return value


def public_recommendations(recs: Recommendations) -> Recommendations:
    """What may be published of `recs`: the same rows and metadata, without local paths."""
    return type(recs)(rows=_public(recs.rows), meta=_public(recs.meta))


def _dataset_files(recs: Recommendations) -> dict[str, bytes]:
    """Every file of a recommendations dataset: parquet data, card, plot, JSON, report."""
    import matplotlib.pyplot as plt
    import pyarrow.parquet as pq
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    dataset = recs.to_dataset()
    data = io.BytesIO()
    pq.write_table(dataset.data.table, data)
    info = dataset.info.copy()
    info.splits = SplitDict()
    info.splits.add(SplitInfo(name="train", num_bytes=dataset.data.nbytes, num_examples=len(dataset)))
    info.download_size = data.getbuffer().nbytes
    info.dataset_size = dataset.data.nbytes
    card_data = DatasetCardData()
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    MetadataConfigs(
        {"default": {"data_files": [{"split": "train", "path": "data/train-*"}]}}
    ).to_dataset_card_data(card_data)

    plot = io.BytesIO()
    fig = recs.plot()
    fig.savefig(plot, format="png", bbox_inches="tight")
    plt.close(fig)
    return {
        DATA_FILE: data.getvalue(),
        "README.md": render_dataset_card(recs, card_data.to_dict()).encode(),
        "recommendations.json": recs.dumps().encode(),
        "report.md": recs.report(plot_path="pareto.png").encode(),
        "pareto.png": plot.getvalue(),
    }


def push_recommendations(
    recs: Recommendations,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> str:
    """See `Recommendations.push_to_hub`.

    One commit carries every file, so a reader sees the old dataset or the new one, never a mix.
    When that commit fails, a repo this call created is deleted again: nothing new is left visible.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, get_token

    check_write_access(repo_id, token=token, endpoint=endpoint)
    token = token or get_token()
    endpoint = resolve_endpoint(endpoint)
    api = _api(token, endpoint)
    parent = check_push_target(repo_id, token=token, endpoint=endpoint)

    # Everything that can fail locally is made before the first write; no local path is published.
    published = public_recommendations(recs)
    files = _dataset_files(published)
    message = commit_message or f"hf-spider recommendations for {published.meta.get('dataset')}"
    stale = []
    if parent is not None:
        existing = api.list_repo_files(repo_id, repo_type="dataset", revision=parent)
        # the shards the card's `data/train-*` pattern reads: older pushes' data, which would
        # otherwise be read beside the new one; anything else a user put there is theirs
        stale = [f for f in existing if f.startswith("data/train-") and f not in files]
    created = False
    try:
        if parent is None:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=False)
            created = True
        elif private:
            api.update_repo_settings(repo_id, repo_type="dataset", private=True)
        _commit(
            api,
            repo_id,
            repo_type="dataset",
            commit_message=message,
            operations=[
                *(CommitOperationAdd(path, content) for path, content in files.items()),
                *(CommitOperationDelete(path) for path in stale),
            ],
            parent_commit=parent,
        )
    # requests' errors and huggingface_hub's HTTP errors are OSErrors; a failed LFS upload is a
    # RuntimeError raised from one
    except (OSError, RuntimeError) as exc:
        undo = _undo(api, repo_id, "dataset", created)
        raise _failed(
            exc, f"push to {repo_id}", undo, "retry the push; the results are saved locally"
        ) from None
    url = f"{endpoint}/datasets/{repo_id}"
    logger.info("pushed %d rows to %s", len(recs), url)
    return url


def _commit(api, repo_id: str, **kwargs) -> None:
    """`api.create_commit`, tolerating huggingface_hub's reading of the reply on other endpoints
    (`_hub.unparsed_commit_reply`)."""
    try:
        api.create_commit(repo_id, **kwargs)
    except ValueError as exc:
        if not unparsed_commit_reply(exc, api.endpoint):
            raise
        logger.debug("commit to %s applied; its reply was not parsed: %s", repo_id, exc)


def _failed(exc: BaseException, what: str, undo: str, retry: str) -> HfSpiderError:
    """A failed upload in one line: what failed and why, what is left on the Hub, what to do. The
    kind of error and the advice come from `hub_error` (a refused token reads as an `AuthError` that
    asks for a write token); only a failure that retrying can mend says to retry."""
    err = hub_error(_request_error(exc), what)
    cls = type(err) if isinstance(err, AuthError) else HubConnectionError
    return cls(f"{what} failed ({_why(exc)}): {undo}", hint=err.hint if cls is AuthError else retry)


def _undo(api, repo_id: str, repo_type: str, created: bool) -> str:
    """After a failed commit: delete the repo this run created; say what is left on the Hub."""
    if not created:
        return "nothing was changed on the Hub"
    try:
        api.delete_repo(repo_id, repo_type=repo_type)
    except OSError as exc:
        logger.info("could not delete %s after a failed push: %s", repo_id, exc)
        return f"the empty repo it created is left on the Hub; delete {repo_id} there"
    return "the repo it created was deleted again, nothing is left on the Hub"


def load_recommendations(
    repo_id: str, *, token: str | None = None, endpoint: str | None = None, max_bytes: int | None = None
):
    """Read back a recommendations dataset: its `recommendations.json`, rows from its parquet
    (`Recommendations.from_hub` makes the object). With `max_bytes`, a dataset whose files are
    larger than that is refused before anything is downloaded (the Space's Browse tab)."""
    import pandas as pd
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    from hf_spider.errors import DatasetError

    check_repo_id(repo_id)
    api = _api(token, endpoint)
    not_ours = DatasetError(
        f"{repo_id!r} is not a recommendations dataset on {resolve_endpoint(endpoint)}",
        hint="push one with `hf-spider recommend DATASET --push-to-hub REPO`",
    )
    try:
        sizes = {
            entry.path: entry.size or 0
            for entry in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, token=token)
            if isinstance(entry, RepoFile)
        }
        if "recommendations.json" not in sizes:
            raise not_ours
        shards = sorted(f for f in sizes if f.startswith("data/") and f.endswith(".parquet"))
        total = sum(sizes[f] for f in ["recommendations.json", *shards])
        if max_bytes is not None and total > max_bytes:
            raise DatasetError(
                f"{repo_id!r} holds {total / 1e6:.3g} MB of recommendations, more than the "
                f"{max_bytes / 1e6:.3g} MB read here (max_bytes)",
                hint="read it on your machine with Recommendations.from_hub(repo_id), which takes any size",
            )
        meta_path = api.hf_hub_download(repo_id, "recommendations.json", repo_type="dataset", token=token)
        paths = [api.hf_hub_download(repo_id, f, repo_type="dataset", token=token) for f in shards]
    except RepositoryNotFoundError as exc:  # the Hub answers the same for a private repo
        raise DatasetError(
            f"dataset {repo_id!r} was not found on {resolve_endpoint(endpoint)} (or it is private)",
            hint="check the id; a private repo needs a token (token=, HF_TOKEN or `hf auth login`)",
        ) from exc
    except EntryNotFoundError as exc:
        raise not_ours from exc
    except OSError as exc:
        raise hub_error(exc, f"dataset {repo_id}", endpoint=resolve_endpoint(endpoint)) from None
    data = json.loads(Path(meta_path).read_text())
    if paths:
        df = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
        data["rows"] = [
            {k: (None if pd.isna(v) else v) for k, v in row.items()} for row in df.to_dict("records")
        ]
    return data


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
        # visitors log in with their own Hub account: their runs use their token, never the Space's
        "hf_oauth": True,
        "hf_oauth_scopes": ["read-repos"],
    }
    body = (
        f"# {title}\n\n"
        "Runs [hf-spider](https://github.com/hf-spider/hf-spider) recommendations for a dataset, a device\n"
        "target and constraints, and browses published recommendation datasets: ranked table, Pareto\n"
        "scatter (transfer score vs latency), filters.\n\n"
        "Your requests run with your own Hugging Face token: your Hub login, or a token you type in the\n"
        "page, used for that request only and never stored. The Space's own token is never used for\n"
        "them; without yours, only public datasets can be read. Datasets are Hub ids only: the Space\n"
        "does not read files from its own disk.\n"
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


def _check_space_target(api, repo_id: str, endpoint: str | None) -> bool:
    """Whether the Space exists; refuse one that is not an hf-spider Space (its app would be
    replaced). An empty Space (only `.gitattributes` / `README.md`) is accepted."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = api.space_info(repo_id)
    except RepositoryNotFoundError:
        return False
    except OSError as exc:
        raise hub_error(exc, f"Space {repo_id}", endpoint=resolve_endpoint(endpoint)) from None
    files = {s.rfilename for s in info.siblings or []}
    if files - {".gitattributes", "README.md"} and "hf_spider/__init__.py" not in files:
        raise UserInputError(
            f"Space {repo_id} already exists and is not an hf-spider Space (its app would be replaced)",
            hint="publish to a new Space id; nothing was uploaded",
        )
    return True


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
    if dataset_repo is not None:
        check_repo_id(dataset_repo, "dataset repo")
    files = _space_files(dataset_repo)
    name = repo_id.split("/")[-1]
    files["README.md"] = space_readme(
        title=name,
        datasets=datasets or ([dataset_repo] if dataset_repo else []),
        sdk_version=gradio.__version__,
        dataset_repo=dataset_repo,
    ).encode()
    api = _api(token, endpoint)
    exists = _check_space_target(api, repo_id, endpoint)
    created = False
    try:
        if not exists:
            api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private)
            created = True
        elif private:
            api.update_repo_settings(repo_id, repo_type="space", private=True)
        _commit(
            api,
            repo_id,
            repo_type="space",
            commit_message="hf-spider: publish the Space",
            operations=[CommitOperationAdd(path, content) for path, content in files.items()],
        )
    except (OSError, RuntimeError) as exc:
        undo = _undo(api, repo_id, "space", created)
        raise _failed(exc, f"publishing the Space {repo_id}", undo, "retry `hf-spider publish`") from None
    url = f"{resolve_endpoint(endpoint)}/spaces/{repo_id}"
    logger.info("published %d files to %s", len(files), url)
    return url
