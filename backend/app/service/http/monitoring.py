"""Prometheus metrics of the service: requests, latency, fallbacks, model version.

``install(app)`` (called by ``create_app``) adds a pure ASGI middleware (a few microseconds per request, no body buffering) that
counts requests and observes their latency per route template (``/recommendations/{user_id}``, never
the raw path, so label cardinality stays bounded). Impression and fallback counts come from the
store's in-process counters and the model version from ``app.state.runtime``, both read when
``GET /metrics`` is scraped, so the service does not have to call anything on reload.
Each app gets its own ``CollectorRegistry`` (several apps in one test process do not collide).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "<unmatched>"


class _StateCollector(Collector):
    """Reads the store's impression counters and the serving model at scrape time."""

    def __init__(self, state: Any):
        self.state = state

    def collect(self) -> Iterator[Any]:
        impressions = CounterMetricFamily(
            "recommender_impressions",
            "Recommendation lists logged, by endpoint and engine",
            labels=["endpoint", "engine"],
        )
        fallbacks = CounterMetricFamily(
            "recommender_fallbacks",
            "Lists not from the personalised model (fallback_used), by endpoint and engine",
            labels=["endpoint", "engine"],
        )
        backlog = GaugeMetricFamily("recommender_impression_backlog", "Impressions queued, not yet written")
        dropped = CounterMetricFamily("recommender_impressions_dropped", "Impressions lost (queue full or write error)")
        store = getattr(self.state, "store", None)
        if store is not None:
            counts = store.impression_counts_snapshot()
            totals: dict[tuple[str, str], list[int]] = {}
            for (endpoint, engine, is_fallback), n in counts.items():
                t = totals.setdefault((endpoint, engine), [0, 0])
                t[0] += n
                t[1] += n if is_fallback else 0
            for (endpoint, engine), (n, fb) in sorted(totals.items()):
                impressions.add_metric([endpoint, engine], n)
                fallbacks.add_metric([endpoint, engine], fb)
            backlog.add_metric([], store.writer.backlog())
            dropped.add_metric([], store.writer.dropped)
        yield impressions
        yield fallbacks
        yield backlog
        yield dropped
        info = GaugeMetricFamily(
            "recommender_model_info", "The model version being served (value 1)", labels=["version", "model_type"]
        )
        runtime = getattr(self.state, "runtime", None)
        if runtime is not None:
            meta = getattr(runtime, "metadata", None) or {}
            info.add_metric([str(getattr(runtime, "version", "")), str(meta.get("model_type", ""))], 1)
        yield info


class Monitoring:
    """The app's metrics registry and instruments."""

    def __init__(self, state: Any | None = None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recommender_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recommender_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        if state is not None:
            self.registry.register(_StateCollector(state))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # label lookups cost more than the update: do them once per label set
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and records it under its route template."""

    def __init__(self, app: ASGIApp, monitoring: Monitoring):
        self.app = app
        self.monitoring = monitoring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # the template without convertors: ``/items/{item_id}`` for ``/items/{item_id:id}``
            path = getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED
            self.monitoring.observe(scope["method"], path, status, time.perf_counter() - started)


def install(app: Any) -> Monitoring:
    """Add the metrics middleware to a FastAPI app (call in ``create_app``, before it starts)."""
    monitoring = Monitoring(app.state)
    app.state.monitoring = monitoring
    app.add_middleware(MetricsMiddleware, monitoring=monitoring)
    return monitoring
