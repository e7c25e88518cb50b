"""The promotion gate: a pure function from two metric sets to a decision with its reasons.

Rules (both thresholds are settings):
- primary: NDCG@10 on the validation split improves on production by at least ``min_improvement``
  (relative, 0.01 = 1%; the pipeline passes minus that margin when production is a refit of its
  configuration on the candidate's data: then the candidate must be as good, within the margin);
- secondary: no secondary metric (precision, recall, hit rate at 5/10/20, MRR, coverage@100)
  falls by more than ``max_regression`` (relative, 0.05 = 5%);
- first model: with no production model the candidate is promoted (it still has to have a
  finite primary metric).
Both metric sets must come from the same split, the same users and the same exclusions, on rows that
neither model was trained on (the caller's job: ``app.registry.pipeline`` checks the production
model's training data against the split and says how production was judged in ``comparison``). When
no fair comparison is possible the caller records ``refuse(...)``: decision ``refused``, never a
promotion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

PRIMARY_METRIC = "ndcg@10"
SECONDARY_METRICS: tuple[str, ...] = (
    *(f"{m}@{k}" for m in ("precision", "recall", "hitrate") for k in (5, 10, 20)),
    "mrr",
    "coverage@100",
)
INFO_METRICS: tuple[str, ...] = ("ndcg@5", "ndcg@20")  # shown in the record, not gated
# Relative changes are compared with this slack so that "exactly 1%" or "exactly 5%" is not decided
# by the last bit of a float division.
_EPS = 1e-9


def relative_change(old: float | None, new: float | None) -> float | None:
    """(new - old) / old; +inf when old is 0 and new > 0, 0 when both are 0, None when unknown."""
    if old is None or new is None or not math.isfinite(old) or not math.isfinite(new):
        return None
    if old == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - old) / abs(old)


@dataclass
class MetricRow:
    metric: str
    role: str  # "primary" | "secondary" | "info"
    old: float | None
    new: float | None
    relative_change: float | None
    passed: bool | None  # None for info metrics and the first-model case
    rule: str


@dataclass
class Decision:
    promote: bool
    reason: str
    candidate: str | None
    production: str | None
    min_improvement: float
    max_regression: float
    rules: list[dict[str, Any]] = field(default_factory=list)  # one per rule: name, passed, detail
    metrics: list[MetricRow] = field(default_factory=list)
    # how production was judged: {"method": "as-is" | "unseen-users" | "refit" | "refused", ...}
    comparison: dict[str, Any] | None = None
    refused: bool = False

    @property
    def decision(self) -> str:
        if self.refused:
            return "refused"
        return "promote" if self.promote else "keep"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decision"] = self.decision
        for row in out["metrics"]:  # JSON has no infinity
            if row["relative_change"] is not None and not math.isfinite(row["relative_change"]):
                row["relative_change"] = "inf" if row["relative_change"] > 0 else "-inf"
        return out

    def table(self) -> str:
        """Markdown table of every metric: old, new, relative change, verdict."""
        lines = [
            "| metric | role | production | candidate | change | verdict |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.metrics:
            verdict = "-" if r.passed is None else ("pass" if r.passed else "FAIL")
            lines.append(
                f"| {r.metric} | {r.role} | {_fmt(r.old)} | {_fmt(r.new)} | {_pct(r.relative_change)} | {verdict} |"
            )
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x * 100:+.2f}%"


def _value(metrics: dict[str, Any] | None, name: str) -> float | None:
    if metrics is None or metrics.get(name) is None:
        return None
    try:
        v = float(metrics[name])
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def refuse(
    reason: str,
    *,
    min_improvement: float = 0.01,
    max_regression: float = 0.05,
    candidate_version: str | None = None,
    production_version: str | None = None,
    comparison: dict[str, Any] | None = None,
) -> Decision:
    """No fair comparison is possible: decision ``refused`` (never a promotion), ``reason`` says what to do."""
    rules = [{"rule": "fair_comparison", "passed": False, "detail": reason}]
    return Decision(
        False,
        "refused: " + reason,
        candidate_version,
        production_version,
        min_improvement,
        max_regression,
        rules,
        [],
        comparison,
        True,
    )


def decide(
    candidate: dict[str, float],
    production: dict[str, float] | None,
    *,
    min_improvement: float = 0.01,
    max_regression: float = 0.05,
    candidate_version: str | None = None,
    production_version: str | None = None,
    comparison: dict[str, Any] | None = None,
) -> Decision:
    """Promote or keep, with every metric and every rule in the record. Pure: no I/O. A negative
    ``min_improvement`` lets the primary metric fall by at most that much (a refit comparison).

    ``comparison`` (how production was judged, e.g. ``{"method": "refit"}``) is kept in the record."""
    if max_regression < 0:
        raise ValueError("max_regression must be >= 0")
    new_primary = _value(candidate, PRIMARY_METRIC)
    rows: list[MetricRow] = []
    rules: list[dict[str, Any]] = []

    if production is None:
        for name in (PRIMARY_METRIC, *SECONDARY_METRICS, *INFO_METRICS):
            role = "primary" if name == PRIMARY_METRIC else "secondary" if name in SECONDARY_METRICS else "info"
            rows.append(MetricRow(name, role, None, _value(candidate, name), None, None, "first model: not compared"))
        ok = new_primary is not None
        detail = (
            f"no production model: the candidate is promoted ({PRIMARY_METRIC} = {_fmt(new_primary)})"
            if ok
            else f"no production model, but the candidate has no finite {PRIMARY_METRIC}: not promoted"
        )
        rules.append({"rule": "first_model", "passed": ok, "detail": detail})
        return Decision(
            ok, detail, candidate_version, production_version, min_improvement, max_regression, rules, rows, comparison
        )

    old_primary = _value(production, PRIMARY_METRIC)
    change = relative_change(old_primary, new_primary)
    primary_ok = change is not None and change >= min_improvement - _EPS
    if change is None:
        primary_detail = (
            f"{PRIMARY_METRIC} missing or not finite (production {_fmt(old_primary)}, candidate {_fmt(new_primary)})"
        )
    else:
        primary_detail = (
            f"{PRIMARY_METRIC} {_fmt(old_primary)} -> {_fmt(new_primary)} ({_pct(change)}); "
            f"needs >= {_pct(min_improvement)}"
        )
    rows.append(
        MetricRow(
            PRIMARY_METRIC,
            "primary",
            old_primary,
            new_primary,
            change,
            primary_ok,
            f"relative change >= {_pct(min_improvement)}",
        )
    )
    rules.append({"rule": "primary_improvement", "passed": primary_ok, "detail": primary_detail})

    regressions: list[str] = []
    for name in SECONDARY_METRICS:
        old, new = _value(production, name), _value(candidate, name)
        if old is None:  # production never measured it: nothing to regress from
            rows.append(MetricRow(name, "secondary", old, new, None, None, "not measured for production: not gated"))
            continue
        c = relative_change(old, new)
        ok = c is not None and c >= -max_regression - _EPS
        if not ok:
            regressions.append(f"{name} {_fmt(old)} -> {_fmt(new)} ({_pct(c)})")
        rows.append(MetricRow(name, "secondary", old, new, c, ok, f"relative change >= {_pct(-max_regression)}"))
    secondary_ok = not regressions
    rules.append(
        {
            "rule": "no_secondary_regression",
            "passed": secondary_ok,
            "detail": ("no secondary metric fell by more than " + _pct(max_regression).lstrip("+"))
            if secondary_ok
            else "regressed by more than " + _pct(max_regression).lstrip("+") + ": " + "; ".join(regressions),
        }
    )
    for name in INFO_METRICS:
        old, new = _value(production, name), _value(candidate, name)
        rows.append(MetricRow(name, "info", old, new, relative_change(old, new), None, "shown, not gated"))

    promote = primary_ok and secondary_ok
    failed = [r["detail"] for r in rules if not r["passed"]]
    reason = (
        ("promoted: " + primary_detail + "; " + rules[-1]["detail"])
        if promote
        else "kept production: " + " | ".join(failed)
    )
    return Decision(
        promote, reason, candidate_version, production_version, min_improvement, max_regression, rules, rows, comparison
    )
