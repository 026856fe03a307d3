"""Model tokens, the tokenizer, the catalog store and the embedded catalog."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from hf_spider import _paths
from hf_spider.catalog import TOKEN_DIM, VECTOR_FIELDS, Catalog, CatalogStore, ModelToken, tokenize
from hf_spider.catalog._token import SCHEMA_VERSION
from hf_spider.catalog.embedded import build_embedded_catalog, default_data_dir
from hf_spider.errors import CatalogError

BERT_BASE = {
    "model_type": "bert",
    "architectures": ["BertForSequenceClassification"],
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
}
TIMM_CARD = """---
tags: [image-classification, timm]
library_name: timm
license: apache-2.0
datasets: [imagenet-1k]
---
# Model card for resnet50.a1_in1k
- **Model Type:** Image classification / feature backbone
- **Model Stats:**
  - Params (M): 25.6
  - GMACs: 4.1
  - Image size: train = 224 x 224, test = 288 x 288
- **Dataset:** ImageNet-1k
"""
TIMM_CONFIG = {
    "architecture": "resnet50",
    "num_classes": 1000,
    "num_features": 2048,
    "pretrained_cfg": {"tag": "a1_in1k", "input_size": [3, 224, 224], "num_classes": 1000},
}


def _v(token: ModelToken, name: str) -> float:
    return float(token.vector()[VECTOR_FIELDS.index(name)])


# --- the token ---------------------------------------------------------------------------------
def test_vector_layout_is_fixed_and_missing_values_are_flagged():
    assert len(VECTOR_FIELDS) == TOKEN_DIM == len(set(VECTOR_FIELDS))
    empty = ModelToken("org/empty")
    vec = empty.vector()
    assert vec.shape == (TOKEN_DIM,) and vec.dtype == np.float32
    for flag in (
        "params_missing",
        "feature_dim_missing",
        "downloads_missing",
        "family=missing",
        "library=missing",
    ):
        assert _v(empty, flag) == 1.0
    full = ModelToken(
        "org/full",
        num_parameters=10**8,
        feature_dim=768,
        downloads=0,
        family="vit",
        library="timm",
        datasets=["imagenet-21k"],
        eval_results=[{"dataset": "imagenet-1k", "metric": "top1", "value": 81.2}],
    )
    assert _v(full, "log10_params") == pytest.approx(8.0)
    assert _v(full, "params_missing") == 0.0
    assert _v(full, "log2_feature_dim") == pytest.approx(math.log2(768))
    assert _v(full, "downloads_missing") == 0.0  # zero downloads is a value, not a missing one
    assert _v(full, "family=vit") == 1.0 and _v(full, "library=timm") == 1.0
    assert _v(full, "dataset=imagenet-21k") == 1.0 and _v(full, "dataset=imagenet-1k") == 0.0
    assert _v(full, "best_eval_accuracy") == pytest.approx(0.812)
    assert _v(ModelToken("o/x", family="some-new-family"), "family=other") == 1.0


def test_token_json_round_trip():
    token = tokenize("org/bert", config=BERT_BASE, card="---\nlicense: mit\nlanguage: [en, fr]\n---\n")
    again = ModelToken.from_dict(json.loads(json.dumps(token.to_dict())))
    assert again == token
    np.testing.assert_array_equal(again.vector(), token.vector())


# --- the tokenizer -----------------------------------------------------------------------------
def test_tokenize_transformers_config_gives_exact_parameter_count():
    token = tokenize("org/bert", config=BERT_BASE)
    # 109,483,778 is what TransferGraph's table records for a BERT-base sequence classifier.
    assert token.num_parameters == 109_483_778 and token.num_parameters_source == "config"
    assert (token.library, token.family, token.model_type) == ("transformers", "bert", "bert")
    assert (token.feature_dim, token.num_labels, token.max_seq_len) == (768, 2, 512)
    assert token.pipeline_tag == "text-classification" and token.modality == "text"


def test_safetensors_count_wins_over_config_and_card():
    token = tokenize(
        "org/bert",
        config=BERT_BASE,
        safetensors={"parameters": {"F32": 1000, "F16": 234}, "total": 1234},
        card="---\nlicense: mit\n---\nThis model has 110M parameters.",
    )
    assert token.num_parameters == 1234 and token.num_parameters_source == "safetensors"


def test_tokenize_timm_reads_config_and_stats_table():
    token = tokenize("timm/resnet50.a1_in1k", card=TIMM_CARD, config=TIMM_CONFIG)
    assert token.library == "timm" and token.family == "resnet"
    assert token.architecture == "resnet50.a1_in1k"
    assert token.num_parameters == 25_600_000 and token.num_parameters_source == "card"
    assert (token.feature_dim, token.num_labels, token.input_size) == (2048, 1000, 224)
    assert "imagenet-1k" in token.dataset_groups()
    assert token.modality == "image" and token.license == "apache-2.0"


def test_tokenize_sentence_transformers_reads_pooling_width():
    files = {
        "modules.json": json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        ),
        "1_Pooling/config.json": json.dumps(
            {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}
        ),
        "sentence_bert_config.json": json.dumps({"max_seq_length": 256}),
        "model.safetensors": None,
    }
    config = {**BERT_BASE, "architectures": ["BertModel"], "hidden_size": 384}
    token = tokenize("sentence-transformers/all-MiniLM-L6-v2", config=config, files=files)
    assert token.library == "sentence-transformers"
    assert token.pipeline_tag == "sentence-similarity"
    assert (token.feature_dim, token.max_seq_len) == (384, 256)
    assert _v(token, "has_safetensors") == 1.0


def test_tokenize_onnx_repo_without_config():
    token = tokenize(
        "org/nsfw-onnx",
        card="---\nlicense: bsd-2-clause\ntags: [onnx]\npipeline_tag: image-classification\n---\n5.9M params",
        files=["model.onnx", "README.md"],
    )
    assert token.library == "onnx" and token.modality == "image"
    assert token.num_parameters == 5_900_000
    assert _v(token, "has_onnx") == 1.0
    assert any("config" in w for w in token.warnings)


def test_malformed_metadata_keeps_what_parsed_and_warns():
    token = tokenize("org/broken", card="---\nlicense: [mit\ntags: {x\n---\nbody", config=BERT_BASE)
    assert any("YAML" in w for w in token.warnings)
    assert token.num_parameters == 109_483_778 and token.family == "bert"
    token = tokenize("org/badjson", config="{not json", card="---\nlicense: mit\n---\n")
    assert token.license == "mit" and any("JSON" in w for w in token.warnings)
    token = tokenize("org/badindex", card={"model-index": "nonsense", "license": 3})
    assert token.eval_results == []


def test_eval_results_from_model_index():
    card = {
        "model-index": [
            {
                "name": "m",
                "results": [
                    {
                        "task": {"type": "text-classification"},
                        "dataset": {"name": "imdb", "type": "imdb"},
                        "metrics": [{"type": "accuracy", "value": 0.93}, {"type": "f1", "value": "91.0"}],
                    }
                ],
            }
        ]
    }
    token = tokenize("org/m", card=card)
    assert token.eval_results == [
        {"dataset": "imdb", "metric": "accuracy", "value": 0.93},
        {"dataset": "imdb", "metric": "f1", "value": 91.0},
    ]
    assert token.best_eval_accuracy() == pytest.approx(0.93)


def test_a_top5_accuracy_beside_top1_is_not_the_upstream_accuracy():
    """Cards often report ImageNet top-5 beside top-1, as the metric's type ("Top 5 Accuracy",
    papers-with-code style) or as its name under type `accuracy` (the Hub's style): the card's
    accuracy (what `upstream` and the cold prior read) is the top-1, not the higher top-5."""
    from hf_spider.ranker.cold import upstream_accuracy

    def card(*metrics):
        return {
            "model-index": [
                {
                    "name": "m",
                    "results": [
                        {"dataset": {"name": "ImageNet-1k", "type": "imagenet-1k"}, "metrics": list(metrics)}
                    ],
                }
            ]
        }

    pwc = tokenize(
        "org/pwc",
        card=card(
            {"type": "Top 1 Accuracy", "value": "76.13%"}, {"type": "Top 5 Accuracy", "value": "92.86%"}
        ),
    )
    hub = tokenize(
        "org/hub",
        card=card(
            {"type": "accuracy", "name": "Top 5 Accuracy", "value": 92.86},
            {"type": "accuracy", "name": "Top 1 Accuracy", "value": 76.13},
        ),
    )
    short = tokenize(
        "org/short", card=card({"type": "acc@1", "value": 0.7613}, {"type": "acc@5", "value": 0.9286})
    )
    for token in (pwc, hub, short):
        assert token.best_eval_accuracy() == pytest.approx(0.7613), token.eval_results
        assert upstream_accuracy(token) == pytest.approx(0.7613)
    assert hub.eval_results[0] == {
        "dataset": "ImageNet-1k",
        "metric": "accuracy",
        "name": "Top 5 Accuracy",
        "value": 92.86,
    }
    # A card with only a top-5 figure states no accuracy; a plain accuracy of 2023 stays one.
    assert tokenize("org/t5", card=card({"type": "top-5", "value": 0.93})).best_eval_accuracy() is None
    assert tokenize("org/y", card=card({"type": "accuracy_2023", "value": 0.8})).best_eval_accuracy() == 0.8


@pytest.mark.parametrize(
    "body, count",
    [
        ("- **Model Stats:**\n  - Params (M): 25.6\n", 25_600_000),  # timm
        ("| Params (M) | 8.0 |", 8_000_000),
        ("Parameters: 25.6M", 25_600_000),
        ("**Parameters:** 25.6 M", 25_600_000),
        ("| # Params | 25,557,032 |", 25_557_032),
        ("Number of parameters: 1.2 billion", 1_200_000_000),
        ("This model has 110M parameters.", 110_000_000),
        ("a 25.6 million params backbone", 25_600_000),
        ("It has 25,557,032 trainable parameters", 25_557_032),
        ("- Parameters (M): 3.5", 3_500_000),
        ("A 5.3M-parameter image classifier", 5_300_000),
        # not a model's size
        ("Params: 25.6", None),
        ("we tuned 3 parameters of the optimizer", None),
        ("Training parameters: 5k steps", None),
        ("hyperparameters: lr 0.1, 90000 steps", None),
        ("The parameters of the model were trained for 90 epochs", None),
    ],
)
def test_the_parameter_count_a_card_states(body, count):
    """A card without safetensors metadata or a config the tokenizer can count states its size
    in many forms; each is read, and what only looks like one is not."""
    token = tokenize("org/m", card=f"---\nlicense: mit\n---\n# m\n\n{body}\n")
    assert token.num_parameters == count
    assert (token.num_parameters_source == "card") == (count is not None)


RESNET50_CONFIG = {
    "model_type": "resnet",
    "architectures": ["ResNetForImageClassification"],
    "depths": [3, 4, 6, 3],
    "hidden_sizes": [256, 512, 1024, 2048],
    "embedding_size": 64,
    "layer_type": "bottleneck",
    "num_channels": 3,
    "id2label": {str(i): f"class {i}" for i in range(1000)},
}


def test_a_config_without_a_formula_is_counted_by_building_it_on_the_meta_device():
    """ResNet, ConvNeXt, Swin, ... configs have no closed formula here: a card with such a config
    and no weights is counted by instantiating the config (transformers' own classes, on the meta
    device, never remote code) — torchvision's ResNet-50 has 25,557,032 parameters."""
    token = tokenize(
        "microsoft/resnet-50", card="---\nlibrary_name: transformers\n---\n", config=RESNET50_CONFIG
    )
    assert token.num_parameters == 25_557_032 and token.num_parameters_source == "config"
    assert not any("parameters unknown" in w for w in token.warnings)
    deep = {**RESNET50_CONFIG, "depths": [3, 4, 600, 3]}  # too deep to build for a count
    assert tokenize("o/deep", config=deep).num_parameters is None
    remote = {"model_type": "mystery-net", "auto_map": {"AutoModel": "modeling.Mystery"}}
    token = tokenize("o/remote", config=remote)
    assert token.num_parameters is None and any("parameters unknown" in w for w in token.warnings)
    # the card's own figure is never the implausible one a typo makes
    typo = tokenize("o/typo", card="---\nlibrary_name: timm\n---\n- Params (M): 25600000\n")
    assert typo.num_parameters is None and any("implausible" in w for w in typo.warnings)


def test_a_masked_lm_config_is_counted_with_its_language_model_head():
    """A config without a formula whose architecture is *ForMaskedLM is built with that head (the
    one counter the cost model also uses): the count is what the checkpoint holds, here checked
    against the same tiny model built for real."""
    import transformers

    config = {
        "model_type": "convbert",
        "architectures": ["ConvBertForMaskedLM"],
        "vocab_size": 1000,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "embedding_size": 64,
    }
    token = tokenize("o/tiny-convbert", config=config)
    built = transformers.ConvBertForMaskedLM(transformers.ConvBertConfig(**config))
    base = transformers.ConvBertModel(transformers.ConvBertConfig(**config))
    assert token.num_parameters == sum(p.numel() for p in built.parameters())
    assert token.num_parameters > sum(p.numel() for p in base.parameters())


TIMM_BODY = """---
library_name: timm
license: apache-2.0
tags: [image-classification, timm]
---
# Model card for resnet50.a1_in1k

- **Model Stats:**
  - Params (M): 25.6
  - Image size: train = 224 x 224, test = 288 x 288

## Model Comparison
|model                                     |img_size|top1 |top5 |param_count|gmacs|macts|img/sec|
|------------------------------------------|--------|-----|-----|-----------|-----|-----|-------|
|[resnet152d.ra2_in1k](https://huggingface.co/timm/resnet152d.ra2_in1k)|320     |83.68|96.73|60.2   |24.1 |47.7 |1390|
|[resnet50.a1_in1k](https://huggingface.co/timm/resnet50.a1_in1k)|288     |81.22|95.11|25.6       |6.8 |18.4 |2090|
|[resnet50.a1_in1k](https://huggingface.co/timm/resnet50.a1_in1k)|224     |80.10|94.63|25.6       |4.1 |11.1 |3454|
"""


def test_a_timm_card_without_config_keeps_its_architecture_and_its_top1():
    """A timm card states its ImageNet top-1 in its "Model Comparison" table, not in a
    model-index: the row naming the model itself is read (not another model's), and without a
    config.json the repo's name (timm's model name) gives the architecture and family."""
    token = tokenize("timm/resnet50.a1_in1k", card=TIMM_BODY)
    assert token.architecture == "resnet50.a1_in1k" and token.family == "resnet"
    assert token.eval_results == [{"dataset": "imagenet-1k", "metric": "top1", "value": 81.22}]
    assert token.best_eval_accuracy() == pytest.approx(0.8122)
    other = tokenize("timm/resnet18.a1_in1k", card=TIMM_BODY.replace("resnet50.a1_in1k", "resnet34.a1_in1k"))
    assert other.eval_results == [] and other.family == "resnet"


def test_a_card_whose_model_index_names_the_task_is_a_candidate_for_it():
    """No pipeline_tag, library or config, but a model-index with `task.type: image-classification`:
    the card is an image model (it was left out of every ranking)."""
    card = {
        "model-index": [
            {
                "name": "m",
                "results": [
                    {
                        "task": {"type": "image-classification"},
                        "dataset": {"name": "ImageNet-1k"},
                        "metrics": [{"type": "accuracy", "value": 76.1}],
                    }
                ],
            }
        ]
    }
    token = tokenize("alice/resnet50-imagenet", card=card)
    assert token.pipeline_tag == "image-classification" and token.modality == "image"


def test_a_dataset_card_crawled_as_a_model_says_so():
    """A folder of dataset cards given to `crawl --from-dir` by mistake: each says it looks like a
    dataset card (it has no modality, so no ranking takes it)."""
    card = "---\ntask_categories: [image-classification]\ndataset_info:\n  features: []\n---\n# pets\n"
    token = tokenize("me/pets", card=card)
    assert token.modality is None and any("looks like a dataset card" in w for w in token.warnings)
    model = tokenize("me/vit", card="---\npipeline_tag: image-classification\ntask_categories: [x]\n---\n")
    assert not any("dataset card" in w for w in model.warnings)


def test_a_model_moved_on_the_hub_keeps_its_fine_tuning_history():
    """The Hub moved its canonical models under organisations (`bert-base-uncased` is
    `google-bert/bert-base-uncased`): a crawl today lists the new ids, the shipped records name
    the old ones; the ranker finds the history under either, and `catalog show` the token."""
    from hf_spider.catalog._aliases import former_id
    from hf_spider.ranker import Ranker

    assert former_id("google-bert/bert-base-uncased") == "bert-base-uncased"
    assert former_id("FacebookAI/roberta-base") == "roberta-base"
    assert former_id("almanach/camembert-base") == "camembert-base"
    assert former_id("google/electra-base-discriminator") is None and former_id("gpt2") is None
    embedded = {t.model_id: t for t in Catalog.load(None)}
    moved = []
    for old, new in (
        ("bert-base-uncased", "google-bert/bert-base-uncased"),
        ("roberta-base", "FacebookAI/roberta-base"),
    ):
        token = ModelToken.from_dict({**embedded[old].to_dict(), "model_id": new})
        moved.append(token)
    task = {"name": "reviews", "modality": "text", "num_classes": 2, "num_examples": 1000}
    result = Ranker.default().rank([*moved, embedded["distilbert-base-uncased"]], task)
    assert result.basis["google-bert/bert-base-uncased"] == "history"
    assert result.basis["FacebookAI/roberta-base"] == "history"
    same = Ranker.default().rank(
        [embedded["bert-base-uncased"], embedded["roberta-base"], embedded["distilbert-base-uncased"]], task
    )
    assert [s for _, s in result.ranking] == pytest.approx([s for _, s in same.ranking])


def test_a_card_tagged_for_one_modality_with_a_config_of_another_is_not_a_candidate_for_it():
    """A card saying text-classification whose config is a ViT runs as an image model: it is not
    a candidate for a text task (it was ranked first with --task text-classification)."""
    from hf_spider.catalog._candidates import candidates_for

    vit = tokenize(
        "odd/vit-tagged-text",
        card="---\npipeline_tag: text-classification\n---\n",
        config={"model_type": "vit", "architectures": ["ViTForImageClassification"], "num_labels": 2},
    )
    bert = tokenize("org/bert", card="---\npipeline_tag: text-classification\n---\n", config=BERT_BASE)
    assert vit.modality == "image"
    cat = Catalog([vit, bert])
    assert candidates_for(cat, modality="text").tokens.model_ids == ["org/bert"]
    assert candidates_for(cat, modality="text", tag="text-classification").tokens.model_ids == ["org/bert"]
    # the ranker itself, given a whole catalog, ranks the task's modality only
    from hf_spider.errors import UserInputError
    from hf_spider.ranker import Ranker

    task = {"name": "reviews", "modality": "text", "num_classes": 2}
    whole = Catalog.load(None)
    ranked = Ranker.default().rank(whole, task, vectors=whole.vectors()[1])
    assert ranked.ranking and all(whole.get(m).modality == "text" for m, _ in ranked.ranking)
    with pytest.raises(UserInputError, match="no candidate serves a text task"):
        Ranker.default().rank([vit], task)


def test_a_config_count_wins_over_a_cards_prose_and_accuracy_over_f1():
    """DeBERTa-v3's card says "...introduces 98M parameters in the Embedding layer": its config,
    built on the meta device, gives the model's count. A card reporting accuracy and F1 on the
    same data: its accuracy is the accuracy (the F1 is higher here)."""
    config = {
        "model_type": "deberta-v2",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 128100,
        "max_position_embeddings": 512,
        "relative_attention": True,
        "position_buckets": 256,
        "pos_att_type": ["p2c", "c2p"],
        "position_biased_input": False,
        "type_vocab_size": 0,
        "share_att_key": True,
        "norm_rel_ebd": "layer_norm",
    }
    prose = "---\nlicense: mit\n---\nThe base model has 86M backbone parameters with a vocabulary containing 128K tokens which introduces 98M parameters in the Embedding layer.\n"
    token = tokenize("microsoft/deberta-v3-base", card=prose, config=config)
    assert token.num_parameters_source == "config" and token.num_parameters == 183_831_552  # ~184M
    card = {
        "model-index": [
            {
                "name": "m",
                "results": [
                    {
                        "dataset": {"name": "sst2"},
                        "metrics": [{"type": "accuracy", "value": 0.9106}, {"type": "f1", "value": 0.9137}],
                    }
                ],
            }
        ]
    }
    assert tokenize("o/sst2", card=card).best_eval_accuracy() == pytest.approx(0.9106)
    only_f1 = {
        "model-index": [
            {"name": "m", "results": [{"dataset": {"name": "x"}, "metrics": [{"type": "f1", "value": 0.88}]}]}
        ]
    }
    assert tokenize("o/f1", card=only_f1).best_eval_accuracy() == pytest.approx(0.88)


# --- the store ---------------------------------------------------------------------------------
def _tokens() -> list[ModelToken]:
    return [
        tokenize("org/bert", config=BERT_BASE),
        tokenize("timm/resnet50.a1_in1k", card=TIMM_CARD, config=TIMM_CONFIG),
        ModelToken("org/unknown"),
    ]


@pytest.mark.parametrize("name", ["cat.sqlite", "cat.jsonl", "folder"])
def test_catalog_save_load_round_trip(tmp_path, name):
    catalog = Catalog(_tokens())
    written = catalog.save(tmp_path / name)
    loaded = Catalog.load(tmp_path / name)
    assert written.exists() and len(loaded) == 3
    assert loaded.records() == catalog.records()
    assert loaded.get("org/none") is None and "org/bert" in loaded


def test_catalog_filter_pandas_vectors():
    catalog = Catalog(_tokens())
    assert catalog.filter(task="image-classification").model_ids == ["timm/resnet50.a1_in1k"]
    assert catalog.filter(library=["timm", "transformers"], max_params=50e6).model_ids == [
        "timm/resnet50.a1_in1k"
    ]
    assert catalog.filter(min_params=1).model_ids == [
        "org/bert",
        "timm/resnet50.a1_in1k",
    ]  # unknown count excluded
    assert catalog.filter(modality="text").model_ids == ["org/bert"]
    frame = catalog.to_pandas()
    assert list(frame["model_id"]) == catalog.model_ids and frame.loc[0, "num_parameters"] == 109_483_778
    ids, matrix = catalog.vectors()
    assert matrix.shape == (3, TOKEN_DIM) and ids == catalog.model_ids
    assert catalog.stats()["by_library"] == {"timm": 1, "transformers": 1, "unknown": 1}


def test_newer_schema_is_refused(tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}) + "\n")
    with pytest.raises(CatalogError, match="schema version"):
        Catalog.load(tmp_path / "c.jsonl")
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog.load(tmp_path / "nothing-here")


def test_default_catalog_is_user_catalog_else_embedded():
    assert Catalog.load().path == _paths.EMBEDDED_CATALOG_DIR
    store = CatalogStore(_paths.default_catalog_path() / "catalog.sqlite")
    store.upsert(_tokens()[0])
    store.close()
    user = Catalog.load()
    assert user.path == _paths.default_catalog_path() and user.model_ids == ["org/bert"]


# --- the embedded catalog ----------------------------------------------------------------------
def test_embedded_catalog_holds_every_transfergraph_model():
    catalog = Catalog.load("model_cards")
    assert len(catalog) >= 349
    for token in catalog:
        assert token.num_parameters and token.model_type and token.architecture, token.model_id
        assert token.provenance["records_task"] in ("image-classification", "text-classification")
        assert token.provenance["paper"].startswith("Ziyu Li")
    data = default_data_dir()
    if not data.is_dir():
        pytest.skip("shared TransferGraph data not present")
    ids = set()
    for modality in ("image", "text"):
        with open(data / modality / "model_config.csv", newline="") as handle:
            ids |= {row["model"] for row in csv.DictReader(handle)}
    assert ids <= set(catalog.model_ids)
    vit = catalog.get("google/vit-base-patch16-224")
    assert vit is not None and vit.num_parameters == 86_567_656 and vit.input_size == 224


def test_embedded_build_is_reproducible(tmp_path):
    if not default_data_dir().is_dir():
        pytest.skip("shared TransferGraph data not present")
    file = build_embedded_catalog(out_dir=tmp_path)
    assert file.read_bytes() == (_paths.EMBEDDED_CATALOG_DIR / "catalog.jsonl").read_bytes()


def test_sqlite_caches_vectors_only_for_the_current_layout(tmp_path):
    import sqlite3

    catalog = Catalog(_tokens())
    file = catalog.save(tmp_path / "c.sqlite")
    loaded = Catalog.load(file)
    assert set(loaded._vectors) == set(catalog.model_ids)  # read from the file, not recomputed
    np.testing.assert_array_equal(loaded.vectors()[1], catalog.vectors()[1])
    con = sqlite3.connect(file)
    with con:
        con.execute("UPDATE meta SET value = 'other-layout' WHERE key = 'vector_layout'")
        con.execute("UPDATE models SET vector = zeroblob(8)")
    con.close()
    stale = Catalog.load(file)
    assert not stale._vectors
    np.testing.assert_array_equal(stale.vectors()[1], catalog.vectors()[1])
    CatalogStore(file).close()  # a writer drops vectors of another layout
    con = sqlite3.connect(file)
    assert con.execute("SELECT COUNT(*) FROM models WHERE vector IS NOT NULL").fetchone()[0] == 0
    con.close()


def test_catalog_written_before_vector_caching_is_upgraded_in_place(tmp_path):
    import sqlite3

    file = tmp_path / "catalog.sqlite"
    con = sqlite3.connect(str(file))
    con.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE models (
            model_id TEXT PRIMARY KEY, sha TEXT, last_modified TEXT, pipeline_tag TEXT,
            library TEXT, model_type TEXT, family TEXT, num_parameters INTEGER,
            data TEXT NOT NULL, updated_at REAL);
        """
    )
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    con.commit()
    con.close()

    store = CatalogStore(file)
    store.upsert(tokenize("org/bert", config={"model_type": "bert", "hidden_size": 32}))
    store.close()
    assert Catalog.load(tmp_path).get("org/bert").model_type == "bert"


def test_a_hand_edited_catalog_jsonl_is_read_or_refused_by_line(tmp_path):
    """A value of the wrong type in catalog.jsonl is dropped with a warning (it used to load, then
    stop the ranking with a TypeError); a line that is not JSON is named by its number."""
    good = tokenize("org/bert", config=BERT_BASE).to_dict()
    header = json.dumps({"schema_version": SCHEMA_VERSION})
    folder = tmp_path / "typed"
    folder.mkdir()
    (folder / "catalog.jsonl").write_text(
        "\n".join([header, json.dumps({**good, "num_parameters": "big", "tags": "x"})]) + "\n"
    )
    token = Catalog.load(folder).get("org/bert")
    assert token.num_parameters is None and token.tags == [] and token.vector().shape == (TOKEN_DIM,)
    assert any("wrong type" in w and "num_parameters" in w for w in token.warnings)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "catalog.jsonl").write_text("\n".join([header, json.dumps(good), "{oops"]) + "\n")
    with pytest.raises(CatalogError, match="line 3, is not JSON"):
        Catalog.load(broken)


def test_catalog_show_and_stats_take_a_folder_of_model_repos_as_recommend_does(capsys):
    """`recommend --catalog FOLDER` ranks a folder of model repos; `catalog show/stats` refused it."""
    from pathlib import Path

    from hf_spider.cli import main

    repos = Path(__file__).resolve().parents[1] / "benchmarks" / "ood_cards" / "models"
    assert main(["catalog", "show", "timm/resnet50.tv_in1k", "--catalog", str(repos), "--json", "-"]) == 0
    token = json.loads(capsys.readouterr().out)
    assert token["model_id"] == "timm/resnet50.tv_in1k" and token["num_parameters"] == 25_600_000
    assert main(["catalog", "stats", "--catalog", str(repos), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == 11


def test_catalog_filters_refuse_what_matches_nothing_by_mistake():
    """`filter(modality="Text")` gave 0 models and `min_params="1e6"` a TypeError."""
    from hf_spider.errors import UserInputError

    cat = Catalog.load(None)
    assert len(cat.filter(modality="Text")) == len(cat.filter(modality="text")) > 0
    with pytest.raises(UserInputError, match="unknown modality 'video'"):
        cat.filter(modality="video")
    with pytest.raises(UserInputError, match="min_params must be a number"):
        cat.filter(min_params="1e6")


def test_a_setfit_card_and_a_gpt2_config_are_read():
    """A SetFit repo (a sentence-transformers body, `library_name: setfit`, labels in
    config_setfit.json) was read as sentence-transformers without labels; GPT-2's width is
    `n_embd`, which gave no feature size."""
    files = {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
        ],
        "sentence_bert_config.json": {"max_seq_length": 128},
        "config_setfit.json": {"labels": ["negative", "positive"], "normalize_embeddings": False},
    }
    token = tokenize(
        "org/setfit-sst2",
        card="---\nlibrary_name: setfit\npipeline_tag: text-classification\n---\n",
        config=BERT_BASE,
        files=files,
    )
    assert (token.library, token.num_labels, token.modality) == ("setfit", 2, "text")
    plain = tokenize(
        "org/st", card="---\nlibrary_name: sentence-transformers\n---\n", config=BERT_BASE, files=files
    )
    assert plain.library == "sentence-transformers"
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    assert tokenize("openai-community/gpt2", config=gpt2).feature_dim == 768
