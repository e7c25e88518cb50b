"""``python -m app.eval.tune``: validation-set search over an engine's hyperparameters (the Keras model by default).

Each setting is fitted on the training part and scored on the validation part (NDCG@10, full
ranking); the best one is printed as JSON (copy it into the training defaults) and, with
``--test``, refitted on train + validation and evaluated on test per seed.
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.eval.data import EvalData, load_eval_data, stage_features
from app.eval.runner import SELECT_BY, fit_and_evaluate, grid, run_model
from app.eval.splits import Split, filter_positives, make_split
from app.files import write_bytes_atomic
from app.model.engines import ENGINES

#: Default search space for the Keras embedding model ("nn"); names are its constructor arguments.
NN_SPACE: dict[str, list[Any]] = {
    "embedding_dim": [32, 64, 128],
    "epochs": [40, 60, 80],
    "learning_rate": [0.01, 0.02],
    "l2": [3e-3, 1e-2, 3e-2],
    "history_dropout": [0.3, 0.5, 0.7],
    "future_share": [0.0, 0.25, 0.5, 0.75],
    "future_window": [0.2, 0.5],
}
SPACES: dict[str, dict[str, list[Any]]] = {"nn": NN_SPACE}


def engine_arguments(name: str) -> set[str] | None:
    """Constructor arguments of an engine, or None when they cannot be inspected (then nothing is checked)."""
    factory = ENGINES[name]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def candidates(space: dict[str, list[Any]], budget: int, search: str, seed: int) -> list[dict[str, Any]]:
    """``budget`` settings: the first ones of the grid, or a seeded random sample of it without repeats."""
    if budget < 1:
        raise ValueError("budget must be >= 1")
    points = grid(**space)
    if search == "grid":
        return points[:budget]
    if search == "random":
        order = np.random.default_rng(seed).permutation(len(points))[:budget]
        return [points[i] for i in order]
    raise ValueError(f"search must be 'grid' or 'random', got {search!r}")


def search(
    name: str,
    data: EvalData,
    split: Split,
    points: Sequence[dict[str, Any]],
    *,
    seed: int = 42,
    step: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Fit and validate every point; rows sorted best first by validation NDCG@10."""
    features = stage_features(data, split, "validation")
    stochastic = name == "nn" or "seed" in (engine_arguments(name) or set())
    rows = []
    for point in points:
        t0 = time.perf_counter()
        res, fit_s = fit_and_evaluate(
            name, point, split, "validation", features, seed=seed if stochastic else None, n_boot=0
        )
        row = {"params": point, "metrics": res["metrics"], "fit_seconds": fit_s, "seconds": time.perf_counter() - t0}
        rows.append(row)
        if step:
            step(row)
    return sorted(rows, key=lambda r: -r["metrics"][SELECT_BY])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.eval.tune", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-path", required=True, help="JSONL log or MovieLens zip/folder")
    p.add_argument("--items-path")
    p.add_argument("--model", default="nn", choices=sorted(ENGINES), help="engine to tune (default: the Keras model)")
    p.add_argument("--protocol", choices=["temporal", "leave-last-out"], default="leave-last-out")
    p.add_argument("--budget", type=int, default=10, help="number of settings to try")
    p.add_argument("--search", choices=["random", "grid"], default="random")
    p.add_argument(
        "--space", type=str, default=None, help='JSON search space, e.g. {"dim": [32, 64], "epochs": [5, 10]}'
    )
    p.add_argument("--fixed", type=str, default=None, help="JSON parameters added to every setting")
    p.add_argument("--seed", type=int, default=42, help="seed of the random search and of each fit")
    p.add_argument(
        "--test-seeds", type=str, default="", help="comma-separated seeds: refit the best on train+validation and test"
    )
    p.add_argument("--min-item-positives", type=int, default=10)
    p.add_argument("--min-user-positives", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="write tune.json here")
    return p


def _json_arg(parser: argparse.ArgumentParser, value: str | None, flag: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        parser.error(f"{flag} must be a JSON object: {e}")
    if not isinstance(parsed, dict):
        parser.error(f"{flag} must be a JSON object")
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    space = _json_arg(parser, args.space, "--space") or SPACES.get(args.model)
    if not space:
        parser.error(f"no default search space for {args.model!r}; give --space")
    if not all(isinstance(v, list) and v for v in space.values()):
        parser.error("--space values must be non-empty lists")
    fixed = _json_arg(parser, args.fixed, "--fixed")
    allowed = engine_arguments(args.model)
    if allowed is not None:
        unknown = sorted((set(space) | set(fixed)) - allowed)
        if unknown:
            parser.error(
                f"{args.model} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}"
            )
    try:
        test_seeds = [int(s) for s in args.test_seeds.split(",") if s.strip()]
    except ValueError:
        parser.error("--test-seeds must be comma-separated integers")
    try:
        data = load_eval_data(args.data_path, args.items_path)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dataset, _ = filter_positives(data.dataset, args.min_item_positives, args.min_user_positives)
    split = make_split(dataset, args.protocol)
    sizes = split.sizes()
    print(
        f"{args.protocol}: train {sizes['train']['interactions']}, validation {sizes['validation']['interactions']}, "
        f"evaluated on validation: {sizes['evaluated_users_validation']} users",
        flush=True,
    )
    points = [{**p, **fixed} for p in candidates(space, args.budget, args.search, args.seed)]

    from tqdm import tqdm

    with tqdm(total=len(points), desc=f"tuning {args.model}", unit="fit") as bar:

        def step(row: dict[str, Any]) -> None:
            bar.update(1)
            tqdm.write(
                f"{row['metrics'][SELECT_BY]:.4f} NDCG@10  {row['fit_seconds']:.1f}s fit  {orjson.dumps(row['params']).decode()}"
            )

        rows = search(args.model, data, split, points, seed=args.seed, step=step)
    best = rows[0]
    print(
        f"\nbest validation NDCG@10 {best['metrics'][SELECT_BY]:.4f} (Recall@20 {best['metrics']['recall@20']:.4f}, "
        f"fit {best['fit_seconds']:.1f}s):"
    )
    print(orjson.dumps(best["params"]).decode())
    out: dict[str, Any] = {
        "command": "python -m app.eval.tune "
        + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        "model": args.model,
        "protocol": args.protocol,
        "search": args.search,
        "budget": args.budget,
        "split": sizes,
        "best": best,
        "trials": rows,
    }
    if test_seeds:
        res = run_model(args.model, data, split, seeds=test_seeds, params=best["params"])
        out["test"] = res.as_dict()
        m = res.metrics
        print(
            f"test (refit on train+validation, seeds {test_seeds}): NDCG@10 {m['ndcg@10']:.4f}, "
            f"Recall@20 {m['recall@20']:.4f}, coverage@100 {m['coverage@100']:.3f}, fit {res.fit_seconds:.1f}s"
        )
    if args.out:
        path = Path(args.out) / "tune.json"
        write_bytes_atomic(path, orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
