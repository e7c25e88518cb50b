"""``python -m app.eval``: train each model on the fitted part, evaluate on held-out positives, write reports."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import orjson

from app.eval.data import load_eval_data
from app.eval.report import results_table, write_report
from app.eval.runner import run_evaluation
from app.model.engines import ENGINES

DEFAULT_MODELS = "popular,itemknn,als,ease,baseline,nn"


def _int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def _models(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ENGINES)}"
        )
    return names


def _params(value: str) -> dict:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f'--params must be JSON like \'{{"ease": {{"l2": 300}}}}\': {e}') from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise argparse.ArgumentTypeError("--params must map model names to parameter objects")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.eval", description=__doc__)
    p.add_argument("--data-path", required=True, help="JSONL log (file, .gz or directory) or a MovieLens zip/folder")
    p.add_argument("--items-path", help="item catalogue JSONL (genres for the baseline heuristic)")
    p.add_argument("--protocol", choices=["temporal", "leave-last-out"], default="leave-last-out")
    p.add_argument(
        "--models", type=_models, default=_models(DEFAULT_MODELS), help=f"comma-separated, from {', '.join(ENGINES)}"
    )
    p.add_argument("--min-item-positives", type=int, default=10)
    p.add_argument("--min-user-positives", type=int, default=5)
    p.add_argument("--rating-threshold", type=float, default=4.0, help="a rating event is a positive at or above this")
    p.add_argument("--train-share", type=float, default=0.70, help="temporal protocol: oldest share for training")
    p.add_argument("--validation-share", type=float, default=0.15, help="temporal protocol: next share for validation")
    p.add_argument("--seeds", type=_int_list, default=[42, 43, 44], help="seeds for stochastic models (mean reported)")
    p.add_argument("--tune", action=argparse.BooleanOptionalAction, default=True, help="tune baselines on validation")
    p.add_argument("--params", type=_params, default=None, help='fixed hyperparameters, JSON: {"ease": {"l2": 300}}')
    p.add_argument(
        "--exclude-seen",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="never rank an item the user had any event with before the target (as serving and the promotion "
        "gate do); default: only the fitted positives are excluded",
    )
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="directory for report.md and report.json")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_item_positives < 0 or args.min_user_positives < 0:
        parser.error("the minimum positive counts must be >= 0")
    command = "python -m app.eval " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        data = load_eval_data(args.data_path, args.items_path, rating_threshold=args.rating_threshold)
        report = run_evaluation(
            data,
            protocol=args.protocol,
            models=args.models,
            seeds=args.seeds,
            tune=args.tune,
            min_item=args.min_item_positives,
            min_user=args.min_user_positives,
            train_share=args.train_share,
            validation_share=args.validation_share,
            fixed_params=args.params,
            progress=not args.no_progress,
            log=lambda s: print(s, flush=True),
            command=command,
            exclude_seen=args.exclude_seen,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md, js = write_report(report, args.out)
    print()
    print(results_table(report["models"]))
    print(f"\nwrote {md} and {js}")
    return 0
