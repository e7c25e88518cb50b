"""Operational endpoints: liveness, readiness, and hot reload of the model.

``/health`` is a ``DirectRoute`` (load balancers call it often, and it is the serving benchmark's
yardstick of what the framework costs); the others are ordinary FastAPI routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.model.artifacts import ModelLoadError
from app.service.http.deps import CurrentRuntimeDep, ManagerDep, StoreDep, current_runtime
from app.service.http.fastpath import DirectRoute, OrjsonResponse
from app.service.http.response_models import (
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
    ReloadResponse,
)
from app.service.http.responses import ApiError

router = APIRouter(tags=["operations"])


async def health(request: Request) -> OrjsonResponse:
    rt = current_runtime(request)
    if rt is None:
        return OrjsonResponse({"status": "ok", "model_loaded": False, "model_version": None, "users": 0, "items": 0})
    return OrjsonResponse(
        {"status": "ok", "model_loaded": True, "model_version": rt.version, "users": rt.n_users, "items": rt.n_items}
    )


router.add_api_route(
    "/health",
    health,
    methods=["GET"],
    response_model=HealthResponse,
    summary="Liveness (always 200 while the process serves)",
    route_class_override=DirectRoute,
)


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={
        503: {
            "model": ErrorResponse,
            "description": "No model loaded (the reason is in `detail`).",
            "content": {"application/json": {"example": {"status": "not_ready", "detail": "metadata.json missing"}}},
        }
    },
    summary="Readiness: the model is loaded (version, training time, counts)",
)
async def ready(rt: CurrentRuntimeDep, manager: ManagerDep) -> OrjsonResponse:
    if rt is None:
        error = manager.error or "the model is loading"
        return OrjsonResponse({"status": "not_ready", "detail": error}, status_code=503)
    info = rt.ready_info()
    if manager.warning:
        info["warning"] = manager.warning
    return OrjsonResponse(info)


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses={
        409: {
            "model": ErrorResponse,
            "description": "The new model could not be loaded; the previous model keeps serving.",
            "content": {
                "application/json": {
                    "example": {
                        "detail": "backend/models/latest: arrays.npz: sha256 does not match metadata.json",
                        "serving_version": "20261122-0512-ab12cd",
                    }
                }
            },
        },
        503: {"model": ErrorResponse, "description": "The model could not be loaded and no model is serving."},
    },
    summary="Load the model directory again (or the registry's production version) without a restart",
    description="The new model is loaded and checked in a worker thread, then replaces the old one in one step; "
    "requests already running finish on the old one. Every other worker and replica on the same database "
    "reloads within `RECOMMENDER_RELOAD_POLL_SECONDS` (0.5 s) plus its load time. A broken model directory leaves the old model "
    "serving: 409 with the error (503 when there is no model to keep serving).",
)
async def reload_model(manager: ManagerDep, store: StoreDep) -> OrjsonResponse:
    try:
        info = await manager.reload()
    except ModelLoadError as exc:
        rt = manager.runtime
        if rt is None:
            raise ApiError(503, f"model not loaded: {exc}", serving_version=None) from None
        raise ApiError(
            409, f"model not reloaded, still serving {rt.version}: {exc}", serving_version=rt.version
        ) from None
    # Every other worker and replica on this database reloads too (they follow the generation).
    manager.reload_generation = await store.run(store.request_reload)
    return OrjsonResponse(info)
