"""Time one embedding fit in one process against N local workers, and split a worker's step into compute
and all-reduce (what k machines would pay).

    flock /tmp/bench.lock env PYTHONPATH=backend .venv/bin/python benchmarks/multiworker.py \\
        --data-path /tmp/ml100k/interactions.jsonl [--workers 2] [--epochs 10]

Three runs of the same fit (default loss and hyperparameters, one ensemble member, ``--epochs``):

* ``single``: one process with every core (what ``--distribute none`` does);
* ``single-1/N``: one process with the thread pool one worker gets (cores / N): the whole batch's
  compute at a worker's speed, so a worker's share of it is this step time / N;
* ``N workers``: N local processes under ``MultiWorkerMirroredStrategy`` (loopback, cores shared).
  Each also times all-reduces of gradient-sized tensors (items x dim twice, plus items) for this
  data's catalogue and for ``--items`` (ML-20M's 27,000 by default): the per-step price of keeping
  the workers' copies identical, whatever their data.

Per-epoch seconds leave out the first epoch (it compiles the step). Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def measure(data_path: Path, epochs: int, items: int, reps: int) -> dict:
    """One fit (and, under a strategy, the all-reduce timings) in this process."""
    from app.data.dataset import load_dataset
    from app.model import distribution
    from app.model.embedding import EmbeddingRecommender, sized_params

    dataset, _, _ = load_dataset(data_path)
    m = dataset.matrix()
    hp = sized_params(dataset.n_users, dataset.n_items, {"ensemble": 1, "epochs": epochs})
    active = int(np.count_nonzero(np.diff(m.indptr)))
    steps = -(-active // max(1, round(hp["batch_size"] * dataset.n_users / m.nnz)))
    model = EmbeddingRecommender(**hp).fit(m, recency=dataset.recency())
    per_epoch = float(np.mean([h["seconds"] for h in model.history_[1:]]))
    out = {
        "users": dataset.n_users,
        "items": dataset.n_items,
        "positives": len(dataset),
        "batch_size": hp["batch_size"],
        "steps_per_epoch": steps,
        "epoch_seconds": round(per_epoch, 3),
        "step_ms": round(1000 * per_epoch / steps, 2),
    }
    dist = distribution.active()
    if dist is not None:
        out["allreduce_ms"] = {
            str(n): allreduce_ms(dist, n, hp["embedding_dim"], reps) for n in (dataset.n_items, items)
        }
        out["scalar_allreduce_ms"] = allreduce_ms(dist, 0, 0, reps)
    return out


def allreduce_ms(dist, n_items: int, dim: int, reps: int) -> float:
    """Milliseconds of one SUM all-reduce of the multinomial loss's gradients (or of 2 numbers with n_items 0)."""
    import tensorflow as tf

    shapes = [(n_items, dim), (n_items, dim), (n_items,)] if n_items else [(2,)]

    @tf.function
    def reduce():
        def replica():  # gradient-like values made on the replica, as in a training step
            values = [tf.ones(s, tf.float32) for s in shapes]
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)

        return dist.strategy.run(replica)

    for _ in range(3):  # build the collective
        reduce()
    t0 = time.perf_counter()
    for _ in range(reps):
        out = reduce()
    float(tf.reduce_sum(dist.strategy.experimental_local_results(out[0])[0]))
    return round(1000 * (time.perf_counter() - t0) / reps, 2)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(args: argparse.Namespace, role: str, threads: int, workers: int = 1) -> dict:
    """The measurement in fresh processes (``workers`` of them under a strategy); the chief's result."""
    cmd = [sys.executable, __file__, "--role", role, "--data-path", str(args.data_path)]
    cmd += ["--epochs", str(args.epochs), "--items", str(args.items), "--reps", str(args.reps)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "backend"), "RECOMMENDER_TF_THREADS": str(threads)}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if workers == 1:
        env.pop("TF_CONFIG", None)
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)]
    else:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(workers)]}
        procs = [
            subprocess.Popen(
                cmd,
                env={**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(workers)
        ]
    t0 = time.perf_counter()
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"{role} failed: exit codes {[p.returncode for p in procs]}")
    result = json.loads(outs[0].strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--items", type=int, default=27000, help="catalogue size of the extra all-reduce timing")
    parser.add_argument("--reps", type=int, default=50, help="all-reduces timed")
    parser.add_argument("--role", choices=("main", "single", "worker"), default="main", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role != "main":
        if args.role == "worker":
            from app.model import distribution

            dist = distribution.start("multiworker")
            result = measure(args.data_path, args.epochs, args.items, args.reps)
            if dist.is_chief:
                print(json.dumps(result), flush=True)
        else:
            print(json.dumps(measure(args.data_path, args.epochs, args.items, args.reps)), flush=True)
        return 0
    cores, n = os.cpu_count() or 1, args.workers
    share = max(1, cores // n)
    results = {
        "single": run(args, "single", cores),
        f"single-1/{n}": run(args, "single", share),
        f"{n} workers": run(args, "worker", share, n),
    }
    for name, r in results.items():
        print(f"{name:>12}: {json.dumps(r)}")
    dist, alone = results[f"{n} workers"], results[f"single-1/{n}"]
    reduce_ms = dist["allreduce_ms"][str(dist["items"])] + dist["scalar_allreduce_ms"]
    print(
        f"per step: one process {results['single']['step_ms']} ms; {n} workers {dist['step_ms']} ms = a worker's "
        f"compute ~{alone['step_ms'] / n:.2f} ms (1/{n} of {alone['step_ms']} ms at {share} thread(s)) + all-reduce "
        f"{reduce_ms:.2f} ms + the rest {dist['step_ms'] - alone['step_ms'] / n - reduce_ms:.2f} ms; "
        f"gradients of {args.items:,} items: {dist['allreduce_ms'][str(args.items)]} ms per all-reduce"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
