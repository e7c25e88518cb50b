"""The application factory: ``create_app(settings)`` builds the FastAPI app with its routes, middleware and lifespan.

Start-up loads the model (or the registry's production version), opens the store and, with
``RECOMMENDER_MODEL_POLL_SECONDS`` > 0, watches the model directory for a new model. BLAS is limited
to one thread while the app runs: per-request scoring is a small mat-vec, and OpenBLAS's thread pool
made it ~15x slower whenever another process was busy on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from app.config import Settings, get_settings
from app.service.core.loading import ModelManager
from app.service.core.online import OnlineHistories, follow
from app.service.http import guards, monitoring
from app.service.http.fastpath import AppState, OrjsonResponse, add_routes, telemetry_off
from app.service.http.responses import install_error_handlers
from app.service.http.routes import ROUTERS
from app.store import Store

log = logging.getLogger(__name__)

DESCRIPTION = """Personalised top-K recommendations for web and mobile media clients.

Every recommendation response carries a `recset_id`; report what the user did with the list via
`POST /events/engagement`. Errors: 422 names the field and the reason; 404 explains what is unknown;
503 means no model is loaded yet.
"""

TAGS = [
    {"name": "recommendations", "description": "Personal lists, similar items, popular and trending."},
    {"name": "items", "description": "Catalogue lookups and title search."},
    {"name": "operations", "description": "Liveness, readiness and hot model reload."},
]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    blas = threadpool_limits(limits=1, user_api="blas")
    if not settings.admin_key:
        log.warning(
            "RECOMMENDER_ADMIN_KEY is not set: admin, debug, registry and metrics routes answer only clients "
            "on this machine"
        )
    store = Store.from_settings(settings)
    await asyncio.to_thread(store.start)
    app.state.store = store
    app.state.online = online_histories(settings, store)
    manager = ModelManager(app.state, settings)
    app.state.model_manager = manager
    manager.reload_generation = await asyncio.to_thread(store.reload_generation)
    await manager.load_initial()
    tasks = []
    if settings.reload_poll_seconds > 0:
        tasks.append(asyncio.create_task(manager.follow_reloads(store.reload_generation, settings.reload_poll_seconds)))
    if settings.model_poll_seconds > 0:
        tasks.append(asyncio.create_task(manager.poll(settings.model_poll_seconds)))
    if app.state.online is not None and settings.online_poll_seconds > 0:
        tasks.append(
            asyncio.create_task(follow(app.state.online, store.users_changed_since, settings.online_poll_seconds))
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(store.close)
        blas.restore_original_limits()


def online_histories(settings: Settings, store: Store) -> OnlineHistories | None:
    """The online history of this worker (None when ``RECOMMENDER_ONLINE_HISTORY`` is off)."""
    if not settings.online_history:
        return None
    return OnlineHistories(
        store.user_activity,
        store.positive_rule,
        seen_events=settings.seen_events,
        max_users=settings.online_cache_users,
        max_events=settings.online_max_events,
        demote_after_shown=settings.demote_after_shown,
        demote_window_days=settings.demote_window_days,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application; tests pass their own ``Settings`` (model dir, database)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Recommender",
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        **telemetry_off(settings.fastapi_telemetry),
    )
    app.state = AppState()
    app.state.settings = settings
    app.state.runtime = None
    app.state.online = None
    install_error_handlers(app)
    monitoring.install(app)  # request counter + latency histogram per route for GET /metrics
    guards.install(app, settings)  # every request body bounded while it is read
    add_routes(app, ROUTERS)
    _document_runtime_limits(app, settings)
    return app


def _document_runtime_limits(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI document states the limits that are settings (read once at start-up): the largest
    ``k``/``limit`` of every list endpoint, in query parameters and request bodies alike."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = build()
            bodies = list(doc.get("components", {}).get("schemas", {}).values())
            for item in doc.get("paths", {}).values():
                for op in item.values():
                    if not isinstance(op, dict):
                        continue
                    for param in op.get("parameters", []):
                        if param.get("name") in ("k", "limit"):
                            _set_maximum(param.get("schema", {}), settings.max_k)
                    for media in op.get("requestBody", {}).get("content", {}).values():
                        bodies.append(media.get("schema", {}))
            for schema in bodies:
                for name in ("k", "limit"):
                    if name in schema.get("properties", {}):
                        _set_maximum(schema["properties"][name], settings.max_k)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _set_maximum(schema: dict, maximum: int) -> None:
    """``maximum`` on an integer schema, or on the integer branch of an optional one (``anyOf``)."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "integer":
            branch["maximum"] = maximum
