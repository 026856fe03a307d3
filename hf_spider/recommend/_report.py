"""The markdown report of a `Recommendations`: what was recommended, and how every figure was obtained."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hf_spider.recommend._columns import DEVICE_FIGURES, LEGEND

# (header in the ranked table, column) of the columns the legend explains.
_LEGEND_COLUMNS = (
    ("transfer", "transfer_score"),
    ("source", "transfer_source"),
    ("p50 ms", "latency_p50_ms"),
    ("mem MiB", "peak_memory_mb"),
    ("size MiB", "file_size_mb"),
    ("fidelity", "fidelity"),
)

if TYPE_CHECKING:
    from hf_spider.recommend._results import Recommendations


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def transfer_provenance(row: dict[str, Any], meta: dict[str, Any]) -> str:
    """How the row's transfer score was obtained, in words."""
    source = row.get("transfer_source")
    protocol = meta.get("protocol", {})
    if source == "probe":
        est = ", ".join(protocol.get("estimators") or []) or "estimators"
        n = protocol.get("sample")
        weight = protocol.get("stage2_weight")
        how = (
            "fused with the ranker score"
            if weight is None or 0 < weight < 1
            else "ordered by them"
            if weight >= 1
            else "shown; the order stays stage 1's (stage-2 weight 0)"
        )
        return f"measured: forward pass on a {n}-example sample, {est}, {how}"
    if source == "rank":
        return "estimated (no forward pass): " + _BASIS_WORDS.get(
            row.get("rank_basis"), "the ranker, from the model card, its history and the task token"
        )
    return "skipped"


# How the ranker placed a row (`rank_basis`), in words.
_BASIS_WORDS = {
    "history": "the ranker, from the model's fine-tuning results on other datasets",
    "card": "the ranker, from the model card alone (no fine-tuning record)",
    "card_facts": "the ranker, from the facts on the model card alone: parameter count, and upstream "
    "accuracy where the ranker reads it (no fine-tuning record, and an architecture the ranker has "
    "no record of)",
    "none": "neither a fine-tuning record nor a usable card prior: placed at the median of the others",
}


def _joint_section(recs: Recommendations) -> list[str]:
    """What the joint ranking predicted, dropped, and how the measurements compared."""
    joint = recs.meta.get("joint") or {}
    if joint.get("method", "off") == "off":
        return []
    out = ["## Stage 1 under the budgets (predicted before any measurement)", ""]
    out.append(
        f"Joint ranking `{joint['method']}`, cost model fitted on `{joint.get('cost_model')}`; "
        f"{joint['kept']} candidates kept. {joint.get('rule', '')}."
        + (f" Fused score: {joint['fused_rule']}." if joint.get("fused_rule") else "")
    )
    out.append("")
    dropped = joint.get("dropped") or []
    if dropped:
        out += [f"Dropped for predicted cost ({len(dropped)}):", ""]
        out += [f"- `{d['model_id']}`: {d['reason']}" for d in dropped] + [""]
    checked = [r for r in recs.rows if r.get("predicted_latency_ms") is not None and r.get("latency_p50_ms")]
    if checked:
        rows = [
            [
                f"`{r['model_id']}`",
                r["variant"],
                *(
                    f"{_fmt(r.get('predicted_' + fig))} / {_fmt(r.get(col))} ({_fmt(r.get(err), 2)}%)"
                    for fig, col, err in (
                        ("latency_ms", "latency_p50_ms", "latency_prediction_error_pct"),
                        ("memory_mb", "peak_memory_mb", "memory_prediction_error_pct"),
                        ("size_mb", "file_size_mb", "size_prediction_error_pct"),
                    )
                ),
            ]
            for r in checked
        ]
        out += [
            "Predicted / measured (error = (predicted - measured) / measured):",
            "",
            _table(["model", "variant", "p50 ms", "peak MiB", "file MiB"], rows),
            "",
        ]
    return out


def render_report(recs: Recommendations, *, plot_path: str | None = None, max_rows: int = 30) -> str:
    meta = recs.meta
    task = meta.get("task") or {}
    catalog = meta.get("catalog") or {}
    protocol = meta.get("protocol") or {}
    target = meta.get("target") or {}
    constraints = {k: v for k, v in (meta.get("constraints") or {}).items() if v is not None}
    out: list[str] = [f"# hf-spider recommendations for `{meta.get('dataset', '?')}`", ""]

    best = recs.best
    pick = meta.get("pick") or {}
    if pick.get("nothing_fits"):
        out += [f"**Nothing meets the constraints:** {pick['nothing_fits']}", ""]
    if best is not None:
        variant = f", variant **{best['variant']}**" if best.get("variant") else ""
        out.append(f"**Recommended:** `{best['model_id']}`{variant}.")
        if pick.get("reason"):
            out.append(f"{pick['reason']}")
        out.append("")

    out += ["## Inputs", ""]
    task_items = [
        ("dataset", meta.get("dataset")),
        ("modality", task.get("modality")),
        ("classes", task.get("num_classes")),
        ("examples in the dataset", task.get("num_examples")),
        ("sample used", protocol.get("sample")),
        ("unreadable examples skipped", task.get("skipped_unreadable") or None),
        ("label names", ", ".join(str(x) for x in (task.get("label_names") or [])[:12]) or None),
    ]
    out += [f"- **{k}**: {_fmt(v)}" for k, v in task_items if v is not None]
    if catalog:
        out.append(
            f"- **catalog**: {_fmt(catalog.get('source'))}, {_fmt(catalog.get('num_models'))} models"
            + (f", {catalog['num_candidates']} candidates" if catalog.get("num_candidates") else "")
            + (f", snapshot `{catalog['fingerprint']}`" if catalog.get("fingerprint") else "")
        )
    stages = protocol.get("stages") or []
    out.append(
        f"- **protocol**: stages {', '.join(stages) or '—'}; top-k {protocol.get('top_k')}; "
        f"ranker `{protocol.get('ranker', '—')}`; estimators {', '.join(protocol.get('estimators') or []) or '—'}"
    )
    if target:
        desc = target.get("description") or target.get("name")
        out.append(f"- **target**: {desc}")
    out.append(
        "- **constraints**: "
        + (", ".join(f"{k} = {v}" for k, v in constraints.items()) if constraints else "none")
    )
    timings = meta.get("timings") or {}
    if timings:
        out.append("- **time per stage**: " + ", ".join(f"{k} {float(v):.1f} s" for k, v in timings.items()))
    if meta.get("forward_passes") is not None:
        out.append(f"- **model forward passes over the sample**: {meta['forward_passes']}")
    out.append("")

    if plot_path:
        out += ["## Transfer score vs latency", "", f"![Pareto plot]({plot_path})", ""]

    ranked = recs.rows[:max_rows]
    score_cols = [c for c in recs.columns if c.startswith("score_")]
    out += ["## Ranked table", ""]
    header = [
        "rank",
        "model",
        "variant",
        "stage",
        "transfer",
        "source",
        *[c.removeprefix("score_") for c in score_cols],
        "device",
        "p50 ms",
        "mem MiB",
        "size MiB",
        "fidelity",
        "fits",
        "pareto",
    ]
    out.append(
        _table(
            header,
            [
                [
                    r["rank"],
                    f"`{r['model_id']}`" + (" ★" if r.get("recommended") else ""),
                    r["variant"],
                    r["stage"],
                    r["transfer_score"],
                    r["transfer_source"],
                    *[r[c] for c in score_cols],
                    r["device_status"],
                    r["latency_p50_ms"],
                    r["peak_memory_mb"],
                    r["file_size_mb"],
                    r["fidelity"],
                    r["meets_constraints"],
                    r["pareto"],
                ]
                for r in ranked
            ],
        )
    )
    if len(recs.rows) > max_rows:
        out.append(f"\n{len(recs.rows) - max_rows} more rows in `recommendations.parquet`.")
    out += ["", "Columns:", ""]
    out += [f"- **{name}** (`{col}`): {LEGEND[col]}" for name, col in _LEGEND_COLUMNS]
    out.append("")

    out += ["## How each figure was obtained", ""]
    counts = {
        s: sum(r["device_status"] == s for r in recs.rows) for s in ("measured", "estimated", "skipped")
    }
    out.append(
        f"Device figures: {counts['measured']} rows measured, {counts['estimated']} estimated, "
        f"{counts['skipped']} skipped. Transfer scores: "
        f"{sum(r['transfer_source'] == 'probe' for r in recs.rows)} rows measured by a forward pass, "
        f"{sum(r['transfer_source'] == 'rank' for r in recs.rows)} estimated by the ranker."
    )
    out.append("")
    rows = []
    for r in ranked:
        present = [DEVICE_FIGURES[k] for k in DEVICE_FIGURES if r.get(k) is not None]
        missing = [DEVICE_FIGURES[k] for k in DEVICE_FIGURES if r.get(k) is None]
        status = r["device_status"]
        device = status
        if r.get("device_method") and status != "skipped":
            device += f" ({r['device_method']})"
        if r.get("device_reason"):
            device += f" — {r['device_reason']}"
        if status != "skipped" and present:
            device += "; " + (f"not available: {', '.join(missing)}" if missing else "all figures")
        rows.append(
            [f"`{r['model_id']}`", r["variant"], transfer_provenance(r, meta), device, r.get("violations")]
        )
    out.append(
        _table(["model", "variant", "transfer score", "device figures", "constraint violations"], rows)
    )
    out.append("")

    out += _joint_section(recs)
    notes = meta.get("notes") or []
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if target.get("info"):
        out += [
            "## Device",
            "",
            "```json",
            json.dumps(target["info"], indent=2, default=str),
            "```",
            "",
        ]
    out.append(f"Made with hf-spider {meta.get('hf_spider_version', '')} on {meta.get('created_at', '')}.")
    return "\n".join(out) + "\n"
