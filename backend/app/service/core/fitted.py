"""The engines a loaded model serves: the trained model itself, and the others fitted on its history.

The trained model ("nn") and the cheap engines are ready at load; the others are fitted on their
first request, off the event loop, once (concurrent first requests wait for the same fit). An engine
the catalogue is too large for (its ``max_items``) is refused with the reason instead of being fitted.
The hybrid engine is never fitted here: it is restored from what training saved with the model
(``ModelBundle.hybrid``), at load when ``auto`` serves it, else on its first request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Recommender
from app.model.engines import ENGINES, make_engine, too_large

log = logging.getLogger(__name__)

#: Fitted when a model is loaded (cheap at any catalogue size); the others on their first request.
EAGER = ("popular", "baseline")


class EngineUnavailable(ValueError):
    """An engine that exists but cannot serve this model (e.g. EASE on a huge catalogue), or is not fitted yet."""


class FittedEngines:
    """Engines by name for one loaded model (read-only for requests once an engine is in)."""

    def __init__(
        self,
        served: Recommender,
        history: sp.csr_matrix,
        features: ItemFeatures,
        version: str,
        hybrid: Callable[[], Recommender] | None = None,
        eager: tuple[str, ...] = (),
    ):
        self.history = history
        self.features = features
        self.version = version
        self._hybrid = hybrid
        self._engines: dict[str, Recommender] = {"nn": served}
        self._locks: dict[str, asyncio.Lock] = {}
        for name in (*EAGER, *eager):
            self._engines[name] = self._fit(name)

    def get(self, name: str) -> Recommender:
        engine = self._engines.get(name)
        if engine is None:
            raise EngineUnavailable(f"engine {name!r} is not fitted yet")
        return engine

    @property
    def ready(self) -> dict[str, bool]:
        return {name: name in self._engines for name in ENGINES}

    def state(self, name: str) -> str:
        """For ``/ready``: "ready", "fitted on first use", or why the engine cannot serve this model."""
        if name in self._engines:
            return "ready"
        if name == "hybrid" and self._hybrid is None:
            return "not in this model (trained with --pipeline nn)"
        return "fitted on first use"

    def _fit(self, name: str) -> Recommender:
        if name == "hybrid":
            if self._hybrid is None:
                raise EngineUnavailable(
                    "engine 'hybrid' is not part of this model: it was trained with --pipeline nn "
                    "(retrain with the default pipeline to serve it)"
                )
            started = time.perf_counter()
            engine = self._hybrid()
            log.info("restored engine hybrid of model %s in %.2fs", self.version, time.perf_counter() - started)
            return engine
        reason = too_large(name, self.history.shape[1])
        if reason is not None:
            raise EngineUnavailable(reason)
        started = time.perf_counter()
        engine = make_engine(name).fit(self.history, self.features)
        log.info("fitted engine %s on model %s in %.2fs", name, self.version, time.perf_counter() - started)
        return engine

    async def ensure(self, name: str) -> None:
        """Fit ``name`` if it is not fitted yet, in a worker thread, once."""
        if name in self._engines:
            return
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self._engines:
                return
            try:
                self._engines[name] = await asyncio.to_thread(self._fit, name)
            except EngineUnavailable:
                raise
            except (ValueError, MemoryError, RuntimeError) as exc:
                raise EngineUnavailable(f"engine {name!r} could not be fitted on this model: {exc}") from exc
