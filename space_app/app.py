"""hf-spider's Gradio Space: run a recommendation, or browse a published recommendations dataset.

Runs locally with `python space_app/app.py`, or on the Hub after `hf-spider publish --space REPO`.
The endpoint comes from the environment (`HF_ENDPOINT`). The Space's own token (`HF_TOKEN`) is
used for one thing only: showing the default dataset its owner chose (`space_config.json`,
written by `publish`, or `HF_SPIDER_RECOMMENDATIONS`). Everything a visitor asks for runs with the
visitor's token — their Hub login where the Space has OAuth (`hf_oauth: true`), or a token typed
in the page, used for that request and never stored — or with no token at all. Visitors give Hub
dataset ids only: paths on the Space's disk are refused.
"""

import json
import os
import re
from pathlib import Path

import gradio as gr

HERE = Path(__file__).resolve().parent
TABLE_COLUMNS = [
    "rank",
    "model_id",
    "variant",
    "stage",
    "transfer_score",
    "transfer_source",
    "rank_basis",
    "device_status",
    "latency_p50_ms",
    "peak_memory_mb",
    "file_size_mb",
    "fidelity",
    "meets_constraints",
    "pareto",
    "recommended",
]
STATUSES = ["measured", "estimated", "skipped"]
# One visitor must not hold the Space for the others: the largest sample a run reads, the rows a
# browsed dataset shows (its best ones), and the queue (jobs at once, jobs waiting).
MAX_SAMPLE = 1024
MAX_BROWSE_ROWS = 5000
MAX_BROWSE_BYTES = 50_000_000  # a dataset's files: refused before the download above this
CONCURRENCY = 2
QUEUE_SIZE = 16
# On the Hub, a Space with `hf_oauth: true` gets these; elsewhere there is no Hub login to use.
OAUTH = bool(os.environ.get("OAUTH_CLIENT_ID"))
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?$")
# The CLI flags hf-spider's messages name, and the fields of this page that set the same thing.
_FIELDS = {
    "--sample": "Sample size",
    "--top-k": "Top-k re-ranked",
    "--stages": "Stages",
    "--target": "Device target",
    "--max-latency-ms": "Max latency (ms)",
    "--max-memory-mb": "Max memory (MiB)",
    "--max-size-mb": "Max size (MiB)",
    "--min-fidelity": "Min fidelity",
    "--token": "Your Hugging Face token",
}


def legend() -> str:
    """What the table's columns mean, with their units (the same words as the report's legend)."""
    from hf_spider.recommend._columns import LEGEND

    return "\n".join(f"- `{c}`: {LEGEND[c]}" for c in TABLE_COLUMNS if c in LEGEND)


def default_dataset_repo() -> str:
    config = HERE / "space_config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("recommendations_dataset") or ""
    return os.environ.get("HF_SPIDER_RECOMMENDATIONS", "")


def visitor_token(typed: str | None, oauth_token=None) -> str | bool:
    """The visitor's own token: typed in the page, else their Hub login. `False` when they gave
    none: huggingface_hub then sends no token, where None would fall back to the Space's."""
    typed = (typed or "").strip()
    if typed:
        return typed
    if oauth_token is not None and getattr(oauth_token, "token", None):
        return oauth_token.token
    return False


def space_message(text: str) -> str:
    """An hf-spider message in this page's words: CLI flags become the fields that set them; a
    hint naming a flag this page does not have is dropped."""
    message, _, hint = text.partition(" — ")
    # a visitor cannot set the Space's environment nor log its machine in: the token advice of a
    # hint is cut from its first mention of those, and says what this page offers instead
    found = [hint.index(m) for m in ("--token", "HF_TOKEN", "hf auth login", "token=") if m in hint]
    if found:
        prefix = hint[: min(found)]
        prefix = prefix[: max(prefix.rfind(";"), prefix.rfind("("), 0)].strip(" ,;(")
        hint = (f"{prefix}; " if prefix else "") + "sign in or paste your token above"
    for flag, label in _FIELDS.items():
        message = re.sub(rf"{flag}(?![\w-])", f"'{label}'", message)
        hint = re.sub(rf"{flag}(?![\w-])", f"'{label}'", hint)
    if hint and not re.search(r"--[a-z]", hint) and "hf-spider " not in hint:
        return f"{message} — {hint}"
    return message


def _error(exc) -> gr.Error:
    return gr.Error(space_message(exc.one_line()))


def filter_table(recs, statuses: list[str], max_latency_ms: float | None, only_fits: bool):
    """The rows of `recs` that pass the filters, as a DataFrame of `TABLE_COLUMNS`, in rank order."""
    df = recs.to_pandas()
    df = df[df["device_status"].isin(statuses or STATUSES)]
    if max_latency_ms is not None and not float(max_latency_ms) > 0:  # NaN, 0, negative: no cap
        max_latency_ms = None
    if max_latency_ms:
        df = df[df["latency_p50_ms"].notna() & (df["latency_p50_ms"] <= float(max_latency_ms))]
    if only_fits:
        df = df[df["meets_constraints"].fillna(False).astype(bool)]
    cols = [c for c in TABLE_COLUMNS if c in df.columns]
    return df[cols].reset_index(drop=True)


def _summary(recs) -> str:
    meta = recs.meta
    nothing_fits = (meta.get("pick") or {}).get("nothing_fits")
    if nothing_fits:
        return f"**Nothing meets the constraints:** {space_message(nothing_fits)}"
    best = recs.best
    if best is None:
        return "No rows."
    variant = f" ({_code(best['variant'])})" if best.get("variant") else ""
    reason = (meta.get("pick") or {}).get("reason") or ""
    target = meta.get("target") or {}
    where = (
        f"on {_md(target['name'])}"
        if target.get("name") not in (None, "", "none")
        else f"(costs predicted for {_md(target['predicted_for'])}, nothing measured)"
        if target.get("predicted_for")
        else "(no device measured)"
    )
    return (
        f"**Recommended for `{_code(meta.get('dataset'))}` {where}:** "
        f"`{_code(best['model_id'])}`{variant}. {_md(reason)}"
    )


def _code(value) -> str:
    """Text shown in a code span (where Markdown reads no escape): it cannot close the span."""
    return str(value if value is not None else "").replace("`", "'")


def _md(value) -> str:
    """Text from a dataset, shown as text: no link, image or emphasis a dataset could inject."""
    return re.sub(r"([\\`*_\[\]()<>!#|])", r"\\\1", str(value if value is not None else ""))


def _filtered_recs(recs, table):
    """A Recommendations restricted to the rows shown, so the plot matches the table."""
    from hf_spider.recommend import Recommendations

    keep = {(m, v) for m, v in zip(table["model_id"], table["variant"], strict=True)}
    rows = [r for r in recs.rows if (r["model_id"], r["variant"]) in keep]
    return Recommendations(rows=rows, meta=recs.meta)


def show(recs, statuses: list[str], max_latency_ms: float | None, only_fits: bool):
    """Summary, filtered table and plot of loaded recommendations (no Hub request)."""
    if recs is None:
        return "Enter a recommendations dataset and press Load.", None, None
    table = filter_table(recs, statuses, max_latency_ms, only_fits)
    return _summary(recs), table, _filtered_recs(recs, table).plot()


def _load(repo_id: str, token):
    from hf_spider.errors import HfSpiderError
    from hf_spider.recommend import Recommendations

    repo_id = (repo_id or "").strip()
    if not _HUB_ID.match(repo_id):
        raise gr.Error("Enter a recommendations dataset id (namespace/name).")
    try:
        recs = Recommendations.from_hub(repo_id, token=token, max_bytes=MAX_BROWSE_BYTES)
    except HfSpiderError as exc:
        raise _error(exc) from exc
    except Exception as exc:  # a dataset this Space cannot read: said, without its internals
        raise _unexpected(exc, f"reading {repo_id}") from None
    if len(recs) > MAX_BROWSE_ROWS:
        notes = [
            *recs.meta.get("notes", []),
            f"this Space shows the first {MAX_BROWSE_ROWS} of {len(recs)} rows",
        ]
        recs = Recommendations(rows=recs.rows[:MAX_BROWSE_ROWS], meta={**recs.meta, "notes": notes})
    return recs


def _unexpected(exc: BaseException, what: str) -> gr.Error:
    """An error hf-spider did not anticipate: logged in full on the Space, one line to the visitor
    (its type only: a message may carry the Space's paths)."""
    import logging

    logging.getLogger("hf_spider.space").exception("%s failed", what)
    return gr.Error(f"{what} failed ({type(exc).__name__}); check the input, or try again later.")


def browse(
    repo_id: str, statuses: list[str], max_latency_ms: float | None, only_fits: bool, token: str | None = None
):
    """Load a published recommendations dataset (with the visitor's token) and show it filtered."""
    recs = _load(repo_id, visitor_token(token))
    return (*show(recs, statuses, max_latency_ms, only_fits), recs)


def browse_logged_in(
    repo_id: str,
    statuses: list[str],
    max_latency_ms: float | None,
    only_fits: bool,
    token: str | None = None,
    oauth_token: gr.OAuthToken | None = None,
):
    """`browse` on a Space with Hub login: the visitor's login token when they typed none."""
    return browse(repo_id, statuses, max_latency_ms, only_fits, visitor_token(token, oauth_token) or None)


def _hub_dataset_id(text: str, token) -> str:
    """A visitor's dataset: a Hub id, never a path on this machine (nor a hint of which exist)."""
    from hf_spider.errors import HfSpiderError
    from hf_spider.tasks._sources import _resolve_hub

    text = (text or "").strip()
    if not text:
        raise gr.Error("Enter a Hub dataset id (namespace/name).")
    if len(text) > 96 or not _HUB_ID.match(text) or ".." in text or text.endswith((".", "-")):
        raise gr.Error(
            "Enter a Hub dataset id (namespace/name): this Space does not read files from its disk."
        )
    if Path(text).expanduser().exists():
        # hf-spider would read the local path: ask the Hub instead, so the answer is the one a
        # name that does not exist here gets
        try:
            _resolve_hub(text, config=None, token=token, endpoint=None, revision=None)
        except HfSpiderError as exc:
            raise _error(exc) from None
        raise gr.Error(f"This Space cannot run {text!r}: use the dataset's full id (namespace/name).")
    return text


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
    token: str | None = None,
    progress=gr.Progress(),
):
    """Run `hf_spider.recommend` for a Hub dataset id, a device target and constraints, with the
    visitor's token."""
    import hf_spider
    from hf_spider.errors import ConstraintError, HfSpiderError

    dataset = _hub_dataset_id(dataset, visitor_token(token))
    if sample is None or sample == "":
        sample = 256
    try:
        sample = int(sample)
    except (TypeError, ValueError):
        raise gr.Error("'Sample size' must be a whole number.") from None
    if not 2 <= sample <= MAX_SAMPLE:
        raise gr.Error(f"'Sample size' must be between 2 and {MAX_SAMPLE} on this Space.")
    if target not in _targets():
        raise gr.Error(f"Pick a device target among: {', '.join(_targets())}.")
    constraints = {
        "max_latency_ms": max_latency_ms or None,
        "max_memory_mb": max_memory_mb or None,
        "max_size_mb": max_size_mb or None,
        "min_fidelity": min_fidelity or None,
    }

    def advance(stage: str, done: int, total: int, note: str = "") -> None:
        progress(min(done / max(total, 1), 1.0), desc=f"{stage}: {note}" if note else stage)

    try:
        recs = hf_spider.recommend(
            dataset,
            target=target,
            constraints={k: v for k, v in constraints.items() if v is not None} or None,
            top_k=int(top_k),
            stages=tuple(stages or ("rank",)),
            sample=sample,
            token=visitor_token(token),
            progress=advance,
        )
    except ConstraintError as exc:
        recs = getattr(exc, "recommendations", None)
        if recs is None:
            raise _error(exc) from exc
    except HfSpiderError as exc:
        raise _error(exc) from exc
    except Exception as exc:
        raise _unexpected(exc, f"the run on {dataset}") from None
    from hf_spider.recommend._hub import public_text

    table = filter_table(recs, STATUSES, None, False)
    # the report as a published dataset shows it: no path of this machine, the page's field names
    return _summary(recs), table, recs.plot(), space_message(public_text(recs.report()))


def run_logged_in(
    dataset: str,
    target: str,
    top_k: int,
    stages: list[str],
    sample: int,
    max_latency_ms: float | None,
    max_memory_mb: float | None,
    max_size_mb: float | None,
    min_fidelity: float | None,
    token: str | None = None,
    oauth_token: gr.OAuthToken | None = None,
    progress=gr.Progress(),
):
    """`run` on a Space with Hub login: the visitor's login token when they typed none."""
    return run(
        dataset,
        target,
        top_k,
        stages,
        sample,
        max_latency_ms,
        max_memory_mb,
        max_size_mb,
        min_fidelity,
        visitor_token(token, oauth_token) or None,
        progress,
    )


def _targets() -> list[str]:
    """This machine, or a documented device profile (estimated); never a host a visitor names."""
    from hf_spider.hardware.profiles import profile_names

    return ["local", *profile_names()]


def _initial(repo_id: str):
    """The owner's default dataset, read with the Space's own token and rendered into the page."""
    if not repo_id:
        return None, "Enter a recommendations dataset and press Load."
    try:
        return _load(repo_id, None), None
    except gr.Error as exc:
        return None, f"Could not load `{repo_id}`: {exc.message}"


def build_app(default_repo: str | None = None) -> gr.Blocks:
    default_repo = default_dataset_repo() if default_repo is None else default_repo
    first, problem = _initial(default_repo)
    first_summary, first_table, first_plot = show(first, STATUSES, None, False)
    with gr.Blocks(title="hf-spider") as demo:
        gr.Markdown(
            "# hf-spider\nWhich pre-trained Hub model should I start from, for my dataset, on my hardware?"
        )
        with gr.Row():
            if OAUTH:
                gr.LoginButton()
            token = gr.Textbox(
                label="Your Hugging Face token (optional, for private datasets)",
                type="password",
                placeholder="hf_... — used for your requests only, never stored",
                scale=3,
            )
        loaded = gr.State(first)
        with gr.Tab("Browse recommendations"):
            with gr.Row():
                repo = gr.Textbox(label="Recommendations dataset", value=default_repo, scale=3)
                load = gr.Button("Load", variant="primary", scale=1)
            with gr.Row():
                statuses = gr.CheckboxGroup(STATUSES, value=STATUSES, label="Device figures")
                max_latency = gr.Number(label="Max latency p50 (ms)", value=None)
                only_fits = gr.Checkbox(label="Only variants that meet the constraints", value=False)
            summary = gr.Markdown(problem or first_summary)
            table = gr.Dataframe(first_table, label="Ranked recommendations", interactive=False, wrap=True)
            gr.Markdown(legend())
            plot = gr.Plot(first_plot, label="Transfer score vs latency (Pareto front)")
            filters = [statuses, max_latency, only_fits]
            outputs = [summary, table, plot]
            load.click(
                browse_logged_in if OAUTH else browse,
                [repo, *filters, token],
                [*outputs, loaded],
                api_name="browse",
            )
            for control in filters:  # filtering the loaded rows needs no Hub request
                control.change(show, [loaded, *filters], outputs, api_visibility="private")
        with gr.Tab("Run a recommendation"):
            with gr.Row():
                dataset = gr.Textbox(label="Hub dataset id (namespace/name)", value="", scale=3)
                target = gr.Dropdown(_targets(), value="local", label="Device target", scale=1)
            with gr.Row():
                top_k = gr.Slider(1, 20, value=5, step=1, label="Top-k re-ranked")
                stages = gr.CheckboxGroup(["rank", "probe", "bench"], value=["rank", "probe"], label="Stages")
                sample = gr.Number(label="Sample size", value=256, precision=0)
            with gr.Row():
                c_lat = gr.Number(label="Max latency (ms)", value=None)
                c_mem = gr.Number(label="Max memory (MiB)", value=None)
                c_size = gr.Number(label="Max size (MiB)", value=None)
                c_fid = gr.Number(label="Min fidelity (0..1)", value=None)
            go = gr.Button("Recommend", variant="primary")
            run_summary = gr.Markdown()
            run_table = gr.Dataframe(label="Ranked recommendations", interactive=False, wrap=True)
            run_plot = gr.Plot(label="Transfer score vs latency")
            run_report = gr.Markdown()
            go.click(
                run_logged_in if OAUTH else run,
                [dataset, target, top_k, stages, sample, c_lat, c_mem, c_size, c_fid, token],
                [run_summary, run_table, run_plot, run_report],
                api_name="run",
            )
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


if __name__ == "__main__":
    import tempfile

    # a visitor's one-word Hub id must never meet a folder of this machine: run from an empty one
    os.chdir(tempfile.mkdtemp(prefix="hf-spider-space-"))
    build_app().launch()
