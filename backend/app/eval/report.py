"""Markdown and JSON evaluation reports, written side by side and atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from app.files import write_bytes_atomic

MAIN_COLUMNS = ("ndcg@10", "recall@20", "precision@10", "hitrate@10", "mrr", "coverage@100", "ild@10")
MODEL_LABELS = {
    "popular": "most popular",
    "itemknn": "item-kNN cosine",
    "als": "implicit ALS",
    "ease": "EASE",
    "baseline": "baseline heuristic",
    "nn": "Keras embedding (nn)",
    "hybrid": "hybrid: sources + LightGBM ranker",
}


def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()) or "-"


def sizes_table(sizes: dict[str, Any]) -> str:
    lines = ["| part | users | items | interactions |", "| --- | --- | --- | --- |"]
    for part in ("train", "validation", "test"):
        s = sizes[part]
        lines.append(f"| {part} | {s['users']} | {s['items']} | {s['interactions']} |")
    return "\n".join(lines)


def results_table(models: dict[str, dict[str, Any]]) -> str:
    """One row per model: main metrics (mean over seeds, +/- std when several), CI of NDCG@10, fit time."""
    head = ["model", *MAIN_COLUMNS, "NDCG@10 95% CI", "fit s", "seeds", "hyperparameters"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in models.items():
        cells = [MODEL_LABELS.get(name, name)]
        for col in MAIN_COLUMNS:
            mean, std = r["metrics"].get(col, float("nan")), r["metrics_std"].get(col, 0.0)
            cells.append(_fmt(mean) + (f" ± {std:.3f}" if len(r["seeds"]) > 1 else ""))
        ci = r["ci"].get("ndcg@10")
        cells.append(f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-")
        cells.append(f"{r['fit_seconds']:.2f}")
        cells.append(",".join(map(str, r["seeds"])) or "-")
        cells.append(_params(r["params"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def all_metrics_table(models: dict[str, dict[str, Any]]) -> str:
    names = list(next(iter(models.values()))["metrics"]) if models else []
    lines = ["| model | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
    for name, r in models.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r["metrics"][n]) for n in names) + " |")
    return "\n".join(lines)


def tuning_section(models: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, r in models.items():
        if not r.get("tuning"):
            continue
        rows = sorted(r["tuning"], key=lambda t: -t["metrics"]["ndcg@10"])
        lines = [
            f"### {name}",
            "",
            "| hyperparameters | val NDCG@10 | val Recall@20 | fit s |",
            "| --- | --- | --- | --- |",
        ]
        for t in rows:
            m = t["metrics"]
            lines.append(
                f"| {_params(t['params'])} | {m['ndcg@10']:.4f} | {m['recall@20']:.4f} | {t['fit_seconds']:.2f} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def render_markdown(report: dict[str, Any]) -> str:
    sizes = report["split"]
    f = report["filter"]
    out = [
        f"# Evaluation report ({report['protocol']})",
        "",
        f"Command: `{report['command']}`  ",
        f"Created: {report['created_at']}  ",
        f"Data: `{report['data']['data_path']}` ({report['data'].get('events', '?')} events, "
        f"{report['data'].get('positives', '?')} positives)",
        "",
        f"Filters: items with < {f['min_item']} positives, then users with < {f['min_user']}: "
        f"{f['users_before']} users / {f['items_before']} items / {f['interactions_before']} positives -> "
        f"{f['users_after']} / {f['items_after']} / {f['interactions_after']}.",
        "",
        sizes_table(sizes),
        "",
        f"Evaluated users: {sizes['evaluated_users_test']} on test ({sizes['evaluated_users_validation']} on validation). "
        "Full ranking over the catalogue, the users' fitted items excluded. "
        + (
            "Hyperparameters tuned on validation (NDCG@10), then refitted on train + validation."
            if report["tune"]
            else "No tuning: default hyperparameters, fitted on train + validation."
        ),
        "",
        "ild@10 is the intra-list diversity of each top 10: the mean over pairs of its items of 1 - their "
        "cosine, in the items' genres when the catalogue has them, else in the users who interacted with "
        "them (0: all alike, 1: nothing in common).",
        "",
        "## Test results",
        "",
        results_table(report["models"]),
        "",
        "## All metrics",
        "",
        all_metrics_table(report["models"]),
    ]
    tuning = tuning_section(report["models"])
    if tuning:
        out += ["", "## Validation search", "", tuning]
    return "\n".join(out) + "\n"


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` in ``out_dir``."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    write_bytes_atomic(json_path, orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    write_bytes_atomic(md_path, render_markdown(report).encode())
    return md_path, json_path
