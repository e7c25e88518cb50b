"""Where one hybrid request's time goes: the sources' scores, the union of their candidates, the feature
store lookups, the ranker, and the explanation behind the reasons, per user, in one process.

    PYTHONPATH=backend python benchmarks/hybrid_stages.py --model-dir DIR [--users 300]

``DIR`` is a model directory written by the training CLI's default pipeline (it holds ``hybrid.npz``
and ``ranker.txt``). Prints p50 and p95 milliseconds per stage over ``--users`` users drawn from the
model, scored one at a time as the service does; the HTTP figure (``/recommendations?engine=hybrid``
under load) is ``benchmarks/serving.py``'s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from app.model.artifacts import ModelBundle, ModelLoadError, load_bundle  # noqa: E402
from app.model.base import csr_row, top_k_row  # noqa: E402
from app.model.feature_store import cross_features  # noqa: E402
from app.model.hybrid import HybridRecommender  # noqa: E402
from app.model.sources import gather  # noqa: E402


def load_hybrid(model_dir: Path) -> tuple[ModelBundle, HybridRecommender] | None:
    """(bundle, its restored hybrid engine), or None, said on stderr, when the model has none."""
    try:
        bundle = load_bundle(model_dir)
    except ModelLoadError as exc:
        print(exc, file=sys.stderr)
        return None
    if not bundle.has_hybrid:
        print(f"{model_dir}: no hybrid engine (train it with the default --pipeline)", file=sys.stderr)
        return None
    return bundle, bundle.hybrid(bundle.scorer())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    loaded = load_hybrid(args.model_dir)
    if loaded is None:
        return 2
    bundle, engine = loaded
    restore = time.perf_counter() - t0
    store, ranker = engine.store_, engine.ranker_
    rng = np.random.default_rng(args.seed)
    users = rng.choice(len(bundle.users), min(args.users, len(bundle.users)), replace=False)
    stages: dict[str, list[float]] = {
        k: [] for k in ("sources + union", "feature lookups", "ranker", "whole score()", "explain top 10")
    }
    for u in users.tolist():
        row = csr_row(bundle.history, u)
        uu = np.array([u])
        t = time.perf_counter()
        cands = gather(engine.sources_, uu, row, engine.per_source)
        t1 = time.perf_counter()
        _user_f, shares = store.user_rows(uu, row)
        _ = store.item[np.maximum(cands.items, 0)], cross_features(shares, store.item_genres, cands.items)
        t2 = time.perf_counter()
        x, _ = engine._frame(engine.sources_, store, uu, row, cands.items)
        t3 = time.perf_counter()
        ranker.predict(x[0][cands.items[0] >= 0])
        t4 = time.perf_counter()
        scores = engine.score(uu, row)[0]
        t5 = time.perf_counter()
        top, _ = top_k_row(scores, 10, exclude=row.indices.astype(np.intp))
        t6 = time.perf_counter()
        engine.explain(u, row, top)
        t7 = time.perf_counter()
        stages["sources + union"].append(t1 - t)
        stages["feature lookups"].append(t2 - t1)
        stages["ranker"].append(t4 - t3)
        stages["whole score()"].append(t5 - t4)
        stages["explain top 10"].append(t7 - t6)
    width = float(np.mean((cands.items >= 0).sum()))
    print(
        f"{args.model_dir}: {len(bundle.users)} users x {len(bundle.items)} items, sources {', '.join(engine.sources_)}; "
        f"restored in {restore:.2f} s; {len(users)} users, one at a time (last user: {width:.0f} candidates)"
    )
    print("| stage | p50 ms | p95 ms |\n| --- | ---: | ---: |")
    for name, values in stages.items():
        ms = np.asarray(values) * 1000
        print(f"| {name} | {np.percentile(ms, 50):.2f} | {np.percentile(ms, 95):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
