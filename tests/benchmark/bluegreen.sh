#!/usr/bin/env bash
# Blue/green benchmark (prints figures; not a test): changes of mtg behind
# HAProxy (configuration, release), by restart and blue/green, interleaved
# under the same client load on the `haproxy` Molecule scenario's Debian 13
# host (tests/benchmark/bluegreen.py).
#   bash tests/benchmark/bluegreen.sh [--rounds 3] [--change config,version]
#                                                  # about 30 minutes (15 per change)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh
trap 'molecule destroy -s haproxy >/dev/null 2>&1 || true' EXIT
for step in destroy create prepare converge; do
  molecule "$step" -s haproxy >/dev/null
done
python3 tests/benchmark/bluegreen.py "$@"
