"""Fixtures for the registry tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.registry.helpers import write_model_dir


@pytest.fixture
def model_dir(tmp_path: Path) -> Callable[..., Path]:
    """``make(version, ndcg=0.1, seed=0)`` -> a loadable model directory under tmp_path/trained/."""

    def make(version: str, ndcg: float = 0.1, seed: int = 0) -> Path:
        return write_model_dir(tmp_path / "trained" / version, version, ndcg, seed)

    return make
