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

# Every check below runs even when an earlier one failed (a failure must not
# hide the others); the run fails at the end and lists every failure.
failures=()
fail() { echo "FAILED: $*"; failures+=("$*"); }

stage "unit tests"
rc=0
python -m pytest tests/unit -q -p no:cacheprovider || rc=$?
# pytest exit 5 = no tests collected: that is a failure here, never a pass
[ "$rc" -eq 0 ] || fail "unit tests (pytest exit $rc)"

stage "lint"
yamllint -s . || fail "yamllint"
ansible-lint -q || fail "ansible-lint"
# the example Prometheus configuration and alert rules (docs/monitoring)
"$TGP_PROMTOOL" check config docs/monitoring/prometheus.yml || fail "promtool check config"
"$TGP_PROMTOOL" test rules tests/monitoring/tgproxy-rules.test.yml || fail "promtool test rules"
# changelog fragments lint clean and CHANGELOG.md is what they make
bash tests/changelog.sh --check || fail "changelog"
# the example inventory (every topology) passes the validator
ansible-playbook -i inventory-example/production tests/inventory-example.yml || fail "example inventory"

stage "ansible-test sanity"
bash tests/sanity.sh || fail "ansible-test sanity"

stage "collection artifact"
artifact_check() {
  rm -rf .cache/build && mkdir -p .cache/build
  ansible-galaxy collection build --output-path .cache/build . >/dev/null || return 1
  local artifact leaked
  artifact=$(ls .cache/build/tgproxy-stealth-*.tar.gz)
  leaked=$(tar -tzf "$artifact" | grep -E '^(molecule|tests|\.ci|\.config|\.cache|\.hypothesis|\.pytest_cache)/' || true)
  [ -z "$leaked" ] || { echo "test bed files in $artifact:"; echo "$leaked"; return 1; }
  echo "$artifact: $(tar -tzf "$artifact" | wc -l) files, no test bed files"
}
artifact_check || fail "collection artifact"

stage "installs as documented"
# the artifact in a clean venv (requirements.txt only) with exactly the
# declared collections: every playbook by FQCN, ansible-doc of every plugin
bash tests/install-check.sh "$(ls "$PWD"/.cache/build/tgproxy-stealth-*.tar.gz)" || fail "installs as documented"

stage "molecule"
# (molecule/benchmark is the capacity benchmark's host: tests/benchmark/run.sh)
scenarios=${TGP_SCENARIOS:-$(cd molecule && ls -d */ | tr -d / | grep -vx -e resources -e benchmark)}
# TGP_LANES scenarios run side by side (each lane one scenario at a time; the
# scenarios share nothing but the test bed's network, mirror and Pebble). Much
# of a scenario is waiting (ACME, timeouts the tests provoke, load that runs
# for a fixed time), so two lanes suit this 2-core machine.
lanes=${TGP_LANES:-2}
# seconds each takes in a two-lane run (clean-clone run 19; nginx_acme with
# its rerun and converged check mode on both hosts again since then, about
# 100 s more), to balance the lanes: longest first, each to the lane with the
# least work so far (a scenario not listed counts 600)
declare -A weight=([nginx_stream]=1611 [haproxy]=1051 [mtg_direct]=1031 [sslh]=1015 [nginx_acme]=745 [migrate]=527)
declare -a lane_work lane_list
for ((i = 0; i < lanes; i++)); do lane_work[i]=0; lane_list[i]=""; done
for s in $(for s in $scenarios; do echo "${weight[$s]:-600} $s"; done | sort -rn | awk '{print $2}'); do
  best=0
  for ((i = 1; i < lanes; i++)); do [ "${lane_work[i]}" -lt "${lane_work[best]}" ] && best=$i; done
  lane_work[best]=$((lane_work[best] + ${weight[$s]:-600}))
  lane_list[best]="${lane_list[best]} $s"
done
# Molecule's prerun builds and installs this collection into
# ~/.ansible/collections before each scenario, unless a symlink to the project
# is already there: two lanes would race on that copy. Link it once.
collections=~/.ansible/collections/ansible_collections/tgproxy
mkdir -p "$collections"
rm -rf "$collections/stealth"
ln -s "$PWD" "$collections/stealth"
logs=.cache/molecule-logs
rm -rf "$logs" && mkdir -p "$logs"
# a lane goes on with its next scenario after a failure; each failure is
# recorded in $logs/failed
run_lane() {
  local s
  for s in "$@"; do
    printf '=== molecule test -s %s (t=%ds)\n' "$s" $((SECONDS - t0))
    if molecule test -s "$s" > "$logs/$s.log" 2>&1; then
      printf '=== passed: %s (t=%ds)\n' "$s" $((SECONDS - t0))
    else
      printf '=== FAILED: %s (t=%ds)\n' "$s" $((SECONDS - t0))
      echo "$s" >> "$logs/failed"
    fi
  done
}
declare -a pids
for ((i = 0; i < lanes; i++)); do
  [ -n "${lane_list[i]}" ] || continue
  echo "lane $i:${lane_list[i]}"
  # shellcheck disable=SC2086
  run_lane ${lane_list[i]} > "$logs/lane$i.log" 2>&1 &
  pids[i]=$!
done
for i in "${!pids[@]}"; do wait "${pids[i]}" || fail "molecule lane $i (the lane itself, see $logs/lane$i.log)"; done
for i in "${!pids[@]}"; do echo "--- lane $i"; cat "$logs/lane$i.log"; done
for s in $scenarios; do
  [ -f "$logs/$s.log" ] || continue
  stage "molecule test -s $s (log)"
  cat "$logs/$s.log"
done
if [ -f "$logs/failed" ]; then
  while read -r s; do fail "molecule test -s $s (log above, and $logs/$s.log)"; done < "$logs/failed"
fi

stage "egress guard"
rejected=$(bash tests/testbed/egress-guard.sh count)
echo "packets from test containers rejected by the egress guard: $rejected"
if [ "$rejected" -ne 0 ]; then
  echo "something in the test bed tried to reach the outside:"
  bash tests/testbed/egress-guard.sh show
  fail "egress guard ($rejected packets)"
fi

if [ ${#failures[@]} -gt 0 ]; then
  stage "FAILED (${#failures[@]})"
  printf '  - %s\n' "${failures[@]}"
  # the CI record keeps only the tail of a run: why each scenario failed, last
  if [ -f "$logs/failed" ]; then
    while read -r s; do
      echo "why $s failed (digest of $logs/$s.log):"
      python3 tests/ci-digest.py "$logs/$s.log" 25
    done < "$logs/failed"
  fi
  exit 1
fi
stage "done"
