"""What the service's start-up costs on a model directory, stage by stage, in one process.

    PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/startup.py --model-dir DIR [--repeats 2] [--process]

Prints the seconds to read the model (``load_bundle``), to build the runtime (the served engines and
the precomputed lists and tables within ``RECOMMENDER_PRECOMPUTE_MB``: what ``/ready`` waits for) and,
when ``auto`` serves the multi-stage engine, to build every user's hybrid list (the service does that
in the background after ``/ready``). ``benchmarks/scale.py`` measures start-up from outside, process
start included; this script says where that time goes, and compares two versions of the code run
alternately on the same model. ``--process`` measures as ``scale.py`` does instead: the service
started in its own process, until ``/ready`` says it is ready and its hybrid lists are built.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from app.config import Settings  # noqa: E402
from app.model.artifacts import load_bundle  # noqa: E402
from app.service.core.runtime import Runtime  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--process", action="store_true", help="start the service in a process and time /ready")
    args = p.parse_args(argv)
    if not (args.model_dir / "metadata.json").is_file():
        print(f"{args.model_dir}: not a model directory (no metadata.json); train one first", file=sys.stderr)
        return 2
    if args.process:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from serving import Server  # prints the seconds to /ready
    for _ in range(args.repeats):
        if args.process:
            with tempfile.TemporaryDirectory() as data:
                server = Server(args.model_dir, Path(data))
                server.proc.terminate()
                server.proc.wait()
            continue
        t0 = time.perf_counter()
        bundle = load_bundle(args.model_dir)
        t1 = time.perf_counter()
        rt = Runtime(bundle, args.model_dir, Settings(model_dir=args.model_dir), catalogue=None, signature=None)
        t2 = time.perf_counter()
        line = f"read {t1 - t0:.1f} s, runtime {t2 - t1:.1f} s (auto serves {rt.auto_engine})"
        if rt.auto_engine == "hybrid":
            rt.build_hybrid_lists()
            line += f", hybrid lists {time.perf_counter() - t2:.1f} s"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
