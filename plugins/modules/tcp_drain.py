#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tcp_drain
short_description: Wait until the established TCP connections on a local port have ended, up to a deadline
version_added: "0.1.0"
description:
  - Counts the established TCP connections (IPv4 and IPv6) whose local port is I(port), from
    C(/proc/net/tcp) and C(/proc/net/tcp6), and waits until none are left or I(deadline) seconds have
    passed. It never closes anything itself; it reports how many connections ended on their own and how
    many were still open at the deadline, so that the caller can close those deliberately and say so.
  - Used after the swap of a migration, when the old instance on the port gets no new connections.
  - Changes nothing on the host (C(changed) is always false). In check mode it reports the current count
    without waiting.
extends_documentation_fragment:
  - tgproxy.stealth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  port:
    description: Local port of the connections to wait for.
    type: int
    required: true
  deadline:
    description: Seconds to wait at most.
    type: float
    required: true
  exclude_self:
    description:
      - Leave out the host's connections to its own address (the same address on both ends), such as mtg's
        measurement of its own site through its own :443 when it owns that port. Connections from loopback to
        a loopback listener (a router in front) are left out too, so only for a port clients reach directly.
    type: bool
    default: false
  loops_unit:
    description:
      - A systemd unit whose connections to the host's own I(loops_port) pass through a router to this port and are
        nobody's session, left out of the count. An mtg measures its own site through the router at its start (and
        keeps those connections open a few minutes); the router sends them to the instance live then. In a
        blue/green switch that is the old instance, for the new instance's measurement, so the new instance's unit
        is given here. (The old instance's own measurement at its start went elsewhere, to the instance before it
        or to the website, and is not left out.)
      - Found by the socket's cgroup, which C(ss -e) reads from the kernel's socket diagnostics (iproute2); no
        privilege over the unit's processes is needed. Only connections to the host's own address (the same address
        on both ends) count, as mtg's connections to Telegram's DCs, on port 443 too, carry clients' sessions.
    type: str
  loops_port:
    description: The port I(loops_unit) reaches the router on.
    type: int
    default: 443
  loops:
    description:
      - Only these of I(loops_unit)'s connections are left out, while they last (the C(loops) of a count made
        just before the router switched to another instance). A connection opened after the switch reached the
        new instance; left out of the old one's count, it would hide one of that instance's sessions.
      - Without it, every such connection of I(loops_unit) is left out.
    type: list
    elements: str
  interval:
    description: Seconds between two counts.
    type: float
    default: 1.0
author:
  - tgproxy.stealth contributors (@tgproxy)
"""

EXAMPLES = r"""
- name: Let the old mtg's sessions end on their own (at most 30 minutes)
  tgproxy.stealth.tcp_drain:
    port: 443
    deadline: 1800

- name: Count the old mtg's sessions at a switch, less the new mtg's site measurement that reached it
  tgproxy.stealth.tcp_drain:
    port: 3128
    deadline: 0
    loops_unit: mtg-green
  register: at_switch
"""

RETURN = r"""
at_start:
  description: Established connections when the wait began.
  returned: always
  type: int
remaining:
  description: Established connections still open when the wait ended (0 = drained).
  returned: always
  type: int
drained:
  description: Whether every connection ended before the deadline.
  returned: always
  type: bool
elapsed:
  description: Seconds waited.
  returned: always
  type: float
loops:
  description: The connections of I(loops_unit) left out when the wait began, each named by its local end as
    C(/proc/net/tcp) writes it; pass them as I(loops) to a later wait.
  returned: always
  type: list
  elements: str
samples:
  description: C([seconds, count]) pairs, one per count (at most 200, evenly thinned).
  returned: always
  type: list
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import migration

TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def count(module, port, exclude_self=False, loops_port=443, loops_unit=None, only=None, ss=None):
    """The connections on ``port`` less the loops, and the loops left out."""
    texts = []
    for path in TABLES:
        try:
            with open(path) as handle:
                texts.append(handle.read())
        except (IOError, OSError):
            continue
    total = migration.established(texts, port, exclude_self)
    loops = []
    if loops_unit:
        rc, out, err = module.run_command([ss, "-Htne", "state", "established", "( dport = :%d )" % loops_port])
        if rc != 0:
            module.fail_json(msg="[loops_unit] ss (iproute2) could not list the connections to port %d: %s"
                             % (loops_port, (err or out).strip()))
        loops = migration.loops_of_unit(out, loops_unit, loops_port)
        if only is not None:
            loops = [loop for loop in loops if loop in only]
    return max(0, total - len(loops)), loops


def main():
    module = AnsibleModule(
        argument_spec=dict(
            port=dict(type="int", required=True),
            deadline=dict(type="float", required=True),
            interval=dict(type="float", default=1.0),
            exclude_self=dict(type="bool", default=False),
            loops_port=dict(type="int", default=443),
            loops_unit=dict(type="str"),
            loops=dict(type="list", elements="str"),
        ),
        required_by=dict(loops=["loops_unit"]),
        supports_check_mode=True,
    )
    port, deadline = module.params["port"], module.params["deadline"]
    if not 0 < port < 65536 or deadline < 0 or module.params["interval"] <= 0:
        module.fail_json(msg="port must be 1-65535, deadline >= 0 and interval > 0")
    start = time.time()
    ss = None
    if module.params["loops_unit"]:
        ss = module.get_bin_path("ss")
        if not ss:
            module.fail_json(msg="[loops_unit] needs ss (Debian package iproute2) to find the unit's connections")
    options = dict(exclude_self=module.params["exclude_self"], loops_port=module.params["loops_port"],
                   loops_unit=module.params["loops_unit"], only=module.params["loops"], ss=ss)
    first, loops = count(module, port, **options)
    current = first
    samples = [[0.0, first]]
    while current and not module.check_mode and time.time() - start < deadline:
        time.sleep(min(module.params["interval"], max(0.0, deadline - (time.time() - start))))
        current = count(module, port, **options)[0]
        samples.append([round(time.time() - start, 1), current])
    if len(samples) > 200:
        step = len(samples) / 200.0
        samples = [samples[int(i * step)] for i in range(199)] + [samples[-1]]
    module.exit_json(changed=False, at_start=first, remaining=current, loops=loops, drained=current == 0,
                     elapsed=round(time.time() - start, 1), samples=samples)


if __name__ == "__main__":
    main()
