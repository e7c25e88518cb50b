#!/usr/bin/env bash
# Creates .venv and installs the service's requirements. --cluster also installs Debian's postgresql and
# nginx (scripts/cluster.sh runs them); --dev also the test tools, Chromium, PostgreSQL and nginx (the
# store and API tests run against a throwaway PostgreSQL cluster as well as SQLite, the cluster tests
# behind nginx) and wrk (the load generator of benchmarks/; without it they fall back to a Python
# client whose own CPU use on a small machine inflates the latencies they report).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
mode=${1:-}
packages=()
if [ "$mode" = "--dev" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-mlflow.txt
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
  command -v wrk >/dev/null 2>&1 || packages+=(wrk)
fi
if [ "$mode" = "--dev" ] || [ "$mode" = "--cluster" ]; then
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    packages+=(postgresql)
  fi
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
fi
if [ ${#packages[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
fi
