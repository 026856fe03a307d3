"""Fine-tuning records in the shared schema (`../shared/data`): load, clean, report defects.

A records folder holds any of `records.csv`, `model_config.csv`, `transferability_scores.csv` and
`target_datasets.csv`. Several folders may be given; files of the same name are concatenated and
duplicate rows dropped. Each folder's modality (image / text) is inferred from its files.

Known defects are handled explicitly and listed in `Records.report`:
- shifted text rows (`finetuned_dataset` equal to `0.1`, `lora`, `none`) are dropped;
- several runs of one (model, dataset): the ground truth is the full fine-tune (LoRA runs are
  kept apart in `Records.peft`); repeated full fine-tunes are averaged (mean; spread reported),
  and their best evaluation accuracy is kept too (`best_eval`, TransferGraph's ground truth);
- runs far below the dataset's chance-corrected median are flagged `failed` (kept for evaluation,
  left out of training), and a dataset whose median run is at chance is flagged as a whole (chance
  = 1 / its class count; where `target_datasets.csv` gives none, raw accuracy: only what is
  clearly failed is flagged);
- model ids of records or scores that do not join `model_config.csv` are reported.

"Dataset" here is always a *fine-tuning dataset* of the records (the shared files call it the
target dataset); device targets are another thing (`hf_spider.hardware`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hf_spider.errors import DatasetError, UserInputError

logger = logging.getLogger("hf_spider.ranker")

FILES = ("records.csv", "model_config.csv", "transferability_scores.csv", "target_datasets.csv")
# another ranker's published predictions (TransferGraph's), read where a folder has them
PREDICTIONS_FILE = "transfergraph_predictions.csv"
_SHIFTED_TARGETS = {"0.1", "lora", "none", "1.0", "nan", ""}
# A run whose chance-corrected accuracy is below this fraction of the dataset's median is "failed".
FAILED_RUN_FRACTION = 0.5
# A dataset whose median chance-corrected accuracy is below this is "failed" as a whole.
FAILED_TARGET_MEDIAN = 0.1
# metric names of the score files -> the names stage 2 passes (`hf_spider.recommend`)
_METRIC_NAMES = {
    "log_me": "logme",
    "logme": "logme",
    "reg_h_score": "reg_h_score",
    "reg_hscore": "reg_h_score",
    "h_score": "h_score",
    "hscore": "h_score",
}
FULL_FINETUNE = "full_finetune"
# the target-name column of target_datasets.csv: the first of these that the file has
DATASET_NAME_COLUMNS = ("target_dataset", "finetune_dataset", "dataset", "target")


@dataclass
class Records:
    """Cleaned records of one or more folders.

    Attributes:
        perf: one row per (model, dataset) of full fine-tunes: `model`, `dataset`, `accuracy` (mean
            of repeats; test accuracy where the records have it), `best_eval` (the best evaluation
            accuracy of the repeats: TransferGraph's ground truth), `modality`, `n_runs`, `failed`
            (far below the dataset's chance-corrected median).
        models: one row per model with the card / config facts of `model_config.csv` and `modality`.
        scores: `model`, `dataset`, `metric` (`logme`, `reg_h_score`, ...), `score`.
        datasets: one row per dataset: `dataset`, `size`, `num_classes`, `modality`, `failed`,
            `protocol` (how its accuracies were measured: `full_finetune`, or the folder's `mode`,
            e.g. the zoo's `linear_probe`).
        peft: parameter-efficient (LoRA) runs, one row per (model, dataset, method), kept apart.
        predictions: TransferGraph's published predictions where a folder has them: `dataset`,
            `model`, `score`, `method`, `modality` (repeated (dataset, model) rows: the first kept).
        report: human-readable lines describing every defect found and how it was handled.
        cards: `{dataset: what its dataset card says}` (`task_cards.card_meta`), merged into
            `dataset_meta`; empty unless `with_task_cards` attached cards.
    """

    perf: pd.DataFrame
    models: pd.DataFrame
    scores: pd.DataFrame
    datasets: pd.DataFrame
    peft: pd.DataFrame = field(default_factory=pd.DataFrame)
    report: list[str] = field(default_factory=list)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    cards: dict[str, dict] = field(default_factory=dict)

    @property
    def dataset_names(self) -> list[str]:
        return sorted(self.perf["dataset"].unique())

    def modality_of(self, dataset: str) -> str:
        rows = self.perf[self.perf["dataset"] == dataset]
        if rows.empty:
            raise UserInputError(
                f"no records for dataset {dataset!r}",
                hint=f"choose among: {', '.join(self.dataset_names)}",
            )
        return str(rows["modality"].iloc[0])

    def dataset_meta(self, dataset: str) -> dict:
        """Task metadata of a dataset in the shape of `hf_spider.tasks.Task.metadata`."""
        row = self.datasets[self.datasets["dataset"] == dataset]
        meta: dict = {"name": dataset, "modality": self.modality_of(dataset)}
        if not row.empty:
            r = row.iloc[0]
            if pd.notna(r["num_classes"]):
                meta["num_classes"] = int(r["num_classes"])
            if pd.notna(r["size"]):
                meta["num_examples"] = int(r["size"])
            if isinstance(r.get("data_token"), str):
                meta["data_token"] = json.loads(r["data_token"])
        card = self.cards.get(dataset, {})
        # the records' class count stays (the priors were chosen with it); a card fills it where
        # the records lack one, and adds what the records cannot say
        meta.update({k: v for k, v in card.items() if k != "num_classes" or "num_classes" not in meta})
        return meta

    def protocol_of(self, dataset: str) -> str:
        """How a dataset's accuracies were measured (`full_finetune` where the records do not say)."""
        if "protocol" not in self.datasets:
            return FULL_FINETUNE
        row = self.datasets.loc[self.datasets["dataset"] == dataset, "protocol"]
        return str(row.iloc[0]) if len(row) and isinstance(row.iloc[0], str) else FULL_FINETUNE

    def matrix(self, modality: str, *, include_failed: bool = True) -> pd.DataFrame:
        """Accuracy matrix (models x datasets) of one modality; NaN where no record."""
        p = self.perf[self.perf["modality"] == modality]
        if not include_failed:
            p = p[~p["failed"]]
        return p.pivot_table(index="model", columns="dataset", values="accuracy", aggfunc="mean")

    def usable(self, *, failed_runs: bool = False) -> pd.DataFrame:
        """`perf` rows the ranker learns from: never those of a dataset whose runs failed as a
        whole (at chance); single failed runs only with `failed_runs`."""
        perf = self.perf
        bad = set(self.datasets.loc[self.datasets["failed"], "dataset"]) if len(self.datasets) else set()
        keep = ~perf["dataset"].isin(bad)
        if not failed_runs:
            keep &= ~perf["failed"]
        return perf[keep]

    def with_ground_truth(self, column: str) -> Records:
        """A copy whose `perf.accuracy` is `column` (`"best_eval"`: TransferGraph's protocol); every
        prior, baseline and the ranker then read that ground truth. Failed flags are kept."""
        if column == "accuracy":
            return self
        if column not in self.perf:
            raise UserInputError(f"records have no {column!r} column", hint="use accuracy or best_eval")
        perf = self.perf.copy()
        perf["accuracy"] = perf[column].fillna(perf["accuracy"])
        return Records(
            perf,
            self.models,
            self.scores,
            self.datasets,
            self.peft,
            list(self.report),
            self.predictions,
            self.cards,
        )

    def with_task_cards(self, cards: dict[str, dict]) -> Records:
        """A copy whose `dataset_meta` also carries what each dataset's card says
        (`task_cards.read_task_cards`)."""
        return Records(
            self.perf,
            self.models,
            self.scores,
            self.datasets,
            self.peft,
            list(self.report),
            self.predictions,
            {**self.cards, **cards},
        )

    def score_matrix(self, metric: str, dataset: str) -> pd.Series:
        s = self.scores[(self.scores["metric"] == metric) & (self.scores["dataset"] == dataset)]
        return s.groupby("model")["score"].mean()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(
            f"{path} is empty", hint="write its header row (the shared data schema) or remove the file"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot parse {path}: {exc}", hint="check that the file is a CSV") from exc


def _require(raw: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    """One line naming the first column of the shared schema that `name` lacks."""
    for col in columns:
        if col not in raw:
            raise DatasetError(f"{name} lacks the column {col!r}", hint="use the shared data schema")


ACCURACY_COLUMNS = ("test_accuracy", "eval_accuracy")


def _as_fractions(raw: pd.DataFrame, where: Path, report: list[str]) -> pd.DataFrame:
    """records.csv with a dataset's accuracies in percent (most of its values above 1, none above
    100) read as fractions, and said so; a few values above 1 among fractions stay as they are
    (dropped later as outside [0, 1])."""
    if "finetuned_dataset" not in raw:
        return raw
    out = raw.copy()
    names = raw["finetuned_dataset"].astype(str)
    values = {c: pd.to_numeric(raw[c], errors="coerce") for c in ACCURACY_COLUMNS if c in raw}
    percent: set[str] = set()
    in_range: dict[str, pd.Series] = {}
    for col, numbers in values.items():
        groups = numbers.where(np.isfinite(numbers)).groupby(names)
        share_above = groups.apply(lambda v: (v.dropna() > 1.0).mean() if v.notna().any() else 0.0)
        in_range[col] = groups.apply(lambda v: v.dropna().between(0.0, 100.0).all())
        percent |= set(share_above[(share_above > 0.5) & in_range[col]].index)
    # a dataset's scale is the dataset's, not a column's: where one accuracy column is in percent,
    # so is the other (a failed run at 1% reads as 1.0, which alone looks like a fraction)
    for col, numbers in values.items():
        datasets = sorted(d for d in percent if in_range[col].get(d, False))
        if datasets:
            rows = names.isin(datasets)
            out[col] = numbers.where(~rows, numbers / 100.0).where(rows, raw[col])
            report.append(
                f"{where / 'records.csv'}: {col} of {len(datasets)} dataset(s) read as percentages and "
                f"divided by 100 ({', '.join(datasets[:5])}{', ...' if len(datasets) > 5 else ''})"
            )
    return out


def _infer_modality(directory: Path, frames: dict[str, pd.DataFrame]) -> str:
    """image / text from the architectures of model_config, else the columns, else the folder name."""
    cfg = frames.get("model_config.csv")
    if cfg is not None and "architectures" in cfg:
        arch = cfg["architectures"].astype(str)
        image = arch.str.contains("ImageClassification|Vision|ViT|Conv", case=False).sum()
        text = arch.str.contains("SequenceClassification|ForMaskedLM|Bert|Roberta", case=False).sum()
        if image or text:
            return "image" if image >= text else "text"
    rec = frames.get("records.csv")
    if rec is not None:
        if "test_accuracy" in rec or "input_shape" in rec:
            return "image"
        if "peft_method" in rec or "task_type" in rec:
            return "text"
    scores = frames.get("transferability_scores.csv")
    if scores is not None and "task_type" in scores:
        kinds = scores["task_type"].astype(str)
        if kinds.str.contains("IMAGE").any():
            return "image"
        if kinds.str.contains("SEQUENCE|TEXT").any():
            return "text"
    name = str(directory).lower()
    for modality in ("image", "text"):
        if modality in name:
            return modality
    raise DatasetError(
        f"cannot tell whether {directory} holds image or text records",
        hint="add a model_config.csv with an `architectures` column, or name the folder image/ or text/",
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and not f.empty]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True, sort=False)
    return out.drop_duplicates().reset_index(drop=True)


def _clean_records(raw: pd.DataFrame, report: list[str]) -> pd.DataFrame:
    """One row per run: model, dataset, accuracy, eval_accuracy, modality, method."""
    if raw.empty:
        return pd.DataFrame(columns=["model", "dataset", "accuracy", "eval_accuracy", "modality", "method"])
    for col in ("model", "finetuned_dataset"):
        if col not in raw:
            raise DatasetError(f"records.csv lacks the column {col!r}", hint="use the shared data schema")
    df = raw.copy()
    df["finetuned_dataset"] = df["finetuned_dataset"].fillna("").astype(str).str.strip()
    df["model"] = df["model"].where(df["model"].isna(), df["model"].astype(str).str.strip())
    acc = pd.to_numeric(df.get("test_accuracy"), errors="coerce") if "test_accuracy" in df else None
    ev = pd.to_numeric(df.get("eval_accuracy"), errors="coerce") if "eval_accuracy" in df else None
    if acc is None and ev is None:
        raise DatasetError("records.csv has no accuracy column", hint="add eval_accuracy or test_accuracy")
    # test accuracy where it exists (image records), else the evaluation accuracy.
    df["accuracy"] = (
        acc.fillna(ev) if acc is not None and ev is not None else (acc if acc is not None else ev)
    )
    # the evaluation accuracy where the records have it (TransferGraph's protocol reads it)
    df["eval_accuracy"] = ev.fillna(df["accuracy"]) if ev is not None else df["accuracy"]
    shifted = df["finetuned_dataset"].str.lower().isin(_SHIFTED_TARGETS) | df["model"].isna()
    bad_number = ~shifted & df["accuracy"].isna()
    if shifted.any():
        report.append(
            f"dropped {int(shifted.sum())} shifted record rows (finetuned_dataset in "
            f"{sorted(set(df.loc[shifted, 'finetuned_dataset']))})"
        )
    if bad_number.any():
        report.append(f"dropped {int(bad_number.sum())} record rows without an accuracy")
    df = df[~shifted & ~bad_number].copy()
    out_of_range = ~df["accuracy"].between(0.0, 1.0)
    if out_of_range.any():
        report.append(f"dropped {int(out_of_range.sum())} record rows with accuracy outside [0, 1]")
        df = df[~out_of_range]
    peft = (
        df["peft_method"].fillna("").astype(str).str.strip().str.lower()
        if "peft_method" in df
        else pd.Series("", index=df.index)
    )
    # a run with LoRA settings is a LoRA run, whether or not a peft_method column says so
    lora = [c for c in df.columns if str(c).lower().startswith("lora_")]
    named = ~peft.isin(["nan", "none", ""])
    unnamed_lora = ~named & df[lora].notna().any(axis=1) if lora else pd.Series(False, index=df.index)
    if unnamed_lora.any():
        report.append(
            f"{int(unnamed_lora.sum())} record rows have LoRA settings ({', '.join(lora)}) and no "
            "peft_method: read as LoRA runs"
        )
    peft = peft.where(~unnamed_lora, "lora")
    df["method"] = np.where(peft.isin(["nan", "none", ""]), "full", peft)
    df = df.rename(columns={"finetuned_dataset": "dataset"})
    return df[["model", "dataset", "accuracy", "eval_accuracy", "modality", "method"]].reset_index(drop=True)


def _collapse_runs(runs: pd.DataFrame, report: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (model, dataset) of full fine-tunes (mean of repeats, and the best evaluation
    accuracy of the repeats), and the LoRA runs apart."""
    cols = ["model", "dataset", "modality", "method"]
    if runs.empty:
        empty = pd.DataFrame(columns=[*cols, "accuracy", "best_eval", "n_runs"])
        return empty, empty.copy()
    full = runs[runs["method"] == "full"]
    other = runs[runs["method"] != "full"]
    if len(other):
        report.append(
            f"set apart {len(other)} parameter-efficient ({', '.join(sorted(other['method'].unique()))}) runs: "
            "the ground truth is the full fine-tune"
        )
        only_peft = sorted(set(other["dataset"]) - set(full["dataset"]))
        if only_peft:
            report.append(
                f"left out {len(only_peft)} dataset(s) with parameter-efficient runs only, no full "
                f"fine-tune to rank by: {', '.join(only_peft[:5])}{', ...' if len(only_peft) > 5 else ''}"
            )
    perf = full.groupby(cols, as_index=False).agg(
        accuracy=("accuracy", "mean"),
        best_eval=("eval_accuracy", "max"),
        n_runs=("accuracy", "size"),
        spread=("accuracy", np.ptp),
    )
    dup = perf[perf["n_runs"] > 1]
    if len(dup):
        report.append(
            f"averaged repeated full fine-tunes of {len(dup)} (model, dataset) pairs (mean; median spread "
            f"{dup['spread'].median():.3f}, max {dup['spread'].max():.3f})"
        )
    peft = other.groupby(cols, as_index=False).agg(accuracy=("accuracy", "mean"), n_runs=("accuracy", "size"))
    return perf.drop(columns="spread"), peft


def _flag_failed(perf: pd.DataFrame, datasets: pd.DataFrame, report: list[str]) -> pd.DataFrame:
    """Flag runs far below their dataset's chance-corrected median, and datasets at chance."""
    perf = perf.copy()
    perf["failed"] = False
    classes = dict(zip(datasets["dataset"], datasets["num_classes"], strict=True)) if len(datasets) else {}
    failed_datasets = []
    for dataset, rows in perf.groupby("dataset"):
        k = classes.get(dataset)
        if k is not None and pd.notna(k) and k >= 2:
            chance = 1.0 / float(k)
        else:  # unknown class count: raw accuracy (taking the lowest run as chance would flag
            chance = 0.0  # that run always, and a whole dataset whose runs are close together)
        corrected = (rows["accuracy"] - chance) / max(1.0 - chance, 1e-6)
        median = float(corrected.median())
        if median < FAILED_TARGET_MEDIAN:
            perf.loc[rows.index, "failed"] = True
            failed_datasets.append(dataset)
            report.append(
                f"dataset {dataset!r}: median run at chance (median accuracy {rows['accuracy'].median():.3f}, "
                f"chance {chance:.3f}); all {len(rows)} runs flagged failed, dataset left out of training"
            )
            continue
        bad = corrected < FAILED_RUN_FRACTION * median
        if bad.any():
            perf.loc[rows.index[bad.to_numpy()], "failed"] = True
            report.append(
                f"dataset {dataset!r}: {int(bad.sum())} runs flagged failed (below "
                f"{FAILED_RUN_FRACTION:.0%} of the chance-corrected median; lowest accuracy "
                f"{rows['accuracy'].min():.3f}, median {rows['accuracy'].median():.3f})"
            )
    perf.attrs["failed_datasets"] = failed_datasets
    return perf


def _clean_datasets(raw: pd.DataFrame, modality: str) -> pd.DataFrame:
    cols = ["dataset", "size", "num_classes", "modality"]
    if raw.empty:
        return pd.DataFrame(columns=cols)
    name_col = next((c for c in DATASET_NAME_COLUMNS if c in raw), None)
    if name_col is None:
        raise DatasetError(
            "target_datasets.csv has no dataset name column", hint="use the shared data schema"
        )
    out = pd.DataFrame(
        {
            "dataset": raw[name_col].astype(str).str.strip(),
            "size": pd.to_numeric(raw.get("size"), errors="coerce"),
            "num_classes": pd.to_numeric(raw.get("number_of_classes"), errors="coerce"),
            "modality": modality,
        }
    )
    if "data_token" in raw:  # the probe data token of a sampled task (`hf_spider.zoo.subtasks`), JSON
        out["data_token"] = raw["data_token"]
    return out


def _clean_scores(raw: pd.DataFrame, modality: str) -> pd.DataFrame:
    cols = ["model", "dataset", "metric", "score", "modality"]
    if raw.empty:
        return pd.DataFrame(columns=cols)
    _require(raw, "transferability_scores.csv", ("model", "target_dataset", "metric", "score"))
    metric = raw["metric"].astype(str).str.split(".").str[-1].str.lower()
    out = pd.DataFrame(
        {
            "model": raw["model"].astype(str).str.strip(),
            "dataset": raw["target_dataset"].astype(str).str.strip(),
            "metric": metric.map(lambda m: _METRIC_NAMES.get(m, m)),
            "score": pd.to_numeric(raw["score"], errors="coerce"),
            "modality": modality,
        }
    )
    return out[np.isfinite(out["score"])]


def _clean_models(raw: pd.DataFrame, modality: str) -> pd.DataFrame:
    if raw.empty:
        return pd.DataFrame(columns=["model", "modality"])
    _require(raw, "model_config.csv", ("model",))
    out = raw.copy()
    out["model"] = out["model"].astype(str).str.strip()
    out["modality"] = modality
    if "number_of_labels" in out and "#labels" not in out:
        out["#labels"] = out["number_of_labels"]
    return out


# target-name columns of each file, renamed together when a dataset is set apart by protocol
_DATASET_COLUMNS = {
    "records.csv": ("finetuned_dataset",),
    "transferability_scores.csv": ("target_dataset",),
    "target_datasets.csv": DATASET_NAME_COLUMNS,
}


def _protocol_of(records: pd.DataFrame | None) -> str:
    """How a folder's accuracies were measured: its `mode` column (the zoo's `linear_probe`), else
    full fine-tuning (the shared records)."""
    if records is None or "mode" not in records:
        return FULL_FINETUNE
    modes = records["mode"].dropna().astype(str).str.strip()
    modes = modes[modes != ""]
    return str(modes.mode().iloc[0]) if len(modes) else FULL_FINETUNE


def _separate_protocols(folders: list, report: list[str]) -> None:
    """A dataset measured under two protocols (e.g. rotten_tomatoes fine-tuned in the shared records
    and linear-probed in the zoo's) becomes two datasets: the non-fine-tune one is renamed
    `NAME@PROTOCOL` in every file of its folder, so accuracies of different protocols are never
    ranked against each other."""
    seen: dict[tuple[str, str], set[str]] = {}
    for _, modality, frames, protocol in folders:
        rec = frames.get("records.csv")
        if rec is not None and "finetuned_dataset" in rec:
            for t in rec["finetuned_dataset"].dropna().astype(str).str.strip().unique():
                seen.setdefault((modality, t), set()).add(protocol)
    clashes = {key for key, protocols in seen.items() if len(protocols) > 1}
    for directory, modality, frames, protocol in folders:
        if protocol == FULL_FINETUNE:
            continue
        names = {t for m, t in clashes if m == modality}
        renamed = set()
        for file, frame in frames.items():
            for col in _DATASET_COLUMNS.get(file, ()):
                if col in frame:
                    values = frame[col].astype(str).str.strip()
                    hit = values.isin(names)
                    renamed |= set(values[hit])
                    frame[col] = values.where(~hit, values + "@" + protocol)
                    break
        if renamed:
            report.append(
                f"{directory.name}: dataset(s) {sorted(renamed)} also have {FULL_FINETUNE} records in another "
                f"folder; this folder's ({protocol}) are kept apart as {sorted(t + '@' + protocol for t in renamed)}"
            )


def load_records(dirs: list[str | Path] | str | Path) -> Records:
    """Load and clean records folders of the shared schema.

    Args:
        dirs: one or more folders, each with any of `records.csv`, `model_config.csv`,
            `transferability_scores.csv`, `target_datasets.csv`.

    Returns:
        A `Records` whose `report` lists the defects found and what was done with them.

    Example:
        >>> recs = load_records(["../shared/data/transfergraph/image"])
        >>> recs.matrix("image").shape
    """
    if isinstance(dirs, str | Path):
        dirs = [dirs]
    if not dirs:
        raise UserInputError("no records folder given", hint="pass --data DIR [DIR ...]")
    per_file: dict[str, list[pd.DataFrame]] = {name: [] for name in FILES}
    report: list[str] = []
    folders: list[tuple[Path, str, dict[str, pd.DataFrame], str]] = []
    predictions: list[tuple[Path, pd.DataFrame]] = []
    for d in dirs:
        directory = Path(d).expanduser()
        if not directory.is_dir():
            what = "is a file, not a records folder" if directory.is_file() else "not found"
            raise UserInputError(
                f"records folder {what}: {directory}", hint="pass the folder that holds records.csv"
            )
        frames = {name: _read_csv(directory / name) for name in FILES if (directory / name).is_file()}
        if "records.csv" in frames:
            frames["records.csv"] = _as_fractions(frames["records.csv"], directory, report)
        if (directory / PREDICTIONS_FILE).is_file():
            predictions.append((directory, _read_csv(directory / PREDICTIONS_FILE)))
        if not frames:
            raise DatasetError(
                f"{directory} holds none of {', '.join(FILES)}", hint="point --data at a records folder"
            )
        modality = _infer_modality(directory, frames)
        folders.append((directory, modality, frames, _protocol_of(frames.get("records.csv"))))
    _separate_protocols(folders, report)
    for directory, modality, frames, _ in folders:
        for name, frame in frames.items():
            per_file[name].append(frame.assign(modality=modality))
        logger.info("records folder %s: %s (%s)", directory, modality, ", ".join(sorted(frames)))

    raw_records = _concat(per_file["records.csv"])
    runs = _clean_records(raw_records, report)
    perf, peft = _collapse_runs(runs, report)
    models = _concat(
        [_clean_models(f, f["modality"].iloc[0]) for f in per_file["model_config.csv"] if len(f)]
    )
    if len(models):
        dup = models.duplicated(["model", "modality"])
        if dup.any():
            report.append(
                f"model_config: {int(dup.sum())} repeated model ids with differing facts; first kept"
            )
            models = models[~dup].reset_index(drop=True)
    datasets = _concat(
        [_clean_datasets(f, f["modality"].iloc[0]) for f in per_file["target_datasets.csv"] if len(f)]
    )
    if len(datasets):
        datasets = datasets.drop_duplicates(["dataset", "modality"]).reset_index(drop=True)
    else:
        datasets = _clean_datasets(pd.DataFrame(), "")
    scores = _concat(
        [_clean_scores(f, f["modality"].iloc[0]) for f in per_file["transferability_scores.csv"] if len(f)]
    )
    if len(scores):
        scores["dataset"] = _recorded_names(
            scores["dataset"], set(perf["dataset"]), report, "transferability_scores.csv"
        )
        dup = scores.duplicated(["model", "dataset", "metric"])
        if dup.any():
            report.append(
                f"transferability scores: {int(dup.sum())} repeated (model, dataset, metric); mean taken"
            )
            scores = scores.groupby(["model", "dataset", "metric", "modality"], as_index=False)[
                "score"
            ].mean()
    else:
        scores = _clean_scores(pd.DataFrame(), "")

    perf = _flag_failed(perf, datasets, report)
    # Datasets of the records with their metadata (NaN where target_datasets.csv lacks them).
    seen = perf.groupby("dataset")["modality"].first().reset_index()
    datasets = seen.merge(datasets.drop(columns="modality"), on="dataset", how="left")
    missing_meta = datasets[datasets["num_classes"].isna()]["dataset"].tolist()
    if missing_meta:
        report.append(f"datasets without size / class count in target_datasets.csv: {missing_meta}")
    datasets["failed"] = datasets["dataset"].isin(perf.attrs.get("failed_datasets", []))
    protocols = {
        str(t).strip(): protocol
        for _, _, frames, protocol in folders
        if "finetuned_dataset" in frames.get("records.csv", pd.DataFrame())
        for t in frames["records.csv"]["finetuned_dataset"].dropna()
    }
    datasets["protocol"] = datasets["dataset"].map(protocols).fillna(FULL_FINETUNE)

    if len(models):
        known = set(models["model"])
        unjoined = sorted(set(perf["model"]) - known)
        if unjoined:
            report.append(f"{len(unjoined)} record model ids not in model_config.csv: {unjoined[:10]}")
        unjoined_scores = sorted(set(scores["model"]) - known) if len(scores) else []
        if unjoined_scores:
            report.append(
                f"{len(unjoined_scores)} score model ids not in model_config.csv: {unjoined_scores[:10]}"
            )
        no_records = sorted(known - set(perf["model"]))
        if no_records:
            report.append(f"{len(no_records)} models of model_config.csv have no record")
    if len(scores):
        unjoined = set(zip(scores["model"], scores["dataset"], strict=True)) - set(
            zip(perf["model"], perf["dataset"], strict=True)
        )
        if unjoined:
            report.append(
                f"{len(unjoined)} (model, dataset) transferability scores have no fine-tuning record"
            )
    modality_of = {d: m for d, m, _, _ in folders}
    pred = _clean_predictions([(f, modality_of[d]) for d, f in predictions], report, set(perf["dataset"]))
    for line in report:
        logger.info("records: %s", line)
    return Records(
        perf=perf.reset_index(drop=True),
        models=models,
        scores=scores,
        datasets=datasets,
        peft=peft,
        report=report,
        predictions=pred,
    )


def _spelling(name: str) -> str:
    """A dataset name as `_clean_predictions` compares it: case and `__` for `/` (the task-card
    folders' spelling) do not matter."""
    return name.strip().lower().replace("__", "/")


def _recorded_names(names: pd.Series, recorded: set[str], report: list[str], file: str) -> pd.Series:
    """Dataset names of another file as records.csv spells them (`_spelling`); the ones renamed and
    the ones without records are reported."""
    by_spelling = {_spelling(d): d for d in sorted(recorded)}
    out = names.map(lambda d: d if d in recorded else by_spelling.get(_spelling(d), d))
    renamed = sorted(set(names[out != names]))
    if renamed:
        report.append(
            f"{file}: {len(renamed)} dataset name(s) spelled otherwise than in records.csv, matched: {renamed[:5]}"
        )
    unknown = sorted(set(out) - recorded)
    if unknown:
        report.append(f"{file}: {len(unknown)} dataset(s) without records, left out: {unknown[:5]}")
    return out


def _clean_predictions(
    frames: list[tuple[pd.DataFrame, str]], report: list[str], recorded: set[str] | None = None
) -> pd.DataFrame:
    """TransferGraph's predictions: `dataset, model, score, method, modality`; a (dataset, model)
    listed twice keeps its first row (as the published figures are computed). A dataset spelled
    otherwise than in the records (`_spelling`) takes the records' name; one the records do not
    have, and scores that are not numbers, are reported."""
    cols = ["dataset", "model", "score", "method", "modality"]
    rows = []
    for raw, modality in frames:
        if not {"target_dataset", "model", "score"} <= set(raw.columns):
            raise DatasetError(
                f"{PREDICTIONS_FILE} lacks target_dataset / model / score columns",
                hint="use the shared data schema",
            )
        rows.append(
            pd.DataFrame(
                {
                    "dataset": raw["target_dataset"].astype(str).str.strip(),
                    "model": raw["model"].astype(str).str.strip(),
                    "score": pd.to_numeric(raw["score"], errors="coerce"),
                    "method": raw["method"].astype(str) if "method" in raw else "",
                    "modality": modality,
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True)
    if recorded is not None:
        out["dataset"] = _recorded_names(out["dataset"], recorded, report, PREDICTIONS_FILE)
    bad = ~np.isfinite(out["score"])
    if bad.any():  # still in the protocol's model set; the `transfergraph` row fills them as it fills a gap
        report.append(f"{PREDICTIONS_FILE}: {int(bad.sum())} predictions without a numeric score")
    dup = out.duplicated(["dataset", "model"])
    if dup.any():
        report.append(
            f"{PREDICTIONS_FILE}: {int(dup.sum())} repeated (dataset, model) predictions; the first kept"
        )
    return out[~dup].reset_index(drop=True)
