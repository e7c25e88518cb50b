"""The serving model's items as people see them: titles, years, genres, one item's details, and title search.

Built once per loaded model from its catalogue records (``items.jsonl``, plus ``RECOMMENDER_ITEMS_PATH``)
and read by every request: the per-item tuples a response is made of, the reason texts, the genre
masks of the filters, and the search arrays over the whole catalogue (items without interactions too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.data.features import ItemFeatures
from app.data.idmap import IdMap

#: MovieLens-style titles end with the year ("Star Wars (1977)") and file a leading article last
#: ("Usual Suspects, The (1995)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)").
_TRAILING_YEAR = re.compile(r"\s*\([0-9]{4}\)\s*$")
_ARTICLE_LAST = re.compile(r"^(.+?), (The|A|An|Les|La|Le|Il|El|Das|Der|Die)( \(.*\))?$")


def display_title(title: str) -> str:
    """A title as people read it: without a trailing "(1995)" (the year is shown apart) and with a filed
    article put back in front ("Usual Suspects, The (1995)" -> "The Usual Suspects"). The web page
    shows card titles by the same rule (``displayTitle`` in ``static/app.js``), so a reason names an
    item exactly as its card does. A title that is only a year is kept."""
    text = str(title).strip()
    bare = _TRAILING_YEAR.sub("", text) or text
    return _ARTICLE_LAST.sub(r"\2 \1\3", bare)


class UnknownGenre(ValueError):
    """A genre that names no genre of the catalogue (a 422 on the request field that named it)."""

    def __init__(self, genre: str, known: Sequence[str], field: str = "genres"):
        super().__init__(f"unknown genre {genre!r}; known genres: {', '.join(known) or '(none)'}")
        self.genre = genre
        self.field = field


class Catalogue:
    """Item records aligned with the model's item index, and search over every catalogue record."""

    def __init__(
        self,
        items: IdMap,
        records: Mapping[str, Mapping[str, Any]],
        features: ItemFeatures,
        popularity: np.ndarray,
        avg_rating: np.ndarray,
        popular_scores: np.ndarray,
    ):
        self.records = records
        ids = items.ids
        self.n_items = len(ids)
        self.popularity = popularity  # users with a positive, per model item
        self.avg_rating = avg_rating  # NaN when unknown
        self._popular_scores = popular_scores
        rec = [records.get(i) or {} for i in ids]
        self.titles: list[str] = [str(r.get("title") or i) for r, i in zip(rec, ids, strict=True)]
        self.years = np.array([np.nan if r.get("year") is None else float(r["year"]) for r in rec], dtype=np.float64)
        # (item_id, title, genres, year) per item: a response builds its k records from them (shared, never changed)
        self.base: list[tuple[str, str, list[str], int | None]] = [
            (iid, self.titles[i], list(r.get("genres") or []), r.get("year"))
            for i, (iid, r) in enumerate(zip(ids, rec, strict=False))
        ]
        # reasons, formatted once, with the titles as the cards show them
        self.display_titles: list[str] = [display_title(t) for t in self.titles]
        self.similar_text = [f"similar to {t}" for t in self.display_titles]
        self.liked_text = [f"similar to {t} you liked" for t in self.display_titles]

        self.genre_names: list[str] = list(features.genre_names)
        self.genres = features.genres  # items x genres CSR, or None when no item has a genre
        self._genre_col = {g.lower(): j for j, g in enumerate(self.genre_names)}
        if self.genres is not None:
            self.genre_masks = np.asarray(self.genres.T.todense(), dtype=bool)  # genres x items
            g = self.genres
            self.item_genre_cols: list[tuple[int, ...]] = [
                tuple(g.indices[g.indptr[i] : g.indptr[i + 1]].tolist()) for i in range(self.n_items)
            ]
        else:
            self.genre_masks = np.zeros((0, self.n_items), dtype=bool)
            self.item_genre_cols = [() for _ in range(self.n_items)]
        self._build_search(items)

    def _build_search(self, items: IdMap) -> None:
        """Title search covers every catalogue record, most popular first (-1: not in the model)."""
        self.search_ids: list[str] = list(self.records)
        self._search_titles = np.array(
            [str(self.records[i].get("title") or "").lower() for i in self.search_ids], dtype=np.str_
        )
        known = items.indices(self.search_ids)
        self._search_pop = np.where(known >= 0, self.popularity[np.maximum(known, 0)] if self.n_items else 0.0, -1.0)
        by_genre: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        for j, iid in enumerate(self.search_ids):  # load time only
            for g in self.records[iid].get("genres") or ():
                by_genre.setdefault(g.lower(), []).append(j)
                names.setdefault(g.lower(), g)
        self._search_genre_masks: dict[str, np.ndarray] = {}
        for g, rows in by_genre.items():
            m = np.zeros(len(self.search_ids), dtype=bool)
            m[rows] = True
            self._search_genre_masks[g] = m
        self._search_genres = sorted(names.values())

    # ----- genres --------------------------------------------------------------------------------------------
    def genre_index(self, genre: str, field: str = "genres") -> int:
        """Column of a genre, case-insensitive; ``field`` names the request field for the 422."""
        j = self._genre_col.get(genre.strip().lower())
        if j is None:
            raise UnknownGenre(genre, self.genre_names, field)
        return j

    def genre_columns(self, genres: Sequence[str], field: str = "genres") -> np.ndarray:
        return np.array([self.genre_index(g, field) for g in genres], dtype=np.int64)

    def item_genre(self, i: int, prefer: Sequence[int] | None = None) -> str | None:
        """The genre to name for item ``i``: the first of ``prefer`` (genre columns) it has, else its first genre."""
        cols = self.item_genre_cols[i]
        if not cols:
            return None
        for c in prefer or ():
            if c in cols:
                return self.genre_names[c]
        return self.genre_names[cols[0]]

    # ----- lookups -------------------------------------------------------------------------------------------
    def details(self, item_id: str, i: int | None) -> dict[str, Any] | None:
        """One item's record with its model statistics (``i``: its model index, None when not in the model)."""
        record = self.records.get(item_id)
        if i is None and record is None:
            return None
        out: dict[str, Any] = dict(record or {"item_id": item_id, "title": item_id, "genres": [], "year": None})
        out["item_id"] = item_id
        out["in_model"] = i is not None
        if i is not None:
            out["popularity"] = int(self.popularity[i])
            avg = self.avg_rating[i]
            out["avg_rating"] = round(float(avg), 3) if np.isfinite(avg) else None
            out["popularity_rank"] = int(np.count_nonzero(self._popular_scores > self._popular_scores[i])) + 1
        else:
            out.update(popularity=0, avg_rating=None, popularity_rank=None)
        return out

    def search(self, query: str | None, genre: str | None, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Records whose title contains ``query`` (case-insensitive), prefix matches first, then most popular.
        Returns (items, number of matches)."""
        n = len(self.search_ids)
        mask = np.ones(n, dtype=bool)
        prefix = np.zeros(n, dtype=bool)
        if query:
            pos = np.strings.find(self._search_titles, query.strip().lower())
            mask &= pos >= 0
            prefix = pos == 0
        if genre:
            gmask = self._search_genre_masks.get(genre.strip().lower())
            if gmask is None:
                raise UnknownGenre(genre, self._search_genres, "genre")
            mask &= gmask
        hits = np.flatnonzero(mask)
        order = np.lexsort((-self._search_pop[hits], ~prefix[hits]))
        out = []
        for j in hits[order[:limit]].tolist():
            iid = self.search_ids[j]
            c = self.records[iid]
            pop = self._search_pop[j]
            out.append(
                {
                    "item_id": iid,
                    "title": c.get("title"),
                    "genres": list(c.get("genres") or []),
                    "year": c.get("year"),
                    "popularity": None if pop < 0 else int(pop),
                }
            )
        return out, int(hits.size)
