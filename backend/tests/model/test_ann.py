"""The ANN candidate search (``app.model.ann``): exact top-k on well-separated data, exact filters and
exclusions, and None (the caller's exact path) when the filters leave too few candidates."""

from __future__ import annotations

import numpy as np
import pytest

from app.model import ann
from app.model.base import top_k_row

pytest.importorskip("faiss")

N, DIM, CLUSTERS = 3000, 16, 30


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 1, (CLUSTERS, DIM)).astype(np.float32) * 3
    labels = rng.integers(0, CLUSTERS, N)
    factors = (centres[labels] + rng.normal(0, 0.3, (N, DIM))).astype(np.float32)
    bias = rng.normal(0, 0.1, N).astype(np.float32)
    index = ann.IvfIndex(np.hstack([factors, bias[:, None]]), n_probe=8)
    queries = [factors[labels == c][:5].mean(axis=0) for c in range(10)]
    return factors, bias, index, queries


def exact_top(factors, bias, q, k, mask=None, exclude=None):
    return top_k_row(factors @ q + bias, k, mask, exclude)


def search(index, factors, bias, q, k, mask, exclude, total, max_candidates=4096):
    return ann.top(
        index,
        np.append(q, np.float32(1)),
        lambda c: factors[c] @ q + bias[c],
        k,
        mask,
        exclude,
        total,
        overfetch=2.0,
        max_candidates=max_candidates,
    )


def test_the_index_finds_the_exact_top_k(data):
    factors, bias, index, queries = data
    for q in queries:
        ref_idx, ref_scores = exact_top(factors, bias, q, 10)
        idx, scores = search(index, factors, bias, q, 10, None, np.empty(0, np.intp), N)
        assert idx.tolist() == ref_idx.tolist()
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)


def test_filters_and_exclusions_stay_exact(data):
    factors, bias, index, queries = data
    rng = np.random.default_rng(1)
    mask = rng.random(N) < 0.5
    for q in queries:
        near = exact_top(factors, bias, q, 30)[0]
        exclude = np.sort(near[::2]).astype(np.intp)  # half of the best items are "seen"
        total = int(mask.sum() - mask[exclude].sum())
        idx, _ = search(index, factors, bias, q, 10, mask, exclude, total)
        assert mask[idx].all() and not np.isin(idx, exclude).any()
        assert idx.tolist() == exact_top(factors, bias, q, 10, mask, exclude)[0].tolist()


def test_too_few_candidates_pass_and_the_caller_ranks_exactly(data):
    factors, bias, index, queries = data
    mask = np.zeros(N, bool)
    mask[::500] = True  # 6 items pass: far more candidates needed than max_candidates
    got = search(index, factors, bias, queries[0], 10, mask, np.empty(0, np.intp), int(mask.sum()), 256)
    assert got is None
    # candidates grow (x4) until enough pass, up to max_candidates, and then give up
    far = np.zeros(N, bool)
    far[np.argsort(factors @ queries[0] + bias)[:300]] = True  # the 300 worst items only
    assert search(index, factors, bias, queries[0], 10, far, np.empty(0, np.intp), 1500, 600) is None


def test_nearly_everything_excluded_goes_exact_and_nothing_eligible_is_an_empty_list(data):
    factors, bias, index, queries = data
    assert search(index, factors, bias, queries[0], 10, None, np.arange(N - 3, dtype=np.intp), 3) is None
    empty = search(index, factors, bias, queries[0], 10, None, np.arange(N, dtype=np.intp), 0)
    assert empty is not None and empty[0].size == 0


def test_a_cached_index_is_read_back_not_rebuilt(data, tmp_path, monkeypatch):
    """The second call reads the file the first wrote and answers the same; other vectors get their own
    file; a damaged file is built again; without a directory nothing is kept."""
    factors, bias, _, queries = data
    vectors = np.hstack([factors, bias[:, None]])
    first = ann.cached_index(vectors, 0, 8, tmp_path)
    files = list(tmp_path.glob("*.faiss"))
    assert not first.loaded and len(files) == 1 and f"{N}x{DIM + 1}-{first.n_lists}-" in files[0].name
    builds = []
    monkeypatch.setattr(ann.IvfIndex, "__init__", _counting(ann.IvfIndex.__init__, builds))
    again = ann.cached_index(vectors, 0, 8, tmp_path)
    assert again.loaded and builds == [False] and again.n_lists == first.n_lists
    for q in queries:
        query = np.append(q, np.float32(1))
        assert np.array_equal(first.search(query, 20), again.search(query, 20))
    other = ann.cached_index(vectors * 2, 0, 8, tmp_path)
    assert not other.loaded and len(list(tmp_path.glob("*.faiss"))) == 2
    files[0].write_bytes(b"not an index")
    assert not ann.cached_index(vectors, 0, 8, tmp_path).loaded
    assert ann.cached_index(vectors, 0, 8, tmp_path).loaded  # the rebuilt file replaced the damaged one
    assert not ann.cached_index(vectors, 0, 8, None).loaded and len(list(tmp_path.glob("*.faiss"))) == 2


def _counting(init, calls):
    """``IvfIndex.__init__`` that records whether each call builds (True) or is given a read index (False)."""

    def counted(self, *args, built=None, **kwargs):
        calls.append(built is None)
        return init(self, *args, built=built, **kwargs)

    return counted
