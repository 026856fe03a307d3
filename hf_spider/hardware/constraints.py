"""Constraints, the Pareto front, the pick, and the Copeland merge of two rankings.

Rows are flat dicts under the one row vocabulary (`hf_spider.hardware.record.DeviceRecord`):
`model_id`, `variant`, `transfer_score` (higher is better, may be None), `latency_p50_ms`,
`peak_memory_mb`, `file_size_mb`, `fidelity`. `apply_constraints` marks a whole results table.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hf_spider.errors import ConstraintError, UserInputError

# (row key, constraint field, is an upper bound, unit, CLI flag)
_CHECKS = (
    ("latency_p50_ms", "max_latency_ms", True, "ms", "--max-latency-ms"),
    ("peak_memory_mb", "max_memory_mb", True, "MiB", "--max-memory-mb"),
    ("file_size_mb", "max_size_mb", True, "MiB", "--max-size-mb"),
    ("fidelity", "min_fidelity", False, "", "--min-fidelity"),
)


@dataclass(frozen=True)
class Constraints:
    """Device budgets a recommended variant must meet. None means no limit."""

    max_latency_ms: float | None = field(default=None, metadata={"help": "p50 latency at batch 1, in ms"})
    max_memory_mb: float | None = field(default=None, metadata={"help": "peak resident memory, in MiB"})
    max_size_mb: float | None = field(default=None, metadata={"help": "ONNX file size, in MiB"})
    min_fidelity: float | None = field(
        default=None, metadata={"help": "agreement with fp32 (top-1 agreement or feature cosine), 0..1"}
    )

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            flag = "--" + f.name.replace("_", "-")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise UserInputError(
                    f"{flag} must be a number, got {value!r}", hint=f"e.g. {flag} 50"
                ) from None
            if math.isnan(number) or math.isinf(number):
                raise UserInputError(f"{flag} must be a finite number, got {value!r}", hint=f"e.g. {flag} 50")
            if number < 0 or (number == 0 and f.name.startswith("max_")):
                raise UserInputError(f"{flag} must be above 0, got {value!r}", hint="give a positive limit")
            if f.name == "min_fidelity" and number > 1:
                raise UserInputError(
                    f"{flag} is a fraction in 0..1, got {value!r}", hint="e.g. --min-fidelity 0.98"
                )
            object.__setattr__(self, f.name, number)

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | None) -> Constraints:
        """From a mapping or a `key=value,key=value` string; keys as fields or flags (`max-latency-ms`)."""
        if spec is None or spec == "":
            return cls()
        if isinstance(spec, str):
            items = {}
            for part in spec.split(","):
                key, sep, value = part.partition("=")
                if not sep:
                    raise UserInputError(
                        f"constraint {part.strip()!r} is not key=value", hint="e.g. max_latency_ms=50"
                    )
                items[key] = value.strip()
            spec = items
        known = {f.name for f in fields(cls)}
        values = {}
        for key, value in spec.items():
            name = str(key).strip().lstrip("-").replace("-", "_")
            if name not in known:
                raise UserInputError(
                    f"unknown constraint {key!r}", hint=f"use one of: {', '.join(sorted(known))}"
                )
            values[name] = value
        return cls(**values)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Constraints:
        return cls(**{f.name: getattr(args, f.name, None) for f in fields(cls)})

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __bool__(self) -> bool:
        return bool(self.to_dict())

    def describe(self) -> str:
        parts = []
        for _, name, upper, unit, _flag in _CHECKS:
            value = getattr(self, name)
            if value is not None:
                key = name.split("_", 1)[1].replace("_ms", "").replace("_mb", "")
                parts.append(f"{key} {'<=' if upper else '>='} {value:g}{(' ' + unit) if unit else ''}")
        return ", ".join(parts) or "no constraints"

    def violations(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each constraint the row breaks: flag, limit, value, excess and relative excess.

        A missing figure breaks a constraint on it (it cannot be shown to hold).
        """
        out = []
        for key, name, upper, unit, flag in _CHECKS:
            limit = getattr(self, name)
            if limit is None:
                continue
            value = row.get(key)
            if value is None:
                out.append(
                    {"flag": flag, "limit": limit, "value": None, "excess": math.inf, "relative": math.inf}
                )
                continue
            excess = value - limit if upper else limit - value
            if excess > 0:
                rel = excess / limit if limit else math.inf
                out.append(
                    {
                        "flag": flag,
                        "limit": limit,
                        "value": value,
                        "excess": excess,
                        "relative": rel,
                        "unit": unit,
                    }
                )
        return out


def add_constraint_arguments(parser: argparse.ArgumentParser) -> None:
    """The four constraint flags, for any command that picks a variant."""
    group = parser.add_argument_group("device constraints")
    for f in fields(Constraints):
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, type=str, default=None, help=f.metadata["help"]
        )


# ---------------------------------------------------------------- Pareto front

_OBJECTIVES = (
    ("transfer_score", 1),
    ("latency_p50_ms", -1),
    ("peak_memory_mb", -1),
    ("file_size_mb", -1),
    ("fidelity", 1),
)


def _objectives(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """The objectives every row has a number for."""
    return [(k, s) for k, s in _OBJECTIVES if rows and all(r.get(k) is not None for r in rows)]


def pareto_front(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on every objective (score and fidelity up; latency, memory, size down).

    Objectives some row lacks are left out. Rows keep their input order.
    """
    rows = [dict(r) for r in rows]
    objectives = _objectives(rows)

    def dominates(a, b) -> bool:
        at_least = all(a[k] * s >= b[k] * s for k, s in objectives)
        better = any(a[k] * s > b[k] * s for k, s in objectives)
        return at_least and better

    return [r for r in rows if not any(dominates(o, r) for o in rows if o is not r)]


# ---------------------------------------------------------------- the pick


def _fmt(value: float, unit: str) -> str:
    return f"{value:.3g}{(' ' + unit) if unit else ''}"


def pick(
    rows: Iterable[Mapping[str, Any]], constraints: Constraints | None = None
) -> tuple[dict[str, Any], str]:
    """The recommended row under the constraints, and a one-line reason.

    Among rows meeting every constraint: the highest transfer score (fidelity breaks near-ties
    within 1e-9, then latency), except that a variant of that score with fidelity >= FAITHFUL
    that is clearly faster wins over fp32 (the reason says by how much); rows without scores:
    the lowest latency. When nothing fits a
    `ConstraintError` names the nearest candidates and the constraint that excludes each, by how much.

    Example:
        >>> pick([{"model_id": "a", "variant": "fp32", "transfer_score": 0.8, "latency_p50_ms": 9.0}],
        ...      Constraints(max_latency_ms=10))[0]["model_id"]
        'a'
    """
    rows = [dict(r) for r in rows]
    constraints = constraints or Constraints()
    if not rows:
        raise ConstraintError("no candidates to pick from", hint="measure at least one variant")
    feasible = [r for r in rows if not constraints.violations(r)]
    if not feasible:
        raise ConstraintError(_nothing_fits(rows, constraints), hint=_relax_hint(rows, constraints))
    scored = [r for r in feasible if r.get("transfer_score") is not None]
    if scored:
        best = max(
            scored,
            key=lambda r: (r["transfer_score"], _fidelity(r), -(r.get("latency_p50_ms") or math.inf)),
        )
        why = f"highest transfer score ({best['transfer_score']:.4g})"
        faster = _faithful_faster(best, scored)
        if faster is not None:
            why += (
                f"; {faster['variant']} over {best['variant']}: fidelity {_fidelity(faster):.3f} "
                f"(>= {FAITHFUL}) at {_ratio(faster, best, 'latency_p50_ms')} the latency"
                + (
                    f" and {_ratio(faster, best, 'file_size_mb')} the size"
                    if faster.get("file_size_mb")
                    else ""
                )
            )
            best = faster
    else:
        best = min(feasible, key=lambda r: (r.get("latency_p50_ms") or math.inf, -(r.get("fidelity") or 0.0)))
        why = "lowest latency"
    details = [
        _fmt(best[k], u) + " " + label
        for k, u, label in (
            ("latency_p50_ms", "ms", "p50"),
            ("peak_memory_mb", "MiB", "peak"),
            ("file_size_mb", "MiB", "file"),
        )
        if best.get(k) is not None
    ]
    if best.get("fidelity") is not None:
        details.append(f"fidelity {best['fidelity']:.3f}")
    reason = (
        f"{best['model_id']} [{best['variant']}]: {why} among {len(feasible)} of {len(rows)} candidates meeting "
        f"{constraints.describe()}; {', '.join(details)}"
    )
    return best, reason


# A variant whose outputs agree this well with fp32 is as good for transfer; speed and size decide.
FAITHFUL = 0.99


def _fidelity(row: Mapping[str, Any]) -> float:
    if row.get("fidelity") is None:
        return 1.0 if row.get("variant") == "fp32" else 0.0  # fp32 is the reference
    return float(row["fidelity"])


def _faithful_faster(best: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]):
    """A variant of the same score as `best` with fidelity >= FAITHFUL that is clearly faster
    (under 0.9x the latency; within that, the smaller file wins), else None."""
    if best.get("latency_p50_ms") is None:
        return None
    peers = [
        r
        for r in rows
        if r is not best
        and abs(r["transfer_score"] - best["transfer_score"]) <= 1e-9
        and _fidelity(r) >= FAITHFUL
        and r.get("latency_p50_ms") is not None
        and r["latency_p50_ms"] < 0.9 * best["latency_p50_ms"]
    ]
    if not peers:
        return None
    fastest = min(r["latency_p50_ms"] for r in peers)
    close = [r for r in peers if r["latency_p50_ms"] <= 1.1 * fastest]
    return min(close, key=lambda r: (r.get("file_size_mb") or math.inf, r["latency_p50_ms"]))


def _ratio(a: Mapping[str, Any], b: Mapping[str, Any], key: str) -> str:
    if not a.get(key) or not b.get(key):
        return "?"
    return f"{a[key] / b[key]:.2f}x"


def _nearest(rows, constraints, k: int = 3):
    scored = []
    for r in rows:
        v = constraints.violations(r)
        scored.append((sum(min(x["relative"], 1e6) for x in v), r, v))
    scored.sort(key=lambda t: t[0])
    return scored[:k]


def _nothing_fits(rows, constraints) -> str:
    counts = {}
    for r in rows:
        for v in constraints.violations(r):
            counts[v["flag"]] = counts.get(v["flag"], 0) + 1
    parts = []
    for _, row, violations in _nearest(rows, constraints):
        why = "; ".join(
            f"{v['flag']} {v['limit']:g}: figure missing"
            if v["value"] is None
            else f"{v['flag']} {v['limit']:g}: {_fmt(v['value'], v.get('unit', ''))}, "
            f"off by {_fmt(v['excess'], v.get('unit', ''))} ({v['relative']:.0%})"
            for v in violations
        )
        parts.append(f"{row['model_id']} [{row['variant']}] ({why})")
    binding = ", ".join(f"{flag} excludes {n}" for flag, n in sorted(counts.items(), key=lambda t: -t[1]))
    return f"no candidate meets {constraints.describe()} ({binding} of {len(rows)}); nearest: " + "; ".join(
        parts
    )


def _relax_hint(rows, constraints) -> str:
    _, _row, violations = _nearest(rows, constraints, 1)[0]
    fixes = []
    for v in violations:
        if v["value"] is None:
            fixes.append(f"measure the missing figure or drop {v['flag']}")
        else:
            fixes.append(f"{v['flag']} {v['value']:.3g}")
    return "relax to " + " and ".join(fixes) + ", or try a smaller model or an int8 variant"


# ---------------------------------------------------------------- Copeland


def copeland(transfer_ranking: Sequence[Any], device_ranking: Sequence[Any]) -> list[tuple[Any, float]]:
    """Merge two best-first rankings by Copeland's rule.

    Each pair of items meets in both rankings: an item wins the pair when more rankings put it
    first, ties count one half. An item's score is its wins plus half its ties; items missing
    from a ranking rank below all of its items. Equal scores keep the transfer ranking's order.

    Example:
        >>> copeland(["a", "b", "c"], ["c", "a", "b"])
        [('a', 1.5), ('c', 1.0), ('b', 0.5)]
    """
    items = list(dict.fromkeys([*transfer_ranking, *device_ranking]))
    rankings = [list(transfer_ranking), list(device_ranking)]
    positions = [{item: i for i, item in enumerate(r)} for r in rankings]
    scores = dict.fromkeys(items, 0.0)
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            a_first = sum(p.get(a, math.inf) < p.get(b, math.inf) for p in positions)
            b_first = sum(p.get(b, math.inf) < p.get(a, math.inf) for p in positions)
            if a_first > b_first:
                scores[a] += 1
            elif b_first > a_first:
                scores[b] += 1
            else:
                scores[a] += 0.5
                scores[b] += 0.5
    order = {item: i for i, item in enumerate(items)}
    return sorted(scores.items(), key=lambda t: (-t[1], order[t[0]]))


# ---------------------------------------------------------------- a results table


def apply_constraints(
    rows: list[dict[str, Any]], constraints: Constraints, order: Sequence[str]
) -> dict[str, Any] | None:
    """Mark a results table in place and return the pick (`{"model_id", "variant", "reason"}`).

    Every measured row (a variant with figures) gets `meets_constraints`, `violations` (text),
    `pareto` (on the front of all measured rows), `copeland_rank` (the Copeland merge of the
    transfer order `order`, best first, with the latency order) and `recommended`. Rows without a
    variant or skipped ones are left as they are. None when nothing was measured and there are no
    constraints.

    Raises:
        ConstraintError: nothing was measured but constraints were given, or no measured row meets
            them (the rows are marked first).
    """
    measured = [r for r in rows if r.get("variant") is not None and r.get("device_status") != "skipped"]
    if not measured:
        if constraints:
            raise ConstraintError(
                "no variant could be measured, so no candidate can be shown to meet the constraints",
                hint="see the notes of `--stages rank,probe`, or drop the constraints",
            )
        return None
    for r in measured:
        v = constraints.violations(r)
        r["meets_constraints"] = not v
        r["violations"] = "; ".join(_violation_text(x) for x in v) or None
    front = {(p["model_id"], p["variant"]) for p in pareto_front(measured)}
    position = {m: i for i, m in enumerate(order)}

    def latency(r):
        return r.get("latency_p50_ms")

    transfer = sorted(measured, key=lambda r: (position[r["model_id"]], latency(r) or 0.0))
    device = sorted(measured, key=lambda r: (latency(r) is None, latency(r) or 0.0))
    keys = [[(r["model_id"], r["variant"]) for r in ranking] for ranking in (transfer, device)]
    copeland_rank = {key: rank for rank, (key, _) in enumerate(copeland(*keys), start=1)}
    for r in measured:
        r["pareto"] = (r["model_id"], r["variant"]) in front
        r["copeland_rank"] = copeland_rank[(r["model_id"], r["variant"])]
    choice, reason = pick(measured, constraints)
    for r in measured:
        r["recommended"] = (r["model_id"], r["variant"]) == (choice["model_id"], choice["variant"])
    return {"model_id": choice["model_id"], "variant": choice["variant"], "reason": reason}


def _violation_text(v: dict[str, Any]) -> str:
    if v.get("value") is None:
        return f"{v['flag']} {v['limit']:g}: figure missing"
    return f"{v['flag']} {v['limit']:g}: {v['value']:.3g}"
