# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration of a live mtg-on-:443 host to an SNI router (sni-router-setup.txt section 8).

Pure functions shared by the modules ``iptables_redirect`` and ``tcp_drain``,
the filter ``tgp_stage_binds`` (the router's listeners during a stage) and the
unit tests:

* staged listeners: a router brought up next to a live proxy listens on spare
  ports first (``{443: [10443]}``), then on both, then on its own ports;
* the NAT redirect that moves *new* connections from a public port to the
  router's spare port.  Connections established before the rule keep their
  conntrack entry, so they stay with the old instance until they end: this is
  what makes the swap free of drops.  Rules live in one chain named after a
  tag, jumped to from PREROUTING (and OUTPUT for the host's own clients), each
  rule carrying the tag as its comment, so that they can always be found and
  removed;
* established TCP connections on a local port, read from /proc/net/tcp{,6}.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.tgproxy.stealth.plugins.module_utils import topology as model
from ansible_collections.tgproxy.stealth.plugins.module_utils import values

FAMILIES = ("ipv4", "ipv6")
# /proc/net/tcp state of an established connection
TCP_ESTABLISHED = "01"


def stage_binds(binds, ports):
    """Listeners of a stage: each bind whose port is a key of ``ports`` is opened on those ports instead.

    ``ports`` maps a port (int or str) to one port or a list of ports, e.g.
    ``{443: [10443]}`` (spare port only), ``{443: [443, 10443]}`` (both).
    Unmapped binds are kept.  Order: bind order, then port order; no duplicates.
    """
    mapping = {}
    for key, value in (ports or {}).items():
        targets = value if isinstance(value, (list, tuple)) else [value]
        mapping[int(key)] = [int(p) for p in targets]
    out = []
    for bind in binds or []:
        host, port = model.split_hostport(bind)
        shown = "[%s]" % host if ":" in host else host
        for target in mapping.get(port, [port]):
            addr = "%s:%d" % (shown, target)
            if addr not in out:
                out.append(addr)
    return out


def check_tag(tag):
    """The tag is the rules' comment and (upper-cased) the chain's name."""
    if not values.is_stage_tag(tag or ""):
        raise ValueError("tag %r: use 1-23 lowercase letters, digits or '-', starting with a letter "
                         "(it names the iptables chain)" % (tag,))
    return tag.upper()


def normalise_redirects(redirects):
    """{public port: spare port} from a dict or a list of {port, to_port}; checked."""
    if isinstance(redirects, dict):
        pairs = list(redirects.items())
    else:
        pairs = [(item.get("port"), item.get("to_port")) for item in redirects or []]
    out = {}
    for port, to_port in pairs:
        try:
            port, to_port = int(port), int(to_port)
        except (TypeError, ValueError):
            raise ValueError("redirects: %r -> %r is not a pair of port numbers" % (port, to_port))
        for value in (port, to_port):
            if not 0 < value < 65536:
                raise ValueError("redirects: port %d is outside 1-65535" % value)
        if port == to_port:
            raise ValueError("redirects: port %d redirected to itself" % port)
        out[port] = to_port
    if not out:
        raise ValueError("redirects: give at least one port and its spare port, e.g. {443: 10443}")
    return dict(sorted(out.items()))


def desired_rules(tag, redirects, local=True):
    """The rules (iptables-save syntax, nat table) for a redirect set: (chain rules, jump rules)."""
    chain = check_tag(tag)
    rules = ["-A %s -p tcp -m tcp --dport %d -m comment --comment %s -j REDIRECT --to-ports %d"
             % (chain, port, tag, to_port) for port, to_port in sorted(redirects.items())]
    jumps = ["-A PREROUTING -m comment --comment %s -j %s" % (tag, chain)]
    if local:
        # the host's own clients (connections to one of its addresses)
        jumps.append("-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment %s -j %s" % (tag, chain))
    return rules, jumps


def tagged_rules(save_output, tag):
    """(chain exists, chain rules, jump rules) of ``tag`` in an iptables-save dump of the nat table."""
    chain = check_tag(tag)
    exists, rules, jumps = False, [], []
    table = None
    for line in save_output.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        if table != "nat":
            continue
        if line.startswith(":%s " % chain):
            exists = True
        elif line.startswith("-A %s " % chain):
            rules.append(line)
        elif line.startswith("-A ") and line.endswith(" -j %s" % chain):
            jumps.append(line)
    return exists, rules, jumps


def redirects_of(rules):
    """{port: to_port} the chain rules redirect."""
    out = {}
    for rule in rules:
        match = re.search(r"--dport (\d+) .*--to-ports (\d+)", rule)
        if match:
            out[int(match.group(1))] = int(match.group(2))
    return out


def restore_payload(tag, current, redirects=None, local=True):
    """The ``iptables-restore --noflush`` input that takes ``current`` to the desired state.

    ``current`` is (exists, rules, jumps) from :func:`tagged_rules`; ``redirects``
    None means remove everything tagged.  Returns None when nothing changes.
    One payload is one transaction: the kernel sees the old or the new rule set.
    """
    chain = check_tag(tag)
    exists, rules, jumps = current
    lines = []
    if redirects is None:
        if not exists and not jumps:
            return None
        lines += ["-D" + jump[2:] for jump in jumps]
        if exists:
            lines += ["-F %s" % chain, "-X %s" % chain]
    else:
        want_rules, want_jumps = desired_rules(tag, redirects, local)
        if exists and rules == want_rules and sorted(jumps) == sorted(want_jumps):
            return None
        # declaring the chain creates it, or empties it in --noflush mode
        lines.append(":%s - [0:0]" % chain)
        lines += want_rules
        lines += ["-D" + jump[2:] for jump in jumps if jump not in want_jumps]
        # first in their chains: nothing before may accept or rewrite the packet
        lines += ["-I %s 1 %s" % tuple(jump.split(" ", 2)[1:]) for jump in want_jumps if jump not in jumps]
    return "*nat\n%s\nCOMMIT\n" % "\n".join(lines)


def describe(current):
    """Readable rule list (for --diff): jumps then chain rules."""
    exists, rules, jumps = current
    if not exists and not jumps:
        return ""
    return "\n".join(jumps + rules) + "\n"


def established(proc_tables, port, exclude_self=False):
    """Number of established TCP connections whose local port is ``port``.

    ``proc_tables`` are the texts of /proc/net/tcp and /proc/net/tcp6.
    ``exclude_self`` leaves out the host's connections to its own address
    (the same address on both ends), e.g. mtg measuring its own site through
    its own :443: nobody's session.
    """
    count = 0
    for text in proc_tables:
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != TCP_ESTABLISHED:
                continue
            try:
                local_ip, local_port = fields[1].rsplit(":", 1)
                remote_ip = fields[2].rsplit(":", 1)[0]
                local_port = int(local_port, 16)
            except (IndexError, ValueError):
                continue
            if local_port == port and not (exclude_self and local_ip == remote_ip):
                count += 1
    return count


def loops_of_unit(ss_text, unit, remote_port):
    """The established TCP connections a systemd unit holds to this host itself (the same address on both ends) on
    ``remote_port``, each named by its local end. Sorted.

    ``ss_text`` is the output of ``ss -Htne state established``: its ``cgroup:`` field names the unit that owns
    each socket (the kernel's socket diagnostics; no privilege over the unit's processes needed, unlike
    /proc/PID/fd). Used for the connections an mtg instance makes through the router's public port: its own
    site measurement, which the router sends to the instance live then, where each holds one connection that
    is nobody's session. Only connections to the host's own address count: mtg's connections to Telegram's DCs
    are on port 443 too, and each one belongs to a client's session.
    """
    service = unit if "." in unit else unit + ".service"
    found = []
    for line in ss_text.splitlines():
        fields = line.split()
        cgroup = re.search(r"\bcgroup:(\S+)", line)
        if len(fields) < 4 or not cgroup or cgroup.group(1).rsplit("/", 1)[-1] != service:
            continue
        local, peer = fields[2], fields[3]
        try:
            local_ip, peer_ip, peer_port = local.rsplit(":", 1)[0], peer.rsplit(":", 1)[0], int(peer.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
        if peer_port == remote_port and local_ip == peer_ip:
            found.append(local)
    return sorted(found)
