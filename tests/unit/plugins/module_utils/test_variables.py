# -*- coding: utf-8 -*-
"""Every string role variable has a kind, and no kind lets a config metacharacter through."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

import pytest
import yaml

from ansible_collections.tgproxy.stealth.plugins.filter.topology import tgp_value_errors
from ansible_collections.tgproxy.stealth.plugins.module_utils import interface, values, variables

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _string_options():
    """(role, name, option) of every option that can hold a string: str, path, raw, lists of them, dicts."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        role = path.split(os.sep)[-3]
        with open(path) as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
        for spec in specs.values():
            for name, option in (spec.get("options") or {}).items():
                kind = option.get("type", "str")
                element = option.get("elements", "str")
                if "choices" in option:
                    continue  # Ansible's argument validation holds these to the list
                if kind in ("str", "path", "raw", "dict") or (kind == "list" and element in ("str", "path", "raw")):
                    found.append((role, name, option))
    return found


def _defaults():
    merged = {}
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "defaults", "main.yml")):
        with open(path) as handle:
            merged.update(yaml.safe_load(handle) or {})
    return merged


def test_every_string_variable_of_every_role_has_a_kind():
    missing = [name for dummy, name, dummy2 in _string_options()
               if name not in variables.KINDS and name not in variables.BY_THE_MODEL]
    assert not missing, "give these a kind in module_utils/variables.py: %s" % missing


def test_every_kind_names_a_documented_variable_and_a_known_kind():
    documented = set(name for dummy, name, dummy2 in _string_options())
    assert set(variables.KINDS) - documented == set()
    for kind in variables.KINDS.values():
        bare = kind.lstrip("?").split(":")[-1]
        assert bare in values.KINDS, kind


def test_the_roles_own_defaults_are_of_their_kind():
    defaults = _defaults()
    checked = {name: value for name, value in defaults.items()
               if name in variables.KINDS and not (isinstance(value, str) and "{{" in value)}
    assert len(checked) > 80
    assert variables.value_errors(checked) == []


# a valid value of each kind, and whether the kind takes a space inside
SAMPLES = {
    "hostname": "proxy.example.com", "host": "web.example.com", "ip": "127.0.0.1", "cidr": "127.0.0.1/32",
    "hostport": "127.0.0.1:3129", "release_version": "2.2.8", "url": "https://example.com/a",
    "https_url": "https://example.com/a", "ca": "https://acme.example.com/dir", "upstream": "http://127.0.0.1:3000",
    "proxy_url": "socks5://u:p@10.0.0.1:1080", "dns": "https://dns.example.com/q", "digest": "ab" * 32, "checksum": "sha256:" + "ab" * 32,
    "release_checksum": "sha256:https://example.com/sums",
    "path": "/var/www/site", "relative_path": "dir/mtg", "unix_name": "mtg", "unit_name": "mtg-blue",
    "package": "haproxy", "duration": "1h30m", "go_duration": "1m30s", "simple_duration": "30s",
    "calendar": "*-*-* 03:00:00", "size": "1mib", "email": "a@example.com", "text": "My site",
    "tokens": "stdout format raw local0", "seed": "abc123", "tls_protocol": "TLSv1.3", "integer": "4",
    "env_key": "CF_Token", "sysctl_key": "net.core.somaxconn", "dns_provider": "dns_cf",
}
TAKES_A_SPACE = ("calendar", "text", "tokens", "size")
# what ends or bends a value in haproxy.cfg, nginx.conf, sslh's libconfig, a Caddyfile, TOML, a systemd unit,
# a shell environment file
METACHARACTERS = ["\n", "\r", '"', "'", ";", "{", "}", " ", "#", "\\", "\t", "$(", "`", "\x00"]


def test_every_kind_has_a_sample():
    assert set(SAMPLES) == set(values.KINDS)
    for kind, sample in SAMPLES.items():
        assert values.kind_problem(kind, sample) is None, kind


# every kind with every metacharacter, but a space where it is part of the kind's syntax (a unit value or one
# directive line)
@pytest.mark.parametrize("kind,meta", [(kind, meta) for kind in sorted(SAMPLES) for meta in METACHARACTERS
                                       if not (meta == " " and kind in TAKES_A_SPACE)],
                         ids=lambda value: repr(value) if len(value) <= 2 else value)
def test_no_kind_takes_a_config_metacharacter(kind, meta):
    sample = SAMPLES[kind]
    for bad in (sample + meta, sample[:2] + meta + sample[2:], sample + meta + "x"):
        assert values.kind_problem(kind, bad) is not None, (kind, bad)


@pytest.mark.parametrize("name,value,needle", [
    ("haproxy_log", "stdout format raw local0\n    bind :80", "[haproxy_log]"),
    ("haproxy_prometheus_bind", "127.0.0.1:8405\n  bind *:80", "host:port"),
    ("caddy_reverse_proxy", "127.0.0.1:3000\n}\n:9999 {", "[caddy_reverse_proxy]"),
    ("caddy_proxy_protocol_timeout", "5s }", "Go duration"),
    ("caddy_site_root", "/var/www/site {", "plain characters"),
    ("nginx_web_reverse_proxy", "http://127.0.0.1:3000; return 200", "[nginx_web_reverse_proxy]"),
    ("nginx_web_proxy_allow", ["127.0.0.1/32; allow all"], "in every item"),
    ("nginx_stream_preread_timeout", "60s; proxy_pass x", "[nginx_stream_preread_timeout]"),
    ("acme_sh_dns_env", {"CF_Token; rm -rf /": "x"}, "for every key"),
    ("acme_sh_renew_on_calendar", "daily\nExecStart=/bin/sh", "calendar"),
    ("mtg_dns", 'https://dns.example.com/"\nsecret = "x', "[mtg_dns]"),
    ("mtg_proxies", ['socks5://10.0.0.1:1080"]'], "socks5"),
    ("mtg_blocklist_urls", ["https://example.com/a b"], "in every item"),
    ("sslh_transparent_unit", "x\nExecStart=/bin/sh", "unit name"),
    ("haproxy_packages", ["haproxy -o Dpkg::Options=x"], "package"),
    ("caddy_site_title", "<script>", "plain text"),
    ("mtg_link_server", "proxy.example.com/", "[mtg_link_server]"),
])
def test_a_bad_value_is_rejected_naming_the_variable(name, value, needle):
    errors = variables.value_errors({name: value})
    assert len(errors) == 1 and errors[0].startswith("TGP954 [%s]" % name) and needle in errors[0], errors
    assert "Fix:" in errors[0]


def test_empty_means_not_set_only_where_the_kind_allows_it():
    assert variables.value_errors({"mtg_public_ipv4": "", "caddy_reverse_proxy": "", "mtg_doppelganger_urls": None}) == []
    assert variables.value_errors({"mtg_bind_to": ""})[0].startswith("TGP954 [mtg_bind_to]")
    assert variables.value_errors({"haproxy_log": ""})[0].startswith("TGP954 [haproxy_log]")


def test_the_filter_pairs_names_with_values_and_ignores_names_without_a_kind():
    assert tgp_value_errors(["haproxy_log", "haproxy_unknown", "__haproxy_x"], ["a\nb", "a\nb", "a\nb"]) == [
        variables.value_errors({"haproxy_log": "a\nb"})[0]]


def test_a_secret_is_never_in_a_message():
    assert "mtg_secret" not in variables.KINDS
    assert variables.value_errors({"mtg_secret": "ee" + "00" * 16 + "\n"}) == []


# found by the daemon-checker property test (molecule/resources/tests/config_property.py): each passed its kind
# and the daemon refused it
@pytest.mark.parametrize("kind,value,ok", [
    ("dns", "9.9.9.9", True), ("dns", "udp://[2620:fe::fe]", True), ("dns", "udp://9.9.9.9:53", True),
    ("dns", "tls://dns.quad9.net", True), ("dns", "tls://9.9.9.9:853", True),
    ("dns", "https://dns.quad9.net/dns-query", True),
    ("dns", "2620:fe::fe", False),  # mtg parses a bare value as a URL path: "first path segment cannot contain colon"
    ("dns", "udp://dns.quad9.net", False),  # mtg: "simple DNS must IP address"
    ("upstream", "http://127.0.0.1:3000", True), ("upstream", "127.0.0.1:3000", True),
    ("upstream", "https://app.example.com", True),
    ("upstream", "http://app.example.com/api", False),  # Caddy: upstream URLs take scheme, host and port only
    ("url", "https://example.com/a%2Fb", True),
    ("url", "https://example.com/80m%", False), ("url", "https://example.com/%lf", False),  # Go: invalid URL escape
])
def test_kinds_the_daemons_themselves_hold_to(kind, value, ok):
    assert (values.kind_problem(kind, value) is None) is ok


def _inventory_values():
    """(where, name, value) of every variable the example inventory and the Molecule scenarios set."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "inventory-example", "*", "*_vars", "*"))):
        files = glob.glob(os.path.join(path, "*.yml")) if os.path.isdir(path) else [path]
        for name in files:
            with open(name) as handle:
                for key, value in (yaml.safe_load(handle) or {}).items():
                    found.append((os.path.relpath(name, ROOT), key, value))
    for path in sorted(glob.glob(os.path.join(ROOT, "molecule", "*", "molecule.yml"))):
        with open(path) as handle:
            text = handle.read().replace("${TGP_MIRROR_URL}", "http://172.30.77.1:8089")
        inventory = ((yaml.safe_load(text).get("provisioner") or {}).get("inventory") or {})
        for part in ("group_vars", "host_vars"):
            for dummy, settings in (inventory.get(part) or {}).items():
                for key, value in (settings or {}).items():
                    found.append((os.path.relpath(path, ROOT), key, value))
    return found


def test_every_value_our_own_inventories_set_is_of_its_kind():
    """The example inventory and every Molecule scenario pass the kind checks (a check that rejects a value the
    test bed needs would stop every scenario)."""
    found = [(where, name, value) for where, name, value in _inventory_values()
             if not (isinstance(value, str) and "{{" in value)]
    assert len(found) > 50
    errors = ["%s: %s" % (where, message) for where, name, value in found
              for message in variables.value_errors({name: value}) + interface.spec_errors({name: value})]
    assert errors == []
