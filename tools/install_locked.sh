#!/bin/sh
# Install one category of Pipfile.lock in a Docker build: exact versions, every hash checked, no pipenv.
#   install_locked.sh CATEGORY          into the stage's own Python (a build-only stage)
#   install_locked.sh CATEGORY PREFIX   into PREFIX, extension modules stripped, for COPY into a slim stage
# Run from the folder holding Pipfile.lock and lock_requirements.py.
set -eu
category=$1
prefix=${2:-}
python lock_requirements.py Pipfile.lock "$category" > requirements.txt
if [ -z "$prefix" ]; then
    exec pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt
fi
pip install --no-cache-dir --no-compile --require-hashes --no-deps --prefix="$prefix" -r requirements.txt
# Stripping saves MBs, with binutils only in this build stage. Not the vendored *.libs: auditwheel
# patched those, and strip breaks them (numpy's openblas).
apt-get update
apt-get install -y --no-install-recommends binutils
rm -rf /var/lib/apt/lists/*
find "$prefix" -name '*.so*' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} +
