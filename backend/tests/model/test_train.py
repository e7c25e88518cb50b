"""``python -m app.model.train``, the old name of the training CLI: it still runs, and importing it loads nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(BACKEND), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_importing_the_old_name_loads_no_package_above_the_model():
    code = "import sys, app.model.train; print(' '.join(sorted(m for m in sys.modules if m.startswith('app.'))))"
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["app.model", "app.model.train"]


def test_the_old_name_runs_the_training_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "app.model.train", "--help"], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m app.registry.train")
