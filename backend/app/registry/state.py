"""The registry directory on disk, read without a lock: file names, errors, version ids, the committed
state and the production pointer (what the service follows). ``app.registry.versions`` changes it."""

from __future__ import annotations

import getpass
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.files import read_json
from app.model.artifacts import ModelLoadError, load_bundle

STAGES: tuple[str, ...] = ("none", "staging", "production", "archived")
STATE_FILE = "registry.json"
AUDIT_FILE = "audit.jsonl"
VERSIONS_DIR = "versions"
LOCK_FILE = ".lock"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.json"
DECISION_FILE = "decision.json"
REPORT_FILE = "report.md"
RUNS_FILE = "runs.jsonl"  # one line per finished retraining run (its gate evaluation included)
HELDOUT_FILE = "heldout.npz"  # a retraining run's model: the (user, item) rows its split held out
STATE_FORMAT = 1
ID_LISTS = ("user_ids", "item_ids")  # replaced by their lengths in version_info
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RegistryError(ValueError):
    """A registry operation that cannot be done as asked; the message says why and what to do."""


class UnknownVersionError(RegistryError):
    pass


class VersionExistsError(RegistryError):
    pass


class StageError(RegistryError):
    pass


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def check_version_id(version: str) -> str:
    """Version ids become directory names: letters, digits, ``.``, ``_``, ``-``; no path tricks."""
    if not isinstance(version, str) or not VERSION_RE.match(version) or version in (".", ".."):
        raise RegistryError(
            f"invalid version id {version!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return version


def empty_state() -> dict[str, Any]:
    return {
        "format": STATE_FORMAT,
        "seq": 0,
        "versions": {},
        "production": None,
        "production_history": [],
        "last_change": [],
    }


def read_state(root: Path) -> dict[str, Any]:
    """The committed state (no lock needed: the file is only ever replaced whole)."""
    path = Path(root) / STATE_FILE
    if not path.is_file():
        return empty_state()
    try:
        state = read_json(path)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read the registry state: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise RegistryError(f"{path}: not a registry state file (format {STATE_FORMAT} expected)")
    return state


def production_model_dir(registry_dir: Path | str | None) -> Path | None:
    """Directory of the production version, or None (no registry, or nothing promoted yet).

    Cheap (one small JSON read, no lock, no TensorFlow): the service may call it on every poll.
    """
    if registry_dir is None:
        return None
    root = Path(registry_dir)
    version = read_state(root).get("production")
    if not version:
        return None
    path = root / VERSIONS_DIR / version
    return path if path.is_dir() else None


def read_model_metadata(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise RegistryError(f"{model_dir}: no {METADATA_FILE}; not a model directory")
    try:
        meta = read_json(path)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: unreadable metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise RegistryError(f"{path}: metadata must be a JSON object")
    return meta


def verify_model_dir(model_dir: Path, action: str = "registering") -> None:
    """Refuse a model the service could not load (missing files, sha256 mismatch, shapes that disagree)."""
    try:
        load_bundle(model_dir)
    except ModelLoadError as exc:
        raise RegistryError(f"not {action} a model the service cannot load: {exc}") from None


def production_fallbacks(registry_dir: Path | str) -> list[Path]:
    """The earlier production versions, newest first, whose directories exist: what the service falls
    back to when the production version cannot be loaded."""
    root = Path(registry_dir)
    state = read_state(root)
    current = state.get("production")
    out: list[Path] = []
    for version in reversed(state.get("production_history") or []):
        path = root / VERSIONS_DIR / version
        if version != current and path.is_dir() and path not in out:
            out.append(path)
    return out


def read_optional_json(path: Path) -> Any:
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, orjson.JSONDecodeError):
        return None
