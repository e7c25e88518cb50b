"""Every engine by name: training, the evaluation and the service build engines only through here.

The service's "nn" is the trained model loaded from its directory (``ModelBundle.scorer()``, a
``SavedEmbedding``); ``make_engine("nn")`` makes a new, untrained ``EmbeddingRecommender``. Each
engine class says how large a catalogue it takes (``max_items``), so every caller checks the same limit.
"""

from __future__ import annotations

from typing import Any

from app.model.als import ALSRecommender
from app.model.base import Recommender
from app.model.ease import EASERecommender
from app.model.embedding import EmbeddingRecommender
from app.model.heuristic import HeuristicRecommender
from app.model.hybrid import HybridRecommender
from app.model.itemknn import ItemKNNRecommender
from app.model.popularity import PopularityRecommender

ENGINES: dict[str, type[Recommender]] = {
    "popular": PopularityRecommender,
    "itemknn": ItemKNNRecommender,
    "als": ALSRecommender,
    "ease": EASERecommender,
    "baseline": HeuristicRecommender,
    "nn": EmbeddingRecommender,
    "hybrid": HybridRecommender,
}


def engine_class(name: str) -> type[Recommender]:
    """The engine class of ``name``; unknown names are a clear ``ValueError``."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}") from None


def make_engine(name: str, **params: Any) -> Recommender:
    """A new, unfitted engine; unknown names and parameters are clear errors."""
    factory = engine_class(name)
    try:
        return factory(**params)
    except TypeError as e:
        raise ValueError(f"bad parameters for engine {name!r}: {e}") from None


def too_large(name: str, n_items: int) -> str | None:
    """Why engine ``name`` cannot be fitted on ``n_items`` items (its ``max_items``), or None when it can."""
    limit = engine_class(name).max_items
    if limit is not None and n_items > limit:
        return f"engine {name!r} is fitted on at most {limit} items; this model has {n_items}"
    return None
