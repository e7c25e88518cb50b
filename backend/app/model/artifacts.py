"""A trained model on disk: write a model directory atomically, load it back with NumPy only.

Layout (one directory per model)::

    metadata.json   version, created_at, model_type, user_ids, item_ids, hyperparameters,
                    data_summary, metrics, library_versions, files (sha256 of every other file)
    arrays.npz      user_factors, history_factors, item_factors, item_bias,
                    history_indptr/indices/data (training positives, users x items CSR),
                    item_popularity, item_avg_rating (NaN when unknown), item_last_ts,
                    optional seen_indptr/seen_indices (every item each user interacted with, any
                    event type that counts as seen; older models have only the positives)
    model.keras     the trained Keras model (optional for arrays-only bundles; never read by the service)
    items.jsonl     the catalogue as used
    hybrid.npz      optional: the hybrid engine's feature store, trending scores and ALS item factors
    ranker.txt      optional, with hybrid.npz: its LightGBM rankers (a JSON list of LightGBM's text format);
                    ``metadata["hybrid"]`` holds its parameters, sources and feature names

A directory is written next to its target under a temporary name and renamed into place, so a crash
never leaves a half-written model. Loading checks every file against the sha256 recorded in
``metadata.json``, and the array shapes against the ID lists, so files of two different models never
load together. TensorFlow is imported only by ``load_keras`` and by saving a Keras model.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp

from app.data.catalog import read_items
from app.data.events import IngestError
from app.data.idmap import IdMap
from app.files import atomic_file, replace_dir_atomic, sha256_file
from app.model.embedding_scoring import POOLINGS, SavedEmbedding, user_vectors

METADATA = "metadata.json"
ARRAYS = "arrays.npz"
KERAS = "model.keras"
ITEMS = "items.jsonl"
HYBRID_ARRAYS = "hybrid.npz"
RANKER = "ranker.txt"
MODEL_TYPE = "nn"
ARRAY_NAMES = (
    "user_factors",
    "history_factors",
    "item_factors",
    "item_bias",
    "history_indptr",
    "history_indices",
    "history_data",
    "item_popularity",
    "item_avg_rating",
    "item_last_ts",
)
#: Optional arrays: models written before they existed load without them.
SEEN_ARRAYS = ("seen_indptr", "seen_indices")


class ModelLoadError(RuntimeError):
    """The model directory is missing files, or its files do not belong together; the message says which."""


def new_version(now: datetime | None = None) -> str:
    """Sortable, unique version id, e.g. ``20261122-0512-ab12cd``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the model (TensorFlow/Keras only when already imported)."""
    import sys

    import scipy

    out = {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__}
    for name in ("keras", "tensorflow"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = str(getattr(mod, "__version__", "unknown"))
    return out


def write_model_dir(target: Path, write_files, metadata: dict[str, Any]) -> Path:
    """Write a model directory atomically (``app.files.replace_dir_atomic``).

    ``write_files(tmp_dir)`` writes every file except ``metadata.json``; their sha256 go into
    ``metadata["files"]``, then metadata is written, and the directory replaces ``target`` in one
    rename. On any error ``target`` is left as it was.
    """

    def write(tmp: Path) -> None:
        write_files(tmp)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file() and p.name != METADATA}
        with atomic_file(tmp / METADATA, durable=False) as fh:  # the directory is fsynced as a whole
            fh.write(
                orjson.dumps({**metadata, "files": files}, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
            )

    return replace_dir_atomic(Path(target), write)


def seen_arrays(seen: sp.spmatrix) -> dict[str, np.ndarray]:
    """The optional ``seen_indptr``/``seen_indices`` arrays of a users x items seen matrix."""
    m = sp.csr_matrix(seen)
    m.sum_duplicates()
    return {"seen_indptr": m.indptr.astype(np.int64), "seen_indices": m.indices.astype(np.int32)}


def history_arrays(history: sp.spmatrix) -> dict[str, np.ndarray]:
    h = sp.csr_matrix(history, dtype=np.float32)
    h.sort_indices()
    return {
        "history_indptr": h.indptr.astype(np.int64),
        "history_indices": h.indices.astype(np.int64),
        "history_data": h.data.astype(np.float32),
    }


def _catalogue_bytes(catalogue: Mapping[str, Mapping[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(dict(item), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for item in catalogue.values())


def save_arrays_bundle(
    model_dir: str | os.PathLike[str],
    *,
    arrays: Mapping[str, np.ndarray],
    user_ids: list[str],
    item_ids: list[str],
    catalogue: Mapping[str, Mapping[str, Any]] | None = None,
    version: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    data_summary: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    keras_model: Any = None,
    extra_metadata: Mapping[str, Any] | None = None,
    hybrid: tuple[Mapping[str, np.ndarray], Mapping[str, Any]] | None = None,
) -> Path:
    """Write a model directory from its arrays (and, when given, the Keras model as ``model.keras`` and
    the hybrid engine's ``HybridRecommender.state()`` as ``hybrid.npz`` + ``ranker.txt``).

    ``arrays`` must hold every name in ``ARRAY_NAMES``; ``hyperparameters["history_pooling"]``
    defaults to ``"mean"``. Returns the directory.
    """
    missing = [n for n in ARRAY_NAMES if n not in arrays]
    if missing:
        raise ValueError(f"arrays missing: {', '.join(missing)}")
    hp = {"history_pooling": "mean", **dict(hyperparameters or {})}
    _validate_arrays({k: np.asarray(v) for k, v in arrays.items()}, len(user_ids), len(item_ids), hp["history_pooling"])
    created = datetime.now(UTC)
    metadata = {
        "version": version or new_version(created),
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "model_type": MODEL_TYPE,
        "user_ids": list(map(str, user_ids)),
        "item_ids": list(map(str, item_ids)),
        "hyperparameters": hp,
        "data_summary": dict(data_summary or {}),
        "metrics": dict(metrics or {}),
        "library_versions": library_versions(),
        **dict(extra_metadata or {}),
    }
    if hybrid is not None:
        metadata["hybrid"] = {**dict(metadata.get("hybrid", {})), **dict(hybrid[1]["meta"])}

    def write(tmp: Path) -> None:
        with open(tmp / ARRAYS, "wb") as f:
            np.savez(f, **{n: np.asarray(arrays[n]) for n in (*ARRAY_NAMES, *SEEN_ARRAYS) if n in arrays})
        (tmp / ITEMS).write_bytes(_catalogue_bytes(catalogue or {}))
        if keras_model is not None:
            keras_model.save(tmp / KERAS)
        if hybrid is not None:
            with open(tmp / HYBRID_ARRAYS, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in hybrid[0].items()})
            (tmp / RANKER).write_text(hybrid[1]["ranker"], encoding="utf-8")

    if keras_model is not None:
        metadata["library_versions"] = library_versions()  # Keras is imported by now
    return write_model_dir(Path(model_dir), write, metadata)


def _validate_arrays(arrays: Mapping[str, np.ndarray], n_users: int, n_items: int, pooling: str) -> None:
    """Shapes must agree with each other and with the ID lists; raises ``ModelLoadError`` saying what differs."""
    if pooling not in POOLINGS:
        raise ModelLoadError(f"hyperparameters.history_pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    item_f = arrays["item_factors"]
    if item_f.ndim != 2 or item_f.shape[0] != n_items:
        raise ModelLoadError(f"item_factors has shape {item_f.shape}, expected ({n_items}, d) for {n_items} item ids")
    d = item_f.shape[1]
    expect = {
        "user_factors": (n_users, d),
        "history_factors": (n_items, d),
        "item_bias": (n_items,),
        "history_indptr": (n_users + 1,),
        "item_popularity": (n_items,),
        "item_avg_rating": (n_items,),
        "item_last_ts": (n_items,),
    }
    for name, shape in expect.items():
        if arrays[name].shape != shape:
            raise ModelLoadError(
                f"{name} has shape {arrays[name].shape}, expected {shape} "
                f"({n_users} users, {n_items} items, dimension {d})"
            )
    indptr, indices = arrays["history_indptr"], arrays["history_indices"]
    if indptr[0] != 0 or indptr[-1] != indices.size or arrays["history_data"].size != indices.size:
        raise ModelLoadError("history_indptr/indices/data do not form a CSR matrix")
    if indices.size and (indices.min() < 0 or indices.max() >= n_items):
        raise ModelLoadError(f"history_indices out of range for {n_items} items")
    if any(n in arrays for n in SEEN_ARRAYS):
        if not all(n in arrays for n in SEEN_ARRAYS):
            raise ModelLoadError(f"{' and '.join(SEEN_ARRAYS)} come together; one of them is missing")
        s_ptr, s_idx = arrays["seen_indptr"], arrays["seen_indices"]
        if s_ptr.shape != (n_users + 1,) or s_ptr[0] != 0 or s_ptr[-1] != s_idx.size:
            raise ModelLoadError(f"seen_indptr/seen_indices do not form a CSR matrix of {n_users} users")
        if s_idx.size and (s_idx.min() < 0 or s_idx.max() >= n_items):
            raise ModelLoadError(f"seen_indices out of range for {n_items} items")


class ModelBundle:
    """A loaded model directory: metadata, ID maps, arrays, training history and catalogue."""

    def __init__(
        self,
        path: Path,
        metadata: dict[str, Any],
        arrays: Mapping[str, np.ndarray],
        catalogue: dict[str, dict[str, Any]],
    ):
        self.path = path
        self.metadata = metadata
        self.version: str = str(metadata["version"])
        self.users = IdMap(metadata["user_ids"])
        self.items = IdMap(metadata["item_ids"])
        self.pooling: str = str(metadata.get("hyperparameters", {}).get("history_pooling", "mean"))
        self.user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.history_factors = np.asarray(arrays["history_factors"], dtype=np.float32)
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        self.item_bias = np.asarray(arrays["item_bias"], dtype=np.float32)
        self.item_popularity = np.asarray(arrays["item_popularity"], dtype=np.float64)
        self.item_avg_rating = np.asarray(arrays["item_avg_rating"], dtype=np.float32)
        self.item_last_ts = np.asarray(arrays["item_last_ts"], dtype=np.int64)
        self.history = sp.csr_matrix(
            (
                arrays["history_data"].astype(np.float32),
                arrays["history_indices"].astype(np.int64),
                arrays["history_indptr"].astype(np.int64),
            ),
            shape=(len(self.users), len(self.items)),
        )
        #: Every item each user interacted with (positives included): what serving never recommends back.
        self.seen = self.history.copy()
        if "seen_indptr" in arrays:
            given = sp.csr_matrix(
                (
                    np.ones(arrays["seen_indices"].size, np.float32),
                    arrays["seen_indices"].astype(np.int64),
                    arrays["seen_indptr"].astype(np.int64),
                ),
                shape=self.history.shape,
            )
            self.seen = self.seen + given
        self.seen.sum_duplicates()
        self.seen.data[:] = 1.0
        self.catalogue = catalogue

    @property
    def embedding_dim(self) -> int:
        return int(self.item_factors.shape[1])

    def user_vectors(self, users: np.ndarray, history: sp.spmatrix | None) -> np.ndarray:
        """(n, d): own embedding (0 for -1) + pooled history embeddings (``history`` rows, same order)."""
        return user_vectors(users, history, self.user_factors, self.history_factors, self.pooling)

    def scorer(self) -> SavedEmbedding:
        """The trained model as an engine (the ``Recommender`` contract, NumPy only): the service's "nn"."""
        return SavedEmbedding(
            self.user_factors,
            self.history_factors,
            self.item_factors,
            self.item_bias,
            self.pooling,
            dict(self.metadata.get("hyperparameters", {})),
        )

    @property
    def has_hybrid(self) -> bool:
        return (self.path / HYBRID_ARRAYS).is_file() and "hybrid" in self.metadata

    def hybrid(self, nn: Any) -> Any:
        """The hybrid engine saved with this model (a ``HybridRecommender``; ``nn``: the served embedding
        model, one of its sources); ``ModelLoadError`` when the directory has none or it does not load."""
        from app.model.hybrid import HybridRecommender

        if not self.has_hybrid:
            raise ModelLoadError(
                f"{self.path}: no hybrid engine in this model directory (train with --pipeline hybrid)"
            )
        try:
            with np.load(self.path / HYBRID_ARRAYS, allow_pickle=False) as npz:
                arrays = {n: npz[n] for n in npz.files}
            saved = {"meta": self.metadata["hybrid"], "ranker": (self.path / RANKER).read_text(encoding="utf-8")}
            return HybridRecommender.restore(arrays, saved, nn, self.history)
        except (OSError, ValueError, KeyError) as e:
            raise ModelLoadError(f"{self.path}: the hybrid engine does not load ({e})") from None

    def load_keras(self):
        """The trained Keras model (imports TensorFlow); ``ModelLoadError`` for arrays-only bundles."""
        path = self.path / KERAS
        if not path.is_file():
            raise ModelLoadError(f"{self.path}: no {KERAS} in this model directory (arrays-only bundle)")
        from app.model.embedding_training import load_keras_model

        return load_keras_model(path)


def load_bundle(model_dir: str | os.PathLike[str]) -> ModelBundle:
    """Load and verify a model directory; ``ModelLoadError`` with the reason when it is not usable."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelLoadError(f"{path}: model directory not found (train one with `python -m app.registry.train`)")
    meta_path = path / METADATA
    if not meta_path.is_file():
        raise ModelLoadError(f"{path}: {METADATA} is missing")
    try:
        metadata = orjson.loads(meta_path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise ModelLoadError(f"{meta_path}: invalid JSON ({e})") from None
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{meta_path}: expected a JSON object")
    for key in ("version", "user_ids", "item_ids", "hyperparameters", "files"):
        if key not in metadata:
            raise ModelLoadError(f"{meta_path}: field {key!r} is missing")
    files = metadata["files"]
    if not isinstance(files, dict) or ARRAYS not in files:
        raise ModelLoadError(f"{meta_path}: 'files' must list the sha256 of {ARRAYS} (and the other files)")
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise ModelLoadError(f"{path}: {name} is listed in {METADATA} but missing")
        if sha256_file(f) != digest:
            raise ModelLoadError(
                f"{path}: {name} does not belong to model {metadata['version']} (sha256 differs from {METADATA}); "
                "the files come from different trainings - retrain or restore the whole directory"
            )
    for name in (KERAS, ARRAYS, HYBRID_ARRAYS, RANKER):
        if (path / name).is_file() and name not in files:
            raise ModelLoadError(f"{path}: {name} is not listed in {METADATA}, so it may belong to another model")
    try:
        with np.load(path / ARRAYS, allow_pickle=False) as npz:
            arrays = {n: npz[n] for n in npz.files}
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path / ARRAYS}: cannot read ({e})") from None
    missing = [n for n in ARRAY_NAMES if n not in arrays]
    if missing:
        raise ModelLoadError(f"{path / ARRAYS}: arrays missing: {', '.join(missing)}")
    pooling = str(metadata["hyperparameters"].get("history_pooling", "mean"))
    _validate_arrays(arrays, len(metadata["user_ids"]), len(metadata["item_ids"]), pooling)
    catalogue: dict[str, dict[str, Any]] = {}
    if (path / ITEMS).is_file():
        try:
            catalogue = read_items(path / ITEMS, strict=True)
        except IngestError as e:
            raise ModelLoadError(f"bad catalogue line: {e}") from None
    return ModelBundle(path, metadata, arrays, catalogue)
