"""The service's ``create_app`` with a real store: a list is logged, engaged with, counted and documented."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both dialects: tests/store


@pytest.fixture
def service(tmp_path: Path, db_url: str):
    from app.config import Settings
    from app.service.http.app import create_app
    from tests.service.modeldir import write_model_dir

    model_dir = write_model_dir(tmp_path / "model", version="store-test-v1")
    settings = Settings(model_dir=model_dir, data_dir=tmp_path, database_url=db_url, impression_flush_seconds=0.05)
    with TestClient(create_app(settings)) as c:
        yield c


def test_through_create_app(service: TestClient) -> None:
    """A recommendation is logged; its engagement counts in PaC; /metrics shows the model version."""
    rec = service.get("/recommendations/u1", params={"limit": 3})
    assert rec.status_code == 200, rec.text
    body = rec.json()
    first = body["items"][0]["item_id"]
    r = service.post(
        "/events/engagement",
        json={
            "recset_id": body["recset_id"],
            "user_id": "u1",
            "item_id": first,
            "action_type": "click",
            "platform": "web",
        },
    )
    assert r.status_code == 201, r.text
    pac = service.get("/metrics/pac", params={"k": 3, "start_ts": time.time() - 60}).json()
    assert pac["impressions"] == 1 and pac["total_hits"] == 1
    assert pac["by_model_version"] == {
        "store-test-v1": {
            "impressions": 1,
            "pac_mean": pytest.approx(1 / 3),
            "pac_micro": pytest.approx(1 / 3),
            "total_hits": 1,
            "total_recommended": 3,
        }
    }
    summary = service.get("/metrics/summary").json()
    assert summary["requests"] == 1 and summary["catalogue_size"] == 12  # the serving model's catalogue
    assert summary["coverage"] == pytest.approx(3 / 12)
    text = service.get("/metrics").text
    assert "recommender_model_info{model_type=" in text and 'version="store-test-v1"' in text
    model = service.get("/debug/model").json()["model"]
    assert model["model_version"] == "store-test-v1" and model["metadata"]["item_ids"] == {"count": 12}
    # every kind of list is logged once: /similar and /popular too
    assert service.post("/similar", json={"item_id": first, "k": 2}).status_code == 200
    assert service.get("/popular", params={"k": 2}).status_code == 200
    logged = service.get("/debug/impressions").json()
    assert logged["total"] == 3 and {r["endpoint"] for r in logged["rows"]} >= {"/similar", "/popular"}
    assert service.post(
        "/events", json={"user_id": "brand-new", "item_id": "a1", "event": "click", "ts": int(time.time())}
    ).json()["new_user_ids"] == ["brand-new"]


def test_openapi_documents_the_store_endpoints(store_client: TestClient) -> None:
    paths = store_client.get("/openapi.json").json()["paths"]
    for path in (
        "/events",
        "/events/engagement",
        "/metrics/pac",
        "/metrics/replay",
        "/metrics/summary",
        "/metrics",
        "/debug/users",
        "/debug/items",
        "/debug/interactions",
        "/debug/impressions",
        "/debug/engagements",
        "/debug/model",
    ):
        assert path in paths, path
    body = paths["/events"]["post"]["requestBody"]["content"]
    assert "application/x-ndjson" in body and body["application/json"]["example"][0]["event"] == "watch"


def test_the_service_applies_its_retention_setting_at_start_up(tmp_path: Path, db_url: str) -> None:
    """``RECOMMENDER_RETENTION_DAYS``: lists older than that are gone once the service is up, newer stay."""
    import uuid

    from app.config import Settings
    from app.service.http.app import create_app
    from app.store import Store
    from app.store.retention import prune_due
    from tests.service.modeldir import write_model_dir

    now = time.time()
    store = Store.from_url(db_url).start()
    store.log_impression(str(uuid.uuid4()), "u1", "/recommendations", "nn", "v1", ["a"], [1.0], ts=now - 40 * 86_400)
    store.log_impression(str(uuid.uuid4()), "u1", "/recommendations", "nn", "v1", ["a"], [1.0], ts=now - 86_400)
    assert store.flush(5)
    model_dir = write_model_dir(tmp_path / "model", version="store-test-v1")
    settings = Settings(model_dir=model_dir, data_dir=tmp_path, database_url=db_url, retention_days=30)
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 10
        while store.retained_from() is None:
            assert time.monotonic() < deadline, "the service did not prune at start-up"
            time.sleep(0.05)
    assert store.pac()["impressions"] == 1
    assert not prune_due(store.retained_from(), 30, time.time())  # the next worker or check does nothing
    assert prune_due(store.retained_from(), 30, time.time() + 2 * 86_400)  # a day later it prunes again
    store.close()
