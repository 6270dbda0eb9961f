#!/usr/bin/env bash
# Run the test suite on a fresh machine: install every category of Pipfile.lock into .venv with
# pipenv (scripts/venv.sh), then run pytest. Extra arguments go to pytest (for example: scripts/test.sh -k gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
exec .venv/bin/python -m pytest "$@"
