"""The task sample a variant is calibrated and checked on, turned into ONNX inputs.

A sample comes from the user's dataset (`hf_spider.tasks.load_task`) when one is given; otherwise
a synthetic sample stands in and every result says so (`source: synthetic`): fine for timing and
for the agreement of a variant with fp32, not for the change of a transferability score.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from hf_spider.errors import DatasetError

logger = logging.getLogger("hf_spider.hardware")

_SUBJECTS = ["the film", "this phone", "the hotel", "our team", "the new album", "that recipe", "the update"]
_VERBS = ["was", "felt", "seemed", "turned out", "is", "became", "looked"]
_ADJS = [
    "wonderful",
    "dull",
    "surprisingly good",
    "a complete mess",
    "too long",
    "fast",
    "broken",
    "charming",
]
_TAILS = [
    "",
    " and I would recommend it.",
    " but the ending let me down.",
    " for the price.",
    " after a week.",
]


@dataclass
class TaskSample:
    """Inputs (texts or images) and optional labels of a few rows of a task."""

    texts: list[str] | None = None
    images: np.ndarray | None = None  # N x H x W x 3, float32 in [0, 1]
    labels: np.ndarray | None = None
    source: str = "synthetic"

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.images)

    @property
    def modality(self) -> str:
        return "text" if self.texts is not None else "image"

    @classmethod
    def synthetic(cls, modality: str, n: int = 32, seed: int = 0, size: int = 224) -> TaskSample:
        """Deterministic stand-in inputs: review-like sentences, or smooth coloured images."""
        rng = np.random.default_rng(seed)
        if modality == "text":
            texts = [
                f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_ADJS)}{rng.choice(_TAILS)}"
                for _ in range(n)
            ]
            return cls(texts=texts, source="synthetic")
        low = rng.random((n, 8, 8, 3)).astype(np.float32)
        images = low.repeat(size // 8, 1).repeat(size // 8, 2)
        images += 0.1 * rng.standard_normal(images.shape).astype(np.float32)
        return cls(images=np.clip(images, 0, 1), source="synthetic")

    @classmethod
    def from_task(cls, task: Any, n: int = 32, seed: int = 0) -> TaskSample:
        """Up to `n` rows of a `hf_spider.tasks.Task` (its `inputs`: texts or PIL images; `labels`)."""
        inputs = getattr(task, "inputs", None)
        if not inputs:
            raise DatasetError(
                f"task {getattr(task, 'name', '?')} has no data rows to calibrate on",
                hint="give a dataset with examples, not only a card",
            )
        labels = getattr(task, "labels", None)
        rng = np.random.default_rng(seed)
        index = np.sort(rng.permutation(len(inputs))[: min(n, len(inputs))])
        y = np.asarray(labels)[index] if labels is not None else None
        name = f"dataset {getattr(task, 'name', 'task')}"
        if getattr(task, "modality", "text") == "text" or isinstance(inputs[0], str):
            return cls(texts=[str(inputs[i]) for i in index], labels=y, source=name)
        picked = [_resize(_to_float_image(inputs[i]), 224) for i in index]
        return cls(images=np.stack(picked), labels=y, source=name)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        if self.texts is not None:
            digest.update("\x00".join(self.texts).encode())
        else:
            digest.update(np.ascontiguousarray(self.images).tobytes())
        return digest.hexdigest()[:16]


def _to_float_image(image: Any) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=2)
    array = array.astype(np.float32)
    return array / 255.0 if array.max() > 1.5 else array


def _resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an H x W x C float image (numpy only, so the agent side needs no PIL)."""
    height, width = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def feeds_for(exported, sample: TaskSample, *, max_length: int = 128) -> dict[str, np.ndarray]:
    """ONNX inputs for every row of the sample, preprocessed the way the model expects."""
    if sample.modality != exported.modality:
        raise DatasetError(
            f"{exported.model_id} takes {exported.modality} inputs but the sample has {sample.modality}",
            hint="pick a dataset of the model's modality",
        )
    if sample.modality == "text":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(exported.dir))
        longest = max(len(tokenizer(t)["input_ids"]) for t in sample.texts)
        encoded = tokenizer(
            sample.texts,
            padding="max_length",
            truncation=True,
            max_length=min(max_length, longest),
            return_tensors="np",
        )
        return {k: np.asarray(v, dtype=np.int64) for k, v in encoded.items()}
    return {_image_input_name(exported): _image_pixels(exported, sample.images)}


def _image_input_name(exported) -> str:
    import onnx

    graph = onnx.load(str(exported.path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return next(i.name for i in graph.input if i.name not in initializers)


def _image_pixels(exported, images: np.ndarray) -> np.ndarray:
    if (exported.dir / "preprocessor_config.json").exists():
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(str(exported.dir))
        uint8 = [(np.clip(img, 0, 1) * 255).astype(np.uint8) for img in images]
        return np.asarray(processor(images=uint8, return_tensors="np")["pixel_values"], dtype=np.float32)
    spec = dict(exported.preprocess or {})
    if "size" not in spec:
        spec.update(_spec_from_graph(exported))
    height, width = spec.get("size", [224, 224])
    mean = np.asarray(spec.get("mean", [0.5, 0.5, 0.5]), dtype=np.float32)
    std = np.asarray(spec.get("std", [0.5, 0.5, 0.5]), dtype=np.float32)
    batch = np.stack([_resize(img, (height, width)) for img in images])
    if spec.get("channel_order", "RGB") == "BGR":
        batch = batch[..., ::-1]
    # mean and std are in units of [0, 1] pixels: Caffe-style 0..255 inputs use std = 1/255.
    batch = (batch - mean) / std
    if spec.get("layout", "NCHW") == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)


def _spec_from_graph(exported) -> dict[str, Any]:
    """Input size and layout read from the graph's declared input shape."""
    import onnx

    graph = onnx.load(str(exported.path), load_external_data=False).graph
    name = _image_input_name(exported)
    dims = next(i for i in graph.input if i.name == name).type.tensor_type.shape.dim
    shape = [d.dim_value or None for d in dims]
    if len(shape) == 4 and shape[-1] == 3:
        return {"size": [shape[1] or 224, shape[2] or 224], "layout": "NHWC"}
    if len(shape) == 4:
        return {"size": [shape[2] or 224, shape[3] or 224], "layout": "NCHW"}
    return {"size": [224, 224], "layout": "NCHW"}
