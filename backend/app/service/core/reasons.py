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
from app.model.hybrid import REASON_NAMES, reason_order
from app.service.core.catalogue import Catalogue

#: Average rating (1-5) from which an item is "highly rated".
HIGHLY_RATED = 4.0
#: Reasons given per item from a ranker's features (the strongest ones).
MAX_REASONS = 2

Reasons = list[list[str]]


def genre_orders(history: sp.csr_matrix, genres: sp.csr_matrix) -> np.ndarray:
    """Per history row, its genres most frequent first (by the number of its items in each; ties by
    genre column), -1 padded: n_rows x n_genres int16. The genre a reason names for the user."""
    profile = np.asarray((history @ genres).todense())
    order = np.argsort(-profile, axis=1, kind="stable")
    present = np.take_along_axis(profile, order, axis=1) > 0
    return np.where(present, order, -1).astype(np.int16)


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
        if explanation.features and explanation.contributions is not None:
            return self._ranked_parts(explanation, history, liked)
        if explanation.contributions is not None:
            if not explanation.history.size or not items.size:
                return [["recommended for you"] for _ in range(items.size)]
            return self.similar_to(explanation.strongest_history(), liked)
        if explanation.features:
            return self._parts(explanation, history)
        return [[f"recommended by {engine}"] for _ in range(items.size)]

    def _genre_order(self, history: sp.csr_matrix) -> list[int] | None:
        """The history's genres, most frequent first (None without genres or history)."""
        cat = self.catalogue
        if cat.genres is None or not history.nnz:
            return None
        order = genre_orders(history, cat.genres)[0]
        return order[order >= 0].tolist()

    def _ranked_parts(self, explanation: Explanation, history: sp.csr_matrix, liked: bool) -> Reasons:
        """A ranker's reasons (``HybridRecommender.explain``): its feature groups that raised each item's
        score, strongest first (``from_codes``)."""
        names = list(explanation.features)
        values = np.column_stack([np.asarray(explanation.features[n], dtype=np.float64) for n in names])
        codes = reason_order(values)
        return self.from_codes(explanation.items, codes, explanation.strongest_history(), history, liked, names)

    def from_codes(
        self,
        items: np.ndarray,
        codes: np.ndarray,
        liked_items: np.ndarray,
        history: sp.csr_matrix,
        liked: bool = True,
        groups: Sequence[str] = REASON_NAMES,
        genre_order: np.ndarray | None = None,
    ) -> Reasons:
        """At most ``MAX_REASONS`` texts per item from its reason groups (``codes[j]``: indices into
        ``groups``, strongest first, -1 padded; ``HybridRecommender.reason_codes``): "because you liked X"
        names ``liked_items[j]``, "matches your genres" the user's genres the item has; an item
        without one gets "recommended for you". ``genre_order``: the user's row of ``genre_orders`` when
        it is at hand (precomputed lists), else computed from ``history``."""
        prefer = self._genre_order(history) if genre_order is None else genre_order[genre_order >= 0].tolist()
        out = []
        for j, i in enumerate(np.asarray(items).tolist()):
            texts = []
            for c in np.asarray(codes[j]).tolist():
                if c < 0 or len(texts) == MAX_REASONS:
                    break
                text = self._ranked_text(groups[c], i, int(liked_items[j]), prefer, liked)
                if text:
                    texts.append(text)
            out.append(texts or ["recommended for you"])
        return out

    def _ranked_text(self, group: str, i: int, liked_item: int, prefer: list[int] | None, liked: bool) -> str | None:
        """The text of one reason group for item ``i`` (None when it has nothing to say for this item)."""
        cat = self.catalogue
        if group == "liked":
            if liked_item < 0:
                return None
            return f"because you liked {cat.display_titles[liked_item]}" if liked else cat.similar_text[liked_item]
        if group == "similar_users":
            return "popular with people like you"
        if group == "trending":
            return "trending now"
        if group == "popularity":
            return self._popular_in(i, prefer)
        if group == "genre_match":
            cols = set(cat.item_genre_cols[i])
            shared = [cat.genre_names[c] for c in (prefer or ()) if c in cols][:2]
            return f"matches your genres ({', '.join(shared)})" if shared else None
        if group == "rating":
            avg = cat.avg_rating[i]
            return f"highly rated ({avg:.1f}/5)" if np.isfinite(avg) and avg >= HIGHLY_RATED else None
        return None

    def _parts(self, explanation: Explanation, history: sp.csr_matrix) -> Reasons:
        """One text per named part, largest contribution first: genre match, popularity (named after the
        user's most frequent genre the item has), average rating (when it is high), trending."""
        cat = self.catalogue
        prefer = self._genre_order(history)
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
