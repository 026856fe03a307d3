"""Stage 2: candidates run over the task sample, estimator scores, and the one fusion with stage 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_spider.catalog import Catalog
from hf_spider.probe import ProbeResult, fuse, probe, rerank
from hf_spider.ranker import Ranker
from hf_spider.tasks._tiny import make_tiny_text_model
from hf_spider.tasks.task import Task
from hf_spider.testing import force_hub_offline

torch.set_num_threads(1)
BEANS = {"name": "beans", "modality": "image", "num_classes": 3, "num_examples": 1034}


@pytest.fixture(scope="module")
def shipped() -> Ranker:
    return Ranker.default()


def _text_task(n: int = 40) -> Task:
    rng = np.random.default_rng(0)
    words = {0: ["great", "lovely", "fine", "superb"], 1: ["awful", "bad", "dull", "broken"]}
    labels = np.repeat([0, 1], n // 2)
    inputs = [" ".join(rng.choice(words[int(y)], 4)) for y in labels]
    meta = {"num_classes": 2, "label_names": ["pos", "neg"], "num_examples": n}
    return Task(
        name="tiny-sentiment", modality="text", metadata=meta, inputs=inputs, labels=labels, fingerprint="t"
    )


def test_probe_runs_the_reachable_head_of_the_ranking(tmp_path, monkeypatch):
    force_hub_offline(monkeypatch)
    a = str(make_tiny_text_model(tmp_path / "a"))
    b = str(make_tiny_text_model(tmp_path / "b", kind="sentence-transformers", seed=1))
    c = str(make_tiny_text_model(tmp_path / "c", seed=2))
    pickle = str(make_tiny_text_model(tmp_path / "p", safetensors=False))
    ranking = [("org/not-here", 3.0), (pickle, 2.5), (a, 2.0), (b, 1.0), (c, 0.5)]
    result = probe(ranking, _text_task(), top_k=2, estimators=("logme", "reg_hscore"))
    assert result.offline and result.models == [a, b]  # the top 2 that could be run, in stage-1 order
    assert result.forward_passes == 2 and result.feature_dims == {a: 32, b: 32}
    assert set(result.scores[a]) == {"logme", "reg_hscore"}
    assert result.unreachable == ["org/not-here"]
    assert any("pickle" in n and pickle in n for n in result.notes)
    # the ranker reads the estimators under the metric names of its training records
    assert set(result.by_metric()) == {"logme", "reg_h_score"}


def test_probe_with_nothing_reachable_says_so(monkeypatch):
    force_hub_offline(monkeypatch)
    result = probe(["org/absent-1", "org/absent-2"], _text_task(), top_k=3)
    assert not result and result.unreachable == ["org/absent-1", "org/absent-2"]
    assert any("stage 1 only" in n for n in result.notes)


SST2 = {"name": "sst2", "modality": "text", "num_classes": 2, "num_examples": 67_349}


@pytest.mark.parametrize("task", [BEANS, SST2], ids=["image", "text"])
def test_one_fusion_reranks_the_probed_models_only(shipped, task):
    """Only the probed models are fused, with the stage-2 weight of the task's modality: text's
    shipped weight is 1 (LogME's order), image's 0 (stage 1's order: on fine-tuning records LogME
    ranks image models worse than stage 1; docs/ranker.md)."""
    catalog = Catalog.load("model_cards")
    tokens = [t for t in catalog if t.modality == task["modality"]][:40]
    stage1 = shipped.rank(tokens, task).stage1
    head = [m for m, _ in stage1[:5]]
    # the estimators say the 5th is by far the best
    result = ProbeResult(
        scores={m: {"logme": 10.0 if m == head[4] else -float(i)} for i, m in enumerate(head)}
    )
    fused = fuse(shipped, {t.model_id: t for t in tokens}, task, result)
    assert set(fused) == set(head)
    order = rerank(stage1, fused)
    assert set(order[:5]) == set(head) and order[5:] == [m for m, _ in stage1[5:]]
    weight = shipped.config.by_modality[task["modality"]]["stage2_weight"]
    assert weight == {"image": 0.0, "text": 1.0}[task["modality"]]
    if weight:
        assert order[0] == head[4]  # measured evidence moved it up
    else:
        assert order[:5] == head  # stage 1's order kept
    # the same call the ranker makes with estimator scores: one fusion, not two
    assert fused == shipped.score(
        [t for t in tokens if t.model_id in head],
        task,
        estimator_scores={"logme": {m: result.scores[m]["logme"] for m in head}},
    )
    assert fuse(shipped, {}, BEANS, ProbeResult()) == {}


def test_stage2_says_what_the_fusion_did(shipped):
    """The run's note and each probed row's provenance follow the ranker's stage-2 weight: image
    keeps stage 1's order (weight 0), text takes the estimators' (weight 1)."""
    from hf_spider.recommend._pipeline import _stage2_weight, stage2_note
    from hf_spider.recommend._report import transfer_provenance

    assert "keep their stage-1 order" in stage2_note(_stage2_weight(shipped, "image"), "image")
    assert "ordered by their estimator scores" in stage2_note(_stage2_weight(shipped, "text"), "text")
    # a ranker without a stage-2 weight
    assert "fused score" in stage2_note(_stage2_weight(object(), "text"), "text")
    row = {"transfer_source": "probe"}
    said = {
        w: transfer_provenance(row, {"protocol": {"estimators": ["logme"], "sample": 24, "stage2_weight": w}})
        for w in (0.0, 0.5, 1.0, None)
    }
    assert "the order stays stage 1's" in said[0.0] and "ordered by them" in said[1.0]
    assert (
        said[0.5]
        == said[None]
        == "measured: forward pass on a 24-example sample, logme, fused with the ranker score"
    )
