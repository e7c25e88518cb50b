"""``GET /models`` and ``GET /models/{version}``: the registry's versions, their stages and metrics.

Read-only views of ``Settings.registry_dir`` (``RECOMMENDER_REGISTRY_DIR``); stage changes go through
``python -m app.registry`` or the retraining pipeline, never through the API.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from app.config import Settings, get_settings
from app.registry.store import Registry, RegistryError, UnknownVersionError
from app.service.responses import OrjsonResponse

router = APIRouter(tags=["models"])

def _settings(request: Request) -> Settings:
    for holder in (request.app.state, getattr(request.app.state, "runtime", None)):
        settings = getattr(holder, "settings", None)
        if isinstance(settings, Settings):
            return settings
    return get_settings()


def _serving(request: Request) -> dict[str, Any] | None:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return None
    return {"version": getattr(runtime, "version", None), "model_dir": str(getattr(runtime, "model_dir", ""))}


def _registry(request: Request) -> Registry | None:
    root = _settings(request).registry_dir
    return Registry(root) if root is not None else None


@router.get("/models", summary="Model versions in the registry with their stage, metrics and data summary")
def list_models(request: Request) -> OrjsonResponse:
    """Every registered version (registration order). ``serving`` is the version this process has
    loaded, which lags ``production`` until ``/admin/reload`` (or the poll) picks the pointer up."""
    registry = _registry(request)
    if registry is None:
        return OrjsonResponse({
            "registry_dir": None, "production": None, "serving": _serving(request), "models": [],
            "detail": "no model registry configured: set RECOMMENDER_REGISTRY_DIR to list versions",
        })
    try:
        rows = registry.versions()
        production = registry.production()
    except RegistryError as exc:
        raise HTTPException(status_code=503, detail=f"model registry unreadable: {exc}") from None
    for row in rows:
        row.pop("path", None)
    return OrjsonResponse({"registry_dir": str(registry.root), "production": production,
                           "serving": _serving(request), "models": rows})


@router.get(
    "/models/{version}",
    summary="One model version: stage, metrics, data summary, evaluation, gate decision and audit trail",
    responses={404: {"description": "unknown version, or no registry configured"}},
)
def get_model(version: str, request: Request) -> OrjsonResponse:
    registry = _registry(request)
    if registry is None:
        raise HTTPException(status_code=404, detail="no model registry configured: set RECOMMENDER_REGISTRY_DIR")
    try:
        info = registry.version_info(version)
    except UnknownVersionError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except RegistryError as exc:
        raise HTTPException(status_code=503, detail=f"model registry unreadable: {exc}") from None
    info.pop("path", None)
    return OrjsonResponse(info)
