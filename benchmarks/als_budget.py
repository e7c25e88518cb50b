"""ALS given the training CLI's own wall time on a log ``benchmarks/scale.py`` trained on.

    PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 python benchmarks/als_budget.py \\
        --data /tmp/scale-bench/movielens-20000000 [--budget 545]

``scale.py`` compares the model with ALS's defaults and four settings (a minute or two of fitting).
This gives ALS as long as the training CLI took (``--budget``: its seconds, from the scale table) on
the same held-out split, and tries the settings of ``WIDE`` in turn until the fits and their
scoring have used that time. Prints each setting's NDCG@10 and the best beside the model's own
(``metadata.json`` of ``--data``/model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # the same split and scoring as the scale table

#: Settings tried in order: the scale table's best of 64 factors first, then fewer factors (on the
#: 20M log 16 and 32 factors scored 0.25 and 0.24 against 0.14 for 64, and 128 or 256 0.06 to 0.13),
#: then other confidences, regularisations and longer fits around the best of those.
WIDE = [
    {"alpha": 10.0, "regularization": 1.0},
    {"alpha": 10.0, "regularization": 1.0, "factors": 32},
    {"alpha": 10.0, "regularization": 1.0, "factors": 16},
    {"alpha": 10.0, "regularization": 1.0, "factors": 8},
    {"alpha": 20.0, "regularization": 1.0, "factors": 16},
    {"alpha": 5.0, "regularization": 1.0, "factors": 16},
    {"alpha": 10.0, "regularization": 5.0, "factors": 16},
    {"alpha": 10.0, "regularization": 1.0, "factors": 16, "iterations": 30},
    {"alpha": 20.0, "regularization": 1.0, "iterations": 30},
    {"alpha": 20.0, "regularization": 1.0, "factors": 128, "iterations": 30},
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a size's directory under scale.py's --work")
    p.add_argument("--budget", type=float, default=None, help="seconds (default: every setting of WIDE)")
    args = p.parse_args(argv)
    model_dir = args.data / "model"
    if not (model_dir / "metadata.json").is_file():
        print(f"{model_dir}: no trained model; run benchmarks/scale.py for this size first", file=sys.stderr)
        return 2
    best = scale.als_on_the_same_split(args.data, model_dir, WIDE, args.budget)
    model = json.loads((model_dir / "metadata.json").read_text())["metrics"].get("ndcg@10")
    print(
        f"best ALS {best['als_params']}: NDCG@10 {best['als_ndcg']:.4f} (fit {best['als_s']:.0f} s; "
        f"{best['als_total_s']:.0f} s for every setting tried); the model: {model:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
