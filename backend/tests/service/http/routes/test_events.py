"""``POST /events/engagement`` and ``POST /events``: validation, 404/422, idempotency, batch forms and limits."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from app.store import Store
from app.store import schema as t
from tests.store.scenario import T0

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both dialects: tests/store


def _imp(store: Store, user: str = "u1") -> str:
    rid = str(uuid.uuid4())
    store.log_impression(rid, user, "/recommendations", "nn", "v1", ["a", "b", "c"], [3, 2, 1], platform="web")
    return rid


def _fields(resp) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in resp.json()["detail"]}


def test_engagement_created(store_client: TestClient, store: Store) -> None:
    rid = _imp(store)
    r = store_client.post(
        "/events/engagement",
        json={
            "recset_id": rid.upper(),
            "user_id": "u1",
            "item_id": "b",
            "action_type": "Click",
            "ts": "2026-01-01T00:00:00Z",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["recset_id"] == rid and body["in_list"] and body["rank"] == 2 and body["ts"] == T0
    row = store.page(t.engagements)["rows"][0]
    assert row["platform"] == "web" and row["action_type"] == "click"  # platform defaults to the list's


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"recset_id": "string"}, "recset_id", "placeholder"),
        ({"recset_id": "not-a-uuid"}, "recset_id", "not a UUID"),
        ({"user_id": "string"}, "user_id", "placeholder"),
        ({"item_id": "String "}, "item_id", "placeholder"),
        ({"item_id": ""}, "item_id", "empty"),
        ({"user_id": "x" * 129}, "user_id", "at most 128"),
        ({"action_type": "string"}, "action_type", "placeholder"),
        ({"action_type": "teleport"}, "action_type", "unknown action_type"),
        ({"platform": "string"}, "platform", "placeholder"),
        ({"ts": 0}, "ts", "ts=0 is a placeholder"),
        ({"ts": 1_767_225_600_000}, "ts", "milliseconds"),
        ({"ts": "yesterday"}, "ts", "not Unix seconds"),
        ({"user_id": None}, "user_id", "string or an integer"),
    ],
)
def test_engagement_validation(store_client: TestClient, store: Store, payload: dict, field: str, reason: str) -> None:
    body = {"recset_id": _imp(store), "user_id": "u1", "item_id": "a", "action_type": "click", **payload}
    r = store_client.post("/events/engagement", json=body)
    assert r.status_code == 422, r.text
    assert reason in _fields(r)[field]
    assert store.count(t.engagements) == 0


def test_engagement_unknown_recset_and_wrong_user(store_client: TestClient, store: Store) -> None:
    r = store_client.post(
        "/events/engagement",
        json={"recset_id": str(uuid.uuid4()), "user_id": "u1", "item_id": "a", "action_type": "click"},
    )
    assert r.status_code == 404 and "unknown recset_id" in r.json()["detail"]
    rid = _imp(store, user="u1")
    r = store_client.post(
        "/events/engagement", json={"recset_id": rid, "user_id": "u2", "item_id": "a", "action_type": "click"}
    )
    assert r.status_code == 422 and "shown to user 'u1'" in _fields(r)["user_id"]
    r = store_client.post("/events/engagement", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.timeout(30)
def test_engagement_waits_a_bounded_time_for_a_list_not_yet_written(
    store_client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A just-made id is waited for (another worker may still be writing its list), but only
    flush + LIST_WAIT_SECONDS: an id dated a year ahead is not waited for until then."""
    import time

    from app.service.http.routes import events
    from app.store.ids import new_recset_id

    monkeypatch.setattr(events, "LIST_WAIT_SECONDS", 0.5)
    body = {"user_id": "u1", "item_id": "a", "action_type": "click"}
    for ahead_s in (0, 365 * 86400):
        made = uuid.UUID(new_recset_id()).int  # its top 48 bits are the Unix time in milliseconds
        rid = str(uuid.UUID(int=made + (ahead_s * 1000 << 80)))
        start = time.monotonic()
        r = store_client.post("/events/engagement", json={"recset_id": rid, **body})
        waited = time.monotonic() - start
        assert r.status_code == 404 and "unknown recset_id" in r.json()["detail"]
        assert 0.5 <= waited < 5, f"{ahead_s=}: waited {waited:.2f} s"


def test_engagement_off_list_is_stored_and_flagged(store_client: TestClient, store: Store) -> None:
    rid = _imp(store)
    r = store_client.post(
        "/events/engagement", json={"recset_id": rid, "user_id": "u1", "item_id": "zz", "action_type": "like"}
    )
    assert r.status_code == 201 and r.json()["in_list"] is False and r.json()["counts_as_hit"] is False
    assert store_client.get("/metrics/pac").json()["total_hits"] == 0


def test_idempotency_header(store_client: TestClient, store: Store) -> None:
    rid = _imp(store)
    body = {"recset_id": rid, "user_id": "u1", "item_id": "a", "action_type": "click"}
    first = store_client.post("/events/engagement", json=body, headers={"Idempotency-Key": "abc"})
    again = store_client.post("/events/engagement", json=body, headers={"Idempotency-Key": "abc"})
    assert first.status_code == 201 and again.status_code == 200 and again.json()["duplicate"] is True
    ev = [{"user_id": "u1", "item_id": "x", "event": "view", "ts": T0}]
    assert store_client.post("/events", json=ev, headers={"Idempotency-Key": "e1"}).status_code == 201
    assert store_client.post("/events", json=ev, headers={"Idempotency-Key": "e1"}).status_code == 200
    assert store.count(t.engagements) == 1 and store.count(t.events) == 1


def test_an_idempotency_key_belongs_to_one_endpoint_and_one_body(store_client: TestClient, store: Store) -> None:
    """The same key on /events after /events/engagement used to replay the engagement's answer and store
    nothing; the same key with another batch was silently dropped."""
    rid = _imp(store)
    key = {"Idempotency-Key": "shared-key"}
    body = {"recset_id": rid, "user_id": "u1", "item_id": "a", "action_type": "click"}
    assert store_client.post("/events/engagement", json=body, headers=key).status_code == 201
    ev = [{"user_id": "u1", "item_id": "x", "event": "view", "ts": T0}]
    r = store_client.post("/events", json=ev, headers=key)
    assert r.status_code == 201 and r.json()["accepted"] == 1  # another endpoint: another key
    other = store_client.post("/events", json=[{**ev[0], "item_id": "y"}], headers=key)
    assert other.status_code == 422 and "different body" in other.text
    changed = store_client.post("/events/engagement", json={**body, "item_id": "b"}, headers=key)
    assert changed.status_code == 422 and "Idempotency-Key" in changed.text
    assert store.count(t.engagements) == 1 and store.count(t.events) == 1


def test_post_events_forms(store_client: TestClient, store: Store) -> None:
    one = {"user_id": 7, "item_id": "m1", "event": "watch", "ts": T0, "platform": "tv"}
    r = store_client.post("/events", json=one)
    assert r.status_code == 201 and r.json()["accepted"] == 1 and r.json()["new_user_ids"] == ["7"]
    r = store_client.post("/events", json=[one, {**one, "item_id": "m2", "ts": "2026-01-01T00:00:05"}])
    assert r.json()["accepted"] == 2 and r.json()["new_items"] == 1
    r = store_client.post("/events", json={"events": [{**one, "event": "rating", "rating": 4.5}]})
    assert r.json()["accepted"] == 1
    lines = (
        b'{"user_id": "8", "item_id": "m1", "event": "click", "ts": 1767225600}\n\n'
        b'{"user_id": "8", "item_id": "m3", "event": "like", "ts": 1767225601}\n'
    )
    r = store_client.post("/events", content=lines, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 201 and r.json()["accepted"] == 2
    assert store.count(t.events) == 6
    rows = store.page(t.events, where=[t.events.c.user_id == "8"], order_by=[t.events.c.ts])["rows"]
    assert [e["item_id"] for e in rows] == ["m1", "m3"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([{"user_id": "u", "item_id": "i", "event": "watch", "ts": 0}], "outside 1990-01-01"),
        ([{"user_id": "u", "item_id": "i", "event": "jump", "ts": T0}], "unknown event type"),
        ([{"user_id": "string", "item_id": "i", "event": "watch", "ts": T0}], "placeholder"),
        ([{"user_id": "u", "item_id": "i", "event": "rating", "ts": T0}], "needs a numeric rating"),
        ([{"user_id": "u", "item_id": "i", "event": "rating", "rating": 9, "ts": T0}], "outside 1-5"),
        ([{"user_id": "u", "event": "watch", "ts": T0}], "missing field"),
        ([42], "JSON object"),
        ([], "no events"),
    ],
)
def test_post_events_validation_is_all_or_nothing(
    store_client: TestClient, store: Store, body: list, reason: str
) -> None:
    good = {"user_id": "u", "item_id": "i", "event": "watch", "ts": T0}
    r = store_client.post("/events", json=[good, *body] if body else body)
    assert r.status_code == 422, r.text
    assert reason in r.json()["message"]
    if body:
        assert r.json()["detail"][0]["loc"] == ["body", 1]  # the index of the bad event in the batch
    assert store.count(t.events) == 0


def test_every_body_is_bounded_while_it_is_read(store_client: TestClient, store: Store) -> None:
    """Four concurrent 200 MB engagement posts used to take the process to 3.35 GB; a chunked body to
    /events was read whole before its 413."""
    big = b" " * (1_048_576 + 1)  # over RECOMMENDER_MAX_BODY_BYTES
    r = store_client.post("/events/engagement", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1048576 bytes" in r.json()["detail"]

    def chunks():
        for _ in range(20):
            yield b" " * 1_048_576  # 20 MiB in all, no Content-Length: chunked

    r = store_client.post("/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "16777216 bytes" in r.json()["detail"]
    ev = b'[{"user_id": "u", "item_id": "i", "event": "view", "ts": %d}]' % T0
    r = store_client.post("/events", content=ev + b" " * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 201  # /events takes batches: 16 MiB
    assert store.count(t.events) == 1


def test_post_events_limits(store_client: TestClient) -> None:
    r = store_client.post("/events", json=[{"user_id": "u", "item_id": "i", "event": "view", "ts": T0}] * 10_001)
    assert r.status_code == 413
    assert store_client.post("/events", content=b"", headers={"content-type": "application/json"}).status_code == 422
    r = store_client.post("/events", content=b'{"a":1}\n{bad', headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and "line.2" in r.json()["message"]
