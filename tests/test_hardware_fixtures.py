"""Tiny real models for the hardware tests: built from transformers configs, saved with safetensors.

Imported by the other `test_hardware*` / `test_agent*` / `test_export*` files; holds no tests itself.
"""

from __future__ import annotations

import string
from pathlib import Path

_WORDS = [
    "the",
    "film",
    "this",
    "phone",
    "hotel",
    "our",
    "team",
    "new",
    "album",
    "that",
    "recipe",
    "update",
    "was",
    "felt",
    "seemed",
    "turned",
    "out",
    "is",
    "became",
    "looked",
    "wonderful",
    "dull",
    "surprisingly",
    "good",
    "a",
    "complete",
    "mess",
    "too",
    "long",
    "fast",
    "broken",
    "charming",
    "and",
    "i",
    "would",
    "recommend",
    "it",
    "but",
    "ending",
    "let",
    "me",
    "down",
    "for",
    "price",
    "after",
    "week",
    "movie",
    "bad",
    "great",
    "awful",
]


def _vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list(string.ascii_lowercase) + list(string.digits) + list(".,!?'-")
    pieces = ["##" + c for c in string.ascii_lowercase]
    words = [w for w in dict.fromkeys(_WORDS) if w not in letters]
    filler = [f"tok{i}" for i in range(1000)]  # a realistic share of weights in the embedding
    return list(dict.fromkeys(specials + letters + pieces + words + filler))


def tiny_bert(folder: Path, *, num_labels: int = 3, seed: int = 0) -> Path:
    """A 2-layer BERT text classifier (hidden 128) with a WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_vit(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer ViT backbone (32x32 images, patch 8) with its image processor."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
