"""The Model-Spider-style network: a candidate token attends to task, history and estimator tokens.

For one (candidate, task) pair the sequence is
`[candidate, task, history_1..H, estimator_1..F]`:
- candidate: the model's catalog token and its pair features, plus a summary of its history;
- task: the task's metadata vector;
- history_i: the candidate's percentile on an earlier fine-tuning dataset and how that dataset relates to this
  task (a model nobody fine-tuned has none);
- estimator_j: a forward-pass transferability score of the candidate on this task (stage 2).
A small transformer encoder mixes them; the output at the candidate position is the score. The
score also carries the candidate's mean history percentile through a learned gain, so the network
learns a residual on top of the collaborative prior rather than the prior itself.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import torch
from huggingface_hub import PyTorchModelHubMixin, constants
from torch import nn

from hf_spider.ranker import features as F


@dataclass
class RankerConfig:
    """Architecture and training hyperparameters (JSON round-trippable)."""

    d_model: int = field(default=32, metadata={"help": "width of every token"})
    n_layers: int = field(default=2, metadata={"help": "transformer encoder layers"})
    n_heads: int = field(default=2, metadata={"help": "attention heads"})
    dropout: float = field(default=0.1, metadata={"help": "dropout inside the encoder"})
    steps: int = field(default=50, metadata={"help": "optimisation steps per ensemble member"})
    episodes_per_step: int = field(
        default=4, metadata={"help": "episodes (training dataset, candidate subset) per step"}
    )
    min_candidates: int = field(default=8, metadata={"help": "smallest candidate subset of an episode"})
    max_candidates: int = field(default=48, metadata={"help": "largest candidate subset of an episode"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay"})
    cold_rate: float = field(default=0.25, metadata={"help": "share of candidates whose history is hidden"})
    history_drop: float = field(default=0.2, metadata={"help": "share of history tokens dropped"})
    feature_drop: float = field(default=0.5, metadata={"help": "share of episodes without estimator tokens"})
    loss: str = field(default="plackett_luce", metadata={"help": "plackett_luce or pairwise"})
    ensemble: int = field(default=3, metadata={"help": "ensemble members (different seeds)"})
    prior_gain: float = field(default=4.0, metadata={"help": "initial gain of the collaborative prior"})
    step_grid: tuple[int, ...] = field(
        default=(0, 100),
        metadata={
            "help": "training steps tried by the inner cross-validation (0: the prior alone, no learned residual)"
        },
    )
    prior: str = field(
        default="mean",
        metadata={
            "help": 'collaborative prior: mean, median or normal-score mean (gmean) of percentiles, optionally weighted by class-count similarity ("mean@classes")'
        },
    )
    stage2_weight: float = field(
        default=0.5,
        metadata={
            "help": "weight of the estimators' consensus in the stage-2 fused rank (0 = the stage-1 order)"
        },
    )
    stage2_estimators: list = field(
        default_factory=list,
        metadata={
            "help": "estimators whose consensus stage 2 fuses (chosen by cross-validation; empty = all given)"
        },
    )
    by_modality: dict = field(
        default_factory=dict,
        metadata={
            "help": "parts chosen per task modality by cross-validation (prior, card_shrink, match_bonus, "
            "stage2_weight, stage2_estimators, residual: whether the learned residual is used); else the fields above"
        },
    )
    card_shrink: float = field(
        default=0.0,
        metadata={"help": "pseudo-datasets of the card prior mixed into the collaborative prior (0 = none)"},
    )
    match_bonus: float = field(
        default=0.0,
        metadata={
            "help": "added to the prior (percentile scale) of a model whose own training data shares the task's name"
        },
    )
    min_residual_datasets: int = field(
        default=8,
        metadata={
            "help": "fewest training datasets (of the task's modality) on which the learned residual is tried at all"
        },
    )
    residual_margin: float = field(
        default=0.005,
        metadata={
            "help": "mean inner-CV tau_w by which the learned residual must beat the prior alone to be kept"
        },
    )
    task_data: bool = field(
        default=False,
        metadata={
            "help": "the task token includes the probe data token's summary (`features.task_data_vector`)"
        },
    )
    inner_folds: int = field(
        default=3, metadata={"help": "training datasets held out by the inner cross-validation of the steps"}
    )

    def to_dict(self) -> dict:
        return asdict(self)

    def for_modality(self, modality: str | None) -> RankerConfig:
        """This configuration with the parts chosen for `modality` (`by_modality`) filled in."""
        parts = (self.by_modality or {}).get(str(modality or ""), {})
        known = {k: v for k, v in parts.items() if k in self.__dataclass_fields__}
        return RankerConfig.from_dict({**self.to_dict(), **known}) if known else self

    def residual_for(self, modality: str | None) -> bool:
        """Whether the learned residual is used for `modality` (else the prior alone)."""
        parts = (self.by_modality or {}).get(str(modality or ""), {})
        return bool(parts.get("residual", self.steps > 0))

    @classmethod
    def from_dict(cls, data: dict) -> RankerConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "step_grid" in known:
            known["step_grid"] = tuple(int(x) for x in known["step_grid"])
        return cls(**known)


class SpiderNet(nn.Module):
    """One ensemble member. Inputs are batches of candidates of one task (see `forward`)."""

    def __init__(
        self,
        d_model: int = 32,
        n_layers: int = 2,
        n_heads: int = 2,
        dropout: float = 0.1,
        prior_gain: float = 4.0,
        task_dim: int = F.TASK_DIM,
    ):
        super().__init__()
        d = d_model
        self.candidate = nn.Sequential(nn.Linear(F.MODEL_DIM + F.SUMMARY_DIM, d), nn.GELU(), nn.Linear(d, d))
        self.task = nn.Sequential(nn.Linear(task_dim, d), nn.GELU(), nn.Linear(d, d))
        self.history = nn.Sequential(nn.Linear(F.HISTORY_DIM, d), nn.GELU(), nn.Linear(d, d))
        self.estimator = nn.Sequential(nn.Linear(F.FEATURE_DIM, d), nn.GELU(), nn.Linear(d, d))
        self.kind = nn.Embedding(4, d)  # candidate, task, history, estimator
        layer = nn.TransformerEncoderLayer(
            d, n_heads, dim_feedforward=2 * d, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))
        # zero-initialised residual: before training the score is the collaborative prior alone,
        # and the number of training steps (cross-validated) says how far to move away from it
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)
        self.prior_gain = nn.Parameter(torch.tensor(float(prior_gain)))

    def forward(
        self,
        model_x: torch.Tensor,  # [n, MODEL_DIM]
        summary: torch.Tensor,  # [n, SUMMARY_DIM]
        task_x: torch.Tensor,  # [n, task_dim] or [task_dim] (`features.task_input`)
        hist: torch.Tensor,  # [n, H, HISTORY_DIM]
        hist_pad: torch.Tensor,  # [n, H] True where padding
        feats: torch.Tensor,  # [n, Fn, FEATURE_DIM]
        feat_pad: torch.Tensor,  # [n, Fn] True where padding
    ) -> torch.Tensor:
        n = model_x.shape[0]
        cand = self.candidate(torch.cat([model_x, summary], dim=-1)) + self.kind.weight[0]
        task = (self.task(task_x) + self.kind.weight[1]).expand(n, -1)  # one task, or one per candidate
        seq = [cand[:, None], task[:, None]]
        pads = [torch.zeros(n, 2, dtype=torch.bool)]
        if hist.shape[1]:
            seq.append(self.history(hist) + self.kind.weight[2])
            pads.append(hist_pad)
        if feats.shape[1]:
            seq.append(self.estimator(feats) + self.kind.weight[3])
            pads.append(feat_pad)
        out = self.encoder(torch.cat(seq, dim=1), src_key_padding_mask=torch.cat(pads, dim=1))
        # mean percentile (centred) where there is history, else the card-based prior (0 = neutral)
        prior = summary[:, 0]
        return self.head(out[:, 0]).squeeze(-1) + self.prior_gain * prior


class SpiderEnsemble(nn.Module, PyTorchModelHubMixin):
    """The shipped ranker: an ensemble of `SpiderNet`s; its score is the members' mean.

    Saved and loaded with huggingface_hub's `PyTorchModelHubMixin` (`save_pretrained`,
    `from_pretrained`, `push_to_hub`): `config.json` holds `config` and `meta` (feature layout,
    catalog token schema, training data), `model.safetensors` the weights.
    """

    def __init__(self, config: dict | None = None, meta: dict | None = None):
        super().__init__()
        self.config = dict(config or {})
        self.meta = dict(meta or {})
        cfg = RankerConfig.from_dict(self.config)
        self.members = nn.ModuleList(
            SpiderNet(
                cfg.d_model,
                cfg.n_layers,
                cfg.n_heads,
                cfg.dropout,
                cfg.prior_gain,
                F.TASK_DIM + (F.TASK_DATA_DIM if cfg.task_data else 0),
            )
            for _ in range(cfg.ensemble)
        )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(*inputs) for m in self.members]).mean(0)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = False, **kwargs):
        """The mixin's loader, except for a local folder, where the mixin prints "Loading weights
        from local directory" to stdout (it would corrupt `recommend --json -`)."""
        if not os.path.isdir(model_id):
            return super()._from_pretrained(
                model_id=model_id, map_location=map_location, strict=strict, **kwargs
            )
        hub_args = (
            "revision",
            "cache_dir",
            "force_download",
            "proxies",
            "resume_download",
            "local_files_only",
            "token",
        )
        model = cls(**{k: v for k, v in kwargs.items() if k not in hub_args})
        weights = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE)
        return cls._load_as_safetensor(model, weights, map_location, strict)
