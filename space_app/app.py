"""hf-spider's Gradio Space: run a recommendation, or browse a published recommendations dataset.

Runs locally with `python space_app/app.py`, or on the Hub after `hf-spider publish --space REPO`.
The token and endpoint come from the environment (`HF_TOKEN`, `HF_ENDPOINT`), as everywhere in the
Hugging Face stack. The default dataset shown is read from `space_config.json` (written by
`publish`) or the `HF_SPIDER_RECOMMENDATIONS` variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gradio as gr

HERE = Path(__file__).resolve().parent
TABLE_COLUMNS = [
    "rank",
    "model_id",
    "variant",
    "stage",
    "transfer_score",
    "device_status",
    "latency_ms_p50",
    "memory_mb",
    "size_mb",
    "fidelity",
    "meets_constraints",
    "pareto",
    "recommended",
]
STATUSES = ["measured", "estimated", "skipped"]


def default_dataset_repo() -> str:
    config = HERE / "space_config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("recommendations_dataset") or ""
    return os.environ.get("HF_SPIDER_RECOMMENDATIONS", "")


def filter_table(recs, statuses: list[str], max_latency_ms: float | None, only_fits: bool):
    """The rows of `recs` that pass the filters, as a DataFrame of `TABLE_COLUMNS`, in rank order."""
    df = recs.to_pandas()
    df = df[df["device_status"].isin(statuses or STATUSES)]
    if max_latency_ms:
        df = df[df["latency_ms_p50"].notna() & (df["latency_ms_p50"] <= float(max_latency_ms))]
    if only_fits:
        df = df[df["meets_constraints"].fillna(False).astype(bool)]
    cols = [c for c in TABLE_COLUMNS if c in df.columns]
    return df[cols].reset_index(drop=True)


def _summary(recs) -> str:
    best = recs.best
    meta = recs.meta
    if best is None:
        return "No rows."
    variant = f" ({best['variant']})" if best.get("variant") else ""
    reason = (meta.get("pick") or {}).get("reason") or ""
    target = (meta.get("target") or {}).get("name", "")
    return (
        f"**Recommended for `{meta.get('dataset')}` on {target or 'the target'}:** "
        f"`{best['model_id']}`{variant}. {reason}"
    )


def _filtered_recs(recs, table):
    """A Recommendations restricted to the rows shown, so the plot matches the table."""
    from hf_spider.recommend import Recommendations

    keep = {(m, v) for m, v in zip(table["model_id"], table["variant"], strict=True)}
    rows = [r for r in recs.rows if (r["model_id"], r["variant"]) in keep]
    return Recommendations(rows=rows, meta=recs.meta)


def browse(repo_id: str, statuses: list[str], max_latency_ms: float | None, only_fits: bool):
    """Load a published recommendations dataset and show it filtered: summary, table, Pareto plot."""
    from hf_spider.errors import HfSpiderError
    from hf_spider.recommend import Recommendations

    repo_id = (repo_id or "").strip()
    if not repo_id:
        raise gr.Error("Enter a recommendations dataset id (namespace/name).")
    try:
        recs = Recommendations.from_hub(repo_id)
    except HfSpiderError as exc:
        raise gr.Error(exc.one_line()) from exc
    table = filter_table(recs, statuses, max_latency_ms, only_fits)
    return _summary(recs), table, _filtered_recs(recs, table).plot()


def run(
    dataset: str,
    target: str,
    top_k: int,
    stages: list[str],
    sample: int,
    max_latency_ms: float | None,
    max_memory_mb: float | None,
    max_size_mb: float | None,
    min_fidelity: float | None,
):
    """Run `hf_spider.recommend` for a dataset id, a device target and constraints."""
    import hf_spider
    from hf_spider.errors import HfSpiderError

    dataset = (dataset or "").strip()
    if not dataset:
        raise gr.Error("Enter a dataset id or path.")
    constraints = {
        "max_latency_ms": max_latency_ms or None,
        "max_memory_mb": max_memory_mb or None,
        "max_size_mb": max_size_mb or None,
        "min_fidelity": min_fidelity or None,
    }
    try:
        recs = hf_spider.recommend(
            dataset,
            target=target or "local",
            constraints={k: v for k, v in constraints.items() if v is not None} or None,
            top_k=int(top_k),
            stages=tuple(stages or ("rank",)),
            sample=int(sample),
        )
    except HfSpiderError as exc:
        raise gr.Error(exc.one_line()) from exc
    table = filter_table(recs, STATUSES, None, False)
    return _summary(recs), table, recs.plot(), recs.report()


def _initial_view(repo_id: str):
    """The default dataset, rendered into the page itself so it shows with no round trip."""
    if not repo_id:
        return "Enter a recommendations dataset and press Load.", None, None
    try:
        return browse(repo_id, STATUSES, None, False)
    except gr.Error as exc:
        return f"Could not load `{repo_id}`: {exc.message}", None, None


def build_app(default_repo: str | None = None) -> gr.Blocks:
    default_repo = default_dataset_repo() if default_repo is None else default_repo
    first_summary, first_table, first_plot = _initial_view(default_repo)
    with gr.Blocks(title="hf-spider") as demo:
        gr.Markdown(
            "# hf-spider\nWhich pre-trained Hub model should I start from, for my dataset, on my hardware?"
        )
        with gr.Tab("Browse recommendations"):
            with gr.Row():
                repo = gr.Textbox(label="Recommendations dataset", value=default_repo, scale=3)
                load = gr.Button("Load", variant="primary", scale=1)
            with gr.Row():
                statuses = gr.CheckboxGroup(STATUSES, value=STATUSES, label="Device figures")
                max_latency = gr.Number(label="Max latency p50 (ms)", value=None)
                only_fits = gr.Checkbox(label="Only variants that meet the constraints", value=False)
            summary = gr.Markdown(first_summary)
            table = gr.Dataframe(first_table, label="Ranked recommendations", interactive=False, wrap=True)
            plot = gr.Plot(first_plot, label="Transfer score vs latency (Pareto front)")
            inputs = [repo, statuses, max_latency, only_fits]
            outputs = [summary, table, plot]
            load.click(browse, inputs, outputs, api_name="browse")
            for control in (statuses, only_fits):
                control.change(browse, inputs, outputs, api_name=False)
        with gr.Tab("Run a recommendation"):
            with gr.Row():
                dataset = gr.Textbox(label="Dataset (Hub id or local path)", value="", scale=3)
                target = gr.Textbox(label="Device target", value="local", scale=1)
            with gr.Row():
                top_k = gr.Slider(1, 20, value=5, step=1, label="Top-k re-ranked")
                stages = gr.CheckboxGroup(["rank", "probe", "bench"], value=["rank", "probe"], label="Stages")
                sample = gr.Number(label="Sample size", value=256, precision=0)
            with gr.Row():
                c_lat = gr.Number(label="Max latency (ms)", value=None)
                c_mem = gr.Number(label="Max memory (MB)", value=None)
                c_size = gr.Number(label="Max size (MB)", value=None)
                c_fid = gr.Number(label="Min fidelity", value=None)
            go = gr.Button("Recommend", variant="primary")
            run_summary = gr.Markdown()
            run_table = gr.Dataframe(label="Ranked recommendations", interactive=False, wrap=True)
            run_plot = gr.Plot(label="Transfer score vs latency")
            run_report = gr.Markdown()
            go.click(
                run,
                [dataset, target, top_k, stages, sample, c_lat, c_mem, c_size, c_fid],
                [run_summary, run_table, run_plot, run_report],
                api_name="run",
            )
    return demo


if __name__ == "__main__":
    build_app().launch()
