"""Catalogue endpoints: one item's details, and title search for pickers in a UI."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.service.core.catalogue import UnknownGenre
from app.service.http.deps import RuntimeDep, StoreDep, check_k
from app.service.http.fastpath import OrjsonResponse
from app.service.http.response_models import ERROR_RESPONSES, ItemDetails, SearchResponse
from app.service.http.responses import ApiError, field_error
from app.service.http.schemas import Id, ItemsQuery

router = APIRouter(tags=["items"])

ItemIdPath = Annotated[Id, Path(description="The item's id.", examples=["50"])]


@router.get(
    "/items/{item_id:id}",  # any id, "/" included (``schemas.IdConvertor``)
    response_model=ItemDetails,
    responses={
        **ERROR_RESPONSES,
        404: {
            "description": "Not in the catalogue or the model.",
            "content": {"application/json": {"example": {"detail": "item 'x' is not in the catalogue"}}},
        },
    },
    summary="One item: title, year, genres, popularity, average rating",
)
async def item_details(item_id: ItemIdPath, rt: RuntimeDep, store: StoreDep) -> OrjsonResponse:
    details = rt.item_details(item_id)
    if details is None:
        online = await asyncio.to_thread(store.online_items)
        if item_id in online:
            raise ApiError(
                404,
                f"item {item_id!r} appears only in events logged since the model was trained; "
                "it is not in the catalogue yet",
                item_id=item_id,
            )
        raise ApiError(404, f"item {item_id!r} is not in the catalogue", item_id=item_id)
    return OrjsonResponse(details)


@router.get(
    "/items",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    summary="Search the catalogue by title (and genre)",
    description="Case-insensitive substring match on titles; titles that start with the query first, then by "
    "popularity. Without `query`, the most popular items (of `genre`, if given).",
)
async def search_items(request: Request, q: Annotated[ItemsQuery, Query()], rt: RuntimeDep) -> OrjsonResponse:
    check_k(request, q.limit, "query", "limit")
    try:
        items, total = rt.catalogue.search(q.query, q.genre, q.limit)
    except UnknownGenre as exc:
        raise field_error("query", "genre", str(exc)) from None
    return OrjsonResponse({"query": q.query, "genre": q.genre, "total": total, "items": items})
