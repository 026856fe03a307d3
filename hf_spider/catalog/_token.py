"""The model token: what hf-spider knows about one Hub model, as fields and as a fixed-length vector.

`ModelToken` holds the structured facts read from a model's card, config and safetensors metadata.
`ModelToken.vector()` turns them into a numeric vector of length `TOKEN_DIM` whose layout is
`VECTOR_FIELDS` (one name per position). Every numeric fact has its own "missing" bit, so an
unknown value is never confused with zero. Categorical facts are one-hot over a fixed vocabulary
with an explicit `other` and `missing` slot; the model type is also hashed into a few buckets so
families outside the vocabulary still differ from one another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = 1

# Fixed vocabularies of the one-hot blocks. Changing one changes TOKEN_DIM: bump SCHEMA_VERSION.
MODALITIES = ("image", "text", "audio", "multimodal")
PIPELINE_TAGS = (
    "image-classification",
    "image-feature-extraction",
    "object-detection",
    "image-segmentation",
    "zero-shot-image-classification",
    "text-classification",
    "token-classification",
    "fill-mask",
    "feature-extraction",
    "sentence-similarity",
    "question-answering",
    "zero-shot-classification",
    "text-generation",
    "text2text-generation",
    "summarization",
    "translation",
    "audio-classification",
    "automatic-speech-recognition",
)
LIBRARIES = ("transformers", "timm", "sentence-transformers", "onnx", "open_clip", "keras", "pytorch")
# Families that are image or text by themselves (the tokenizer infers a modality from them).
IMAGE_FAMILIES = (
    "vit",
    "deit",
    "beit",
    "swin",
    "convnext",
    "resnet",
    "efficientnet",
    "mobilenet",
    "regnet",
    "van",
)
TEXT_FAMILIES = (
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "electra",
    "albert",
    "deberta",
    "mpnet",
    "fnet",
    "camembert",
    "perceiver",
    "t5",
    "gpt2",
    "llama",
)
FAMILIES = (*IMAGE_FAMILIES, "clip", "data2vec", *TEXT_FAMILIES)
FAMILY_HASH_BUCKETS = 8
# Pre-training / fine-tuning dataset indicators: name -> substrings that mark it in a dataset id.
DATASET_GROUPS: dict[str, tuple[str, ...]] = {
    "imagenet-1k": ("imagenet-1k", "imagenet_1k", "imagenet1k", "in1k", "ilsvrc"),
    "imagenet-21k": ("imagenet-21k", "imagenet_21k", "imagenet21k", "in21k", "in22k", "imagenet-22k"),
    "imagenet-any": ("imagenet",),
    "jft-laion-web": ("jft", "laion", "yfcc", "webli", "datacomp", "openai"),
    "cifar": ("cifar",),
    "glue": ("glue", "sst2", "sst-2", "qqp", "cola", "mnli", "qnli", "mrpc", "rte", "stsb"),
    "wiki-books": ("wikipedia", "bookcorpus", "wiki"),
    "web-text": ("cc100", "c4", "common_crawl", "commoncrawl", "openwebtext", "oscar", "cc_news"),
    "sentiment-reviews": ("imdb", "yelp", "amazon", "rotten", "sentiment", "emotion", "tweet"),
    "sentence-pairs": ("snli", "multi_nli", "ms_marco", "msmarco", "sentence-transformers", "s2orc", "quora"),
}
LICENSE_GROUPS = ("permissive", "copyleft-or-cc", "non-commercial", "other")
HEAD_KINDS = ("classification", "masked-lm", "base", "other")

# "top-5 accuracy", "Top 5 Accuracy", "top5_acc", "acc@5": an accuracy over k > 1 guesses
_TOP_K = re.compile(r"(?:top|acc|accuracy)[\s_@-]*(?:[2-9]|[1-9]\d)(?!\d)")
_TOP_1 = re.compile(r"top[\s_-]*1(?!\d)")


def _vector_fields() -> tuple[str, ...]:
    names = [
        "log10_params",
        "params_missing",
        "log2_feature_dim",
        "feature_dim_missing",
        "log2_input_size",
        "input_size_missing",
        "log2_max_seq_len",
        "max_seq_len_missing",
        "log2_num_labels",
        "num_labels_missing",
        "log10_downloads",
        "downloads_missing",
        "log10_likes",
        "likes_missing",
        "log2_num_eval_results",
        "best_eval_accuracy",
        "best_eval_accuracy_missing",
        "num_datasets",
        "has_base_model",
        "multilingual",
        "english",
        "languages_missing",
        "has_safetensors",
        "has_onnx",
        "pickle_only",
    ]
    names += [f"modality={m}" for m in MODALITIES] + ["modality=missing"]
    names += [f"pipeline_tag={t}" for t in PIPELINE_TAGS] + ["pipeline_tag=other", "pipeline_tag=missing"]
    names += [f"library={lib}" for lib in LIBRARIES] + ["library=other", "library=missing"]
    names += [f"family={f}" for f in FAMILIES] + ["family=other", "family=missing"]
    names += [f"model_type_hash={i}" for i in range(FAMILY_HASH_BUCKETS)]
    names += [f"dataset={d}" for d in DATASET_GROUPS] + ["dataset=other", "dataset=missing"]
    names += [f"license={g}" for g in LICENSE_GROUPS] + ["license=missing"]
    names += [f"head={h}" for h in HEAD_KINDS] + ["head=missing"]
    return tuple(names)


VECTOR_FIELDS: tuple[str, ...] = _vector_fields()
"""Name of each position of `ModelToken.vector()`; `VECTOR_FIELDS[i]` documents position i."""
TOKEN_DIM = len(VECTOR_FIELDS)
_INDEX = {name: i for i, name in enumerate(VECTOR_FIELDS)}

_PERMISSIVE = ("apache", "mit", "bsd", "isc", "unlicense", "cc0", "zlib", "afl", "bsl", "pddl")
_NON_COMMERCIAL = ("-nc", "noncommercial", "non-commercial", "research", "llama", "gemma", "openrail")
_COPYLEFT = ("gpl", "cc-by", "cc-by-sa", "mpl", "epl", "odbl", "lgpl", "agpl")

_PIPELINE_MODALITY = {
    "image": ("image", "object-detection", "depth", "video", "mask-generation"),
    "audio": ("audio", "speech", "voice"),
    "multimodal": ("zero-shot-image", "image-text", "visual-question", "document-question", "image-to-text"),
}


_BAD = object()


def _coerce(value: Any, kind: str) -> Any:
    """`value` as the field type `kind` (a dataclass annotation string) wants it, or `_BAD`."""
    if value is None:
        return None if "None" in kind else _BAD
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return _BAD
        return int(value) if float(value).is_integer() else _BAD
    if kind.startswith("str"):
        return value if isinstance(value, str) else _BAD
    if kind.startswith("list[str]"):
        if not isinstance(value, list):
            return _BAD
        return [str(v) for v in value if v is not None]
    if kind.startswith("list[dict"):
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else _BAD
    if kind.startswith("dict"):
        return value if isinstance(value, dict) else _BAD
    return value


@dataclass
class ModelToken:
    """One Hub model as hf-spider sees it. Missing facts are `None`, never a made-up default.

    Attributes:
        model_id: `org/name` on the Hub (or the folder name for a local repo).
        sha: commit of the revision that was read; used to skip unchanged models on re-crawl.
        num_parameters_source: where `num_parameters` came from: `safetensors`, `config`,
            `card`, `onnx`, `records` (a published table) or `estimate:<how>`.
        family: normalised model family (`vit`, `bert`, ...) derived from model type or timm arch.
        modality: `image`, `text`, `audio` or `multimodal` when it can be told.
        input_size: square input resolution in pixels (vision); `max_seq_len` for text.
        feature_dim: width of the pooled features a downstream head sees.
        eval_results: `[{"dataset": ..., "metric": ..., "value": ...}]` reported on the card.
        warnings: what could not be parsed; the rest of the token is still usable.
        provenance: where each part came from (`source`, `files`, `paper`, `crawled_at`, ...).
    """

    model_id: str
    sha: str | None = None
    last_modified: str | None = None
    pipeline_tag: str | None = None
    library: str | None = None
    architecture: str | None = None
    model_type: str | None = None
    family: str | None = None
    modality: str | None = None
    num_parameters: int | None = None
    num_parameters_source: str | None = None
    input_size: int | None = None
    max_seq_len: int | None = None
    feature_dim: int | None = None
    num_labels: int | None = None
    datasets: list[str] = field(default_factory=list)
    base_models: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    license: str | None = None
    downloads: int | None = None
    likes: int | None = None
    eval_results: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelToken:
        """A token from its `to_dict`; a value of the wrong type (a hand-edited catalog.jsonl) is
        dropped with a warning on the token instead of failing later, in the ranking."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values, dropped = {}, []
        for key, value in data.items():
            if key not in kinds:
                continue
            ok = _coerce(value, str(kinds[key]))
            if ok is _BAD:
                dropped.append(key)
                continue
            values[key] = ok
        token = cls(**values)
        if dropped:
            token.warnings = [
                *token.warnings,
                f"catalog entry has values of the wrong type, ignored: {', '.join(dropped)}",
            ]
        return token

    # --- derived facts ---------------------------------------------------------------------
    def best_eval_accuracy(self) -> float | None:
        """The highest accuracy (0..1) among the reported eval results; an F1 only where the card
        reports no accuracy; a top-5 (top-k) accuracy is never one (cards often report it beside
        top-1, and it is always the higher), nor an error rate."""
        best: dict[bool, float] = {}  # is an F1 -> best value
        for result in self.eval_results:
            metric = str(result.get("metric", "")).lower()
            value = result.get("value")
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            f1 = metric == "f1" or (metric.startswith("f1") and "acc" not in metric)
            if "acc" not in metric and not f1 and not _TOP_1.search(metric):
                continue
            if "err" in metric:  # "Top-1 Error": not an accuracy
                continue
            if _TOP_K.search(metric) or _TOP_K.search(str(result.get("name") or "").lower()):
                continue
            value = float(value) / 100.0 if 1.0 < value <= 100.0 else float(value)
            if 0.0 <= value <= 1.0 and value > best.get(f1, -1.0):
                best[f1] = value
        return best.get(False, best.get(True))

    def dataset_groups(self) -> list[str]:
        """Names of `DATASET_GROUPS` this model was pre-trained or fine-tuned on."""
        texts = [d.lower() for d in self.datasets]
        if self.architecture:  # timm tags carry the pre-training set: vit_base.augreg_in21k
            texts.append(self.architecture.lower())
        groups = []
        for name, needles in DATASET_GROUPS.items():
            if any(n in t for t in texts for n in needles):
                groups.append(name)
        return groups

    # --- the vector --------------------------------------------------------------------------
    def vector(self) -> np.ndarray:
        """The token as a float32 vector of length `TOKEN_DIM`; position i is `VECTOR_FIELDS[i]`."""
        v = np.zeros(TOKEN_DIM, dtype=np.float32)

        def put(name: str, value: float) -> None:
            v[_INDEX[name]] = value

        def numeric(name: str, missing: str, value: float | None, transform) -> None:
            if value is None or (value <= 0 and transform is not _log1p10):
                put(missing, 1.0)
            else:
                put(name, transform(value))

        numeric("log10_params", "params_missing", self.num_parameters, math.log10)
        numeric("log2_feature_dim", "feature_dim_missing", self.feature_dim, math.log2)
        numeric("log2_input_size", "input_size_missing", self.input_size, math.log2)
        numeric("log2_max_seq_len", "max_seq_len_missing", self.max_seq_len, math.log2)
        numeric("log2_num_labels", "num_labels_missing", self.num_labels, math.log2)
        numeric("log10_downloads", "downloads_missing", self.downloads, _log1p10)
        numeric("log10_likes", "likes_missing", self.likes, _log1p10)
        put("log2_num_eval_results", math.log2(1 + len(self.eval_results)))
        best = self.best_eval_accuracy()
        if best is None:
            put("best_eval_accuracy_missing", 1.0)
        else:
            put("best_eval_accuracy", best)
        put("num_datasets", float(len(self.datasets)))
        put("has_base_model", float(bool(self.base_models)))
        langs = [lang.lower() for lang in self.languages]
        if not langs:
            put("languages_missing", 1.0)
        else:
            put("multilingual", float(len(langs) > 1 or "multilingual" in langs))
            put("english", float("en" in langs or "english" in langs))
        names = [f.lower() for f in self.files]
        put("has_safetensors", float(any(n.endswith(".safetensors") for n in names)))
        put("has_onnx", float(any(n.endswith(".onnx") for n in names) or "onnx" in self.tags))
        pickles = any(n.endswith((".bin", ".pth", ".pt", ".ckpt", ".pkl")) for n in names)
        put("pickle_only", float(pickles and not v[_INDEX["has_safetensors"]]))

        _one_hot(put, "modality", self.modality or _modality_from_pipeline(self.pipeline_tag), MODALITIES)
        _one_hot(put, "pipeline_tag", self.pipeline_tag, PIPELINE_TAGS)
        _one_hot(put, "library", self.library, LIBRARIES)
        _one_hot(put, "family", self.family, FAMILIES)
        if self.model_type or self.family:
            bucket = _stable_hash(self.model_type or self.family or "") % FAMILY_HASH_BUCKETS
            put(f"model_type_hash={bucket}", 1.0)
        groups = self.dataset_groups()
        for g in groups:
            put(f"dataset={g}", 1.0)
        if not self.datasets and not groups:
            put("dataset=missing", 1.0)
        elif self.datasets and not groups:
            put("dataset=other", 1.0)
        _one_hot(put, "license", license_group(self.license), LICENSE_GROUPS)
        _one_hot(put, "head", head_kind(self.architecture, self.pipeline_tag), HEAD_KINDS)
        return v


def _log1p10(x: float) -> float:
    return math.log10(1.0 + max(x, 0.0))


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "big")


def _one_hot(put, prefix: str, value: str | None, vocabulary: tuple[str, ...]) -> None:
    if not value:
        put(f"{prefix}=missing", 1.0)
    elif value in vocabulary:
        put(f"{prefix}={value}", 1.0)
    else:
        put(f"{prefix}=other", 1.0)


def _modality_from_pipeline(tag: str | None) -> str | None:
    if not tag:
        return None
    for modality in ("multimodal", "image", "audio"):
        if any(key in tag for key in _PIPELINE_MODALITY[modality]):
            return modality
    return "text"


def license_group(license_id: str | None) -> str | None:
    """Coarse license class used in the vector: permissive, copyleft-or-cc, non-commercial, other."""
    if not license_id:
        return None
    lic = license_id.lower()
    if any(k in lic for k in _NON_COMMERCIAL):
        return "non-commercial"
    if any(lic.startswith(k) or k in lic for k in _PERMISSIVE):
        return "permissive"
    if any(k in lic for k in _COPYLEFT):
        return "copyleft-or-cc"
    return "other"


def head_kind(architecture: str | None, pipeline_tag: str | None = None) -> str | None:
    """What sits on top of the backbone: a classification head, a masked-LM head, nothing, other."""
    if not architecture:
        if pipeline_tag in ("feature-extraction", "sentence-similarity", "image-feature-extraction"):
            return "base"
        return None
    arch = architecture.lower()
    if "classification" in arch:
        return "classification"
    if "maskedlm" in arch:
        return "masked-lm"
    if arch.endswith("model"):
        return "base"
    if "for" not in arch and (pipeline_tag or "").endswith("classification"):
        return "classification"  # a timm architecture name with its ImageNet classifier
    return "other"
