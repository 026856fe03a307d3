"""EfficientNet-Lite in PyTorch: timm-style repos, loaded without timm.

The Lite family (Tan & Le, 2019; TensorFlow `efficientnet/lite`) is EfficientNet without
squeeze-and-excitation, with ReLU6 instead of swish, and with the stem (32 channels) and head
(1280 channels) kept fixed when the width grows. The TensorFlow checkpoints use "SAME" padding,
which is asymmetric for strided convolutions; `_SamePadConv2d` reproduces it so the ported
ImageNet weights give the same activations.

Parameter names follow timm's `tf_efficientnet_lite*` models (`conv_stem`, `bn1`,
`blocks.<stage>.<index>.conv_pw` ..., `conv_head`, `bn2`, `classifier`), so a zoo repo is laid
out as a timm repo: `config.json` (`architecture`, `num_classes`, `num_features`,
`pretrained_cfg`) plus `model.safetensors`.

Example:
    >>> from hf_spider.models.efficientnet_lite import from_pretrained
    >>> model = from_pretrained("timm/tf_efficientnet_lite0.in1k")  # doctest: +SKIP
    >>> features = model.forward_features(pixel_values)  # (batch, 1280)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# (width multiplier, depth multiplier, input resolution, dropout) of the TensorFlow release.
LITE_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": (1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": (1.4, 1.8, 300, 0.3),
}

# Stages of the B0 backbone: (repeats, kernel, stride, expand ratio, in channels, out channels).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
NUM_FEATURES = 1280
BN_EPS = 1e-3  # TensorFlow's default, not PyTorch's 1e-5
# The TensorFlow Lite models were trained on (x * 255 - 127) / 128.
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3


def canonical_name(name: str) -> str:
    """`efficientnet-lite0`, `tf_efficientnet_lite0`, `efficientnet_lite0` -> `efficientnet_lite0`."""
    key = name.lower().replace("-", "_").removeprefix("tf_")
    if key not in LITE_PARAMS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; known: {', '.join(LITE_PARAMS)}")
    return key


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:  # never round down by more than 10%
        rounded += divisor
    return int(rounded)


def stage_layout(name: str) -> list[tuple[int, int, int, int, int, int]]:
    """The stages of a variant after width and depth scaling (stem and head stay fixed)."""
    width, depth, _, _ = LITE_PARAMS[canonical_name(name)]
    layout = []
    last = len(_STAGES) - 1
    for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
        cin = STEM_CHANNELS if i == 0 else _round_channels(cin, width)
        cout = _round_channels(cout, width)
        if i not in (0, last):  # Lite keeps the first and last stage at one block
            repeats = math.ceil(depth * repeats)
        layout.append((repeats, kernel, stride, expand, cin, cout))
    return layout


class _SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: extra padding goes to the bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if kernel == 1 and stride == 1:
        return nn.Conv2d(cin, cout, 1, bias=False)
    return _SamePadConv2d(cin, cout, kernel, stride=stride, groups=groups, bias=False)


class DepthwiseSeparable(nn.Module):
    """First-stage block (expand ratio 1): depthwise conv, then pointwise projection."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.conv_dw = _conv(cin, cin, kernel, stride, groups=cin)
        self.bn1 = nn.BatchNorm2d(cin, eps=BN_EPS)
        self.conv_pw = _conv(cin, cout, 1)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self.bn1(self.conv_dw(x)))
        out = self.bn2(self.conv_pw(out))
        return out + x if self.has_skip else out


class InvertedResidual(nn.Module):
    """MBConv without squeeze-and-excitation: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.conv_pw = _conv(cin, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self.conv_pwl = _conv(mid, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self.bn1(self.conv_pw(x)))
        out = F.relu6(self.bn2(self.conv_dw(out)))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_skip else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0..4 with a linear classifier on the 1280-d pooled features.

    Args:
        architecture: `efficientnet_lite0` ... `efficientnet_lite4` (a `tf_` prefix is accepted).
        num_classes: size of the classifier; 0 keeps only the feature extractor.
    """

    def __init__(self, architecture: str = "efficientnet_lite0", *, num_classes: int = 1000):
        super().__init__()
        self.architecture = canonical_name(architecture)
        self.num_features = NUM_FEATURES
        self.num_classes = num_classes
        self.dropout_rate = LITE_PARAMS[self.architecture][3]
        self.conv_stem = _conv(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        stages = []
        for repeats, kernel, stride, expand, cin, cout in stage_layout(self.architecture):
            blocks = []
            for j in range(repeats):
                block_in, block_stride = (cin, stride) if j == 0 else (cout, 1)
                if expand == 1:
                    blocks.append(DepthwiseSeparable(block_in, cout, kernel, block_stride))
                else:
                    blocks.append(InvertedResidual(block_in, cout, kernel, block_stride, expand))
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        last_channels = stage_layout(self.architecture)[-1][-1]
        self.conv_head = _conv(last_channels, NUM_FEATURES, 1)
        self.bn2 = nn.BatchNorm2d(NUM_FEATURES, eps=BN_EPS)
        self.classifier = nn.Linear(NUM_FEATURES, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features of normalised images `(batch, 3, H, W)`."""
        x = F.relu6(self.bn1(self.conv_stem(pixel_values)))
        x = self.blocks(x)
        x = F.relu6(self.bn2(self.conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(pixel_values)
        features = F.dropout(features, self.dropout_rate, self.training)
        return self.classifier(features)


def convert_original_state_dict(state_dict: dict[str, torch.Tensor], architecture: str) -> dict:
    """Rename an `efficientnet_lite_pytorch` state dict (`_blocks.<n>._expand_conv` ...) to ours.

    The ML-Illustrated port numbers blocks 0..N-1 over all stages; we nest them by stage.
    """
    flat_to_nested = []
    for stage, (repeats, *_rest) in enumerate(stage_layout(architecture)):
        flat_to_nested += [(stage, j) for j in range(repeats)]
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    # Inside a block: with an expansion conv the BNs are _bn0/_bn1/_bn2, without it _bn1/_bn2.
    expanded = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            flat, module, param = int(match[1]), match[2], match[3]
            stage, j = flat_to_nested[flat]
            names = separable if stage == 0 else expanded
            out[f"blocks.{stage}.{j}.{names[module]}.{param}"] = value
        else:
            module, param = key.split(".", 1)
            out[f"{top[module]}.{param}"] = value
    return out


@dataclass(frozen=True)
class PretrainedCfg:
    """Preprocessing a timm-style repo declares in `config.json` -> `pretrained_cfg`."""

    input_size: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    crop_pct: float = 0.875

    @classmethod
    def from_config(cls, config: dict) -> PretrainedCfg:
        cfg = config.get("pretrained_cfg", {})
        return cls(
            input_size=tuple(cfg.get("input_size", (3, 224, 224))),
            mean=tuple(cfg.get("mean", MEAN)),
            std=tuple(cfg.get("std", STD)),
            interpolation=cfg.get("interpolation", "bicubic"),
            crop_pct=float(cfg.get("crop_pct", 0.875)),
        )


def default_config(
    architecture: str,
    *,
    num_classes: int = 1000,
    label_names: list[str] | None = None,
    input_size: int | None = None,
    tag: str | None = "in1k",
) -> dict:
    """The `config.json` of a timm-style repo for a Lite variant, in the layout timm writes to the Hub
    (`architecture`, `num_classes`, `num_features`, `global_pool`, then `pretrained_cfg`).

    The preprocessing values are those the TensorFlow checkpoints were trained with (`MEAN`, `STD`,
    crop 0.875); timm's own configs for `tf_efficientnet_lite*.in1k` round them to 0.5 / 0.5 and use
    crops of 0.875 / 0.882 / 0.890.
    """
    arch = canonical_name(architecture)
    size = input_size or LITE_PARAMS[arch][2]
    pool = -(-size // 32)  # the stride-32 feature map, with TensorFlow 'SAME' padding
    config: dict = {
        "architecture": f"tf_{arch}",
        "num_classes": num_classes,
        "num_features": NUM_FEATURES,
        "global_pool": "avg",
    }
    config["pretrained_cfg"] = {
        **({"tag": tag} if tag else {}),
        "custom_load": False,
        "input_size": [3, size, size],
        "fixed_input_size": False,
        "interpolation": "bicubic",
        "crop_pct": 0.875,
        "crop_mode": "center",
        "mean": list(MEAN),
        "std": list(STD),
        "num_classes": num_classes,
        "pool_size": [pool, pool],
        "first_conv": "conv_stem",
        "classifier": "classifier",
    }
    if label_names:
        config["label_names"] = list(label_names)
    return config


def load_from_folder(folder: str | Path, *, num_classes: int | None = None) -> tuple[EfficientNetLite, dict]:
    """Build the model of a local timm-style folder (`config.json` + `model.safetensors`)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    classes = config.get("num_classes", 1000) if num_classes is None else num_classes
    model = EfficientNetLite(config["architecture"], num_classes=classes)
    state = load_file(folder / "model.safetensors")
    if classes != config.get("num_classes", 1000):  # a new head for a new task
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("classifier.")]:
        raise ValueError(
            f"weights of {folder} do not fit {config['architecture']}: missing={missing} unexpected={unexpected}"
        )
    model.eval()
    return model, config


def from_pretrained(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    num_classes: int | None = None,
) -> EfficientNetLite:
    """Load a timm-style EfficientNet-Lite repo by id (or local folder).

    The repo is found by `hf_spider.models.resolve_model`: the local Hub caches (the offline zoo
    among them) first, then the Hub at `endpoint`. `num_classes` replaces the classifier with a
    fresh one.
    """
    from hf_spider.models._resolve import resolve_model

    folder = resolve_model(
        # False (a Space visitor without a token) stays False: None would send the machine's token
        repo_id,
        revision=revision,
        token=None if token == "" else token,
        endpoint=endpoint,
        cache_dir=cache_dir,
    ).path
    model, config = load_from_folder(folder, num_classes=num_classes)
    model.pretrained_cfg = PretrainedCfg.from_config(config)
    model.config = config
    return model
