#!/usr/bin/env bash
# Sets up .venv with the test tools and Chromium, then runs the linter, the format check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PYTHONPATH=backend OPENBLAS_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/ruff check backend benchmarks scripts
.venv/bin/ruff format --check backend benchmarks scripts
exec .venv/bin/python -m pytest -n 2 --timeout 600 "$@"
