"""The engines of a loaded model: eager ones at load, the others fitted on first use within their size limit."""

from __future__ import annotations

import asyncio

import pytest

from app.model.ease import EASERecommender
from app.service.core import strategies
from app.service.core.fitted import EngineUnavailable
from tests.service.core.conftest import build_runtime


def ids(result) -> list[str]:
    return [it["item_id"] for it in result.items]


def test_engines_are_fitted_on_first_use_within_their_size_limit(model_dir, tmp_path, monkeypatch):
    rt = build_runtime(model_dir, tmp_path)
    asyncio.run(rt.engines.ensure("itemknn"))
    assert rt.engines.ready["itemknn"] and strategies.recommend(rt, "u1", 1, "itemknn").engine == "itemknn"
    monkeypatch.setattr(EASERecommender, "max_items", 5)
    with pytest.raises(EngineUnavailable, match="at most 5 items; this model has 12"):
        asyncio.run(rt.engines.ensure("ease"))


def test_a_fit_that_fails_says_why_and_concurrent_first_requests_fit_once(model_dir, tmp_path, monkeypatch):
    rt = build_runtime(model_dir, tmp_path)
    fits = []
    real = rt.engines._fit

    def counted(name):
        fits.append(name)
        return real(name)

    monkeypatch.setattr(rt.engines, "_fit", counted)

    async def three_at_once():
        await asyncio.gather(*(rt.engines.ensure("itemknn") for _ in range(3)))

    asyncio.run(three_at_once())
    assert fits == ["itemknn"]
    monkeypatch.setattr(rt.engines, "_fit", lambda name: (_ for _ in ()).throw(MemoryError("out of memory")))
    with pytest.raises(EngineUnavailable, match="could not be fitted on this model: out of memory"):
        asyncio.run(rt.engines.ensure("als"))
