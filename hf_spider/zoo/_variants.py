"""Intermediate-task variants: a real base model of the zoo fine-tuned on a real source task.

The recipe is short enough for `zoo install` on two CPU cores: the frozen lower part of the
network runs once over a stratified sample of the source task and its outputs are cached; the
last block(s) and a new classifier head are then trained for a few epochs on those cached
activations. Seeds, sample, batch order and thread count are fixed, so a rebuild reproduces
the recipe exactly (bit-identical weights on the same CPU kind and library versions; other
CPUs may differ in the last float bits).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hf_spider.zoo._datasets import load_split
from hf_spider.zoo._models import _lite_card, model_card
from hf_spider.zoo.specs import ZooModel, lite_index

logger = logging.getLogger("hf_spider.zoo")

SEED = 0
# One thread: reproducible, and on a busy shared machine much faster than 2 (no barrier stalls).
THREADS = 1


@dataclass(frozen=True)
class Recipe:
    n_train: int
    n_eval: int
    epochs: int
    lr: float
    batch_size: int
    trained: str
    max_length: int = 128
    input_size: int = 0


TEXT_RECIPE = Recipe(
    n_train=800,
    n_eval=300,
    epochs=5,
    lr=3e-4,
    batch_size=32,
    max_length=96,
    trained="last transformer layer + pooler + classifier",
)
IMAGE_RECIPE = Recipe(
    n_train=500,
    n_eval=250,
    epochs=5,
    lr=1e-3,
    batch_size=32,
    input_size=128,
    trained="last stage + conv_head/bn2 + classifier (BatchNorm statistics frozen)",
)


def stratified_sample(labels: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """Indices of a stratified sample of at most `n` examples (all of them when n >= len)."""
    if n >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(labels)), train_size=n, random_state=seed, stratify=labels)
    return np.sort(idx)


class _Seeded:
    """Fixed seeds and thread count for the duration of a build."""

    def __enter__(self):
        import torch

        self._threads = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        torch.manual_seed(SEED)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self._threads)


def _batches(n: int, size: int, generator) -> list:
    import torch

    order = torch.randperm(n, generator=generator)
    return [order[i : i + size] for i in range(0, n, size)]


def build_text_variant(model: ZooModel, base_dir: Path, datasets_dir: Path, dest: Path) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    recipe = TEXT_RECIPE
    texts, labels, names = load_split(datasets_dir / model.source_task, "train")
    test_texts, test_labels, _ = load_split(datasets_dir / model.source_task, "test")
    pick = stratified_sample(labels, recipe.n_train)
    texts, labels = [texts[i] for i in pick], labels[pick]
    pick = stratified_sample(test_labels, recipe.n_eval)
    test_texts, test_labels = [test_texts[i] for i in pick], test_labels[pick]
    with _Seeded():
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        net = AutoModelForSequenceClassification.from_pretrained(
            base_dir,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            attn_implementation="eager",
        )
        bert = net.bert
        last = bert.encoder.layer[-1]

        def frozen_prefix(batch_texts):
            enc = tokenizer(
                batch_texts, padding=True, truncation=True, max_length=recipe.max_length, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
                mask = bert.get_extended_attention_mask(enc["attention_mask"], enc["input_ids"].shape)
                for layer in bert.encoder.layer[:-1]:
                    hidden = layer(hidden, attention_mask=mask)[0]
            return hidden.clone(), mask.clone()

        def head(hidden, mask):
            out = last(hidden, attention_mask=mask)[0]
            return net.classifier(net.dropout(bert.pooler(out)))

        net.eval()
        # Batches of similar length (stable sort) keep padding, and so the cost, low.
        lengths = [
            len(ids) for ids in tokenizer(texts, truncation=True, max_length=recipe.max_length)["input_ids"]
        ]
        order = np.argsort(lengths, kind="stable")
        groups = [order[i : i + recipe.batch_size] for i in range(0, len(order), recipe.batch_size)]
        cached = [frozen_prefix([texts[j] for j in g]) for g in groups]
        targets = [torch.as_tensor(labels[g]) for g in groups]
        params = [*last.parameters(), *bert.pooler.parameters(), *net.classifier.parameters()]
        optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.01)
        generator = torch.Generator().manual_seed(SEED)
        last.train()
        net.dropout.train()
        for epoch in range(recipe.epochs):
            total = 0.0
            for b in torch.randperm(len(cached), generator=generator).tolist():
                loss = torch.nn.functional.cross_entropy(head(*cached[b]), targets[b])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            logger.info("%s epoch %d loss %.4f", model.repo_id, epoch + 1, total / len(cached))
        net.eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(test_texts), recipe.batch_size):
                enc = tokenizer(
                    test_texts[i : i + recipe.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=recipe.max_length,
                    return_tensors="pt",
                )
                pred = net(**enc).logits.argmax(-1).numpy()
                correct += int((pred == test_labels[i : i + recipe.batch_size]).sum())
        accuracy = correct / len(test_texts)
        net.config.finetuning = {
            "source_task": model.source_task,
            "recipe": asdict(recipe),
            "seed": SEED,
            "threads": THREADS,
            "source_test_accuracy": round(accuracy, 4),
        }
        net.save_pretrained(dest, safe_serialization=True)
        tokenizer.save_pretrained(dest)
    _write_text_card(model, dest, names, accuracy, len(test_texts))
    return {"source_test_accuracy": accuracy}


def _recipe_text(recipe: Recipe, task: str, n_eval: int, accuracy: float) -> str:
    extra = (
        f", input {recipe.input_size}x{recipe.input_size}"
        if recipe.input_size
        else f", max length {recipe.max_length}"
    )
    return (
        "## How it was made\n\n"
        f"Fine-tuned by `hf-spider zoo install` (hf_spider/zoo/_variants.py) on the local dataset `{task}` "
        f"(train split, stratified sample of {recipe.n_train}, seed {SEED}): {recipe.trained}; "
        f"{recipe.epochs} epochs, AdamW lr {recipe.lr}, batch {recipe.batch_size}{extra}; "
        f"lower layers frozen and run once; torch with {THREADS} threads, seed {SEED}.\n\n"
        f"Accuracy on {n_eval} examples of the `{task}` test split: **{accuracy:.4f}**.\n"
    )


def _write_text_card(model: ZooModel, dest: Path, names: list[str], accuracy: float, n_eval: int) -> None:
    meta = {
        "license": model.license,
        "language": "en",
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "base_model": model.base_model,
        "datasets": [model.source_task],
        "tags": ["text-classification", "bert", "intermediate-task"],
        "model-index": [
            {
                "name": model.repo_id,
                "results": [
                    {
                        "task": {"type": "text-classification"},
                        "dataset": {"name": model.source_task, "type": model.source_task, "split": "test"},
                        "metrics": [{"type": "accuracy", "value": round(accuracy, 4)}],
                    }
                ],
            }
        ],
    }
    body = (
        f"# {model.repo_id.split('/')[-1]}\n\n`{model.base_model}` fine-tuned on `{model.source_task}` "
        f"({len(names)} classes: {', '.join(names)}).\n\n"
        + _recipe_text(TEXT_RECIPE, model.source_task, n_eval, accuracy)
    )
    (dest / "README.md").write_text(model_card(model, meta, body))


def image_tensor(images: list, cfg) -> object:
    """PIL images -> normalised (B, 3, H, W) float tensor following a timm `pretrained_cfg`."""
    import torch
    from PIL import Image

    size = cfg.input_size[-1]
    scaled = int(np.floor(size / cfg.crop_pct))
    resample = Image.BICUBIC if cfg.interpolation == "bicubic" else Image.BILINEAR
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, image in enumerate(images):
        image = image.convert("RGB")
        w, h = image.size
        ratio = scaled / min(w, h)
        image = image.resize((max(size, round(w * ratio)), max(size, round(h * ratio))), resample)
        w, h = image.size
        left, top = (w - size) // 2, (h - size) // 2
        image = image.crop((left, top, left + size, top + size))
        out[i] = (np.asarray(image, dtype=np.float32) / 255.0 - mean) / std
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def build_image_variant(model: ZooModel, base_dir: Path, datasets_dir: Path, dest: Path) -> dict:
    import torch
    from safetensors.torch import save_file

    from hf_spider.models import efficientnet_lite as lite

    recipe = IMAGE_RECIPE
    images, labels, names = load_split(datasets_dir / model.source_task, "train")
    test_images, test_labels, _ = load_split(datasets_dir / model.source_task, "test")
    pick = stratified_sample(labels, recipe.n_train)
    images, labels = [images[i] for i in pick], labels[pick]
    pick = stratified_sample(test_labels, recipe.n_eval)
    test_images, test_labels = [test_images[i] for i in pick], test_labels[pick]
    with _Seeded():
        net, base_config = lite.load_from_folder(base_dir, num_classes=len(names))
        # timm's layout for a fine-tuned copy: no upstream weight tag, this head and input size
        config = lite.default_config(
            base_config["architecture"],
            num_classes=len(names),
            label_names=list(names),
            input_size=recipe.input_size,
            tag=None,
        )
        cfg = lite.PretrainedCfg.from_config(config)
        net.eval()
        prefix = torch.nn.Sequential(net.conv_stem, net.bn1, torch.nn.ReLU6(), net.blocks[:-1])

        def run_prefix(batch):
            with torch.inference_mode():
                return prefix(image_tensor(batch, cfg)).clone()

        def head(x):
            x = net.blocks[-1](x)
            x = torch.nn.functional.relu6(net.bn2(net.conv_head(x))).mean(dim=(2, 3))
            return net.classifier(torch.nn.functional.dropout(x, net.dropout_rate, net.training))

        step = recipe.batch_size
        cached = torch.cat([run_prefix(images[i : i + step]) for i in range(0, len(images), step)])
        y = torch.as_tensor(labels)
        params = [
            *net.blocks[-1].parameters(),
            *net.conv_head.parameters(),
            *net.bn2.parameters(),
            *net.classifier.parameters(),
        ]
        optimizer = torch.optim.Adam(params, lr=recipe.lr)
        generator = torch.Generator().manual_seed(SEED)
        for epoch in range(recipe.epochs):
            net.train()
            for module in net.modules():  # BatchNorm keeps its ImageNet statistics
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.eval()
            total = 0.0
            batches = _batches(len(y), step, generator)
            for idx in batches:
                loss = torch.nn.functional.cross_entropy(head(cached[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            logger.info("%s epoch %d loss %.4f", model.repo_id, epoch + 1, total / len(batches))
        net.eval()
        with torch.inference_mode():
            logits = torch.cat(
                [net(image_tensor(test_images[i : i + step], cfg)) for i in range(0, len(test_images), step)]
            )
        accuracy = float((logits.argmax(-1).numpy() == test_labels).mean())
    config["finetuning"] = {
        "source_task": model.source_task,
        "recipe": asdict(recipe),
        "seed": SEED,
        "threads": THREADS,
        "source_test_accuracy": round(accuracy, 4),
    }
    dest.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in net.state_dict().items()},
        dest / "model.safetensors",
        metadata={"format": "pt"},
    )
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    index = lite_index(model.base_model)
    meta_extra = {
        "base_model": model.base_model,
        "datasets": [model.source_task],
        "tags": ["image-classification", "efficientnet-lite", "timm", "intermediate-task"],
        "model-index": [
            {
                "name": model.repo_id,
                "results": [
                    {
                        "task": {"type": "image-classification"},
                        "dataset": {"name": model.source_task, "type": model.source_task, "split": "test"},
                        "metrics": [{"type": "accuracy", "value": round(accuracy, 4)}],
                    }
                ],
            }
        ],
    }
    extra = (
        f"\nThis variant is `{model.base_model}` fine-tuned on `{model.source_task}` ({len(names)} classes) at "
        f"{recipe.input_size}x{recipe.input_size} pixels; its `pretrained_cfg.input_size` says so.\n\n"
        + _recipe_text(recipe, model.source_task, len(test_images), accuracy)
    )
    (dest / "README.md").write_text(_lite_card(model, index, extra, meta_extra))
    return {"source_test_accuracy": accuracy}
