#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection laid out under
# ansible_collections/tgproxy/stealth (ansible-test needs that path; a symlink
# does not do, it resolves the working directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/tgproxy-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/tgproxy/stealth
mkdir -p "$dest"
git ls-files -co --exclude-standard -z | grep -zv '^\.cache/' | (cd "$root" && xargs -0 cp --parents -t "$dest")
cd "$dest"
# ansible-test bootstraps pip in its per-test venvs with a get-pip script it
# downloads from a CI host this machine cannot reach; stand in with ensurepip.
pyreq=$(python -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
pipver=$(sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" "$pyreq" | head -1)
getpip=$HOME/.ansible/test/cache/get_pip_${pipver//./_}.py
if [ -n "$pipver" ] && [ ! -s "$getpip" ]; then
  mkdir -p "$(dirname "$getpip")"
  cat >"$getpip" <<'PY'
# stand-in for get-pip.py: ensurepip, then the pinned pip from PyPI
import subprocess, sys
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY
fi
ansible-test sanity --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no
