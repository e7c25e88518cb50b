"""Daily report (Markdown or HTML) of traffic, PaC and replay metrics for a date range (UTC days):
what ``python -m app.store report`` writes.

``daily_rows`` queries the store; ``render_markdown`` / ``render_html`` are pure formatting.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from app.store.store import Store
from app.store.timeparse import day_start

#: (column title, key in a row, format)
COLUMNS: list[tuple[str, str, str]] = [
    ("date", "date", "s"),
    ("requests", "requests", "d"),
    ("req/min", "requests_per_minute", ".2f"),
    ("users", "unique_users", "d"),
    ("latency mean ms", "latency_mean", ".2f"),
    ("p50 ms", "latency_p50", ".2f"),
    ("p95 ms", "latency_p95", ".2f"),
    ("p99 ms", "latency_p99", ".2f"),
    ("coverage", "coverage", ".3f"),
    ("fallback rate", "fallback_rate", ".3f"),
    ("PaC mean", "pac_mean", ".4f"),
    ("PaC micro", "pac_micro", ".4f"),
    ("precision@k", "precision_at_k", ".4f"),
    ("hit rate@k", "hit_rate_at_k", ".4f"),
    ("CTR", "ctr", ".4f"),
]


def days(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def period_row(
    store: Store,
    label: str,
    since: float,
    until: float,
    *,
    k: int,
    window_hours: float,
    catalogue_size: int | None = None,
) -> dict[str, Any]:
    s = store.summary(since, until, catalogue_size=catalogue_size)
    p = store.pac(since, until, k=k, window_hours=window_hours)
    r = store.replay(since, until, k=k, window_hours=window_hours)
    lat = s["latency_ms"]
    return {
        "date": label,
        "requests": s["requests"],
        "requests_per_minute": s["requests_per_minute"],
        "unique_users": s["unique_users"],
        "latency_mean": lat["mean"],
        "latency_p50": lat["p50"],
        "latency_p95": lat["p95"],
        "latency_p99": lat["p99"],
        "coverage": s["coverage"],
        "fallback_rate": s["fallback_rate"],
        "pac_mean": p["pac_mean"],
        "pac_micro": p["pac_micro"],
        "precision_at_k": r["precision_at_k"],
        "hit_rate_at_k": r["hit_rate_at_k"],
        "ctr": r["ctr"],
        "_pac": p,
        "_replay": r,
        "_summary": s,
    }


def daily_rows(
    store: Store, start: date, end: date, *, k: int = 10, window_hours: float = 24.0
) -> list[dict[str, Any]]:
    """One row per UTC day in ``[start, end]`` (both inclusive), then a row for the whole range."""
    catalogue_size = store.catalogue_size()
    rows = [
        period_row(
            store,
            d.isoformat(),
            day_start(d),
            day_start(d + timedelta(days=1)),
            k=k,
            window_hours=window_hours,
            catalogue_size=catalogue_size,
        )
        for d in days(start, end)
    ]
    rows.append(
        period_row(
            store,
            "all",
            day_start(start),
            day_start(end + timedelta(days=1)),
            k=k,
            window_hours=window_hours,
            catalogue_size=catalogue_size,
        )
    )
    return rows


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    return format(value, fmt) if fmt != "s" else str(value)


def _engine_rows(total: dict[str, Any]) -> list[list[str]]:
    pac, rep = total["_pac"], total["_replay"]
    names = sorted(set(pac["by_engine"]) | set(rep["by_engine"]))
    out = []
    for name in names:
        p, r = pac["by_engine"].get(name, {}), rep["by_engine"].get(name, {})
        out.append(
            [
                name,
                str(p.get("impressions", 0)),
                _cell(p.get("pac_mean"), ".4f"),
                _cell(p.get("pac_micro"), ".4f"),
                _cell(r.get("precision_at_k"), ".4f"),
                _cell(r.get("hit_rate_at_k"), ".4f"),
                _cell(r.get("ctr"), ".4f"),
            ]
        )
    return out


_ENGINE_HEADER = ["engine", "lists", "PaC mean", "PaC micro", "precision@k", "hit rate@k", "CTR"]


def _title(rows: Sequence[dict[str, Any]], k: int, window_hours: float) -> str:
    return f"Recommender report {rows[0]['date']} to {rows[-2]['date']} (k={k}, window {window_hours:g} h, UTC days)"


def render_markdown(rows: Sequence[dict[str, Any]], *, k: int, window_hours: float) -> str:
    lines = [f"# {_title(rows, k, window_hours)}", "", "## Daily", ""]
    lines.append("| " + " | ".join(c[0] for c in COLUMNS) + " |")
    lines.append("|" + "|".join("---" if c[2] == "s" else "---:" for c in COLUMNS) + "|")
    for row in rows:
        cells = [_cell(row[key], fmt) for _, key, fmt in COLUMNS]
        if row["date"] == "all":
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## By engine (whole range)",
        "",
        "| " + " | ".join(_ENGINE_HEADER) + " |",
        "|---|" + "---:|" * (len(_ENGINE_HEADER) - 1),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _engine_rows(rows[-1])]
    lines += ["", _FOOTNOTE, ""]
    return "\n".join(lines)


_FOOTNOTE = (
    "Requests are logged recommendation lists. PaC: distinct top-k items engaged through the list within the "
    "window / min(k, list length). Replay: items the user interacted with in the window after the list. "
    "CTR: share of lists with a positive engagement on one of their items."
)


def render_html(rows: Sequence[dict[str, Any]], *, k: int, window_hours: float) -> str:
    e = html.escape

    def table(header: list[str], body: list[list[str]], bold_last: bool = False) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in header)
        trs = []
        for n, r in enumerate(body):
            style = ' class="total"' if bold_last and n == len(body) - 1 else ""
            trs.append(f"<tr{style}>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>"

    daily = [[_cell(row[key], fmt) for _, key, fmt in COLUMNS] for row in rows]
    title = e(_title(rows, k, window_hours))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}tr.total{font-weight:bold}</style></head><body>"
        f"<h1>{title}</h1><h2>Daily</h2>{table([c[0] for c in COLUMNS], daily, bold_last=True)}"
        f"<h2>By engine (whole range)</h2>{table(_ENGINE_HEADER, _engine_rows(rows[-1]))}"
        f"<p>{e(_FOOTNOTE)}</p></body></html>\n"
    )
