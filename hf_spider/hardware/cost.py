"""A cost model: latency, CPU time, peak memory and file size of any catalog model and variant on
a target, predicted from card and config facts, before anything is downloaded or exported.

Facts (`facts_of`): parameter count, FLOPs for the task's input by kind (dense matmuls,
attention matmuls, convolutions, grouped convolutions), activation elements written, layers,
width, input size; counted per architecture on the `meta` device (no weights, no memory). The
model is fitted per target (name, kind, CPU, threads) on the local measurement store, which
grows with every `bench`, `recommend` and config-only build (`record_measurement`).

Timed figures (CPU time, wall latency) choose, per variant and by an inner cross-validation
grouped by shape, between an additive model (a fixed overhead plus a non-negative rate per kind
of FLOP, per activation element written and per parameter, optionally times a shrunk per-family
factor) and log-linear ridge models (log FLOPs, log parameters, layers, width, tokens, family
offsets). Bytes (file size, peak memory) are linear in the parameters split by where they sit,
plus an activation term for memory. `CostModel.interval` gives the spread of the held-out errors
(shapes held out) as a multiplicative band.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider import _paths
from hf_spider.hardware.measurements import (  # the store the model is fitted on
    load_records,
    target_key,
)

logger = logging.getLogger("hf_spider.hardware")

# latency_ms: wall-clock p50 at batch 1 (what the user sees; noisy on a loaded machine);
# cpu_ms: CPU time per batch-1 run (robust to other processes; the idle-core latency at 1 thread)
TARGETS = ("latency_ms", "cpu_ms", "memory_mb", "size_mb")


# -- facts: what the cost model reads about a model ------------------------------------------


def _layers(config: dict[str, Any]) -> int:
    for key in ("num_hidden_layers", "n_layers", "num_layers"):
        if isinstance(config.get(key), int):
            return int(config[key])
    depths = config.get("depths")
    if isinstance(depths, list):
        return int(sum(depths))
    return 1


def _width(config: dict[str, Any]) -> int:
    for key in ("hidden_size", "dim", "d_model", "embed_dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    sizes = config.get("hidden_sizes")
    if isinstance(sizes, list) and sizes:
        return int(sizes[-1])
    return 1


def default_input(config: dict[str, Any], seq_len: int = 64) -> dict[str, Any]:
    from hf_spider.hardware._configonly import image_size_of, modality_of

    if modality_of(config) == "image":
        return {"modality": "image", "image_size": image_size_of(config)}
    return {"modality": "text", "seq_len": seq_len}


def facts_of(config: dict[str, Any], input_spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameter count, FLOPs at batch 1 for the input, layers, width, tokens, family."""
    spec = input_spec or default_input(config)
    from hf_spider.hardware._configonly import _auto_class

    _, kind = _auto_class(config, "auto")
    key = json.dumps(config, sort_keys=True, default=str)
    if spec.get("modality") == "image":
        size = int(spec.get("image_size") or 224)
        counted = _counted(key, kind, "image", size)
        tokens = (size / int(config.get("patch_size") or 16)) ** 2
    else:
        seq = int(spec.get("seq_len") or 64)
        counted = _counted(key, kind, "text", seq)
        tokens = seq
    return {
        "family": config.get("model_type") or "?",
        "shape": shape_key(config),
        **counted,
        "layers": _layers(config),
        "width": _width(config),
        "tokens": float(tokens),
        "modality": spec.get("modality"),
    }


# Config keys that change neither the compute nor the activations: configs differing only in
# these are one shape (a vocabulary or label count changes an embedding lookup or a tiny head).
_NOT_SHAPE = {
    "vocab_size",
    "type_vocab_size",
    "num_labels",
    "id2label",
    "label2id",
    "max_position_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "sep_token_id",
    "problem_type",
    "finetuning_task",
    "architectures",
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
}


def shape_key(config: dict[str, Any]) -> str:
    """A hash of the config without vocabulary, labels, head and names: near-duplicate
    architectures share it, so held-out evaluation can hold them out together."""
    clean = {k: v for k, v in config.items() if k not in _NOT_SHAPE}
    return hashlib.sha256(json.dumps(clean, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _traffic_mode():
    """A dispatch mode that counts, per forward pass, the elements each operator writes (views and
    in-place ops write none), the largest tensor written, and convolution FLOPs split into dense
    and grouped (depthwise) convolutions, which run at very different speeds on a CPU.

    Only operators that read the input (`mark`), directly or through earlier ones, are counted as
    run: one that reads weights and constants alone computes the same tensor on every run, and
    ONNX Runtime folds it into a constant when the session is created (DeBERTa-v2 projects its
    relative-position table through every layer's query and key weights: 7.3 of the 13.4 GFLOPs
    torch counts). Their FLOPs are kept apart (`folded`, by operator)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import flop_registry

    class Traffic(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.written = self.largest = self.conv = self.grouped_conv = 0.0
            self.matmul_calls = self.matmul_inputs = 0.0
            self.folded: dict[str, float] = {}
            self._dynamic: set[int] = set()
            self._alive: list = []  # keeps the ids in `_dynamic` from being reused during the pass
            aten = torch.ops.aten
            # matmul/convolution op -> argument positions of its activations (not weights)
            self.activation_operands = {
                aten.mm: (0,),
                aten.addmm: (1,),
                aten.bmm: (0, 1),
                aten.baddbmm: (1, 2),
                aten.convolution: (0,),
            }

        def mark(self, tensors) -> None:
            for tensor in tensors:
                self._dynamic.add(id(tensor))
                self._alive.append(tensor)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if not any(
                id(t) in self._dynamic for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)
            ):
                if func._overloadpacket in flop_registry:
                    flops = flop_registry[func._overloadpacket](*args, **kwargs, out_val=out)
                    key = str(func._overloadpacket)
                    self.folded[key] = self.folded.get(key, 0.0) + float(flops)
                return out
            self.mark(t for t in tree_leaves(out) if isinstance(t, torch.Tensor))
            if all(r.alias_info is None for r in func._schema.returns):
                for tensor in tree_leaves(out):
                    if isinstance(tensor, torch.Tensor):
                        self.written += tensor.numel()
                        self.largest = max(self.largest, float(tensor.numel()))
            # activations entering a matmul or convolution: what dynamic int8 quantizes on the fly
            # (a weight is quantized once, ahead of time; both operands of attention matmuls are not)
            operands = self.activation_operands.get(func._overloadpacket)
            if operands is not None:
                self.matmul_calls += 1
                self.matmul_inputs += sum(float(args[i].numel()) for i in operands)
            if func._overloadpacket is torch.ops.aten.convolution:
                # weight (out, in/groups, kh, kw): each output element takes in/groups*kh*kw MACs
                flops = 2.0 * out.numel() * args[1][0].numel()
                if args[8] > 1:
                    self.grouped_conv += flops
                else:
                    self.conv += flops
            return out

    return Traffic()


# Bump when `_count_flops` counts something new: cached counts of older versions are then ignored.
_FACTS_VERSION = 5
_facts_cache: dict[str, dict[str, float]] | None = None


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}


@functools.cache
def _seed(name: str) -> dict[str, Any]:
    """The project's copy of a cache (`_paths.REFERENCE_DIR`): what a cold `hf-spider cost --target
    local` computes for the embedded catalog, so a first run does not recount it (its keys hold
    the transformers version: another version recounts)."""
    return _read_cache(_paths.REFERENCE_DIR / name)


def _counted(config_json: str, kind: str, modality: str, size: int) -> dict[str, float]:
    """`_count_flops`, cached on disk: building a base model on the meta device takes about a
    second, and every `hf-spider cost` fits on and predicts for a hundred or more configs."""
    global _facts_cache
    import transformers

    key = hashlib.sha256(
        f"{_FACTS_VERSION}|{transformers.__version__}|{config_json}|{kind}|{modality}|{size}".encode()
    ).hexdigest()[:24]
    path = _paths.cache_dir("config_cost") / "facts.json"
    if _facts_cache is None:
        _facts_cache = {**_seed("cost_facts.json"), **_read_cache(path)}
    if key not in _facts_cache:
        _facts_cache[key] = _count_flops(config_json, kind, modality, size)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_facts_cache))
        os.replace(tmp, path)
    return _facts_cache[key]


@functools.lru_cache(maxsize=4096)
def _count_flops(config_json: str, kind: str, modality: str, size: int) -> dict[str, float]:
    """Parameters (all, in matmuls/convolutions, in embeddings), FLOPs of one forward pass at
    batch 1 (in all and by kind: dense, attention, convolution, grouped convolution), counted by
    torch's FLOP counter less the work the runtime folds into constants (`_traffic_mode`), and the
    activation elements written (a proxy for memory traffic).

    The model is built on the `meta` device (no memory); a few architectures need real tensors
    for a data-dependent step, and are then built on the CPU without initialising the weights.
    """
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    from hf_spider.hardware._configonly import _auto_class, _hf_config
    from hf_spider.hardware._export import quiet

    config = json.loads(config_json)
    auto, _ = _auto_class(config, kind)

    def run(device: str) -> dict[str, float]:
        hf_config = _hf_config(config)
        with quiet():
            if device == "meta":
                with torch.device("meta"):
                    model = _build(auto, hf_config)
            else:
                with transformers.modeling_utils.no_init_weights():
                    model = _build(auto, hf_config)
        model.eval()
        for module in model.modules():  # it reads token values, which meta tensors do not have
            if hasattr(module, "warn_if_padding_and_no_attention_mask"):
                module.warn_if_padding_and_no_attention_mask = lambda *a, **k: None
        if modality == "image":
            channels = int(config.get("num_channels", 3))
            inputs = {"pixel_values": torch.zeros(1, channels, size, size, device=device)}
        else:
            inputs = {"input_ids": torch.full((1, size), 5, dtype=torch.long, device=device)}
        traffic = _traffic_mode()
        traffic.mark(inputs.values())
        calls: dict[int, int] = {}
        hooks = [
            module.register_forward_hook(lambda m, *_: calls.__setitem__(id(m), calls.get(id(m), 0) + 1))
            for module in model.modules()
            if isinstance(module, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d)
        ]
        with FlopCounterMode(display=False) as counter, traffic, torch.no_grad():
            model(**inputs)
        for hook in hooks:
            hook.remove()
        # weights one module applies several times (ALBERT's shared layers): the exported graph
        # has a node per application, and ONNX Runtime's quantizer keeps the fp32 copy of a weight
        # several nodes share beside its int8 one
        shared = sum(
            (
                float(module.weight.numel())
                for module in model.modules()
                if calls.get(id(module), 0) > 1 and getattr(module, "weight", None) is not None
            ),
            0.0,
        )
        # what runs on every run: torch's count less what the runtime folds into constants
        folded = traffic.folded
        by_op = {
            str(k): float(v) - folded.get(str(k), 0.0)
            for k, v in counter.get_flop_counts().get("Global", {}).items()
        }
        return _parameter_split(model, torch) | {
            "flops": float(counter.get_total_flops()) - sum(folded.values()),
            # matmuls with a weight (linear layers), matmuls of two activations (attention)
            "flops_dense": by_op.get("aten.addmm", 0.0) + by_op.get("aten.mm", 0.0),
            "flops_attention": by_op.get("aten.bmm", 0.0) + by_op.get("aten.baddbmm", 0.0),
            "flops_conv": traffic.conv,
            "flops_grouped_conv": traffic.grouped_conv,
            "act_written": traffic.written,
            "act_largest": traffic.largest,
            "shared_matmul_params": shared,
            "matmul_calls": traffic.matmul_calls,
            "matmul_inputs": traffic.matmul_inputs,
        }

    try:
        return run("meta")
    except Exception as exc:
        logger.debug("meta-device FLOP count failed (%s); counting on the CPU", exc)
        return run("cpu")


def _parameter_split(model, torch) -> dict[str, float]:
    """Parameters by where they sit: matmul/convolution weights (what int8 quantizes), embeddings,
    the rest (biases, norms). Tied weights are counted once, as in the exported file."""
    seen: set[int] = set()
    split = {"params": 0.0, "matmul_params": 0.0, "embed_params": 0.0}
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            count = float(param.numel())
            split["params"] += count
            if name == "weight" and isinstance(module, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d):
                split["matmul_params"] += count
            elif isinstance(module, torch.nn.Embedding):
                split["embed_params"] += count
    return split


def _build(auto, hf_config):
    try:
        return auto.from_config(hf_config, attn_implementation="eager")
    except (TypeError, ValueError):
        return auto.from_config(hf_config)


# -- the model -------------------------------------------------------------------------------

PRECISIONS = {
    "fp32": "fp32",
    "int8-dynamic": "int8",
    "int8-static": "int8",
    "optimized": "fp32",
    "fp16": "fp16",
}


# Figures fitted linearly (bytes add up); the timed ones are fitted in log space or additively.
_LINEAR = ("size_mb", "memory_mb")
_TIMED = ("latency_ms", "cpu_ms")


def _additive_row(facts: dict[str, Any], spec: str = "add") -> list[float]:
    """What a CPU spends time on: a fixed overhead, every FLOP at a common rate plus the extra cost
    of attention, convolution and grouped-convolution FLOPs, the activations written (memory
    traffic) and the weights read (bytes ~ parameters). `addq` adds the activations entering
    matmuls and convolutions (what dynamic int8 quantizes on every run) and the number of those
    nodes (each brings its quantize and rescale nodes)."""
    extra = []
    if spec.startswith("addq"):
        extra += [facts.get("matmul_inputs", 0.0) / 1e6, facts.get("matmul_calls", 0.0) / 1e2]
    return [
        1.0,
        facts["flops"] / 1e9,
        facts.get("flops_attention", 0.0) / 1e9,
        facts.get("flops_conv", 0.0) / 1e9,
        facts.get("flops_grouped_conv", 0.0) / 1e9,
        facts.get("act_written", 0.0) / 1e6,
        facts["params"] / 1e6,
        *extra,
    ]


# The extra costs per kind of FLOP (columns of `_additive_row`) are shrunk towards 0: a kind that
# few training families have (ResNet's dense convolutions among ConvNeXts) then costs the common
# rate instead of whatever the few rows suggest.
_KIND_COLUMNS = (2, 3, 4)
_FAMILY_SHRINK = 2.0  # `add+f`: pseudo-count a family's factor is shrunk towards 1 with


def _features(facts: dict[str, Any], families: list[str], figure: str, spec: str = "plwtf") -> np.ndarray:
    """Features of one model for one figure and candidate `spec`.

    Timed figures: `add` (and `add+f`) is the additive model; otherwise a log-linear model on log
    FLOPs plus the letters' log features: p(arameters), l(ayers), w(idth), t(okens), f(amily offsets).
    Bytes: the parameters split by where they sit, plus activation terms for memory: `peak` (the
    largest tensor written), `written` (all activation elements written: with the arena off, freed
    blocks mostly stay in the process) or, by default, tokens x width x layers.
    """
    if spec.startswith("add"):
        return np.asarray(_additive_row(facts, spec), dtype=float)
    if figure in _LINEAR:
        # a file holds the parameters; a process holds the file, activations and a fixed runtime
        matmul = facts.get("matmul_params", facts["params"])
        embed = facts.get("embed_params", 0.0)
        # the file: weights as the variant stores them (`_as_stored`); the process: ONNX Runtime
        # drops initializers no node reads at load, so memory counts each weight once
        stored = facts.get("stored_matmul_params", matmul) if figure == "size_mb" else matmul
        row = [1.0, stored / 1e6, embed / 1e6, (facts["params"] - matmul - embed) / 1e6]
        if figure == "memory_mb":
            if "peak" in spec:
                row.append(facts.get("act_largest", 0.0) / 1e6)
            if "written" in spec:
                row.append(facts.get("act_written", 0.0) / 1e6)
            if spec == "":
                row.append(facts["tokens"] * facts["width"] * facts["layers"] / 1e6)
        return np.asarray(row, dtype=float)
    row = [1.0, math.log(max(facts["flops"], 1.0))]
    for letter, key in (("p", "params"), ("l", "layers"), ("w", "width"), ("t", "tokens")):
        if letter in spec:
            row.append(math.log(max(float(facts[key]), 1.0)))
    if "f" in spec:
        row += [1.0 if facts["family"] == f else 0.0 for f in families]
    return np.asarray(row, dtype=float)


# Candidates, chosen per figure and variant by an inner cross-validation grouped by shape on the
# training rows only (few, noisy measurements overfit the richer ones).
_SPECS = {
    "timed": (
        ("", 1.0),
        ("f", 1.0),
        ("p", 1.0),
        ("pt", 1.0),
        ("plwtf", 0.1),
        ("plwtf", 1.0),
        # additive; alpha: the shrinkage of the extra cost per kind of FLOP
        ("add", 0.0),
        ("add", 0.1),
        ("add", 1.0),
        ("add+f", 0.1),
        ("add+f", 1.0),
    ),
    # int8 (dynamic) variants only: the additive model plus what dynamic quantization adds to each
    # matmul and convolution on every run (quantizing its activations, rescaling its output),
    # costs an fp32 graph does not have
    "timed_int8": (
        ("addq", 0.1),
        ("addq", 1.0),
        ("addq+f", 0.1),
        ("addq+f", 1.0),
    ),
    "memory_mb": (("", 1e-3), ("peak", 1e-3), ("written", 1e-3), ("peak+written", 1e-3)),
    "size_mb": (("", 1e-3),),
}


@dataclass
class _Fit:
    coef: list[float]
    families: list[str]
    alpha: float
    n: int
    log_residuals: list[float] = field(default_factory=list)  # held-out, for the interval
    spec: str = "plwtf"
    offsets: dict[str, float] = field(default_factory=dict)  # `add+f`: log offset per family


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None) -> np.ndarray:
    if weights is not None:
        x, y = x * weights[:, None], y * weights
    penalty = alpha * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # no shrinkage of the intercept
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


def _families(rows: list[tuple[dict[str, Any], float]]) -> list[str]:
    counts: dict[str, int] = {}
    for f, _ in rows:
        counts[f["family"]] = counts.get(f["family"], 0) + 1
    return sorted(k for k, v in counts.items() if v >= 2)


def _fit_additive(rows, spec: str, penalty: float) -> _Fit:
    """Non-negative rates (a FLOP or a byte never saves time), least relative error, the extra
    cost per kind of FLOP shrunk by `penalty` (in units of the columns' spread), then one factor
    that makes the median training ratio 1; `add+f` then
    multiplies by a per-family factor, the family's mean log residual shrunk towards 1."""
    from scipy.optimize import nnls

    x = np.stack([_features(f, [], "cpu_ms", spec) for f, _ in rows])
    values = np.asarray([v for _, v in rows], dtype=float)
    scaled = x / values[:, None]
    target = np.ones(len(values))
    if penalty > 0:
        spread = np.sqrt((scaled**2).mean(0))
        extra = np.zeros((len(_KIND_COLUMNS), x.shape[1]))
        for i, column in enumerate(_KIND_COLUMNS):
            extra[i, column] = math.sqrt(penalty * len(values)) * (spread[column] or 1.0)
        scaled, target = np.vstack([scaled, extra]), np.concatenate([target, np.zeros(len(extra))])
    coef, _ = nnls(scaled, target)
    # least squared relative error predicts low: for one rate, sum (p/v - 1)^2 is least at
    # p = sum(1/v) / sum(1/v^2), below the median value. Rescaled so that the median training
    # ratio measured/predicted is 1 ("within +-10%" is symmetric in the ratio)
    coef = coef * math.exp(float(np.median(np.log(values / np.maximum(x @ coef, 1e-9)))))
    fit = _Fit(coef=coef.tolist(), families=[], alpha=penalty, n=len(rows), spec=spec)
    if spec.endswith("+f"):
        residuals: dict[str, list[float]] = {}
        for (facts, value), row in zip(rows, x, strict=True):
            predicted = max(float(row @ coef), 1e-9)
            residuals.setdefault(facts["family"], []).append(math.log(value / predicted))
        fit.offsets = {fam: sum(r) / (len(r) + _FAMILY_SHRINK) for fam, r in residuals.items()}
    return fit


def _fit_spec(rows, figure: str, spec: str, alpha: float) -> _Fit:
    if spec.startswith("add"):
        return _fit_additive(rows, spec, alpha)
    families = [] if figure in _LINEAR else _families(rows)
    x = np.stack([_features(f, families, figure, spec) for f, _ in rows])
    values = np.asarray([v for _, v in rows], dtype=float)
    if figure in _LINEAR:  # least relative error: each row weighted by 1 / its value
        coef = _ridge(x, values, alpha, weights=1.0 / values)
    else:
        coef = _ridge(x, np.log(values), alpha)
    return _Fit(coef=coef.tolist(), families=families, alpha=alpha, n=len(rows), spec=spec)


def _candidates(figure: str, variant: str = "fp32"):
    if figure not in _TIMED:
        return _SPECS[figure]
    return _SPECS["timed"] + (_SPECS["timed_int8"] if PRECISIONS.get(variant) == "int8" else ())


def _choose_spec(rows, figure: str, folds: int = 4, variant: str = "fp32") -> tuple[str, float]:
    """The candidate with the least mean relative error (capped at 100%) in an inner
    cross-validation grouped by shape (near-duplicate configs never straddle a fold)."""
    candidates = _candidates(figure, variant)
    groups = sorted({f.get("shape") or str((f["params"], f["flops"])) for f, _ in rows})
    if len(groups) < 2 * folds or len(candidates) == 1:
        return candidates[0] if figure in _LINEAR else ("f", 1.0)
    fold_of = {g: i % folds for i, g in enumerate(groups)}

    def fold(facts):
        return fold_of[facts.get("shape") or str((facts["params"], facts["flops"]))]

    best, best_error = candidates[0], float("inf")
    for spec, alpha in candidates:
        errors = []
        for k in range(folds):
            train = [r for r in rows if fold(r[0]) != k]
            test = [r for r in rows if fold(r[0]) == k]
            fit = _fit_spec(train, figure, spec, alpha)
            errors += [abs(_predict_one(fit, f, figure) - v) / v for f, v in test]
        # the mean, not the median: a candidate that fails on a rare family must pay for it;
        # capped, so one absurd prediction does not decide alone
        error = float(np.mean(np.minimum(errors, 1.0)))
        if error < best_error - 1e-9:
            best, best_error = (spec, alpha), error
    return best


def _as_stored(facts: dict[str, Any], variant: str) -> dict[str, Any]:
    """Facts with `stored_matmul_params`: the matmul/convolution weights as the variant's file stores
    them, in units of the variant's bytes per weight. An int8 file holds each weight once in int8,
    plus the fp32 copy (4 bytes) of a weight several nodes share, which ONNX Runtime's quantizer
    keeps beside the int8 one (ALBERT: its shared layers are one node per layer in the graph)."""
    if PRECISIONS.get(variant) != "int8" or not facts.get("shared_matmul_params"):
        return facts
    matmul = facts.get("matmul_params", facts["params"])
    return {**facts, "stored_matmul_params": matmul + 4.0 * facts["shared_matmul_params"]}


def _fit_one(rows: list[tuple[dict[str, Any], float]], figure: str, variant: str = "fp32") -> _Fit:
    spec, alpha = _choose_spec(rows, figure, variant=variant)
    return _fit_spec(rows, figure, spec, alpha)


def _predict_one(fit: _Fit, facts: dict[str, Any], figure: str) -> float:
    value = float(np.dot(_features(facts, fit.families, figure, fit.spec), fit.coef))
    if fit.spec.startswith("add"):
        return max(value, 1e-6) * math.exp(fit.offsets.get(facts["family"], 0.0))
    if figure in _LINEAR:
        return max(value, 1e-6)
    return float(math.exp(value))


class CostModel:
    """Predicts latency_ms (p50, batch 1), memory_mb (peak RSS) and size_mb per variant on one target.

    Example:
        >>> model = CostModel.fit(load_records(), target="local|...")
        >>> model.predict(facts_of(config), "int8-dynamic")["latency_ms"]
    """

    def __init__(self, target: str, fits: dict[str, _Fit]):
        self.target = target
        self.fits = fits  # key: f"{figure}/{variant}"

    @classmethod
    def fit(cls, records: list[dict[str, Any]], target: str | None = None) -> CostModel:
        """Fit on records of one target (the most frequent one when not given)."""
        if not records:
            raise ValueError("no measurements to fit a cost model on")
        if target is None:
            keys = [r["target_key"] for r in records]
            target = max(set(keys), key=keys.count)
        mine = [r for r in records if r["target_key"] == target]
        fits = {}
        for figure in TARGETS:
            for variant in sorted({r["variant"] for r in mine}):
                rows = [
                    (_as_stored(r["facts"], variant), r[figure])
                    for r in mine
                    if r["variant"] == variant and r.get(figure)
                ]
                if len(rows) >= 3:
                    fits[f"{figure}/{variant}"] = _fit_one(rows, figure, variant)
        return cls(target, fits)

    def predict(self, facts: dict[str, Any], variant: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for figure in TARGETS:
            fit = self.fits.get(f"{figure}/{variant}")
            out[figure] = _predict_one(fit, _as_stored(facts, variant), figure) if fit else None
        return out

    def interval(self, figure: str, variant: str, coverage: float = 0.9) -> tuple[float, float] | None:
        """A multiplicative band (low, high) that held-out errors fell in `coverage` of the time."""
        fit = self.fits.get(f"{figure}/{variant}")
        if not fit or len(fit.log_residuals) < 5:
            return None
        res = np.asarray(fit.log_residuals)
        tail = (1.0 - coverage) / 2.0
        return float(math.exp(np.quantile(res, tail))), float(math.exp(np.quantile(res, 1.0 - tail)))

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "fits": {k: v.__dict__ for k, v in self.fits.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostModel:
        return cls(data["target"], {k: _Fit(**v) for k, v in data["fits"].items()})


def with_facts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with `facts` computed from their config and input (records without a config dropped)."""
    out = []
    for record in records:
        if not record.get("config"):
            continue
        try:
            facts = facts_of(record["config"], record.get("input") or None)
        except Exception as exc:  # an architecture this transformers cannot build: skip it
            logger.info("no facts for %s: %s", record.get("model"), exc)
            continue
        out.append({**record, "facts": facts})
    return out


def _run_records(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for run in runs:
        info = {**run["target_info"], "threads": run["threads"]}
        target = {"name": run["target"], "kind": "local", "info": info}
        key = run.get("config_hash") or _hash(run["config"])
        records.append({**run, "target": target, "target_key": target_key(target), "config_hash": key})
    return records


def records_from_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Benchmark run lines (`benchmarks/device_cost.py`) as store records with facts."""
    return with_facts(_run_records(runs))


def _hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _group(record: dict[str, Any]) -> str:
    """The unit held out together: the shape (configs differing only in vocabulary or labels)."""
    return record["facts"].get("shape") or record.get("config_hash") or _hash(record["config"])


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _per_flop(records: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Median time per FLOP per (figure, variant): the baseline that latency is proportional to FLOPs."""
    out = {}
    for figure in ("latency_ms", "cpu_ms"):
        for variant in {r["variant"] for r in records}:
            ratios = [
                r[figure] / r["facts"]["flops"]
                for r in records
                if r["variant"] == variant and r.get(figure) and r["facts"]["flops"] > 0
            ]
            if ratios:
                out[(figure, variant)] = float(np.median(ratios))
    return out


def evaluate_heldout(
    records: list[dict[str, Any]],
    *,
    folds: int = 5,
    seed: int = 0,
    baseline: bool = False,
    extra_train: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    """K-fold grouped by shape (`shape_key`: configs that differ only in vocabulary or labels are
    held out together): within +-10% / +-5%, Spearman rho, per figure and variant. `extra_train`:
    records every fold trains on and none scores (other sizes of the catalog's families), less any
    of a held-out shape.

    Also returns the held-out log residuals, which `CostModel.interval` reads, and every held-out
    prediction (`heldout`). `baseline` adds rows for latency proportional to FLOPs (one rate per
    variant, fitted on the same folds).
    """
    keys = [r["target_key"] for r in records]
    target = max(set(keys), key=keys.count)
    records = [r for r in records if r["target_key"] == target]
    groups = sorted({_group(r) for r in records})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    fold_of = {groups[i]: k % folds for k, i in enumerate(order)}
    predictions: dict[str, list[tuple[float, float]]] = {}
    heldout: list[dict[str, Any]] = []
    extra = [r for r in extra_train if r["target_key"] == target]
    for fold in range(folds):
        train = [r for r in records if fold_of[_group(r)] != fold]
        test = [r for r in records if fold_of[_group(r)] == fold]
        if not train or not test:
            continue
        held = {_group(r) for r in test}
        model = CostModel.fit(train + [r for r in extra if _group(r) not in held], target)
        per_flop = _per_flop(train)
        for record in test:
            predicted = model.predict(record["facts"], record["variant"])
            for figure in TARGETS:
                if predicted[figure] is not None and record.get(figure):
                    key = f"{figure}/{record['variant']}"
                    predictions.setdefault(key, []).append((predicted[figure], float(record[figure])))
                    heldout.append(
                        {
                            "figure": figure,
                            "variant": record["variant"],
                            "model": record.get("model"),
                            "family": record["facts"]["family"],
                            "predicted": predicted[figure],
                            "measured": float(record[figure]),
                        }
                    )
                    rate = per_flop.get((figure, record["variant"]))
                    if baseline and rate and figure in ("latency_ms", "cpu_ms"):
                        pair = (rate * record["facts"]["flops"], float(record[figure]))
                        predictions.setdefault(f"{key}/flops-proportional", []).append(pair)
    rows = []
    residuals = {}
    for key, pairs in sorted(predictions.items()):
        figure, variant, *method = key.split("/")
        pred = np.asarray([p for p, _ in pairs])
        true = np.asarray([t for _, t in pairs])
        rel = np.abs(pred - true) / true
        if not method:
            residuals[key] = np.log(true / pred).tolist()
        rows.append(
            {
                "figure": figure,
                "variant": variant,
                "method": method[0] if method else "cost model",
                "n": len(pairs),
                "within_10": float(np.mean(rel <= 0.10)),
                "within_5": float(np.mean(rel <= 0.05)),
                "spearman": _spearman(pred.tolist(), true.tolist()),
                "median_abs_error": float(np.median(rel)),
            }
        )
    return {
        "target": target,
        "records": len(records),
        "folds": folds,
        "rows": rows,
        "heldout_log_residuals": residuals,
        "heldout": heldout,
    }


FIT_VERSION = 3  # raise when the fitting code changes: fits cached by an older version are not read


def fit_with_intervals(records: list[dict[str, Any]], *, folds: int = 5, cache: bool = True) -> CostModel:
    """Fit on all records; attach the held-out residuals of a grouped K-fold for the intervals.

    The fit depends only on the records, so it is kept in the cache (`cost_models/`) under a digest
    of what it reads; a constrained recommendation over the same measurements then loads it
    instead of refitting (~2 s, more under load). `cache=False`: always fit, store nothing.
    """
    path = model_path(_records_digest(records, folds)) if cache else None
    if path is not None and path.exists():
        try:
            return CostModel.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:  # a damaged cache entry: refit over it
            logger.info("cached cost model %s unreadable (%s); refitting", path, exc)
    model = CostModel.fit(records)
    report = evaluate_heldout(records, folds=folds)
    for key, residuals in report["heldout_log_residuals"].items():
        if key in model.fits:
            model.fits[key].log_residuals = residuals
    if path is not None:
        save_model(model, path)
        _prune(path.parent)
    return model


KEEP_FITS = 16  # cached fits kept: each new measurement makes a new one


def _prune(folder: Path) -> None:
    """Drop all but the `KEEP_FITS` most recently written cached fits."""
    files = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
    for old in files[KEEP_FITS:]:
        old.unlink(missing_ok=True)


def _records_digest(records: list[dict[str, Any]], folds: int) -> str:
    """What a fit reads: each record's target, variant, config, facts (so counting something new
    makes a new key by itself) and measured figures."""
    rows = sorted(
        json.dumps(
            [r.get("target_key"), r.get("variant"), _hash(r["config"]), r.get("facts")]
            + [r.get(figure) for figure in TARGETS],
            sort_keys=True,
            default=str,
        )
        for r in records
    )
    return json.dumps([FIT_VERSION, folds, rows])


def model_path(key: str) -> Path:
    """Where the cost model fitted for `key` (a records digest, `_records_digest`) is kept."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _paths.cache_dir("cost_models") / f"{digest}.json"


def save_model(model: CostModel, path: Path) -> Path:
    """Write atomically (a crash leaves the old file or none, never half a model)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(model.to_dict(), indent=1))
    os.replace(tmp, path)
    return path


# -- predictions for the catalog -------------------------------------------------------------

PREDICTED = "predicted"
BENCHMARK_RUNS = _paths.REFERENCE_DEVICE_RUNS
BENCHMARK_SIBLING_RUNS = _paths.REFERENCE_SIBLING_RUNS


def _benchmark_run_records() -> list[dict[str, Any]]:
    """The reference runs as store records, with the sibling sizes measured beside them (none
    without the reference runs), parsed once per version of each file: a constrained
    recommendation asks for them several times."""
    if not BENCHMARK_RUNS.exists():
        return []
    files = [BENCHMARK_RUNS]
    if BENCHMARK_SIBLING_RUNS.exists():
        files.append(BENCHMARK_SIBLING_RUNS)
    return [r for path in files for r in _parsed_runs(path, path.stat().st_mtime_ns)]


@functools.lru_cache(maxsize=4)
def _parsed_runs(path: Path, mtime_ns: int) -> list[dict[str, Any]]:
    return _run_records([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def architecture_count(records: list[dict[str, Any]]) -> int:
    """Distinct configs among measurement records."""
    return len({_hash(r["config"]) for r in records})


def training_records(target_info: dict[str, Any]) -> list[dict[str, Any]]:
    """Measurements of this target (same CPU, ISA, threads): the local store, plus the repo's
    benchmark runs when they were taken on the same CPU."""
    key = target_key({"kind": "local", "name": "local", "info": target_info})
    records = [r for r in load_records() if r.get("target_key") == key]
    records += [{**r, "source": "benchmark"} for r in _benchmark_run_records() if r["target_key"] == key]
    return with_facts(records)


def local_threads_measured(cpu_model: str | None) -> int | None:
    """The thread count most measurements of this CPU were taken with (store and benchmark)."""
    counts: dict[int, int] = {}
    for record in load_records() + _benchmark_run_records():
        info = (record.get("target") or {}).get("info") or {}
        if info.get("cpu_model") == cpu_model and info.get("threads"):
            counts[int(info["threads"])] = counts.get(int(info["threads"]), 0) + 1
    return max(counts, key=counts.get) if counts else None


def latency_figure(model: CostModel, local: dict[str, Any], variant: str) -> str:
    """Which fitted figure stands for latency: at 1 thread the CPU time per run (`cpu_ms`), which
    is the latency on an idle core and hardly moves with other processes' load; otherwise (CPU
    time then sums the threads) the measured wall-clock p50."""
    if local.get("threads") == 1 and f"cpu_ms/{variant}" in model.fits:
        return "cpu_ms"
    return "latency_ms"


# -- this machine's cost model, or the reference runs scaled to this machine --------------------

# Below this many architectures measured here, this machine's cost model borrows the project's
# reference runs (another CPU), scaled by a few config-only measurements taken here.
OWN_MIN_ARCHITECTURES = 10
CALIBRATION_ARCHITECTURES = 3
# reference fp32 CPU times the calibration picks from: long enough to time well, short to build
_CALIBRATION_MS = (3.0, 60.0)


@dataclass
class LocalFit:
    """The cost model `predict_catalog` uses for this machine, and how it relates to this machine.

    `scale`: per variant, this machine's CPU time over the reference machine's on the same
    architectures (empty when the model was fitted on this machine's own measurements); `band`:
    the lowest and highest of those ratios over their median, which widens the intervals.
    """

    model: CostModel
    threads: int
    method: str
    scale: dict[str, float] = field(default_factory=dict)
    band: tuple[float, float] = (1.0, 1.0)
    pairs: list[dict[str, Any]] = field(default_factory=list)


def _reference_records() -> list[dict[str, Any]]:
    """The reference runs of their most-measured machine at 1 thread (where CPU time is latency)."""
    records = [
        r for r in _benchmark_run_records() if r["target"]["info"].get("threads") == 1 and r.get("cpu_ms")
    ]
    if not records:
        return []
    keys: dict[str, int] = {}
    for r in records:
        keys[r["target_key"]] = keys.get(r["target_key"], 0) + 1
    best = max(keys, key=keys.get)
    return with_facts([{**r, "source": "reference"} for r in records if r["target_key"] == best])


def _calibration_configs(reference: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`CALIBRATION_ARCHITECTURES` reference fp32 runs of distinct configs, spread over the CPU
    times in `_CALIBRATION_MS` (the nearest ones when too few fall inside)."""
    fp32: dict[str, dict[str, Any]] = {}
    for r in reference:
        if r["variant"] == "fp32":
            fp32.setdefault(r["config_hash"], r)
    runs = sorted(fp32.values(), key=lambda r: r["cpu_ms"])
    low, high = _CALIBRATION_MS
    inside = [r for r in runs if low <= r["cpu_ms"] <= high]
    pool = (
        inside
        if len(inside) >= CALIBRATION_ARCHITECTURES
        else sorted(runs, key=lambda r: abs(math.log(r["cpu_ms"] / math.sqrt(low * high))))[
            :CALIBRATION_ARCHITECTURES
        ]
    )
    pool = sorted(pool, key=lambda r: r["cpu_ms"])
    if len(pool) <= CALIBRATION_ARCHITECTURES:
        return pool
    step = (len(pool) - 1) / (CALIBRATION_ARCHITECTURES - 1)
    return [pool[round(i * step)] for i in range(CALIBRATION_ARCHITECTURES)]


def local_cost_model(threads: int | None = None, *, calibrate: bool = True, progress=None) -> LocalFit | None:
    """The cost model for `local` at `threads` (None: the thread count measured most here).

    Fitted on this machine's own measurements at `threads` when they cover
    `OWN_MIN_ARCHITECTURES` architectures. Otherwise a 1-thread fit — this machine's own 1-thread
    runs, else the project's reference runs (another CPU) — scaled to this machine at `threads`
    by config-only measurements of a few of its architectures taken here (`_calibration_pairs`;
    kept in the measurement store, so only the first run pays for them): at 1 thread the ratio of
    CPU times, at more threads the measured wall-clock p50 over the fit's 1-thread CPU time, which
    also carries how well this machine's threads speed a model up. None when nothing can be
    fitted, or a calibration would be needed and `calibrate` is off.

    `progress(done, total, note)` is told about each calibration measurement.
    """
    from hf_spider.hardware.device import local_info

    own = threads or local_threads_measured(local_info()["cpu_model"])
    records = training_records(local_info(own)) if own else []
    n = architecture_count(records)
    if n >= OWN_MIN_ARCHITECTURES:
        return LocalFit(fit_with_intervals(records), own, f"fitted on {n} architectures measured here")
    base = records if own == 1 else training_records(local_info(1))
    where = "this machine's own runs"
    if architecture_count(base) < OWN_MIN_ARCHITECTURES:
        base = _reference_records()
        where = f"the project's reference runs ({base[0]['target']['info'].get('cpu_model')})" if base else ""
    if not base or not calibrate:
        return None
    at = threads or 1
    pairs = _calibration_pairs(base, at, progress)
    if not pairs:
        return None
    scale, spread = {}, []
    for variant in sorted({p["variant"] for p in pairs}):
        ratios = [p["ratio"] for p in pairs if p["variant"] == variant]
        scale[variant] = float(np.median(ratios))
        spread += [r / scale[variant] for r in ratios]
    band = (min(min(spread), 1.0), max(max(spread), 1.0))
    factors = ", ".join(f"{v} x {f:.2f}" for v, f in scale.items())
    return LocalFit(
        fit_with_intervals(base),
        1,
        f"fitted on {where} at 1 thread, scaled to this machine at {at} thread(s) by "
        f"{len(pairs) // max(len(scale), 1)} architectures measured here ({factors})",
        scale,
        band,
        pairs,
    )


def _calibration_pairs(base: list[dict[str, Any]], threads: int = 1, progress=None) -> list[dict[str, Any]]:
    """(1-thread fit, here at `threads`) figures of the calibration architectures, fp32 and
    int8-dynamic: the base's CPU time against, here, the CPU time (1 thread) or the wall-clock p50
    (more threads: CPU time then sums the threads). Taken from the store when measured before,
    else measured now from their configs (random weights)."""
    import dataclasses

    from hf_spider.hardware._configonly import QUICK, ConfigMeasureConfig, config_hash, measure_from_config
    from hf_spider.hardware.device import local_info

    key = target_key({"kind": "local", "name": "local", "info": local_info(threads)})
    figure = "cpu_ms" if threads == 1 else "latency_ms"

    def measured_here() -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (config_hash(r["config"]), r["variant"]): r
            for r in load_records()
            if r.get("target_key") == key and r.get(figure) and r.get("config")
        }

    stored = measured_here()
    by_run = {(config_hash(r["config"]), r["variant"]): r for r in base if r.get("cpu_ms")}
    chosen = _calibration_configs(base)
    pairs = []
    mc = ConfigMeasureConfig(measure=dataclasses.replace(QUICK, threads=threads), throughput=False)
    for i, run in enumerate(chosen):
        if progress is not None:
            progress(i, len(chosen), f"calibrating this machine at {threads} thread(s): {run['model']}")
        arch = config_hash(run["config"])
        variants = [v for v in ("fp32", "int8-dynamic") if (arch, v) in by_run]
        missing = [v for v in variants if (arch, v) not in stored]
        if missing:
            try:
                measure_from_config(run["config"], missing, "local", measure_config=mc, source="calibration")
            except Exception as exc:  # an architecture this machine cannot export: the others calibrate
                logger.info("calibration run of %s failed: %s", run["model"], exc)
                continue
            stored = measured_here()
        for variant in variants:
            here = stored.get((arch, variant))
            if here is not None:
                ref = by_run[(arch, variant)]["cpu_ms"]
                pairs.append(
                    {
                        "model": run["model"],
                        "variant": variant,
                        "reference_ms": ref,
                        "here_ms": here[figure],
                        "here_figure": figure,
                        "threads": threads,
                        "ratio": here[figure] / ref,
                    }
                )
    if progress is not None:
        progress(len(chosen), len(chosen), "calibrated")
    return pairs


def card_config(card: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """`config_from_card`, cached on disk by the card facts it reads."""
    from hf_spider.hardware._cardconfig import config_from_card

    facts = {
        k: card.get(k) for k in ("model_type", "architecture", "num_parameters", "num_labels", "input_size")
    }
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    seeded = _seed("cost_card_configs.json").get(key)
    if seeded is not None:
        return seeded[0], seeded[1]
    path = _paths.cache_dir("config_cost") / "card_configs.json"
    cache = _read_cache(path)
    if key not in cache:
        config, match = config_from_card(card)
        cache[key] = [config, match]
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, path)
    config, match = cache[key]
    return config, match


def predict_catalog(
    cards: list[dict[str, Any]],
    target: Any = "local",
    variants: tuple[str, ...] = ("fp32", "int8-dynamic"),
    *,
    seq_len: int = 64,
    threads: int | None = None,
    model: CostModel | LocalFit | None = None,
    max_param_error: float = 0.02,
    progress=None,
) -> list[dict[str, Any]]:
    """Predicted latency (batch 1), peak memory and file size of each card's variants on a target.

    `latency_ms` is the idle-core latency (`latency_figure`: CPU time per run at 1 thread) when
    the model was fitted at 1 thread, else the wall-clock p50; `latency_wall_ms` is always the
    wall-clock fit. `target`: `local` or a profile name (predicted for this machine, then scaled by the profile's
    factor, `profiles.estimate_factor`). Each row carries `interval` (the cost model's held-out
    90% band, times the profile's band) and says how its config was recovered. `model` None:
    `local_cost_model(threads)` (this machine's own fit, or the reference runs scaled to it).
    `progress(done, total, note)` follows the calibration, if any, then the cards.
    A card carrying `config` (its real config.json) is predicted from it, not from its facts.
    """
    from hf_spider.hardware.device import local_info
    from hf_spider.hardware.targets import DeviceTarget

    device = DeviceTarget.resolve(target)
    if device.kind == "agent":
        from hf_spider.errors import TargetError

        raise TargetError(
            "catalog predictions are for `local` or a profile", hint="use --target local or a profile"
        )
    if model is None:
        model = local_cost_model(threads, progress=progress)
        if model is None:
            from hf_spider.errors import TargetError

            raise TargetError(
                "no measurements of this machine or of the project's reference to fit a cost model on",
                hint="run `python -m benchmarks.device_cost` or `hf-spider bench` first",
            )
    fit = model if isinstance(model, LocalFit) else None
    if fit is not None:
        model, threads = fit.model, fit.threads
    local = local_info(threads or local_threads_measured(local_info()["cpu_model"]))
    profile = None
    if device.kind == "profile":
        from hf_spider.hardware.profiles import get_profile

        profile = get_profile(device.name)
    rows = []
    for done, card in enumerate(cards):
        if progress is not None and done % 10 == 0:  # a first run counts FLOPs of every new config
            progress(done, len(cards), f"predicting the cost of {len(cards)} candidates")
        config, match = (
            (card["config"], {"source": "config.json", "rel_error": 0.0})
            if card.get("config")
            else card_config(card)
        )
        if config is None or match.get("rel_error", 1.0) > max_param_error:
            rows.append(
                {
                    "model": card.get("model_id"),
                    "skipped": match.get("reason") or f"config not recovered: {match}",
                }
            )
            continue
        facts = facts_of(config, default_input(config, seq_len))
        for variant in variants:
            predicted = model.predict(facts, variant)
            figure = latency_figure(model, local, variant)
            if predicted[figure] is None:
                continue
            factor, band = 1.0, (1.0, 1.0)
            method = f"cost model fitted on {model.target}; " + (
                "idle-core latency: CPU time per batch-1 run at 1 thread"
                if figure == "cpu_ms"
                else "wall-clock p50 as measured (includes waiting for a core on a loaded machine)"
            )
            if fit is not None and fit.scale:  # fitted on the reference machine: scaled to this one
                factor = fit.scale.get(variant, fit.scale.get("fp32", 1.0))
                band = fit.band
                method = f"{method}, x {factor:.3g} for this machine ({fit.method})"
            if profile is not None:
                from hf_spider.hardware.profiles import estimate_factor

                estimate = estimate_factor(profile, local, variant)
                factor *= estimate["factor"]
                method = f"{method}, x {estimate['factor']:.3g} for {profile.name}"
                low, high = estimate["band"] or (1.0, 1.0)
                band = (band[0] * low, band[1] * high)
            latency, wall = predicted[figure] * factor, predicted["latency_ms"]
            spread = model.interval(figure, variant)
            interval = None
            if spread is not None:
                interval = {"low": latency * spread[0] * band[0], "high": latency * spread[1] * band[1]}
            rows.append(
                {
                    "model": card.get("model_id"),
                    "variant": variant,
                    "latency_ms": latency,
                    "latency_interval": interval,
                    "latency_figure": figure,
                    "latency_wall_ms": None if wall is None else wall * factor,
                    "memory_mb": predicted["memory_mb"],
                    "size_mb": predicted["size_mb"],
                    "label": PREDICTED,
                    "method": method,
                    "facts": facts,
                    "config_match": match,
                }
            )
    return rows
