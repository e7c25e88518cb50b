"""Serving A/B: this working tree against another git revision, on the same machine at the same time.

    PYTHONPATH=backend python benchmarks/serving_ab.py --baseline HEAD~1 --endpoint /popular
    PYTHONPATH=backend python benchmarks/serving_ab.py --baseline main --endpoint "/recommend (filters)" --rounds 10

Why: this machine's speed changes from minute to minute, so two benchmark runs made one after the
other can differ by more than the change being measured. Both servers are up at once (the baseline's
``backend`` extracted with ``git archive``, same model, a fresh SQLite database each), and short wrk
runs at concurrency 8 alternate between them, the order flipped every round. Each round gives a
throughput ratio of two runs a few seconds apart; the median of those ratios is the result.
Endpoints are ``benchmarks/serving.py``'s scenarios; the model is trained on ML-100K (as there) unless
``--model-dir`` is given.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import serving as S


def extract(rev: str, dest: Path) -> Path:
    """``backend/`` as it is at ``rev`` (any git revision), under ``dest``."""
    archive = subprocess.run(["git", "archive", rev, "backend"], cwd=S.ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "backend"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--baseline", required=True, help="git revision to compare against (HEAD~1, a tag, a commit)")
    p.add_argument("--endpoint", default="/recommendations", help="scenario name, as benchmarks/serving.py prints it")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--duration", type=int, default=3, help="seconds per run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--model-dir", type=Path, help="serve this model instead of training one on ML-100K")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "serving-bench")
    p.add_argument("--no-impressions", action="store_true", help="both servers with impression logging off")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")

    args.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir or S.train_ml100k(args.work_dir)
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp_name:
        tmp = Path(tmp_name)
        trees = {f"baseline ({args.baseline})": extract(args.baseline, tmp), "working tree": S.BACKEND}
        servers = {}
        try:
            for i, (name, backend) in enumerate(trees.items()):
                servers[name] = S.Server(model_dir, tmp / f"db-{i}", not args.no_impressions, backend=backend)
            info = next(iter(servers.values())).wait_ready()
            users, items = S.model_ids(model_dir)
            by_name = {s.name: s for s in S.scenarios(info, users, items, random.Random(7))}
            if args.endpoint not in by_name:
                sys.exit(f"unknown endpoint {args.endpoint!r}; one of: {', '.join(by_name)}")
            scenario = by_name[args.endpoint]
            for server in servers.values():  # warm-up, not measured
                server.drive(scenario, args.concurrency, 1, tmp, "warm-up", True)
            runs: dict[str, list[S.Run]] = {name: [] for name in servers}
            order = list(servers)
            for r in range(args.rounds):
                for name in order if r % 2 == 0 else order[::-1]:
                    run = servers[name].drive(scenario, args.concurrency, args.duration, tmp, name, True)
                    runs[name].append(run)
                    print(f"  round {r + 1} {S.describe(run)}", flush=True)
        finally:
            for server in servers.values():
                server.stop()

    print(f"\n{args.endpoint}, c={args.concurrency}, {args.rounds} rounds of {args.duration} s, medians:")
    for name, rs in runs.items():
        print(
            f"  {name:<28} {statistics.median(r.rps for r in rs):>9,.0f} req/s  "
            f"p95 {statistics.median(r.p95_ms for r in rs):6.2f} ms  "
            f"cpu {statistics.median(r.cpu_us for r in rs):6.0f} us/req"
        )
    base, new = runs.values()
    ratios = [n.rps / b.rps for b, n in zip(base, new, strict=True)]
    print(
        f"  throughput, working tree / baseline: median {statistics.median(ratios):.2f} "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    print(
        "\ncommand: PYTHONPATH=backend python benchmarks/serving_ab.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
