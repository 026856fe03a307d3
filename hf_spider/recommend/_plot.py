"""The Pareto plot of a `Recommendations`: transfer score vs latency, the front drawn."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hf_spider.recommend._results import Recommendations


def pareto_mask(scores: list[float], latencies: list[float]) -> list[bool]:
    """True where no other point has a higher-or-equal score at a lower-or-equal latency (one strictly)."""
    mask = []
    for i, (s, lat) in enumerate(zip(scores, latencies, strict=True)):
        dominated = any(
            (s2 >= s and l2 <= lat) and (s2 > s or l2 < lat)
            for j, (s2, l2) in enumerate(zip(scores, latencies, strict=True))
            if j != i
        )
        mask.append(not dominated)
    return mask


_MARKERS = {"fp32": "o", "int8-dynamic": "s", "int8-static": "^", "optimized": "D", "fp16": "v"}


def _short(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def pareto_plot(recs: Recommendations, path: str | os.PathLike | None = None, *, ax=None):
    if ax is None:
        # a figure pyplot does not keep: a long-running caller (the Space, a notebook loop) that
        # never closes the figures it is given does not accumulate them
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 5), dpi=110)
        FigureCanvasAgg(fig)  # drawn off-screen, as pyplot's Agg backend did
        ax = fig.subplots()
    else:
        fig = ax.figure
    target = recs.meta.get("target", {})
    target_name = target.get("name") if isinstance(target, dict) else target
    points = [r for r in recs.rows if r["latency_p50_ms"] is not None and r["transfer_score"] is not None]
    if points:
        scores = [r["transfer_score"] for r in points]
        lats = [r["latency_p50_ms"] for r in points]
        # The front of the `pareto` column (score, latency, memory, size, fidelity); rows without
        # that column (read from elsewhere) get the 2-D front of what is drawn.
        if any(r.get("pareto") is not None for r in points):
            front = [bool(r.get("pareto")) for r in points]
            front_label = "Pareto front (score, latency, memory, size, fidelity)"
        else:
            front = pareto_mask(scores, lats)
            front_label = "Pareto front (score, latency)"
        # marker = variant, fill = how the figures were obtained (filled measured, hollow estimated)
        for variant in dict.fromkeys(r["variant"] for r in points):
            for status, filled in (("measured", True), ("estimated", False)):
                sel = [r for r in points if r["variant"] == variant and r["device_status"] == status]
                if not sel:
                    continue
                ax.scatter(
                    [r["latency_p50_ms"] for r in sel],
                    [r["transfer_score"] for r in sel],
                    s=46,
                    marker=_MARKERS.get(variant, "o"),
                    facecolors="tab:blue" if filled else "none",
                    edgecolors="tab:blue",
                    label=f"{variant}, {status} ({len(sel)})",
                    zorder=3,
                )
        # rings: the front of the `pareto` column; the dashed line: the front on these two axes
        # (a 5-D front joined in latency order zigzags, and hides which point wins on the plot)
        rings = [(lat, s) for lat, s, f in zip(lats, scores, front, strict=True) if f]
        if rings:
            ax.scatter(
                [lat for lat, _ in rings],
                [s for _, s in rings],
                s=150,
                facecolors="none",
                edgecolors="tab:orange",
                linewidths=1.5,
                zorder=2,
                label=front_label,
            )
        line = sorted(
            (lat, s) for lat, s, f in zip(lats, scores, pareto_mask(scores, lats), strict=True) if f
        )
        if len(line) > 1:
            ax.plot(
                [lat for lat, _ in line],
                [s for _, s in line],
                color="tab:orange",
                lw=1.2,
                ls="--",
                zorder=2,
                label="best score for its latency (these axes)",
            )
        fastest: dict[str, dict] = {}
        for r in points:  # one label per model, at its fastest variant
            if r["model_id"] not in fastest or r["latency_p50_ms"] < fastest[r["model_id"]]["latency_p50_ms"]:
                fastest[r["model_id"]] = r
        for r in fastest.values():
            ax.annotate(
                _short(r["model_id"]),
                (r["latency_p50_ms"], r["transfer_score"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
                zorder=11,
            )
        best = recs.best
        if best is not None and best.get("latency_p50_ms") is not None:
            ax.scatter(
                [best["latency_p50_ms"]],
                [best["transfer_score"]],
                marker="*",
                s=260,
                color="tab:red",
                edgecolors="white",
                linewidths=0.8,
                zorder=10,  # above every other point
                label="recommended",
            )
        max_lat = (recs.meta.get("constraints") or {}).get("max_latency_ms")
        if max_lat:
            ax.axvline(max_lat, color="grey", ls="--", lw=1, label=f"max latency {max_lat} ms")
        if max(lats) / max(min(lats), 1e-9) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(f"latency p50, batch 1 (ms) on {target_name or 'target'}")
        ax.set_ylabel("transfer score (higher is better)")
        ax.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
        ax.legend(fontsize=7, loc="best")
    else:
        ranking = recs.ranking()[:15]
        names = [_short(r["model_id"]) for r in ranking][::-1]
        ax.barh(names, [r["score"] or 0.0 for r in ranking][::-1], color="tab:blue")
        ax.set_xlabel("transfer: percentile of the final order (no device figures: bench stage not run)")
        ax.tick_params(axis="y", labelsize=7)
    name = (recs.meta.get("task") or {}).get("name") or recs.meta.get("dataset", "")
    ax.set_title(f"hf-spider: {name}", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), bbox_inches="tight")  # nothing cut at the edges
    return fig
