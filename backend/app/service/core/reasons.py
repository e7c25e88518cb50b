"""Reason texts for the items of a list, formatted from what the engines say about their scores.

The engines explain (``Recommender.explain``: the history items or the named parts behind a score);
this module only turns that into words, with the catalogue's titles and genres. Texts that repeat
(one per item and kind) are formatted once per loaded model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from app.model.base import Explanation
from app.service.core.catalogue import Catalogue

#: Average rating (1-5) from which an item is "highly rated".
HIGHLY_RATED = 4.0

Reasons = list[list[str]]


class ReasonTexts:
    """Formats reasons with one loaded model's catalogue."""

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue

    def similar_to(self, items: np.ndarray, liked: bool = False) -> Reasons:
        """ "similar to <title>" (" you liked" for the user's own history) for each item."""
        texts = self.catalogue.liked_text if liked else self.catalogue.similar_text
        return [[texts[j]] for j in items.tolist()]

    def popular(self, items: np.ndarray, genre_cols: np.ndarray | None = None, trending: bool = False) -> Reasons:
        """Popular (or trending) items; with ``genre_cols``, "popular in" the first of those genres an item has."""
        if trending:
            return [["trending"] for _ in range(items.size)]
        if genre_cols is None or not genre_cols.size:
            return [["popular overall"] for _ in range(items.size)]
        prefer = genre_cols.tolist()
        return [[self._popular_in(i, prefer)] for i in items.tolist()]

    def _popular_in(self, i: int, prefer: Sequence[int] | None) -> str:
        g = self.catalogue.item_genre(i, prefer)
        return f"popular in {g}" if g else "popular overall"

    def explained(self, explanation: Explanation, history: sp.csr_matrix, engine: str, liked: bool = True) -> Reasons:
        """Reasons from an engine's explanation of one list: the history item that adds most to each score
        ("similar to X you liked"), else the score's named parts largest first, else the engine's name."""
        items = explanation.items
        if explanation.contributions is not None:
            if not explanation.history.size or not items.size:
                return [["recommended for you"] for _ in range(items.size)]
            return self.similar_to(explanation.strongest_history(), liked)
        if explanation.features:
            return self._parts(explanation, history)
        return [[f"recommended by {engine}"] for _ in range(items.size)]

    def _parts(self, explanation: Explanation, history: sp.csr_matrix) -> Reasons:
        """One text per named part, largest contribution first: genre match, popularity (named after the
        user's most frequent genre the item has), average rating (when it is high), trending."""
        cat = self.catalogue
        prefer: list[int] | None = None
        if cat.genres is not None and history.nnz:
            profile = np.asarray((history @ cat.genres).todense()).ravel()  # genre counts of the history
            prefer = np.argsort(-profile, kind="stable")[: int(np.count_nonzero(profile))].tolist()
        features = {name: np.asarray(values, dtype=np.float64) for name, values in explanation.features.items()}
        out = []
        for n, i in enumerate(explanation.items.tolist()):
            parts: list[tuple[float, str]] = []
            if "genre_match" in features and features["genre_match"][n] > 0:
                parts.append((float(features["genre_match"][n]), "matches your genres"))
            if "popularity" in features:
                parts.append((float(features["popularity"][n]), self._popular_in(i, prefer)))
            if "trending" in features:
                parts.append((float(features["trending"][n]), "trending"))
            avg = cat.avg_rating[i]
            if "rating" in features and np.isfinite(avg) and avg >= HIGHLY_RATED:
                parts.append((float(features["rating"][n]), f"highly rated ({avg:.1f}/5)"))
            parts.sort(key=lambda p: -p[0])
            out.append([p[1] for p in parts])
        return out
