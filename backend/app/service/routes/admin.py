"""Operational endpoints: liveness, readiness, and hot reload of the model."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.model.artifacts import ModelLoadError
from app.service.deps import get_manager
from app.service.responses import ApiError, OrjsonResponse
from app.service.routing import DirectRoute
from app.service.schemas import (
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
    ReloadResponse,
)

router = APIRouter(tags=["operations"], route_class=DirectRoute)


@router.get("/health", response_model=HealthResponse, summary="Liveness (always 200 while the process serves)")
async def health(request: Request) -> OrjsonResponse:
    rt = request.app.state.runtime
    if rt is None:
        return OrjsonResponse({"status": "ok", "model_loaded": False, "model_version": None, "users": 0, "items": 0})
    return OrjsonResponse(
        {"status": "ok", "model_loaded": True, "model_version": rt.version, "users": rt.n_users, "items": rt.n_items}
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
async def ready(request: Request) -> OrjsonResponse:
    rt = request.app.state.runtime
    if rt is None:
        error = get_manager(request).error or "the model is loading"
        return OrjsonResponse({"status": "not_ready", "detail": error}, status_code=503)
    return OrjsonResponse(rt.ready_info())


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
    "requests already running finish on the old one. A broken model directory leaves the old model "
    "serving: 409 with the error (503 when there is no model to keep serving).",
)
async def reload_model(request: Request) -> OrjsonResponse:
    manager = get_manager(request)
    try:
        info = await manager.reload()
    except ModelLoadError as exc:
        rt = request.app.state.runtime
        if rt is None:
            raise ApiError(503, f"model not loaded: {exc}", serving_version=None) from None
        raise ApiError(
            409, f"model not reloaded, still serving {rt.version}: {exc}", serving_version=rt.version
        ) from None
    return OrjsonResponse(info)
