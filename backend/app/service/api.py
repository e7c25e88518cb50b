"""The FastAPI application: ``uvicorn app.service.api:app`` (model directory from ``RECOMMENDER_MODEL_DIR``).

Start-up loads the model (or the registry's production version), opens the store and, with
``RECOMMENDER_MODEL_POLL_SECONDS`` > 0, watches the model directory for a new model. BLAS is limited
to one thread: per-request scoring is a small mat-vec, and OpenBLAS's thread pool made it ~15x slower
whenever another process was busy on the machine.
"""

from __future__ import annotations

import os

# Before NumPy is imported (when uvicorn imports this module first); threadpoolctl below covers the rest.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402

from fastapi import APIRouter, FastAPI  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from app.config import Settings, get_settings  # noqa: E402
from app.service.deps import AppState  # noqa: E402
from app.service.responses import OrjsonResponse, install_error_handlers  # noqa: E402
from app.service.routing import DirectRoute  # noqa: E402
from app.service.routes import ROUTER_MODULES  # noqa: E402
from app.service.loading import ModelManager  # noqa: E402
from app.store import Store, monitoring  # noqa: E402

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
    store = Store.from_settings(settings)
    await asyncio.to_thread(store.start)
    app.state.store = store
    manager = ModelManager(app.state, settings)
    app.state.model_manager = manager
    await manager.load_initial()
    poller = asyncio.create_task(manager.poll(settings.model_poll_seconds)) if settings.model_poll_seconds > 0 else None
    try:
        yield
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await asyncio.to_thread(store.close)
        blas.restore_original_limits()


def _telemetry(settings: Settings) -> dict:
    """FastAPI's built-in OpenTelemetry instrumentation (FastAPI >= 0.16x), off unless asked for.

    Why off: it looks up the global OTel providers on every request, ~10% of a /health request's CPU,
    and the service has its own Prometheus metrics (GET /metrics)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    on = settings.fastapi_telemetry
    return {"telemetry": {"tracing": on, "metrics": on, "logs": on}}


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
        **_telemetry(settings),
    )
    app.state = AppState()
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    monitoring.install(app)  # request counter + latency histogram per route for GET /metrics
    for module in ROUTER_MODULES:
        _add_routes(app, importlib.import_module(module).router)
    # The router tries routes in order: the hot ones first, FastAPI's /docs, /redoc and /openapi.json
    # (which it put first, and which are not in the schema) last. Schema order is unchanged.
    app.router.routes.sort(key=lambda route: not isinstance(route, DirectRoute))
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put the router's routes in the app's own route list, as ``include_router`` did before FastAPI 0.137.

    Why not ``include_router``: since 0.137 it includes lazily, and every request walks the tree of
    included routers (matching each twice): about a third of a ``/health`` request's CPU with eight
    routers. The routers here are included with no prefix, dependencies or callbacks, so the routes
    are the same objects either way (paths, tags and OpenAPI unchanged: see test_routing, test_validation)."""
    app.router.routes.extend(router.routes)


app = create_app()
