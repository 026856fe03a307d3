"""The columns of a recommendations table and what each means: shared by the results object, the
report, the plot and the Space (a module of its own, so none of them imports another for it)."""

from __future__ import annotations

from hf_spider.hardware.record import FIGURES

# The joint ranking's predictions before any measurement (`hf_spider.hardware.joint`), and how
# each measured figure compared with its prediction.
PREDICTED_COLUMNS = (
    "predicted_latency_ms",
    "predicted_memory_mb",
    "predicted_size_mb",
    "fit_probability",
    "latency_prediction_error_pct",
    "memory_prediction_error_pct",
    "size_prediction_error_pct",
)
# Columns every row has, in display order. Estimator scores are added as `score_<name>`.
COLUMNS = (
    "rank",
    "model_id",
    "variant",
    "stage",
    "transfer_score",
    "transfer_source",
    "rank_score",
    "rank_basis",
    "probe_score",
    "target",
    "device_status",
    "device_reason",
    "device_method",
    *[c for name in FIGURES for c in ((name, "fidelity_metric") if name == "fidelity" else (name,))],
    "meets_constraints",
    "violations",
    "pareto",
    "copeland_rank",
    "recommended",
    *PREDICTED_COLUMNS,
)
# Device figures and how the report names them, with their units.
DEVICE_FIGURES = {name: f"{what} ({unit})" for name, (unit, what) in FIGURES.items()}
# What each score column means, with its unit: the legend of the table, report, plot and Space.
LEGEND = {
    "transfer_score": "where the model stands in the final order, as a percentile of the ranked "
    "candidates: 1 = first, 0 = last (fraction; the same meaning in every row)",
    "transfer_source": "the stage that placed the model: probe (checked on the data by a forward "
    "pass, fused with the ranker) or rank (the ranker, no forward pass; `rank_basis` says from what)",
    "rank_score": "the stage-1 ranker's raw score (unitless, higher is better; compare within one run only)",
    "rank_basis": "what the stage-1 score was computed from: history (the model's fine-tuning "
    "results on other datasets), card (its model card alone: no fine-tuning record), card_facts "
    "(the facts on its card alone, parameter count and upstream accuracy where read: an "
    "architecture the ranker has no record of) or none (neither a record nor a usable card prior: placed at the median of the others)",
    "probe_score": "the stage-2 fused score of a probed model: its stage-1 score fused with its "
    "estimators' consensus by the ranker's stage-2 weight (higher is better; comparable among the "
    "probed models of one run only, on no fixed scale)",
    **{name: f"{what}, in {unit}" for name, (unit, what) in FIGURES.items()},
    "predicted_latency_ms": "p50 latency at batch 1 predicted by the cost model before any measurement "
    "(ms; for a row without a variant, its variant most likely to fit)",
    "predicted_memory_mb": "peak resident memory predicted by the cost model (MiB)",
    "predicted_size_mb": "ONNX file size predicted by the cost model (MiB)",
    "fit_probability": "the chance the cost model gives the variant of meeting every device budget (0..1)",
    "latency_prediction_error_pct": "(predicted - measured) / measured p50 latency, in %",
    "memory_prediction_error_pct": "(predicted - measured) / measured peak memory, in %",
    "size_prediction_error_pct": "(predicted - measured) / measured file size, in %",
}
