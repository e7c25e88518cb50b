"""A tiny hand-made model (12 items, 7 users, 3-d embeddings) served by a test app.

The factors are chosen so rankings can be worked out by hand: Action items point along axis 0,
Comedy along 1, Drama along 2; a user's vector is the mean of their history items' factors
("mean" pooling, no user embedding); the bias (0.001 * index) breaks ties.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.service.http.app import create_app
from tests.service.modeldir import write_model_dir


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("service-model") / "latest", version="test-v1")


def make_settings(model_dir: Path, data_dir: Path, **overrides) -> Settings:
    base = {"min_history_for_nn": 2, "max_k": 50, "impression_flush_seconds": 0.05}
    return Settings(model_dir=model_dir, data_dir=data_dir, **{**base, **overrides})


@pytest.fixture(scope="module")
def client(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app per test module over the shared model (read-only tests)."""
    data_dir = tmp_path_factory.mktemp("service-data")
    app = create_app(make_settings(model_dir, data_dir))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def own_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the model for tests that replace or break it."""
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target
