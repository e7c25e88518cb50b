"""Promotion rules on hand-made metric sets; expected changes are worked out by hand in the comments."""

from __future__ import annotations

import math

import orjson
import pytest

from app.registry.gate import PRIMARY_METRIC, SECONDARY_METRICS, decide, relative_change

PRODUCTION = {
    "ndcg@10": 0.100,
    "precision@5": 0.050,
    "precision@10": 0.040,
    "precision@20": 0.030,
    "recall@5": 0.100,
    "recall@10": 0.150,
    "recall@20": 0.200,
    "hitrate@5": 0.250,
    "hitrate@10": 0.350,
    "hitrate@20": 0.500,
    "mrr": 0.080,
    "coverage@100": 0.400,
    "ndcg@5": 0.090,
    "ndcg@20": 0.120,
}


def candidate(**changes: float) -> dict[str, float]:
    return {**PRODUCTION, **changes}


def rule(decision, name):
    return next(r for r in decision.rules if r["rule"] == name)


def row(decision, metric):
    return next(r for r in decision.metrics if r.metric == metric)


def test_improvement_below_one_percent_is_kept():
    d = decide(candidate(**{"ndcg@10": 0.1009}), PRODUCTION)  # +0.9%
    assert not d.promote and d.decision == "keep"
    assert not rule(d, "primary_improvement")["passed"]
    assert rule(d, "no_secondary_regression")["passed"]
    assert row(d, "ndcg@10").relative_change == pytest.approx(0.009)
    assert "ndcg@10" in d.reason and "+0.90%" in d.reason


def test_improvement_of_exactly_one_percent_and_above_is_promoted():
    for new, change in ((0.101, 0.01), (0.102, 0.02)):  # +1.0% (the boundary counts), +2.0%
        d = decide(candidate(**{"ndcg@10": new}), PRODUCTION, candidate_version="c", production_version="p")
        assert d.promote, d.reason
        assert row(d, "ndcg@10").relative_change == pytest.approx(change)
        assert (d.candidate, d.production) == ("c", "p")


def test_six_percent_regression_on_one_secondary_metric_blocks_promotion():
    # recall@20 0.200 -> 0.188 is -6%: fails the 5% rule although NDCG@10 improves by 10%.
    d = decide(candidate(**{"ndcg@10": 0.110, "recall@20": 0.188}), PRODUCTION)
    assert not d.promote
    assert rule(d, "primary_improvement")["passed"]
    sec = rule(d, "no_secondary_regression")
    assert not sec["passed"] and "recall@20" in sec["detail"] and "-6.00%" in sec["detail"]
    r = row(d, "recall@20")
    assert (r.old, r.new, r.passed) == (0.200, 0.188, False)
    assert r.relative_change == pytest.approx(-0.06)
    assert all(row(d, m).passed for m in SECONDARY_METRICS if m != "recall@20")


def test_regression_of_exactly_five_percent_is_allowed_and_thresholds_are_parameters():
    c = candidate(**{"ndcg@10": 0.110, "mrr": 0.076})  # mrr -5.0%
    assert decide(c, PRODUCTION).promote
    assert not decide(c, PRODUCTION, max_regression=0.04).promote
    assert not decide(c, PRODUCTION, min_improvement=0.15).promote  # +10% < 15%


def test_first_model_is_promoted_without_comparison():
    d = decide(candidate(), None, candidate_version="v1")
    assert d.promote and rule(d, "first_model")["passed"]
    assert "no production model" in d.reason
    assert all(r.old is None and r.passed is None for r in d.metrics)


def test_first_model_needs_a_finite_primary_metric():
    assert not decide(candidate(**{"ndcg@10": float("nan")}), None).promote


def test_missing_candidate_metric_fails_its_rule():
    c = candidate(**{"ndcg@10": 0.2})
    del c["coverage@100"]
    d = decide(c, PRODUCTION)
    assert not d.promote and "coverage@100" in rule(d, "no_secondary_regression")["detail"]


def test_record_lists_every_metric_old_new_and_change():
    d = decide(candidate(**{"ndcg@10": 0.105, "hitrate@5": 0.30}), PRODUCTION)
    names = [r.metric for r in d.metrics]
    assert names[0] == PRIMARY_METRIC and set(SECONDARY_METRICS) <= set(names) and {"ndcg@5", "ndcg@20"} <= set(names)
    hr = row(d, "hitrate@5")
    assert (hr.old, hr.new) == (0.25, 0.30) and hr.relative_change == pytest.approx(0.2)
    record = orjson.loads(orjson.dumps(d.to_dict()))
    assert record["decision"] == "promote" and len(record["metrics"]) == len(names)
    assert "| hitrate@5 | secondary | 0.2500 | 0.3000 | +20.00% | pass |" in d.table()


def test_relative_change_edge_cases():
    assert relative_change(0.0, 0.0) == 0.0
    assert relative_change(0.0, 0.1) == math.inf
    assert relative_change(None, 0.1) is None
    assert relative_change(0.2, 0.1) == pytest.approx(-0.5)
    prod = {**PRODUCTION, "coverage@100": 0.0}
    d = decide(candidate(**{"ndcg@10": 0.2, "coverage@100": 0.1}), prod)
    assert d.promote and orjson.loads(orjson.dumps(d.to_dict()))  # +inf is written as a string
