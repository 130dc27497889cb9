#!/usr/bin/env bash
# The collection installs as the README says, with exactly the dependencies it
# declares: the built artifact goes into a clean venv that has only
# requirements.txt, next to the collections galaxy.yml names (taken, offline,
# from the test venv's `ansible` package), and nothing else. Then every
# playbook passes --syntax-check by its FQCN, and ansible-doc documents every
# module, filter and role.
#   bash tests/install-check.sh [ARTIFACT]   (default: build one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
work=$root/.cache/install-check
rm -rf "$work/src" "$work/collections" && mkdir -p "$work/src" "$work/collections"

artifact=${1:-}
if [ -z "$artifact" ]; then
  ansible-galaxy collection build --force --output-path "$work/src" . >/dev/null
  artifact=$(ls "$work/src"/tgproxy-stealth-*.tar.gz)
fi

# the declared collection dependencies, built into tarballs from the copies
# the test venv's `ansible` package carries (a galaxy.yml from their
# MANIFEST.json: the package leaves out files its FILES.json lists)
python - "$root/galaxy.yml" "$work/src" <<'PY'
import json, os, shutil, subprocess, sys, tempfile, yaml
import ansible_collections
galaxy, out = sys.argv[1:]
# every place the namespace package is found (PYTHONPATH may put this checkout's link first)
carried = list(ansible_collections.__path__)
for name, spec in (yaml.safe_load(open(galaxy)).get("dependencies") or {}).items():
    found = [os.path.join(base, *name.split(".")) for base in carried]
    found = [path for path in found if os.path.isfile(os.path.join(path, "MANIFEST.json"))]
    if not found:
        sys.exit("declared dependency %s: not in the test venv's ansible package (looked in %s)" % (name, carried))
    src = found[0]
    info = json.load(open(os.path.join(src, "MANIFEST.json")))["collection_info"]
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, name)
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__", "MANIFEST.json", "FILES.json"))
        keys = ("namespace", "name", "version", "readme", "authors", "description", "license", "dependencies")
        with open(os.path.join(copy, "galaxy.yml"), "w") as handle:
            yaml.safe_dump({k: info[k] for k in keys if info.get(k) is not None}, handle)
        subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", out, copy], check=True,
                       stdout=subprocess.DEVNULL)
    print("dependency %s %s: offline copy %s" % (name, spec, info["version"]))
PY

# a clean venv: requirements.txt only (no `ansible` package, so no collections
# but the ones installed below), and no PYTHONPATH leading back to this checkout
unset PYTHONPATH
req_hash=$(sha256sum requirements.txt | cut -c1-16)
venv=$work/venv
if [ "$(cat "$venv/.req-hash" 2>/dev/null)" != "$req_hash" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r requirements.txt
  echo "$req_hash" >"$venv/.req-hash"
fi
if "$venv/bin/python" -c 'import ansible_collections' 2>/dev/null; then
  echo "the clean venv carries collections of its own: it is not clean"; exit 1
fi

export ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_ROLES_PATH=$work/roles ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_HOME=$work/home ANSIBLE_NOCOLOR=1
export PATH=$venv/bin:$PATH
cd "$work"
printf "[defaults]\n" > "$work/ansible.cfg"
# the artifact with its declared dependencies, resolved from the files alone
ansible-galaxy collection install --offline -p "$work/collections" "$artifact" "$work"/src/[!t]*.tar.gz
ansible-galaxy collection list -p "$work/collections" 2>/dev/null | grep -E '^[a-z_]+\.[a-z_]+ '

failed=0
check() { if "$@" >"$work/out" 2>&1; then echo "ok: ${*: -1}"; else echo "FAILED: $*"; cat "$work/out"; failed=1; fi; }
for playbook in "$root"/playbooks/*.yml; do
  check ansible-playbook -i localhost, --syntax-check "tgproxy.stealth.$(basename "$playbook" .yml)"
done
for module in "$root"/plugins/modules/*.py; do
  check ansible-doc -t module "tgproxy.stealth.$(basename "$module" .py)"
done
for filter in $(sed -n 's/^  name: //p' "$root"/plugins/filter/*.yml); do
  check ansible-doc -t filter "tgproxy.stealth.$filter"
done
for role in "$root"/roles/*/; do
  check ansible-doc -t role "tgproxy.stealth.$(basename "$role")"
done
[ "$failed" -eq 0 ] || { echo "the installed collection does not work as documented"; exit 1; }
echo "installed as documented: every playbook, module, filter and role resolves"
