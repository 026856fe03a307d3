"""Tiny real models (random weights) for tests and demos of the backbone code.

They are genuine transformers / sentence-transformers / ONNX repos, only small: what they compute
is meaningless, but shapes, pooling, caching and loading go through the real code paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = [
    "the",
    "a",
    "an",
    "is",
    "was",
    "good",
    "bad",
    "great",
    "awful",
    "movie",
    "film",
    "plot",
    "actor",
    "story",
    "boring",
    "fun",
    "love",
    "hate",
    "cat",
    "dog",
    "bird",
    "fish",
    "red",
    "blue",
    "green",
    "review",
    "number",
    "fresh",
    "rotten",
    "tweet",
    "phone",
    "android",
    "iphone",
    "web",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
]


def _tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    return BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True, model_max_length=64)


def _bert_config(num_labels: int | None = None):
    from transformers import BertConfig

    kwargs = {"num_labels": num_labels} if num_labels else {}
    return BertConfig(
        vocab_size=len(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])) + 36,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        **kwargs,
    )


def make_tiny_text_model(
    folder: str | Path,
    *,
    kind: str = "encoder",
    seed: int = 0,
    safetensors: bool = True,
    num_labels: int = 3,
) -> Path:
    """A 2-layer BERT with a real WordPiece tokenizer, saved as a Hub-layout repo.

    kind: "encoder" (BertModel), "sentence-transformers" (plus `modules.json`, CLS `1_Pooling`,
    `2_Normalize`), or "classifier" (BertForSequenceClassification with `num_labels` classes).
    """
    import torch
    from transformers import BertForSequenceClassification, BertModel

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = _tokenizer(folder)
    if kind == "classifier":
        config = _bert_config(num_labels)
        config.id2label = {i: f"class_{i}" for i in range(num_labels)}
        config.label2id = {v: k for k, v in config.id2label.items()}
        model = BertForSequenceClassification(config)
    else:
        model = BertModel(_bert_config(), add_pooling_layer=False)
    model.save_pretrained(folder, safe_serialization=safetensors)
    tokenizer.save_pretrained(folder)
    if kind == "sentence-transformers":
        (folder / "modules.json").write_text(
            json.dumps(
                [
                    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                    {
                        "idx": 1,
                        "name": "1",
                        "path": "1_Pooling",
                        "type": "sentence_transformers.models.Pooling",
                    },
                    {
                        "idx": 2,
                        "name": "2",
                        "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize",
                    },
                ]
            )
        )
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 32, "do_lower_case": False})
        )
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {
                    "word_embedding_dimension": 32,
                    "pooling_mode_cls_token": True,
                    "pooling_mode_mean_tokens": False,
                    "pooling_mode_max_tokens": False,
                    "pooling_mode_mean_sqrt_len_tokens": False,
                }
            )
        )
        (folder / "2_Normalize").mkdir(exist_ok=True)
    return folder


def make_tiny_vision_model(
    folder: str | Path, *, kind: str = "vit", seed: int = 0, num_labels: int = 3
) -> Path:
    """A tiny ViT image classifier (16x16 input, class token) or a tiny ResNet (pooler output)."""
    import torch
    from transformers import (
        ResNetConfig,
        ResNetModel,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    folder = Path(folder)
    torch.manual_seed(seed)
    processor = ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    if kind == "vit":
        config = ViTConfig(
            image_size=16,
            patch_size=8,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            num_labels=num_labels,
        )
        model = ViTForImageClassification(config)
    elif kind == "resnet":
        model = ResNetModel(
            ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3)
        )
    else:
        raise ValueError(f"unknown kind {kind!r}")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def make_tiny_onnx_image_model(
    folder: str | Path,
    *,
    size: int = 8,
    dim: int = 6,
    classes: int = 2,
    seed: int = 0,
    caffe_style: bool = False,
):
    """An ONNX image model: per-channel global mean -> linear features -> linear logits.

    `caffe_style` makes it take NHWC BGR pixels in 0..255 minus channel means, declared in a
    `preprocessing` block of config.json as the zoo's open_nsfw repo does.
    Returns (folder, W_features (3 x dim), W_logits (dim x classes)) so a test can recompute it.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((3, dim)).astype(np.float32)
    w2 = rng.standard_normal((dim, classes)).astype(np.float32)
    axes = numpy_helper.from_array(np.array([1, 2] if caffe_style else [2, 3], dtype=np.int64), "axes")
    name = "input_0" if caffe_style else "pixel_values"
    shape = ["batch", size, size, 3] if caffe_style else ["batch", 3, size, size]
    nodes = [
        helper.make_node("ReduceMean", [name, "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w1"], ["features"]),
        helper.make_node("MatMul", ["features", "w2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", dim]),
        ],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    config = {
        "model_type": "onnx",
        "feature_output": "features",
        "logits_output": "logits",
        "input_size": [size, size],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "layout": "NCHW",
    }
    if caffe_style:
        config = {
            "model_type": "onnx",
            "input_name": name,
            "input_size": [size, size, 3],
            "input_layout": "NHWC",
            "feature_output": "features",
            "logits_output": "logits",
            "preprocessing": {
                "resize": [size + 2, size + 2],
                "interpolation": "bilinear",
                "center_crop": [size, size],
                "channel_order": "BGR",
                "pixel_range": [0, 255],
                "mean": [104.0, 117.0, 123.0],
                "std": [1.0, 1.0, 1.0],
            },
        }
    (folder / "config.json").write_text(json.dumps(config))
    return folder, w1, w2
