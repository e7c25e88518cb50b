"""What the training CLI's saved model scores on interactions it never saw, measured from outside.

    PYTHONPATH=backend python benchmarks/shipped_model.py [--source ../shared/datasets/ml-100k] [--seeds 42,43,44]

MovieLens 100K is imported into a temporary directory (never into the repository). Each user's latest
positive (rating >= 4; users with at least 3 positives) is the test row, and every event of that
user-item pair is removed from the log the models see. Two models are trained by ``python -m
app.registry.train`` with its defaults (``--evaluation none``):

- **all positives**: on that log, as the training CLI ships a model now;
- **without the latest**: on that log minus each user's latest remaining positive, as the saved model
  was trained before (its factors never saw that positive), scored with the same full history.

Both are scored as the service scores a user (``SavedEmbedding``: the pooled history of every positive
in the log, every item the user had an event with excluded): HitRate@10 and NDCG@10 of the test row,
full ranking. Prints one row per seed and the mean.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
import scipy.sparse as sp
from serving import ROOT, env, ml100k_source

from app.model.artifacts import load_bundle
from app.model.base import top_k_row


def latest_positive(events: list[dict], keep: set[str] | None = None) -> dict[str, tuple[str, int]]:
    """user -> (item, ts) of their latest positive (rating >= 4), for users with at least 3 positives."""
    positives: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in events:
        if e.get("rating", 0) >= 4:
            positives[str(e["user_id"])].append((int(e["ts"]), str(e["item_id"])))
    out = {}
    for user, rows in positives.items():
        if len(rows) >= 3 and (keep is None or user in keep):
            ts, item = max(rows)
            out[user] = (item, ts)
    return out


def without(events: list[dict], pairs: dict[str, tuple[str, int]]) -> list[dict]:
    return [e for e in events if pairs.get(str(e["user_id"]), ("", 0))[0] != str(e["item_id"])]


def write(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def train(log: Path, items: Path, out: Path, seed: int) -> Path:
    cmd = [sys.executable, "-m", "app.registry.train", "--data-path", str(log), "--items-path", str(items)]
    cmd += ["--model-dir", str(out), "--evaluation", "none", "--seed", str(seed)]
    subprocess.run(cmd, check=True, env=env(), cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def score(model_dir: Path, events: list[dict], test: dict[str, tuple[str, int]]) -> tuple[float, float]:
    """(HitRate@10, NDCG@10) of the test rows, each user scored from every positive in ``events``."""
    bundle = load_bundle(model_dir)
    scorer = bundle.scorer()
    items = bundle.items
    history: dict[str, dict[int, float]] = defaultdict(dict)
    seen: dict[str, set[int]] = defaultdict(set)
    for e in events:
        i = items.index(str(e["item_id"]))
        if i is None:
            continue
        user = str(e["user_id"])
        seen[user].add(i)
        if e.get("rating", 0) >= 4:
            history[user][i] = 4.0  # the rating weight; mean pooling makes the value irrelevant
    hits = ndcg = 0.0
    for user, (item, _) in test.items():
        target = items.index(item)
        if target is None or not history[user]:
            continue
        cols = np.array(sorted(history[user]), dtype=np.int64)
        row = sp.csr_matrix((np.ones(cols.size, np.float32), cols, [0, cols.size]), shape=(1, len(items)))
        u = bundle.users.index(user)
        scores = scorer.score(np.array([-1 if u is None else u]), row)[0]
        top, _ = top_k_row(scores, 10, exclude=np.array(sorted(seen[user]), dtype=np.intp))
        where = np.flatnonzero(top == target)
        if where.size:
            hits += 1
            ndcg += 1.0 / np.log2(where[0] + 2)
    return hits / len(test), ndcg / len(test)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, help="ML-100K folder or zip (default: ML100K_DIR or ../shared)")
    p.add_argument("--seeds", default="42")
    args = p.parse_args(argv)
    source = args.source or ml100k_source()
    with tempfile.TemporaryDirectory(prefix="shipped-model-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "app.data.movielens", "import", "--source", str(source), "--out", str(work)],
            check=True,
            env=env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        events = [orjson.loads(line) for line in (work / "interactions.jsonl").read_bytes().splitlines()]
        test = latest_positive(events)
        seen_log = without(events, test)
        older = without(seen_log, latest_positive(seen_log, set(test)))
        full_path, older_path = write(work / "log.jsonl", seen_log), write(work / "older.jsonl", older)
        print(f"{len(test)} users' latest positive held out; {len(seen_log)} events in the log the models see")
        print("\n| seed | all positives HR@10 | NDCG@10 | without the latest HR@10 | NDCG@10 | NDCG@10 ratio |")
        print("| --- | --- | --- | --- | --- | --- |")
        rows = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            a = score(train(full_path, work / "items.jsonl", work / f"all-{seed}", seed), seen_log, test)
            b = score(train(older_path, work / "items.jsonl", work / f"older-{seed}", seed), seen_log, test)
            rows.append((*a, *b))
            print(f"| {seed} | {a[0]:.4f} | {a[1]:.4f} | {b[0]:.4f} | {b[1]:.4f} | {a[1] / b[1]:.3f} |")
        m = np.mean(rows, axis=0)
        print(f"| mean | {m[0]:.4f} | {m[1]:.4f} | {m[2]:.4f} | {m[3]:.4f} | {m[1] / m[3]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
