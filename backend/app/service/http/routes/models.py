"""``GET /models`` and ``GET /models/{version}``: the registry's versions, their stages and metrics.

Read-only views of ``Settings.registry_dir`` (``RECOMMENDER_REGISTRY_DIR``); stage changes go through
``python -m app.registry`` or the retraining pipeline, never through the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from app.registry.state import RegistryError, UnknownVersionError
from app.registry.versions import Registry
from app.service.http.deps import CurrentRuntimeDep, SettingsDep
from app.service.http.fastpath import OrjsonResponse

router = APIRouter(tags=["models"])

#: A version id (``app.registry.state.VERSION_RE``) or its registration number, ``3`` or ``#3``.
VersionPath = Annotated[
    str,
    Path(
        pattern=r"^(#[0-9]{1,12}|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$",
        description="A version id, or its registration number (`3` or `#3`).",
        examples=["20261122-0512-ab12cd"],
    ),
]
_UNREADABLE = {503: {"description": "The model registry could not be read (the reason is in `detail`)."}}


def _serving(rt: CurrentRuntimeDep) -> dict[str, Any] | None:
    return None if rt is None else {"version": rt.version, "model_dir": str(rt.model_dir)}


@router.get(
    "/models",
    summary="Model versions in the registry with their stage, metrics and data summary",
    responses=_UNREADABLE,
)
def list_models(settings: SettingsDep, rt: CurrentRuntimeDep) -> OrjsonResponse:
    """Every registered version (registration order). ``serving`` is the version this process has
    loaded, which lags ``production`` until ``/admin/reload`` (or the poll) picks the pointer up."""
    if settings.registry_dir is None:
        return OrjsonResponse(
            {
                "registry_dir": None,
                "production": None,
                "serving": _serving(rt),
                "models": [],
                "detail": "no model registry configured: set RECOMMENDER_REGISTRY_DIR to list versions",
            }
        )
    registry = Registry(settings.registry_dir)
    try:
        rows = registry.versions()
        production = registry.production()
    except RegistryError as exc:
        raise HTTPException(status_code=503, detail=f"model registry unreadable: {exc}") from None
    for row in rows:
        row.pop("path", None)
    return OrjsonResponse(
        {"registry_dir": str(registry.root), "production": production, "serving": _serving(rt), "models": rows}
    )


@router.get(
    "/models/{version}",
    summary="One model version: stage, metrics, data summary, evaluation, gate decision and audit trail",
    responses={404: {"description": "Unknown version, or no model registry is configured."}, **_UNREADABLE},
)
def get_model(version: VersionPath, settings: SettingsDep) -> OrjsonResponse:
    if settings.registry_dir is None:
        raise HTTPException(status_code=404, detail="no model registry configured: set RECOMMENDER_REGISTRY_DIR")
    try:
        info = Registry(settings.registry_dir).version_info(version)
    except UnknownVersionError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except RegistryError as exc:
        raise HTTPException(status_code=503, detail=f"model registry unreadable: {exc}") from None
    info.pop("path", None)
    return OrjsonResponse(info)
