#!/usr/bin/env bash
# Migration benchmark (prints figures; not a test): the naive migration and
# playbooks/migrate.yml under the same bounded client load, one after the
# other on a fresh `migrate` Molecule host each (tests/benchmark/migration.py).
#   bash tests/benchmark/migrate.sh        # about 20 minutes
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh
trap 'molecule destroy -s migrate >/dev/null 2>&1 || true' EXIT
python3 tests/benchmark/migration.py "$@"
