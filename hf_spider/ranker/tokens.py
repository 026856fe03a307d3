"""Model tokens of the models in records: from the catalog when it has them, else from `model_config.csv`.

The ranker reads models only through `hf_spider.catalog.ModelToken`, so a Hub model never seen in
training is described exactly like a training model. For the shared records the tokens come from
the embedded catalog (`model_cards/`, built by `hf_spider.catalog`); a model the catalog lacks is
tokenised from its `model_config.csv` row (the same card / config facts).
"""

from __future__ import annotations

import ast
import logging
from typing import Any

import pandas as pd

from hf_spider._paths import EMBEDDED_CATALOG_DIR
from hf_spider.catalog._token import ModelToken

logger = logging.getLogger("hf_spider.ranker")

_FAMILY_ALIASES = {"data2vec-vision": "data2vec", "data2vec-text": "data2vec", "deberta-v2": "deberta"}
_PIPELINE = {"image": "image-classification", "text": "text-classification"}


def _num(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if value == value and value > 0 else None


def _first_architecture(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if text.startswith("["):
        try:
            items = ast.literal_eval(text)
            return str(items[0]) if items else None
        except (ValueError, SyntaxError):
            return text.strip("[]'\" ") or None
    return text or None


def token_from_config_row(row: pd.Series | dict, modality: str) -> ModelToken:
    """A `ModelToken` from one `model_config.csv` row (the facts read from the model's config/card)."""
    get = row.get
    model_type = get("model_type")
    model_type = str(model_type) if isinstance(model_type, str) and model_type else None
    family = _FAMILY_ALIASES.get(model_type, model_type) if model_type else None
    dataset = get("dataset")
    datasets = [str(dataset)] if isinstance(dataset, str) and dataset.strip() else []
    acc = _num(get("accuracy"))
    params = _num(get("number_of_parameters"))
    labels = _num(get("#labels") if get("#labels") is not None else get("number_of_labels"))
    size = _num(get("input_shape"))
    dim = _num(get("output_shape"))
    return ModelToken(
        model_id=str(get("model")),
        pipeline_tag=_PIPELINE.get(modality),
        library="transformers",
        architecture=_first_architecture(get("architectures")),
        model_type=model_type,
        family=family,
        modality=modality,
        num_parameters=int(params) if params else None,
        num_parameters_source="records" if params else None,
        input_size=int(size) if size and modality == "image" else None,
        feature_dim=int(dim) if dim else None,
        num_labels=int(labels) if labels else None,
        datasets=datasets,
        eval_results=[{"dataset": datasets[0] if datasets else None, "metric": "accuracy", "value": acc}]
        if acc is not None
        else [],
        provenance={"source": "model_config.csv"},
    )


def load_catalog_tokens(catalog: Any = EMBEDDED_CATALOG_DIR) -> dict[str, ModelToken]:
    """Tokens of a catalog (path or `Catalog`), or {} when the catalog cannot be read."""
    try:
        from hf_spider.catalog import Catalog
    except ImportError:
        return {}
    try:
        cat = catalog if isinstance(catalog, Catalog) else Catalog.load(catalog)
    except Exception as exc:  # the catalog is optional for training: fall back to the records' facts
        logger.info("catalog %s not usable (%s); tokens come from model_config.csv", catalog, exc)
        return {}
    return {t.model_id: t for t in cat}


def record_tokens(
    models: pd.DataFrame, *, catalog: Any = None
) -> tuple[dict[str, ModelToken], dict[str, int]]:
    """Tokens of every model of `Records.models`; returns (tokens, counts per source).

    `catalog` None: the embedded catalog (`model_cards/`) when present; `False`: none.
    """
    if catalog is None:
        catalog = EMBEDDED_CATALOG_DIR if EMBEDDED_CATALOG_DIR.is_dir() else False
    from_catalog = load_catalog_tokens(catalog) if catalog is not False else {}
    tokens: dict[str, ModelToken] = {}
    counts = {"catalog": 0, "model_config": 0}
    for _, row in models.iterrows():
        mid = str(row["model"])
        if mid in from_catalog:
            tokens[mid] = from_catalog[mid]
            counts["catalog"] += 1
        else:
            tokens[mid] = token_from_config_row(row, str(row["modality"]))
            counts["model_config"] += 1
    return tokens, counts


def fallback_tokens(perf: pd.DataFrame, models: list[str]) -> dict[str, ModelToken]:
    """Bare tokens (id and modality only) for record models that neither catalog nor config know."""
    modality = perf.drop_duplicates("model").set_index("model")["modality"]
    return {m: ModelToken(model_id=m, modality=str(modality.get(m))) for m in models}


def tokens_for(records: Any, *, catalog: Any = None) -> tuple[dict[str, ModelToken], dict[str, int]]:
    """Tokens of every model of `records` (a `Records`): catalog, else `model_config.csv`, else a
    bare token; returns (tokens, counts per source)."""
    tokens, sources = record_tokens(records.models, catalog=catalog)
    missing = sorted(set(records.perf["model"]) - set(tokens))
    tokens.update(fallback_tokens(records.perf, missing))
    if missing:
        sources["bare"] = len(missing)
    return tokens, sources
