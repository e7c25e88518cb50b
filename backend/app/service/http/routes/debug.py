"""Read-only views of the database and the serving model, for operators; every list is paginated.

Each list answers ``{total, limit, offset, rows}``; ``limit`` is 1..1000 (default 50).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query

from app.service.http.deps import CurrentRuntimeDep, OnlineDep, StoreDep
from app.service.http.fastpath import OrjsonResponse
from app.service.http.response_models import Page
from app.service.http.schemas import Id
from app.store import Store
from app.store import schema as t
from app.store.queries import MAX_PAGE

router = APIRouter(prefix="/debug", tags=["debug"])

_LIMIT = Query(50, ge=1, le=MAX_PAGE)
_OFFSET = Query(0, ge=0, le=10**9)
_SOURCE = Query(None, description="seed: from the training log; online: first seen in POST /events")
Source = Literal["seed", "online"]
_USER = Query(None, min_length=1, max_length=t.MAX_ID_LENGTH)


def _page(
    store: Store, table: sa.Table, where: list[Any], order_by: list[Any], limit: int, offset: int
) -> OrjsonResponse:
    return OrjsonResponse(store.page(table, where=where, order_by=order_by, limit=limit, offset=offset))


@router.get("/users", response_model=Page, summary="Users (seeded and first seen online)")
def debug_users(
    store: StoreDep, source: Source | None = _SOURCE, limit: int = _LIMIT, offset: int = _OFFSET
) -> OrjsonResponse:
    where = [t.users.c.source == source] if source else []
    return _page(store, t.users, where, [t.users.c.user_id], limit, offset)


@router.get("/items", response_model=Page, summary="Items (seeded catalogue and first seen online)")
def debug_items(
    store: StoreDep, source: Source | None = _SOURCE, limit: int = _LIMIT, offset: int = _OFFSET
) -> OrjsonResponse:
    where = [t.items.c.source == source] if source else []
    return _page(store, t.items, where, [t.items.c.item_id], limit, offset)


@router.get("/interactions", response_model=Page, summary="The seeded training log, optionally of one user")
def debug_interactions(
    store: StoreDep, user_id: str | None = _USER, limit: int = _LIMIT, offset: int = _OFFSET
) -> OrjsonResponse:
    c = t.interactions.c
    where = [c.user_id == user_id] if user_id else []
    return _page(store, t.interactions, where, [c.ts.desc(), c.id.desc()], limit, offset)


@router.get("/online/{user_id:id}", summary="A user's online history as serving uses it")
async def debug_online(
    user_id: Annotated[Id, Path(description="The user's id.")],
    store: StoreDep,
    online: OnlineDep,
    rt: CurrentRuntimeDep,
) -> OrjsonResponse:
    """What the user did since the served model's training data ended (events and active engagements
    newer than the rows it was trained through), folded as their next list uses it."""
    if online is None:
        return OrjsonResponse({"user_id": user_id, "enabled": False, "detail": "the online history is turned off"})
    if rt is not None:
        online.use_cutoff(rt.online_through)
    entry = online.cached(user_id)
    cached = entry is not None
    if entry is None:
        entry = await store.run(online.load, user_id)
    return OrjsonResponse(
        {
            "user_id": user_id,
            "enabled": True,
            "cached": cached,
            "after": {"events_id": online.cutoff[0], "engagements_id": online.cutoff[1]},
            "events": entry.events,
            "positives": [{"item_id": i, "weight": w} for i, w in entry.positives.items()],
            "seen": list(entry.seen),
            "negatives": list(entry.negatives),
            "known_to_model": rt is not None and rt.user_index(user_id) is not None,
        }
    )


@router.get("/events", response_model=Page, summary="Events received online (POST /events), optionally of one user")
def debug_events(
    store: StoreDep, user_id: str | None = _USER, limit: int = _LIMIT, offset: int = _OFFSET
) -> OrjsonResponse:
    c = t.events.c
    where = [c.user_id == user_id] if user_id else []
    return _page(store, t.events, where, [c.ts.desc(), c.id.desc()], limit, offset)


@router.get(
    "/impressions", response_model=Page, summary="Logged recommendation lists, newest first, optionally of one user"
)
def debug_impressions(
    store: StoreDep, user_id: str | None = _USER, limit: int = _LIMIT, offset: int = _OFFSET
) -> OrjsonResponse:
    store.flush(5.0)  # show what was just served
    c = t.rec_impressions.c
    where = [c.user_id == user_id] if user_id else []
    return _page(store, t.rec_impressions, where, [c.ts.desc()], limit, offset)


@router.get("/engagements", response_model=Page, summary="Engagements, newest first, optionally of one list")
def debug_engagements(
    store: StoreDep,
    recset_id: str | None = Query(None, min_length=1, max_length=64),
    user_id: str | None = _USER,
    limit: int = _LIMIT,
    offset: int = _OFFSET,
) -> OrjsonResponse:
    c = t.engagements.c
    where = []
    if recset_id:
        where.append(c.recset_id == recset_id.lower())
    if user_id:
        where.append(c.user_id == user_id)
    return _page(store, t.engagements, where, [c.ts.desc(), c.id.desc()], limit, offset)


#: Metadata fields that hold one entry per user or item: reported as counts, not listed.
_BULKY = ("user_ids", "item_ids")


@router.get("/model", summary="The serving model and the state of the store")
def debug_model(store: StoreDep, runtime: CurrentRuntimeDep) -> OrjsonResponse:
    """Model metadata (hyperparameters, data summary, metrics, library versions, file hashes) with the
    per-user/per-item lists reduced to counts, the store's table sizes and its impression writer."""
    model: dict[str, Any] | None = None
    if runtime is not None:
        meta = dict(runtime.metadata)
        for key in _BULKY:
            if isinstance(meta.get(key), list):
                meta[key] = {"count": len(meta[key])}
        model = {**runtime.ready_info(), "metadata": meta}
    tables = {
        table.name: store.count(table)
        for table in (t.users, t.items, t.interactions, t.events, t.rec_impressions, t.engagements)
    }
    return OrjsonResponse(
        {
            "model": model,
            "store": {
                "dialect": store.dialect,
                "tables": tables,
                "impressions_queued": store.writer.backlog(),
                "impressions_written": store.writer.written,
                "impressions_dropped": store.writer.dropped,
            },
        }
    )
