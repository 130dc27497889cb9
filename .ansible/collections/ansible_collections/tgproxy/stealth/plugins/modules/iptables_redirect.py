#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: iptables_redirect
short_description: Redirect new connections on public ports to spare ports in one iptables transaction
version_added: "0.1.0"
description:
  - Moves B(new) TCP connections arriving on public ports (for example C(443)) to other local ports (for
    example C(10443), where an SNI router waits) with NAT C(REDIRECT) rules. Connections established before
    the rules keep their conntrack entry and stay with the process that accepted them; connections
    redirected while the rules were in place keep flowing after the rules are removed. This is the swap of
    sni-router-setup.txt section 8.
  - The rules live in one chain named after I(tag) (upper-cased), jumped to first from C(PREROUTING) and,
    with I(local), from C(OUTPUT) for connections from the host to one of its own addresses. Every rule
    carries I(tag) as its comment, so the module always finds its own rules, whatever else the tables
    hold.
  - Each family (IPv4, IPv6) changes in one C(iptables-restore --noflush) transaction. When a later family
    fails, the families already changed are put back as they were, so nothing is left half-applied.
  - Works with the C(nf_tables) and the C(legacy) iptables backends (I(backend=auto) uses the one the
    C(iptables) command uses). Rules with this tag left in the other backend are reported, and removed
    by I(state=absent).
extends_documentation_fragment:
  - tgproxy.stealth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  redirects:
    description:
      - "Public port to spare port, for example C({443: 10443, 80: 10080}). Required with I(state=present)."
    type: dict
  state:
    description:
      - C(present) puts exactly these redirects in place (replacing other redirects with the same tag),
        C(absent) removes every rule with the tag (the rollback), C(query) only reports them.
    type: str
    choices: [present, absent, query]
    default: present
  tag:
    description: Comment on every rule and, upper-cased, the chain's name.
    type: str
    default: tgproxy-migrate
  families:
    description: Address families to redirect.
    type: list
    elements: str
    choices: [ipv4, ipv6]
    default: [ipv4, ipv6]
  local:
    description: Also redirect connections the host opens to its own addresses (the OUTPUT chain).
    type: bool
    default: true
  backend:
    description: iptables backend; C(auto) = the one the C(iptables) command uses.
    type: str
    choices: [auto, nft, legacy]
    default: auto
author:
  - tgproxy.stealth contributors (@tgproxy)
"""

EXAMPLES = r"""
- name: Send new connections on :443 and :80 to the router's spare ports
  tgproxy.stealth.iptables_redirect:
    redirects: {443: 10443, 80: 10080}

- name: Roll back (the old listener gets every new connection again)
  tgproxy.stealth.iptables_redirect:
    state: absent
"""

RETURN = r"""
backend:
  description: The iptables backend used.
  returned: always
  type: str
  sample: nft
redirects:
  description: Public port to spare port, per family, after the run (before it in check mode, see C(planned)).
  returned: always
  type: dict
  sample: {"ipv4": {"443": 10443}, "ipv6": {"443": 10443}}
planned:
  description: Per family, the C(iptables-restore) input applied (or that would be applied in check mode).
  returned: always
  type: dict
other_backend:
  description: Rules with this tag found in the other backend (they do not take effect with this one).
  returned: always
  type: dict
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import migration

PREFIX = {"ipv4": "iptables", "ipv6": "ip6tables"}


class Tables(object):
    """One backend's save/restore commands for both families."""

    def __init__(self, module, backend):
        self.module = module
        self.backend = backend

    def _binary(self, family, verb):
        # the backend's own binary, else the generic one (older iptables)
        names = ["%s-%s-%s" % (PREFIX[family], self.backend, verb), "%s-%s" % (PREFIX[family], verb)]
        for name in names:
            path = self.module.get_bin_path(name)
            if path:
                return path
        return None

    def available(self, family):
        return self._binary(family, "save") is not None and self._binary(family, "restore") is not None

    def read(self, family, tag):
        rc, out, err = self.module.run_command([self._binary(family, "save"), "-t", "nat"])
        if rc != 0:
            self.module.fail_json(msg="%s-save -t nat (%s backend) failed: %s. Is the nat table available "
                                      "(kernel module %s)? Fix: load it, or leave %s out of families."
                                      % (PREFIX[family], self.backend, (err or out).strip(),
                                         "iptable_nat" if family == "ipv4" else "ip6table_nat", family))
        return migration.tagged_rules(out, tag)

    def restore(self, family, payload):
        return self.module.run_command([self._binary(family, "restore"), "-w", "--noflush"], data=payload,
                                       binary_data=True)


def detect_backend(module):
    path = module.get_bin_path("iptables")
    if not path:
        module.fail_json(msg="iptables is not installed. Fix: install the iptables package.")
    rc, out, err = module.run_command([path, "--version"])
    match = re.search(r"\((nf_tables|legacy)\)", out + err)
    if not match:
        # iptables before 1.8 has only the legacy backend and does not say so
        return "legacy"
    return "nft" if match.group(1) == "nf_tables" else "legacy"


def run(module):
    params = module.params
    tag = params["tag"]
    try:
        migration.check_tag(tag)
        want = migration.normalise_redirects(params["redirects"]) if params["state"] == "present" else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if params["state"] == "present" and not params["redirects"]:
        module.fail_json(msg="redirects is required with state=present, e.g. {443: 10443}")

    if module.check_mode and not module.get_bin_path("iptables"):
        # a plan before the package is installed: nothing can be in place yet
        module.warn("iptables is not installed yet; the plan assumes no rules are in place.")
        return _plan_only(module, tag, want)
    backend = params["backend"] if params["backend"] != "auto" else detect_backend(module)
    tables = Tables(module, backend)
    other = Tables(module, "legacy" if backend == "nft" else "nft")
    families = list(dict.fromkeys(params["families"]))
    for family in families:
        if not tables.available(family):
            module.fail_json(msg="%s-save/-restore (%s backend) not found. Fix: install the iptables package, "
                                 "or leave %s out of families." % (PREFIX[family], backend, family))

    before = dict((family, tables.read(family, tag)) for family in families)
    other_rules = {}
    for family in families:
        if other.available(family):
            found = other.read(family, tag)
            if found[0] or found[2]:
                other_rules[family] = found
                module.warn("%s rules tagged %s exist in the %s backend too (this run uses %s); they are %s."
                            % (family, tag, other.backend, backend,
                               "removed" if params["state"] == "absent" else "left alone"))

    result = dict(changed=False, backend=backend, planned={}, other_backend={
        family: migration.describe(found) for family, found in other_rules.items()})
    if params["state"] == "query":
        result["redirects"] = dict((f, migration.redirects_of(before[f][1])) for f in families)
        return result

    plan = []
    for family in families:
        payload = migration.restore_payload(tag, before[family], want, params["local"])
        if payload:
            plan.append((tables, family, payload, before[family]))
            result["planned"][family] = payload
    if params["state"] == "absent":
        for family, found in other_rules.items():
            plan.append((other, family, migration.restore_payload(tag, found, None), found))
            result["planned"]["%s (%s)" % (family, other.backend)] = plan[-1][2]

    after_preview = {}
    for family in families:
        if want is None:
            after_preview[family] = (False, [], [])
        else:
            rules, jumps = migration.desired_rules(tag, want, params["local"])
            after_preview[family] = (True, rules, jumps)
    if module._diff:
        result["diff"] = dict(
            before="".join("# %s\n%s" % (f, migration.describe(before[f])) for f in families),
            after="".join("# %s\n%s" % (f, migration.describe(after_preview[f])) for f in families))
    result["changed"] = bool(plan)

    if plan and not module.check_mode:
        done = []
        for owner, family, payload, previous in plan:
            rc, out, err = owner.restore(family, payload.encode())
            if rc != 0:
                undo_errors = _undo(tag, done, params["local"])
                module.fail_json(msg="%s-restore (%s backend) rejected the change for %s: %s. %s"
                                     % (PREFIX[family], owner.backend, family, (err or out).strip(),
                                        "The families changed before were put back." if not undo_errors
                                        else "Putting back the families changed before failed too: %s"
                                        % "; ".join(undo_errors)),
                                 planned=result["planned"])
            done.append((owner, family, previous))
        # the kernel's view afterwards must be what was asked for
        for family in families:
            now = tables.read(family, tag)
            if migration.restore_payload(tag, now, want, params["local"]) is not None:
                module.fail_json(msg="after the change the %s rules tagged %s are not as requested: %s"
                                     % (family, tag, migration.describe(now) or "(none)"))
    final = before if module.check_mode else dict((f, tables.read(f, tag)) for f in families)
    result["redirects"] = dict((f, migration.redirects_of(final[f][1])) for f in families)
    return result


def _plan_only(module, tag, want):
    params = module.params
    empty = (False, [], [])
    result = dict(changed=False, backend=params["backend"], planned={}, other_backend={},
                  redirects=dict((f, {}) for f in params["families"]))
    if want is not None:
        for family in params["families"]:
            result["planned"][family] = migration.restore_payload(tag, empty, want, params["local"])
        result["changed"] = True
        if module._diff:
            rules, jumps = migration.desired_rules(tag, want, params["local"])
            shown = migration.describe((True, rules, jumps))
            result["diff"] = dict(before="", after="".join("# %s\n%s" % (f, shown) for f in params["families"]))
    return result


def _undo(tag, done, local):
    errors = []
    for owner, family, previous in reversed(done):
        now = owner.read(family, tag)
        want = migration.redirects_of(previous[1]) if (previous[0] or previous[2]) else None
        payload = migration.restore_payload(tag, now, want or None, local)
        if payload:
            rc, out, err = owner.restore(family, payload.encode())
            if rc != 0:
                errors.append("%s: %s" % (family, (err or out).strip()))
    return errors


def main():
    module = AnsibleModule(
        argument_spec=dict(
            redirects=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent", "query"]),
            tag=dict(type="str", default="tgproxy-migrate"),
            families=dict(type="list", elements="str", default=["ipv4", "ipv6"], choices=["ipv4", "ipv6"]),
            local=dict(type="bool", default=True),
            backend=dict(type="str", default="auto", choices=["auto", "nft", "legacy"]),
        ),
        required_if=[("state", "present", ["redirects"])],
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
