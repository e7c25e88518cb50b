"""``POST /events/engagement`` and ``POST /events``: what users did, stored before the answer.

The write runs on the store's own small thread pool (``Store.run``) and is committed before the 2xx
goes out, so an acknowledged row survives a crash of the server process. One POST is one
transaction. An optional ``Idempotency-Key`` header makes a retried POST store nothing twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from app.data.schema import BadEvent, EventIn, check_event
from app.service.http.deps import OnlineDep, StoreDep
from app.service.http.fastpath import OrjsonResponse
from app.service.http.guards import NDJSON_TYPES
from app.service.http.response_models import EngagementResponse, EventsResponse
from app.service.http.responses import field_error
from app.store import Conflict, KeyReused, NotFound, UnknownList
from app.store.ids import issued_at
from app.store.validation import EngagementIn, check_id, check_short

router = APIRouter(tags=["events"])

#: How long past the impression flush interval an engagement waits for a list another worker served.
#: Generous because a loaded machine delays that worker's writer (a second was once too short with 64
#: clients on 4 workers over PostgreSQL); only a just-made id that never gets written pays it.
LIST_WAIT_SECONDS = 5.0
#: Larger batches should be split by the client (or loaded with the seed command).
MAX_EVENTS_PER_POST = 10_000

# EventIn's docstring is for developers; /docs gets a sentence for API users.
_EVENT_SCHEMA = {
    **{k: v for k, v in EventIn.model_json_schema().items() if k != "$defs"},
    "description": "One interaction event, in the format of the training log.",
}
_KEY_HEADER = Header(
    default=None,
    alias="Idempotency-Key",
    max_length=128,
    description="optional; a retried POST with the same key stores nothing twice",
)
#: A repeated Idempotency-Key is answered 200 with the first answer (``duplicate: true``), not 201.
_REPLAY = (
    "A repeated `Idempotency-Key` with the same body: nothing is stored again; the answer is the first one, "
    "with `duplicate: true`."
)


@router.post(
    "/events/engagement",
    status_code=201,
    response_model=EngagementResponse,
    summary="Report what a user did with an item of a recommended list",
    responses={
        200: {"model": EngagementResponse, "description": _REPLAY},
        404: {
            "description": "Unknown `recset_id` (a list made a moment ago is waited for, up to a few seconds, as the "
            "server that made it may still be storing it), or a withdrawal of something never recorded."
        },
        422: {"description": "An invalid field, a placeholder value, or a user other than the list's."},
    },
)
async def post_engagement(
    body: EngagementIn,
    store: StoreDep,
    online: OnlineDep,
    idempotency_key: str | None = _KEY_HEADER,
) -> OrjsonResponse:
    """Stores the engagement (committed before the answer). An item that was not in the list is stored
    with ``in_list: false`` and does not count as a hit; ``dislike``/``skip`` never count as hits."""
    if body.action_type not in store.action_types:
        raise field_error(
            "body",
            "action_type",
            f"unknown action_type {body.action_type!r}; known: " + ", ".join(sorted(store.action_types)),
        )
    args = (body.recset_id, body.user_id, body.item_id, body.action_type, body.platform, body.ts)
    # Another worker may have served the list and not written its impression yet (its writer flushes
    # every impression_flush_seconds): a list whose id was made less than that long ago, and
    # LIST_WAIT_SECONDS more, is waited for; an older or foreign id is a 404 at once. The id's time is
    # capped at now, so a made-up id dated in the future cannot hold the request longer.
    issued = min(issued_at(body.recset_id) or 0.0, time.time())
    deadline = issued + store.writer.flush_seconds + LIST_WAIT_SECONDS
    try:
        while True:
            try:
                result = await store.run(
                    store.record_engagement, *args, request_key=idempotency_key, withdraw=body.withdraw
                )
                break
            except UnknownList:
                if time.time() >= deadline:
                    raise
                await asyncio.sleep(0.05)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except Conflict as exc:
        raise field_error("body", exc.field, exc.message) from None
    except KeyReused as exc:
        raise field_error("header", "Idempotency-Key", str(exc)) from None
    if online is not None:
        online.invalidate([body.user_id])  # this user's next list, from this worker, reflects it at once
    return OrjsonResponse(result, status_code=200 if result["duplicate"] else 201)


def _decode(raw: bytes, content_type: str) -> list[Any]:
    """A JSON object, a JSON array, ``{"events": [...]}``, or JSON Lines -> list of decoded objects."""
    if not raw.strip():
        raise field_error("body", "events", "empty body: send one event, a JSON array of events, or JSON Lines")
    if any(t in content_type for t in NDJSON_TYPES):
        out = []
        for n, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise field_error("body", ["line", n], f"invalid JSON: {exc}") from None
        return out
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise field_error(
            "body", "events", f"invalid JSON: {exc} (for JSON Lines use Content-Type: application/x-ndjson)"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return data["events"]
    return data if isinstance(data, list) else [data]


def validate_events(objs: list[Any], event_types: frozenset[str]) -> list[tuple]:
    """The JSONL reader's rules (``app.data.schema.check_event``, the same as ``EventIn``) plus sane
    lengths and no placeholders; every error names the event's index in the batch."""
    errors: list[dict[str, Any]] = []
    rows = []
    for n, obj in enumerate(objs):
        try:
            user_id, item_id, event, ts, rating, weight, platform = check_event(obj, event_types)
            user_id, item_id = check_id("user_id", user_id), check_id("item_id", item_id)
            platform = check_short("platform", platform)
        except BadEvent as exc:
            errors.append({"type": exc.code, "loc": ("body", n), "msg": exc.message, "input": obj})
        except ValueError as exc:
            errors.append({"type": "value_error", "loc": ("body", n), "msg": str(exc), "input": obj})
        else:
            rows.append((user_id, item_id, event, ts, rating, weight, platform))
        if len(errors) >= 20:  # enough to fix the client; do not echo a whole bad batch
            break
    if errors:
        raise RequestValidationError(errors)
    return rows


@router.post(
    "/events",
    status_code=201,
    response_model=EventsResponse,
    summary="Store interaction events (one, a batch, or JSON Lines) for the next training run",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"anyOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA}]},
                    "example": [
                        {"user_id": "42", "item_id": "50", "event": "watch", "ts": 1767225600, "platform": "ios"}
                    ],
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
    responses={
        200: {"model": EventsResponse, "description": _REPLAY},
        422: {"description": "An invalid event (its index and the reason): nothing of the batch is stored."},
        # the body size limit is added with the other guards' answers (``openapi``)
        413: {"description": f"More than {MAX_EVENTS_PER_POST} events in one request."},
    },
)
async def post_events(
    request: Request, store: StoreDep, online: OnlineDep, idempotency_key: str | None = _KEY_HEADER
) -> OrjsonResponse:
    """Same format as the JSONL log (``user_id``, ``item_id``, ``event``, ``ts``, optional ``rating``,
    ``weight``, ``platform``). All-or-nothing: one bad event rejects the batch with its index and reason.
    New users and items are recorded (``source: online``); the answer lists them."""
    raw = await request.body()  # at most RECOMMENDER_MAX_EVENTS_BODY_BYTES (``limits.BodyLimit``)
    objs = _decode(raw, request.headers.get("content-type", "application/json").lower())
    if not objs:
        raise field_error("body", "events", "no events in the body")
    if len(objs) > MAX_EVENTS_PER_POST:
        raise HTTPException(
            status_code=413, detail=f"{len(objs)} events in one POST; the maximum is {MAX_EVENTS_PER_POST}"
        )
    rows = (
        validate_events(objs, store.action_types)
        if len(objs) <= 100
        else await run_in_threadpool(validate_events, objs, store.action_types)
    )
    try:
        result = await store.run(store.record_events, rows, request_key=idempotency_key)
    except KeyReused as exc:
        raise field_error("header", "Idempotency-Key", str(exc)) from None
    if online is not None:
        online.invalidate({r[0] for r in rows})
    return OrjsonResponse(result, status_code=200 if result["duplicate"] else 201)
