"""Writes the tiny test model (see conftest) in the model-directory layout, and the expected values.

Items (id: genres, year, factor):
  a1 Action 1990 [1, 0, 0]        c1 Comedy 1991 [0, 1, 0]         d1 Drama 1980 [0, 0, 1]
  a2 Action 1992 [.9, .1, 0]      c2 Comedy 1993 [0, .9, 0]        d2 Drama 1999 [0, 0, .9]
  a3 Action 1995 [.8, 0, .2]      c3 Comedy 1997 [0, .8, 0]        d3 Drama 1996 [0, 0, .8]
  a4 Action|Comedy 1985 [.7,.3,0] c4 Comedy|Drama (no year) [0,.5,.5]  d4 Drama 1998 [0, 0, .7]
Users (history): u1 a1 a2 | u2 c1 | u3 d1 d2 d3 | u4 a1 c1 d1 | u5 a1 d1 | u6 d1 c2 | u7 a1 c1 d1 a3
Popularity: d1 5, a1 4, c1 3, then a2 a3 c2 d2 d3 with 1, the rest 0. Latest interaction: day 300 + item
index, except a1 at day 0 (so trending: d1, c1, d3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from app.data.idmap import IdMap

ITEMS = [
    ("a1", "Alpha Strike", ["Action"], 1990, [1.0, 0.0, 0.0]),
    ("a2", "Blast Zone", ["Action"], 1992, [0.9, 0.1, 0.0]),
    ("a3", "Car Chase", ["Action"], 1995, [0.8, 0.0, 0.2]),
    ("a4", "Dynamite Laughs", ["Action", "Comedy"], 1985, [0.7, 0.3, 0.0]),
    ("c1", "Easy Money", ["Comedy"], 1991, [0.0, 1.0, 0.0]),
    ("c2", "Funny Farm", ["Comedy"], 1993, [0.0, 0.9, 0.0]),
    ("c3", "Giggle Town", ["Comedy"], 1997, [0.0, 0.8, 0.0]),
    ("c4", "Happy Tears", ["Comedy", "Drama"], None, [0.0, 0.5, 0.5]),
    ("d1", "Long Night", ["Drama"], 1980, [0.0, 0.0, 1.0]),
    ("d2", "Quiet River", ["Drama"], 1999, [0.0, 0.0, 0.9]),
    ("d3", "Silent Rain", ["Drama"], 1996, [0.0, 0.0, 0.8]),
    ("d4", "Winter Light", ["Drama"], 1998, [0.0, 0.0, 0.7]),
]
HISTORY = {
    "u1": ["a1", "a2"],
    "u2": ["c1"],
    "u3": ["d1", "d2", "d3"],
    "u4": ["a1", "c1", "d1"],
    "u5": ["a1", "d1"],
    "u6": ["d1", "c2"],
    "u7": ["a1", "c1", "d1", "a3"],
}
AVG_RATING = {"a1": 4.5, "c1": 3.0, "d1": 4.2, "a2": 2.5}
ITEM_IDS = [i[0] for i in ITEMS]
USER_IDS = sorted(HISTORY)
TITLES = {i[0]: i[1] for i in ITEMS}
BASE_TS = 1_700_000_000


def arrays(scale: float = 1.0, history_embeddings: bool = True) -> dict[str, np.ndarray]:
    """The model arrays in the documented ``arrays.npz`` layout (``scale`` makes a visibly different model).

    ``history_embeddings=False``: a classic user-embedding model (history_factors all zero, each user's
    own vector = the mean of their items' factors), so known users score the same but seeds cannot be
    pooled."""
    items = IdMap(ITEM_IDS)
    rows, cols = [], []
    for u, uid in enumerate(USER_IDS):
        for iid in HISTORY[uid]:
            rows.append(u)
            cols.append(items.index(iid))
    hist = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(USER_IDS), len(ITEM_IDS)))
    hist.sort_indices()
    factors = np.array([i[4] for i in ITEMS], dtype=np.float32) * scale
    n = len(ITEM_IDS)
    # Latest interaction: item c at day 300 + c, except a1 (day 0): it is popular but no longer trending.
    last_ts = np.zeros(n, dtype=np.int64)
    for c in cols:
        last_ts[c] = BASE_TS + 86_400 * (300 + c)
    last_ts[items.index("a1")] = BASE_TS
    user_factors = np.zeros((len(USER_IDS), 3), np.float32)
    history_factors = factors.copy()
    if not history_embeddings:
        user_factors = np.asarray((hist @ factors) / np.diff(hist.indptr)[:, None], dtype=np.float32)
        history_factors[:] = 0.0
    return {
        "user_factors": user_factors,
        "history_factors": history_factors,
        "item_factors": factors,
        "item_bias": (0.001 * np.arange(n)).astype(np.float32),
        "history_indptr": hist.indptr.astype(np.int64),
        "history_indices": hist.indices.astype(np.int64),
        "history_data": hist.data.astype(np.float32),
        "item_popularity": np.diff(hist.tocsc().indptr).astype(np.float64),
        "item_avg_rating": np.array([AVG_RATING.get(i, np.nan) for i in ITEM_IDS], dtype=np.float32),
        "item_last_ts": last_ts,
    }


def catalogue() -> dict[str, dict]:
    return {
        iid: {"item_id": iid, "title": title, "genres": genres, "year": year} for iid, title, genres, year, _ in ITEMS
    }


def write_model_dir(path: Path, version: str = "test-v1", scale: float = 1.0, history_embeddings: bool = True) -> Path:
    """Write the model with ``app.model.artifacts.save_arrays_bundle`` (atomic, hashed); returns its directory."""
    from app.model.artifacts import save_arrays_bundle

    save_arrays_bundle(
        Path(path),
        arrays=arrays(scale, history_embeddings),
        user_ids=USER_IDS,
        item_ids=ITEM_IDS,
        catalogue=catalogue(),
        version=version,
        hyperparameters={"history_pooling": "mean", "embedding_dim": 3},
    )
    return Path(path)
