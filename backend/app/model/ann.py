"""Approximate nearest-neighbour candidates (FAISS IVF-Flat) for catalogues too large to score whole per request.

From ``RECOMMENDER_ANN_MIN_ITEMS`` items on, the serving runtime builds two inverted-file indexes when it
loads a model: one over the item embeddings with their bias, since a personal score is the inner
product ``[user_vec, 1] . [item_factors, item_bias]``, and one over the unit item embeddings (the
cosine that ``/similar`` ranks by). IVF-Flat rather than HNSW: on 1,000,000 clustered synthetic items
it found 0.996 of the exact top 10 at 0.56 ms p95, where HNSW graphs (M=16, in L2 after the usual
extra coordinate for inner products) found 0.46-0.66 at ef 128-512 and took longer to build
(``benchmarks/ann.py``).

The index only proposes candidates. ``top`` scores them exactly (with the caller's NumPy formula),
applies the filter mask and the exclusions exactly, and answers only when at least min(k, eligible)
candidates pass. If too few pass, it asks for four times as many, up to ``max_candidates``, and
otherwise returns None so that the caller scores the whole catalogue (the exact path). Below the
threshold nothing here is used.

``cached_index`` keeps a built index in a directory, named by a hash of the vectors it indexes and the
number of lists: a restart, or the other workers of the same server, read it instead of building it
again (17 s at 1,000,000 items on 2 cores), and a new model's vectors get a new file.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.files import file_lock
from app.model.base import top_k_row


def n_lists_for(n: int, n_lists: int = 0) -> int:
    """``n_lists``, or 4 sqrt(n) (4,000 at 1M items); at least 39 items a list (what k-means needs to train)."""
    lists = n_lists or int(4 * math.sqrt(n))
    return max(1, min(lists, n // 39))


class IvfIndex:
    """An inverted-file index over ``vectors`` (n x d) that finds the largest inner products with a query:
    k-means splits the items into ``n_lists`` lists, and a query scans every item of the ``n_probe``
    lists whose centroids have the largest inner products with it (exhaustive within them)."""

    def __init__(self, vectors: np.ndarray, n_lists: int = 0, n_probe: int = 16, *, built: object = None):
        import faiss  # only loaded when a catalogue is large enough to need it

        started = time.perf_counter()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        self.n, self.dim = x.shape
        if built is None:
            faiss.omp_set_num_threads(os.cpu_count() or 1)  # the build (k-means, adding) on every core
            lists = n_lists_for(self.n, n_lists)
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, lists, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).choice(self.n, min(self.n, 64 * lists), replace=False)
            self.index.train(x[np.sort(sample)])
            self.index.add(x)
        else:  # read by ``cached_index``
            self.index = built
        self.n_lists = int(self.index.nlist)
        self.index.nprobe = max(1, min(int(n_probe), self.n_lists))
        self.build_seconds = time.perf_counter() - started
        self.loaded = built is not None
        # A search is one request's: the service runs requests side by side, so a query takes one thread
        # (this also keeps the OpenBLAS faiss brings to one thread, like the service's own BLAS).
        faiss.omp_set_num_threads(1)

    @property
    def nbytes(self) -> int:
        """Memory of the stored vectors, their ids and the centroids."""
        return self.n * (self.dim * 4 + 8) + self.n_lists * self.dim * 4

    def search(self, query: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` item indices with the largest inner products with ``query`` (approximately), best first."""
        n = max(1, min(int(n), self.n))
        _, found = self.index.search(np.ascontiguousarray(query[None, :], dtype=np.float32), n)
        found = found[0]
        return found[found >= 0].astype(np.intp, copy=False)


def cached_index(vectors: np.ndarray, n_lists: int, n_probe: int, cache_dir: Path | None) -> IvfIndex:
    """The index over ``vectors``, read from ``cache_dir`` when it was built before, else built and kept there.

    The file is named by a hash of the vectors and the number of lists, so it can only be the index of
    these vectors; a lock makes the workers that start together build it once. An unreadable file is
    built again. ``cache_dir`` None: always built, nothing kept."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if cache_dir is None:
        return IvfIndex(x, n_lists, n_probe)
    lists = n_lists_for(x.shape[0], n_lists)
    digest = hashlib.sha256(x.tobytes()).hexdigest()[:24]
    path = Path(cache_dir) / f"ivf-{x.shape[0]}x{x.shape[1]}-{lists}-{digest}.faiss"
    with file_lock(path.with_suffix(".lock")):
        if path.is_file():
            try:
                built = faiss.read_index(str(path))
                if built.ntotal == x.shape[0] and built.d == x.shape[1]:
                    return IvfIndex(x, lists, n_probe, built=built)
            except RuntimeError:  # a damaged file: build it again
                pass
        index = IvfIndex(x, lists, n_probe)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        faiss.write_index(index.index, str(tmp))
        os.replace(tmp, path)  # readers see the whole file or none
        return index


def top(
    index: IvfIndex,
    query: np.ndarray,
    exact: Callable[[np.ndarray], np.ndarray],
    k: int,
    mask: np.ndarray | None,
    exclude: np.ndarray,
    total: int,
    overfetch: float,
    max_candidates: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The best min(k, total) items among the index's candidates for ``query``, scored with ``exact``
    (candidate indices -> float32 scores), inside ``mask`` and not in ``exclude``; ties go to the
    lower item index as in ``top_k_row``. ``total``: the eligible count. Returns None when the
    candidates cannot answer (the filters or exclusions leave too few), so the caller ranks exactly."""
    want = min(int(k), int(total))
    if want <= 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    # Eligible items are about total / n of the candidates; excluded items (seen) tend to be near the query.
    n = math.ceil(want * overfetch * index.n / total) + int(exclude.size)
    cap = min(int(max_candidates), index.n)
    if n > cap:
        return None
    while True:
        cand = np.sort(index.search(query, n))  # item order, so local ties break as item indices do
        ok = np.ones(cand.size, bool) if mask is None else mask[cand]
        if exclude.size:
            ok &= ~np.isin(cand, exclude, assume_unique=False)
        if int(ok.sum()) >= want:
            scores = np.asarray(exact(cand), dtype=np.float32)
            local, best = top_k_row(scores, want, ok)
            return cand[local].astype(np.int64, copy=False), best
        if n >= cap:
            return None
        n = min(n * 4, cap)
