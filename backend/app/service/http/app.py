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
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from app.config import Settings, get_settings
from app.service.core.loading import ModelManager
from app.service.core.online import OnlineHistories, follow
from app.service.http import docs, guards, monitoring, openapi
from app.service.http.fastpath import AppState, OrjsonResponse, add_routes, telemetry_off
from app.service.http.responses import install_error_handlers
from app.service.http.routes import ROUTERS
from app.store import Store
from app.store.retention import prune_due

log = logging.getLogger(__name__)

DESCRIPTION = """Personalised top-K recommendations for web and mobile media clients.

Every recommendation response carries a `recset_id`; report what the user did with the list via
`POST /events/engagement`. Each operation lists the status codes it can answer. Errors are JSON with a
`detail` message: 422 names each field and the reason; 404 explains what is unknown; 503 means no
model is loaded yet; a 500 carries an `error_id` to quote when reporting it.
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
    if settings.retention_days > 0:
        tasks.append(asyncio.create_task(prune_on_schedule(store, settings)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(store.close)
        blas.restore_original_limits()


async def prune_on_schedule(store: Store, settings: Settings, check_seconds: float = 3600.0) -> None:
    """``RECOMMENDER_RETENTION_DAYS``: at start-up and then every hour, prune when a day has passed since
    the last prune by any worker or command; a failure is logged and tried again at the next check."""
    events_days = settings.events_retention_days or None
    while True:
        try:
            if prune_due(await asyncio.to_thread(store.retained_from), settings.retention_days, time.time()):
                result = await asyncio.to_thread(store.prune, settings.retention_days, events_keep_days=events_days)
                log.info("retention: pruned %s older than %.0f days", result["deleted"], settings.retention_days)
        except Exception:
            log.exception("retention: prune failed; trying again in %.0f s", check_seconds)
        await asyncio.sleep(check_seconds)


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
        docs_url=None,  # /docs and /redoc are served from local files (``docs``), not FastAPI's CDN pages
        redoc_url=None,
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
    docs.install(app)
    openapi.install(app, settings)  # the guards' answers and the settings' limits, in the document
    return app
