"""The Markdown report shows every model's main metrics, intra-list diversity among them."""

from __future__ import annotations

from app.eval.report import results_table


def test_results_table_has_a_diversity_column():
    metrics = {"ndcg@10": 0.25, "recall@20": 0.5, "precision@10": 0.1, "hitrate@10": 0.6, "mrr": 0.3}
    models = {
        "popular": {
            "metrics": {**metrics, "coverage@100": 0.2, "ild@10": 0.4321},
            "metrics_std": {},
            "ci": {},
            "fit_seconds": 0.01,
            "seeds": [],
            "params": {},
        },
        "ease": {  # a report written before ild@10 existed
            "metrics": {**metrics, "coverage@100": 0.3},
            "metrics_std": {},
            "ci": {},
            "fit_seconds": 0.5,
            "seeds": [],
            "params": {"l2": 100.0},
        },
    }
    head, _, popular, ease = results_table(models).splitlines()
    assert head.split(" | ")[7] == "ild@10"
    assert popular.split(" | ")[7] == "0.432"
    assert ease.split(" | ")[7] == "nan"
