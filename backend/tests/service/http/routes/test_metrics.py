"""``GET /metrics/pac``, ``/metrics/replay``, ``/metrics/summary`` and the Prometheus text, against the store."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from app.store import Store
from tests.store import scenario as sc
from tests.store.scenario import DAY, T0

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both dialects: tests/store


def _fields(resp) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in resp.json()["detail"]}


def test_metrics_endpoints_match_the_store(store_client: TestClient, store: Store) -> None:
    sc.load(store)
    r = store_client.get(
        "/metrics/pac", params={"start_ts": "2026-01-01", "end_ts": T0 + DAY, "k": 3, "window_hours": 24}
    )
    assert r.status_code == 200
    pac = r.json()
    assert pac["pac_mean"] == pytest.approx(6 / 24) and pac["pac_micro"] == pytest.approx(3 / 11)
    assert set(pac["by_engine"]) == {"nn", "popular"} and set(pac["by_model_version"]) == {"v1", "v2"}
    r = store_client.get(
        "/metrics/pac",
        params={
            "start_ts": T0,
            "end_ts": T0 + DAY,
            "k": 3,
            "engine": "nn",
            "platform": "web",
            "action_types": "click,like",
        },
    )
    assert r.json()["pac_mean"] == pytest.approx(1 / 6)  # A: i2 clicked -> 1/3; C: only an add_to_playlist -> 0
    rep = store_client.get("/metrics/replay", params={"start_ts": T0, "end_ts": T0 + DAY, "k": 3}).json()
    assert rep["precision_at_k"] == pytest.approx(13 / 24) and rep["ctr"] == pytest.approx(3 / 4)
    summ = store_client.get("/metrics/summary", params={"since": T0, "until": T0 + DAY}).json()
    assert summ["requests"] == 5 and summ["coverage"] == pytest.approx(0.6)
    assert summ["latency_ms"]["p95"] == pytest.approx(48)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/metrics/pac", {"k": 0}, "k"),
        ("/metrics/pac", {"k": 1001}, "k"),
        ("/metrics/pac", {"window_hours": 0}, "window_hours"),
        ("/metrics/pac", {"start_ts": "last tuesday"}, "start_ts"),
        ("/metrics/pac", {"start_ts": T0 + 10, "end_ts": T0}, "end_ts"),
        ("/metrics/pac", {"action_types": "click,teleport"}, "action_types"),
        ("/metrics/replay", {"end_ts": "-5"}, "end_ts"),
        ("/metrics/summary", {"since": T0 + 10, "until": T0}, "since"),
        ("/debug/users", {"limit": 0}, "limit"),
        ("/debug/users", {"source": "elsewhere"}, "source"),
    ],
)
def test_metrics_validation(store_client: TestClient, path: str, params: dict, field: str) -> None:
    r = store_client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert field in _fields(r)


def test_prometheus_text(store_client: TestClient, store: Store) -> None:
    store.log_impression(str(uuid.uuid4()), "u1", "/popular", "popular", "v1", ["a"], [1.0], is_fallback=True)
    store.log_impression(str(uuid.uuid4()), "u1", "/popular", "popular", "v1", ["a"], [1.0], is_fallback=False)
    store_client.get("/debug/users")
    store_client.get("/debug/users")
    store_client.get("/no/such/path")
    text = store_client.get("/metrics").text
    assert 'recommender_http_requests_total{method="GET",route="/debug/users",status="200"} 2.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'recommender_http_request_duration_seconds_count{route="/debug/users"} 2.0' in text
    assert 'recommender_fallbacks_total{endpoint="/popular",engine="popular"} 1.0' in text
    assert 'recommender_impressions_total{endpoint="/popular",engine="popular"} 2.0' in text
