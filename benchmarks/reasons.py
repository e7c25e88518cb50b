"""What the hybrid engine's reasons cost and how well they name what raised a score: the ranker's path
contributions (what the service uses) beside LightGBM's SHAP values (``pred_contrib``), both summed into
reason groups, on the top 50 items of users drawn from a model.

    PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/reasons.py --model-dir DIR [--users 600]

Faithfulness is measured by ablation: a group's features are set to their mean over the rows and the
drop in the ranker's score is that group's effect; an attribution is as good as its strongest group
(and its two strongest, in order) agrees with the ablation's. ``DIR`` is a model directory written by
the training CLI's default pipeline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from hybrid_stages import load_hybrid  # noqa: E402

from app.model.hybrid import REASON_NAMES, _group_matrix, reason_order  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--users", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    loaded = load_hybrid(args.model_dir)
    if loaded is None:
        return 2
    bundle, engine = loaded
    store, ranker = engine.store_, engine.ranker_
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(len(bundle.users), min(args.users, len(bundle.users)), replace=False))
    history = bundle.history[users]
    scores = engine.score(users, history)
    scores[history.toarray() > 0] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :50]
    x, _ = engine._frame(engine.sources_, store, users, history, top)
    x = x.reshape(-1, x.shape[-1])
    groups = _group_matrix(tuple(ranker.feature_names))
    ranker.contributions(x[:1], 2, groups)  # the path tables are built once per model: not timed

    t = time.perf_counter()
    path = ranker.contributions(x, 2, groups)
    path_s = time.perf_counter() - t
    t = time.perf_counter()
    shap = np.zeros((len(x), len(ranker.feature_names)))
    for b in ranker.boosters:
        shap += b.predict(x, pred_contrib=True, num_threads=2)[:, :-1]
    shap /= len(ranker.model_texts)
    shap_s = time.perf_counter() - t
    base = ranker._base(x)
    shap[:, ranker.feature_names.index(ranker.base)] += base - base.mean()
    shap = (shap @ groups).astype(np.float32)
    t = time.perf_counter()
    score = ranker.predict(x, 2)
    predict_s = time.perf_counter() - t

    means = np.nanmean(x, axis=0)
    drops = np.zeros((len(x), groups.shape[1]), np.float32)
    for g in range(groups.shape[1]):
        cols = np.flatnonzero(groups[:, g])
        if cols.size:
            ablated = x.copy()
            ablated[:, cols] = means[cols]
            drops[:, g] = score - ranker.predict(ablated, 2)
    truth = reason_order(drops)
    trees = sum(b.num_trees() for b in ranker.boosters)
    print(
        f"{args.model_dir}: {len(x):,} rows ({len(users)} users x 50 items), {len(ranker.boosters)} boosters,"
        f" {trees} trees; groups {', '.join(REASON_NAMES)}; prediction {predict_s:.2f} s"
    )
    print("| attribution | s | x prediction | strongest group = ablation's | two strongest = ablation's |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, values, seconds in (("path contributions", path, path_s), ("SHAP (pred_contrib)", shap, shap_s)):
        order = reason_order(values)
        first = np.mean(order[:, 0] == truth[:, 0])
        both = np.mean((order[:, :2] == truth[:, :2]).all(axis=1))
        print(f"| {name} | {seconds:.2f} | {seconds / predict_s:.1f} | {first:.3f} | {both:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
