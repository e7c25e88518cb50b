"""The serving core built directly from the hand-made model (no HTTP client, no store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model.artifacts import load_bundle
from app.service.core.runtime import Runtime
from tests.service.conftest import make_settings


def build_runtime(model_dir: Path, tmp_path: Path, catalogue: dict | None = None, **settings) -> Runtime:
    rt = Runtime(load_bundle(model_dir), model_dir, make_settings(model_dir, tmp_path, **settings), catalogue=catalogue)
    rt.check()
    return rt


@pytest.fixture(scope="module")
def runtime(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return build_runtime(model_dir, tmp_path_factory.mktemp("core"))
