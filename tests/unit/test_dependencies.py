"""The collection declares exactly the collections it uses (galaxy.yml and requirements.yml alike).

tests/install-check.sh proves the declared set is enough once installed (playbooks by FQCN, ansible-doc);
this test also catches what a syntax check cannot see (a filter used only at run time) and a declared
collection that nothing uses.
"""

import os
import re

import ansible_collections
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OWN = {"ansible.builtin", "ansible.legacy", "tgproxy.stealth"}


def known_collections():
    """Every collection the test venv's ansible package carries, as namespace.name."""
    return {"%s.%s" % (ns, name) for base in ansible_collections.__path__ for ns in os.listdir(base)
            if os.path.isdir(os.path.join(base, ns))
            for name in os.listdir(os.path.join(base, ns)) if os.path.isdir(os.path.join(base, ns, name))}


def used_collections():
    """Collections named by a task, filter, test or lookup in roles, playbooks and plugins (FQCN in YAML and
    Jinja; ansible_collections imports in Python), with the files that name them."""
    known = known_collections() | OWN
    fqcn = re.compile(r"\b([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+\b")
    imported = re.compile(r"\bansible_collections\.([a-z0-9_]+\.[a-z0-9_]+)\b")
    used = {}
    for top in ("roles", "playbooks", "plugins"):
        for folder, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                if name.endswith(".py"):
                    found = set(imported.findall(text))
                elif name.endswith((".yml", ".yaml", ".j2")):
                    found = {match for match in fqcn.findall(text) if match in known}
                else:
                    continue
                for collection in found:
                    used.setdefault(collection, set()).add(os.path.relpath(path, ROOT))
    return used


def test_the_scan_sees_known_uses():
    used = used_collections()
    assert "playbooks/verify.yml" in used["community.crypto"]
    assert "roles/acme_sh/tasks/install.yml" in used["community.general"]


def test_galaxy_yml_declares_exactly_the_collections_used():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        declared = set(yaml.safe_load(handle)["dependencies"])
    used = {name: files for name, files in used_collections().items() if name not in OWN}
    assert set(used) - declared == set(), "used but not declared: %s" % {n: used[n] for n in set(used) - declared}
    assert declared - set(used) == set(), "declared but used nowhere: %s" % (declared - set(used))


def test_requirements_yml_matches_galaxy_yml():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        galaxy = yaml.safe_load(handle)["dependencies"]
    with open(os.path.join(ROOT, "requirements.yml")) as handle:
        requirements = {item["name"]: item["version"] for item in yaml.safe_load(handle)["collections"]}
    assert requirements == galaxy
