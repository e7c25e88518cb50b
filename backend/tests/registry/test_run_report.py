"""The registry's human-readable views: the version list (``python -m app.registry list``)."""

from __future__ import annotations

from app.registry.run_report import format_list


def row(number: int | None, version: str, stage: str, **extra) -> dict:
    base = {
        "number": number,
        "version": version,
        "stage": stage,
        "is_production": stage == "production",
        "validation_metrics": {},
        "metrics": {},
        "registered_at": "2024-01-02T03:04:05Z",
        "decision": None,
    }
    return {**base, **extra}


def test_version_list_by_hand():
    gate = {"run_id": "r2", "role": "candidate", "method": "refit", "users": 40, "metrics": {"ndcg@10": 0.25}}
    later = {"run_id": "r3", "role": "production", "method": "as-is", "users": 38, "metrics": {"ndcg@10": 0.2}}
    rows = [
        row(1, "v1", "archived", metrics={"ndcg@10": 0.1}),
        row(2, "v2", "archived", metrics={"ndcg@10": 0.9}, decision="promote", gate=gate),
        row(3, "v3", "production", decision="promote", gate=later),
        row(None, "v4", "none", registered_at=None),
    ]
    lines = format_list(rows).splitlines()
    assert lines[0].split() == [
        "#",
        "version",
        "stage",
        "registered",
        "decision",
        "gate",
        "ndcg@10",
        "gate",
        "evaluation",
    ]
    # the training CLI's own figure (metrics) is never shown: only gate evaluations, labelled
    assert lines[1].split()[:6] == ["1", "v1", "archived", "2024-01-02T03:04:05Z", "-", "-"]
    assert lines[1].endswith("not gated (no retraining run has evaluated it)")
    assert lines[2].split()[:6] == ["2", "v2", "archived", "2024-01-02T03:04:05Z", "promote", "0.2500"]
    assert lines[2].endswith("candidate in run r2, refit, 40 users")
    # production is starred; its figure is the latest evaluation it took part in (as production in r3)
    assert lines[3].split()[:6] == ["3*", "v3", "production", "2024-01-02T03:04:05Z", "promote", "0.2000"]
    assert lines[3].endswith("production in run r3, as-is, 38 users")
    assert lines[4].split()[:5] == ["?", "v4", "none", "-", "-"]  # uncommitted: no number, no metric
    assert format_list([]).splitlines()[1] == "(no versions registered)"
