"""Optional MLflow experiment tracking, mirroring the file registry.

Enabled when ``mlflow`` is importable (``pip install -r requirements-mlflow.txt``) and
``MLFLOW_TRACKING_URI`` is set (``sqlite:///mlruns.db`` or a file store: no server needed). Each
retraining run logs its parameters, metrics, data summary, decision and the model directory, and the
model becomes a version of the MLflow registered model with the same stage as in the file registry.

MLflow 2.9 deprecated registry *stages* in favour of *aliases*, so the stage is kept as the alias
``production`` / ``staging`` (one version each) plus a ``stage`` tag on every model version (which
also records ``none`` and ``archived``). The file registry stays the source of truth: MLflow is
synchronised from it after each change, never the other way round.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.registry.versions import Registry

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "recommender-retraining"
DEFAULT_MODEL_NAME = "recommender"
VERSION_TAG = "registry_version"
STAGE_TAG = "stage"


def tracking_status() -> tuple[bool, str]:
    """(enabled, why): whether MLflow logging is on and the reason, for the run report."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return False, "MLFLOW_TRACKING_URI is not set: file registry only"
    if importlib.util.find_spec("mlflow") is None:
        return False, "mlflow is not installed (pip install -r requirements-mlflow.txt): file registry only"
    return True, f"logging to MLflow at {uri}"


def metric_key(name: str) -> str:
    """MLflow metric names may not contain '@': ``ndcg@10`` -> ``ndcg_at_10``."""
    return name.replace("@", "_at_")


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj
    return out


class Tracker:
    """Thin wrapper over the MLflow client (``track_retraining_run`` and ``sync_if_enabled`` check ``tracking_status`` first)."""

    def __init__(self, experiment: str = DEFAULT_EXPERIMENT, model_name: str = DEFAULT_MODEL_NAME):
        import mlflow
        from mlflow import MlflowClient

        self.mlflow = mlflow
        self.client = MlflowClient()
        self.model_name = model_name
        self.experiment = experiment
        self._ensure_experiment()

    def _ensure_experiment(self) -> None:
        if self.client.get_experiment_by_name(self.experiment) is None:
            uri = self.mlflow.get_tracking_uri()
            location = None
            if uri.startswith("sqlite:///"):  # keep artifacts beside the database, not in the working directory
                location = (Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()
            self.client.create_experiment(self.experiment, artifact_location=location)
        self.mlflow.set_experiment(self.experiment)

    def log_run(
        self,
        *,
        version: str,
        stage: str,
        params: dict[str, Any],
        metrics: dict[str, dict[str, float]],
        data_summary: dict[str, Any],
        decision: dict[str, Any],
        model_dir: Path,
        extra_artifacts: Sequence[Path] = (),
    ) -> dict[str, str]:
        """One MLflow run for one retraining run; returns the run id and the MLflow model version."""
        mlflow = self.mlflow
        with mlflow.start_run(run_name=f"retrain-{version}") as run:
            flat = {k: str(v)[:500] for k, v in _flatten("", params, {}).items()}
            if flat:
                mlflow.log_params(flat)
            values = {}
            for model, ms in metrics.items():
                for name, v in ms.items():
                    if isinstance(v, (int, float)) and math.isfinite(v):
                        values[f"{metric_key(model)}.{metric_key(name)}"] = float(v)
            if values:
                mlflow.log_metrics(values)
            mlflow.log_dict(data_summary, "data_summary.json")
            mlflow.log_dict(decision, "decision.json")
            mlflow.set_tags({VERSION_TAG: version, "decision": str(decision.get("decision")), STAGE_TAG: stage})
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
            for path in extra_artifacts:
                mlflow.log_artifact(str(path))
            run_id = run.info.run_id
            source = f"{run.info.artifact_uri}/model"
        if not self._registered_model_exists():
            self.client.create_registered_model(
                self.model_name, description="Recommender models; stage = alias + 'stage' tag"
            )
        mv = self.client.create_model_version(
            self.model_name, source=source, run_id=run_id, tags={VERSION_TAG: version, STAGE_TAG: stage}
        )
        return {"run_id": run_id, "model_version": str(mv.version)}

    def _registered_model_exists(self) -> bool:
        return bool(self.client.search_registered_models(filter_string=f"name = '{self.model_name}'"))

    def model_versions(self) -> dict[str, Any]:
        """registry version id -> MLflow ModelVersion (the newest when a version was logged twice)."""
        if not self._registered_model_exists():
            return {}
        out: dict[str, Any] = {}
        for mv in self.client.search_model_versions(f"name = '{self.model_name}'"):
            key = (mv.tags or {}).get(VERSION_TAG)
            if key and (key not in out or int(mv.version) > int(out[key].version)):
                out[key] = mv
        return out

    def sync_stages(self, registry: Registry) -> dict[str, str]:
        """Make MLflow's tags and aliases match the file registry; returns registry version -> stage synced."""
        mvs = self.model_versions()
        synced: dict[str, str] = {}
        latest_staging = None
        for row in registry.versions():
            mv = mvs.get(row["version"])
            if mv is None:
                continue
            if (mv.tags or {}).get(STAGE_TAG) != row["stage"]:
                self.client.set_model_version_tag(self.model_name, mv.version, STAGE_TAG, row["stage"])
            synced[row["version"]] = row["stage"]
            if row["stage"] == "staging":
                latest_staging = mv  # versions() is in registration order: the last one wins
        targets = {"production": mvs.get(registry.production() or ""), "staging": latest_staging}
        for alias, mv in targets.items():
            if mv is not None:
                self.client.set_registered_model_alias(self.model_name, alias, mv.version)
            elif mvs:
                try:
                    self.client.delete_registered_model_alias(self.model_name, alias)
                except Exception:  # alias did not exist
                    pass
        return synced


def track_retraining_run(
    registry: Registry,
    version: str,
    stage: str,
    *,
    params: dict[str, Any],
    evaluation: dict[str, Any],
    data_summary: dict[str, Any],
    decision: dict[str, Any],
) -> dict[str, Any]:
    """Mirror one retraining run to MLflow when tracking is on; a failure is reported, never fatal
    (the file registry already holds the truth)."""
    enabled, why = tracking_status()
    if not enabled:
        return {"enabled": False, "status": why}
    try:
        tracker = Tracker()
        metrics = {name: res["metrics"] for name, res in evaluation["models"].items()}
        out = tracker.log_run(
            version=version,
            stage=stage,
            params=params,
            metrics=metrics,
            data_summary=data_summary,
            decision=decision,
            model_dir=registry.version_dir(version),
        )
        tracker.sync_stages(registry)
        return {"enabled": True, "status": why, **out}
    except Exception as exc:
        log.warning("MLflow tracking failed: %s", exc)
        return {"enabled": True, "status": f"MLflow logging failed: {type(exc).__name__}: {exc}"}


def sync_if_enabled(registry: Registry) -> str:
    """After a stage change from the CLI: mirror it to MLflow when tracking is on; returns a status line."""
    enabled, why = tracking_status()
    if not enabled:
        return why
    try:
        synced = Tracker().sync_stages(registry)
    except Exception as exc:  # tracking must never undo or block a registry change
        log.warning("MLflow sync failed: %s", exc)
        return f"MLflow sync failed ({exc}); the file registry is updated"
    return f"MLflow synced ({len(synced)} model versions)"
