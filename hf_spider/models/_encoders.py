"""Encoders: run a resolved model over images or texts and pool its output into one vector per input.

Pooling per family:

* sentence-transformers repos (`modules.json` + `1_Pooling/config.json`): that pooling (mean, CLS,
  max, mean-sqrt-len, last token), then L2 normalisation when the repo has a `Normalize` module;
* text classifiers (`*ForSequenceClassification`): the first (CLS) token of the last hidden state;
* decoder-only text models: the last non-padding token; other text encoders: masked mean pooling;
* vision transformers with a class token (ViT, DeiT, DINOv2, ...): the class token; other vision
  models: their pooler output (global average pooling for CNNs), else the mean over positions;
* CLIP-like dual encoders: `get_image_features` / `get_text_features`;
* timm-style EfficientNet-Lite repos: `forward_features` of `hf_spider.models.efficientnet_lite`;
* ONNX models through ONNX Runtime: the output `config.json` names as the feature tensor (else the
  first output), pooled like the above when it still has positions.

`what="probs"` gives the softmax of the model's own classification head instead (for LEEP / NCE).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hf_spider.errors import UserInputError
from hf_spider.models._resolve import ResolvedModel, onnx_file, read_json

logger = logging.getLogger("hf_spider.models")

_CLS_TOKEN_VISION = {
    "vit",
    "deit",
    "dinov2",
    "vit_msn",
    "vit_mae",
    "vit_hybrid",
    "dpt",
    "ijepa",
    "dinov3_vit",
}
_DECODER_ONLY = {
    "gpt2",
    "gpt_neo",
    "gpt_neox",
    "gptj",
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi",
    "phi3",
    "gemma",
    "opt",
    "bloom",
}


def check_runnable(resolved: ResolvedModel) -> None:
    """Raise `UserInputError` for a model no encoder here can run."""
    if resolved.kind == "timm":
        raise UserInputError(
            f"model {resolved.name!r} is a timm model ({resolved.config.get('architecture')}) that hf-spider cannot build",
            hint="timm is not a dependency; only EfficientNet-Lite timm-style repos are supported",
        )
    if resolved.kind == "unknown":
        raise UserInputError(
            f"cannot tell what kind of model {resolved.name!r} is (no config.json with model_type, no model.onnx)",
            hint="give a transformers, ONNX or timm-style EfficientNet-Lite model",
        )


def has_head(resolved: ResolvedModel) -> bool:
    """Whether the model has its own classification head (source-class probabilities)."""
    if resolved.kind == "efficientnet-lite":
        return int(resolved.config.get("num_classes", 1000)) > 0
    if resolved.kind == "onnx":
        return bool(resolved.config.get("probs_output") or resolved.config.get("logits_output"))
    archs = resolved.config.get("architectures") or []
    return any(a.endswith(("ForSequenceClassification", "ForImageClassification")) for a in archs)


def make_encoder(
    resolved: ResolvedModel,
    *,
    modality: str,
    what: str,
    device: str | None,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> Callable[[list], np.ndarray]:
    """A callable turning a batch of inputs into an `N x D` array (features, or probabilities)."""
    check_runnable(resolved)
    if resolved.kind == "onnx":
        return _OnnxEncoder(resolved, modality, what)
    torch_device = _device(device)
    if resolved.kind == "efficientnet-lite":
        return _LiteEncoder(resolved, torch_device, what)
    if modality == "text":
        return _TextEncoder(resolved, torch_device, what, trust_remote_code, allow_pickle)
    return _VisionEncoder(resolved, torch_device, what, trust_remote_code, allow_pickle)


def accelerate_state():
    try:
        from accelerate import PartialState

        return PartialState()
    except Exception:  # accelerate misconfigured: fall back to one process
        return None


def _device(device: str | None):
    import torch

    if device is not None:
        return torch.device(device)
    state = accelerate_state()
    return state.device if state is not None else torch.device("cpu")


def _place(model, device):
    """Move to `device`; several visible GPUs in one process share batches via DataParallel."""
    import torch

    model = model.to(device).eval()
    if (
        device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1
    ):  # GPU path: untested here
        model = torch.nn.DataParallel(model)
    return model


def _head_outputs(logits) -> np.ndarray:
    import torch

    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def _load_kwargs(allow_pickle: bool, trust_remote_code: bool) -> dict:
    import torch

    return {
        "trust_remote_code": trust_remote_code,
        "use_safetensors": None if allow_pickle else True,
        "dtype": torch.float32,
    }


class _TextEncoder:
    def __init__(
        self, resolved: ResolvedModel, device, what: str, trust_remote_code: bool, allow_pickle: bool
    ):
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        path = resolved.path
        self.device = device
        self.what = what
        config = resolved.config
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, TypeError) as exc:
            raise UserInputError(
                f"model {resolved.name!r} has no usable tokenizer, so it cannot embed text",
                hint="pick a text model, or pass --modality image for an image dataset",
            ) from exc
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        kwargs = _load_kwargs(allow_pickle, trust_remote_code)
        if what == "probs":
            model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        else:
            model = _without_pooler(AutoModel, path, kwargs)  # text features never use the pooler
        self.model = _place(model, device)
        self.model_type = config.get("model_type", "")
        self.pooling, self.normalize = _sentence_transformers_pooling(path)
        archs = config.get("architectures") or []
        if self.pooling is None:
            if any(a.endswith("ForSequenceClassification") for a in archs):
                self.pooling = "cls"
            elif self.model_type in _DECODER_ONLY or config.get("is_decoder"):
                self.pooling = "lasttoken"
            else:
                self.pooling = "mean"
        st = read_json(path / "sentence_bert_config.json")
        limits = [st.get("max_seq_length"), config.get("max_position_embeddings"), 512]
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and model_max < 1_000_000:
            limits.append(model_max)
        self.max_length = min(int(x) for x in limits if x)
        self.dual = self.model_type in ("clip", "siglip", "siglip2") and what == "features"

    def __call__(self, batch: list) -> np.ndarray:
        import torch

        texts = ["" if t is None else str(t) for t in batch]
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        core = self.model.module if isinstance(self.model, torch.nn.DataParallel) else self.model
        if self.dual:
            return core.get_text_features(**enc).float().cpu().numpy()
        if self.what == "probs":
            return _head_outputs(self.model(**enc).logits)
        out = self.model(**enc)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        pooled = _pool_tokens(hidden, enc.get("attention_mask"), self.pooling)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().cpu().numpy()


def _without_pooler(auto_class, path: Path, kwargs: dict):
    """Load without the (unused) pooler layer where the architecture allows it.

    transformers then warns that the checkpoint's pooler weights were not used: expected here, so
    that one warning is kept out of the user's terminal.
    """
    log = logging.getLogger("transformers.modeling_utils")
    unused_pooler = _DropMessages("were not used when initializing")
    log.addFilter(unused_pooler)  # a filter, not a level: transformers acts on its logger's level
    try:
        return auto_class.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except TypeError:  # the architecture takes no such argument
        return auto_class.from_pretrained(path, **kwargs)
    finally:
        log.removeFilter(unused_pooler)


class _DropMessages(logging.Filter):
    def __init__(self, fragment: str):
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def _sentence_transformers_pooling(path: Path) -> tuple[str | None, bool]:
    """(pooling mode, normalize) from a sentence-transformers repo's modules, or (None, False)."""
    modules = _read_json_list(path / "modules.json")
    if not modules:
        return None, False
    mode = None
    normalize = False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            cfg = read_json(path / module.get("path", "1_Pooling") / "config.json")
            for key, name in (
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_lasttoken", "lasttoken"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                ("pooling_mode_mean_tokens", "mean"),
            ):
                if cfg.get(key):
                    mode = name
            if cfg.get("pooling_mode_mean_tokens"):
                mode = "mean"  # the common case wins when several flags are set
        elif kind.endswith("Normalize"):
            normalize = True
    return mode or "mean", normalize


def _read_json_list(path: Path) -> list:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _pool_tokens(hidden, mask, mode: str):
    import torch

    if mask is None:
        mask = torch.ones(hidden.shape[:2], device=hidden.device, dtype=torch.long)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if mode == "lasttoken":
        # the last attended position of each row (works for left and right padding)
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    summed = (hidden * m).sum(dim=1)
    counts = m.sum(dim=1).clamp(min=1e-9)
    if mode == "mean_sqrt_len":
        return summed / counts.sqrt()
    return summed / counts


class _VisionEncoder:
    def __init__(
        self, resolved: ResolvedModel, device, what: str, trust_remote_code: bool, allow_pickle: bool
    ):
        from transformers import AutoImageProcessor, AutoModel, AutoModelForImageClassification

        path = resolved.path
        self.device = device
        self.what = what
        try:
            self.processor = AutoImageProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, TypeError) as exc:
            raise UserInputError(
                f"model {resolved.name!r} has no image processor, so it cannot embed images",
                hint="pick an image model, or pass --modality text for a text dataset",
            ) from exc
        kwargs = _load_kwargs(allow_pickle, trust_remote_code)
        self.model_type = resolved.config.get("model_type", "")
        if what == "probs":
            model = AutoModelForImageClassification.from_pretrained(path, **kwargs)
        elif self.model_type in _CLS_TOKEN_VISION:
            model = _without_pooler(AutoModel, path, kwargs)  # the class token, not the pooler
        else:
            model = AutoModel.from_pretrained(path, **kwargs)
        self.model = _place(model, device)
        self.dual = self.model_type in ("clip", "siglip", "siglip2") and what == "features"

    def __call__(self, batch: list) -> np.ndarray:
        import torch

        images = [img.convert("RGB") for img in batch]
        pixel = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        core = self.model.module if isinstance(self.model, torch.nn.DataParallel) else self.model
        if self.dual:
            return core.get_image_features(pixel_values=pixel).float().cpu().numpy()
        if self.what == "probs":
            return _head_outputs(self.model(pixel_values=pixel).logits)
        out = self.model(pixel_values=pixel)
        hidden = getattr(out, "last_hidden_state", None)
        pooled = getattr(out, "pooler_output", None)
        if hidden is not None and hidden.dim() == 3 and self.model_type in _CLS_TOKEN_VISION:
            feats = hidden[:, 0]
        elif pooled is not None:
            feats = pooled.flatten(1)
        elif hidden is not None and hidden.dim() == 4:
            feats = hidden.mean(dim=(2, 3))
        else:
            feats = hidden.mean(dim=1)
        return feats.float().cpu().numpy()


def _preprocess_images(
    images: list, size: tuple[int, int], mean, std, *, crop_pct: float = 1.0, interpolation: str = "bilinear"
) -> np.ndarray:
    """PIL images -> normalised float32 NCHW: resize the short side, centre-crop, scale to [0, 1]."""
    from PIL import Image

    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}.get(
        interpolation, Image.BILINEAR
    )
    h, w = size
    out = np.empty((len(images), 3, h, w), dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    for i, img in enumerate(images):
        img = img.convert("RGB")
        scale = max(h, w) / crop_pct
        iw, ih = img.size
        ratio = scale / min(iw, ih)
        img = img.resize((max(w, round(iw * ratio)), max(h, round(ih * ratio))), resample)
        iw, ih = img.size
        left, top = (iw - w) // 2, (ih - h) // 2
        img = img.crop((left, top, left + w, top + h))
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
        out[i] = (arr - mean) / std
    return out


class _LiteEncoder:
    """A timm-style EfficientNet-Lite (code in `hf_spider.models.efficientnet_lite`)."""

    def __init__(self, resolved: ResolvedModel, device, what: str):
        from hf_spider.models.efficientnet_lite import PretrainedCfg, load_from_folder

        model, config = load_from_folder(resolved.path)
        self.cfg = PretrainedCfg.from_config(config)
        self.model = _place(model, device)
        self.device = device
        self.what = what

    def __call__(self, batch: list) -> np.ndarray:
        import torch

        _, h, w = self.cfg.input_size
        arr = _preprocess_images(
            batch,
            (h, w),
            self.cfg.mean,
            self.cfg.std,
            crop_pct=self.cfg.crop_pct,
            interpolation=self.cfg.interpolation,
        )
        x = torch.from_numpy(arr).to(self.device)
        if self.what == "probs":
            return _head_outputs(self.model(x))
        core = self.model.module if isinstance(self.model, torch.nn.DataParallel) else self.model
        return core.forward_features(x).float().cpu().numpy()


class _OnnxEncoder:
    """An ONNX model through ONNX Runtime; `config.json` may name the feature/probability outputs
    and the image preprocessing (`input_size`, `mean`, `std`, `layout`, `channel_order`, `scale`)."""

    def __init__(self, resolved: ResolvedModel, modality: str, what: str):
        import onnxruntime as ort

        self.config = resolved.config
        self.modality = modality
        self.what = what
        onnx_path = onnx_file(resolved.path)
        providers = [
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()
        ]
        options = ort.SessionOptions()
        threads = os.environ.get("OMP_NUM_THREADS")
        if threads and threads.isdigit():
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
        self.inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        cfg = self.config
        if what == "probs":
            self.output = cfg.get("probs_output") or cfg.get("logits_output")
            self.softmax = not cfg.get("probs_output")
        else:
            wanted = cfg.get("feature_output") or cfg.get("features_output")
            for name in ("sentence_embedding", "pooler_output", "last_hidden_state"):
                if wanted is None and name in outputs:
                    wanted = name
            self.output = wanted or outputs[0]
            self.softmax = False
        if self.output not in outputs:
            raise UserInputError(
                f"ONNX model {resolved.name!r} has no output {self.output!r} (outputs: {', '.join(outputs)})",
                hint="fix the output name in the repo's config.json",
            )
        names = {i.name for i in self.inputs}
        self.is_text = "input_ids" in names
        if self.is_text != (modality == "text"):
            raise UserInputError(
                f"ONNX model {resolved.name!r} takes {'text' if self.is_text else 'images'}, not {modality}",
                hint="pick a model of the dataset's modality",
            )
        if self.is_text:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(resolved.path)
        else:
            self._image_setup(resolved)

    def _image_setup(self, resolved: ResolvedModel) -> None:
        cfg = self.config
        pre = read_json(resolved.path / "preprocessor_config.json")
        named = cfg.get("input_name")
        self.image_input = next((i for i in self.inputs if i.name == named), self.inputs[0])
        shape = self.image_input.shape
        layout = cfg.get("input_layout") or cfg.get("layout")
        self.layout = str(layout or ("NHWC" if len(shape) == 4 and shape[-1] == 3 else "NCHW")).upper()
        steps = dict(cfg.get("preprocessing") or {})
        size = steps.get("center_crop") or cfg.get("input_size") or pre.get("size") or [224, 224]
        if isinstance(size, dict):
            size = [
                size.get("height", size.get("shortest_edge", 224)),
                size.get("width", size.get("shortest_edge", 224)),
            ]
        size = [int(v) for v in size]
        if len(size) == 3:  # (C, H, W) or (H, W, C)
            size = size[1:] if size[0] == 3 else size[:2]
        self.size = (size[0], size[1]) if len(size) >= 2 else (size[0], size[0])
        self.resize = tuple(int(v) for v in steps["resize"]) if steps.get("resize") else None
        self.interpolation = str(steps.get("interpolation", "bilinear"))
        self.jpeg = bool(steps.get("jpeg_roundtrip"))
        self.mean = np.asarray(
            steps.get("mean", cfg.get("mean", pre.get("image_mean", [0.5] * 3))), np.float32
        )
        self.std = np.asarray(steps.get("std", cfg.get("std", pre.get("image_std", [0.5] * 3))), np.float32)
        top = float((steps.get("pixel_range") or [0, cfg.get("scale", 1.0)])[1])
        self.scale = top  # 255 for models fed raw pixel values (mean and std then in pixel units)
        self.bgr = str(steps.get("channel_order", cfg.get("channel_order", "RGB"))).upper() == "BGR"
        self.crop_pct = float(cfg.get("crop_pct", 1.0))

    def _pixels(self, batch: list) -> np.ndarray:
        """Images -> float32 NCHW in [0, 1] (RGB), following the repo's preprocessing steps."""
        import io

        from PIL import Image

        if self.resize is None:
            return _preprocess_images(
                batch,
                self.size,
                [0.0] * 3,
                [1.0] * 3,
                crop_pct=self.crop_pct,
                interpolation=self.interpolation,
            )
        resample = Image.BICUBIC if self.interpolation == "bicubic" else Image.BILINEAR
        h, w = self.size
        out = np.empty((len(batch), 3, h, w), dtype=np.float32)
        for i, img in enumerate(batch):
            img = img.convert("RGB").resize((self.resize[1], self.resize[0]), resample)
            if self.jpeg:  # the model was trained on JPEG-decoded images
                buf = io.BytesIO()
                img.save(buf, format="JPEG")
                img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
            left, top = (img.width - w) // 2, (img.height - h) // 2
            img = img.crop((left, top, left + w, top + h))
            out[i] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return out

    def __call__(self, batch: list) -> np.ndarray:
        if self.is_text:
            enc = self.tokenizer(
                [str(t) for t in batch], padding=True, truncation=True, max_length=512, return_tensors="np"
            )
            feed = {i.name: enc[i.name].astype(np.int64) for i in self.inputs if i.name in enc}
            for i in self.inputs:
                if i.name not in feed and i.name == "token_type_ids":
                    feed[i.name] = np.zeros_like(enc["input_ids"], dtype=np.int64)
            mask = enc.get("attention_mask")
        else:
            arr = self._pixels(batch) * self.scale
            if self.bgr:
                arr = arr[:, ::-1]
            arr = (arr - self.mean.reshape(1, 3, 1, 1)) / self.std.reshape(1, 3, 1, 1)
            if self.layout == "NHWC":
                arr = arr.transpose(0, 2, 3, 1)
            feed = {self.image_input.name: np.ascontiguousarray(arr, dtype=np.float32)}
            mask = None
        out = np.asarray(self.session.run([self.output], feed)[0], dtype=np.float32)
        if self.what == "probs":
            if self.softmax:
                out = np.exp(out - out.max(axis=1, keepdims=True))
                out /= out.sum(axis=1, keepdims=True)
            return out
        if out.ndim == 3:  # tokens / positions left: mean over the attended ones
            if mask is not None:
                m = mask[..., None].astype(np.float32)
                return (out * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            return out.mean(axis=1)
        if out.ndim == 4:
            return out.mean(axis=(1, 2)) if self.layout == "NHWC" else out.mean(axis=(2, 3))
        return out.reshape(len(batch), -1)
