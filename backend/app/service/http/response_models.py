"""Response shapes of the API, for /docs: the JSON the handlers build as plain dicts, with examples.

They document the answers and are never used to re-validate one (speed); ``ERROR_RESPONSES`` is the
``responses=`` every route declares for the error shapes it may return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RecommendedItem(BaseModel):
    item_id: str
    title: str
    genres: list[str]
    year: int | None
    score: float
    rank: int
    reasons: list[str] = Field(
        description='What produced the item: "similar to <title> you liked", "matches your genres", '
        '"popular in <genre>", "highly rated (4.3/5)", "trending", ...'
    )


class RecommendationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recset_id": "0b6f1c54-3f4e-4c2e-9d77-5d2f7f1f2a10",
                    "user_id": "196",
                    "engine": "nn",
                    "requested_engine": "auto",
                    "model_version": "20261122-0512-ab12cd",
                    "fallback_used": False,
                    "strategy": "personalised",
                    "k": 2,
                    "total_candidates": 1643,
                    "notes": [],
                    "unknown_seed_item_ids": [],
                    "items": [
                        {
                            "item_id": "50",
                            "title": "Star Wars (1977)",
                            "genres": ["Action", "Sci-Fi"],
                            "year": 1977,
                            "score": 4.21,
                            "rank": 1,
                            "reasons": ["similar to Return of the Jedi (1983) you liked"],
                        },
                        {
                            "item_id": "181",
                            "title": "Return of the Jedi (1983)",
                            "genres": ["Action", "Sci-Fi"],
                            "year": 1983,
                            "score": 3.97,
                            "rank": 2,
                            "reasons": ["similar to Star Wars (1977) you liked"],
                        },
                    ],
                }
            ]
        }
    )

    recset_id: str = Field(description="UUID of this list; engagements refer to it.")
    user_id: str | None
    engine: str = Field(description="Engine that actually produced the list.")
    requested_engine: str
    model_version: str
    fallback_used: bool = Field(
        description="True when the list did not come from the engine asked for "
        "(auto: the personalised model), or was filled from popular items."
    )
    strategy: Literal["personalised", "seed_items", "popular", "seed_genres", "similar_item", "trending"]
    k: int
    total_candidates: int = Field(
        description="Items that passed the filters and exclusions (the list is shorter than k "
        "only when this is smaller than k)."
    )
    notes: list[str] = Field(
        description="Why the list is what it is (unknown user, seeds ignored, fewer matches, ...)."
    )
    unknown_seed_item_ids: list[str]
    items: list[RecommendedItem]
    item_id: str | None = Field(None, description="/similar only: the query item.")


class ItemDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "item_id": "50",
                    "title": "Star Wars (1977)",
                    "genres": ["Action", "Sci-Fi"],
                    "year": 1977,
                    "in_model": True,
                    "popularity": 583,
                    "popularity_rank": 1,
                    "avg_rating": 4.358,
                }
            ]
        },
    )

    item_id: str
    title: str | None
    genres: list[str]
    year: int | None
    in_model: bool
    popularity: int = Field(description="Users with a positive interaction in the training data.")
    popularity_rank: int | None
    avg_rating: float | None = Field(description="Mean rating in the training data; null when unknown.")


class SearchItem(BaseModel):
    item_id: str
    title: str | None
    genres: list[str]
    year: int | None
    popularity: int | None


class SearchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "star",
                    "genre": None,
                    "total": 12,
                    "items": [
                        {
                            "item_id": "50",
                            "title": "Star Wars (1977)",
                            "genres": ["Action", "Sci-Fi"],
                            "year": 1977,
                            "popularity": 583,
                        }
                    ],
                }
            ]
        }
    )

    query: str | None
    genre: str | None
    total: int = Field(description="Number of matches (the list holds the first `limit`).")
    items: list[SearchItem]


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "model_loaded": True,
                    "model_version": "20261122-0512-ab12cd",
                    "users": 943,
                    "items": 1682,
                }
            ]
        }
    )

    status: Literal["ok"]
    model_loaded: bool
    model_version: str | None
    users: int
    items: int


class ReadyResponse(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "model_version": "20261122-0512-ab12cd",
                    "model_type": "embedding",
                    "trained_at": "2026-11-22T05:12:00Z",
                    "loaded_at": "2026-11-22T06:00:00Z",
                    "users": 943,
                    "items": 1682,
                }
            ]
        },
    )

    status: Literal["ready"]
    model_version: str
    trained_at: str | None
    users: int
    items: int


class ReloadResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reloaded": True,
                    "model_version": "20261122-0630-ef34ab",
                    "previous_version": "20261122-0512-ab12cd",
                    "changed": True,
                    "model_dir": "backend/models/latest",
                    "load_seconds": 0.41,
                }
            ]
        }
    )

    reloaded: bool
    model_version: str
    previous_version: str | None
    changed: bool
    model_dir: str
    load_seconds: float


# The class docstrings below are the schemas' descriptions in /docs: they speak to API users.
class ErrorResponse(BaseModel):
    """An error: what went wrong, and for some errors the value it is about (`item_id`, `serving_version`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"detail": "item 'x' is not in the catalogue", "item_id": "x"}]},
    )
    detail: str = Field(description="What went wrong and, where there is something to do, what to do.")


class FieldError(BaseModel):
    field: str = Field(description="The field, dotted for nested ones (`genres.0`), or `body`/`request`.")
    location: str = Field(description="Where the field is: `query`, `path`, `body`, `header`, or empty.")
    reason: str
    loc: list[str | int]
    msg: str
    type: str
    input: Any = Field(None, description="The value sent, shortened (absent when there was none).")


class ValidationErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": "k: Input should be less than or equal to 100",
                    "detail": [
                        {
                            "field": "k",
                            "location": "query",
                            "reason": "Input should be less than or equal to 100",
                            "loc": ["query", "k"],
                            "msg": "Input should be less than or equal to 100",
                            "type": "less_than_equal",
                        }
                    ],
                }
            ]
        }
    )

    message: str
    detail: list[FieldError]


class EngagementResponse(BaseModel):  # built by app.store.feedback.record_engagement
    """The stored engagement."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 17,
                    "recset_id": "3f0c8f4e-9a51-4b9e-8d37-1c2b8a5e6f10",
                    "user_id": "42",
                    "item_id": "50",
                    "action_type": "click",
                    "ts": 1767225600.0,
                    "in_list": True,
                    "rank": 1,
                    "counts_as_hit": True,
                    "withdraws": None,
                    "withdrew": [],
                    "duplicate": False,
                }
            ]
        }
    )

    id: int
    recset_id: str
    user_id: str
    item_id: str
    action_type: str
    ts: float
    in_list: bool = Field(description="Whether the item was in the list; only items in it can count as hits.")
    rank: int | None = Field(description="The item's rank in the list (1 = first); null when it was not in it.")
    counts_as_hit: bool
    withdraws: int | None = Field(description="The id of the engagement this one takes back (`withdraw: true`).")
    withdrew: list[int] = Field(description="Opposite engagements taken back by this one (a like ends a dislike).")
    duplicate: bool = Field(description="True when this answers a repeated Idempotency-Key: nothing was stored.")


class EventsResponse(BaseModel):  # built by app.store.feedback.record_events
    """What was stored, and the users and items seen for the first time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "new_users": 0,
                    "new_items": 0,
                    "new_user_ids": [],
                    "new_item_ids": [],
                    "duplicate": False,
                }
            ]
        }
    )

    accepted: int = Field(description="Events stored.")
    new_users: int = Field(description="Users seen for the first time.")
    new_items: int = Field(description="Items seen for the first time.")
    new_user_ids: list[str] = Field(description="The first 100 of the new users.")
    new_item_ids: list[str] = Field(description="The first 100 of the new items.")
    duplicate: bool = Field(description="True when this answers a repeated Idempotency-Key: nothing was stored.")


class Page(BaseModel):  # built by app.store.queries.page
    """One page of rows, and how many rows match."""

    total: int = Field(description="Rows matching the filters.")
    limit: int
    offset: int
    rows: list[dict[str, Any]]


#: ``responses=`` for routes: the error shapes every endpoint may return.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorResponse, "description": "Invalid parameter or body: the field and the reason."},
    503: {
        "model": ErrorResponse,
        "description": "No model is loaded yet.",
        "content": {"application/json": {"example": {"detail": "no model loaded: ..."}}},
    },
}
