"""The prior of models without history (`hf_spider.ranker.cold`) and the out-of-distribution cards."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from hf_spider.catalog import Catalog, crawl
from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import cold as C
from hf_spider.ranker import inference as I
from hf_spider.ranker import training as T
from hf_spider.ranker.records import load_records
from hf_spider.ranker.tokens import record_tokens

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGE = REPO.parent / "shared" / "data" / "transfergraph" / "image"
OOD = REPO / "benchmarks" / "ood_cards"


@pytest.fixture(scope="module")
def image_population():
    """Percentiles and tokens of the shared image records (the real training population)."""
    if not SHARED_IMAGE.is_dir():
        pytest.skip("shared records not present")
    records = load_records([SHARED_IMAGE])
    tokens, _ = record_tokens(records.models)
    ok = records.perf[~records.perf["failed"] & records.perf["model"].isin(set(tokens))]
    pct = T.percentiles(ok.pivot_table(index="model", columns="dataset", values="accuracy"))
    return pct, tokens


def card(model_id: str, params: float, top1: float | None, *, family: str = "somenet", labels: int = 1000):
    """A card from another catalog: an author and family the training population does not have."""
    evals = [{"dataset": "ImageNet-1k", "metric": "accuracy", "value": top1}] if top1 is not None else []
    return ModelToken(
        model_id=model_id,
        modality="image",
        library="timm",
        family=family,
        model_type=family,
        num_parameters=int(params),
        num_labels=labels,
        eval_results=evals,
    )


def test_more_upstream_accuracy_never_lowers_the_cold_prior(image_population):
    pct, tokens = image_population
    facts = C.fit_facts_prior(pct, tokens, mix=1.0)
    assert (
        facts.coef["upstream"] >= 0 and facts.coef["log10_params"] >= 0 and facts.coef.get("narrow", 0) <= 0
    )
    prior = C.fit_cold_prior(pct, tokens, ridge=True, mix=1.0)
    for params in (3e6, 2.5e7, 9e7, 3e8):
        cards = [card(f"elsewhere/m-{a}", params, a) for a in np.linspace(0.55, 0.95, 17)]
        for model in (facts, prior):
            scores = model.predict(cards)
            assert np.all(np.diff(scores) >= -1e-12), (params, scores)
    # within the training range, upstream accuracy does move the score (it is not flat)
    low, high = facts.predict([card("elsewhere/a", 2.5e7, 0.75), card("elsewhere/b", 2.5e7, 0.85)])
    assert high > low


def test_the_upstream_accuracy_is_imagenet_1k_not_its_other_test_sets():
    """A card listing ImageNet ReaL / V2 beside ImageNet-1k: the upstream fact is the ImageNet-1k
    top-1 (ReaL's is always higher); ILSVRC2012 is ImageNet."""

    def token(*results):
        return ModelToken(
            model_id="o/m",
            eval_results=[{"dataset": d, "metric": "Top 1 Accuracy", "value": v} for d, v in results],
        )

    assert C.upstream_accuracy(
        token(("ImageNet-1k", 82.1), ("ImageNet-ReaL", 87.6), ("ImageNet-V2", 71.2))
    ) == pytest.approx(0.821)
    assert C.upstream_accuracy(token(("ILSVRC2012", 0.6976))) == pytest.approx(0.6976)
    for other in ("ImageNet-A", "imagenet_r", "ImageNet Sketch", "imagenet-c"):
        assert C.upstream_accuracy(token((other, 40.0))) is None, other


def test_far_cards_fall_back_to_the_order_of_their_parameter_counts(image_population):
    pct, tokens = image_population
    facts = C.fit_facts_prior(pct, tokens, mix=1.0)
    base = C.fit_facts_prior(pct, tokens, mix=0.0)  # parameters alone
    near = [card("elsewhere/small-good", 2.2e7, 0.88), card("elsewhere/big-poor", 3.0e7, 0.73)]
    assert facts.predict(near)[0] > facts.predict(near)[1]  # in range: upstream accuracy decides
    # upstream accuracies far below anything the training cards report are not extrapolated:
    # the parameter count decides
    far = [card("elsewhere/small-good", 2.2e7, 0.30), card("elsewhere/big-poor", 3.0e7, 0.05)]
    assert facts.predict(far)[1] > facts.predict(far)[0]
    # parameter counts far outside the training range: the parameters-only prior takes over
    huge = [card("elsewhere/huge-good", 2e11, 0.88), card("elsewhere/huger-poor", 6e11, 0.73)]
    assert list(facts.distance(near)) == [0.0, 0.0] and min(facts.distance(huge)) > 5.0
    assert facts.predict(huge) == pytest.approx(base.predict(huge), abs=1e-3)
    assert facts.predict(huge)[1] > facts.predict(huge)[0]


def test_the_card_ridge_serves_its_population_and_facts_the_rest(image_population):
    pct, tokens = image_population
    prior = C.fit_cold_prior(pct, tokens, ridge=True, mix=1.0)
    known = [tokens[m] for m in list(pct.index)[:20]]
    assert prior.support(known).mean() > 0.7
    stranger = card("nobody/x", 2.5e7, 0.8)
    assert prior.support([stranger])[0] == 0.0
    assert prior.predict([stranger]) == pytest.approx(prior.facts.predict([stranger]))
    # an architecture the population never had is not placed by generic words it shares with it
    # (an author many training models share, ImageNet pretraining): the ridge would extrapolate
    vit = next(t for t in known if t.model_type == "vit")
    org = next(w for w in prior.vocab if w.startswith("org="))
    data = next(w for w in prior.vocab if w.startswith("data="))
    generic = card(f"{org[4:]}/somenet-x", 2.5e7, 0.8)
    generic.datasets = [data[5:]]
    assert {org, data} <= set(prior.vocab) and prior.support([generic])[0] == 0.0
    assert prior.predict([generic]) == pytest.approx(prior.facts.predict([generic]))
    placed = card(f"{org[4:]}/vit-x", 2.5e7, 0.8, family="vit")
    placed.datasets = [data[5:]]
    assert prior.support([placed])[0] > 0.5 and prior.support([vit])[0] > 0.5
    again = C.card_prior_from_dict(json.loads(json.dumps(prior.to_dict())))
    assert again.predict([*known, stranger]) == pytest.approx(prior.predict([*known, stranger]), abs=1e-5)


def test_the_cold_prior_is_chosen_by_cross_validation_over_training_models(image_population):
    pct, tokens = image_population
    choice, means = C.select_cold_prior(pct, tokens)
    assert choice in C.COLD_CHOICES
    assert set(means) == {C.choice_label(c) for c in C.COLD_CHOICES} and len(means) == 12
    assert means[C.choice_label(choice)] == max(means.values())
    assert C.select_cold_prior(pct, tokens) == (choice, means)  # deterministic


def test_an_unfamiliar_cold_card_is_ranked_by_its_prior_alone():
    """The network's residual is kept in proportion to how familiar a cold card is."""
    from hf_spider.ranker import Ranker

    ranker = Ranker.default()
    task = {"name": "pets", "modality": "image", "num_classes": 37, "num_examples": 3680}
    cards = [card(f"elsewhere/net-{i}", 10 ** (6.5 + 0.3 * i), 0.70 + 0.02 * i) for i in range(6)]
    ctx = ranker.context(cards, task)
    assert ctx.cold_weight.max() < 0.5  # cards of an author and family the training data lacks
    ctx.cold_weight = None
    raw = I.score_context(ranker.model, ctx, use_features=False)
    gain = float(np.mean([float(m.prior_gain.detach()) for m in ranker.model.members]))
    prior = gain * ctx.summary[:, 0]
    for weight in (0.0, 0.5, 1.0):
        ctx.cold_weight = np.full(len(cards), weight)
        scores = I.score_context(ranker.model, ctx, use_features=False)
        assert scores == pytest.approx(prior + weight * (raw - prior), abs=1e-5)


def test_ood_cards_load_through_the_real_card_parser(tmp_path):
    from hf_spider.tasks import load_task

    crawl(tmp_path / "catalog", from_dir=OOD / "models")
    tokens = {t.model_id: t for t in Catalog.load(tmp_path / "catalog")}
    with open(OOD / "ground_truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(OOD / "ground_truth_extended.csv", newline="") as f:
        extended = list(csv.DictReader(f))
    models = {r["model"] for r in extended}
    targets = {r["target"] for r in extended}
    assert len({r["model"] for r in rows}) == 10 and len({r["target"] for r in rows}) == 8 and len(rows) == 80
    assert len(models) == 11 and len(targets) == 11 and len(extended) == 121  # the whole SFDA table
    # Model Spider's 10 x 8 is a part of the same table, number for number
    whole = {(r["target"], r["model"]): r["finetune_accuracy"] for r in extended}
    assert all(whole[(r["target"], r["model"])] == r["finetune_accuracy"] for r in rows)
    assert set(tokens) == models
    for model_id, token in tokens.items():
        meta = yaml.safe_load((OOD / "models" / model_id / "README.md").read_text().split("---")[1])
        top1 = meta["model-index"][0]["results"][0]["metrics"][0]["value"] / 100.0
        assert C.upstream_accuracy(token) == pytest.approx(top1)
        assert token.library == "timm" and token.modality == "image" and token.num_labels == 1000
        assert token.num_parameters_source == "card" and 3e6 < token.num_parameters < 7e7
        assert C.card_facts(token)["narrow"] == 0.0
    for target in targets:
        task = load_task(OOD / "targets" / target, sample=0, probe=False)
        assert task.modality == "image"
        assert task.metadata["num_classes"] >= 10 and task.metadata["num_examples"] >= 2000


def test_the_ood_check_runs_on_another_cards_set_and_refuses_a_malformed_one(tmp_path, capsys):
    """`python -m benchmarks.ood --cards DIR`: the same check on a set the project does not ship
    (here a subset: 5 models, 2 targets); a malformed set stops with one line naming what is missing."""
    import shutil

    import pandas as pd

    from benchmarks import ood

    other = tmp_path / "other"
    table = pd.read_csv(OOD / "ground_truth.csv")
    models = sorted(table["model"].unique())[:5]
    table = table[table["model"].isin(models) & table["target"].isin(["cifar10", "dtd"])].copy()
    dtd = table["target"] == "dtd"  # dtd's accuracies reversed: the two targets now disagree
    table.loc[dtd, "finetune_accuracy"] = table.loc[dtd, "finetune_accuracy"].to_numpy()[::-1]
    for m in models:
        shutil.copytree(OOD / "models" / m, other / "models" / m)
    for t in ("cifar10", "dtd"):
        shutil.copytree(OOD / "targets" / t, other / "targets" / t)
    table.to_csv(other / "ground_truth.csv", index=False)
    out = tmp_path / "r.json"
    assert ood.main(["--cards", str(other), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["targets"]) == {"cifar10", "dtd"} and result["benchmark"]["models"] == 5
    assert result["anchors_rank_none"] == {}  # the published anchors are for the project's set only
    assert set(result["mean"]) == set(ood.METHODS)
    for method in ood.METHODS:
        assert -1.0 <= result["mean"][method]["tau_w_rank_none"] <= 1.0
    # `history` ranks a target by the other targets' accuracies only: here cifar10 by dtd's
    from scipy.stats import weightedtau

    acc = table.pivot_table(index="model", columns="target", values="finetune_accuracy")
    expected = weightedtau(acc["cifar10"].to_numpy(), acc["dtd"].to_numpy(), rank=None).statistic
    assert result["targets"]["cifar10"]["history"]["tau_w_rank_none"] == pytest.approx(expected)
    assert expected < 0.5  # far from ranking cifar10 by its own accuracies (1.0)
    # `gmacs`: the compute each card states
    gmacs = [ood.stated_gmacs(other / "models" / m / "README.md") for m in acc.index]
    assert all(g is not None and g > 0 for g in gmacs)
    expected = weightedtau(acc["cifar10"].to_numpy(), np.log(gmacs), rank=None).statistic
    assert result["targets"]["cifar10"]["gmacs"]["tau_w_rank_none"] == pytest.approx(expected)
    # a card that states neither its compute nor its parameter count nor its ImageNet top-1: the
    # check still runs, that model at the median of the others in each card-fact row
    readme = other / "models" / models[0] / "README.md"
    drop = ("GMACs", "Params (M)", "value:")
    readme.write_text(
        "\n".join(ln for ln in readme.read_text().splitlines() if not any(k in ln for k in drop))
    )
    assert ood.stated_gmacs(readme) is None
    assert ood.main(["--cards", str(other), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["mean"]) == set(ood.METHODS)
    filled = np.log(gmacs)
    filled[list(acc.index).index(models[0])] = np.median(np.delete(filled, list(acc.index).index(models[0])))
    expected = weightedtau(acc["cifar10"].to_numpy(), filled, rank=None).statistic
    assert result["targets"]["cifar10"]["gmacs"]["tau_w_rank_none"] == pytest.approx(expected)
    shutil.rmtree(other / "targets" / "dtd")
    capsys.readouterr()
    for folder, needle in (
        (other, "no dataset card for target(s) ['dtd']"),
        (tmp_path / "nope", "not a folder"),
    ):
        assert ood.main(["--cards", str(folder)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def test_a_card_prior_too_small_to_check_places_no_cold_model(image_population):
    """Below 10 models with history `select_cold_prior` cannot cross-validate the card prior, so a
    model without history is placed at the median of the others instead of by its card; with the
    whole population it gets its card prior."""
    from hf_spider.ranker import priors as P

    pct, tokens = image_population
    models = [m for m in pct.index if m in tokens and pct.loc[m].notna().any()]
    cold_models = models[:3]
    for n_warm, placed in ((7, False), (len(models) - 3, True)):
        warm = pct.loc[models[3 : 3 + n_warm]]
        assert C.can_place(warm, tokens) is placed
        values = P.card_prior_for(warm, tokens, models[: 3 + n_warm])
        assert set(warm.index) <= set(values)  # the history's card mix keeps its card prior
        assert all((m in values) is placed for m in cold_models)

    task = {"name": "pets", "modality": "image", "num_classes": 37, "num_examples": 3680}
    warm = pct.loc[models[3:10]]
    history = P.history_from(warm, {t: {"name": t} for t in warm.columns})
    ctx = I.build_context(task, models[:10], tokens, history, card_prior={})
    known = ctx.summary[3:, 0]
    assert np.allclose(ctx.summary[:3, 0], np.median(known))
    assert np.ptp(known) > 0  # the median is of real, differing priors
    pv = P.prior_values(
        np.vstack([np.full((3, warm.shape[1]), np.nan), warm.to_numpy()]),
        np.ones(warm.shape[1]),
        np.full(10, np.nan),
        np.zeros(10),
        P.PriorChoice(),
    )
    assert np.allclose(pv[:3], np.median(pv[3:]))


def test_a_card_that_states_no_fact_sits_at_the_median_of_the_cards_placed(image_population):
    """A cold card with neither a parameter count nor an upstream accuracy gets no card prior: the
    facts prior would otherwise read it as the training population's centre (about 58M
    parameters) and rank it above every smaller model it is ranked with. It sits at the median of
    the models placed, by their history or their card, and the ranking says so
    (`RankResult.basis`). (It sat at the median of the models with history alone: beside one such
    model and many cards, at that one model's score, 3rd of 15 in a probe.)"""
    from hf_spider.ranker import Ranker

    pct, tokens = image_population
    facts = C.fit_facts_prior(pct, tokens)
    blank = ModelToken(model_id="elsewhere/blank", modality="image", library="timm", family="somenet")
    only_upstream = dataclasses.replace(card("elsewhere/top1", 1, 0.8), num_parameters=None)
    assert np.isnan(facts.predict([blank])[0])
    assert np.isfinite(facts.predict([card("elsewhere/net", 5e6, 0.7)])[0])
    reads_upstream = abs(facts.coef.get("upstream", 0.0)) > 0
    assert np.isfinite(facts.predict([only_upstream])[0]) == reads_upstream

    ranker = Ranker.default()
    task = {"name": "pets", "modality": "image", "num_classes": 37, "num_examples": 3680}
    small = [card(f"elsewhere/net-{i}", 10 ** (6.3 + 0.2 * i), 0.70 + 0.01 * i) for i in range(5)]
    ctx = ranker.context([*small, blank], task)
    prior = ctx.summary[:, 0]
    assert ctx.basis == ["card"] * 5 + ["none"]
    assert prior[-1] == pytest.approx(np.median(prior[:-1]), abs=1e-6)
    result = ranker.rank([*small, blank], task)
    assert result.basis["elsewhere/blank"] == "none"
    assert [m for m, _ in result.ranking].index("elsewhere/blank") == 2  # the middle of six
    # beside models with history, at the median of all placed
    warm = [m for m in ranker.history if m in tokens and tokens[m].modality == "image"][:4]
    assert len(warm) == 4
    ctx = ranker.context([tokens[m] for m in warm] + small + [blank], task)
    assert ctx.basis == ["history"] * 4 + ["card"] * 5 + ["none"]
    assert ctx.summary[-1, 0] == pytest.approx(np.median(ctx.summary[:9, 0]), abs=1e-6)
    ctx = ranker.context([tokens[warm[0]], *small, blank], task)  # one with history, five cards
    assert ctx.summary[-1, 0] == pytest.approx(np.median(ctx.summary[:6, 0]), abs=1e-6)
    assert ctx.summary[-1, 0] != pytest.approx(ctx.summary[0, 0], abs=1e-6)


def test_a_card_of_an_architecture_the_ranker_does_not_know_says_so(image_population):
    """`RankResult.basis`: a card placed without history is `card` where the card prior knows its
    architecture (a ViT under a new name: the ridge has support, the facts prior a family offset)
    and `card_facts` where it does not (a family nobody in the records has: only its parameter
    count and upstream accuracy place it); a model with history stays `history`."""
    from hf_spider.ranker import Ranker

    _, tokens = image_population
    ranker = Ranker.default()
    prior = ranker._card_priors.get("image") or C.card_prior_from_dict(ranker.card_prior["image"])
    vit = next(m for m in ranker.history if m in tokens and tokens[m].family == "vit")
    renamed = dataclasses.replace(tokens[vit], model_id="elsewhere/vit-renamed")
    strange = card("elsewhere/strangenet", 2e7, 0.76)
    assert C.knows_architecture(prior, [renamed, strange]).tolist() == [True, False]
    task = {"name": "pets", "modality": "image", "num_classes": 37, "num_examples": 3680}
    result = ranker.rank([tokens[vit], renamed, strange], task)
    assert result.basis == {
        vit: "history",
        "elsewhere/vit-renamed": "card",
        "elsewhere/strangenet": "card_facts",
    }
    assert C.knows_architecture(None, [strange]) is None


def test_ood_ground_truth_given_as_fractions_is_read_in_points(tmp_path):
    """Another cards set may give its accuracies as fractions: regret must still be in points."""
    from benchmarks import ood

    rows = "target,model,finetune_accuracy\ncars,a/x,0.9\ncars,a/y,0.85\n"
    (tmp_path / "ground_truth.csv").write_text(rows)
    assert ood.ground_truth(tmp_path) == {"cars": {"a/x": pytest.approx(90.0), "a/y": pytest.approx(85.0)}}
    (tmp_path / "ground_truth.csv").write_text(rows.replace("0.85", "85.0").replace("0.9", "90.0"))
    assert ood.ground_truth(tmp_path) == {"cars": {"a/x": 90.0, "a/y": 85.0}}
    # one target in fractions among targets in %: each is read on its own scale
    (tmp_path / "ground_truth.csv").write_text(rows + "dtd,a/x,70.0\ndtd,a/y,0.5\n")
    assert ood.ground_truth(tmp_path)["cars"] == {"a/x": pytest.approx(90.0), "a/y": pytest.approx(85.0)}
    assert ood.ground_truth(tmp_path)["dtd"] == {"a/x": 70.0, "a/y": 0.5}


def test_the_ood_check_refuses_a_pair_given_twice_and_says_what_it_could_not_read(tmp_path, capsys):
    """A (target, model) pair listed twice stops the check in one line (the last value used to win
    silently); an accuracy that is not a number, and what the crawl could not read on a card, are
    said; with a single target there is no other to have a history on (no NaN row)."""
    import shutil

    import pandas as pd

    from benchmarks import ood

    other = tmp_path / "other"
    table = pd.read_csv(OOD / "ground_truth.csv")
    models = sorted(table["model"].unique())[:4]
    table = table[table["model"].isin(models) & (table["target"] == "cifar10")].copy()
    for m in models:
        shutil.copytree(OOD / "models" / m, other / "models" / m)
    shutil.copytree(OOD / "targets" / "cifar10", other / "targets" / "cifar10")
    pd.concat([table, table.iloc[:1]]).to_csv(other / "ground_truth.csv", index=False)
    assert ood.main(["--cards", str(other)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "more than once" in line and models[0] in line
    table["finetune_accuracy"] = table["finetune_accuracy"].astype(object)
    table.iloc[3, table.columns.get_loc("finetune_accuracy")] = "about 90"
    table.to_csv(other / "ground_truth.csv", index=False)
    readme = other / "models" / models[1] / "README.md"
    readme.write_text("---\nlibrary_name: [timm\n---\n" + readme.read_text().split("---", 2)[2])
    out = tmp_path / "r.json"
    assert ood.main(["--cards", str(other), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 accuracy cell(s) not a number (e.g. 'about 90')" in err
    assert f"{models[1]}: card metadata is not valid YAML" in err
    result = json.loads(out.read_text())
    assert "history" not in result["mean"] and "spider" in result["mean"]


def test_ood_check_leaves_out_what_cannot_be_scored_and_stops_on_a_bad_target_card(tmp_path, capsys):
    """A blank accuracy is a pair not measured; a target whose models all tie has no order to
    recover (left out, said); a target card the product cannot read stops the check in one line."""
    import shutil

    import pandas as pd

    from benchmarks import ood

    other = tmp_path / "other"
    table = pd.read_csv(OOD / "ground_truth.csv")
    models = sorted(table["model"].unique())[:4]
    table = table[table["model"].isin(models) & table["target"].isin(["cifar10", "dtd", "pets"])].copy()
    table.loc[table["target"] == "pets", "finetune_accuracy"] = 90.0  # every model ties
    blank = (table["target"] == "dtd") & (table["model"] == models[0])
    table["finetune_accuracy"] = table["finetune_accuracy"].astype(object)
    table.loc[blank, "finetune_accuracy"] = ""
    for m in models:
        shutil.copytree(OOD / "models" / m, other / "models" / m)
    for t in ("cifar10", "dtd", "pets"):
        shutil.copytree(OOD / "targets" / t, other / "targets" / t)
    table.to_csv(other / "ground_truth.csv", index=False)
    assert models[0] not in ood.ground_truth(other)["dtd"] and len(ood.ground_truth(other)["dtd"]) == 3
    out = tmp_path / "r.json"
    assert ood.main(["--cards", str(other), "--json", str(out)]) == 0
    assert "pets: left out (every model has the same accuracy)" in capsys.readouterr().err
    text = out.read_text()
    result = json.loads(text)
    assert set(result["targets"]) == {"cifar10", "dtd"} and "pets" in result["left_out"]
    assert "NaN" not in text and all(np.isfinite(v["top1_regret"]) for v in result["mean"].values())
    # A card in Latin-1 is read (the crawl reads it; the GMACs line too).
    readme = other / "models" / models[1] / "README.md"
    readme.write_bytes(readme.read_bytes() + "\nEntraîné sur ImageNet.\n".encode("latin-1"))
    assert ood.main(["--cards", str(other), "--json", str(out)]) == 0
    # A card that says nothing of its task (no library, tags, pipeline_tag, model-index task nor config)
    # is left out by the ranker: one line naming it (was a KeyError traceback).
    readme = other / "models" / models[2] / "README.md"
    shutil.copytree(readme.parent, tmp_path / "kept")
    text = readme.read_text(encoding="latin-1")
    header, body = text.split("---", 2)[1:]
    keep = [
        ln
        for ln in header.splitlines()
        if not ln.startswith(("library_name", "tags", "- image-", "- timm", "pipeline_tag"))
        and "image-classification" not in ln
    ]
    readme.write_text("---" + "\n".join(keep) + "\n---" + body)
    (readme.parent / "config.json").unlink()  # timm's config says what it is too
    capsys.readouterr()
    assert ood.main(["--cards", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"left out {models[2]}" in err[0] and "pipeline_tag" in err[0], err
    shutil.rmtree(readme.parent)
    shutil.copytree(tmp_path / "kept", readme.parent)
    (other / "targets" / "dtd" / "README.md").write_text("")  # a card the product cannot read
    assert ood.main(["--cards", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "dtd" in err[0], err


def test_a_candidate_card_that_cannot_be_read_is_named_where_the_user_looks(tmp_path, capsys):
    """A card whose YAML is broken is still ranked, on what could be read; `recommend` says which
    and why, in its notes and on the terminal, instead of a silent change of place."""
    import shutil

    from hf_spider.cli import main
    from hf_spider.recommend import recommend

    models = tmp_path / "models"
    shutil.copytree(OOD / "models", models)
    readme = models / "timm" / "resnet50.tv_in1k" / "README.md"
    readme.write_text(readme.read_text().replace("library_name: timm", "library_name: [timm\n  - : :", 1))
    clean = recommend(OOD / "targets" / "pets", catalog=OOD / "models", stages=("rank",))
    assert not any("partly read" in n for n in clean.meta["notes"])
    recs = recommend(OOD / "targets" / "pets", catalog=models, stages=("rank",))
    said = [n for n in recs.meta["notes"] if "partly read" in n]
    assert len(said) == 1 and said[0].startswith("1 candidate card(s)") and "timm/resnet50.tv_in1k" in said[0]
    assert "not valid YAML" in said[0] and len(recs.ranking()) == 11
    capsys.readouterr()
    out = tmp_path / "out"
    code = main(
        [
            "recommend",
            str(OOD / "targets" / "pets"),
            "--catalog",
            str(models),
            "--stages",
            "rank",
            "--output-dir",
            str(out),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "partly read" in out
    # every card here is placed from its card alone (no fine-tuning record): said on the terminal
    assert "stage 1 scored 0 of 11" in out
    # a card that says nothing of its task (no library, tags, pipeline tag, model-index task nor
    # config) is left out of an image ranking: named in the notes, not silently gone
    card = models / "timm" / "googlenet.tv_in1k"
    card.mkdir()
    (card / "README.md").write_text("---\nlicense: bsd-3-clause\n---\n# GoogLeNet\n\n6.6M parameters.\n")
    recs = recommend(OOD / "targets" / "pets", catalog=models, stages=("rank",))
    said = [n for n in recs.meta["notes"] if "left out" in n]
    assert len(recs.ranking()) == 11 and len(said) == 1 and "timm/googlenet.tv_in1k" in said[0], said
    assert said[0] in recs.meta["notes_shown"] and "pipeline_tag" in said[0]


def test_eval_ranking_takes_the_catalogs_recommend_takes(tmp_path):
    """`eval ranking --catalog` reads a folder of model repos as `recommend --catalog` does; an
    empty catalog is refused by name, not as one that serves no image task."""
    from hf_spider.catalog._candidates import candidates_for
    from hf_spider.errors import CatalogError
    from hf_spider.ranker.cli import _catalog

    assert len(_catalog(str(OOD / "models"))) == 11
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="holds no model"):
        candidates_for(str(tmp_path / "empty"), modality="image")
    with pytest.raises(CatalogError, match="serves an image task"):
        candidates_for(Catalog([t for t in Catalog.load(None) if t.modality == "text"]), modality="image")


def test_bench_of_candidates_whose_weights_cannot_be_reached_says_so(tmp_path, capsys):
    """`--stages rank,bench` on a catalog of cards whose weights are nowhere (here: no network, no
    cache) used to end with every row "not among the top-5 benchmarked" and a report note saying
    they ranked "above the benchmarked ones" when none was; now each row says why and the terminal
    says what to do."""
    from hf_spider.cli import main

    out = tmp_path / "out"
    args = ["recommend", str(OOD / "targets" / "pets"), "--catalog", str(OOD / "models")]
    code = main([*args, "--stages", "rank,bench", "--output-dir", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "bench: no candidate was benchmarked" in printed and "--stages rank,probe" in printed
    saved = json.loads((out / "recommendations.json").read_text())
    tried = [r for r in saved["rows"] if r["stage"] == "bench"]
    assert len(tried) == 11 and all(r["device_reason"].startswith("weights not reached") for r in tried)
    assert saved["meta"]["notes_shown"][-1].startswith("bench: no candidate was benchmarked")
