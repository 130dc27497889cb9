#!/usr/bin/env bash
# The changelog: antsibull-changelog fragments (changelogs/fragments/), linted;
# CHANGELOG.md is what "antsibull-changelog release" makes of them for the
# version galaxy.yml names (a preview until that version is released), never
# edited by hand.
#   bash tests/changelog.sh           # lint, then write CHANGELOG.md
#   bash tests/changelog.sh --check   # lint, and fail when CHANGELOG.md is out of date
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
work=$(mktemp -d "${TMPDIR:-/tmp}/tgproxy-changelog.XXXXXX")
trap 'rm -rf "$work"' EXIT
# a copy laid out as an installed collection (antsibull-changelog asks
# ansible-doc for the plugins the release adds)
copy=$work/ansible_collections/tgproxy/stealth
mkdir -p "$copy"
git ls-files -co --exclude-standard -z | grep -zv '^\.cache/' | xargs -0 cp --parents -t "$copy"
released=$(python -c 'import sys, yaml; print(sys.argv[1] in (yaml.safe_load(open("changelogs/changelog.yaml"))["releases"] or {}))' "$version")
(cd "$copy" && if [ "$released" = True ]; then antsibull-changelog generate; else
  ANSIBLE_COLLECTIONS_PATH=$work antsibull-changelog release --version "$version" --date 1970-01-01 >/dev/null; fi)
if [ "${1:-}" = --check ]; then
  diff -u CHANGELOG.md "$copy/CHANGELOG.md" >"$work/diff" || {
    cat "$work/diff"; echo "CHANGELOG.md is out of date: run bash tests/changelog.sh"; exit 1; }
  echo "changelog: fragments lint clean, CHANGELOG.md current ($version$([ "$released" = True ] || echo ', unreleased'))"
else
  cp "$copy/CHANGELOG.md" CHANGELOG.md
  echo "wrote CHANGELOG.md ($version)"
fi
