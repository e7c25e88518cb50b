"""Replay MovieLens chronologically through the retraining loop, to show it end to end.

The newest ``batches * weeks_per_batch`` weeks are held out; the first run trains on everything
older (and, with no production model, promotes its candidate), then each batch of weeks arrives as a
new log file and triggers one retraining run. MovieLens may not be redistributed, so every file
(the converted log, the batches, the registry) lives in a scratch directory outside the repository.

    PYTHONPATH=backend python -m app.registry.retrain --simulate-movielens ../shared/datasets/ml-100k --batches 3
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.config import Settings
from app.registry.pipeline import RetrainOptions, run_once
from app.registry.run_report import format_list, format_record, summary_table
from app.registry.versions import Registry

REPO_ROOT = Path(__file__).resolve().parents[3]
WEEK = 7 * 86400


def _outside_repo(path: Path) -> Path:
    path = path.resolve()
    if path == REPO_ROOT or REPO_ROOT in path.parents:
        raise ValueError(
            f"{path} is inside the repository; MovieLens data and models derived from it must stay outside"
        )
    return path


def split_by_weeks(
    lines: list[bytes], ts: np.ndarray, batches: int, weeks_per_batch: int
) -> tuple[list[bytes], list[list[bytes]]]:
    """(base lines, one list of lines per batch): batch b holds the events of weeks in (start_b, start_b + W weeks]."""
    if batches < 1 or weeks_per_batch < 1:
        raise ValueError("--batches and --weeks-per-batch must be >= 1")
    last = int(ts.max())
    edges = [last - (batches - b) * weeks_per_batch * WEEK for b in range(batches + 1)]
    order = np.argsort(ts, kind="stable")
    base = [lines[i] for i in order if ts[i] <= edges[0]]
    out = [[lines[i] for i in order if edges[b] < ts[i] <= edges[b + 1]] for b in range(batches)]
    return base, out


def _write(path: Path, lines: Sequence[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
    return path


def simulate_movielens(
    source: Path,
    *,
    batches: int = 3,
    weeks_per_batch: int = 2,
    work_dir: Path | None = None,
    registry_dir: Path | None = None,
    protocol: str = "leave-last-out",
    baselines: Sequence[str] = ("popular", "itemknn", "ease", "als"),
    train_params: dict[str, Any] | None = None,
    settings: Settings | None = None,
    echo: Any = print,
) -> list[dict[str, Any]]:
    """Run the loop over MovieLens; prints each run and a summary table; returns the run records."""
    from app.data.movielens import import_movielens

    work = _outside_repo(Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="registry-sim-")))
    registry = _outside_repo(Path(registry_dir) if registry_dir else work / "registry")
    if registry.exists() and any(registry.iterdir()):
        raise ValueError(f"{registry} is not empty: the simulation starts from an empty registry")
    converted = work / "movielens"
    summary = import_movielens(source, converted)
    lines = [ln for ln in Path(summary.interactions_path).read_bytes().splitlines() if ln.strip()]
    ts = np.fromiter((orjson.loads(ln)["ts"] for ln in lines), dtype=np.int64, count=len(lines))
    base, parts = split_by_weeks(lines, ts, batches, weeks_per_batch)
    base_path = _write(work / "base.jsonl", base)
    batch_paths = [_write(work / "new-logs" / f"batch-{b + 1:02d}.jsonl", part) for b, part in enumerate(parts)]
    echo(
        f"simulation in {work}: {len(base)} events before the held-out {batches} x {weeks_per_batch} weeks; "
        f"batches of {', '.join(str(len(p)) for p in parts)} events; registry {registry}"
    )
    records = []
    for step, new_logs in enumerate([[], *[[p] for p in batch_paths]]):
        opts = RetrainOptions(
            registry_dir=registry,
            data_paths=[base_path],
            items_path=Path(summary.items_path),
            new_logs=new_logs,
            protocol=protocol,
            baselines=tuple(baselines),
            train_params=dict(train_params or {}),
            **({"settings": settings} if settings is not None else {}),
        )
        started = time.perf_counter()
        record = run_once(opts)
        echo(
            f"\n== run {step} ({'initial data' if not new_logs else new_logs[0].name}), "
            f"{time.perf_counter() - started:.1f} s"
        )
        echo(format_record(record))
        records.append(record)
    echo("\n" + summary_table(records))
    echo("\n$ python -m app.registry --registry-dir " + str(registry) + " list")
    echo(format_list(Registry(registry).versions()))
    return records
