"""The ranker's priors: class-weighted collaborative prior, card prior with card words, fast scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hf_spider.catalog import Catalog
from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import Ranker
from hf_spider.ranker import features as F
from hf_spider.ranker import inference as I
from hf_spider.ranker import priors as P
from hf_spider.ranker import selection as S
from hf_spider.ranker import training as T
from hf_spider.ranker.ranker import rank_catalog
from hf_spider.ranker.records import load_records


def test_aggregate_weighted_mean_and_median():
    values = np.array([0.0, 1.0, 0.5])
    assert F.aggregate(values, "mean") == pytest.approx(0.5)
    assert F.aggregate(values, "mean@classes", np.array([1.0, 3.0, 0.0])) == pytest.approx(0.75)
    assert F.aggregate(values, "median@classes", np.array([1.0, 1.0, 10.0])) == pytest.approx(0.5)
    assert F.aggregate(values, "median@classes", np.array([10.0, 1.0, 1.0])) == pytest.approx(0.0)
    # equal weights: the plain median (mean of the middle two for an even count)
    assert F.aggregate(np.array([0.1, 0.2, 0.3, 0.4]), "median", np.ones(4)) == pytest.approx(0.25)


def test_class_weight_falls_with_the_class_ratio():
    two, four, hundred = ({"num_classes": k} for k in (2, 4, 100))
    assert F.class_weight(two, two) == pytest.approx(1.0)
    assert F.class_weight(two, four) == pytest.approx(np.exp(-F.CLASS_KERNEL * np.log(2)), rel=1e-5)
    assert F.class_weight(two, hundred) < F.class_weight(two, four) < 1.0
    assert F.class_weight(two, {"name": "unknown classes"}) == pytest.approx(1.0)


def _bert_models(folder, count: int) -> list[str]:
    """`count` BERT-sized models `org/m<i>` written to a new records folder's model_config.csv."""
    folder.mkdir(parents=True)
    models = [f"org/m{i}" for i in range(count)]
    pd.DataFrame(
        {
            "model": models,
            "architectures": ["['BertForSequenceClassification']"] * count,
            "model_type": ["bert"] * count,
            "number_of_parameters": [1e8] * count,
        }
    ).to_csv(folder / "model_config.csv", index=False)
    return models


def _two_regime_records(folder):
    """Binary targets rank the models one way, 100-class targets the opposite way."""
    rng = np.random.default_rng(0)
    models = _bert_models(folder, 20)
    quality = np.linspace(-1, 1, len(models))
    rows, targets = [], []
    for t in range(6):
        classes = 2 if t % 2 == 0 else 100
        name = f"target_{t}"
        targets.append({"finetune_dataset": name, "size": 5000, "number_of_classes": classes})
        sign = 1.0 if classes == 2 else -1.0
        acc = 0.7 + 0.1 * sign * quality + 0.01 * rng.standard_normal(20)
        rows += [
            {"model": m, "finetuned_dataset": name, "eval_accuracy": a}
            for m, a in zip(models, acc, strict=True)
        ]
    pd.DataFrame(rows).to_csv(folder / "records.csv", index=False)
    pd.DataFrame(targets).to_csv(folder / "target_datasets.csv", index=False)
    return folder, models


def test_select_prior_picks_the_class_weighted_prior_when_class_counts_matter(tmp_path):
    folder, models = _two_regime_records(tmp_path / "text")
    recs = load_records([folder])
    choice, means = S.select_prior(recs, recs.dataset_names)
    prior = choice.aggregate
    assert prior.endswith("@classes") and choice.label == prior  # no tokens: no card, no name match
    assert means["cv"][prior] > means["cv"]["mean"] + 0.1 and means["nested"]["kept"]
    # the prior of a new binary task follows the binary targets' order
    pct = P.percentiles(recs.matrix("text"))
    metas = {t: recs.dataset_meta(t) for t in pct.columns}
    tokens = {m: ModelToken(model_id=m, modality="text") for m in models}
    task = {"name": "new", "modality": "text", "num_classes": 2, "num_examples": 5000}
    ctx = I.build_context(task, models, tokens, P.history_from(pct, metas), prior=prior)
    plain = I.build_context(task, models, tokens, P.history_from(pct, metas), prior="mean")
    assert ctx.summary[-1, 0] > ctx.summary[0, 0] + 0.2  # best on binary targets ranks first
    assert abs(plain.summary[-1, 0] - plain.summary[0, 0]) < 0.1  # the plain mean cancels out


def test_card_prior_learns_from_card_words_and_round_trips():
    tokens = {}
    rows = {}
    for i in range(24):
        org = "goodlab" if i % 2 else "badlab"
        mid = f"{org}/model-{i}"
        tokens[mid] = ModelToken(model_id=mid, modality="text", model_type="bert", num_parameters=10**8)
        rows[mid] = {"t1": 0.9 if org == "goodlab" else 0.1, "t2": 0.8 if org == "goodlab" else 0.2}
    pct = pd.DataFrame(rows).T
    fitted = T.fit_ridge_card_prior(pct, tokens)
    assert "org=goodlab" in fitted.vocab and "type=bert" in fitted.vocab
    new = {
        m: ModelToken(model_id=m, modality="text", model_type="bert", num_parameters=10**8)
        for m in ("goodlab/new", "badlab/new", "elsewhere/new")
    }
    prior = T.card_prior_of(fitted, list(new), new)
    assert prior["goodlab/new"] > prior["elsewhere/new"] + 0.1 > prior["badlab/new"] + 0.2
    again = T.CardPrior.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again.predict(new.values()) == pytest.approx(fitted.predict(new.values()), abs=1e-5)


def test_scoring_with_catalog_vectors_equals_scoring_from_tokens():
    ranker = Ranker.default()
    catalog = Catalog.load("model_cards")
    texts = [t for t in catalog if t.modality == "text"]
    cold = [
        ModelToken(model_id=f"someone/new-bert-{i}", modality="text", model_type="bert") for i in range(3)
    ]
    candidates = texts + cold
    task = {"name": "imdb", "modality": "text", "num_classes": 2, "num_examples": 25000}
    vectors = np.stack([t.vector() for t in candidates])
    assert ranker.score(candidates, task, vectors=vectors) == pytest.approx(ranker.score(candidates, task))
    with pytest.raises(ValueError, match="shape"):
        ranker.score(candidates, task, vectors=vectors[:-1])
    by_catalog = rank_catalog(catalog, task, ranker=ranker)
    by_tokens = ranker.rank(list(catalog), task).ranking
    assert [m for m, _ in by_catalog] == [m for m, _ in by_tokens]
    assert [s for _, s in by_catalog] == pytest.approx([s for _, s in by_tokens])


def test_records_keep_a_dataset_of_two_protocols_apart(tmp_path):
    """The same dataset fine-tuned in one folder and linear-probed in another becomes two datasets."""
    full, probe = tmp_path / "full" / "text", tmp_path / "probe" / "text"
    for folder, mode, acc in ((full, None, 0.9), (probe, "linear_probe", 0.6)):
        folder.mkdir(parents=True)
        rows = pd.DataFrame(
            {
                "model": [f"{folder.parent.name}/m{i}" for i in range(4)],
                "finetuned_dataset": "rotten_tomatoes",
            }
        )
        rows["eval_accuracy"] = [acc + 0.01 * i for i in range(4)]
        if mode:
            rows["mode"] = mode
        rows.to_csv(folder / "records.csv", index=False)
        pd.DataFrame([{"target_dataset": "rotten_tomatoes", "size": 10662, "number_of_classes": 2}]).to_csv(
            folder / "target_datasets.csv", index=False
        )
    recs = load_records([full, probe])
    assert set(recs.perf["dataset"]) == {"rotten_tomatoes", "rotten_tomatoes@linear_probe"}
    probed = recs.perf[recs.perf["dataset"] == "rotten_tomatoes@linear_probe"]
    assert set(probed["model"]) == {f"probe/m{i}" for i in range(4)}
    assert recs.dataset_meta("rotten_tomatoes@linear_probe")["num_classes"] == 2
    assert any("kept apart" in line for line in recs.report)
    # alone, a probe folder keeps its own names
    assert set(load_records([probe]).perf["dataset"]) == {"rotten_tomatoes"}


def test_fuse_mixes_ranks_not_scales():
    base = np.array([3.0, 2.0, 1.0, 0.0])
    consensus = np.array([-100.0, 0.0, 5.0, 1000.0])
    assert np.array_equal(I.fuse(base, consensus, 0.0), base)
    assert np.argsort(-I.fuse(base, consensus, 1.0)).tolist() == [3, 2, 1, 0]
    half = I.fuse(base, consensus, 0.5)
    assert np.allclose(half, half[0], atol=1e-5)  # opposite orders of equal weight cancel out
    assert np.argmax(half) == 3  # and the tie goes to the estimators (measured on the data)


@pytest.mark.parametrize("sign, expected", [(1.0, "high"), (-1.0, 0.0)])
def test_stage2_weight_follows_how_well_the_scores_predict(tmp_path, sign, expected):
    """Scores that order the models as their fine-tuning did get weight; reversed scores get none."""
    folder, _ = _two_regime_records(tmp_path / "text")
    recs = pd.read_csv(folder / "records.csv")
    # scores are the accuracy itself (or its negation)
    pd.DataFrame(
        {
            "model": recs["model"],
            "target_dataset": recs["finetuned_dataset"],
            "metric": "LogME",
            "score": sign * recs["eval_accuracy"],
        }
    ).to_csv(folder / "transferability_scores.csv", index=False)
    loaded = load_records([folder])
    weight, means = S.select_stage2_weight(loaded, loaded.dataset_names, P.PriorChoice("mean"))
    assert set(means) == set(S.STAGE2_WEIGHTS)
    if expected == "high":
        assert weight >= 0.75 and means[weight] > means[0.0] + 0.3
    else:
        assert weight == expected
    assert S.select_stage2_weight(
        load_records([_two_regime_records(tmp_path / "b")[0]]), loaded.dataset_names, P.PriorChoice()
    ) == (
        None,
        {},
    )


@pytest.mark.parametrize("sign, expected", [(1.0, 1.0), (-1.0, 0.0)])
def test_stage2_chooses_between_its_two_ends(tmp_path, sign, expected):
    """Stage 2 offers LogME alone (the floor) or stage 1 alone, nothing between: scores that order
    the models as their fine-tuning did keep the floor; reversed scores leave stage 1's order."""
    folder, _ = _two_regime_records(tmp_path / "text")
    recs = pd.read_csv(folder / "records.csv")
    scores = [
        pd.DataFrame(
            {
                "model": recs["model"],
                "target_dataset": recs["finetuned_dataset"],
                "metric": metric,
                "score": factor * sign * recs["eval_accuracy"],
            }
        )
        for metric, factor in (("LogME", 1.0), ("NCE", -1.0))  # LogME's opposite: never offered alone
    ]
    pd.concat(scores).to_csv(folder / "transferability_scores.csv", index=False)
    loaded = load_records([folder])
    weight, estimators, means = S.select_stage2(loaded, loaded.dataset_names, P.PriorChoice("mean"))
    assert set(means) == {("logme", 0.0), ("logme", 1.0)}
    assert (weight, estimators) == (expected, ["logme"])


def _scored_folder(
    folder,
    *,
    sign: float,
    mode: str | None,
    prefix: str,
    shared_order: bool,
    seed: int = 1,
    noise: float = 0.03,
    logme_noise: float = 0.0,
):
    """Six targets, LogME scores = sign * (accuracy + `logme_noise` * N(0, 1)); `shared_order`:
    every target keeps one quality order of the models (stage 1 ranks them well), else each its
    own, with `noise` * N(0, 1) on each accuracy; `mode`: the records' measuring protocol column
    (None: fine-tuning)."""
    rng = np.random.default_rng(seed)
    models = _bert_models(folder, 12)
    quality = np.linspace(-1, 1, len(models))
    rows, targets, scores = [], [], []
    for t in range(6):
        name = f"{prefix}_{t}"
        targets.append({"finetune_dataset": name, "size": 5000, "number_of_classes": 2})
        q = quality if shared_order else rng.permutation(quality)
        acc = 0.7 + 0.1 * q + noise * rng.standard_normal(len(models))
        estimate = acc + logme_noise * rng.standard_normal(len(models)) if logme_noise else acc
        for m, a, e in zip(models, acc, estimate, strict=True):
            rows.append(
                {
                    "model": m,
                    "finetuned_dataset": name,
                    "eval_accuracy": a,
                    **({"mode": mode} if mode else {}),
                }
            )
            scores.append({"model": m, "target_dataset": name, "metric": "LogME", "score": sign * e})
    pd.DataFrame(rows).to_csv(folder / "records.csv", index=False)
    pd.DataFrame(targets).to_csv(folder / "target_datasets.csv", index=False)
    pd.DataFrame(scores).to_csv(folder / "transferability_scores.csv", index=False)
    return folder


def test_stage2_is_chosen_on_fine_tuning_records_where_there_are_enough(tmp_path):
    """Linear-probe records (where LogME is the ground truth's own estimate) do not choose stage 2
    once 3 or more fine-tuned datasets have scores; with fewer, every scored dataset counts."""
    finetune = _scored_folder(tmp_path / "ft" / "text", sign=-1.0, mode=None, prefix="ft", shared_order=True)
    probe = _scored_folder(
        tmp_path / "lp" / "text", sign=1.0, mode="linear_probe", prefix="lp", shared_order=False
    )
    both = load_records([finetune, probe])
    assert {both.protocol_of(f"ft_{i}") for i in range(6)} == {"full_finetune"}
    assert {both.protocol_of(f"lp_{i}") for i in range(6)} == {"linear_probe"}
    # 6 fine-tuned scored datasets, where LogME is reversed: stage 1's order
    weight, _, means = S.select_stage2(both, both.dataset_names, P.PriorChoice("mean"))
    assert weight == 0.0 and means[("logme", 1.0)] < 0
    # 2 fine-tuned scored datasets only: every scored dataset counts, and the probes' LogME
    # (perfect there, where stage 1 cannot know each probe's own order) keeps the floor
    few = [*(f"ft_{i}" for i in range(2)), *(f"lp_{i}" for i in range(6))]
    weight, _, means = S.select_stage2(both, few, P.PriorChoice("mean"))
    assert weight == 1.0 and means[("logme", 1.0)] > means[("logme", 0.0)]


def test_the_task_own_records_never_enter_its_history():
    """A model's record on the very dataset being ranked (under any protocol suffix or spelling) is
    not history: ranking rotten tomatoes must not peek at rotten tomatoes results."""
    shipped = Ranker.default()
    datasets = {
        "rotten_tomatoes@linear_probe": {"name": "rotten_tomatoes@linear_probe", "modality": "text"},
        "imdb": {"name": "imdb", "modality": "text", "num_classes": 2},
    }
    ranker = Ranker(
        shipped.model,
        history={"a/m": {"rotten_tomatoes@linear_probe": 0.9, "imdb": 0.2}},
        datasets=datasets,
        card_prior=shipped.card_prior,
    )
    token = [ModelToken(model_id="a/m", modality="text")]
    for task in (
        {"name": "Rotten Tomatoes", "modality": "text"},
        {"name": "x", "dataset_id": "cornell-movie-review-data/rotten_tomatoes", "modality": "text"},
    ):
        ctx = ranker.context(token, task)
        assert (~ctx.hist_pad).sum() == 1 and ctx.hist[0, 0, 0] == pytest.approx(0.2 - 0.5)
    assert (~ranker.context(token, {"name": "sst2", "modality": "text"}).hist_pad).sum() == 2


def test_a_local_dataset_is_matched_to_its_records_by_folder_name(tmp_path):
    """A dataset card's pretty name differs from the folder name the records use; the task keeps
    where it was read from, so the ranker still recognises its own records."""
    from hf_spider.ranker.ranker import _same_dataset, task_meta
    from hf_spider.tasks import load_task

    folder = tmp_path / "rotten_tomatoes"
    folder.mkdir()
    pd.DataFrame({"text": [f"review {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}).to_csv(
        folder / "train.csv", index=False
    )
    (folder / "README.md").write_text("---\npretty_name: Rotten Tomatoes snippets\n---\n# card\n")
    task = load_task(folder, sample=0, probe=False)
    meta = task_meta(task)
    assert task.metadata["source"]["location"] == "rotten_tomatoes"
    assert str(tmp_path) not in json.dumps(task.metadata)  # no local directories above it
    assert _same_dataset("rotten_tomatoes@linear_probe", meta) and not _same_dataset("imdb", meta)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_stage2_weight_of_the_task_modality_is_used(weight):
    ranker = Ranker.default()
    ranker.model.config = {
        **ranker.model.config,
        "by_modality": {"image": {"stage2_weight": weight}},
        "stage2_weight": 0.5,
    }
    images = [t for t in Catalog.load("model_cards") if t.modality == "image"][:12]
    task = {"name": "beans", "modality": "image", "num_classes": 3, "num_examples": 1034}
    stage1 = ranker.score(images, task)
    logme = {t.model_id: float(i) for i, t in enumerate(images)}  # the last card is the best
    fused = ranker.score(images, task, estimator_scores={"logme": logme})
    order = sorted(fused, key=lambda m: -fused[m])
    if weight == 1.0:
        assert order == [t.model_id for t in reversed(images)]
    else:
        assert order == sorted(stage1, key=lambda m: -stage1[m])


def test_nested_choice_keeps_the_floor_when_the_best_option_was_only_lucky():
    """Six options, each great on one dataset and worse than the floor on the others: the best of
    them beats the floor in plain cross-validation (picking the max is optimistic), but chosen
    without a dataset it loses there, so the nested check keeps the floor."""
    floor = "floor"
    lucky = [f"lucky{k}" for k in range(6)]

    def score(i, h, option):
        if option == floor:
            return 0.5
        return 0.9 if option == f"lucky{i}" else 0.45

    chosen, info = S.nested_choice(score, 6, [floor, *lucky], floor, margin=0.005)
    assert info["best"] == "lucky0" and info["cv"] > info["floor_cv"]  # in-sample it looks better
    assert chosen == floor and info["kept"] is False and info["nested"] < info["floor"]

    def steady(i, h, option):
        return 0.5 if option == floor else 0.6

    chosen, info = S.nested_choice(steady, 6, [floor, "better"], floor, margin=0.005)
    assert chosen == "better" and info["kept"] is True


def test_stage2_is_chosen_for_candidates_without_history(tmp_path):
    """Stage 1 orders models with history well here and LogME only roughly; where most candidates
    have no history (`cold_share`), stage 1 can only place them at the others' median, and the
    estimator, which needs no history, is kept."""
    # LogME: right on the whole, noisy
    folder = _scored_folder(
        tmp_path / "text",
        sign=1.0,
        mode=None,
        prefix="t",
        shared_order=True,
        seed=3,
        noise=0.01,
        logme_noise=0.05,
    )
    loaded = load_records([folder])
    warm_weight, _, warm = S.select_stage2(loaded, loaded.dataset_names, P.PriorChoice("mean"))
    cold_weight, _, cold = S.select_stage2(
        loaded, loaded.dataset_names, P.PriorChoice("mean"), cold_share=0.75
    )
    assert warm_weight == 0.0 and cold_weight == 1.0
    assert cold[("logme", 0.0)] < warm[("logme", 0.0)] - 0.2  # stage 1 is worse without history
    assert cold[("logme", 1.0)] == pytest.approx(warm[("logme", 1.0)])  # LogME needs none


def test_a_prior_fold_places_hidden_models_as_stage_1_places_models_without_history():
    fold = S.PriorFold(
        "t",
        pd.Series([0.9, 0.8, 0.7, 0.6], index=list("abcd")),
        np.array([[0.9, 1.0], [0.6, 0.7], [0.3, 0.4], [0.0, 0.1]]),
        np.ones(2),
        np.array([0.9, np.nan, np.nan, np.nan]),  # only `a` has a card prior
        np.zeros(4),
        ("x", "y"),
    )
    hide = np.array([True, True, False, False])
    plain = fold.prior(P.PriorChoice("mean"))
    assert plain == pytest.approx([0.95, 0.65, 0.35, 0.05])
    # hidden: `a` by its card, `b` (no card) at the median of the models placed (a's card, c, d)
    assert fold.prior(P.PriorChoice("mean"), hide=hide) == pytest.approx([0.9, 0.35, 0.35, 0.05])
    fold.places_cold = False  # a card prior fitted on too few models places no model without history
    assert fold.prior(P.PriorChoice("mean"), hide=hide) == pytest.approx([0.2, 0.2, 0.35, 0.05])
    assert fold.prior(P.PriorChoice("mean"), "y", hide) == pytest.approx([0.15, 0.15, 0.3, 0.0])
