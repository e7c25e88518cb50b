"""``python -m app.registry.retrain``: the retraining command's flags, its ``--every`` loop and ``--simulate-movielens``.

The run itself is ``app.registry.pipeline.run_once`` and the MovieLens replay ``app.registry.simulate``
(which calls ``run_once``); only this command imports both. The help text is the pipeline's own
description (``app.registry.pipeline``'s docstring).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from app.config import get_settings
from app.registry import pipeline
from app.registry.pipeline import DEFAULT_BASELINES, RetrainError, RetrainOptions, run_once
from app.registry.run_report import format_record
from app.registry.simulate import simulate_movielens
from app.registry.state import RegistryError

log = logging.getLogger(__name__)


def _params(values: list[str]) -> dict[str, Any]:
    """``--param KEY=VALUE`` pairs; a value is JSON when it parses as JSON (``epochs=5``), else a string."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--param {item!r}: use KEY=VALUE")
        try:
            out[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out[key] = raw  # a bare string such as loss=softmax
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app.registry.retrain",
        description=pipeline.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--registry-dir", type=Path, default=None, help="default: RECOMMENDER_REGISTRY_DIR")
    p.add_argument("--data-path", type=Path, nargs="+", default=None, help="existing training data (JSONL file/dir)")
    p.add_argument("--items-path", type=Path, default=None, help="catalogue JSONL (genres for features, titles)")
    p.add_argument("--new-logs", type=Path, nargs="*", default=[], help="new JSONL logs (files or directories)")
    p.add_argument(
        "--database-url",
        default=None,
        help="the service's database: its 'events' and 'engagements' rows since the last run are ingested",
    )
    p.add_argument("--service-url", default=None, help="POST <url>/admin/reload after a promotion")
    p.add_argument("--every", type=float, default=None, metavar="SECONDS", help="loop: run again every SECONDS")
    p.add_argument("--protocol", choices=["leave-last-out", "temporal"], default="leave-last-out")
    p.add_argument(
        "--baselines",
        default=",".join(DEFAULT_BASELINES),
        help="comma-separated engines fitted for the report ('' for none)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Keras model hyperparameter (repeatable), e.g. --param epochs=5",
    )
    p.add_argument(
        "--min-gate-users",
        type=int,
        default=pipeline.MIN_GATE_USERS,
        help="when production was trained on some validation rows: judge on the users it never saw if at "
        "least this many, else refit its configuration on the candidate's train part",
    )
    p.add_argument("--min-item-positives", type=int, default=1)
    p.add_argument("--min-user-positives", type=int, default=1)
    p.add_argument("--force", action="store_true", help="train even when nothing new arrived")
    p.add_argument("--actor", default="retrain")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    sim = p.add_argument_group("simulation (replays MovieLens chronologically)")
    sim.add_argument(
        "--simulate-movielens",
        type=Path,
        default=None,
        metavar="PATH",
        help="MovieLens folder or zip: the newest weeks are replayed as new logs, batch by batch",
    )
    sim.add_argument("--batches", type=int, default=3)
    sim.add_argument("--weeks-per-batch", type=int, default=2)
    sim.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="simulation scratch (default: a temp dir; never inside the repository)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    settings = get_settings()
    baselines = tuple(b for b in args.baselines.split(",") if b)
    try:
        params = _params(args.param)
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.simulate_movielens is not None:
        simulate_movielens(
            args.simulate_movielens,
            batches=args.batches,
            weeks_per_batch=args.weeks_per_batch,
            work_dir=args.work_dir,
            registry_dir=args.registry_dir,
            protocol=args.protocol,
            baselines=baselines,
            train_params=params,
            settings=settings,
        )
        return 0
    root = args.registry_dir or settings.registry_dir
    if root is None or not args.data_path:
        print("error: give --registry-dir (or RECOMMENDER_REGISTRY_DIR) and --data-path", file=sys.stderr)
        return 2
    opts = RetrainOptions(
        registry_dir=Path(root),
        data_paths=list(args.data_path),
        items_path=args.items_path,
        new_logs=list(args.new_logs),
        database_url=args.database_url,
        service_url=args.service_url,
        protocol=args.protocol,
        baselines=baselines,
        train_params=params,
        min_item_positives=args.min_item_positives,
        min_user_positives=args.min_user_positives,
        min_gate_users=args.min_gate_users,
        force=args.force,
        actor=args.actor,
        settings=settings,
    )
    while True:
        try:
            record = run_once(opts)
            print(
                orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
                if args.json
                else format_record(record),
                flush=True,
            )
        except (RetrainError, RegistryError, FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            if args.every is None:
                return 1
        except Exception:
            if args.every is None:
                raise
            log.exception("retraining run failed; trying again in %s s", args.every)  # the loop survives
        if args.every is None:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
