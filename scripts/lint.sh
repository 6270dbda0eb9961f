#!/usr/bin/env bash
# The linters CI runs, from the repository root:
#   scripts/lint.sh [ruff|mypy|hadolint|shellcheck|actionlint|manifests]...   (no argument: all of them)
# ruff, mypy, hadolint, actionlint, kubectl and kubernetes-validate come from Pipfile.lock (.venv, created
# by scripts/venv.sh when one is missing); shellcheck is Debian's (apt-get install shellcheck).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

for tool in ruff mypy hadolint actionlint kubectl kubernetes-validate; do
  [ -x "$bin/$tool" ] || { bash scripts/venv.sh; break; }
done

need_shellcheck() {
  command -v shellcheck >/dev/null && return
  echo "lint: shellcheck is not installed (Debian/Ubuntu: apt-get install shellcheck)" >&2
  exit 1
}

lint_ruff() { "$bin/ruff" check .; }
# mypy: the typed packages listed in pyproject.toml ([tool.mypy] files).
lint_mypy() { "$bin/mypy"; }
lint_hadolint() { git ls-files -z '*Dockerfile' | xargs -0 "$bin/hadolint"; }
lint_shellcheck() {
  need_shellcheck
  { echo .ci/run; git ls-files '*.sh'; } | xargs shellcheck --severity=style
}
# actionlint runs shellcheck on every `run:` script; without it that part is silently skipped.
lint_actionlint() {
  need_shellcheck
  "$bin/actionlint" -shellcheck "$(command -v shellcheck)"
}
# Manifests: every kustomize build and source manifest against the Kubernetes schemas (tests/k8s).
lint_manifests() { "$bin/python" -m pytest -q -p no:cacheprovider tests/k8s; }

linters=("$@")
[ "${#linters[@]}" -gt 0 ] || linters=(ruff mypy hadolint shellcheck actionlint manifests)
for linter in "${linters[@]}"; do
  case "$linter" in
    ruff | mypy | hadolint | shellcheck | actionlint | manifests)
      echo "lint: $linter"
      "lint_$linter"
      ;;
    *)
      echo "lint: unknown linter '$linter' (ruff, mypy, hadolint, shellcheck, actionlint, manifests)" >&2
      exit 2
      ;;
  esac
done
