"""Contiguous indices for external string IDs, saved beside the model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class IdMap:
    """Bidirectional map between external IDs (strings) and indices 0..n-1."""

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: Sequence[str]):
        self._ids: list[str] = [str(i) for i in ids]
        self._index: dict[str, int] = {v: i for i, v in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("IdMap ids must be unique")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    @property
    def ids(self) -> list[str]:
        return self._ids

    def index(self, key: str) -> int | None:
        return self._index.get(str(key))

    def indices(self, keys: Iterable[str], missing: int = -1) -> np.ndarray:
        """Vectorised lookup; unknown keys get ``missing``."""
        get = self._index.get
        return np.fromiter((get(str(k), missing) for k in keys), dtype=np.int64)

    def id(self, idx: int) -> str:
        return self._ids[idx]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids
