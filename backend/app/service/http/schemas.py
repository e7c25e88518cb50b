"""Request shapes of the API: validation at the boundary, with examples for /docs (answers: ``response_models``).

Every request model forbids unknown fields (a typo is a 422 naming the field, not a silently
ignored filter). ``k`` has a lower bound here and an upper bound from ``Settings.max_k`` (checked
in the handler, since it is a runtime setting; default 100).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from starlette.convertors import Convertor, register_url_convertor

from app.data.schema import MAX_ID_LENGTH
from app.model.engines import ENGINES

#: printable text: no ASCII/C1 control characters (the reader's rule, ``app.data.schema``)
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"
ID_MAX = MAX_ID_LENGTH
#: ids are stripped, as the event reader strips them: " 196" is user 196, a blank id is a 422
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=ID_MAX, pattern=_PRINTABLE)]
Genre = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=_PRINTABLE)]
Platform = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]
EngineName = Literal[("auto", *sorted(ENGINES))]  # type: ignore[valid-type]  # as app.service.core.strategies.ENGINE_NAMES
Year = Annotated[int, Field(ge=0, le=3000)]
MAX_LIST = 1_000
#: Seed items a cold-start request may name (each one is a row of the pooled history).
MAX_SEEDS = 100

K_DESCRIPTION = (
    "Number of items, 1..max_k (setting RECOMMENDER_MAX_K, default 100); without it, RECOMMENDER_DEFAULT_K (10)."
)
LIMIT_DESCRIPTION = "The same as k (either name is accepted; both only with the same value)."
DIVERSITY_DESCRIPTION = (
    "0 to 1: how much variety to favour over the best scores. 0 (the default): the list as ranked. Above 0, the "
    "list is picked from the best max(5 x k, 50) candidates, each item chosen for its score and for being "
    "unlike the items above it (by the model's item embeddings); 1 favours variety only, after the best item."
)
Diversity = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, description=DIVERSITY_DESCRIPTION)]
ENGINE_DESCRIPTION = (
    "auto: the model's best personal engine (hybrid when training found it better than nn on validation, "
    "else nn) when the user has enough history, else baseline when they have history, else popular (seed "
    "items: similar to the seeds); /ready says which (auto_engine). hybrid: candidates from several sources "
    "ranked by a learned ranker (models trained with the default pipeline). nn: the embedding model. "
    "baseline: weighted heuristic (popularity 0.55, average rating 0.25, genre match 0.20). popular. "
    "itemknn, ease, als: the evaluation baselines (fitted on first use)."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class _YearRange(_Strict):
    year_min: Year | None = Field(
        None, description="Only items released in or after this year (items without a year are dropped)."
    )
    year_max: Year | None = Field(None, description="Only items released in or before this year.")

    @field_validator("year_max")
    @classmethod
    def _ordered(cls, v: int | None, info: ValidationInfo) -> int | None:
        lo = info.data.get("year_min")
        if v is not None and lo is not None and v < lo:
            raise ValueError(f"year_max ({v}) must be >= year_min ({lo})")
        return v


class _Filters(_YearRange):
    genres: list[Genre] = Field(
        default_factory=list, max_length=50, description="Keep items with any of these genres (case-insensitive)."
    )
    exclude_items: list[Id] = Field(
        default_factory=list, max_length=MAX_LIST, description="Never return these item ids."
    )


class RecommendRequest(_Filters):
    """Body of ``POST /recommend``."""

    model_config = ConfigDict(
        extra="forbid",
        coerce_numbers_to_str=True,
        json_schema_extra={
            "examples": [
                {"user_id": "196", "k": 10, "engine": "auto", "genres": ["Comedy"], "year_min": 1990, "year_max": 1998},
                {"user_id": "new-visitor-1", "k": 5, "seed_item_ids": ["50", "181"], "platform": "mobile"},
                {"user_id": "new-visitor-2", "k": 5, "engine": "popular", "seed_genres": ["Sci-Fi"]},
            ]
        },
    )

    user_id: Id | None = Field(None, description="The user; unknown or omitted users get cold-start lists.")
    k: int | None = Field(None, ge=1, description=K_DESCRIPTION)
    limit: int | None = Field(None, ge=1, description=LIMIT_DESCRIPTION)
    engine: EngineName = Field("auto", description=ENGINE_DESCRIPTION)
    exclude_seen: bool = Field(True, description="Drop items in the user's training history.")
    diversity: Diversity = 0.0
    seed_item_ids: list[Id] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="Cold start: items the user picked; the list is similar to them. Unknown ids are reported, not fatal.",
    )
    seed_genres: list[Genre] = Field(
        default_factory=list, max_length=50, description="Cold start: popular items in these genres first."
    )
    platform: Platform | None = Field(
        None, description="Client platform (web, mobile, ...), logged with the impression."
    )


class SimilarRequest(_Filters):
    """Body of ``POST /similar``."""

    model_config = ConfigDict(
        extra="forbid",
        coerce_numbers_to_str=True,
        json_schema_extra={
            "examples": [{"item_id": "50", "k": 10}, {"item_id": "50", "k": 5, "genres": ["Action"], "year_min": 1980}]
        },
    )

    item_id: Id = Field(description="The item to find neighbours of (cosine over the model's item embeddings).")
    k: int | None = Field(None, ge=1, description=K_DESCRIPTION)
    limit: int | None = Field(None, ge=1, description=LIMIT_DESCRIPTION)
    user_id: Id | None = Field(
        None, description="Optional: logged with the impression; with exclude_seen, drops their history."
    )
    exclude_seen: bool = Field(True, description="With user_id: drop items in that user's training history.")
    diversity: Diversity = 0.0
    platform: Platform | None = None


class RecommendationsPathQuery(_Strict):
    """Query of ``GET /recommendations/{user_id}``."""

    limit: int | None = Field(None, ge=1, description=K_DESCRIPTION, examples=[10])
    k: int | None = Field(None, ge=1, description=LIMIT_DESCRIPTION)
    engine: EngineName = Field("auto", description=ENGINE_DESCRIPTION)
    diversity: Diversity = 0.0
    platform: Platform | None = Field(None, examples=["web"])


class RecommendationsQuery(_Strict):
    """Query of ``GET /recommendations``."""

    user_id: Id = Field(description="The user.", examples=["196"])
    k: int | None = Field(None, ge=1, description=K_DESCRIPTION, examples=[10])
    limit: int | None = Field(None, ge=1, description=LIMIT_DESCRIPTION)
    engine: EngineName = Field("auto", description=ENGINE_DESCRIPTION, examples=["auto"])
    diversity: Diversity = 0.0
    platform: Platform | None = Field(None, examples=["mobile"])


class PopularQuery(_YearRange):
    """Query of ``GET /popular``."""

    k: int | None = Field(None, ge=1, description=K_DESCRIPTION, examples=[10])
    limit: int | None = Field(None, ge=1, description=LIMIT_DESCRIPTION)
    genre: list[Genre] = Field(
        default_factory=list,
        max_length=50,
        description="Any of these genres (repeat the parameter).",
        examples=[["Comedy"]],
    )
    trending: bool = Field(
        False, description="Recency-weighted popularity (half-life 30 days before the newest interaction)."
    )
    user_id: Id | None = Field(
        None, description="Optional: logged with the impression; with exclude_seen, drops their history."
    )
    exclude_seen: bool = False
    platform: Platform | None = None


class ItemsQuery(_Strict):
    """Query of ``GET /items``."""

    query: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")] | None = Field(
        None, description="Case-insensitive title substring; titles starting with it come first.", examples=["star"]
    )
    genre: Genre | None = Field(None, examples=["Sci-Fi"])
    limit: int = Field(20, ge=1, description="Number of items, 1..max_k.", examples=[20])


ID_ADAPTER: TypeAdapter[str] = TypeAdapter(Id)


class IdConvertor(Convertor[str]):
    """``{user_id:id}`` in a route path: the rest of the path, whatever it holds, so the id's own rules
    answer (a 422 naming the field) rather than the router (a bare 404). Ids may hold a "/" (sent as
    %2F, which servers decode), where ``{user_id}`` stops; Starlette's ``{user_id:path}`` stops at a
    newline."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdConvertor())  # the route modules import this module before they declare paths
