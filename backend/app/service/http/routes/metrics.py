"""Online metrics from the logs (PaC, replay, traffic summary) and the Prometheus scrape endpoint.

The JSON endpoints read the database (plain ``def`` handlers, run in the thread pool); the
definitions are in ``app.store.online_metrics``. ``GET /metrics`` serves the registry set up by
``app.service.http.monitoring.install(app)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from app.service.http.deps import CurrentRuntimeDep, MonitoringDep, StoreDep
from app.service.http.fastpath import OrjsonResponse
from app.service.http.responses import field_error
from app.store import Store
from app.store.timeparse import parse_time

router = APIRouter(tags=["metrics"])

MAX_K = 1_000
MAX_WINDOW_HOURS = 24 * 366
DEFAULT_SUMMARY_SECONDS = 3_600

_TIME_HELP = "Unix seconds, YYYY-MM-DD (UTC midnight) or an ISO 8601 date-time"


def _time(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise field_error("query", name, str(exc)) from None


def _range(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    start_ts, end_ts = _time("start_ts", start), _time("end_ts", end)
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise field_error("query", "end_ts", f"end_ts ({end_ts:g}) must be after start_ts ({start_ts:g})")
    return start_ts, end_ts


def _actions(store: Store, value: str | None) -> frozenset[str] | None:
    if value is None or not value.strip():
        return None
    names = frozenset(a.strip().lower() for a in value.split(",") if a.strip())
    unknown = sorted(names - store.action_types)
    if unknown:
        raise field_error(
            "query",
            "action_types",
            f"unknown action type(s) {', '.join(unknown)}; known: " + ", ".join(sorted(store.action_types)),
        )
    return names


_K = Query(10, ge=1, le=MAX_K, description="top-k cut of each logged list")
_WINDOW = Query(24.0, gt=0, le=MAX_WINDOW_HOURS, description="hours after the impression an action still counts")
_ENGINE = Query(None, max_length=64, description="only lists from this engine (nn, baseline, popular, ...)")
_PLATFORM = Query(None, max_length=64, description="only lists shown on this platform")
_ACTIONS = Query(
    None,
    max_length=512,
    description="comma-separated action types that count (default: every "
    "action with a positive training weight, i.e. not dislike/skip)",
)


@dataclass
class ListsQuery:
    """The query of ``/metrics/pac`` and ``/metrics/replay``: which logged lists, and what counts as a hit."""

    start_ts: str | None = Query(None, description=f"lists shown at or after this time; {_TIME_HELP}")
    end_ts: str | None = Query(None, description=f"lists shown before this time; {_TIME_HELP}")
    k: int = _K
    window_hours: float = _WINDOW
    engine: str | None = _ENGINE
    platform: str | None = _PLATFORM
    action_types: str | None = _ACTIONS

    def arguments(self, store: Store) -> dict[str, Any]:
        """``Store.pac`` / ``Store.replay`` arguments, checked (422 naming the bad field)."""
        start, end = _range(self.start_ts, self.end_ts)
        return {
            "start_ts": start,
            "end_ts": end,
            "k": self.k,
            "window_hours": self.window_hours,
            "engine": self.engine or None,
            "platform": self.platform or None,
            "action_types": _actions(store, self.action_types),
        }


@router.get("/metrics/pac", summary="PaC (Precision at Curation) of the logged lists")
def get_pac(q: Annotated[ListsQuery, Depends()], store: StoreDep) -> OrjsonResponse:
    """Per list: distinct top-k items engaged through it within ``window_hours`` / min(k, list length).
    ``pac_mean`` averages lists, ``pac_micro`` = ``total_hits`` / ``total_recommended``; also by engine
    and by model version. Engagements on items outside the list never count."""
    return OrjsonResponse(store.pac(**q.arguments(store)))


@router.get("/metrics/replay", summary="Replay evaluation of the logged lists against later interactions")
def get_replay(q: Annotated[ListsQuery, Depends()], store: StoreDep) -> OrjsonResponse:
    """Realised Precision@K, HitRate@K and a CTR proxy per engine and model version: a list hits an item
    when its user interacted with it (online event or engagement) within the window after seeing it."""
    return OrjsonResponse(store.replay(**q.arguments(store)))


@router.get("/metrics/summary", summary="Traffic, latency, coverage and fallback rate")
def get_summary(
    store: StoreDep,
    rt: CurrentRuntimeDep,
    since: str | None = Query(None, description=f"start of the period (default: one hour ago); {_TIME_HELP}"),
    until: str | None = Query(None, description=f"end of the period (default: now); {_TIME_HELP}"),
) -> OrjsonResponse:
    """Requests (logged lists), requests per minute, unique users, latency mean/p50/p95/p99 overall and
    per endpoint, catalogue coverage (share of the serving catalogue recommended at least once) and
    fallback rate."""
    now = time.time()
    until_ts = _time("until", until)
    if until_ts is None:
        until_ts = now
    since_ts = _time("since", since)
    if since_ts is None:
        since_ts = until_ts - DEFAULT_SUMMARY_SECONDS
    if until_ts <= since_ts:
        raise field_error("query", "since", f"since ({since_ts:g}) must be before until ({until_ts:g})")
    catalogue = rt.catalogue.records if rt is not None else None
    return OrjsonResponse(store.summary(since_ts, until_ts, catalogue=catalogue))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def get_prometheus(monitoring: MonitoringDep) -> Response:
    """Request counter and latency histogram per route, impressions and fallbacks per endpoint and
    engine, impression writer backlog, and the served model version (``recommender_model_info``)."""
    if monitoring is None:
        return OrjsonResponse(
            {"detail": "metrics are not installed: call app.service.http.monitoring.install(app)"}, status_code=503
        )
    return Response(monitoring.render(), media_type=CONTENT_TYPE_LATEST)
