"""Card + config + safetensors metadata -> `ModelToken`.

Handles transformers repos (`config.json` with `model_type` / `architectures`), timm repos
(`config.json` with `architecture`, `num_features`, `pretrained_cfg`; the card's "Model Stats"
list), sentence-transformers repos (`modules.json`, `1_Pooling/config.json`,
`sentence_bert_config.json`) and ONNX repos. Nothing here executes code from a repo: cards are
parsed with `yaml.safe_load`, configs are plain JSON.

Malformed input never raises: the token keeps what parsed and records a warning.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from hf_spider.catalog._token import IMAGE_FAMILIES, PIPELINE_TAGS, TEXT_FAMILIES, ModelToken
from hf_spider.errors import first_line

_FRONT_MATTER = re.compile(r"\A\s*---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_PARAMS_LINE = re.compile(
    r"param(?:eter)?s?\s*\(\s*([mkbg])\s*\)\s*\**\s*[:|]\s*\**\s*([0-9][0-9,]*(?:\.[0-9]+)?)", re.I
)
# the beginnings of the token warnings that change what a card is ranked on: a card or config
# that could not be read or contradicts itself, or no parameter count anywhere (`recommend` names
# such cards in a note); every warning written below with one of these beginnings is of that kind
PARTLY_READ = (
    "card metadata is not valid YAML",
    "card metadata is not closed",
    "card metadata is a ",
    "card model-index is malformed",
    "card library_name is a ",
    "card pipeline_tag is a ",
    "config.json is not",
    "config.json is over",
    "config.json gives an implausible",
    "the card's pipeline_tag",
    "the card states an implausible",
    "number of parameters unknown",
)
# a config whose arithmetic gives more is wrong, not a model (the largest public ones: ~2e12)
MAX_PARAMETERS = 10**13
_LEADING_NUMBER = re.compile(r"\s*([-+]?[0-9]+(?:\.[0-9]+)?)\s*%?\s*(?:$|±|\+/-|\()")
# configs deeper than this are not instantiated to count their parameters (time, not memory:
# the meta device allocates nothing)
MAX_COUNTED_LAYERS = 512
# "Parameters: 25.6M", "# Params | 25,557,032", "Number of parameters: 1.2 billion"
_PARAMS_FIELD = re.compile(
    r"(?<![a-z])(?:number\s+of\s+|num\s+|#\s*)?param(?:eter)?s?(?:\s+count)?\s*\**\s*[:|=]\s*\**\s*"
    r"([0-9][0-9,]*(?:\.[0-9]+)?)\s*(k|m|b|thousand|million|billion)?(?![a-z])",
    re.I,
)
# "110M parameters", "25.6 million params", "25,557,032 trainable parameters"
_PARAMS_TEXT = re.compile(
    r"(?<![0-9.,])([0-9][0-9,]*(?:\.[0-9]+)?)\s*(k|m|b|thousand|million|billion)?[\s-]+(?:trainable\s+)?param",
    re.I,
)
MIN_CARD_PARAMETERS = 100_000
_PARAMS_UNITS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9, "g": 1e9}
_IMAGE_SIZE = re.compile(r"image size\s*:\s*(?:train\s*=\s*)?([0-9]+)\s*x\s*([0-9]+)", re.I)
_CARD_DATASET = re.compile(r"^\s*[-*]\s*\*\*(pretrain dataset|dataset)\s*:\*\*\s*(.+)$", re.I | re.M)
_TIMM_NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)?$")  # resnet50.a1_in1k, vit_base_patch16_224
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TIMM_FAMILY = re.compile(r"^([a-z]+?)(?:v?\d.*|_.*)?$")

_FAMILY_ALIASES = {
    "deberta-v2": "deberta",
    "deberta": "deberta",
    "data2vec-vision": "data2vec",
    "data2vec-text": "data2vec",
    "data2vec-audio": "data2vec",
    "xlm-roberta": "xlm-roberta",
    "xlm-roberta-xl": "xlm-roberta",
    "mobilenet_v1": "mobilenet",
    "mobilenet_v2": "mobilenet",
    "mobilenetv2": "mobilenet",
    "mobilenetv3": "mobilenet",
    "mobilevit": "mobilenet",
    "efficientnet_lite": "efficientnet",
    "tf_efficientnet": "efficientnet",
    "clip_vision_model": "clip",
    "swinv2": "swin",
    "convnextv2": "convnext",
    "resnetv2": "resnet",
    "resnext": "resnet",
    "wide_resnet": "resnet",
    "seresnet": "resnet",
    "vit_hybrid": "vit",
    "dinov2": "vit",
    "eva": "vit",
    "qdqbert": "bert",
    "megatron-bert": "bert",
    "mpnet": "mpnet",
}
# timm architecture prefixes -> family
_TIMM_PREFIXES = (
    ("vit", "vit"),
    ("deit", "deit"),
    ("beit", "beit"),
    ("swin", "swin"),
    ("convnext", "convnext"),
    ("resnet", "resnet"),
    ("resnext", "resnet"),
    ("seresnext", "resnet"),
    ("wide_resnet", "resnet"),
    ("efficientnet", "efficientnet"),
    ("tf_efficientnet", "efficientnet"),
    ("mobilenet", "mobilenet"),
    ("tf_mobilenet", "mobilenet"),
    ("regnet", "regnet"),
    ("van", "van"),
    ("eva", "vit"),
)
_IMAGE_TYPES = frozenset(IMAGE_FAMILIES)
_TEXT_TYPES = frozenset(TEXT_FAMILIES)


def family_of(model_type: str | None, architecture: str | None = None) -> str | None:
    """Normalised family from a transformers `model_type` or a timm architecture name."""
    if model_type and model_type.lower() not in ("onnx", "custom"):  # a format, not a family
        mt = model_type.lower()
        if mt in _FAMILY_ALIASES:
            return _FAMILY_ALIASES[mt]
        if mt.startswith("data2vec"):
            return "data2vec"
        if "clip" in mt:
            return "clip"
        return mt
    if architecture:
        arch = architecture.lower().split(".")[0]
        for prefix, fam in _TIMM_PREFIXES:
            if arch.startswith(prefix):
                return fam
        match = _TIMM_FAMILY.match(arch)
        if match:
            return match.group(1)
    return None


def parse_card(card: str | Mapping[str, Any] | None) -> tuple[dict[str, Any], str, list[str]]:
    """Split a model card into (YAML metadata, markdown body, warnings). Never raises."""
    if card is None:
        return {}, "", []
    if isinstance(card, Mapping):
        return dict(card), "", []
    if hasattr(card, "to_dict") and not isinstance(card, str):  # ModelCardData
        return dict(card.to_dict()), "", []
    text = str(card)
    match = _FRONT_MATTER.match(text)
    if not match:
        lines = [line.strip() for line in text.lstrip().splitlines()]
        unclosed = bool(lines) and lines[0] == "---" and "---" not in lines[1:]
        return {}, text, (["card metadata is not closed (no second --- line); not read"] if unclosed else [])
    body = text[match.end() :]
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        return {}, body, [f"card metadata is not valid YAML ({first_line(exc)})"]
    if meta is None:
        return {}, body, []
    if not isinstance(meta, dict):
        return {}, body, [f"card metadata is a {type(meta).__name__}, not a mapping"]
    return meta, body, []


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, list | tuple) and value:
        value = value[-1]
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _info_dict(info: Any) -> dict[str, Any]:
    """A `ModelInfo` (huggingface_hub) or an API JSON dict -> the API's JSON keys."""
    if info is None:
        return {}
    if isinstance(info, Mapping):
        data = dict(info)
        siblings = data.get("siblings") or []
        data["siblings"] = [s["rfilename"] if isinstance(s, Mapping) else str(s) for s in siblings]
        return data
    card_data = getattr(info, "card_data", None)
    safetensors = getattr(info, "safetensors", None)
    siblings = getattr(info, "siblings", None) or []
    last_modified = getattr(info, "last_modified", None)
    return {
        "id": getattr(info, "id", None),
        "sha": getattr(info, "sha", None),
        "lastModified": _iso(last_modified),
        "pipeline_tag": getattr(info, "pipeline_tag", None),
        "library_name": getattr(info, "library_name", None),
        "tags": getattr(info, "tags", None),
        "downloads": getattr(info, "downloads", None),
        "likes": getattr(info, "likes", None),
        "cardData": card_data.to_dict() if card_data is not None else None,
        "config": getattr(info, "config", None),
        "safetensors": (
            {"parameters": safetensors.parameters, "total": safetensors.total} if safetensors else None
        ),
        "siblings": [s.rfilename for s in siblings],
        "model-index": getattr(info, "model_index", None),
        "baseModels": getattr(info, "baseModels", None),
    }


def _iso(value: Any) -> Any:
    """A datetime as the Hub writes it (`2024-01-02T03:04:05.000Z`); anything else unchanged."""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


def eval_results_from_model_index(model_index: Any, warnings: list[str]) -> list[dict[str, Any]]:
    """`model-index` (card YAML) -> [{dataset, metric, value}]."""
    results: list[dict[str, Any]] = []
    if not model_index:
        return results
    try:
        for entry in model_index:
            for result in entry.get("results") or []:
                ds = result.get("dataset") or {}
                dataset = ds.get("name") or ds.get("type") if isinstance(ds, Mapping) else str(ds)
                for metric in result.get("metrics") or []:
                    value = metric.get("value")
                    if isinstance(value, str):  # "76.1%", "81.2 ± 0.1"
                        match = _LEADING_NUMBER.match(value)
                        if not match:
                            continue
                        value = float(match.group(1))
                    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                        continue
                    result_row = {
                        "dataset": str(dataset) if dataset else None,
                        "metric": str(metric.get("type") or metric.get("name") or "unknown"),
                        "value": float(value),
                    }
                    if metric.get("name") and str(metric["name"]) != result_row["metric"]:
                        result_row["name"] = str(metric["name"])  # "Top 5 Accuracy" under type accuracy
                    results.append(result_row)
    except (AttributeError, TypeError):
        warnings.append("card model-index is malformed; eval results skipped")
    return results


def _model_index_task(model_index: Any) -> str | None:
    """The pipeline tag of the first `task.type` of a model-index that is one (else None)."""
    try:
        for entry in model_index or []:
            for result in entry.get("results") or []:
                task = result.get("task") or {}
                kind = task.get("type") if isinstance(task, Mapping) else None
                if kind in PIPELINE_TAGS:
                    return str(kind)
    except (AttributeError, TypeError):
        pass
    return None


# --- parameter count from a config -------------------------------------------------------------
def _encoder_layers(h: int, i: int, n: int) -> int:
    attention = 4 * (h * h + h) + 2 * h  # q, k, v, out + LayerNorm
    ffn = (h * i + i) + (i * h + h) + 2 * h  # two linears + LayerNorm
    return n * (attention + ffn)


def params_from_config(config: Mapping[str, Any], num_labels: int | None) -> tuple[int | None, str | None]:
    """Exact parameter count for the BERT-like and ViT-like encoders, computed from their config.

    Returns (count, source) with source `config` or None when the architecture is not covered.
    The figure includes the classification head named by `architectures` (if any).
    """
    mt = str(config.get("model_type") or "").lower()
    arch = (_as_list(config.get("architectures")) or [""])[0]
    labels = num_labels or 0
    try:
        if mt in ("bert", "roberta", "xlm-roberta", "camembert", "electra") and "hidden_size" in config:
            h, i, n = (
                int(config["hidden_size"]),
                int(config["intermediate_size"]),
                int(config["num_hidden_layers"]),
            )
            e = int(config.get("embedding_size") or h)
            emb = (
                int(config["vocab_size"]) * e
                + int(config["max_position_embeddings"]) * e
                + int(config.get("type_vocab_size", 2)) * e
                + 2 * e
            )
            if e != h:
                emb += e * h + h  # electra's embeddings projection
            total = emb + _encoder_layers(h, i, n)
            if "SequenceClassification" in arch:
                if mt == "bert":
                    total += h * h + h + h * labels + labels  # pooler + classifier
                elif mt == "electra":
                    total += h * h + h + h * labels + labels  # classification head dense + out
                else:
                    total += h * h + h + h * labels + labels  # roberta head: dense + out_proj
            elif arch.endswith("Model") and mt == "bert":
                total += h * h + h  # pooler
            elif "MaskedLM" in arch:
                vocab = int(config["vocab_size"])
                total += h * e + e + 2 * e + vocab  # transform + LayerNorm + decoder bias (tied weights)
            return total, "config"
        if mt == "distilbert" and "dim" in config:
            h, i, n = int(config["dim"]), int(config["hidden_dim"]), int(config["n_layers"])
            emb = int(config["vocab_size"]) * h + int(config["max_position_embeddings"]) * h + 2 * h
            total = emb + _encoder_layers(h, i, n)
            if "SequenceClassification" in arch:
                total += h * h + h + h * labels + labels  # pre_classifier + classifier
            elif "MaskedLM" in arch:
                total += h * h + h + 2 * h + int(config["vocab_size"])
            return total, "config"
        if mt in ("vit", "deit") and "hidden_size" in config:
            h, i, n = (
                int(config["hidden_size"]),
                int(config["intermediate_size"]),
                int(config["num_hidden_layers"]),
            )
            p = int(config.get("patch_size", 16))
            size = _positive_int(config.get("image_size")) or 224
            c = int(config.get("num_channels", 3))
            special = 2 if mt == "deit" else 1  # [CLS] (+ DeiT's distillation token)
            patches = (size // p) ** 2
            total = (
                c * p * p * h + h + special * h + (patches + special) * h + _encoder_layers(h, i, n) + 2 * h
            )
            if "WithTeacher" in arch:
                total += 2 * (h * labels + labels)  # class head + distillation head
            elif "ImageClassification" in arch:
                total += h * labels + labels
            elif arch.endswith("Model"):
                total += h * h + h  # pooler
            return total, "config"
    except (KeyError, TypeError, ValueError):
        return None, None
    return None, None


# --- the tokenizer -----------------------------------------------------------------------------
def tokenize(
    model_id: str,
    *,
    card: str | Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | str | None = None,
    safetensors: Mapping[str, Any] | None = None,
    info: Any = None,
    files: Mapping[str, Any] | Iterable[str] | None = None,
) -> ModelToken:
    """Build the `ModelToken` of one model from whatever metadata is at hand.

    Args:
        model_id: `org/name`.
        card: the README text (YAML front matter + markdown) or its parsed metadata dict.
        config: `config.json` as a dict (or its JSON text).
        safetensors: safetensors metadata `{"parameters": {dtype: count}, "total": n}`.
        info: a `huggingface_hub.ModelInfo` or the Hub API's JSON dict for the model.
        files: names of the repo's files, or a mapping name -> content (dict or text) for the
            extra files that were fetched (`modules.json`, `1_Pooling/config.json`, ...).

    Example:
        >>> tok = tokenize("org/m", config={"model_type": "bert", "architectures": ["BertModel"]})
        >>> tok.family
        'bert'
    """
    warnings: list[str] = []
    data = _info_dict(info)
    if card is None and data.get("cardData"):
        card = data["cardData"]
    meta, body, card_warnings = parse_card(card)
    warnings += card_warnings
    if data.get("cardData") and isinstance(card, str) and not meta and not card_warnings:
        meta = dict(data["cardData"])

    config_given = config is not None
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as exc:
            warnings.append(f"config.json is not valid JSON ({exc.msg})")
            config = None
    if config is not None and not isinstance(config, Mapping):
        warnings.append("config.json is not a JSON object")
        config = None
    listing_config = data.get("config") if isinstance(data.get("config"), Mapping) else None
    cfg: dict[str, Any] = {**(listing_config or {}), **(config or {})}

    file_contents: dict[str, Any] = {}
    file_names: list[str] = list(data.get("siblings") or [])
    if isinstance(files, Mapping):
        for name, content in files.items():
            file_names.append(name)
            if isinstance(content, str) and name.endswith(".json"):
                try:
                    content = json.loads(content)
                except json.JSONDecodeError:
                    warnings.append(f"{name} is not valid JSON")
                    content = None
            if content is not None:
                file_contents[name] = content
    elif files is not None:
        file_names += [str(f) for f in files]
    file_names = sorted(set(file_names))

    tags = _as_list(data.get("tags")) or _as_list(meta.get("tags"))
    token = ModelToken(model_id=model_id, warnings=warnings)
    token.sha = data.get("sha")
    token.last_modified = data.get("lastModified") or data.get("last_modified")
    token.tags = sorted(set(tags))
    token.files = file_names
    token.pipeline_tag = _one_name(
        data.get("pipeline_tag") or meta.get("pipeline_tag"), "pipeline_tag", warnings
    )
    token.library = _one_name(data.get("library_name") or meta.get("library_name"), "library_name", warnings)
    token.downloads = _non_negative(data.get("downloads"))
    token.likes = _non_negative(data.get("likes"))
    lic = meta.get("license")
    token.license = (
        str(lic) if isinstance(lic, str) else (str(lic[0]) if isinstance(lic, list) and lic else None)
    )
    token.languages = _as_list(meta.get("language"))
    token.datasets = _as_list(meta.get("datasets"))
    base = data.get("baseModels")
    if isinstance(base, Mapping):  # API shape: {"relation": ..., "models": [{"id": ...}]}
        base = [m.get("id") for m in base.get("models") or [] if isinstance(m, Mapping)]
    token.base_models = _as_list(base) or _as_list(meta.get("base_model"))
    model_index = data.get("model-index") or meta.get("model-index") or meta.get("model_index")
    token.eval_results = eval_results_from_model_index(model_index, warnings)

    is_timm = "architecture" in cfg and "model_type" not in cfg
    is_st = "modules.json" in file_names or "sentence_bert_config.json" in file_names
    if token.library is None:
        if is_timm or "timm" in tags:
            token.library = "timm"
        elif is_st or "sentence-transformers" in tags:
            token.library = "sentence-transformers"
        elif cfg.get("model_type") or "transformers" in tags:
            token.library = "transformers"
        elif any(f.endswith(".onnx") for f in file_names) or "onnx" in tags:
            token.library = "onnx"

    # --- architecture, type, sizes from the config -------------------------------------------
    if is_timm:
        _from_timm_config(token, cfg, warnings)
    else:
        _from_transformers_config(token, cfg)
    if is_st:
        _from_sentence_transformers(token, file_contents)
    if token.library == "timm" or "timm" in tags:
        _from_timm_card(token, body)

    token.family = family_of(token.model_type, token.architecture)
    if token.pipeline_tag is None and token.architecture:
        token.pipeline_tag = _pipeline_from_architecture(token.architecture)
    if token.pipeline_tag is None:  # a pipeline tag among the card tags, else timm's default
        token.pipeline_tag = next((t for t in token.tags if t in PIPELINE_TAGS), None)
        if token.pipeline_tag is None and token.library == "timm":
            token.pipeline_tag = "image-classification"
    if token.pipeline_tag is None:  # the task its model-index reports results for
        token.pipeline_tag = _model_index_task(model_index)
    token.modality = _modality(token)
    by_family = "image" if token.family in _IMAGE_TYPES else "text" if token.family in _TEXT_TYPES else None
    if by_family and token.modality in ("image", "text") and token.modality != by_family:
        # the code that runs is the config's: a BERT is a text model whatever its card's tag says
        warnings.append(
            f"the card's pipeline_tag {token.pipeline_tag!r} contradicts its config "
            f"(a {token.family} model): read as a {by_family} model"
        )
        token.modality = by_family

    # --- number of parameters: safetensors, else config, else card ------------------------------
    st = safetensors or data.get("safetensors")
    if isinstance(st, Mapping):
        total = _positive_int(st.get("total"))
        if total is None and isinstance(st.get("parameters"), Mapping):
            total = sum(int(v) for v in st["parameters"].values() if isinstance(v, int | float)) or None
        if total:
            token.num_parameters, token.num_parameters_source = total, "safetensors"
    if token.num_parameters is None and cfg:
        try:
            count, source = params_from_config(cfg, token.num_labels)
        except (TypeError, ValueError, OverflowError):  # a config of the wrong types
            count, source = None, None
        if count is not None and not 0 < count <= MAX_PARAMETERS:
            warnings.append(f"config.json gives an implausible parameter count ({count}); ignored")
            count = None
        if count:
            token.num_parameters, token.num_parameters_source = count, source
    if token.num_parameters is None and cfg:  # exact for its config, unlike a card's prose
        count = params_by_instantiation(cfg, token.num_labels)
        if count:
            token.num_parameters, token.num_parameters_source = count, "config"
    if token.num_parameters is None:
        count = params_from_card(body)
        if count and count > MAX_PARAMETERS:
            warnings.append(f"the card states an implausible parameter count ({count}); ignored")
            count = None
        if count:
            token.num_parameters, token.num_parameters_source = count, "card"
    if token.num_parameters is None:
        warnings.append("number of parameters unknown (no safetensors metadata, config or card figure)")
    if not cfg and not is_st and not config_given:
        warnings.append("no config.json")
    if token.modality is None and any(k in meta for k in ("dataset_info", "task_categories")):
        warnings.append("this looks like a dataset card (dataset_info / task_categories), not a model's")
    token.provenance = {"source": "hub"}
    return token


def _one_name(value: Any, field: str, warnings: list[str]) -> str | None:
    """A card field that names one thing (`library_name`, `pipeline_tag`): its first string where
    the card gives a list, None (with a warning) where it gives something else."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    warnings.append(f"card {field} is a {type(value).__name__}, not a name; ignored")
    return None


def _non_negative(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 0 else None


def _labels_of(cfg: Mapping[str, Any]) -> int | None:
    for key in ("id2label", "label2id"):
        if isinstance(cfg.get(key), Mapping) and cfg[key]:
            return len(cfg[key])
    return _positive_int(cfg.get("num_labels") or cfg.get("num_classes"))


def _from_transformers_config(token: ModelToken, cfg: Mapping[str, Any]) -> None:
    archs = _as_list(cfg.get("architectures"))
    token.architecture = archs[0] if archs else None
    mt = cfg.get("model_type")
    token.model_type = str(mt) if mt else None
    labels = _labels_of(cfg)
    if (labels and token.architecture and "Classification" in token.architecture) or (
        labels and "id2label" in cfg and len(cfg["id2label"]) > 2
    ):
        token.num_labels = labels
    vision = cfg.get("vision_config") if isinstance(cfg.get("vision_config"), Mapping) else None
    src = vision or cfg
    token.feature_dim = (
        _positive_int(cfg.get("projection_dim") if vision else None)
        or _positive_int(src.get("hidden_size"))
        or _positive_int(src.get("dim"))
        or _positive_int(src.get("d_model"))
        or _positive_int(src.get("n_embd"))  # GPT-2 style
        or _positive_int(src.get("hidden_sizes"))
        or _swin_width(src)
        or _positive_int(src.get("hidden_dim"))
        or _positive_int(src.get("feature_dim"))
    )
    image_size = _positive_int(src.get("image_size") or src.get("input_size"))
    vision_keys = ("patch_size", "num_channels", "input_size", "embed_dim", "hidden_sizes")
    if image_size and (vision or any(k in src for k in vision_keys)):
        token.input_size = image_size
    max_pos = _positive_int(cfg.get("max_position_embeddings") or cfg.get("n_positions"))
    if max_pos and not token.input_size:
        offset = 2 if str(mt).lower() in ("roberta", "xlm-roberta", "camembert") and max_pos % 2 == 0 else 0
        token.max_seq_len = max_pos - offset


def _swin_width(cfg: Mapping[str, Any]) -> int | None:
    embed, depths = _positive_int(cfg.get("embed_dim")), cfg.get("depths")
    if embed and isinstance(depths, list) and depths:
        return embed * 2 ** (len(depths) - 1)
    return None


def _from_timm_config(token: ModelToken, cfg: Mapping[str, Any], warnings: list[str]) -> None:
    arch = cfg.get("architecture")
    token.architecture = str(arch) if arch else None
    token.library = token.library or "timm"
    pretrained = cfg.get("pretrained_cfg") if isinstance(cfg.get("pretrained_cfg"), Mapping) else {}
    if cfg.get("pretrained_cfg") is not None and not isinstance(cfg.get("pretrained_cfg"), Mapping):
        warnings.append("timm pretrained_cfg is not a mapping")
    token.model_type = family_of(None, token.architecture)
    token.feature_dim = _positive_int(cfg.get("num_features"))
    token.num_labels = _positive_int(cfg.get("num_classes") or pretrained.get("num_classes"))
    token.input_size = _positive_int(pretrained.get("input_size") or pretrained.get("test_input_size"))
    tag = pretrained.get("tag")
    if tag and token.architecture and "." not in token.architecture:
        token.architecture = f"{token.architecture}.{tag}"


def _from_timm_card(token: ModelToken, body: str) -> None:
    name = token.model_id.rsplit("/", 1)[-1]
    if not token.architecture and _TIMM_NAME.match(name):
        # timm names a Hub repo after the model it holds (resnet50.a1_in1k): without a config,
        # the name is the architecture
        token.architecture = name
    if not any(r.get("dataset") for r in token.eval_results if "imagenet" in str(r.get("dataset")).lower()):
        top1 = _comparison_table_top1(body, name)
        if top1 is not None:  # timm's "Model Comparison" table: ImageNet-1k validation results
            token.eval_results.append({"dataset": "imagenet-1k", "metric": "top1", "value": top1})
    if not token.input_size:
        match = _IMAGE_SIZE.search(body)
        if match:
            token.input_size = int(match.group(1))
    for _, name in _CARD_DATASET.findall(body):
        name = name.strip()
        if name and name not in token.datasets:
            token.datasets.append(name)


def _comparison_table_top1(body: str, name: str) -> float | None:
    """The top-1 of the row naming this model (`[resnet50.a1_in1k](...)`) in a markdown table
    with `model` and `top1` columns (timm cards' "Model Comparison"); the first such row."""
    header: list[str] | None = None
    for line in body.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = [c.lower().replace(" ", "").replace("-", "") for c in cells]
            continue
        if "model" not in header or "top1" not in header:
            continue
        if len(cells) <= max(header.index("model"), header.index("top1")):
            continue
        model = _MARKDOWN_LINK.sub(r"\1", cells[header.index("model")]).strip(" `*")
        if model.lower() != name.lower():
            continue
        try:
            value = float(cells[header.index("top1")].rstrip("%"))
        except ValueError:
            return None
        return value if 0 < value <= 100 else None
    return None


def _from_sentence_transformers(token: ModelToken, contents: Mapping[str, Any]) -> None:
    # a SetFit model is a sentence-transformers body with a head: its card says setfit
    token.library = "setfit" if token.library == "setfit" else "sentence-transformers"
    setfit = contents.get("config_setfit.json")
    if isinstance(setfit, Mapping) and isinstance(setfit.get("labels"), list) and setfit["labels"]:
        token.num_labels = len(setfit["labels"])
    token.pipeline_tag = token.pipeline_tag or "sentence-similarity"
    modules = contents.get("modules.json")
    dims: list[int] = []
    if isinstance(modules, list):
        for module in modules:
            if not isinstance(module, Mapping):
                continue
            path = str(module.get("path") or "")
            conf = contents.get(f"{path}/config.json") if path else None
            if isinstance(conf, Mapping):
                dim = _positive_int(conf.get("out_features") or conf.get("word_embedding_dimension"))
                if dim:
                    dims.append(dim)
    else:
        pooling = contents.get("1_Pooling/config.json")
        if isinstance(pooling, Mapping) and _positive_int(pooling.get("word_embedding_dimension")):
            dims.append(int(pooling["word_embedding_dimension"]))
    if dims:
        token.feature_dim = dims[-1]
    sbert = contents.get("sentence_bert_config.json")
    if isinstance(sbert, Mapping) and _positive_int(sbert.get("max_seq_length")):
        token.max_seq_len = int(sbert["max_seq_length"])


def params_by_instantiation(config: Mapping[str, Any], num_labels: int | None) -> int | None:
    """The parameter count of a config of the installed transformers library, built on the meta
    device (no memory, no weights, never remote code): for the architectures `params_from_config`
    has no formula for (ResNet, ConvNeXt, Swin, EfficientNet, MobileNet, RegNet, ...). None for a
    model type transformers does not know, a config it refuses, or one deeper than
    `MAX_COUNTED_LAYERS`."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or _too_deep(config):
        return None
    try:
        text = json.dumps(dict(config), sort_keys=True)
    except (TypeError, ValueError):
        return None
    return _instantiated_count(text, num_labels)


def _too_deep(config: Mapping[str, Any]) -> bool:
    for key, value in config.items():
        if not any(word in key for word in ("layer", "depth", "block")):
            continue
        values = value if isinstance(value, list) else [value]
        if sum(v for v in values if isinstance(v, int) and not isinstance(v, bool)) > MAX_COUNTED_LAYERS:
            return True
    return False


_BUILD_LOCK = threading.Lock()  # crawl workers are threads: one import and build at a time
# the model class each head is built with (`count_on_meta`)
META_HEADS = {
    "image-classification": "AutoModelForImageClassification",
    "text-classification": "AutoModelForSequenceClassification",
    "masked-lm": "AutoModelForMaskedLM",
    "feature-extraction": "AutoModel",
}


def head_of(architecture: str | None) -> str:
    """The `META_HEADS` key of a config's first architecture (a base model without one)."""
    arch = architecture or ""
    if "ForImageClassification" in arch:
        return "image-classification"
    if "ForSequenceClassification" in arch:
        return "text-classification"
    if "ForMaskedLM" in arch:
        return "masked-lm"
    return "feature-extraction"


@functools.lru_cache(maxsize=4096)
def count_on_meta(config_json: str, head: str) -> int:
    """Exact parameter count of a transformers config (JSON text) with a head (`META_HEADS`),
    built on the meta device: no memory, no weights, and never remote code (`auto_map` is
    dropped). One build at a time across threads. Raises KeyError for a model type the installed
    transformers does not know, and whatever transformers raises for a config it refuses.

    The one counter of the package: the crawl (`params_by_instantiation`) and the cost model's
    configs of standard sizes (`hardware._cardconfig`) both call it."""
    import logging
    import warnings

    config = json.loads(config_json)
    model_type = config.pop("model_type", None)
    config.pop("transformers_version", None)
    config.pop("auto_map", None)  # remote code is never run
    hf_logger = logging.getLogger("transformers")
    with _BUILD_LOCK:
        level = hf_logger.level
        try:
            import torch
            import transformers
            from transformers import CONFIG_MAPPING

            if model_type not in CONFIG_MAPPING:
                raise KeyError(f"transformers does not know model type {model_type!r}")
            auto = getattr(transformers, META_HEADS[head])
            hf_logger.setLevel(logging.ERROR)
            with warnings.catch_warnings(), torch.device("meta"):
                warnings.simplefilter("ignore")
                model = auto.from_config(CONFIG_MAPPING[model_type](**config))
            return int(sum(p.numel() for p in model.parameters()))
        finally:
            hf_logger.setLevel(level)


def _instantiated_count(config_json: str, num_labels: int | None) -> int | None:
    config = json.loads(config_json)
    if num_labels and not (config.get("id2label") or config.get("num_labels")):
        config["num_labels"] = num_labels
    head = head_of(str((_as_list(config.get("architectures")) or [""])[0]))
    try:
        count = count_on_meta(json.dumps(config, sort_keys=True), head)
    except Exception:  # not installed, or a config transformers refuses: no count
        return None
    return count if 0 < count <= MAX_PARAMETERS else None


def params_from_card(body: str) -> int | None:
    """The parameter count a card states: timm's `Params (M): 25.6`, a field (`Parameters: 25.6M`,
    `# Params | 25,557,032`) or prose (`110M parameters`, `25.6 million params`). A field or
    prose figure under `MIN_CARD_PARAMETERS` is not a model's size ("Training parameters: 5k
    steps"), and a bare number without a unit counts only as a plain count: `Params: 25.6` says
    nothing certain."""
    if not body:
        return None
    match = _PARAMS_LINE.search(body)
    if match:
        return round(float(match.group(2).replace(",", "")) * _PARAMS_UNITS[match.group(1).lower()])
    for pattern in (_PARAMS_FIELD, _PARAMS_TEXT):
        for match in pattern.finditer(body):
            value = float(match.group(1).replace(",", ""))
            unit = (match.group(2) or "").lower()
            count = value * _PARAMS_UNITS[unit] if unit else value
            if count >= MIN_CARD_PARAMETERS:
                return round(count)
    return None


def _pipeline_from_architecture(architecture: str) -> str | None:
    for key, tag in (
        ("ForImageClassification", "image-classification"),
        ("ForSequenceClassification", "text-classification"),
        ("ForTokenClassification", "token-classification"),
        ("ForMaskedLM", "fill-mask"),
        ("ForQuestionAnswering", "question-answering"),
        ("ForCausalLM", "text-generation"),
        ("ForAudioClassification", "audio-classification"),
    ):
        if key in architecture:
            return tag
    return None


def _modality(token: ModelToken) -> str | None:
    tag = token.pipeline_tag or ""
    if any(k in tag for k in ("zero-shot-image", "image-text", "visual-question", "image-to-text")):
        return "multimodal"
    if token.family == "clip":
        return "multimodal"
    if "image" in tag or "object-detection" in tag or token.library == "timm" or token.family in _IMAGE_TYPES:
        return "image"
    if "audio" in tag or "speech" in tag:
        return "audio"
    if tag or token.family in _TEXT_TYPES or token.library == "sentence-transformers":
        return "text"
    return None
