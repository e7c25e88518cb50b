"""Columnar containers passed between the pipeline stages (NumPy arrays, never lists of tuples)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from app.data.idmap import IdMap


@dataclass(frozen=True)
class EventLog:
    """Validated raw events, one row per accepted JSONL line, in file order."""

    user_id: np.ndarray  # object array of str
    item_id: np.ndarray  # object array of str
    event: np.ndarray  # object array of str
    ts: np.ndarray  # int64 Unix seconds
    rating: np.ndarray  # float32, NaN when absent
    weight: np.ndarray  # float32, NaN when absent (an explicit weight overrides the event weight)
    platform: np.ndarray  # object array of str, "" when absent

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(frozen=True)
class Positives:
    """Implicit positives: one row per (user, item) pair, weights summed, latest timestamp kept."""

    user_id: np.ndarray  # object array of str
    item_id: np.ndarray  # object array of str
    weight: np.ndarray  # float32 > 0
    ts: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass
class Dataset:
    """Positives indexed by contiguous user and item indices: what models are fitted on."""

    users: IdMap
    items: IdMap
    user_idx: np.ndarray  # int32, one per positive
    item_idx: np.ndarray  # int32
    weight: np.ndarray  # float32
    ts: np.ndarray  # int64
    _matrix: sp.csr_matrix | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return int(self.user_idx.shape[0])

    def matrix(self) -> sp.csr_matrix:
        """Users x items CSR matrix of weights (cached)."""
        if self._matrix is None:
            m = sp.csr_matrix(
                (self.weight.astype(np.float32), (self.user_idx, self.item_idx)),
                shape=(self.n_users, self.n_items),
                dtype=np.float32,
            )
            m.sum_duplicates()
            m.sort_indices()
            self._matrix = m
        return self._matrix

    def subset(self, mask: np.ndarray) -> "Dataset":
        """Rows selected by a boolean mask, with the same ID maps (so indices stay comparable)."""
        return Dataset(self.users, self.items, self.user_idx[mask], self.item_idx[mask], self.weight[mask], self.ts[mask])
