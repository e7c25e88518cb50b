"""Model directories: round trip with identical scores, hash checks, atomic replacement, NumPy-only loading."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
import scipy.sparse as sp

from app.model.artifacts import (
    ARRAY_NAMES,
    ModelLoadError,
    history_arrays,
    load_bundle,
    save_arrays_bundle,
    write_model_dir,
)
from app.model.embedding_scoring import pooled_rows

from .conftest import N_ITEMS, N_USERS

USER_IDS = [f"u{i:02d}" for i in range(N_USERS)]
ITEM_IDS = [f"i{i:02d}" for i in range(N_ITEMS)]
CATALOGUE = {
    i: {"item_id": i, "title": f"Title {i}", "genres": ["A" if n < 10 else "B"], "year": 2000}
    for n, i in enumerate(ITEM_IDS)
}


def arrays_of(model, matrix) -> dict[str, np.ndarray]:
    return {
        "user_factors": model.user_factors,
        "history_factors": model.history_factors,
        "item_factors": model.item_factors,
        "item_bias": model.item_bias,
        **history_arrays(matrix),
        "item_popularity": np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64),
        "item_avg_rating": np.full(N_ITEMS, np.nan, np.float32),
        "item_last_ts": np.zeros(N_ITEMS, np.int64),
    }


def save(path: Path, model, matrix, version: str = "v1", keras: bool = True) -> Path:
    return save_arrays_bundle(
        path,
        arrays=arrays_of(model, matrix),
        user_ids=USER_IDS,
        item_ids=ITEM_IDS,
        catalogue=CATALOGUE,
        version=version,
        hyperparameters=model.params(),
        metrics={"ndcg@10": 0.5},
        keras_model=model.keras_model if keras else None,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory, trained, planted) -> Path:
    return save(tmp_path_factory.mktemp("models") / "latest", trained, planted)


def test_round_trip_identical_scores(saved, trained, planted):
    bundle = load_bundle(saved)
    assert bundle.version == "v1"
    assert bundle.users.ids == USER_IDS and bundle.items.ids == ITEM_IDS
    assert bundle.catalogue["i03"]["title"] == "Title i03"
    assert (bundle.history != planted).nnz == 0
    meta = bundle.metadata
    assert set(meta["files"]) == {"arrays.npz", "items.jsonl", "model.keras"}
    assert (
        meta["model_type"] == "nn" and meta["hyperparameters"]["history_pooling"] == trained.params()["history_pooling"]
    )
    assert {"numpy", "keras", "tensorflow"} <= set(meta["library_versions"])
    users = np.arange(N_USERS)
    numpy_scores = bundle.scorer().score(users, planted)
    np.testing.assert_array_equal(numpy_scores, trained.score(users, planted))
    # the Keras model saved as model.keras gives the same scores as NumPy over arrays.npz
    keras_model = bundle.load_keras()
    pooled = pooled_rows(planted, bundle.pooling).toarray()
    keras_scores = np.asarray(keras_model.predict({"user": users.astype(np.int32), "history": pooled}, verbose=0))
    np.testing.assert_allclose(keras_scores, numpy_scores, rtol=1e-4, atol=1e-5)


def test_unknown_user_from_seed_items(saved):
    bundle = load_bundle(saved)
    found = bundle.items.indices(["i11", "i15", "not-an-item"])
    assert found.tolist()[2] == -1
    seeds = sp.csr_matrix((np.ones(2, np.float32), ([0, 0], found[:2])), shape=(1, len(bundle.items)))
    scores = bundle.scorer().score(np.array([-1]), seeds)[0]
    scores[[11, 15]] = -np.inf
    assert set(np.argsort(-scores)[:5]) <= set(range(10, 20))


def test_swapped_file_is_refused(tmp_path, saved, trained, planted):
    other = save(tmp_path / "other", trained, planted[::-1], version="v2")  # same shapes, other history
    mixed = tmp_path / "mixed"
    shutil.copytree(saved, mixed)
    shutil.copy(other / "arrays.npz", mixed / "arrays.npz")
    with pytest.raises(ModelLoadError, match=r"arrays\.npz does not belong to model v1"):
        load_bundle(mixed)
    shutil.copy(saved / "arrays.npz", mixed / "arrays.npz")
    load_bundle(mixed)  # restored: loads again
    (mixed / "model.keras").write_bytes(b"not the model")
    with pytest.raises(ModelLoadError, match=r"model\.keras does not belong"):
        load_bundle(mixed)


@pytest.mark.parametrize("damage", ["no-dir", "no-metadata", "bad-json", "no-arrays", "unlisted-keras", "bad-shape"])
def test_broken_directory_is_a_clear_error(tmp_path, saved, trained, planted, damage):
    d = tmp_path / "m"
    if damage != "no-dir":
        shutil.copytree(saved, d)
    if damage == "no-metadata":
        (d / "metadata.json").unlink()
    elif damage == "bad-json":
        (d / "metadata.json").write_text("{nope")
    elif damage == "no-arrays":
        (d / "arrays.npz").unlink()
    elif damage == "unlisted-keras":
        meta = orjson.loads((d / "metadata.json").read_bytes())
        del meta["files"]["model.keras"]
        (d / "metadata.json").write_bytes(orjson.dumps(meta))
    elif damage == "bad-shape":
        meta = orjson.loads((d / "metadata.json").read_bytes())
        meta["item_ids"] = meta["item_ids"][:-1]  # ID list no longer matches the arrays
        (d / "metadata.json").write_bytes(orjson.dumps(meta))
    with pytest.raises(ModelLoadError):
        load_bundle(d)


def test_failed_write_leaves_previous_model(tmp_path, trained, planted):
    target = save(tmp_path / "latest", trained, planted, version="old")

    def crash(tmp: Path) -> None:
        (tmp / "arrays.npz").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_model_dir(target, crash, {"version": "new"})
    assert load_bundle(target).version == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]  # no temporary directory left behind
    # a successful save replaces the old model and cleans up
    save(target, trained, planted, version="new", keras=False)
    bundle = load_bundle(target)
    assert bundle.version == "new" and not (target / "model.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]
    with pytest.raises(ModelLoadError, match=r"no model\.keras"):
        bundle.load_keras()


def test_missing_array_refused_on_save(tmp_path, trained, planted):
    arrays = arrays_of(trained, planted)
    del arrays["item_bias"]
    with pytest.raises(ValueError, match="item_bias"):
        save_arrays_bundle(tmp_path / "m", arrays=arrays, user_ids=USER_IDS, item_ids=ITEM_IDS)
    assert not (tmp_path / "m").exists()
    assert "item_bias" in ARRAY_NAMES


def test_loading_does_not_import_tensorflow(saved):
    code = (
        "import sys; from app.model.artifacts import load_bundle; import numpy as np; "
        f"b = load_bundle({str(saved)!r}); b.scorer().score(np.array([0, -1]), b.history[[0, 1]]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
