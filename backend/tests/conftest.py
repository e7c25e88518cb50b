"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ml100k_dir() -> Path | None:
    """MovieLens 100K from ``ML100K_DIR`` or ``../shared/datasets/ml-100k``; None when neither exists."""
    candidates = [os.environ.get("ML100K_DIR"), str(ROOT.parent / "shared" / "datasets" / "ml-100k")]
    for c in candidates:
        if c and (Path(c) / "u.data").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def ml100k() -> Path:
    path = ml100k_dir()
    if path is None:
        pytest.skip("MovieLens 100K not found: set ML100K_DIR or put it at ../shared/datasets/ml-100k")
    return path
