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
