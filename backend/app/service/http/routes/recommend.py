"""Recommendation endpoints: a user's list (three spellings), similar items, popular and trending.

These are the hot path, so they are ``DirectRoute``s that validate their own input (every workaround
is in ``fastpath``). Each handler is ``async`` (no thread pool), takes the runtime once (a reload
cannot change it mid-request), answers from ``core.strategies``, logs one impression through the
store's batched writer (a queue put; the database write happens off the request path) and
serialises once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request

from app.service.core import strategies
from app.service.core.catalogue import UnknownGenre
from app.service.core.filters import NO_FILTERS, Filters, parse_ids
from app.service.core.fitted import EngineUnavailable
from app.service.core.online import OnlineUser, OnlineView
from app.service.core.ranking import Result
from app.service.core.runtime import Runtime
from app.service.core.strategies import UnknownItem
from app.service.http.deps import get_online, get_runtime, get_settings, get_store, list_size
from app.service.http.fastpath import (
    DirectRoute,
    OrjsonResponse,
    json_body,
    parse_body,
    parse_path,
    parse_query,
    path_parameter,
    query_parameters,
)
from app.service.http.response_models import ERROR_RESPONSES, RecommendationResponse
from app.service.http.responses import ApiError, field_error
from app.service.http.schemas import (
    ID_ADAPTER,
    PopularQuery,
    RecommendationsPathQuery,
    RecommendationsQuery,
    RecommendRequest,
    SimilarRequest,
)
from app.store.ids import new_recset_id

router = APIRouter(tags=["recommendations"], route_class=DirectRoute)

_NOT_FOUND = {
    404: {
        "description": "The item is unknown to the model.",
        "content": {"application/json": {"example": {"detail": "item 'x' is unknown to the model and the catalogue"}}},
    }
}


def _respond(
    request: Request,
    rt: Runtime,
    result: Result,
    *,
    user_id: str | None,
    k: int,
    endpoint: str,
    platform: str | None,
    started: float,
    extra: dict[str, Any] | None = None,
) -> OrjsonResponse:
    """Build the body, log the impression (non-blocking) and serialise once."""
    recset_id = new_recset_id()
    body: dict[str, Any] = {
        "recset_id": recset_id,
        "user_id": user_id,
        "engine": result.engine,
        "requested_engine": result.requested_engine,
        "model_version": rt.version,
        "fallback_used": result.fallback_used,
        "strategy": result.strategy,
        "k": k,
        "total_candidates": result.total_candidates,
        "notes": result.notes,
        "unknown_seed_item_ids": result.unknown_seed_item_ids,
        "items": result.items,
    }
    if extra:
        body.update(extra)
    if user_id is not None and result.items:
        online = get_online(request)
        if online is not None and online.demote_after:
            online.record_shown(user_id, rt.version, rt.items.indices(result.item_ids))
    if get_settings(request).log_impressions:
        get_store(request).log_impression(
            recset_id,
            user_id,
            endpoint,
            result.engine,
            rt.version,
            result.item_ids,
            result.scores,
            platform=platform,
            is_fallback=result.fallback_used,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
    return OrjsonResponse(body)


async def online_entry(request: Request, rt: Runtime, user_id: str | None) -> OnlineUser | None:
    """What the user did since the model's training data ended (None: no user, or the online history is
    off). From this worker's cache; a user not in it is read from the store."""
    online = get_online(request)
    if online is None or user_id is None:
        return None
    online.use_cutoff(rt.online_through)
    entry = online.cached(user_id)
    if entry is None:
        entry = await asyncio.to_thread(online.load, user_id)
    return entry


async def online_view(request: Request, rt: Runtime, user_id: str | None) -> OnlineView | None:
    """The user's online history in the served model's item indices (None: nothing the model can use)."""
    entry = await online_entry(request, rt, user_id)
    return None if entry is None else get_online(request).view(user_id, entry, rt.version, rt.items.indices)


async def _user_is_new(request: Request, rt: Runtime, user_id: str | None, entry: OnlineUser | None) -> bool:
    """For users the model does not know: did events arrive for them since training? The online history
    already read says so; without it, the store records users first seen online."""
    if user_id is None or rt.user_index(user_id) is not None:
        return False
    if entry is not None:
        return not entry.empty
    return await asyncio.to_thread(get_store(request).is_online_user, user_id)


async def _recommend(
    request: Request,
    location: str,
    query: Any,
    *,
    user_id: str | None,
    endpoint: str,
    started: float,
    exclude_seen: bool = True,
    filters: Filters = NO_FILTERS,
    seed_item_ids: tuple[str, ...] = (),
    seed_genres: tuple[str, ...] = (),
) -> OrjsonResponse:
    """A user's list for any of the three spellings (``query``: the validated query or body)."""
    rt = get_runtime(request)
    k = list_size(request, query, location)
    engine = query.engine
    try:
        if engine != "auto":
            await rt.engines.ensure(engine)  # at once when it is fitted already
        entry = await online_entry(request, rt, user_id)
        online = None if entry is None else get_online(request).view(user_id, entry, rt.version, rt.items.indices)
        result = strategies.recommend(
            rt,
            user_id,
            k,
            engine,
            exclude_seen=exclude_seen,
            filters=filters,
            seed_item_ids=seed_item_ids,
            seed_genres=seed_genres,
            user_is_new=await _user_is_new(request, rt, user_id, entry),
            online=online,
            diversity=query.diversity,
        )
    except UnknownGenre as exc:
        raise field_error(location, exc.field, str(exc)) from None
    except EngineUnavailable as exc:
        raise field_error(location, "engine", str(exc)) from None
    return _respond(
        request, rt, result, user_id=user_id, k=k, endpoint=endpoint, platform=query.platform, started=started
    )


@router.get(
    "/recommendations/{user_id:id}",  # any id, "/" included (``schemas.IdConvertor``)
    response_model=RecommendationResponse,
    responses=ERROR_RESPONSES,
    summary="Top-k items for a user",
    description="Ranked items for the user, their training history excluded; unknown users get popular items "
    "(`fallback_used: true`). `diversity` above 0 trades score for variety (`notes` says so).",
    openapi_extra={
        "parameters": [
            path_parameter("user_id", ID_ADAPTER, "The user's id.", "196"),
            *query_parameters(RecommendationsPathQuery),
        ]
    },
)
async def recommendations_for_user(request: Request) -> OrjsonResponse:
    started = time.perf_counter()
    user_id = parse_path(request, "user_id", ID_ADAPTER)
    q = parse_query(request, RecommendationsPathQuery)
    return await _recommend(request, "query", q, user_id=user_id, endpoint="/recommendations", started=started)


@router.get(
    "/recommendations",
    response_model=RecommendationResponse,
    responses=ERROR_RESPONSES,
    summary="Top-k items for a user (query form)",
    description="Same as `GET /recommendations/{user_id}` with `user_id`, `k`, `engine` and `diversity` as query "
    "parameters.",
    openapi_extra={"parameters": query_parameters(RecommendationsQuery)},
)
async def recommendations(request: Request) -> OrjsonResponse:
    started = time.perf_counter()
    q = parse_query(request, RecommendationsQuery)
    return await _recommend(request, "query", q, user_id=q.user_id, endpoint="/recommendations", started=started)


@router.post(
    "/recommend",
    response_model=RecommendationResponse,
    responses=ERROR_RESPONSES,
    summary="Recommendations with filters, engine choice and cold-start seeds",
    description="Filters (`genres`, `year_min`/`year_max`, `exclude_items`) apply before the top-k cut; when fewer "
    "than `k` items match, the list is shorter and `total_candidates` says how many matched. Unknown "
    "users: `seed_item_ids` give items similar to the seeds, `seed_genres` popular items in those genres.",
    openapi_extra=json_body(RecommendRequest),
)
async def recommend(request: Request) -> OrjsonResponse:
    started = time.perf_counter()
    body = await parse_body(request, RecommendRequest)
    return await _recommend(
        request,
        "body",
        body,
        user_id=body.user_id,
        exclude_seen=body.exclude_seen,
        filters=Filters(tuple(body.genres), body.year_min, body.year_max, parse_ids(body.exclude_items)),
        seed_item_ids=parse_ids(body.seed_item_ids),
        seed_genres=tuple(body.seed_genres),
        endpoint="/recommend",
        started=started,
    )


@router.post(
    "/similar",
    response_model=RecommendationResponse,
    responses={**ERROR_RESPONSES, **_NOT_FOUND},
    summary="Items similar to an item",
    description="Items closest to `item_id` in the model's item embeddings (cosine), with the same filters as "
    "`/recommend`. An item the model does not know gets 404 with the reason.",
    openapi_extra=json_body(SimilarRequest),
)
async def similar(request: Request) -> OrjsonResponse:
    started = time.perf_counter()
    body = await parse_body(request, SimilarRequest)
    rt = get_runtime(request)
    k = list_size(request, body, "body")
    filters = Filters(tuple(body.genres), body.year_min, body.year_max, parse_ids(body.exclude_items))
    online = await online_view(request, rt, body.user_id) if body.exclude_seen else None
    args = dict(
        filters=filters, user_id=body.user_id, exclude_seen=body.exclude_seen, online=online, diversity=body.diversity
    )
    try:
        try:
            result = strategies.similar(rt, body.item_id, k, **args)
        except UnknownItem:
            online = await asyncio.to_thread(get_store(request).online_items)
            result = strategies.similar(rt, body.item_id, k, **args, item_is_new=body.item_id in online)
    except UnknownItem as exc:
        raise ApiError(404, exc.message, item_id=exc.item_id) from None
    except UnknownGenre as exc:
        raise field_error("body", exc.field, str(exc)) from None
    return _respond(
        request,
        rt,
        result,
        user_id=body.user_id,
        k=k,
        endpoint="/similar",
        platform=body.platform,
        started=started,
        extra={"item_id": body.item_id},
    )


@router.get(
    "/popular",
    response_model=RecommendationResponse,
    responses=ERROR_RESPONSES,
    summary="Most popular (or trending) items",
    description="Items by number of users with a positive interaction, optionally recency-weighted (`trending=true`), "
    "filtered by genre (repeat `genre` for any of several) and year range.",
    openapi_extra={"parameters": query_parameters(PopularQuery)},
)
async def popular(request: Request) -> OrjsonResponse:
    started = time.perf_counter()
    q = parse_query(request, PopularQuery)
    rt = get_runtime(request)
    k = list_size(request, q, "query")
    online = await online_view(request, rt, q.user_id) if q.exclude_seen else None
    try:
        result = strategies.popular(
            rt,
            k,
            filters=Filters(tuple(q.genre), q.year_min, q.year_max),
            trending=q.trending,
            user_id=q.user_id,
            exclude_seen=q.exclude_seen,
            online=online,
        )
    except UnknownGenre as exc:
        raise field_error("query", "genre", str(exc)) from None
    return _respond(
        request, rt, result, user_id=q.user_id, k=k, endpoint="/popular", platform=q.platform, started=started
    )
