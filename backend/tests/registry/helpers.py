"""Real (arrays-only, NumPy) model directories written by the model package, for the registry tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from app.model.artifacts import history_arrays, save_arrays_bundle

USERS = ["u1", "u2", "u3"]
ITEMS = ["i1", "i2", "i3", "i4"]


def write_model_dir(path: Path, version: str, ndcg: float = 0.1, seed: int = 0) -> Path:
    """A loadable model directory (layout of the brief) with a chosen version id and metrics."""
    rng = np.random.default_rng(seed)
    d = 4
    history = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    arrays = {
        "user_factors": np.zeros((len(USERS), d), np.float32),
        "history_factors": rng.normal(size=(len(ITEMS), d)).astype(np.float32),
        "item_factors": rng.normal(size=(len(ITEMS), d)).astype(np.float32),
        "item_bias": np.zeros(len(ITEMS), np.float32),
        **history_arrays(history),
        "item_popularity": np.asarray(history.sum(axis=0)).ravel(),
        "item_avg_rating": np.full(len(ITEMS), np.nan, np.float32),
        "item_last_ts": np.arange(len(ITEMS), dtype=np.int64),
    }
    catalogue = {i: {"item_id": i, "title": f"Title {i}", "genres": ["Drama"], "year": 2000} for i in ITEMS}
    return save_arrays_bundle(
        path,
        arrays=arrays,
        user_ids=USERS,
        item_ids=ITEMS,
        catalogue=catalogue,
        version=version,
        hyperparameters={"history_pooling": "mean", "embedding_dim": d},
        data_summary={"interactions": 10, "users": 3, "items": 4},
        metrics={"ndcg@10": ndcg},
    )


DAY = 86400
T0 = 1_700_000_000


def write_jsonl(path: Path, rows: list[dict] | list[bytes]) -> Path:
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
    return path


def synthetic_log(
    n_users: int = 40, n_items: int = 30, per_user: int = 8, groups: int = 3, seed: int = 0, day0: int = 0
) -> list[dict]:
    """Users of group g play items of group g (item % groups == g), one event a day: learnable and tiny."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        liked = [i for i in range(n_items) if i % groups == u % groups]
        for k, i in enumerate(rng.choice(liked, size=min(per_user, len(liked)), replace=False).tolist()):
            rows.append(
                {
                    "user_id": f"u{u}",
                    "item_id": f"i{i}",
                    "event": "play",
                    "ts": T0 + (day0 + k) * DAY + u,
                    "platform": "web" if u % 2 else "android",
                }
            )
    return rows


def synthetic_items(n_items: int = 30, groups: int = 3) -> list[dict]:
    return [
        {"item_id": f"i{i}", "title": f"Item {i}", "genres": [f"g{i % groups}"], "year": 1990 + i}
        for i in range(n_items)
    ]
