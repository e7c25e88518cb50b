"""Candidate recall: how many of the held-out positives each source of the hybrid engine, and their union,
brings into the ranker's reach, so the candidate budget is chosen from numbers.

``python -m app.eval.candidates --data-path ../shared/datasets/ml-100k`` fits the sources on the
validation stage's fitted part (as ``app.eval`` does) and prints, per source, Recall@100/200/500 on
the validation positives (full ranking, fitted items excluded), and for the union of every source's
top n (n = 25, 50, 100, 200) its mean size per user and its recall.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.eval.data import load_eval_data, stage_features
from app.eval.metrics import recall_at_k
from app.eval.splits import filter_positives, make_split
from app.model.base import Recommender, top_k
from app.model.hybrid import HybridRecommender
from app.model.sources import union

BUDGETS = (100, 200, 500)
PER_SOURCE = (25, 50, 100, 200)
BATCH = 256


def candidate_recall(
    sources: Mapping[str, Recommender],
    fitted: sp.csr_matrix,
    target: sp.csr_matrix,
    users: np.ndarray,
    budgets: Sequence[int] = BUDGETS,
    per_source: Sequence[int] = PER_SOURCE,
) -> dict[str, Any]:
    """{"sources": {name: {"recall@N": r}}, "union": [{"per_source": n, "size": mean, "recall": r}]}:
    mean over ``users`` of the share of their ``target`` items in each source's top N (and in the union
    of every source's top n), ``fitted`` items never proposed."""
    top = max(*budgets, *per_source)
    lists: dict[str, list[np.ndarray]] = {name: [] for name in sources}
    for lo in range(0, users.size, BATCH):
        batch = users[lo : lo + BATCH]
        hist = fitted[batch]
        for name, engine in sources.items():
            lists[name].append(top_k(engine.score(batch, hist), top, exclude=hist)[0])
    ranked = {name: np.concatenate(parts) for name, parts in lists.items()}
    truth = sp.csr_matrix(target[users])
    out: dict[str, Any] = {
        "sources": {
            name: {f"recall@{n}": float(recall_at_k(r, truth, n).mean()) for n in budgets} for name, r in ranked.items()
        },
        "union": [],
    }
    for n in per_source:
        merged = union(np.concatenate([r[:, :n] for r in ranked.values()], axis=1))
        size = float((merged >= 0).sum(axis=1).mean())
        out["union"].append(
            {"per_source": n, "size": size, "recall": float(recall_at_k(merged, truth, merged.shape[1]).mean())}
        )
    return out


def table(result: Mapping[str, Any]) -> str:
    """The result as two Markdown tables (per source, then the union per candidate budget)."""
    cols = list(next(iter(result["sources"].values())))
    lines = ["| source | " + " | ".join(c.replace("recall", "Recall") for c in cols) + " |"]
    lines.append("| --- |" + " ---: |" * len(cols))
    for name, r in result["sources"].items():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    lines += ["", "| union of every source's top n | candidates per user (mean) | Recall of the union |"]
    lines.append("| ---: | ---: | ---: |")
    for u in result["union"]:
        lines.append(f"| {u['per_source']} | {u['size']:.0f} | {u['recall']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.eval.candidates", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-path", required=True, help="JSONL log or a MovieLens zip/folder")
    p.add_argument("--items-path", help="item catalogue JSONL (genres for the genre source)")
    p.add_argument("--protocol", choices=("leave-last-out", "temporal"), default="leave-last-out")
    p.add_argument("--seed", type=int, default=42, help="seed of the embedding model and ALS")
    args = p.parse_args(argv)
    try:
        data = load_eval_data(args.data_path, args.items_path)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dataset, _ = filter_positives(data.dataset)
    split = make_split(dataset, args.protocol)
    fitted_m, target_m, users = split.stage_matrices("validation")
    fitted = split.stage("validation")[0]
    engine = HybridRecommender(seed=args.seed)
    sources = engine.fit_sources(fitted_m, fitted.timestamps(), stage_features(data, split, "validation"))
    result = candidate_recall(sources, fitted_m, target_m, users)
    print(f"{args.protocol} validation: {users.size} users, sources fitted on the train part\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
