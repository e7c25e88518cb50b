"""Quality benchmark: every engine on MovieLens 100K, the hybrid engine included, printed and written into README.md.

Runs ``app.eval``'s protocol (filters, tuning on validation, refit on train + validation, test with
full ranking; stochastic models averaged over seeds) for the temporal and leave-last-out splits, then
rewrites only the README section between ``<!-- quality:start -->`` and ``<!-- quality:end -->``.

    PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/quality.py [--data-path DIR] [--models ...]

Skips (exit 0, with a message) when MovieLens 100K is absent. Reports go to ``--out`` (outside the
repository by default: MovieLens results are fine to publish, the data itself is not).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from app.eval.data import load_eval_data  # noqa: E402
from app.eval.report import MODEL_LABELS, write_report  # noqa: E402
from app.eval.runner import run_evaluation  # noqa: E402
from app.files import write_bytes_atomic  # noqa: E402

START, END = "<!-- quality:start -->", "<!-- quality:end -->"
DEFAULT_MODELS = "popular,itemknn,als,ease,baseline,nn,hybrid"


def find_ml100k(given: str | None) -> Path | None:
    """The given path only when one is given; else $ML100K_DIR, then ../shared/datasets/ml-100k."""
    options = [given] if given else [os.environ.get("ML100K_DIR"), str(ROOT.parent / "shared" / "datasets" / "ml-100k")]
    for c in options:
        if c and ((Path(c) / "u.data").is_file() or (Path(c).is_file() and c.endswith(".zip"))):
            return Path(c)
    return None


def table(reports: dict[str, dict]) -> str:
    t, loo = reports.get("temporal"), reports.get("leave-last-out")
    names = list((loo or t)["models"])
    head = [
        "model",
        "temporal NDCG@10",
        "temporal Recall@20",
        "temporal Cov@100",
        "leave-last-out NDCG@10",
        "LOO NDCG@10 95% CI",
        "LOO Recall@20",
        "LOO fit s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def cell(rep: dict | None, name: str, metric: str, digits: int = 3) -> str:
        if not rep or name not in rep["models"]:
            return "-"
        r = rep["models"][name]
        s = f"{r['metrics'][metric]:.{digits}f}"
        return s + (f" ± {r['metrics_std'][metric]:.{digits}f}" if len(r["seeds"]) > 1 else "")

    for name in names:
        ci = loo["models"][name]["ci"].get("ndcg@10") if loo and name in loo["models"] else None
        lines.append(
            "| "
            + " | ".join(
                [
                    MODEL_LABELS.get(name, name),
                    cell(t, name, "ndcg@10"),
                    cell(t, name, "recall@20"),
                    cell(t, name, "coverage@100", 2),
                    cell(loo, name, "ndcg@10"),
                    f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-",
                    cell(loo, name, "recall@20"),
                    f"{loo['models'][name]['fit_seconds']:.1f}" if loo and name in loo["models"] else "-",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def section(reports: dict[str, dict], command: str, seconds: float) -> str:
    any_rep = next(iter(reports.values()))
    sizes = {p: r["split"]["evaluated_users_test"] for p, r in reports.items()}
    return "\n".join(
        [
            START,
            f"Measured {datetime.now(UTC).strftime('%Y-%m-%d')} on MovieLens 100K (ratings >= 4 are positives; items "
            f"with < {any_rep['filter']['min_item']} positives, then users with < {any_rep['filter']['min_user']}, removed), "
            f"full ranking over the catalogue, hyperparameters tuned on validation then refitted on train + validation; "
            f"± is the standard deviation over seeds {','.join(map(str, any_rep['seeds']))} for stochastic models. "
            f"Evaluated users: " + ", ".join(f"{p} {n}" for p, n in sizes.items()) + ". "
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"total {seconds / 60:.1f} min.",
            "",
            table(reports),
            "",
            f"Reproduce: `{command}`",
            END,
        ]
    )


def replace_section(readme: Path, text: str) -> bool:
    """Rewrite only the marked section; False (README untouched) when the markers are missing."""
    if not readme.is_file():
        return False
    content = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        return False
    write_bytes_atomic(readme, pattern.sub(lambda _: text, content, count=1).encode("utf-8"))
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-path", help="ML-100K folder or zip (default: $ML100K_DIR or ../shared/datasets/ml-100k)")
    p.add_argument("--models", default=DEFAULT_MODELS)
    p.add_argument("--protocols", default="temporal,leave-last-out")
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "quality-benchmark")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--no-readme", action="store_true", help="print the table only")
    args = p.parse_args(argv)
    path = find_ml100k(args.data_path)
    if path is None:
        print(
            "SKIPPED: MovieLens 100K not found. Put it at ../shared/datasets/ml-100k, set ML100K_DIR, or pass "
            "--data-path (get it from https://grouplens.org/datasets/movielens/100k/)."
        )
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    command = "PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/quality.py" + (
        f" --models {args.models}" if args.models != DEFAULT_MODELS else ""
    )
    t0 = time.perf_counter()
    data = load_eval_data(path)
    reports: dict[str, dict] = {}
    for protocol in [x.strip() for x in args.protocols.split(",") if x.strip()]:
        print(f"== {protocol}", flush=True)
        rep = run_evaluation(data, protocol=protocol, models=models, seeds=seeds, tune=True, command=command)
        write_report(rep, args.out / protocol)
        reports[rep["protocol"]] = rep
    text = section(reports, command, time.perf_counter() - t0)
    print()
    print(text)
    print(f"\nfull reports: {args.out}/<protocol>/report.md")
    if not args.no_readme:
        if replace_section(args.readme, text):
            print(f"updated the quality section of {args.readme}")
        else:
            print(f"{args.readme} has no {START} ... {END} section; README not changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
