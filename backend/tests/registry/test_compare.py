"""A production model fitted on other indices is scored in the split's index space (values by hand)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.data.idmap import IdMap
from app.registry.compare import Remapped


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
