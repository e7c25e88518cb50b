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


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    detail: Any


class FieldError(BaseModel):
    field: str
    location: str
    reason: str
    loc: list[str | int]
    msg: str
    type: str


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


#: ``responses=`` for routes: the error shapes every endpoint may return.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorResponse, "description": "Invalid parameter: the field and the reason."},
    503: {
        "model": ErrorResponse,
        "description": "No model is loaded yet.",
        "content": {"application/json": {"example": {"detail": "no model loaded: ..."}}},
    },
}
