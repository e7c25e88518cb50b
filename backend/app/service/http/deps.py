"""The only way a route reaches the app's shared objects: settings, the serving runtime, the store, the model manager.

Direct routes call the plain functions at their start; ordinary routes declare the ``*Dep`` aliases
(async dependencies, so FastAPI does not send them to its thread pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from app.config import Settings
from app.service.core.loading import ModelManager
from app.service.core.online import OnlineHistories
from app.service.core.runtime import Runtime
from app.service.http.monitoring import Monitoring
from app.service.http.responses import ApiError, field_error
from app.store import Store

T = TypeVar("T")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_runtime(request: Request) -> Runtime:
    """The runtime serving right now; hold on to it for the whole request (a reload may swap it)."""
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        manager = getattr(request.app.state, "model_manager", None)
        reason = getattr(manager, "error", None) or "the service is starting"
        raise ApiError(503, f"no model loaded: {reason}; fix the model directory and POST /admin/reload")
    return rt


def current_runtime(request: Request) -> Runtime | None:
    """The runtime serving right now, or None while no model is loaded (for views that work without one)."""
    return getattr(request.app.state, "runtime", None)


def get_store(request: Request) -> Store:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise ApiError(503, "the event store is not open (service starting or stopping)")
    return store


def get_online(request: Request) -> OnlineHistories | None:
    """The worker's online histories (None when the setting is off)."""
    return getattr(request.app.state, "online", None)


def get_manager(request: Request) -> ModelManager:
    return request.app.state.model_manager


def get_monitoring(request: Request) -> Monitoring | None:
    return getattr(request.app.state, "monitoring", None)


def list_size(request: Request, query: Any, location: str) -> int:
    """How many items a recommendation request asks for: ``k`` or ``limit`` (one parameter with two names,
    both only with the same value), else the ``default_k`` setting; at most ``max_k``. The bounds are
    settings, so they are checked here (422s in Pydantic's shape, naming the field the client used)."""
    settings = request.app.state.settings
    k, limit = query.k, query.limit
    if limit is None:
        size, field = (settings.default_k if k is None else k), "k"
    elif k is not None and k != limit:
        raise field_error(
            location, "limit", f"k and limit are one parameter and differ (k={k}, limit={limit}); give one"
        )
    else:
        size, field = limit, "limit"
    if size > settings.max_k:
        raise field_error(location, field, f"Input should be less than or equal to {settings.max_k}", "less_than_equal")
    return size


def check_k(request: Request, k: int, location: str, field: str) -> int:
    """The upper bound of ``k`` is a setting, so it is checked here (422 in Pydantic's shape)."""
    max_k = request.app.state.settings.max_k
    if k > max_k:
        raise field_error(location, field, f"Input should be less than or equal to {max_k}", "less_than_equal")
    return k


def _dependency(get: Callable[[Request], T]) -> Callable[[Request], Awaitable[T]]:
    """``get`` as an async dependency: FastAPI runs a plain ``def`` one in its thread pool, per request."""

    async def dependency(request: Request) -> T:
        return get(request)

    return dependency


SettingsDep = Annotated[Settings, Depends(_dependency(get_settings))]
RuntimeDep = Annotated[Runtime, Depends(_dependency(get_runtime))]
CurrentRuntimeDep = Annotated[Runtime | None, Depends(_dependency(current_runtime))]
StoreDep = Annotated[Store, Depends(_dependency(get_store))]
ManagerDep = Annotated[ModelManager, Depends(_dependency(get_manager))]
OnlineDep = Annotated[OnlineHistories | None, Depends(_dependency(get_online))]
MonitoringDep = Annotated[Monitoring | None, Depends(_dependency(get_monitoring))]
