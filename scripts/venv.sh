#!/usr/bin/env bash
# Create .venv when absent and install every category of Pipfile.lock into it with pipenv.
set -euo pipefail
cd "$(dirname "$0")/.."

PIPENV_VERSION=2026.10.3
export PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1 PIPENV_VERBOSITY=-1
if [ ! -x .venv/bin/pipenv ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q "pipenv==${PIPENV_VERSION}"
fi
.venv/bin/pipenv sync --categories "gateway server export dev-packages" >/dev/null
