"""`Task`: a dataset as hf-spider sees it, and its task token.

The task token has two parts, either of which may be absent:

* the **metadata part**, `Task.metadata_vector()`, a fixed-length vector of what the card and the
  labels say (modality, classes, size, balance, task categories, label names, tags, description);
* the **data part**, `Task.data_token`, a fixed-length summary of the sample's features under a
  probe encoder of the modality (MiniLM-L6 for text, EfficientNet-Lite0 for images): where the
  class prototypes lie, how far apart they are, and how spread each class is.

Layout of `metadata_vector()` (length `METADATA_VECTOR_LENGTH` = 64):

| slice | meaning |
| --- | --- |
| 0:2 | modality one-hot (image, text) |
| 2 | log10(num_classes) / 3 (1,000 classes -> 1) |
| 3, 4 | log10(num_examples + 1) / 7 and 1 when the size is known (else 0, 0) |
| 5, 6 | class balance (normalised entropy) and 1 when known (else 0, 0) |
| 7 | log10(sample size + 1) / 4 (0 for metadata-only tasks) |
| 8:20 | `task_categories` multi-hot over `TASK_CATEGORIES` (last slot: any other category) |
| 20:44 | label names, hashed bag of words (signed feature hashing, L2-normalised) |
| 44:64 | name, tags and description, hashed bag of words (same hashing, L2-normalised) |

Layout of `data_token` (length `DATA_TOKEN_LENGTH` = 104), computed on L2-normalised probe
features projected to 32 dimensions by a fixed seeded Gaussian projection:

| slice | meaning |
| --- | --- |
| 0:32 | mean of the class prototypes |
| 32:64 | standard deviation of the prototypes across classes |
| 64:96 | mean within-class standard deviation |
| 96 | mean cosine similarity between prototypes |
| 97 | smallest distance between two prototypes |
| 98 | mean distance of an example to its prototype (within-class spread) |
| 99 | between-class / (between + within) variance ratio |
| 100 | leave-one-out 1-nearest-neighbour accuracy of the probe features |
| 101 | nearest-prototype accuracy (training fit) |
| 102 | effective rank of the prototypes / number of classes |
| 103 | log10(classes in the sample) / 3 |
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METADATA_VECTOR_LENGTH = 64
DATA_TOKEN_LENGTH = 104
PROJECTION_DIM = 32

TASK_CATEGORIES = (
    "image-classification",
    "text-classification",
    "zero-shot-classification",
    "zero-shot-image-classification",
    "token-classification",
    "sentence-similarity",
    "feature-extraction",
    "question-answering",
    "object-detection",
    "image-segmentation",
    "audio-classification",
)
_LABEL_HASH_DIM = 24
_TEXT_HASH_DIM = 20


@dataclass
class Task:
    """A classification dataset: metadata, an optional stratified sample, and its task token.

    Example:
        >>> task = load_task("rotten_tomatoes.csv", sample=200)  # doctest: +SKIP
        >>> task.metadata["num_classes"], task.has_data, task.metadata_vector().shape
        (2, True, (64,))
    """

    name: str
    modality: str
    metadata: dict[str, Any]
    inputs: list[Any] | None = None
    labels: np.ndarray | None = None
    fingerprint: str = ""
    skipped: int = 0
    data_token: np.ndarray | None = None
    prototypes: np.ndarray | None = field(default=None, repr=False)
    probe: str | None = None

    @property
    def has_data(self) -> bool:
        return self.inputs is not None and self.labels is not None and len(self.labels) > 0

    @property
    def num_classes(self) -> int:
        return int(self.metadata.get("num_classes") or 0)

    @property
    def label_names(self) -> list[str]:
        return list(self.metadata.get("label_names") or [])

    def describe(self) -> dict[str, Any]:
        """The task as the later stages read it: its metadata, plus its name, modality and where
        it came from (`dataset_id`, `location`). The ranker reads this (`hf_spider.ranker.task_meta`),
        the recommendation report keeps a summary of it; there is no other derived form."""
        meta = dict(self.metadata or {})
        meta.setdefault("name", self.name)
        meta["modality"] = self.modality or meta.get("modality")
        source = meta.get("source") or {}
        if isinstance(source, Mapping) and source.get("dataset"):
            meta.setdefault("dataset_id", str(source["dataset"]))
        if isinstance(source, Mapping) and source.get("location"):
            meta.setdefault("location", str(source["location"]))
        return meta

    def metadata_vector(self) -> np.ndarray:
        """The metadata part of the task token (layout in the module docstring)."""
        md = self.metadata
        vec = np.zeros(METADATA_VECTOR_LENGTH, dtype=np.float32)
        if self.modality == "image":
            vec[0] = 1.0
        elif self.modality == "text":
            vec[1] = 1.0
        vec[2] = np.log10(max(self.num_classes, 1)) / 3.0
        if md.get("num_examples"):
            vec[3] = np.log10(md["num_examples"] + 1) / 7.0
            vec[4] = 1.0
        if md.get("class_balance") is not None:
            vec[5] = float(md["class_balance"])
            vec[6] = 1.0
        if self.has_data:
            vec[7] = np.log10(len(self.labels) + 1) / 4.0
        for cat in md.get("task_categories") or []:
            slot = TASK_CATEGORIES.index(cat) if cat in TASK_CATEGORIES else len(TASK_CATEGORIES)
            vec[8 + slot] = 1.0
        vec[20:44] = hashed_bag(" ".join(self.label_names), _LABEL_HASH_DIM)
        prose = " ".join([self.name, *(md.get("tags") or []), md.get("description") or ""])
        vec[44:64] = hashed_bag(prose, _TEXT_HASH_DIM)
        return vec

    def token(self) -> np.ndarray:
        """Both parts concatenated; a missing data part is zeros (`has_data` tells them apart)."""
        data = self.data_token if self.data_token is not None else np.zeros(DATA_TOKEN_LENGTH, np.float32)
        return np.concatenate([self.metadata_vector(), data]).astype(np.float32)

    def to_dict(self, *, include_inputs: bool = False) -> dict[str, Any]:
        """JSON-ready summary: metadata, sample size, class counts, both token parts."""
        out: dict[str, Any] = {
            "name": self.name,
            "modality": self.modality,
            "fingerprint": self.fingerprint,
            "has_data": self.has_data,
            "sample_size": len(self.labels) if self.labels is not None else 0,
            "skipped": self.skipped,
            "metadata": _jsonable(self.metadata),
            "metadata_vector": self.metadata_vector().round(6).tolist(),
            "data_token": None if self.data_token is None else np.round(self.data_token, 6).tolist(),
            "probe": self.probe,
        }
        if self.labels is not None:
            ids, counts = np.unique(self.labels, return_counts=True)
            names = self.label_names
            out["sample_class_counts"] = {
                (names[i] if i < len(names) else str(i)): int(c) for i, c in zip(ids, counts, strict=True)
            }
        if include_inputs and self.inputs is not None and self.modality == "text":
            out["inputs"] = list(self.inputs)
            out["labels"] = self.labels.tolist()
        return out


def hashed_bag(text: str, dim: int) -> np.ndarray:
    """Signed feature hashing of lower-cased word tokens, L2-normalised (zeros for no words)."""
    vec = np.zeros(dim, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.md5(word.encode(), usedforsecurity=False).digest()
        slot = int.from_bytes(digest[:4], "little") % dim
        vec[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = np.linalg.norm(vec)
    return vec / norm if norm > 0 else vec


def summarise_features(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probe features of a sample -> (data token of length DATA_TOKEN_LENGTH, class prototypes)."""
    feats = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    feats = feats / np.where(norms > 0, norms, 1.0)
    classes, inverse = np.unique(labels, return_inverse=True)
    k = len(classes)
    protos = np.stack([feats[inverse == c].mean(axis=0) for c in range(k)])
    within = np.stack([feats[inverse == c].std(axis=0) for c in range(k)])

    proj = _projection(feats.shape[1])
    p_protos = protos @ proj
    token = np.zeros(DATA_TOKEN_LENGTH, dtype=np.float64)
    token[0:32] = p_protos.mean(axis=0)
    token[32:64] = p_protos.std(axis=0)
    token[64:96] = (within @ np.abs(proj)).mean(axis=0) / np.sqrt(feats.shape[1])

    unit = protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    off = ~np.eye(k, dtype=bool)
    token[96] = cos[off].mean() if k > 1 else 1.0
    dists = np.linalg.norm(protos[:, None, :] - protos[None, :, :], axis=-1)
    token[97] = dists[off].min() if k > 1 else 0.0
    spread = np.linalg.norm(feats - protos[inverse], axis=1)
    token[98] = spread.mean()
    grand = feats.mean(axis=0)
    between = (np.bincount(inverse, minlength=k) * ((protos - grand) ** 2).sum(axis=1)).sum()
    within_ss = (spread**2).sum()
    token[99] = between / (between + within_ss) if between + within_ss > 0 else 0.0
    token[100] = _loo_1nn_accuracy(feats, inverse)
    token[101] = ((feats @ unit.T).argmax(axis=1) == inverse).mean()
    sv = np.linalg.svd(protos - protos.mean(axis=0), compute_uv=False)
    if sv.sum() > 0 and k > 1:
        p = sv / sv.sum()
        p = p[p > 0]
        token[102] = np.exp(-(p * np.log(p)).sum()) / k
    token[103] = np.log10(k) / 3.0
    return token.astype(np.float32), protos.astype(np.float32)


def _loo_1nn_accuracy(feats: np.ndarray, labels: np.ndarray, chunk: int = 1024) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy under cosine similarity, in row chunks."""
    n = len(feats)
    if n < 2:
        return 0.0
    hits = 0
    for start in range(0, n, chunk):
        sims = feats[start : start + chunk] @ feats.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf
        hits += int((labels[sims.argmax(axis=1)] == labels[start : start + chunk]).sum())
    return hits / n


def _projection(dim: int) -> np.ndarray:
    """A fixed Gaussian projection dim -> PROJECTION_DIM, the same for every run of a given dim."""
    rng = np.random.default_rng(1_000_003 + dim)
    return rng.standard_normal((dim, PROJECTION_DIM)) / np.sqrt(PROJECTION_DIM)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
