"""Ingestion speed and memory: the bare parse loop, the per-line reader and the block reader, in one run.

    PYTHONPATH=backend python benchmarks/ingest.py [--events 1000000] [--shape movielens] [--repeat 3]
    PYTHONPATH=backend python benchmarks/ingest.py --file some.jsonl

Without ``--file`` the log is generated first (``app.data.synthetic``, into a temporary directory).
Each measurement runs in its own process, so its peak RSS (``resource.getrusage``) is its own:

* ``bare loop``: ``for line in f: orjson.loads(line)``, the yardstick (no validation, nothing kept);
* ``per-line reader``: ``app.data.events._read_events_per_line``, the reader before the block fast path;
* ``read_events``: the block reader (same verdicts, reasons, line numbers and columns).

Runs are interleaved (bare, new, old, bare, new, ...) and the best of ``--repeat`` is kept, so a busy
machine slows all three alike; compare the ratios to the bare loop, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
MODES = {"bare": "bare loop", "new": "read_events", "old": "per-line reader"}


def child(mode: str, path: str) -> None:
    """One measurement in this process: prints {seconds, lines, peak_rss_mb}."""
    import resource

    sys.path.insert(0, str(ROOT / "backend"))
    if mode != "bare":
        from app.data.events import _read_events_per_line, read_events

        reader = read_events if mode == "new" else _read_events_per_line
    started = time.perf_counter()
    if mode == "bare":
        n = 0
        with open(path, "rb") as f:
            for line in f:
                orjson.loads(line)
                n += 1
    else:
        log, _summary = reader(path, progress=False) if mode == "new" else reader(path)
        n = len(log)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(orjson.dumps({"seconds": seconds, "lines": n, "peak_rss_mb": peak}).decode())


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    )
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--file", type=Path, help="a JSONL log to read (default: generate one)")
    p.add_argument("--events", type=int, default=1_000_000, help="lines to generate (default 1M)")
    p.add_argument("--shape", default="movielens", help="synthetic shape: movielens or ecommerce")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="runs of each reader; the best is kept")
    p.add_argument("--skip-old", action="store_true", help="leave out the (slow) per-line reader")
    p.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    command = "python benchmarks/ingest.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        path = args.file
        generated = ""
        if path is None:  # generated in a child too: this process stays small, as ru_maxrss outlives exec
            started = time.perf_counter()
            command_line = [sys.executable, "-m", "app.data.synthetic", "--events", str(args.events)]
            command_line += ["--out", tmp, "--shape", args.shape, "--seed", str(args.seed)]
            gen = subprocess.run(
                command_line,
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT / "backend")},
            )
            generated = f"{gen.stderr.strip()} ({time.perf_counter() - started:.1f}s with start-up)"
            path = Path(tmp) / "interactions.jsonl"
        size_mb = path.stat().st_size / 2**20
        modes = ["bare", "new"] + ([] if args.skip_old else ["old"])
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for mode in modes:
                result = measure(mode, path)
                if mode not in best or result["seconds"] < best[mode]["seconds"]:
                    best[mode] = result
    load = os.getloadavg()
    print(f"$ {command}")
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )
    if generated:
        print(generated)
    print(f"input: {path.name if args.file is None else path}, {size_mb:.0f} MiB, best of {args.repeat}\n")
    bare = best["bare"]["seconds"]
    print(f"| {'reader':<16} | {'seconds':>8} | {'lines/s':>11} | {'x bare loop':>11} | {'peak RSS MB':>11} |")
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 13}|{'-' * 13}|{'-' * 13}|")
    for mode in modes:
        r = best[mode]
        print(
            f"| {MODES[mode]:<16} | {r['seconds']:>8.2f} | {r['lines'] / r['seconds']:>11,.0f} | "
            f"{bare / r['seconds']:>11.2f} | {r['peak_rss_mb']:>11.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
