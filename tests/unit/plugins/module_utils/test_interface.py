# -*- coding: utf-8 -*-
"""The operator's interface: derived variables set to another value, unknown variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re

import pytest
import yaml

from ansible_collections.tgproxy.stealth.plugins.filter.topology import tgp_interface_errors, tgp_role_defaults
from ansible_collections.tgproxy.stealth.plugins.module_utils import interface

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
with open(os.path.join(ROOT, "playbooks", "vars", "topology.yml")) as _handle:
    TOPOLOGY_VARS = yaml.safe_load(_handle)
DERIVED = TOPOLOGY_VARS["__tgproxy_derived_site"]
with open(os.path.join(ROOT, "playbooks", "vars", "migrate.yml")) as _handle:
    MIGRATE_VARS = yaml.safe_load(_handle)


def test_every_role_variable_site_yml_sets_is_in_the_derived_table():
    """A role variable the play vars set outranks the inventory: each must be checked for a conflict."""
    known = interface.known_variables()
    role_vars = [name for name in TOPOLOGY_VARS if not name.startswith("__") and not name.startswith("tgproxy_")]
    assert role_vars and all(name in known for name in role_vars)
    assert sorted(role_vars) == sorted(set(DERIVED) - set(TOPOLOGY_VARS["__tgproxy_derived_values"]))


def test_every_role_variable_migrate_yml_sets_is_derived_there():
    """migrate.yml's vars outrank the inventory too: each role variable it sets is checked for a conflict."""
    role_vars = [name for name in MIGRATE_VARS if not name.startswith("__") and not name.startswith("tgproxy_")]
    assert role_vars == ["mtg_stats_bind_to"]
    assert sorted(role_vars) == sorted(MIGRATE_VARS["__tgproxy_derived_playbook"])


def test_a_migration_names_an_inventory_stats_endpoint_it_would_replace():
    table = {"mtg_stats_bind_to": MIGRATE_VARS["__tgproxy_derived_playbook"]["mtg_stats_bind_to"]}
    errors = tgp_interface_errors(table, {"mtg_stats_bind_to": "127.0.0.1:9100"},
                                  {"mtg_stats_bind_to": "127.0.0.1:3130"}, [], {}, {}, "migrate.yml")
    assert len(errors) == 1
    assert errors[0].startswith("[mtg_stats_bind_to, tgproxy_migrate_mtg_stats_bind] mtg_stats_bind_to is "
                                "'127.0.0.1:9100' in the inventory, but migrate.yml derives it")
    assert "Fix: set tgproxy_migrate_mtg_stats_bind instead" in errors[0]
    assert tgp_interface_errors(table, {"mtg_stats_bind_to": "127.0.0.1:3130"},
                                {"mtg_stats_bind_to": "127.0.0.1:3130"}, [], {}, {}, "migrate.yml") == []


OWNED = TOPOLOGY_VARS["__tgproxy_site_owned"]
# include vars of playbooks/tasks/roles.yml whose value is the user's own variable, carried through the
# topology document and the model (the model fills in only what is unset)
FLOW_THROUGH = {
    "caddy_http_port": "web.http_bind from caddy_http_port",
    "nginx_web_http_bind": "web.http_bind from nginx_web_http_bind",
    "nginx_web_http_port": "web.http_bind from nginx_web_http_port",
    "nginx_web_proxy_allow": "web.proxy_allow from nginx_web_proxy_allow",
    "mtg_topology": "kind from tgproxy_topology, or mtg_topology",
    "mtg_domain": "domain from mtg_domain, or a further instance's (mtg.instances)",
    "mtg_secret": "mtg.secret from mtg_secret, or a further instance's (mtg.instances)",
    "mtg_bind_to": "mtg.bind, or each slot's of blue/green (mtg.slots)", "mtg_proxy_protocol_listener": "mtg.proxy_protocol_listener",
    "mtg_fronting_host": "mtg.fronting.host", "mtg_fronting_port": "mtg.fronting.port",
    "mtg_fronting_proxy_protocol": "mtg.fronting.proxy_protocol", "mtg_concurrency": "mtg.concurrency",
    "mtg_stats_bind_to": "mtg.stats_bind, or the live slot's of blue/green (mtg.slots)",
    "mtg_binary": "mtg_binary for the one instance and blue/green's blue slot, mtg_binary-green for green",
    "mtg_selftest": "mtg_selftest, off only for a slot nothing routes to yet (blue/green's other slot, migrate.yml's "
                    "new mtg), which the playbook checks itself",
    "mtg_limit_nofile": "mtg_limit_nofile, raised to what tgproxy_capacity needs",
    "sslh_flavour": "router.flavour from sslh_flavour or tgproxy_router.flavour (both, differently: TGP004)",
}


def _include_vars(path):
    with open(path) as handle:
        tasks = yaml.safe_load(handle)
    names = set()
    for task in tasks:
        if "ansible.builtin.include_role" in task:
            names |= set(task.get("vars") or {})
    return names


def test_every_role_variable_roles_yml_passes_is_derived_owned_or_the_users_own():
    """An include var outranks the inventory: each is checked, owned by site.yml, or the user's value itself."""
    passed = set()
    for name in ("roles.yml", "mtg_instance.yml"):
        passed |= _include_vars(os.path.join(ROOT, "playbooks", "tasks", name))
    assert passed
    # the playbooks' own helpers (__tgproxy_*) are no role variable
    unaccounted = {n for n in passed if not n.startswith("__tgproxy_")} - set(DERIVED) - set(OWNED) - set(FLOW_THROUGH)
    assert unaccounted == set()
    assert set(OWNED) <= interface.known_variables()


@pytest.mark.parametrize("name", sorted(OWNED))
def test_each_variable_site_yml_owns_is_an_error_when_set(name):
    messages = tgp_interface_errors(DERIVED, {name: "anything"}, {}, [name], OWNED)
    assert len(messages) == 1
    assert messages[0].startswith("[%s] is set by site.yml for every host (from %s)" % (name, OWNED[name]))
    assert "Fix: remove %s" % name in messages[0]


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_each_derived_variable_set_differently_is_an_error_naming_both(name):
    derived_value = ["127.0.0.1"] if name.endswith("_bind") or name.endswith("_domains") else "derived-value"
    messages = tgp_interface_errors(DERIVED, {name: "another-value"}, {name: derived_value}, [name])
    assert len(messages) == 1
    assert messages[0].startswith("[%s, %s] %s is 'another-value' in the inventory" % (name, DERIVED[name], name))
    assert "Fix: set %s instead, or remove %s." % (DERIVED[name], name) in messages[0]


@pytest.mark.parametrize("set_value,derived_value", [
    (8443, "8443"), ("8443", 8443), (True, "yes"), ("false", False), ("127.0.0.1", ["127.0.0.1"]),
    (["proxy.example.com"], ["proxy.example.com"]), ("nginx", "nginx"),
])
def test_the_same_value_spelt_differently_is_no_conflict(set_value, derived_value):
    assert tgp_interface_errors(DERIVED, {"caddy_https_port": set_value}, {"caddy_https_port": derived_value},
                                ["caddy_https_port"]) == []


@pytest.mark.parametrize("set_value,derived_value", [
    (9443, 8443), (False, True), ("no", "yes"), (["127.0.0.2"], ["127.0.0.1"]), ("Proxy.example.com", "proxy.example.com"),
])
def test_a_different_value_is_a_conflict(set_value, derived_value):
    assert len(tgp_interface_errors(DERIVED, {"caddy_https_port": set_value}, {"caddy_https_port": derived_value},
                                    [])) == 1


def test_unset_derived_variables_are_no_conflict():
    assert tgp_interface_errors(DERIVED, {}, {"caddy_https_port": 8443}, ["caddy_https_port"]) == []


@pytest.mark.parametrize("typo,suggestion", [
    ("tgproxy_proxy_protocl", "tgproxy_proxy_protocol"),
    ("mtg_concurency", "mtg_concurrency"),
    ("caddy_acme_emial", "caddy_acme_email"),
    ("tgproxy_webbackend", "tgproxy_web_backend"),
    ("haproxy_maxcon", None),
])
def test_unknown_variables_are_errors_with_the_closest_names(typo, suggestion):
    messages = tgp_interface_errors({}, {}, {}, [typo, "mtg_domain", "ansible_host", "other_thing"])
    assert len(messages) == 1 and messages[0].startswith("[%s] is not a variable of this collection" % typo)
    if suggestion:
        assert "did you mean %s" % suggestion in messages[0]


def test_known_variables_cover_every_role_spec_and_playbook_variable():
    known = interface.known_variables()
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        with open(path) as handle:
            for entry in yaml.safe_load(handle)["argument_specs"].values():
                assert set(entry.get("options", {})) <= known, path
    assert {"tgproxy_topology", "tgproxy_web_backend", "tgproxy_capacity", "tgproxy_router", "tgproxy_rollout_batch",
            "tgproxy_model", "tgproxy_topology_doc"} <= known


def _inventory_names():
    """Every variable name the project's own inventories, scenarios and demo choices set."""
    names = set()

    def walk(node, names_hosts=False):
        if isinstance(node, dict):
            for key, value in node.items():
                # the keys under hosts: and children: are host and group names
                if not names_hosts and isinstance(key, str) and re.match(interface.PREFIX_PATTERN, key):
                    names.add(key)
                walk(value, names_hosts=key in ("hosts", "children") and not names_hosts)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    paths = (glob.glob(os.path.join(ROOT, "molecule", "*", "molecule.yml"))
             + glob.glob(os.path.join(ROOT, "inventory-example", "**", "*.yml"), recursive=True)
             + glob.glob(os.path.join(ROOT, "tests", "demo", "*.yml")))
    for path in paths:
        with open(path) as handle:
            walk(yaml.safe_load(handle))
    return names


def test_the_projects_own_inventories_use_only_known_variables():
    names = _inventory_names()
    assert len(names) > 20
    assert interface.unknown_variables(names) == []


# ---------------------------------------------------------------------------
# The playbooks' own variables: one spec
# ---------------------------------------------------------------------------
def test_every_tgproxy_variable_the_playbooks_read_has_a_spec():
    read = set(name for name in interface.known_variables() if name.startswith("tgproxy_"))
    assert read - set(interface.PLAYBOOK_SPEC) - set(interface.INTERNAL) == set()
    for name, spec in interface.PLAYBOOK_SPEC.items():
        assert spec["type"] in ("str", "bool", "int", "dict", "list", "raw"), name
        assert spec["description"] and spec["playbooks"], name


@pytest.mark.parametrize("name,value,needle", [
    ("tgproxy_topology", "nginx", "one of mtg_fronting"),
    ("tgproxy_web_backend", "nginx", "one of caddy"),
    ("tgproxy_proxy_protocol", "maybe", "true or false"),
    ("tgproxy_capacity", [1000], "a mapping"),
    ("tgproxy_other_services", {"name": "ssh"}, "a list"),
    ("tgproxy_other_services", ["ssh"], "a list of mappings"),
    ("tgproxy_doctor_cert_min_days", "two weeks", "a whole number"),
    ("tgproxy_mtg_service", "mtg\nExecStart=/bin/sh", "a systemd unit name"),
    ("tgproxy_migrate_mtg_stats_bind", "127.0.0.1", "a host:port address"),
    ("tgproxy_doctor_reference", "https://example.com/", "a DNS name"),
    ("tgproxy_verify_ca_cert", "certs.pem", "an absolute path"),
])
def test_a_playbook_variable_that_breaks_its_spec_is_named(name, value, needle):
    errors = interface.spec_errors({name: value})
    assert len(errors) == 1 and errors[0].startswith("TGP954 [%s]" % name) and needle in errors[0], errors
    assert "Fix:" in errors[0]


def test_valid_playbook_variables_pass():
    assert interface.spec_errors({
        "tgproxy_topology": "haproxy", "tgproxy_web_backend": "nginx_acme_sh", "tgproxy_proxy_protocol": None,
        "tgproxy_validate_dns": "yes", "tgproxy_capacity": {"connections": 1000}, "tgproxy_doctor_reference": "",
        "tgproxy_other_services": [{"name": "ssh", "bind": "127.0.0.1:22"}], "tgproxy_doctor_cert_min_days": "30",
        "tgproxy_rollout_batch": "25%", "tgproxy_mtg_service": "mtg-blue", "tgproxy_router": None,
        "tgproxy_model": {"anything": 1},
    }) == []


def test_the_interface_filter_reports_spec_errors_too():
    errors = tgp_interface_errors({}, {}, {}, ["tgproxy_web_backend"], {}, {"tgproxy_web_backend": "ngnix"})
    assert len(errors) == 1 and errors[0].startswith("TGP954 [tgproxy_web_backend]")


def _playbook_defaults():
    """(where, variable, literal) of every ``variable | default(literal)`` in the playbooks."""
    pattern = re.compile(r"\b([a-z][a-z0-9_]*) \| default\(((?:[^()]|\([^()]*\))*)\)")
    for path in sorted(glob.glob(os.path.join(ROOT, "playbooks", "**", "*.yml"), recursive=True)):
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                for match in pattern.finditer(line):
                    yield "%s:%d" % (os.path.relpath(path, ROOT), number), match.group(1), match.group(2)


def test_no_playbook_keeps_a_copy_of_a_role_default():
    """A playbook reads some role variables before the role runs (its defaults are not loaded yet): it falls back
    to the role's own default through tgp_role_defaults, never to a copy (None or '' mean unset)."""
    defaults = interface.role_defaults()
    found = [(where, name, literal) for where, name, literal in _playbook_defaults() if name in defaults]
    copies = ["%s %s | default(%s)" % (where, name, literal) for where, name, literal in found
              if not (literal.startswith("__tgproxy_role_defaults.") or literal in ("None", "none", "omit")
                      or literal.startswith("''") or re.match(r"^[a-z_]", literal))]
    assert len(found) >= 20 and not copies, copies


def test_role_defaults_are_the_roles_literal_defaults():
    defaults = tgp_role_defaults()
    assert defaults["mtg_fronting_port"] == 8443 and defaults["nginx_web_proxy_allow"] == ["127.0.0.1/32"]
    assert "haproxy_nbthread" not in defaults  # templated: only the role's context knows it


def test_every_default_a_playbook_writes_for_its_own_variables_is_the_specs():
    """The playbooks' own variables (tgproxy_*) default to what PLAYBOOK_SPEC says (docs/variables.md is made from
    it), wherever a playbook spells the default out; None, {} and [] mean unset, an expression is described there."""
    found = [(where, name, yaml.safe_load(literal.split(", true")[0])) for where, name, literal in _playbook_defaults()
             if name in interface.PLAYBOOK_SPEC and not re.match(r"^[a-z_]", literal)
             and literal not in ("None", "omit", "'?'")]
    wrong = ["%s %s defaults to %r, PLAYBOOK_SPEC to %r" % (where, name, value, interface.PLAYBOOK_SPEC[name]["default"])
             for where, name, value in found
             if value != interface.PLAYBOOK_SPEC[name]["default"]
             and not (value in ({}, [], "") and interface.PLAYBOOK_SPEC[name]["default"] in (None, ""))]
    assert len(found) >= 20 and not wrong, wrong
