"""The loop's table: a markdown file (summary, differences, every round, retraining runs) and the JSON result."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from app.files import write_bytes_atomic, write_json_atomic

JSON_FILE = "loop.json"
TABLE_FILE = "loop.md"
PLOT_FILE = "loop.png"


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _ci(value: Any, ci: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    lo, hi = ci
    return f"{value:.{digits}f} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _signed(value: float, ci: list[float], digits: int = 3) -> str:
    return f"{value:+.{digits}f} [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def retrain_cell(run: dict[str, Any] | None) -> str:
    if not run:
        return ""
    decision = run.get("decision") or "?"
    if decision in ("promote", "keep"):
        label = "promote (gate overridden)" if run.get("forced") else decision
        return f"{label}: NDCG@10 {_num(run.get('candidate_ndcg@10'), 4)} vs {_num(run.get('production_ndcg@10'), 4)}"
    return decision


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    arms = result["arms"]
    keys = list(arms)
    lines = [
        "# Closed-loop simulation",
        "",
        f"{cfg['users']} users in the base log + {cfg['new_users']} new users, {cfg['items']} items, "
        f"{cfg['rounds']} rounds of k = {cfg['k']} lists, retraining every {cfg['retrain_every']} rounds in arm (c), "
        f"seed {cfg['seed']}; first model NDCG@10 {_num(result['initial_model'].get('ndcg@10'), 4)} on its "
        f"validation split; {result['seconds']:.0f} s in all.",
        "",
        "PaC = share of lists with at least one positive engagement (click or like); "
        "CTR = clicked items / shown items. Per round: 95% Wilson interval (PaC), bootstrap over lists (CTR); "
        "summaries: bootstrap over users.",
        "",
        "## Summary",
        "",
    ]
    rows = []
    for key in keys:
        s = arms[key]["summary"]
        runs = arms[key].get("retraining") or []
        promoted = sum(r.get("decision") == "promote" for r in runs)
        rows.append(
            [
                arms[key]["label"],
                _ci(s["all_rounds"]["pac"], s["all_rounds"]["pac_ci"]),
                _ci(s["second_half"]["pac"], s["second_half"]["pac_ci"]),
                _ci(s["all_rounds"]["ctr"], s["all_rounds"]["ctr_ci"], 4),
                _ci(s["second_half"]["ctr"], s["second_half"]["ctr_ci"], 4),
                f"{promoted} of {len(runs)}" if arms[key]["retrain"] else "-",
            ]
        )
    lo, hi = arms[keys[0]]["summary"]["second_half"]["rounds"]
    late = f"round {lo}" if lo == hi else f"rounds {lo}-{hi}"
    lines += _table(
        [
            "arm",
            "PaC, all rounds",
            f"PaC, {late}",
            "CTR, all rounds",
            f"CTR, {late}",
            "retrainings promoted",
        ],
        rows,
    )
    if result.get("comparison"):
        lines += ["", "## Differences between arms (paired by user)", ""]
        rows = []
        for c in result["comparison"]:
            rows.append(
                [
                    f"{arms[c['arm']]['letter']} - {arms[c['reference']]['letter']}",
                    _signed(c["all_rounds"]["pac_diff"], c["all_rounds"]["pac_diff_ci"]),
                    _signed(c["second_half"]["pac_diff"], c["second_half"]["pac_diff_ci"]),
                    _signed(c["all_rounds"]["ctr_diff"], c["all_rounds"]["ctr_diff_ci"], 4),
                    _signed(c["second_half"]["ctr_diff"], c["second_half"]["ctr_diff_ci"], 4),
                ]
            )
        lines += _table(
            [
                "arms",
                "PaC, all rounds",
                f"PaC, {late}",
                "CTR, all rounds",
                f"CTR, {late}",
            ],
            rows,
        )
    lines += ["", "## Every round", ""]
    header = ["round"] + [f"PaC {arms[k]['letter']}" for k in keys] + [f"CTR {arms[k]['letter']}" for k in keys]
    retrainer = next((k for k in keys if arms[k]["retrain"]), None)
    if retrainer:
        header.append(f"retraining ({arms[retrainer]['letter']}) after the round")
    by_round = {k: {row["round"]: row for row in arms[k]["rounds"]} for k in keys}
    runs_after = {run["after_round"]: run for run in (arms[retrainer]["retraining"] if retrainer else [])}
    rows = []
    for r in range(1, cfg["rounds"] + 1):
        row = [str(r)]
        row += [_ci(by_round[k][r]["pac"], by_round[k][r]["pac_ci"]) for k in keys]
        row += [_ci(by_round[k][r]["ctr"], by_round[k][r]["ctr_ci"], 4) for k in keys]
        if retrainer:
            row.append(retrain_cell(runs_after.get(r)))
        rows.append(row)
    lines += _table(header, rows, ["---:"] * len(header) if not retrainer else ["---:"] * (len(header) - 1) + ["---"])
    lines += ["", "Arms: " + "; ".join(f"{arms[k]['letter']} = {arms[k]['label'][4:]}" for k in keys) + "."]
    if retrainer and runs_after:
        lines += [
            "",
            "Retraining: the candidate's NDCG@10 vs production's on the run's validation split (the promotion "
            "gate's figures); the service loads a promoted version before the next round.",
        ]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out: Path, *, plot: bool = True) -> dict[str, Path]:
    """``loop.json``, ``loop.md`` and (with matplotlib) ``loop.png`` in ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / JSON_FILE, "table": out / TABLE_FILE}
    write_json_atomic(paths["json"], result)
    write_bytes_atomic(paths["table"], markdown(result).encode())
    if plot:
        from app.simulate.plot import plot_rounds

        paths["plot"] = out / PLOT_FILE
        plot_rounds(result, paths["plot"])
    return paths
