#!/usr/bin/env bash
# Capacity benchmark (prints figures; not a test): creates and converges the
# `benchmark` Molecule host with the collection's roles, runs
# tests/benchmark/capacity.py against it, destroys it.
#   bash tests/benchmark/run.sh [--connections 10000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh
molecule destroy -s benchmark >/dev/null
trap 'molecule destroy -s benchmark >/dev/null 2>&1 || true' EXIT
molecule create -s benchmark
molecule prepare -s benchmark
molecule converge -s benchmark
python3 tests/benchmark/capacity.py "$@"
