#!/usr/bin/env bash
# Creates .venv and installs the service's requirements (and, with --dev, the test tools, Chromium and
# PostgreSQL: the store and API tests run against a throwaway PostgreSQL cluster as well as SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-mlflow.txt
  packages=()
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    packages+=(postgresql)
  fi
  if [ ${#packages[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
fi
