"""Recommendations to the Hub as a dataset (loopback Hub): parquet + card read back, re-push in
place, and a wrong token or bad id leaves nothing behind."""

from __future__ import annotations

import io

import pytest
import yaml
from conftest import HUB_TOKEN
from huggingface_hub import HfApi
from test_recommend_results import make_recs

from hf_spider.errors import AuthError, UserInputError
from hf_spider.recommend import Recommendations

TOKEN = HUB_TOKEN  # the `hub` fixture of conftest.py


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_push_creates_dataset_with_parquet_card_plot(hub, tmp_path):
    import pandas as pd

    recs = make_recs(estimated_model=2)
    url = recs.push_to_hub("me/rt-recs", token=TOKEN, endpoint=hub.url)
    assert url == f"{hub.url}/datasets/me/rt-recs"
    api = HfApi(endpoint=hub.url, token=TOKEN)
    files = sorted(api.list_repo_files("me/rt-recs", repo_type="dataset"))
    assert files == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "pareto.png",
        "recommendations.json",
        "report.md",
    ]
    parquet = api.hf_hub_download("me/rt-recs", files[1], repo_type="dataset", cache_dir=tmp_path / "c")
    df = pd.read_parquet(parquet)
    assert df["model_id"].tolist() == [r["model_id"] for r in recs.rows]
    assert df["device_status"].tolist() == [r["device_status"] for r in recs.rows]
    assert df["latency_p50_ms"].iloc[0] == pytest.approx(recs.rows[0]["latency_p50_ms"])

    card = (hub.repo_dir("datasets", "me/rt-recs") / "README.md").read_text()
    meta = _front_matter(card)
    assert "hf-spider" in meta["tags"]
    assert meta["dataset_info"]["splits"][0]["num_examples"] == len(recs)  # datasets' YAML is kept
    assert {f["name"] for f in meta["dataset_info"]["features"]} >= {"model_id", "latency_p50_ms"}
    assert meta["configs"][0]["data_files"][0]["path"].startswith("data/train-")
    # the card says what the task, catalog, protocol and measured/estimated split were
    assert "`rotten_tomatoes`" in card and "10 models from embedded" in card
    assert "top-k re-ranked with forward passes: 3" in card
    assert (
        "estimated by the ranker without a forward pass\n(0 from their fine-tuning history on other datasets, 1 from their\ncard alone"
        in card
    )
    rank_only = Recommendations(
        recs.rows, {**recs.meta, "protocol": {**recs.meta["protocol"], "stages": ["rank"]}}
    )
    from hf_spider.recommend._hub import render_dataset_card

    assert "top-k re-ranked with forward passes: none (stage 2 not run)" in render_dataset_card(rank_only)
    assert "Device figures: **4** rows measured on the target, **2**" in card
    assert "![Transfer score vs latency](pareto.png)" in card
    png = (hub.repo_dir("datasets", "me/rt-recs") / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    back = Recommendations.from_hub("me/rt-recs", token=TOKEN, endpoint=hub.url)
    assert back.rows == recs.rows and back.meta == recs.meta


def test_repush_updates_in_place(hub):
    recs = make_recs()
    recs.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
    first_sha = HfApi(endpoint=hub.url).dataset_info("me/recs").sha
    smaller = Recommendations(recs.rows[:3], {**recs.meta, "dataset": "rotten_tomatoes_v2"})
    smaller.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
    info = HfApi(endpoint=hub.url).dataset_info("me/recs")
    assert info.sha != first_sha
    assert hub.repo_ids("datasets") == ["me/recs"]
    back = Recommendations.from_hub("me/recs", endpoint=hub.url)
    assert len(back) == 3 and back.meta["dataset"] == "rotten_tomatoes_v2"
    files = HfApi(endpoint=hub.url).list_repo_files("me/recs", repo_type="dataset")
    assert sum(f.endswith(".parquet") for f in files) == 1
    assert "rotten_tomatoes_v2" in (hub.repo_dir("datasets", "me/recs") / "README.md").read_text()


def test_private_push(hub):
    make_recs().push_to_hub("me/private-recs", private=True, token=TOKEN, endpoint=hub.url)
    assert HfApi(endpoint=hub.url, token=TOKEN).dataset_info("me/private-recs").private is True
    with pytest.raises(Exception):  # noqa: B017 - hidden from anonymous readers
        HfApi(endpoint=hub.url).dataset_info("me/private-recs", token=False)


def test_token_from_the_usual_chain_and_never_written(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    make_recs().push_to_hub("me/env-token", endpoint=hub.url)
    assert hub.repo_ids("datasets") == ["me/env-token"]
    for path in hub.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("repo", "token", "error"),
    [("me/recs", "hf_wrong", AuthError), ("not a repo id!", TOKEN, UserInputError)],
)
def test_bad_token_or_id_leaves_nothing(hub, repo, token, error):
    with pytest.raises(error) as err:
        make_recs().push_to_hub(repo, token=token, endpoint=hub.url)
    assert "\n" not in err.value.one_line() and err.value.hint
    assert hub.repo_ids("datasets") == [] and hub.count("/api/repos/create") == 0


def test_missing_token_is_an_auth_error(hub, monkeypatch):
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(AuthError, match="no Hugging Face token"):
        make_recs().push_to_hub("me/recs", endpoint=hub.url)
    assert hub.repo_ids("datasets") == []


def test_plot_in_card_matches_results(hub):
    from PIL import Image

    recs = make_recs()
    recs.push_to_hub("me/plot", token=TOKEN, endpoint=hub.url)
    image = Image.open(io.BytesIO((hub.repo_dir("datasets", "me/plot") / "pareto.png").read_bytes()))
    assert image.size[0] > 400 and image.size[1] > 300


def test_a_repush_keeps_the_users_own_files_and_reads_are_explained(hub):
    """A re-push deleted every file under data/, a user's own too; from_hub of a private repo
    without a token said "not a recommendations dataset", of a malformed id raised huggingface_hub's
    HFValidationError."""
    from hf_spider.errors import DatasetError

    recs = make_recs()
    recs.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
    api = HfApi(endpoint=hub.url, token=TOKEN)
    from huggingface_hub import CommitOperationAdd

    from hf_spider.recommend._hub import _commit  # tolerates the reply's URL on another endpoint

    user_file = CommitOperationAdd("data/extra_eval.csv", b"x,y\n1,2\n")
    _commit(api, "me/recs", repo_type="dataset", operations=[user_file], commit_message="mine")
    recs.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
    assert "data/extra_eval.csv" in api.list_repo_files("me/recs", repo_type="dataset")
    Recommendations(recs.rows[:2], recs.meta).push_to_hub(
        "me/hidden", private=True, token=TOKEN, endpoint=hub.url
    )
    with pytest.raises(DatasetError, match="or it is private") as err:
        Recommendations.from_hub("me/hidden", endpoint=hub.url)
    assert "token" in err.value.hint
    with pytest.raises(UserInputError, match="invalid repo id"):
        Recommendations.from_hub("not a repo!", endpoint=hub.url)


def test_a_read_with_a_size_cap_refuses_a_large_dataset_before_downloading_it(hub):
    """The Space's Browse reads a visitor's dataset with `max_bytes`: sizes come from the repo's
    file listing, so a dataset too large is refused with no file downloaded."""
    from hf_spider.errors import DatasetError

    recs = make_recs()
    recs.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
    files = HfApi(endpoint=hub.url).list_repo_tree("me/recs", repo_type="dataset", recursive=True)
    size = sum(f.size for f in files if f.path == "recommendations.json" or f.path.endswith(".parquet"))
    assert len(Recommendations.from_hub("me/recs", endpoint=hub.url, max_bytes=size)) == len(recs)
    hub.reset_log()
    with pytest.raises(DatasetError, match="more than the") as err:
        Recommendations.from_hub("me/recs", endpoint=hub.url, max_bytes=size - 1)
    assert "Recommendations.from_hub" in err.value.hint
    assert hub.count("/resolve/") == 0
    # A repo without recommendations.json is still told apart from a missing one.
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("me/other", repo_type="dataset")
    with pytest.raises(DatasetError, match="not a recommendations dataset"):
        Recommendations.from_hub("me/other", endpoint=hub.url)


def test_a_bare_repo_name_is_refused_before_any_work(hub):
    """On the Hub a bare name lands under the token's user, where cleanup and messages would miss it."""
    with pytest.raises(UserInputError, match="invalid repo id 'noslash'"):
        make_recs().push_to_hub("noslash", token=TOKEN, endpoint=hub.url)
    assert hub.repo_ids("datasets") == []
