"""evaluate() with a recommender whose scores are fixed by hand."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from app.eval.evaluate import evaluate


class FixedScores:
    """Returns preset scores for fitted users (a test double that still follows the contract)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, scores: np.ndarray):
        self.scores = np.asarray(scores, dtype=np.float32)

    def fit(self, matrix, features=None):
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self.scores[users]

    def params(self) -> dict[str, Any]:
        return {}


def test_evaluate_hand_computed():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32))  # u0 saw 0, u1 saw 3
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32))  # right answers: 2 and 1
    # u0 scores 9 1 5 3 -> item 0 excluded -> ranking 2, 3, 1: hit at rank 1
    # u1 scores 4 1 2 8 -> item 3 excluded -> ranking 0, 2, 1: hit at rank 3
    rec = FixedScores([[9, 1, 5, 3], [4, 1, 2, 8]])
    out = evaluate(rec, train, test, np.array([0, 1]), ks=(1, 5), batch_size=1, n_boot=200)
    m = out["metrics"]
    assert out["n_users"] == 2
    assert m["ndcg@1"] == 0.5  # (1 + 0) / 2
    assert m["ndcg@5"] == pytest.approx((1 + 1 / np.log2(4)) / 2)  # (1 + 0.5) / 2 = 0.75
    assert m["recall@5"] == 1.0 and m["hitrate@1"] == 0.5
    assert m["precision@5"] == pytest.approx(0.2)  # one hit in 5 slots for each user
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 2)  # 0.6667
    assert m["coverage@100"] == 1.0  # lists {2,3,1} and {0,2,1} cover all 4 items
    lo, hi = out["ci"]["ndcg@5"]  # 10 is not among ks, so the largest k gets the interval
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0


def test_intra_list_diversity_in_genres_by_hand(monkeypatch):
    """Genres of items 0..3: A, A|B, B, A; cosines 0-1, 1-2, 1-3 .7071, 0-2 and 2-3 0, 0-3 1. Beyond
    ``ILD_USERS`` users the mean is over a seeded sample of them."""
    from app.data.features import ItemFeatures
    from app.eval import evaluate as evaluate_module
    from app.eval.evaluate import diversity_vectors

    genres = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=np.float32))
    vectors = diversity_vectors(sp.csr_matrix((2, 4)), ItemFeatures(genres=genres, genre_names=["A", "B"]))
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=np.float32))  # u0 saw 0, u1 saw 2
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32))
    rec = FixedScores([[9, 1, 5, 3], [4, 1, 2, 8]])  # lists: u0 2, 3, 1; u1 3, 0, 1
    out = evaluate(rec, train, test, np.array([0, 1]), n_boot=0, item_vectors=vectors)
    c = 1 / np.sqrt(2)
    u0 = 1 - (0 + c + c) / 3  # pairs 2-3, 2-1, 3-1
    u1 = 1 - (1 + c + c) / 3  # pairs 3-0, 3-1, 0-1
    assert out["metrics"]["ild@10"] == pytest.approx((u0 + u1) / 2)  # (.5286 + .1953) / 2
    monkeypatch.setattr(evaluate_module, "ILD_USERS", 1)  # one user, drawn with the seed
    one = [evaluate(rec, train, test, np.array([0, 1]), n_boot=0, item_vectors=vectors, seed=s) for s in range(6)]
    assert {round(r["metrics"]["ild@10"], 6) for r in one} == {round(u0, 6), round(u1, 6)}
    assert one[0]["metrics"]["ndcg@10"] == out["metrics"]["ndcg@10"]  # the other metrics use every user


def test_intra_list_diversity_defaults_to_who_interacted_with_the_items():
    """Without vectors: each item's column of the fitted matrix, binary (the weight 4 counts as 1). Columns
    0..4 over users u0 u1 u2: (1, 1, 0), (1, 0, 0), (0, 1, 0), none, (0, 0, 1)."""
    train = sp.csr_matrix(np.array([[4, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    rec = FixedScores(np.tile(np.array([4, 3, 2, 1, 0], np.float32), (3, 1)))
    out = evaluate(rec, train, test, np.array([2]), n_boot=0)  # u2's list: 0, 1, 2, 3 (4 is theirs)
    c = 1 / np.sqrt(2)
    # six pairs: 0-1 and 0-2 at cosine .7071, the others 0 (3 has no users)
    assert out["metrics"]["ild@10"] == pytest.approx(1 - 2 * c / 6)  # .7643
    with pytest.raises(ValueError, match="one per item"):
        evaluate(rec, train, test, np.array([2]), n_boot=0, item_vectors=np.ones((4, 2)))


def test_evaluate_checks_shapes():
    rec = FixedScores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        evaluate(rec, sp.csr_matrix((2, 4)), sp.csr_matrix((2, 4)), np.array([0]))
    with pytest.raises(ValueError, match="differ"):
        evaluate(rec, sp.csr_matrix((2, 3)), sp.csr_matrix((2, 4)), np.array([0]))


def test_seen_exclusion_is_everything_seen_before_the_target_except_the_target(tmp_path):
    """u0: a(1) b(2, viewed at 0 first) c(3) positive, d disliked at 1, e skipped at 4;
    u1: a(1) d(2) e(5) positive, c rated 1 star at 2 (the target's second), b skipped at 9."""
    import orjson

    from app.data.aggregate import to_positives
    from app.data.dataset import build_dataset
    from app.data.events import read_events
    from app.eval.evaluate import seen_exclusion
    from app.eval.splits import leave_last_out

    rows = [
        ("u0", "a", "like", 1),
        ("u0", "b", "view", 0),
        ("u0", "b", "like", 2),
        ("u0", "c", "like", 3),
        ("u0", "d", "dislike", 1),
        ("u0", "e", "skip", 4),
        ("u1", "a", "like", 1),
        ("u1", "d", "like", 2),
        ("u1", "e", "like", 5),
        ("u1", "c", "rating", 2),
        ("u1", "b", "skip", 9),
    ]
    t0 = 1_700_000_000
    path = tmp_path / "log.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(
                {"user_id": u, "item_id": i, "event": e, "ts": t0 + ts, **({"rating": 1} if e == "rating" else {})}
            )
            + b"\n"
            for u, i, e, ts in rows
        )
    )
    events, _ = read_events(path)
    split = leave_last_out(build_dataset(to_positives(events)))
    items = split.items

    def excluded(m: sp.csr_matrix) -> list[set[str]]:
        return [{items.id(int(j)) for j in m[u].indices} for u in (split.users.index("u0"), split.users.index("u1"))]

    # validation targets: u0 b (ts 2), u1 d (ts 2); the later test rows (c, e) are not known yet
    assert excluded(seen_exclusion(events, split, "validation")) == [{"a", "d"}, {"a", "c"}]
    assert excluded(seen_exclusion(events, split, "validation", ["dislike"])) == [{"a", "d"}, {"a"}]
    # test targets: u0 c (ts 3), u1 e (ts 5): the validation rows are fitted now
    assert excluded(seen_exclusion(events, split, "test")) == [{"a", "b", "d"}, {"a", "c", "d"}]
    # evaluate() ranks around the exclusion instead of the fitted rows
    fitted, target, users = split.stage_matrices("validation")
    scores = np.zeros((2, len(items)), np.float32)
    scores[:, items.index("d")] = 9.0  # u0 disliked d: excluded, so b (the target) can be first
    scores[:, items.index("b")] = 5.0
    scores[:, items.index("c")] = 7.0  # u1 rated c 1 star: excluded too
    scores[split.users.index("u1"), items.index("d")] = 4.0  # u1's target, behind b (skipped only later)
    scores[split.users.index("u0"), items.index("c")] = 0.0
    res = evaluate(FixedScores(scores), fitted, target, users, n_boot=0, exclude=seen_exclusion(events, split))
    assert res["metrics"]["mrr"] == pytest.approx((1.0 + 1.0 / 2.0) / 2.0)  # u0: b first; u1: b (5) then d (4)


def test_the_keras_model_is_evaluated_with_the_cli_sizing() -> None:
    """On large data the evaluation fits the Keras model the training CLI would ship (sized epochs and
    members); what is given stays, and the other engines' parameters are left alone."""
    from app.eval.runner import sized

    big = (138_000, 27_154)
    assert (sized("nn", {}, big)["epochs"], sized("nn", {}, big)["ensemble"]) == (4, 1)
    assert sized("nn", {"epochs": 9}, big)["epochs"] == 9
    assert sized("nn", {}, (943, 1682))["epochs"] == 40
    assert sized("ease", {"l2": 5.0}, big) == {"l2": 5.0}
