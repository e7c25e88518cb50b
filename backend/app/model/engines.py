"""Every servable engine by name: the service and the evaluation build engines only through here."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.model.als import ALSRecommender
from app.model.base import Recommender
from app.model.ease import EASERecommender
from app.model.heuristic import HeuristicRecommender
from app.model.itemknn import ItemKNNRecommender
from app.model.popularity import PopularityRecommender


def _embedding(**params: Any) -> Recommender:
    # Imported lazily: it pulls in TensorFlow/Keras, which NumPy-only engines and the service should not pay for.
    from app.model.embedding import EmbeddingRecommender

    return EmbeddingRecommender(**params)


ENGINES: dict[str, Callable[..., Recommender]] = {
    "popular": PopularityRecommender,
    "itemknn": ItemKNNRecommender,
    "als": ALSRecommender,
    "ease": EASERecommender,
    "baseline": HeuristicRecommender,
    "nn": _embedding,
}


def make_engine(name: str, **params: Any) -> Recommender:
    """A new, unfitted engine; unknown names and parameters are clear errors."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}") from None
    try:
        return factory(**params)
    except TypeError as e:
        raise ValueError(f"bad parameters for engine {name!r}: {e}") from None
