"""ANN benchmark: recall@10 and per-query latency of the IVF-Flat index (``app.model.ann``) against exact NumPy scoring.

    PYTHONPATH=backend python benchmarks/ann.py                         # 27,000 and 1,000,000 items
    PYTHONPATH=backend python benchmarks/ann.py --items 27000 --queries 200

Synthetic item factors: clustered Gaussian (``--clusters`` centres, dim ``--dim``) with a small item
bias. Queries are like users: the mean of the factors of 1-30 items drawn from 1-3 clusters (users'
tastes are not uniform over the catalogue) plus noise; their items and 20 random ones are excluded. For each size: the index build time (on every core, as at load) and memory (the index's
vectors and links, and the process RSS growth), then recall@10 of ``ann.top`` against the exact
top 10 and p50/p95 latency per query of the exact path (mat-vec + ``top_k_row``, as the service
ranks today) and of the ANN path (search + exact re-scoring of the candidates + filter), in
process, one BLAS thread (``threadpoolctl``, as the service) and one search thread. Both the
personal index (inner product with bias) and the ``/similar`` index (cosine) are measured.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from threadpoolctl import threadpool_limits

from app.config import Settings
from app.model import ann
from app.model.base import top_k_row, unit_rows


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(
    n: int, dim: int, clusters: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Item factors (centre + noise, scaled by 1/sqrt(dim)), item bias and each cluster's items."""
    centres = rng.normal(0, 1, (clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    factors = centres[labels] + rng.normal(0, 0.6, (n, dim)).astype(np.float32)
    factors /= np.float32(np.sqrt(dim))
    bias = rng.normal(0, 0.05, n).astype(np.float32)
    order = np.argsort(labels, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(labels, minlength=clusters))[:-1])
    return np.ascontiguousarray(factors), bias, members


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1e3, q))


def run(n: int, args: argparse.Namespace, st: Settings) -> dict:
    rng = np.random.default_rng(n)
    factors, bias, members = synthetic(n, args.dim, args.clusters, rng)
    unit = unit_rows(factors)
    out: dict = {"items": n, "dim": args.dim}
    rss0 = rss_mb()
    personal = ann.IvfIndex(np.hstack([factors, bias[:, None]]), st.ann_lists, st.ann_probe)
    rss1 = rss_mb()
    similar = ann.IvfIndex(unit, st.ann_lists, st.ann_probe)
    rss2 = rss_mb()
    out["build_seconds"] = {"personal": round(personal.build_seconds, 1), "similar": round(similar.build_seconds, 1)}
    out["index_mb"] = {"personal": round(personal.nbytes / 2**20), "similar": round(similar.nbytes / 2**20)}
    out["rss_growth_mb"] = {"personal": round(rss1 - rss0), "similar": round(rss2 - rss1)}
    k = 10
    for name in ("personal", "similar"):
        hits, t_exact, t_ann, fallbacks = 0, [], [], 0
        for _ in range(args.queries):
            if name == "personal":
                pool = np.concatenate([members[c] for c in rng.integers(0, args.clusters, rng.integers(1, 4))])
                hist = rng.choice(pool, min(pool.size, int(rng.integers(1, 31))))
                vec = factors[hist].mean(axis=0) + rng.normal(0, 0.05, args.dim).astype(np.float32)
                exclude = np.unique(np.concatenate([hist, rng.integers(0, n, 20)])).astype(np.intp)
                index, query = personal, np.append(vec, np.float32(1))

                def full(vec=vec):
                    return factors @ vec + bias

                def exact(c, vec=vec):
                    return factors[c] @ vec + bias[c]
            else:
                i = int(rng.integers(0, n))
                exclude = np.array([i], np.intp)
                index, query = similar, unit[i]

                def full(i=i):
                    return unit @ unit[i]

                def exact(c, i=i):
                    return unit[c] @ unit[i]

            t0 = time.perf_counter()
            ref, _ = top_k_row(full(), k, None, exclude)
            t1 = time.perf_counter()
            got = ann.top(
                index, query, exact, k, None, exclude, n - exclude.size, st.ann_overfetch, st.ann_max_candidates
            )
            t2 = time.perf_counter()
            if got is None:
                fallbacks += 1
                got = (ref, None)
            t_exact.append(t1 - t0)
            t_ann.append(t2 - t1)
            hits += np.intersect1d(ref, got[0]).size
        out[name] = {
            "recall@10": round(hits / (k * args.queries), 4),
            "exact_ms": {"p50": round(pct(t_exact, 50), 3), "p95": round(pct(t_exact, 95), 3)},
            "ann_ms": {"p50": round(pct(t_ann, 50), 3), "p95": round(pct(t_ann, 95), 3)},
            "fallbacks": fallbacks,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, nargs="+", default=[27_000, 1_000_000])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--queries", type=int, default=500)
    args = p.parse_args()
    st = Settings()
    print(
        f"IVF-Flat lists={st.ann_lists or '4 sqrt(items)'} probe={st.ann_probe} "
        f"overfetch={st.ann_overfetch} max_candidates={st.ann_max_candidates}",
        flush=True,
    )
    with threadpool_limits(1, "blas"):
        for n in args.items:
            print(json.dumps(run(n, args, st)), flush=True)


if __name__ == "__main__":
    main()
