"""Columnar containers passed between the pipeline stages (NumPy arrays, never lists of tuples)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from app.data.idmap import IdMap

STRING_COLUMNS = ("user_id", "item_id", "event", "platform")


@dataclass(frozen=True)
class Coded:
    """A string column as codes into its distinct values: ``names[codes]`` is the column."""

    codes: np.ndarray  # int32, one per row
    names: np.ndarray  # object array of distinct str

    def values(self) -> np.ndarray:
        """The column as an object array of str (equal strings share one object)."""
        return self.names[self.codes] if self.codes.size else np.empty(0, dtype=object)


class EventLog:
    """Validated raw events, one row per accepted JSONL line, in file order.

    ``user_id``, ``item_id``, ``event`` and ``platform`` are object arrays of str (``platform`` is ""
    when absent). Each may be given as a ``Coded`` column instead (what the log reader builds); its
    object array is then made on first use, and ``coded`` gives the codes without it: aggregating a
    20M-event log never needs the 640 MB of string references."""

    __slots__ = ("_arrays", "_coded", "rating", "ts", "weight")

    def __init__(
        self,
        user_id: np.ndarray | Coded,
        item_id: np.ndarray | Coded,
        event: np.ndarray | Coded,
        ts: np.ndarray,  # int64 Unix seconds
        rating: np.ndarray,  # float32, NaN when absent
        weight: np.ndarray,  # float32, NaN when absent (an explicit weight overrides the event weight)
        platform: np.ndarray | Coded,
    ):
        given = dict(zip(STRING_COLUMNS, (user_id, item_id, event, platform), strict=True))
        self._coded = {k: v for k, v in given.items() if isinstance(v, Coded)}
        self._arrays = {k: v for k, v in given.items() if not isinstance(v, Coded)}
        self.ts, self.rating, self.weight = ts, rating, weight

    def _strings(self, column: str) -> np.ndarray:
        array = self._arrays.get(column)
        if array is None:
            array = self._arrays[column] = self._coded[column].values()
        return array

    user_id = property(lambda self: self._strings("user_id"), doc="object array of str")
    item_id = property(lambda self: self._strings("item_id"), doc="object array of str")
    event = property(lambda self: self._strings("event"), doc="object array of str")
    platform = property(lambda self: self._strings("platform"), doc='object array of str ("" when absent)')

    def coded(self, column: str) -> Coded:
        """One string column as codes into its distinct values (in no particular order)."""
        found = self._coded.get(column)
        if found is None:
            names, codes = np.unique(self._arrays[column].astype(str), return_inverse=True)
            found = self._coded[column] = Coded(codes.reshape(-1).astype(np.int32), names.astype(object))
        return found

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

    def timestamps(self) -> sp.csr_matrix:
        """Users x items CSR, aligned with ``matrix()``: each positive's latest timestamp (Unix seconds, int64)."""
        m = self.matrix()
        n_items = m.shape[1]
        keys = self.user_idx.astype(np.int64) * n_items + self.item_idx
        by_key = np.lexsort((self.ts, keys))
        last = np.r_[keys[by_key][1:] != keys[by_key][:-1], True]
        keys, ts = keys[by_key][last], self.ts[by_key][last]  # sorted by key: CSR order (user, then item)
        return sp.csr_matrix((ts.astype(np.int64), keys % n_items, m.indptr.copy()), shape=m.shape)

    def recency(self) -> sp.csr_matrix:
        """Users x items CSR, aligned with ``matrix()``: each positive's place in its user's history,
        from 1/n (oldest) to 1 (newest); equal timestamps share the mean of their places (``recency_of``).

        The Keras model trains on "predict the later items from the earlier ones" with it (the way it
        is evaluated and served: new items from known ones)."""
        return recency_of(self.timestamps())

    def subset(self, mask: np.ndarray) -> Dataset:
        """Rows selected by a boolean mask, with the same ID maps (so indices stay comparable)."""
        return Dataset(
            self.users, self.items, self.user_idx[mask], self.item_idx[mask], self.weight[mask], self.ts[mask]
        )


def recency_of(timestamps: sp.csr_matrix) -> sp.csr_matrix:
    """Each entry's place in its row by timestamp, from 1/n (oldest) to 1 (newest), equal timestamps
    sharing the mean of their places; same sparsity pattern as ``timestamps`` (a ``Dataset.timestamps()``)."""
    t = sp.csr_matrix(timestamps)
    rows = np.repeat(np.arange(t.shape[0], dtype=np.int64), np.diff(t.indptr))
    ts = np.asarray(t.data, dtype=np.int64)
    by_time = np.lexsort((ts, rows))
    r, s = rows[by_time], ts[by_time]
    start = np.searchsorted(r, r, side="left")
    count = np.searchsorted(r, r, side="right") - start
    place = np.arange(r.size) - start + 1.0  # 1..n within the row, oldest first
    new_group = np.r_[True, (r[1:] != r[:-1]) | (s[1:] != s[:-1])] if r.size else np.zeros(0, bool)
    group = np.cumsum(new_group) - 1
    if r.size:
        place = (np.bincount(group, place) / np.bincount(group))[group]  # ties share their mean place
    out = np.empty(r.size, np.float32)
    out[by_time] = (place / count).astype(np.float32)
    return sp.csr_matrix((out, t.indices.copy(), t.indptr.copy()), shape=t.shape)
