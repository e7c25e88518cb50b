"""Cost of every stage against the log's size: ingest, train, evaluate and serve at 1M, 5M and 20M events.

    PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/scale.py [--sizes 1000000,5000000,20000000]
        [--work /tmp/scale-bench] [--duration 5] [--readme]

For each size, a MovieLens-shaped log is written by ``python -m app.data.synthetic`` into ``--work``
(outside the repository; kept, so a second run reuses it) and then:

* **ingest**: the bare ``orjson.loads`` loop and ``read_events``, each in its own process (the same
  children as ``benchmarks/ingest.py``): seconds, lines/s, the ratio of the two, peak RSS;
* **train**: ``python -m app.registry.train`` with the defaults, as a child process: wall seconds,
  peak RSS (``os.wait4``), the model directory's size, and the held-out NDCG@10 it reports (by
  default the multi-stage engine's earlier-slice embedding model, scored on each user's latest tenth);
* **ALS**: implicit's ALS (the project's ``als`` engine, on every core) fitted on the same held-out
  split (the engine's earlier slice, or ``holdout_split`` with the CLI's fraction and seed for a
  quick or full evaluation fit) and scored the same way, with its defaults and a small grid
  (``ALS_GRID``); the best NDCG@10 on that slice is reported with its fit seconds;
* **serve**: ``python -m app.service`` on the trained model, one worker, impression logging on:
  start-up seconds (process start to ``/ready``), RSS, and ``/recommendations`` p95 at concurrency 8
  (wrk, or an httpx client without it) after one request for each of the 2,000 users it draws.

Prints a markdown table. ``--readme`` also rewrites the README section between ``<!-- scale:start -->``
and ``<!-- scale:end -->`` and draws ``docs/scale.png`` (seconds and peak memory against events, log-log).
One size at a time, one stage at a time: on a 2-core machine anything run beside it skews the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
sys.path.insert(0, str(BACKEND))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ingest  # noqa: E402 - the ingestion benchmark's child processes
import serving  # noqa: E402 - its server and load generators

#: ALS's defaults and a small grid around what suits these logs (fewer factors than the default 64:
#: ``benchmarks/als_budget.py`` searched wider); the best on the held-out slice itself is reported,
#: which favours ALS (its settings are chosen on the figures they are judged by).
ALS_GRID = [
    {},
    {"alpha": 10.0, "regularization": 1.0},
    {"alpha": 10.0, "regularization": 1.0, "factors": 32},
    {"alpha": 10.0, "regularization": 1.0, "factors": 16},
    {"alpha": 5.0, "regularization": 1.0, "factors": 16},
]
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
PLOT = ROOT / "docs" / "scale.png"


def generate(events: int, work: Path) -> Path:
    out = work / f"movielens-{events}"
    if not (out / "interactions.jsonl").exists():
        command = [sys.executable, "-m", "app.data.synthetic", "--events", str(events), "--out", str(out)]
        subprocess.run(command, check=True, cwd=BACKEND, env=serving.env(), stdout=subprocess.DEVNULL)
    return out


def run_child(command: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process; its output goes to ``log``."""
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=BACKEND, env=serving.env(), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}); see {log}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def train(data: Path) -> dict:
    model_dir = data / "model"
    command = [sys.executable, "-m", "app.registry.train", "--data-path", str(data / "interactions.jsonl")]
    command += ["--items-path", str(data / "items.jsonl"), "--model-dir", str(model_dir)]
    seconds, peak = run_child(command, data / "train.log")
    meta = json.loads((model_dir / "metadata.json").read_text())
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    hp = meta["hyperparameters"]
    return {
        "train_s": seconds,
        "train_peak_mb": peak,
        "model_mb": size / 2**20,
        "ndcg": meta["metrics"].get("ndcg@10"),
        "recipe": f"{hp['ensemble']} x {hp['epochs']} epochs, batch {hp['batch_size']}",
        "model_dir": model_dir,
    }


def als_on_the_same_split(
    data: Path, model_dir: Path, grid: list[dict] = ALS_GRID, budget_s: float | None = None
) -> dict:
    """ALS fitted and scored on the held-out split the CLI's figures come from: the multi-stage engine's
    earlier and later slices (``--evaluation auto``), or its evaluation fit's latest positives. Every
    setting of ``grid`` in turn, or (``budget_s``) until the fits and their scoring have taken that long."""
    from app.data.dataset import load_dataset
    from app.eval.holdout import heldout_metrics, holdout_split
    from app.model.als import ALSRecommender
    from app.model.hybrid import later_slice
    from app.registry.train import EARLIER_SLICE

    meta = json.loads((model_dir / "metadata.json").read_text())
    dataset, _, _ = load_dataset(data / "interactions.jsonl", progress=False)
    if meta["metrics"]["evaluation"] == EARLIER_SLICE:
        share = meta["hybrid"]["params"]["label_share"]
        (train_m, _), held_m = later_slice(dataset.matrix(), dataset.timestamps(), share)
    else:
        fraction = meta["data_summary"]["evaluation"]["holdout_fraction"]
        fit_part, held = holdout_split(dataset, fraction, meta["hyperparameters"]["seed"])
        train_m, held_m = fit_part.matrix(), held.matrix()
    held_m = held_m.copy()
    held_m.data[:] = 1.0
    best = {"als_ndcg": -1.0}
    began = time.perf_counter()
    for params in grid:
        if budget_s is not None and time.perf_counter() - began >= budget_s:
            break
        started = time.perf_counter()
        model = ALSRecommender(num_threads=os.cpu_count() or 1, **params).fit(train_m)
        fit_s = time.perf_counter() - started
        ndcg = heldout_metrics(model.score, train_m, held_m)["ndcg@10"]
        print(f"  ALS {params or 'defaults'}: NDCG@10 {ndcg:.4f}, fit {fit_s:.0f}s", flush=True)
        if ndcg > best["als_ndcg"]:
            best = {"als_ndcg": ndcg, "als_s": fit_s, "als_params": params}
    best["als_total_s"] = time.perf_counter() - began
    return best


def serve(model_dir: Path, work: Path, duration: float) -> dict:
    import httpx

    use_wrk = shutil.which("wrk") is not None
    server = serving.Server(model_dir, work / "service")
    try:
        rss = server.rss_mb()
        info = httpx.get(server.url + "/ready").json()
        users, items = serving.model_ids(model_dir)
        scenario = next(
            s for s in serving.scenarios(info, users, items, random.Random(7)) if s.name == "/recommendations"
        )
        # Warm-up, not measured: every user once. The first seconds after a start answer at several
        # times the steady p95 (first touches of each user's rows), which is not what a running service shows.
        with httpx.Client(base_url=server.url) as client:
            for path in scenario.paths:
                client.get(path)
        run = server.drive(scenario, 8, duration, work, "scale", use_wrk)
        return {"start_s": server.start_seconds, "serve_rss_mb": max(rss, server.rss_mb()), "p95_ms": run.p95_ms}
    finally:
        server.stop()


def measure_size(events: int, work: Path, duration: float) -> dict:
    data = generate(events, work)
    path = data / "interactions.jsonl"
    print(f"{events:,} events: ingest", flush=True)
    bare, read = ingest.measure("bare", path), ingest.measure("new", path)
    row = {
        "events": events,
        "ingest_s": read["seconds"],
        "lines_per_s": read["lines"] / read["seconds"],
        "x_bare": bare["seconds"] / read["seconds"],
        "ingest_peak_mb": read["peak_rss_mb"],
    }
    print(f"{events:,} events: train (log: {data / 'train.log'})", flush=True)
    row.update(train(data))
    print(f"{events:,} events: ALS on the same split", flush=True)
    row.update(als_on_the_same_split(data, row["model_dir"]))
    print(f"{events:,} events: serve", flush=True)
    row.update(serve(row.pop("model_dir"), data, duration))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = (
        "| events | ingest s | lines/s | x bare loop | train s | train peak RSS | model MB | recipe | NDCG@10 model | "
        "NDCG@10 best ALS (fit s) | start-up s | service RSS | p95 ms (c=8) |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r['events']:,} | {r['ingest_s']:.1f} | {r['lines_per_s']:,.0f} | {r['x_bare']:.2f} | "
            f"{r['train_s']:.0f} | {r['train_peak_mb'] / 1024:.1f} GB | {r['model_mb']:.0f} | {r['recipe']} | "
            f"{r['ndcg']:.4f} | {r['als_ndcg']:.4f} ({r['als_s']:.0f}) | {r['start_s']:.1f} | "
            f"{r['serve_rss_mb']:.0f} MB | {r['p95_ms']:.2f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [r["events"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("ingest_s", "ingest"), ("train_s", "train (CLI, defaults)"), ("start_s", "service start-up")):
        left.loglog(events, [r[key] for r in rows], marker="o", label=label)
    left.set(xlabel="events", ylabel="seconds", title="time against log size")
    for key, label in (("ingest_peak_mb", "ingest"), ("train_peak_mb", "train"), ("serve_rss_mb", "service")):
        right.loglog(events, [r[key] for r in rows], marker="o", label=label)
    right.set(xlabel="events", ylabel="peak RSS, MB", title="memory against log size")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def write_readme(text: str) -> None:
    readme = ROOT / "README.md"
    body = readme.read_text()
    if START not in body or END not in body:
        raise SystemExit(f"README.md has no {START} ... {END} section")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", body))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000000,5000000,20000000", help="comma-separated event counts")
    p.add_argument("--work", type=Path, default=Path("/tmp/scale-bench"), help="logs and models (outside the repo)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of load on /recommendations per size")
    p.add_argument("--readme", action="store_true", help="write the table into README.md and draw docs/scale.png")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [measure_size(int(n), args.work, args.duration) for n in args.sizes.split(",")]
    (args.work / "scale.json").write_text(json.dumps(rows, indent=1))
    load = os.getloadavg()
    text = (
        f"`PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/scale.py --sizes {args.sizes}` "
        f"({datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {load[0]:.1f} at the end):\n\n{table(rows)}"
    )
    print(text)
    if args.readme:
        plot(rows, PLOT)
        write_readme(text + f"\n\n![cost against log size]({PLOT.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
