"""A `config.json` for a catalog entry that has only card facts, from its family's standard sizes.

The embedded catalog knows each model's type, architecture, parameter count, number of labels and
(for images) input size, but not its config. The architecture is recovered by trying the family's
published sizes (BERT tiny ... large, ViT tiny ... large, Swin T/S/B/L, ConvNeXt T ... XL, ...)
with the card's head, counting parameters exactly on the `meta` device (no memory, no weights),
and keeping the size whose count is nearest to the card's. For text models the vocabulary size
is solved from the count (parameters grow linearly with it). `match` says how close it came;
callers decide what mismatch they accept.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from hf_spider.catalog._tokenizer import count_on_meta, head_of

logger = logging.getLogger("hf_spider.hardware")


def _bert(layers, hidden, heads, inter):
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": inter,
    }


_BERT_SIZES = {
    "tiny": _bert(2, 128, 2, 512),
    "mini": _bert(4, 256, 4, 1024),
    "small": _bert(4, 512, 8, 2048),
    "medium": _bert(8, 512, 8, 2048),
    "L4-H312": _bert(4, 312, 12, 1200),
    "L6-H384": _bert(6, 384, 12, 1536),
    "L12-H384": _bert(12, 384, 12, 1536),
    "L3-H768": _bert(3, 768, 12, 3072),
    "L6-H768": _bert(6, 768, 12, 3072),
    "base": _bert(12, 768, 12, 3072),
    "large": _bert(24, 1024, 16, 4096),
}
_ROBERTA = {"max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1}
_VIT_SIZES = {
    "tiny": _bert(12, 192, 3, 768),
    "small": _bert(12, 384, 6, 1536),
    "base": _bert(12, 768, 12, 3072),
    "large": _bert(24, 1024, 16, 4096),
}
_VIT_SIZES |= {f"{k}-p32": {**v, "patch_size": 32} for k, v in _VIT_SIZES.items()}


def _swin(embed, depths, heads):
    return {"embed_dim": embed, "depths": depths, "num_heads": heads}


def _stages(hidden, depths, **extra):
    return {"hidden_sizes": hidden, "depths": depths, **extra}


SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "bert": _BERT_SIZES,
    "roberta": {k: {**v, **_ROBERTA} for k, v in _BERT_SIZES.items()}
    | {"bertweet-base": {**_BERT_SIZES["base"], **_ROBERTA, "max_position_embeddings": 130}},
    "xlm-roberta": {k: {**v, **_ROBERTA} for k, v in _BERT_SIZES.items()},
    "camembert": {k: {**v, **_ROBERTA} for k, v in _BERT_SIZES.items()},
    "data2vec-text": {k: {**v, **_ROBERTA} for k, v in _BERT_SIZES.items()},
    "electra": {
        "small": {**_bert(12, 256, 4, 1024), "embedding_size": 128},
        "base": {**_BERT_SIZES["base"], "embedding_size": 768},
        "large": {**_BERT_SIZES["large"], "embedding_size": 1024},
    },
    "distilbert": {
        "base": {"n_layers": 6, "dim": 768, "n_heads": 12, "hidden_dim": 3072},
        "L3": {"n_layers": 3, "dim": 768, "n_heads": 12, "hidden_dim": 3072},
        "tiny": {"n_layers": 2, "dim": 32, "n_heads": 2, "hidden_dim": 37},
    },
    "albert": {
        "base": {**_BERT_SIZES["base"], "embedding_size": 128},
        "large": {**_BERT_SIZES["large"], "embedding_size": 128},
        "xlarge": {**_bert(24, 2048, 16, 8192), "embedding_size": 128},
    },
    "deberta-v2": {
        name: {
            **_bert(*shape),
            "relative_attention": True,
            "position_buckets": 256,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "pos_att_type": ["p2c", "c2p"],
            "max_relative_positions": -1,
            "position_biased_input": False,
            "type_vocab_size": 0,
        }
        for name, shape in {
            "xsmall": (12, 384, 6, 1536),
            "small": (6, 768, 12, 3072),
            "base": (12, 768, 12, 3072),
            "large": (24, 1024, 16, 4096),
        }.items()
    },
    "fnet": {
        "base": {"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072},
        "large": {"num_hidden_layers": 24, "hidden_size": 1024, "intermediate_size": 4096},
    },
    "vit": _VIT_SIZES,
    "deit": _VIT_SIZES,
    "beit": _VIT_SIZES
    | {f"{k}-relpos": {**v, "use_relative_position_bias": True} for k, v in _VIT_SIZES.items()},
    "data2vec-vision": _VIT_SIZES
    | {f"{k}-relpos": {**v, "use_relative_position_bias": True} for k, v in _VIT_SIZES.items()},
    "swin": {
        "tiny": _swin(96, [2, 2, 6, 2], [3, 6, 12, 24]),
        "small": _swin(96, [2, 2, 18, 2], [3, 6, 12, 24]),
        "base": _swin(128, [2, 2, 18, 2], [4, 8, 16, 32]),
        "large": _swin(192, [2, 2, 18, 2], [6, 12, 24, 48]),
    },
    "convnext": {
        "tiny": _stages([96, 192, 384, 768], [3, 3, 9, 3]),
        "small": _stages([96, 192, 384, 768], [3, 3, 27, 3]),
        "base": _stages([128, 256, 512, 1024], [3, 3, 27, 3]),
        "large": _stages([192, 384, 768, 1536], [3, 3, 27, 3]),
        "xlarge": _stages([256, 512, 1024, 2048], [3, 3, 27, 3]),
    },
    "van": {
        "tiny": _stages([32, 64, 160, 256], [3, 3, 5, 2], mlp_ratios=[8, 8, 4, 4]),
        "small": _stages([64, 128, 320, 512], [2, 2, 4, 2], mlp_ratios=[8, 8, 4, 4]),
        "base": _stages([64, 128, 320, 512], [3, 3, 12, 3], mlp_ratios=[8, 8, 4, 4]),
        "large": _stages([64, 128, 320, 512], [3, 5, 27, 3], mlp_ratios=[8, 8, 4, 4]),
    },
    "resnet": {
        "resnet-18": _stages([64, 128, 256, 512], [2, 2, 2, 2], layer_type="basic"),
        "resnet-34": _stages([64, 128, 256, 512], [3, 4, 6, 3], layer_type="basic"),
        "resnet-50": _stages([256, 512, 1024, 2048], [3, 4, 6, 3], layer_type="bottleneck"),
        "resnet-101": _stages([256, 512, 1024, 2048], [3, 4, 23, 3], layer_type="bottleneck"),
    },
}
# Vocabulary sizes of published tokenizers. Any size can be made to match a parameter count by
# choosing the vocabulary, so the size whose solved vocabulary is nearest one of these wins.
KNOWN_VOCABS = (
    21128,  # bert-base-chinese
    28996,  # bert-base-cased, biobert
    30000,  # albert
    30522,  # bert-base-uncased, distilbert, electra
    31002,  # BETO
    31090,  # scibert
    32000,  # fnet, many sentencepiece models
    32005,  # camembert
    50265,  # roberta, bart
    64001,  # bertweet
    105879,  # bert-base-multilingual-uncased
    119547,  # bert-base-multilingual-cased
    128100,  # deberta-v3
    250002,  # xlm-roberta
)
_IMAGE_TYPES = {"vit", "deit", "beit", "data2vec-vision", "swin", "convnext", "van", "resnet"}
_TEXT_VOCAB = set(SIZES) - _IMAGE_TYPES


def supported_types() -> list[str]:
    return sorted(SIZES)


def _head(architecture: str | None, model_type: str) -> str:
    if model_type in _IMAGE_TYPES:
        return "image-classification"
    return head_of(architecture)


def count_parameters(config: dict[str, Any], head: str = "feature-extraction") -> int:
    """Exact parameter count of `config` with `head`, built on the meta device (the catalog's
    counter, `count_on_meta`)."""
    return count_on_meta(json.dumps(config, sort_keys=True), head)


def config_from_card(card: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(config, match) for a catalog token dict; config None when the family or count is unknown.

    `match` holds `size` (the standard size chosen), `params` (its exact count), `card_params`,
    `rel_error` and, for text, `vocab_size` and whether it was solved exactly.
    """
    model_type = card.get("model_type")
    target = card.get("num_parameters")
    if model_type not in SIZES or not target:
        reason = "unknown model type" if model_type not in SIZES else "no parameter count on the card"
        return None, {"reason": f"{reason} ({model_type})"}
    head = _head(card.get("architecture"), model_type)
    labels = int(card.get("num_labels") or 2)
    base: dict[str, Any] = {"model_type": model_type}
    if card.get("architecture"):
        base["architectures"] = [card["architecture"]]
    if head in ("image-classification", "text-classification"):
        base["num_labels"] = labels
    if model_type in _IMAGE_TYPES:
        size = int(card.get("input_size") or 224)
        base["image_size"] = size
        if model_type == "swin" and size == 384:
            base["window_size"] = 12
    best: tuple[float, dict[str, Any], dict[str, Any]] | None = None
    for name, preset in SIZES[model_type].items():
        config = {**base, **preset}
        try:
            if model_type in _TEXT_VOCAB:
                config, params, exact = _solve_vocab(config, head, int(target))
            else:
                params, exact = count_parameters(config, head), None
        except Exception as exc:  # a preset this transformers version cannot build
            logger.debug("size %s of %s not buildable: %s", name, model_type, exc)
            continue
        error = abs(params - target) / target
        score = error
        if exact is not None:  # text: how far the solved vocabulary is from a published one
            nearest = min(KNOWN_VOCABS, key=lambda v: abs(math.log(config["vocab_size"] / v)))
            score = error + abs(math.log(config["vocab_size"] / nearest))
        if best is None or score < best[0]:
            match = {"size": name, "params": params, "card_params": int(target), "rel_error": error}
            if exact is not None:
                match.update(vocab_size=config["vocab_size"], vocab_exact=exact, nearest_known_vocab=nearest)
            best = (score, config, match)
    if best is None:
        return None, {"reason": f"no standard size of {model_type} could be built"}
    return best[1], best[2]


def _solve_vocab(config: dict[str, Any], head: str, target: int) -> tuple[dict[str, Any], int, bool]:
    """Choose the vocabulary size that brings the parameter count nearest to `target`."""
    low = count_parameters({**config, "vocab_size": 1000}, head)
    high = count_parameters({**config, "vocab_size": 1001}, head)
    slope = high - low
    vocab = 1000 + round((target - low) / slope) if slope else 1000
    if vocab < 100:
        vocab = 100  # a count below the size's own body: nearest possible, reported as such
    exact = slope > 0 and (target - low) % slope == 0
    config = {**config, "vocab_size": int(vocab)}
    return config, low + (vocab - 1000) * slope, bool(exact)
