#!/usr/bin/env bash
# The whole test suite, from a fresh machine: test bed set-up (cached), unit
# tests, lint, ansible-test sanity and every Molecule scenario.
#   bash tests/run-all.sh                  # everything
#   TGP_SCENARIOS="mtg_direct" bash tests/run-all.sh   # a subset of scenarios
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
stage() { printf '\n=== %s (t=%ds)\n' "$*" $((SECONDS - t0)); }

stage "test bed"
bash tests/testbed/setup.sh
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh
bash tests/testbed/egress-guard.sh verify
bash tests/testbed/egress-guard.sh zero

stage "unit tests"
rc=0
python -m pytest tests/unit -q -p no:cacheprovider || rc=$?
# pytest exit 5 = no tests collected: that is a failure here, never a pass
[ "$rc" -eq 0 ] || { echo "unit tests failed (pytest exit $rc)"; exit 1; }

stage "lint"
yamllint -s .
ansible-lint -q
# the example Prometheus configuration and alert rules (docs/monitoring)
"$TGP_PROMTOOL" check config docs/monitoring/prometheus.yml
"$TGP_PROMTOOL" test rules tests/monitoring/tgproxy-rules.test.yml

stage "ansible-test sanity"
bash tests/sanity.sh

stage "collection artifact"
rm -rf .cache/build && mkdir -p .cache/build
ansible-galaxy collection build --output-path .cache/build . >/dev/null
artifact=$(ls .cache/build/tgproxy-stealth-*.tar.gz)
leaked=$(tar -tzf "$artifact" | grep -E '^(molecule|tests|\.ci|\.config|\.cache|\.hypothesis|\.pytest_cache)/' || true)
[ -z "$leaked" ] || { echo "test bed files in $artifact:"; echo "$leaked"; exit 1; }
echo "$artifact: $(tar -tzf "$artifact" | wc -l) files, no test bed files"

stage "molecule"
# (molecule/benchmark is the capacity benchmark's host: tests/benchmark/run.sh)
scenarios=${TGP_SCENARIOS:-$(cd molecule && ls -d */ | tr -d / | grep -vx -e resources -e benchmark)}
for s in $scenarios; do
  stage "molecule test -s $s"
  molecule test -s "$s"
done

stage "egress guard"
rejected=$(bash tests/testbed/egress-guard.sh count)
echo "packets from test containers rejected by the egress guard: $rejected"
[ "$rejected" -eq 0 ] || {
  echo "something in the test bed tried to reach the outside:"
  bash tests/testbed/egress-guard.sh show
  exit 1
}

stage "done"
