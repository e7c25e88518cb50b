"""A production model fitted on other indices is scored and explained in the split's index space (values by hand),
and an unreadable production model is reported, not fatal."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.data.aggregate import to_positives
from app.data.dataset import build_dataset
from app.data.events import read_events
from app.data.idmap import IdMap
from app.eval.splits import leave_last_out
from app.model.base import Explanation
from app.registry.compare import Remapped, production_scorer
from app.registry.versions import Registry
from tests.registry.helpers import synthetic_log, write_jsonl


class RecordingScorer:
    """score = 100 for a known user + 10 * history size + the item's own index (model space)."""

    name = "fake"

    def __init__(self):
        self.seen = None

    def score(self, users, history):
        self.seen = (users.copy(), history.toarray())
        n = history.shape[1]
        return (100.0 * (users >= 0))[:, None] + 10.0 * np.asarray(history.sum(axis=1)) + np.arange(n)[None, :]


def test_remapped_moves_history_and_scores_between_index_spaces():
    scorer = RecordingScorer()
    model_users, model_items = IdMap(["x", "y"]), IdMap(["b", "c", "d"])
    split_users, split_items = IdMap(["y", "z"]), IdMap(["a", "b", "c"])
    r = Remapped(scorer, model_users, model_items, split_users, split_items)
    # split history: y has a and c, z has b
    history = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    scores = r.score(np.array([0, 1]), history)
    users_seen, history_seen = scorer.seen
    assert users_seen.tolist() == [1, -1]  # y is model user 1; z is unknown to the model
    assert history_seen.tolist() == [[0, 1, 0], [1, 0, 0]]  # a is unknown to the model and dropped
    # y: 100 + 10*1 + [0, 1, 2] over (b, c, d) -> split (a, b, c) = (-inf, 110, 111); z: (-inf, 10, 11)
    assert scores.tolist() == [[-np.inf, 110.0, 111.0], [-np.inf, 10.0, 11.0]]
    assert r.coverage == {"users_known": 1, "users": 2, "items_known": 2, "items": 3}
    assert r.score(np.array([-1]), sp.csr_matrix((1, 3), dtype=np.float32)).tolist() == [[-np.inf, 0.0, 1.0]]


def test_remapped_explains_in_the_splits_item_indices():
    class Explaining:
        def explain(self, user, history, items):
            hist = history.indices
            return Explanation(items, hist, np.arange(hist.size * items.size, dtype=float).reshape(hist.size, -1))

    model_items = IdMap(["b", "c", "d"])
    r = Remapped(Explaining(), IdMap(["x", "y"]), model_items, IdMap(["y", "z"]), IdMap(["a", "b", "c"]))
    history = sp.csr_matrix(np.array([[1, 1, 1]], dtype=np.float32))  # a (unknown to the model), b, c
    why = r.explain(0, history, np.array([0, 2]))  # a cannot be explained, c can
    assert why.items.tolist() == [2]
    assert why.history.tolist() == [1, 2]  # model items b, c are split items 1, 2
    assert why.strongest_history().tolist() == [2]


def test_production_scorer_reports_an_unreadable_production_model(tmp_path, model_dir):
    root = tmp_path / "reg"
    reg = Registry(root)
    assert production_scorer(root, None) == (None, None, None)
    reg.register(model_dir("v1"))
    reg.promote("v1", "production")
    log, _ = read_events(write_jsonl(tmp_path / "log.jsonl", synthetic_log(n_users=3, n_items=4, per_user=2, groups=1)))
    split = leave_last_out(build_dataset(to_positives(log)))
    version, scorer, error = production_scorer(root, split)
    assert version == "v1" and error is None and scorer.coverage["items_known"] == 3  # model: i1-i4, split: i0-i3
    (root / "versions" / "v1" / "arrays.npz").write_bytes(b"broken")
    version, scorer, error = production_scorer(root, split)
    assert version == "v1" and scorer is None and "sha256" in error
