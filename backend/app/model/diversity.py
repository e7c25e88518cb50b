"""Diversity within a ranked list: maximal marginal relevance (MMR) re-ranking and intra-list diversity.

Both measure similarity as the cosine of item vectors (an engine's item embeddings, genre vectors, an
item's column of the interaction matrix). The service re-ranks a pool of candidates with ``mmr`` when a
request asks for ``diversity``; the evaluation reports every engine's ``intra_list_diversity``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.model.base import unit_rows

#: Values of item vectors ``intra_list_diversity`` gathers at once (non-zeros of sparse ones), and the
#: largest dense array it builds: bound its memory whatever the number of lists.
CHUNK_VALUES = 4_000_000
#: ``_shared_gram`` takes at most this many distinct items (its Gram matrix is dense).
GRAM_ITEMS = 2048

Vectors = np.ndarray | sp.spmatrix | sp.sparray


def mmr(candidates: np.ndarray, relevance: np.ndarray, vectors: Vectors, k: int, diversity: float) -> np.ndarray:
    """The ``k`` of ``candidates`` (item indices: rows of ``vectors``) picked greedily by maximal marginal
    relevance, in the order picked (best first).

    Each pick maximises ``(1 - diversity) * rel - diversity * s``: ``rel`` is ``relevance`` (one finite value
    per candidate) min-max scaled to [0, 1] over the candidates (1 for all when they are equal), ``s`` the
    largest cosine of the candidate's vector to those of the items picked before it (0 for the first pick;
    vectors are normalised here, a zero vector has cosine 0 to every other). Equal values go to the more
    relevant candidate, then to the earlier one. ``diversity`` 0 returns exactly the k most relevant (a
    list ranked best first comes back as its first k); 1 starts from the most relevant item and then
    takes each time the item least like those above it."""
    candidates = np.asarray(candidates, dtype=np.int64)
    relevance = np.asarray(relevance, dtype=np.float64)
    if candidates.ndim != 1 or relevance.shape != candidates.shape:
        raise ValueError(f"candidates {candidates.shape} and relevance {relevance.shape} must be 1-D and aligned")
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be between 0 and 1, got {diversity}")
    if not np.isfinite(relevance).all():
        raise ValueError("relevance must be finite")
    k = max(0, min(int(k), candidates.size))
    order = np.argsort(-relevance, kind="stable")  # most relevant first, equal ones in input order
    cand, rel = candidates[order], relevance[order]
    if diversity == 0.0 or k == 0:
        return cand[:k]
    spread = rel[0] - rel[-1]
    gain = (1.0 - diversity) * ((rel - rel[-1]) / spread if spread > 0 else np.ones_like(rel))
    rows = vectors[cand]
    unit = unit_rows(rows.toarray() if sp.issparse(rows) else np.asarray(rows)).astype(np.float64)
    sims = unit @ unit.T
    closest = np.zeros(cand.size)  # largest cosine to the items picked so far
    free = np.ones(cand.size, dtype=bool)
    picked = np.empty(k, dtype=np.int64)
    for step in range(k):
        value = np.where(free, gain - diversity * closest, -np.inf)
        j = int(np.argmax(value))  # the first of equal values: the more relevant
        picked[step] = j
        free[j] = False
        np.maximum(closest, sims[j], out=closest)
    return cand[picked]


def intra_list_diversity(ranked: np.ndarray, vectors: Vectors) -> np.ndarray:
    """Per list (row of ``ranked``: item indices, rows of ``vectors``, -1 for padding): the mean over pairs of
    its items of 1 - the cosine of their vectors (normalised here; a zero vector has cosine 0 to every
    other). NaN for lists of fewer than two items. Float64, one value per row.

    Computed without forming the pairs: for unit vectors the sum of the cosines over ordered pairs is
    ``|sum of the vectors|^2 - sum of their squared lengths``. ``vectors`` may be sparse (CSR, or
    converted here: pass a CSR when calling often); long sparse rows (an item's users in an interaction
    matrix) that many lists share, as popular items are, are multiplied once for all the lists
    (``_shared_gram``) rather than once per list."""
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be a 2-D matrix (lists x positions), got shape {ranked.shape}")
    sparse = sp.issparse(vectors)
    if sparse and vectors.format != "csr":
        vectors = sp.csr_matrix(vectors)
    elif not sparse:
        vectors = np.asarray(vectors)
    n_items = vectors.shape[0]
    valid = (ranked >= 0) & (ranked < n_items)
    counts = valid.sum(axis=1)
    items = ranked[valid]
    if sparse:
        cost = np.where(valid, np.diff(vectors.indptr)[np.where(valid, ranked, 0)], 0).sum(axis=1)
        got = _shared_gram(items, counts, vectors, int(cost.sum()))
        if got is not None:
            return _mean_distance(*got, counts)
    else:
        cost = counts * max(1, vectors.shape[1])
    out = np.full(ranked.shape[0], np.nan)
    cum = np.cumsum(cost)
    start = 0
    while start < ranked.shape[0]:
        done = cum[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cum, done + CHUNK_VALUES, side="right")))
        rows = slice(start, stop)
        out[rows] = _mean_distance(*_summed(ranked[rows][valid[rows]], counts[rows], vectors), counts[rows])
        start = stop
    return out


def _unit_sparse(rows: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse rows scaled to length 1 (zero rows stay zero), float64, and their lengths before."""
    rows = sp.csr_matrix(rows, dtype=np.float64)
    lengths = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64).ravel())
    scale = np.divide(1.0, lengths, out=np.zeros_like(lengths), where=lengths > 0)
    return sp.csr_matrix(sp.diags(scale) @ rows), lengths


def _summed(items: np.ndarray, counts: np.ndarray, vectors: Vectors) -> tuple[np.ndarray, np.ndarray]:
    """Per list (its items one list after the other, ``counts`` each): ``|sum of its unit vectors|^2`` and the
    number of its items with a vector, the sum formed per list."""
    owner = np.repeat(np.arange(counts.size), counts)
    if sp.issparse(vectors):
        unit, lengths = _unit_sparse(vectors[items])
    else:
        gathered = np.asarray(vectors[items], dtype=np.float64)
        lengths = np.sqrt(np.einsum("ij,ij->i", gathered, gathered))
        unit = gathered * np.divide(1.0, lengths, out=np.zeros_like(lengths), where=lengths > 0)[:, None]
    # one row per list summing its unit vectors: a lists x items indicator times the vectors
    sums = sp.csr_matrix((np.ones(items.size), (owner, np.arange(items.size))), shape=(counts.size, items.size)) @ unit
    if sp.issparse(sums):
        total = np.asarray(sums.multiply(sums).sum(axis=1), dtype=np.float64).ravel()
    else:
        total = np.einsum("ij,ij->i", sums, sums)
    return total, np.bincount(owner, weights=(lengths > 0).astype(np.float64), minlength=counts.size)


def _shared_gram(
    items: np.ndarray, counts: np.ndarray, vectors: sp.csr_matrix, per_list: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``_summed`` from the cosines of the lists' distinct items (one sparse product for them all), when that
    is less work than the ``per_list`` non-zeros a sum per list reads: lists that share long rows. None
    when it is not (or the distinct items are too many for a dense Gram matrix, or their rows too long)."""
    distinct, where = np.unique(items, return_inverse=True)
    if distinct.size > GRAM_ITEMS or distinct.size == items.size or counts.size * distinct.size > CHUNK_VALUES:
        return None
    if int(np.diff(vectors.indptr)[distinct].sum()) > CHUNK_VALUES:
        return None
    unit, lengths = _unit_sparse(vectors[distinct])
    per_column = np.bincount(unit.indices, minlength=unit.shape[1]).astype(np.float64)
    if float(per_column @ per_column) >= per_list:  # the product's work: each column's non-zeros squared
        return None
    gram = (unit @ unit.T).toarray()
    owner = np.repeat(np.arange(counts.size), counts)
    member = sp.csr_matrix((np.ones(items.size), (owner, where)), shape=(counts.size, distinct.size))
    total = np.asarray(member.multiply(member @ gram).sum(axis=1), dtype=np.float64).ravel()
    return total, np.bincount(owner, weights=(lengths[where] > 0).astype(np.float64), minlength=counts.size)


def _mean_distance(total: np.ndarray, own: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """1 - the mean cosine over ordered pairs, from ``|sum of the unit vectors|^2`` (``total``), the number of
    items with a vector (``own``: their cosine to themselves) and the list lengths; NaN below two items."""
    pairs = counts * (counts - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts >= 2, 1.0 - (total - own) / pairs, np.nan)
