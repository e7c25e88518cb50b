"""Load evaluation data (a JSONL log or a MovieLens source) and build leak-free item features per stage.

The only I/O of the evaluation package besides the report writer. MovieLens archives or folders are
converted with the data package's importer into a temporary directory (never into the repository:
MovieLens may not be redistributed), then read like any JSONL log.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import DEFAULT_EVENT_WEIGHTS
from app.data.catalog import read_items
from app.data.dataset import load_dataset
from app.data.features import ItemFeatures, average_ratings, item_features, last_seen
from app.data.types import Dataset, EventLog
from app.eval.splits import Split, Stage, concat

MOVIELENS_FILES = ("u.data", "ratings.dat", "ratings.csv")


@dataclass
class EvalData:
    """All positives, the raw events they came from (for rating averages) and the catalogue."""

    dataset: Dataset
    events: EventLog
    catalogue: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


def is_movielens(path: Path) -> bool:
    """A zip archive, or a folder holding MovieLens rating files (top level or one folder down)."""
    if path.is_file():
        return zipfile.is_zipfile(path)
    if path.is_dir():
        return any(any(path.glob(name)) or any(path.glob(f"*/{name}")) for name in MOVIELENS_FILES)
    return False


def load_eval_data(
    data_path: str | Path,
    items_path: str | Path | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    rating_threshold: float = 4.0,
) -> EvalData:
    """Read the interactions (JSONL file/dir/.gz, or MovieLens zip/folder) and the optional catalogue."""
    path = Path(data_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory (give a JSONL log or a MovieLens folder/zip)")
    merged = {**DEFAULT_EVENT_WEIGHTS, **(weights or {})}
    if is_movielens(path):
        from app.data.movielens import import_movielens

        with tempfile.TemporaryDirectory(prefix="eval-movielens-") as tmp:
            summary = import_movielens(path, tmp)
            data = _read(
                Path(summary.interactions_path), Path(items_path or summary.items_path), merged, rating_threshold
            )
        data.source.update(
            {
                "data_path": str(path),
                "items_path": str(items_path) if items_path else f"{path} (MovieLens items)",
                "format": summary.format,
            }
        )
        return data
    return _read(path, Path(items_path) if items_path else None, merged, rating_threshold)


def _read(data_path: Path, items_path: Path | None, weights: Mapping[str, float], rating_threshold: float) -> EvalData:
    dataset, events, summary = load_dataset(data_path, weights=weights, rating_threshold=rating_threshold)
    if len(events) == 0:
        raise ValueError(f"{data_path}: no valid events ({summary.rejected} rejected)")
    catalogue = read_items(items_path, strict=False) if items_path else {}
    source = {
        "data_path": str(data_path),
        "items_path": str(items_path) if items_path else None,
        "events": len(events),
        "rejected": summary.rejected,
        "positives": len(dataset),
    }
    return EvalData(dataset, events, catalogue, source)


def stage_features(data: EvalData, split: Split, stage: Stage) -> ItemFeatures:
    """Item features computed only from what the model is fitted on at this stage."""
    fitted, _ = split.stage(stage)
    if stage == "validation":
        heldout = concat(split.validation, split.test)
        cut = split.info.get("cutoffs", [None, None])[0]
    else:
        heldout = split.test
        cut = split.info.get("cutoffs", [None, None])[1]
    return item_features(
        fitted.items.ids,
        data.catalogue,
        avg_rating=average_ratings(data.events, fitted, exclude=heldout, before_ts=cut),
        last_ts=last_seen(fitted),
    )
