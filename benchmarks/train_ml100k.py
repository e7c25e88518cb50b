"""Train with the CLI defaults on MovieLens 100K: the embedding model against most-popular, and the hybrid engine.

    PYTHONPATH=backend python benchmarks/train_ml100k.py [--source ../shared/datasets/ml-100k] [--seeds 42,43,44]

ML-100K is imported into a temporary directory (its licence forbids redistribution: nothing is
written inside the repository), then ``python -m app.registry.train`` runs with its defaults once per
seed, exactly as a user would run it. Prints the wall time of each run, the time of its hybrid stage,
the held-out figures the CLI reports (by default the hybrid engine's earlier-slice embedding model on
each user's latest tenth of positives; with ``--pipeline nn`` the quick evaluation fit on each user's
latest positive; full ranking, training items excluded) beside the most-popular baseline, and the
hybrid engine's validation NDCG@10 beside the embedding model's on the
ranker's held-out users. ``-- --pipeline nn`` times the embedding model alone.
Exits 0 with a message when the dataset is absent.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "ml-100k"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--source",
        type=Path,
        default=Path(os.environ.get("ML100K_DIR", DEFAULT_SOURCE)),
        help="ML-100K folder or ml-100k.zip (default: ../shared/datasets/ml-100k or $ML100K_DIR)",
    )
    p.add_argument("--seeds", default="42", help="comma-separated seeds, one training run each")
    p.add_argument("train_args", nargs="*", help="extra flags for app.registry.train (after --)")
    args = p.parse_args(argv)
    if not args.source.exists():
        print(f"SKIPPED: MovieLens 100K not found at {args.source} (give --source or set ML100K_DIR)")
        return 0
    sys.path.insert(0, str(ROOT / "backend"))
    from app.data.movielens import import_movielens

    env = {**os.environ, "PYTHONPATH": str(ROOT / "backend"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ml100k-bench-") as tmp:
        summary = import_movielens(args.source, Path(tmp) / "data")
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            model_dir = Path(tmp) / f"model-{seed}"
            cmd = [
                sys.executable,
                "-m",
                "app.registry.train",
                "--data-path",
                summary.interactions_path,
                "--items-path",
                summary.items_path,
                "--model-dir",
                str(model_dir),
                "--seed",
                str(seed),
                *args.train_args,
            ]
            print(
                "$ PYTHONPATH=backend python -m app.registry.train --data-path ML100K/interactions.jsonl "
                f"--items-path ML100K/items.jsonl --model-dir MODEL --seed {seed} {' '.join(args.train_args)}",
                flush=True,
            )
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, cwd=ROOT)
            wall = time.perf_counter() - t0
            meta = orjson.loads((model_dir / "metadata.json").read_bytes())
            m = meta["metrics"]
            hy = (m.get("hybrid") or {}).get("metrics") or {}
            rows.append(
                (
                    seed,
                    wall,
                    m["train_seconds"],
                    (m.get("hybrid") or {}).get("train_seconds", float("nan")),
                    m["heldout_users"],
                    m["hitrate@10"],
                    m["ndcg@10"],
                    m["popular"]["hitrate@10"],
                    m["popular"]["ndcg@10"],
                    hy.get("hybrid", {}).get("ndcg@10", float("nan")),
                    hy.get("nn", {}).get("ndcg@10", float("nan")),
                )
            )
    print()
    print(
        "| seed | wall s (whole CLI) | shipped fit s | hybrid s | held-out users | HR@10 | NDCG@10 | popular HR@10 "
        "| popular NDCG@10 | hybrid validation NDCG@10 | nn on the same users |"
    )
    print("|" + " --- |" * 11)
    fmt = "| {} | {:.1f} | {:.1f} | {:.1f} | {:.0f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} |"
    for r in rows:
        print(fmt.format(*r))
    if len(rows) > 1:
        print(fmt.format("mean", *[sum(r[i] for r in rows) / len(rows) for i in range(1, 11)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
