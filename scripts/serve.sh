#!/usr/bin/env bash
# Sets up .venv and starts the service on the shipped defaults: sample data, shipped model, SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PYTHONPATH=backend OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
exec .venv/bin/python -m app.service --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
