"""``Runtime``: the loaded model's history, engines, constant scores and precomputed tables, and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.artifacts import ModelLoadError, load_bundle, save_arrays_bundle
from app.service.core.runtime import Runtime
from tests.service.conftest import make_settings
from tests.service.core.conftest import build_runtime
from tests.service.modeldir import ITEM_IDS, USER_IDS, arrays, catalogue


def test_the_runtime_holds_the_models_history_and_its_eager_engines(runtime):
    assert (runtime.n_users, runtime.n_items, runtime.version) == (7, 12, "test-v1")
    u1 = runtime.user_index("u1")
    assert [runtime.items.id(i) for i in runtime.seen(u1)] == ["a1", "a2"]
    assert runtime.history_row(u1).indices.tolist() == runtime.seen(u1).tolist()
    assert runtime.user_index("nobody") is None and runtime.item_index("zzz") is None
    assert runtime.engines.ready == {
        "nn": True,
        "popular": True,
        "baseline": True,
        "itemknn": False,
        "ease": False,
        "als": False,
        "hybrid": False,
    }
    # the test model was written without the hybrid engine: /ready says so, and auto serves nn
    assert runtime.engines.state("hybrid").startswith("not in this model") and runtime.auto_engine == "nn"


def test_popular_scores_count_users_and_trending_decays_old_items(runtime):
    # popularity: d1 5, a1 4, c1 3, a2 a3 c2 d2 d3 1, the rest 0 (modeldir's docstring)
    assert runtime.popular_scores.tolist() == [4, 1, 1, 0, 3, 1, 0, 0, 5, 1, 1, 0]
    # a1's latest interaction is ~300 days older than the others': 4 users, ten half-lives of 30 days
    a1, d1 = runtime.item_index("a1"), runtime.item_index("d1")
    assert runtime.trending_scores[a1] < 0.01 < 1 < runtime.trending_scores[d1]


def test_known_users_scores_come_from_the_table_and_equal_the_served_models(runtime):
    u1 = runtime.user_index("u1")
    # u1 = mean(a1, a2) = [.95, .05, 0]; a3 = [.8, 0, .2] + bias .002 -> .762
    assert runtime.scores("nn", u1)[runtime.item_index("a3")] == pytest.approx(0.762, abs=1e-6)
    assert runtime.tables.user_scores is not None
    for u in range(runtime.n_users):
        direct = runtime.served.score(np.array([u]), runtime.history_row(u))[0]
        np.testing.assert_allclose(runtime.scores("nn", u), direct, rtol=1e-6, atol=1e-7)


def test_without_a_budget_nothing_is_precomputed_and_every_answer_is_computed(model_dir, tmp_path, runtime):
    bare = build_runtime(model_dir, tmp_path, precompute_mb=0)
    t = bare.tables
    assert t.user_best is t.user_why is t.item_best is t.popular_best is t.user_scores is t.item_cosines is None
    for u in range(bare.n_users):
        np.testing.assert_allclose(bare.scores("nn", u), runtime.scores("nn", u), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bare.item_cosines(0), runtime.item_cosines(0), rtol=1e-6, atol=1e-7)


def test_a_model_with_nan_factors_is_refused(tmp_path):
    bad = arrays()
    bad["item_bias"][3] = np.nan
    save_arrays_bundle(
        tmp_path / "m", arrays=bad, user_ids=USER_IDS, item_ids=ITEM_IDS, catalogue=catalogue(), version="nan"
    )
    rt = Runtime(load_bundle(tmp_path / "m"), tmp_path / "m", make_settings(tmp_path / "m", tmp_path))
    with pytest.raises(ModelLoadError, match="item_bias contains NaN"):
        rt.check()


@pytest.mark.parametrize(
    ("name", "break_it", "message"),
    [
        ("item_popularity", lambda a: a.__setitem__(2, np.nan), "item_popularity contains NaN"),
        ("item_popularity", lambda a: a.__setitem__(2, -1.0), "negative counts"),
        ("item_avg_rating", lambda a: a.__setitem__(2, np.inf), "item_avg_rating contains infinite"),
        ("item_factors", lambda a: a.__setitem__(slice(None), 0.0), "item_factors are all zero"),
        ("history_data", lambda a: a.__setitem__(0, np.nan), "history weights contains NaN"),
    ],
)
def test_every_array_of_a_broken_model_is_checked(tmp_path, name, break_it, message):
    """NaN popularity used to load and then answer 500 on GET /items/{id}; all-zero factors served nonsense."""
    bad = arrays()
    break_it(bad[name])
    save_arrays_bundle(tmp_path / "m", arrays=bad, user_ids=USER_IDS, item_ids=ITEM_IDS, catalogue=catalogue())
    with pytest.raises(ModelLoadError, match=message):
        rt = Runtime(load_bundle(tmp_path / "m"), tmp_path / "m", make_settings(tmp_path / "m", tmp_path))
        rt.check()


def test_ready_info_says_what_is_served(runtime):
    info = runtime.ready_info()
    assert info["model_version"] == "test-v1" and info["users"] == 7 and info["items"] == 12
    assert info["genres"] == ["Action", "Comedy", "Drama"] and info["catalogue_items"] == 12
    assert info["engines"]["itemknn"] == "fitted on first use" and info["engines"]["nn"] == "ready"
