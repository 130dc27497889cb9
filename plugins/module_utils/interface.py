# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The operator's interface: which variables exist, and which ones site.yml derives.

Part of the collection's topology model. ``playbooks/tasks/check.yml`` runs
both checks before anything changes on a host:

- **Derived variables.** ``playbooks/vars/topology.yml`` derives some role
  variables from others (the web server's TLS listener is mtg's fronting
  target, for one). Play variables outrank the inventory, so a value the
  inventory sets for a derived variable would be silently replaced: when it
  differs from the derived value, that is an error naming both variables.
- **Variables site.yml owns.** Some role variables are set by site.yml for
  every host from the topology (the routers' topology documents, the tuning
  role's derived limits): an inventory value would be replaced, whatever it
  is, so setting one is an error naming what to set instead.
- **Unknown variables.** A variable with one of the collection's prefixes
  that no role documents (``meta/argument_specs.yml``) and no playbook reads
  is a misspelling or a leftover: an error, with the closest known names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import difflib
import glob
import os
import re

try:
    from ansible_collections.tgproxy.stealth.plugins.module_utils import values
except ImportError:  # imported by path (tests, test bed tools)
    import values  # type: ignore

PREFIXES = ("tgproxy", "mtg", "caddy", "nginx_web", "nginx_stream", "haproxy", "sslh", "acme_sh", "tuning",
            "site_content", "packages")
PREFIX_PATTERN = "^(%s)_" % "|".join(PREFIXES)
# set by the playbooks themselves during a run, never by the operator
INTERNAL = ("tgproxy_model", "tgproxy_topology_doc", "tgproxy_topology_vars")
_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_TGPROXY_NAME = re.compile(r"\btgproxy_[a-z0-9_]*[a-z0-9]\b")
_SPEC_OPTION = re.compile(r"^      ([a-z][a-z0-9_]*):\s*$", re.M)


def known_variables(root=_ROOT):
    """Every variable the collection documents or reads: role argument specs and the playbooks' tgproxy_*."""
    known = set()
    for path in glob.glob(os.path.join(root, "roles", "*", "meta", "argument_specs.yml")):
        with open(path) as handle:
            known.update(_SPEC_OPTION.findall(handle.read()))
    for path in glob.glob(os.path.join(root, "playbooks", "**", "*.yml"), recursive=True):
        with open(path) as handle:
            known.update(_TGPROXY_NAME.findall(handle.read()))
    return known | set(INTERNAL) | set(PLAYBOOK_SPEC)


_ROLE_DEFAULTS = {}


def role_defaults(root=_ROOT):
    """Every role's defaults/main.yml merged, literal values only (a templated default needs the role's context).
    Read once per process (play vars are templated at every reference)."""
    if root not in _ROLE_DEFAULTS:
        _ROLE_DEFAULTS[root] = _read_role_defaults(root)
    return dict(_ROLE_DEFAULTS[root])


def _read_role_defaults(root):
    import yaml  # pylint: disable=import-outside-toplevel
    merged = {}
    for path in sorted(glob.glob(os.path.join(root, "roles", "*", "defaults", "main.yml"))):
        with open(path) as handle:
            for name, value in (yaml.safe_load(handle) or {}).items():
                if not (isinstance(value, str) and "{{" in value):
                    merged[name] = value
    return merged


def unknown_variables(names, known=None):
    """[(name, [close known names])] for the names with a collection prefix that nothing knows."""
    known = known_variables() if known is None else set(known)
    prefix = re.compile(PREFIX_PATTERN)
    unknown = sorted(set(name for name in names if prefix.match(name)) - known)
    return [(name, difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.75)) for name in unknown]


def _canonical(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "false", "no", "off"):
        return "true" if value.strip().lower() in ("true", "yes", "on") else "false"
    return str(value).strip()


def same_value(set_value, derived_value):
    """Equal once spelt alike: 8443 and '8443', true and 'yes', 'x' and ['x']."""
    a, b = _canonical(set_value), _canonical(derived_value)
    if isinstance(b, list) and not isinstance(a, list):
        a = [a]
    return a == b


def derived_conflicts(table, set_values, derived_values, playbook="site.yml"):
    """Messages for each derived variable the inventory sets to another value than site.yml derives.

    ``table`` maps a derived variable to the variable(s) to set instead;
    ``set_values`` holds what the inventory sets (only the names it sets);
    ``derived_values`` what site.yml would pass.
    """
    messages = []
    for name in sorted(table):
        if name not in set_values or name not in derived_values:
            continue
        if same_value(set_values[name], derived_values[name]):
            continue
        messages.append(
            "[%s, %s] %s is %r in the inventory, but %s derives it from %s (%r) and would use that. "
            "Fix: set %s instead, or remove %s." % (
                name, table[name], name, set_values[name], playbook, table[name], derived_values[name], table[name],
                name))
    return messages


def unknown_messages(names, known=None):
    messages = []
    for name, close in unknown_variables(names, known):
        hint = ("did you mean %s?" % " or ".join(close)) if close else "no variable of the collection is close to it."
        messages.append("[%s] is not a variable of this collection: %s Fix: correct or remove it (the variables "
                        "are in docs/variables.md and the README)." % (name, hint))
    return messages


def owned_messages(table, set_names):
    """Messages for each variable site.yml sets itself that the inventory sets too."""
    return ["[%s] is set by site.yml for every host (from %s); the inventory's value would be replaced. "
            "Fix: remove %s%s." % (name, table[name], name,
                                   "" if table[name].startswith("nothing") else " and set %s instead" % table[name])
            for name in sorted(set(set_names) & set(table))]


# --------------------------------------------------------------------------
# The playbooks' own variables (tgproxy_*): one spec, checked by check.yml and
# the doctor, and the source of their table in docs/variables.md. Role
# variables have theirs in each role's meta/argument_specs.yml.
# type: str | bool | int | dict | list | raw; kind: values.KINDS (strings);
# "?" before a kind: empty means the default.
# --------------------------------------------------------------------------
PLAYBOOK_SPEC = {
    "tgproxy_topology": dict(
        type="str", default="mtg_fronting", playbooks="site, migrate, rollout, doctor",
        choices=["mtg_fronting", "mtg_direct", "haproxy", "nginx_stream", "sslh"],
        description="Who owns :443: mtg itself (mtg_fronting; alias mtg_direct) or an SNI router."),
    "tgproxy_router": dict(
        type="dict", default=None, playbooks="site, migrate, rollout",
        description="The router's settings in the model's schema (routes, backends, maxconn, timeouts, listen, "
                    "flavour); checked whole by the validator (README: topology variables)."),
    "tgproxy_web_backend": dict(
        type="str", default="caddy", playbooks="site, migrate, rollout, doctor",
        choices=["caddy", "nginx_acme_sh", "manual_cert"],
        description="The website behind the proxy: Caddy (automatic ACME), nginx with acme.sh, or nginx with "
                    "certificate files."),
    "tgproxy_proxy_protocol": dict(
        type="bool", default=None, playbooks="site, migrate, rollout",
        description="PROXY protocol v2 on every internal hop; unset: the model's default (on for mtg_fronting, "
                    "off behind a router)."),
    "tgproxy_other_services": dict(
        type="list", elements="dict", default=[], playbooks="site, migrate, rollout",
        description="Other listeners on the host that router routes may point at (name, bind, proxy_protocol), "
                    "e.g. sshd for SSH on :443."),
    "tgproxy_capacity": dict(
        type="dict", default=None, playbooks="site, migrate, rollout",
        description="What the host must carry (connections, new_per_second, memory_mb, keepalive_seconds): "
                    "limits and sysctls are derived from it."),
    "tgproxy_mtg_service": dict(
        type="str", kind="unit_name", default="mtg", playbooks="site, rollout, doctor",
        description="The systemd unit of mtg (a migration records its own in the host's local facts)."),
    "tgproxy_mtg_blue_green": dict(
        type="bool", default=None, playbooks="site, rollout",
        description="Apply every mtg change through a second mtg instance the router switches to (hitless); "
                    "unset: on behind HAProxy and nginx stream, off elsewhere (TGP330)."),
    "tgproxy_mtg_alternate_bind": dict(
        type="str", kind="?hostport", default=None, playbooks="site, rollout, doctor",
        description="Where the second mtg instance of blue/green listens; unset: 127.0.0.1:3132 (beside "
                    "mtg_bind_to on loopback), or the next port no other listener of the host takes."),
    "tgproxy_mtg_alternate_stats_bind": dict(
        type="str", kind="?hostport", default=None, playbooks="site, rollout, doctor",
        description="The second mtg instance's Prometheus endpoint; unset: 127.0.0.1:3133, or the next free "
                    "port."),
    "tgproxy_mtg_instances": dict(
        type="list", elements="dict", default=[], playbooks="site, rollout, doctor",
        description="Further mtg instances behind the router, each with its own domain and secret: name, domain, "
                    "secret (unset: generated once and kept), bind and stats_bind (unset: the next free loopback "
                    "ports from 127.0.0.1:3140), with blue/green alternate_bind and alternate_stats_bind (its second "
                    "slot; unset: the next free loopback ports after every instance's first ones), retire_at (a UTC "
                    "date or time: from then the instance stops and its domain gets the website) (TGP340-344)."),
    "tgproxy_mtg_restart_ok": dict(
        type="bool", default=False, playbooks="site, rollout",
        description="Without blue/green (mtg on :443, sslh, or tgproxy_mtg_blue_green false) a change restarts mtg "
                    "(or a further instance): allow it to cut the sessions it carries (checked before anything "
                    "changes)."),
    "tgproxy_mtg_drain_deadline": dict(
        type="int", default=600, playbooks="site, rollout",
        description="Seconds the old mtg instance of a blue/green switch may drain before it stops; the "
                    "sessions still open then are closed and reported."),
    "tgproxy_validate_dns": dict(
        type="bool", default=True, playbooks="site, migrate, rollout",
        description="Warn when mtg_domain does not resolve to mtg_public_ipv4/ipv6."),
    "tgproxy_verify_address": dict(
        type="str", kind="?host", default="mtg_public_ipv4, else ansible_host", playbooks="verify",
        description="Where verify.yml connects."),
    "tgproxy_verify_ca_cert": dict(
        type="str", kind="path", default="/etc/ssl/certs/ca-certificates.crt", playbooks="verify",
        description="Roots the site's chain must verify against (on the controller)."),
    "tgproxy_doctor_cert_min_days": dict(
        type="int", default=14, playbooks="doctor",
        description="Fail when the site's certificate expires sooner."),
    "tgproxy_doctor_check_time_sync": dict(
        type="bool", default=True, playbooks="doctor",
        description="Check that the host's clock is synchronised (FakeTLS rejects skewed clients)."),
    "tgproxy_doctor_known_differences": dict(
        type="dict", default={}, playbooks="doctor",
        description="Probe names -> reason: differences from the web server the operator accepts."),
    "tgproxy_doctor_reference": dict(
        type="str", kind="?hostname", default="", playbooks="doctor",
        description="An ordinary site of the same web server: reference mode compares the public ports with it."),
    "tgproxy_doctor_reference_host": dict(
        type="str", kind="?host", default="", playbooks="doctor",
        description="Where to reach the reference site (default: its name)."),
    "tgproxy_doctor_run_mtg_doctor": dict(
        type="bool", default=True, playbooks="doctor",
        description="Run mtg's own doctor (it dials NTP and Telegram's DCs)."),
    "tgproxy_migrate_drain_deadline": dict(
        type="int", default=1800, playbooks="migrate",
        description="Seconds the old proxy's sessions may drain before it stops."),
    "tgproxy_migrate_from_service": dict(
        type="str", kind="unit_name", default="mtg", playbooks="migrate",
        description="The unit of the proxy that owns :443 now."),
    "tgproxy_migrate_mtg_service": dict(
        type="str", kind="unit_name", default="mtg-routed", playbooks="migrate",
        description="The unit of the new mtg behind the router."),
    "tgproxy_migrate_mtg_stats_bind": dict(
        type="str", kind="hostport", default="127.0.0.1:3130", playbooks="migrate",
        description="The new mtg's Prometheus endpoint (the old one keeps its own until it stops)."),
    "tgproxy_migrate_spare_ports": dict(
        type="dict", default={443: 10443, 80: 10080}, playbooks="migrate",
        description="Public port -> spare port the new router listens on while the old proxy owns the public one."),
    "tgproxy_migrate_verify_address": dict(
        type="str", kind="?host", default="mtg_public_ipv4, else ansible_host", playbooks="migrate",
        description="Where the migration's checks connect."),
    "tgproxy_report_dir": dict(
        type="str", kind="path", default="./tgproxy-report", playbooks="report",
        description="Where report.html and report.md go (on the controller)."),
    "tgproxy_report_redact": dict(
        type="bool", default=False, playbooks="report",
        description="Replace every form of every secret and leave out the QR codes."),
    "tgproxy_rollout_batch": dict(
        type="raw", default=1, playbooks="rollout",
        description="Hosts per batch: a number, a percentage, or a list of either (Ansible's serial)."),
    "tgproxy_rollout_max_fail_percentage": dict(
        type="int", default=0, playbooks="rollout",
        description="Failed hosts a batch may have before the rollout stops (percent of the batch)."),
}

_BOOLS = (True, False, "true", "false", "yes", "no", "on", "off", "True", "False", "1", "0", 1, 0)


def _type_problem(spec, value):
    kind = spec["type"]
    if kind == "str" and not isinstance(value, str):
        return "a string"
    if kind == "bool" and (value not in _BOOLS or isinstance(value, float)):
        return "true or false"
    if kind == "int" and (isinstance(value, bool) or not (isinstance(value, int) and value >= 0 or
                                                          isinstance(value, str) and value.isdigit())):
        return "a whole number of 0 or more"
    if kind == "dict" and not isinstance(value, dict):
        return "a mapping"
    if kind == "list" and not isinstance(value, (list, tuple)):
        return "a list"
    if kind == "list" and spec.get("elements") == "dict" and not all(isinstance(i, dict) for i in value):
        return "a list of mappings"
    if "choices" in spec and value not in spec["choices"]:
        return "one of %s" % ", ".join(spec["choices"])
    return None


def spec_errors(settings):
    """["[var] <what is wrong>. Fix: ..."] for the tgproxy_* variables of ``settings`` that break PLAYBOOK_SPEC."""
    errors = []
    for name in sorted(settings):
        spec = PLAYBOOK_SPEC.get(name)
        value = settings[name]
        if spec is None or value is None and spec["type"] in ("bool", "dict"):
            continue  # unknown names: unknown_messages; null: the default
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        problem = _type_problem(spec, value)
        if problem is None and spec.get("kind"):
            kind = spec["kind"]
            found = values.kind_problem(kind.lstrip("?"), value, empty_ok=kind.startswith("?"))
            problem = found and found[0]
        if problem:
            errors.append("TGP954 [%s] %s is not %s. Fix: set %s (docs/variables.md: %s)." % (
                name, shown, problem, problem, spec["description"].rstrip(".")))
    return errors
