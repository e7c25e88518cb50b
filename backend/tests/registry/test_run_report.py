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
    rows = [
        row(1, "v1", "archived", metrics={"ndcg@10": 0.1}),
        row(2, "v2", "production", validation_metrics={"ndcg@10": 0.25}, metrics={"ndcg@10": 0.9}, decision="promote"),
        row(None, "v3", "none", registered_at=None),
    ]
    lines = format_list(rows).splitlines()
    assert lines[0].split() == ["#", "version", "stage", "val", "ndcg@10", "registered", "decision"]
    assert lines[1].split() == ["1", "v1", "archived", "0.1000", "2024-01-02T03:04:05Z", "-"]
    # production is starred; the validation NDCG (the gate's figure) wins over the training one
    assert lines[2].split() == ["2*", "v2", "production", "0.2500", "2024-01-02T03:04:05Z", "promote"]
    assert lines[3].split() == ["?", "v3", "none", "-", "-", "-"]  # uncommitted: no number, no metric
    assert format_list([]).splitlines()[1] == "(no versions registered)"
