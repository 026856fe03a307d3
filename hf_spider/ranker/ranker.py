"""`Ranker`: score Hub models for a task, from their tokens (stage 1) and estimator scores (stage 2).

Inference only: the network and its inputs are in `model` / `inference`, training in `training`
(`train_ranker`), the choice of parts in `selection`, the closed-form priors in `priors`.

Example:
    >>> from hf_spider.catalog import Catalog
    >>> from hf_spider.ranker import Ranker
    >>> ranker = Ranker.default()  # shipped weights, offline
    >>> result = ranker.rank(Catalog.load(), {"name": "beans", "modality": "image", "num_classes": 3})
    >>> result.ranking[:3]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.catalog._aliases import former_id
from hf_spider.catalog._candidates import of_other_modality
from hf_spider.catalog._token import SCHEMA_VERSION, TOKEN_DIM, ModelToken
from hf_spider.errors import CatalogError, UserInputError
from hf_spider.ranker import features as F
from hf_spider.ranker import inference as I
from hf_spider.ranker import priors as P
from hf_spider.ranker.cold import card_prior_from_dict, familiarity, knows_architecture
from hf_spider.ranker.model import RankerConfig

logger = logging.getLogger("hf_spider.ranker")

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
HISTORY_FILE = "history.json"
WEIGHT_FILES = ("config.json", "model.safetensors")  # what a Hub repo of ranker weights must hold


@dataclass
class RankResult:
    """A stage-1 ranking: `ranking` (= `stage1`) is [(model_id, score)] best first; `basis` says
    what each model's score was computed from (`inference.BASES`: its fine-tuning history on
    earlier datasets, its card alone, the facts of a card of an architecture the ranker knows
    nothing of, or neither)."""

    ranking: list[tuple[str, float]]
    stage1: list[tuple[str, float]]
    task: dict[str, Any] = field(default_factory=dict)
    basis: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranking": [{"model_id": m, "score": s, "basis": self.basis.get(m)} for m, s in self.ranking],
            "stage1": [{"model_id": m, "score": s} for m, s in self.stage1],
            "task": {k: v for k, v in self.task.items() if k != "description"},
        }


def task_meta(task: Any) -> dict[str, Any]:
    """Task metadata the ranker reads, from a `hf_spider.tasks.Task`, a dict, or a dataset card path."""
    if isinstance(task, str | os.PathLike):
        from hf_spider.tasks import load_task

        task = load_task(task, sample=0, probe=False)
    if isinstance(task, Mapping):
        meta = dict(task)
    elif hasattr(task, "describe"):
        meta = task.describe()
        if getattr(task, "data_token", None) is not None:  # read where `task_data` is on
            meta["data_token"] = [float(v) for v in task.data_token]
    else:
        raise UserInputError(
            f"cannot read a task from {type(task).__name__}",
            hint="pass a hf_spider.tasks.Task or a metadata dict",
        )
    if not meta.get("name"):
        meta["name"] = meta.get("dataset_id") or "task"
    return meta


def _card_prior_fits(fit: Mapping[str, Any]) -> bool:
    """Whether a stored card prior's ridge (if any) reads tokens of this catalog's length."""
    ridge = fit.get("ridge") if fit.get("kind") == "cold" else (None if fit.get("kind") else fit)
    return ridge is None or len(ridge["coef"]) == TOKEN_DIM + len(ridge.get("vocab", []))


def _same_dataset(dataset: str, meta: Mapping[str, Any]) -> bool:
    """Whether a training dataset is the task's own dataset: its name (without an `@protocol`
    suffix, see `records`) equals the task's name, pretty name, dataset id's or location's last part, ignoring
    case and punctuation (`rotten_tomatoes@linear_probe` ~ `hf-spider-zoo/rotten-tomatoes`)."""
    base = F.name_key(dataset.split("@", 1)[0])
    names = {
        F.name_key(meta.get(k)) for k in ("name", "pretty_name", "dataset_id", "location") if meta.get(k)
    }
    return bool(base) and base in names


class Ranker:
    """The learned ranker plus the fine-tuning history it knows (percentiles on earlier fine-tuning datasets).

    Args:
        model: the trained `SpiderEnsemble`.
        history: `{model_id: {dataset: percentile}}` on the training (fine-tuning) datasets.
        datasets: `{dataset: metadata}` of those datasets.
        card_prior: `{modality: serialised cold.ColdPrior}`: from a model's card to its mean
            percentile on the training datasets, the prior of models with no history (where it
            was fitted on enough models to be checked, else they sit at the median of the others).
    """

    def __init__(
        self,
        model,
        *,
        history: Mapping[str, Mapping[str, float]] | None = None,
        datasets=None,
        card_prior: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        self.model = model
        self.history = {m: dict(h) for m, h in (history or {}).items()}
        self.datasets = {t: dict(meta) for t, meta in (datasets or {}).items()}
        self.card_prior = {m: dict(c) for m, c in (card_prior or {}).items()}
        self._card_priors: dict[str, Any] = {}
        meta = getattr(model, "meta", {}) or {}
        if meta.get("token_dim", TOKEN_DIM) != TOKEN_DIM:
            raise CatalogError(
                f"ranker weights expect model tokens of length {meta.get('token_dim')}, the catalog makes {TOKEN_DIM}",
                hint="retrain with `hf-spider train` for this hf-spider version",
            )

    # --- loading and saving ----------------------------------------------------------------------
    @classmethod
    def default(cls) -> Ranker:
        """The weights shipped in the package (no network)."""
        return cls.from_pretrained(WEIGHTS_DIR)

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo: str | os.PathLike | None = None,
        *,
        token: str | None = None,
        endpoint: str | None = None,
    ) -> Ranker:
        """Load from a folder, or a Hub repo id (through huggingface_hub, `endpoint` for another Hub)."""
        from hf_spider.ranker.model import SpiderEnsemble

        source = Path(path_or_repo).expanduser() if path_or_repo is not None else WEIGHTS_DIR
        text = str(path_or_repo or "")
        # a name that can only be a path (absolute, ./, ~, more than one "/") and is not a folder
        if (
            path_or_repo is not None
            and not source.is_dir()
            and (
                text.startswith(("/", ".", "~")) or text.count("/") > 1 or (os.sep != "/" and os.sep in text)
            )
        ):
            raise CatalogError(
                f"no ranker weights folder at {path_or_repo}",
                hint="pass a folder written by `hf-spider train --out DIR`, or a Hub repo id (namespace/name)",
            )
        if path_or_repo is None or source.is_dir():
            if not (source / "config.json").is_file():
                raise CatalogError(
                    f"no ranker weights in {source}", hint="run `hf-spider train --out DIR` first"
                )
        else:
            source = _fetch_weights(str(path_or_repo), token=token, endpoint=endpoint)
        model = SpiderEnsemble.from_pretrained(str(source))
        history_path = source / HISTORY_FILE
        model.eval()
        data = json.loads(history_path.read_text()) if history_path.is_file() else {}
        return cls(
            model,
            history=data.get("history"),
            datasets=data.get("datasets", data.get("targets")),
            card_prior=data.get("card_prior"),
        )

    def save_pretrained(self, folder: str | os.PathLike, *, card: str | None = None) -> Path:
        """Write the weights, history and card into `folder`. Everything is written into a new
        folder beside it first and then moved in file by file, so a failed save (disk full) leaves
        what `folder` held before as it was."""
        import shutil
        import tempfile

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            self.model.save_pretrained(str(staging))
            payload = {"history": self.history, "datasets": self.datasets}
            if self.card_prior:
                payload["card_prior"] = self.card_prior
            (staging / HISTORY_FILE).write_text(json.dumps(payload, sort_keys=True, separators=(",", ":")))
            if card is not None:
                (staging / "README.md").write_text(card)
            for path in sorted(staging.iterdir()):
                os.replace(path, folder / path.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    # --- ranking ---------------------------------------------------------------------------------
    @property
    def config(self) -> RankerConfig:
        return RankerConfig.from_dict(getattr(self.model, "config", {}) or {})

    def context(
        self,
        candidates: Iterable[ModelToken],
        task: Any,
        *,
        estimator_scores: Mapping[str, Mapping[str, float]] | None = None,
        vectors: np.ndarray | None = None,
    ) -> I.Context:
        """Network inputs for `candidates` on `task`; `vectors`: the candidates' `vector()` rows
        (as `Catalog.vectors()` returns them) to skip re-tokenising."""
        meta = task_meta(task)
        candidates = list(candidates)
        matrix = F.token_matrix(candidates, vectors)
        tokens = {t.model_id: t for t in candidates}
        if len(tokens) != len(candidates):  # repeated ids: keep the last, as the dict does
            last = {t.model_id: i for i, t in enumerate(candidates)}
            matrix = matrix[list(last.values())]
        history: I.History = {}
        own = {t for t in self.datasets if _same_dataset(t, meta)}
        for mid in tokens:
            # a canonical model's records may name it by its id before the Hub moved it
            recorded = self.history.get(mid) or self.history.get(former_id(mid) or "", {})
            items = [
                (self.datasets[t], p)
                for t, p in recorded.items()
                if t in self.datasets and t not in own  # never the task's own record
            ]
            if items:
                history[mid] = items
        config = self.config.for_modality(meta.get("modality"))
        # the card prior of candidates without history, and of all when it is mixed into theirs
        cold = [i for i, m in enumerate(tokens) if config.card_shrink > 0 or m not in history]
        ordered = list(tokens.values())
        ctx = I.build_context(
            meta,
            list(tokens),
            tokens,
            history,
            estimator_scores,
            prior=config.prior,
            card_prior=self._card_prior([ordered[i] for i in cold], meta, matrix[cold], set(history)),
            vectors=matrix,
            card_shrink=config.card_shrink,
            match_bonus=config.match_bonus,
        )
        ctx.cold_weight = self._cold_weight(ordered, meta, set(history))
        return ctx

    def _cold_weight(self, tokens: list[ModelToken], meta: Mapping[str, Any], seen: set[str]) -> np.ndarray:
        """Familiarity of each candidate without history (`cold.familiarity`; 1 for the others and
        where the card prior has no such notion), by which its network residual is kept."""
        out = np.ones(len(tokens))
        for modality, rows in _by_modality(tokens, meta, lambda t: t.model_id not in seen).items():
            fam = familiarity(self._card_priors.get(modality), [tokens[i] for i in rows])
            if fam is not None:
                out[rows] = fam
        return out

    def _card_prior(
        self,
        tokens: list[ModelToken],
        meta: Mapping[str, Any],
        vectors: np.ndarray | None = None,
        seen: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, float]:
        """`{model: card prior}` of `tokens`; none for a model without history (not in `seen`)
        where the stored prior was fitted on too few models to be checked (`ColdPrior.places_cold`):
        that model sits at the median of the others (`priors.unknown_placement`)."""
        out: dict[str, float] = {}
        matrix = F.token_matrix(tokens, vectors)
        for modality, rows in _by_modality(tokens, meta).items():
            fit = self.card_prior.get(modality)
            if not fit or not _card_prior_fits(fit):
                continue
            prior = self._card_priors.setdefault(modality, card_prior_from_dict(fit))
            by_id = {tokens[i].model_id: tokens[i] for i in rows}
            values = P.card_prior_values(prior, [tokens[i].model_id for i in rows], by_id, matrix[rows])
            out.update(P.placeable(prior, values, seen))
        return out

    def score(
        self, candidates: Iterable[ModelToken], task: Any, *, estimator_scores=None, vectors=None
    ) -> dict[str, float]:
        """`{model_id: score}`: the stage-1 score (the prior, plus the learned residual where
        cross-validation kept it for the task's modality), fused with the estimators' consensus
        when `estimator_scores` are given (stage 2)."""
        return dict(self._scored(candidates, task, estimator_scores=estimator_scores, vectors=vectors)[0])

    def _scored(self, candidates, task, *, estimator_scores=None, vectors=None):
        """(`[(model_id, score)]` in the candidates' order, their `Context`)."""
        ctx = self.context(candidates, task, estimator_scores=estimator_scores, vectors=vectors)
        modality = str(ctx.task.get("modality") or "")
        config = self.config.for_modality(modality)
        model = self.model if self.config.residual_for(modality) else None
        if estimator_scores:  # stage 2: stage-1 score fused with the estimators' consensus
            scores = I.fused_scores(model, ctx, config.stage2_weight, estimators=config.stage2_estimators)
        else:
            scores = I.score_context(model, ctx, use_features=False)
        return list(zip(ctx.models, (float(s) for s in scores), strict=True)), ctx

    def rank(
        self,
        candidates: Iterable[ModelToken] | Any,
        task: Any,
        *,
        vectors: np.ndarray | None = None,
    ) -> RankResult:
        """Rank candidates for a task from their tokens, their history and the task's metadata (stage 1).

        Stage 2 (forward passes, estimators, and their one fusion with these scores) is
        `hf_spider.probe`. `vectors`: the candidates' `ModelToken.vector()` rows when at hand
        (`Catalog.vectors()`). Candidates of the other modality (an image model for a text task)
        are left out: a whole catalog can be passed.
        """
        tokens = list(candidates)
        if not tokens:
            raise UserInputError("no candidate models to rank", hint="check the catalog and its filters")
        meta = task_meta(task)
        keep = [i for i, t in enumerate(tokens) if not of_other_modality(t, meta.get("modality"))]
        if not keep:
            raise UserInputError(
                f"no candidate serves a {meta.get('modality')} task: all {len(tokens)} are "
                f"{'/'.join(sorted({t.modality for t in tokens}))} models",
                hint="pass models of the task's modality (Catalog.filter(modality=...))",
            )
        if len(keep) < len(tokens):
            logger.info(
                "ranking %d of %d candidates: the others serve another modality", len(keep), len(tokens)
            )
            tokens = [tokens[i] for i in keep]
            vectors = None if vectors is None else np.asarray(vectors)[keep]
        scored, ctx = self._scored(tokens, meta, vectors=vectors)
        # best first; equal scores (cards placed at the same median) by id, whatever the catalog's order
        stage1 = sorted(dict(scored).items(), key=lambda kv: (-kv[1], kv[0]))
        basis = dict(zip(ctx.models, ctx.basis or (), strict=False))
        for model in self._new_architectures(tokens, meta, basis):
            basis[model] = "card_facts"
        return RankResult(ranking=stage1, stage1=stage1, task=meta, basis=basis)

    def _new_architectures(
        self, tokens: list[ModelToken], meta: Mapping[str, Any], basis: Mapping[str, str]
    ) -> list[str]:
        """The candidates placed by their card (`basis` "card") whose architecture the card prior
        knows nothing of (`cold.knows_architecture`): scored from their parameter count and
        upstream accuracy alone, at about parameter count's level (`eval ranking --cold-start
        families`)."""
        out: list[str] = []
        for modality, rows in _by_modality(tokens, meta, lambda t: basis.get(t.model_id) == "card").items():
            group = [tokens[i] for i in rows]
            known = knows_architecture(self._card_priors.get(modality), group)
            if known is not None:
                out += [t.model_id for t, k in zip(group, known, strict=True) if not k]
        return out


def _by_modality(
    tokens: list[ModelToken], meta: Mapping[str, Any], keep: Callable[[ModelToken], bool] = lambda t: True
) -> dict[str, list[int]]:
    """`{modality: [index into tokens]}` of the tokens `keep` accepts, by each card's modality (the
    task's where the card does not say): the card prior is one per modality."""
    out: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        if keep(t):
            out.setdefault(str(t.modality or meta.get("modality") or ""), []).append(i)
    return out


def rank_catalog(catalog: Any, task: Any, *, ranker: Ranker | None = None) -> list[tuple[str, float]]:
    """Every model of a catalog ranked for a task from cards alone (stage 1).

    Args:
        catalog: a `hf_spider.catalog.Catalog`, a path to one, or an iterable of `ModelToken`s
            (e.g. a catalog built with `hf_spider.catalog.crawl(..., from_dir=MODELS_DIR)`).
        task: a `hf_spider.tasks.Task`, its metadata dict, or a dataset card / folder path.
        ranker: defaults to the shipped weights.

    Returns:
        [(model_id, score)] best first.
    """
    if isinstance(catalog, str | os.PathLike):
        catalog = _catalog_from_path(Path(catalog))
    ranker = ranker or Ranker.default()
    vectors = None
    if hasattr(catalog, "vectors"):  # a Catalog keeps every token's vector: no re-tokenising
        ids, vectors = catalog.vectors()
        tokens = [catalog.get(m) for m in ids]
    else:
        tokens = list(catalog)
    return ranker.rank(tokens, task, vectors=vectors).ranking


def _catalog_from_path(path: Path):
    """A catalog folder/file, or a folder of Hub-layout model repos crawled into a temporary catalog."""
    import tempfile

    from hf_spider.catalog import Catalog, crawl

    if (
        not path.exists()
        or path.is_file()
        or any((path / n).is_file() for n in ("catalog.jsonl", "catalog.sqlite"))
    ):
        return Catalog.load(path)  # also resolves `model_cards` from any working folder
    if not path.is_dir():
        raise UserInputError(
            f"no catalog or model folder at {path}", hint="pass a catalog or a folder of model repos"
        )
    with tempfile.TemporaryDirectory(prefix="hf-spider-catalog-") as tmp:
        crawl(Path(tmp) / "catalog", from_dir=path)
        return Catalog(list(Catalog.load(Path(tmp) / "catalog")))


def token_schema() -> dict[str, Any]:
    return {
        "token_dim": TOKEN_DIM,
        "token_schema_version": SCHEMA_VERSION,
        "model_dim": F.MODEL_DIM,
        "task_dim": F.TASK_DIM,
    }


__all__ = ["RankResult", "Ranker", "rank_catalog", "task_meta", "token_schema"]


def _fetch_weights(repo: str, *, token: str | None, endpoint: str | None) -> Path:
    """The snapshot folder of ranker weights on the Hub: `config.json`, `model.safetensors` and
    `history.json` where the repo has one, from the local Hub cache when it holds them. Never a
    pickle (`pytorch_model.bin`): a repo without safetensors weights is refused. Without a network
    the error comes at once, not after huggingface_hub's retries."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError

    from hf_spider.errors import hub_error
    from hf_spider.models import hub_reachable

    what = f"ranker weights {repo!r} (not a local folder either)"

    def fetch(filename: str, offline: bool) -> Path:
        return Path(hf_hub_download(repo, filename, token=token, endpoint=endpoint, local_files_only=offline))

    def snapshot(offline: bool) -> Path:  # the folder the weight files lie in
        return [fetch(name, offline) for name in WEIGHT_FILES][-1].parent

    try:
        online = False  # whether the Hub answered: asked once at most
        try:  # the cache first: no request at all when it holds the weights
            folder = snapshot(offline=True)
        except LocalEntryNotFoundError as exc:
            if not hub_reachable(endpoint):  # hub_error's one line for "not cached, Hub unreachable"
                raise hub_error(exc, what, endpoint=endpoint) from None
            online = True
            folder = snapshot(offline=False)
        if not (folder / HISTORY_FILE).is_file() and (online or hub_reachable(endpoint)):
            with contextlib.suppress(EntryNotFoundError):  # weights without a history: the prior reads none
                fetch(HISTORY_FILE, False)
    except HFValidationError:
        raise UserInputError(
            f"ranker weights {repo!r}: neither a folder nor a Hub repo id",
            hint="pass a folder written by `hf-spider train --out DIR`, or a Hub repo id (namespace/name)",
        ) from None
    except EntryNotFoundError as exc:
        raise CatalogError(
            f"{what} has no config.json and model.safetensors",
            hint="pass a repo written by `hf-spider train --push-to-hub` (pickle weights are never loaded)",
        ) from exc
    except (OSError, ValueError) as exc:  # no such repo, auth, a malformed id: one line
        raise hub_error(exc, what, endpoint=endpoint) from exc
    return folder
