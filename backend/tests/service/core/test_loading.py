"""Loading a model and swapping it in: what changes a model's signature, failures that name the directory,
and a reload that keeps the working model when the new one is broken."""

from __future__ import annotations

import asyncio
import shutil
from types import SimpleNamespace

import pytest

from app.model.artifacts import ModelLoadError
from app.service.core.loading import ModelManager, load_runtime, model_signature
from tests.service.conftest import make_settings
from tests.service.modeldir import write_model_dir


def test_a_new_model_in_place_changes_the_signature(tmp_path):
    model = write_model_dir(tmp_path / "m", version="one")
    before = model_signature(model)
    write_model_dir(model, version="two")
    assert model_signature(model) != before
    assert model_signature(tmp_path / "missing")[1:] == (None, None, None)


def test_a_broken_directory_is_a_load_error_naming_it(tmp_path):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        load_runtime(tmp_path / "missing", make_settings(tmp_path / "missing", tmp_path))
    model = write_model_dir(tmp_path / "m", version="one")
    (model / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match=str(model)):
        load_runtime(model, make_settings(model, tmp_path))


def test_reload_swaps_in_a_good_model_and_keeps_the_old_one_when_the_new_one_is_broken(model_dir, tmp_path):
    own = tmp_path / "model"
    shutil.copytree(model_dir, own)
    state = SimpleNamespace()
    manager = ModelManager(state, make_settings(own, tmp_path))
    asyncio.run(manager.load_initial())
    assert state.runtime.version == "test-v1" and manager.error is None
    write_model_dir(own, version="test-v2", scale=2.0)
    info = asyncio.run(manager.reload())
    assert (info["model_version"], info["previous_version"], info["changed"]) == ("test-v2", "test-v1", True)
    serving = state.runtime
    (own / "arrays.npz").write_bytes(b"not an npz file")
    with pytest.raises(ModelLoadError):
        asyncio.run(manager.reload())
    assert state.runtime is serving and "arrays.npz" in manager.error
