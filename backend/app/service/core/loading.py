"""Loading the serving model and swapping in a new one without a restart (``POST /admin/reload``, polling).

A new model is loaded and checked in a worker thread while the old one serves; the swap is one
reference assignment, so requests in flight finish on the runtime they started with, and a model
that fails to load or check never replaces the one that works.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.config import Settings
from app.data.catalog import read_items
from app.model.artifacts import ModelLoadError, load_bundle
from app.registry.state import RegistryError, production_fallbacks, production_model_dir
from app.service.core.runtime import Runtime

log = logging.getLogger(__name__)


def model_signature(model_dir: Path) -> tuple:
    """What changes when a new model is put in place: the resolved directory and its metadata file's stat."""
    meta = Path(model_dir) / "metadata.json"
    try:
        st = meta.stat()
        return (str(Path(model_dir).resolve()), st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        return (str(Path(model_dir).resolve()), None, None, None)


def resolve_model_dir(settings: Settings) -> Path:
    """The registry's production version when ``registry_dir`` is set and has one, else ``model_dir``."""
    if settings.registry_dir is not None:
        prod = production_model_dir(settings.registry_dir)
        if prod is not None:
            return Path(prod)
        log.warning("registry %s has no production version; serving %s", settings.registry_dir, settings.model_dir)
    return Path(settings.model_dir)


def _build_lists(rt: Runtime) -> None:
    try:
        rt.build_hybrid_lists()
    except Exception:  # the lists only save time: without them every hybrid list is ranked per request
        log.exception("hybrid lists of model %s could not be built; ranking them per request", rt.version)


def load_runtime(model_dir: Path, settings: Settings) -> Runtime:
    """Load, build and check a runtime; any failure is a ``ModelLoadError`` naming the directory."""
    model_dir = Path(model_dir)
    signature = model_signature(model_dir)
    try:
        bundle = load_bundle(model_dir)
        catalogue = None
        if settings.items_path is not None:
            catalogue = {**dict(bundle.catalogue), **read_items(settings.items_path, strict=False)}
        rt = Runtime(bundle, model_dir, settings, catalogue=catalogue, signature=signature)
        rt.check()
        if rt.auto_engine == "hybrid":  # served at once; its lists follow (the native code runs beside the loop)
            threading.Thread(target=_build_lists, args=(rt,), name="hybrid-lists", daemon=True).start()
        return rt
    except ModelLoadError as exc:
        msg = str(exc)
        raise ModelLoadError(msg if str(model_dir) in msg else f"{model_dir}: {msg}") from exc
    except Exception as exc:  # a model that cannot be served must never replace the one that can
        raise ModelLoadError(f"{model_dir}: cannot serve this model: {type(exc).__name__}: {exc}") from exc


class ModelManager:
    """Owns ``state.runtime``: initial load, ``reload()`` (load + check, then one atomic swap) and polling."""

    def __init__(self, state: Any, settings: Settings):
        self.state = state
        self.settings = settings
        self.error: str | None = None
        self.last_reload: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self._failed_signature: tuple | None = None
        #: The store's reload generation this worker has caught up with (``follow_reloads``).
        self.reload_generation = 0
        #: Set when the service serves an earlier version than the registry's production one.
        self.warning: str | None = None
        state.runtime = None

    @property
    def runtime(self) -> Runtime | None:
        return self.state.runtime

    async def load_initial(self) -> None:
        try:
            await self.reload()
        except ModelLoadError as exc:
            if not await self._fall_back(exc):
                log.error("no model loaded at start-up: %s", exc)
        # Long-lived objects (catalogue, titles, ids) out of the collector's generations: full collections
        # walked them all while requests waited (p99 spikes). A reload unfreezes them (see reload()).
        gc.collect()
        gc.freeze()

    async def reload(self) -> dict[str, Any]:
        """Load the current model directory and swap it in; on failure the old runtime keeps serving."""
        async with self._lock:
            old = self.state.runtime
            started = time.perf_counter()
            try:
                model_dir = await asyncio.to_thread(resolve_model_dir, self.settings)
            except Exception as exc:  # a broken registry pointer is a load failure like any other
                self.error = f"registry {self.settings.registry_dir}: {exc}"
                raise ModelLoadError(self.error) from exc
            try:
                new = await asyncio.to_thread(load_runtime, model_dir, self.settings)
            except ModelLoadError as exc:
                self.error = str(exc)
                self._failed_signature = model_signature(model_dir)
                raise
            self.state.runtime = new  # one reference assignment: requests that hold `old` finish on it
            self.warning = None
            gc.unfreeze()  # the frozen start-up objects (maybe the old runtime) become collectable again
            self.error = None
            self._failed_signature = None
            self.last_reload = {
                "reloaded": True,
                "model_version": new.version,
                "previous_version": old.version if old is not None else None,
                "changed": old is None or old.version != new.version,
                "model_dir": str(model_dir),
                "load_seconds": round(time.perf_counter() - started, 3),
            }
            log.info("serving model %s from %s", new.version, model_dir)
            return self.last_reload

    async def _fall_back(self, exc: ModelLoadError) -> bool:
        """At start-up, a registry production version that cannot be loaded: serve the newest earlier
        production version that can, and say so (log, ``/ready`` ``warning``). True when one was loaded."""
        if self.settings.registry_dir is None:
            return False
        try:
            fallbacks = await asyncio.to_thread(production_fallbacks, self.settings.registry_dir)
        except RegistryError:  # an unreadable registry has no earlier versions: start without a model
            return False
        for model_dir in fallbacks:
            try:
                new = await asyncio.to_thread(load_runtime, model_dir, self.settings)
            except ModelLoadError:
                continue
            self.warning = (
                f"the registry's production version cannot be loaded ({exc}); serving the last good "
                f"production version {new.version} instead: fix or roll back the registry"
            )
            log.error(self.warning)
            self.state.runtime = new
            self.error = None
            return True
        return False

    async def follow_reloads(self, generation: Callable[[], int], every: float) -> None:
        """Reload whenever another worker or replica was asked to (``POST /admin/reload`` bumps the
        shared generation, ``app.store.coordination``): every worker serves the same version within
        ``every`` seconds plus the load time."""
        while True:
            await asyncio.sleep(every)
            try:
                current = await asyncio.to_thread(generation)
                if current != self.reload_generation:
                    self.reload_generation = current
                    await self.reload()
            except ModelLoadError as exc:
                log.error("reload asked by another worker: keeping the current model: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # the follower must survive a database hiccup
                log.exception("reload follower failed")

    async def poll(self, every: float) -> None:
        """Reload when the model directory (or the registry's production pointer) changes."""
        while True:
            await asyncio.sleep(every)
            try:
                model_dir = await asyncio.to_thread(resolve_model_dir, self.settings)
                sig = await asyncio.to_thread(model_signature, model_dir)
                current = self.state.runtime.signature if self.state.runtime is not None else None
                if sig != current and sig != self._failed_signature and sig[1] is not None:
                    await self.reload()
            except ModelLoadError as exc:
                log.error("model poll: keeping the current model: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # the poller must survive anything
                log.exception("model poll failed")
