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
    return known | set(INTERNAL)


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


def derived_conflicts(table, set_values, derived_values):
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
            "[%s, %s] %s is %r in the inventory, but site.yml derives it from %s (%r) and would use that. "
            "Fix: set %s instead, or remove %s." % (
                name, table[name], name, set_values[name], table[name], derived_values[name], table[name], name))
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
