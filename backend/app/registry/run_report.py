"""Human-readable views of the registry: a retraining run's Markdown report (kept beside the model), its
terminal lines, the table of several runs, and the version list that ``python -m app.registry list`` prints."""

from __future__ import annotations

from typing import Any

from app.registry.gate import PRIMARY_METRIC, Decision


def report_markdown(record: dict[str, Any], decision: Decision) -> str:
    ev = record["evaluation"]
    d = record["data"]
    lines = [
        f"# Retraining run {record['run_id']}",
        "",
        f"- candidate: `{record['candidate']}`; production before the run: `{record['production_before'] or 'none'}`",
        f"- decision: **{decision.decision}**: {decision.reason}",
        f"- data: {d['events']} events ({d['new']['events']} new, {d['new']['rejected']} new lines rejected), "
        f"{d['positives']} positives, {d['users']} users ({d['new']['users']} new), {d['items']} items ({d['new']['items']} new)",
        f"- new: {d['new'].get('from_logs', 0)} events from logs, {d['new'].get('online_events', 0)} online events, "
        f"{d['new'].get('online_engagements', 0)} online engagements",
        f"- split: {ev['protocol']}, {ev['evaluated_users']} users evaluated on validation",
        f"- production judged: {(ev.get('comparison') or {}).get('method', '-')}: {(ev.get('comparison') or {}).get('detail', '-')}",
        "",
        "## Gate (validation split)",
        "",
        decision.table(),
        "",
        "Rules: "
        + "; ".join(f"{r['rule']}: {'pass' if r['passed'] else 'FAIL'} ({r['detail']})" for r in decision.rules),
        "",
        "## All models on the same validation split",
        "",
        "| model | NDCG@10 | Recall@20 | HitRate@10 | MRR | Cov@100 | fit s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, res in ev["models"].items():
        m = res["metrics"]
        fit = res.get("fit_seconds")
        lines.append(
            f"| {name} | {m.get('ndcg@10', float('nan')):.4f} | {m.get('recall@20', float('nan')):.4f} | "
            f"{m.get('hitrate@10', float('nan')):.4f} | {m.get('mrr', float('nan')):.4f} | "
            f"{m.get('coverage@100', float('nan')):.3f} | {'-' if fit is None else f'{fit:.1f}'} |"
        )
    lines += ["", f"Step seconds: {record['seconds']}", ""]
    return "\n".join(lines)


def format_record(record: dict[str, Any]) -> str:
    """A few lines for the terminal / cron log."""
    d = record["data"]
    new = d["new"]
    rejected = (
        f"{new['rejected']} lines rejected"
        + (f" ({', '.join(f'{k}: {v}' for k, v in new['reasons'].items())})" if new["reasons"] else "")
        + (
            f"; skipped (already ingested): {', '.join(new['skipped_already_ingested'])}"
            if new["skipped_already_ingested"]
            else ""
        )
    )
    if record["decision"] == "skip":
        return f"run {record['run_id']}: no new events; {rejected}\n  decision: skip - {record['reason']}"
    lines = [
        f"run {record['run_id']}: {d['events']} events, {d['positives']} positives, {d['users']} users, {d['items']} items",
        f"  new: {new['events']} events ({new.get('from_logs', 0)} from logs, {new.get('online_events', 0)} online "
        f"events, {new.get('online_engagements', 0)} online engagements), {new['users']} users, {new['items']} items; "
        f"{rejected}",
    ]
    ev = record["evaluation"]
    comparison = ev.get("comparison") or {}
    if comparison.get("detail"):
        lines.append(f"  production judged: {comparison['method']}: {comparison['detail']}")
    lines.append(f"  validation ({ev['protocol']}, {ev['evaluated_users']} users):")
    for name, res in ev["models"].items():
        m = res["metrics"]
        lines.append(
            f"    {name:<11} ndcg@10 {m['ndcg@10']:.4f}  recall@20 {m['recall@20']:.4f}  "
            f"hitrate@10 {m['hitrate@10']:.4f}  cov@100 {m['coverage@100']:.3f}"
        )
    lines.append(f"  decision: {record['decision']} {record['candidate']} -> {record.get('stage')}: {record['reason']}")
    if "service_reload" in record:
        r = record["service_reload"]
        lines.append(f"  service reload: {'ok' if r['ok'] else 'FAILED'} ({r.get('status') or r.get('error')})")
    lines.append(f"  tracking: {record['tracking']['status']}")
    lines.append(f"  seconds: {record['seconds']}")
    return "\n".join(lines)


def summary_table(records: list[dict[str, Any]]) -> str:
    rows = [
        "| run | new events | new users | new items | candidate NDCG@10 | production NDCG@10 | change | decision | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(records):
        new = r["data"]["new"]
        models = r.get("evaluation", {}).get("models", {})
        cand = models.get("candidate", {}).get("metrics", {}).get(PRIMARY_METRIC)
        prod = models.get("production", {}).get("metrics", {}).get(PRIMARY_METRIC)
        change = f"{(cand - prod) / prod * 100:+.1f}%" if cand is not None and prod else "-"
        rows.append(
            f"| {i} | {new['events']} | {new['users']} | {new['items']} | "
            f"{'-' if cand is None else f'{cand:.4f}'} | {'-' if prod is None else f'{prod:.4f}'} | {change} | "
            f"{r['decision']} | {r['seconds'].get('total', 0):.1f} |"
        )
    return "\n".join(rows)


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


def gate_label(gate: dict[str, Any] | None) -> str:
    """Where a version's gate figure comes from: ``candidate, run R, as-is, 40 users``."""
    if not gate:
        return "not gated (no retraining run has evaluated it)"
    users = f", {gate['users']} users" if gate.get("users") is not None else ""
    return f"{gate['role']} in run {gate['run_id']}, {gate['method']}{users}"


def format_list(rows: list[dict[str, Any]]) -> str:
    """The version table: number (``*`` marks production), id, stage, registration, decision, then the
    NDCG@10 of the latest gate evaluation the version took part in and which one (the same evaluation
    for a run's candidate and production; the training CLI's own held-out figures are in ``show``)."""
    header = f"{'#':>3}  {'version':<34} {'stage':<10} {'registered':<20} {'decision':<9} {'gate ndcg@10':>12}  gate evaluation"
    lines = [header]
    for r in rows:
        mark = "*" if r["is_production"] else " "
        gate = r.get("gate")
        ndcg = (gate or {}).get("metrics", {}).get("ndcg@10")
        lines.append(
            f"{r['number'] or '?':>3}{mark} {r['version']:<34} {r['stage']:<10} {r['registered_at'] or '-':<20} "
            f"{r['decision'] or '-':<9} {_fmt(ndcg):>12}  {gate_label(gate)}"
        )
    if len(lines) == 1:
        lines.append("(no versions registered)")
    return "\n".join(lines)
