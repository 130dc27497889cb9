# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kernel and daemon limits derived from one declared capacity.

Part of the collection's topology model (validator.py checks a topology's
capacity section with it); used by the ``tgp_tuning`` filter, the
``tuning`` role, the validator and the capacity benchmark.

The operator declares what the host must carry::

    connections: 10000       # concurrent client connections (MTProto sessions + website)
    new_per_second: 500      # connection attempts per second in a burst
    memory_mb: 2048          # memory the proxy may use (kernel sockets + daemons)
    keepalive_seconds: 300   # idle time before TCP keepalive probes (NAT-friendly)

and :func:`derive` returns every value that has to agree with it: the
router's ``maxconn``, mtg's ``concurrency``, nginx's ``worker_connections`` and
``worker_rlimit_nofile``, each daemon's ``LimitNOFILE`` and the sysctls, each
sysctl with the policy ``sysctl_set`` applies it with (``at_least``: never
lowers a higher value the host already has; ``widen``: a range is only ever
made wider; ``exact``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import math

CAPACITY_DEFAULTS = {
    "connections": 10000,
    "new_per_second": 500,
    "memory_mb": None,  # not checked when unset
    "keepalive_seconds": 300,
}
# (minimum, maximum) a value may take; outside is a typo or a unit mistake
CAPACITY_BOUNDS = {
    "connections": (1, 1000000),
    "new_per_second": (1, 200000),
    "memory_mb": (64, 4 * 1024 * 1024),
    "keepalive_seconds": (30, 7200),
}
# Estimated memory per routed idle connection, all hops together: five kernel
# sockets (client->router, router->mtg both ends, mtg->Telegram, plus the web
# hop's share), the router's per-session state and mtg's two goroutines and
# relay buffers. The capacity benchmark (tests/benchmark/capacity.py) measures
# the real figure per daemon; this stays above it.
BYTES_PER_CONNECTION = 64 * 1024
BASE_MEMORY_MB = 256            # system, daemons at rest, page cache the site needs
FD_HEADROOM = 1024              # files a daemon opens besides connections
DEFAULT_PORT_RANGE = (32768, 60999)
MAX_PORTS = 65535 - 1024 + 1     # ephemeral ports one source address has towards one backend
NR_OPEN_DEFAULT = 1048576
SOMAXCONN_MIN, SOMAXCONN_MAX = 4096, 65535
SYN_BACKLOG_MIN, SYN_BACKLOG_MAX = 4096, 262144
POLICIES = ("at_least", "widen", "exact")


class CapacityError(ValueError):
    """Bad capacity input; ``problems`` lists each one (variable, message)."""

    def __init__(self, problems):
        self.problems = problems
        super(CapacityError, self).__init__("; ".join("%s: %s" % item for item in problems))


def _pow2_at_least(value):
    return 1 << max(0, int(math.ceil(math.log(max(1, value), 2))))


def _clamp(value, low, high):
    return max(low, min(high, value))


def capacity_problems(capacity, prefix="tgproxy_capacity"):
    """Every problem of a capacity dict, as (variable, message) pairs."""
    problems = []
    if capacity is None:
        capacity = {}
    if not isinstance(capacity, dict):
        return [(prefix, "must be a mapping of %s, not %r" % (", ".join(sorted(CAPACITY_DEFAULTS)), capacity))]
    for key in sorted(set(capacity) - set(CAPACITY_DEFAULTS)):
        problems.append(("%s.%s" % (prefix, key), "is not a capacity setting (known: %s)"
                         % ", ".join(sorted(CAPACITY_DEFAULTS))))
    for key, (low, high) in sorted(CAPACITY_BOUNDS.items()):
        value = capacity.get(key, CAPACITY_DEFAULTS[key])
        if value is None and CAPACITY_DEFAULTS[key] is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value), 10)
            except ValueError:
                problems.append(("%s.%s" % (prefix, key), "is %r; expected a whole number from %d to %d"
                                 % (value, low, high)))
                continue
        if not low <= value <= high:
            problems.append(("%s.%s" % (prefix, key), "is %d; expected %d to %d%s" % (
                value, low, high, " (megabytes, not bytes)" if key == "memory_mb" and value > high else "")))
    if not problems:
        cap = normalise_capacity(capacity)
        need = memory_needed_mb(cap["connections"])
        memory = cap["memory_mb"]
        if memory is not None and memory < need:
            problems.append(("%s.memory_mb" % prefix,
                             "%d MiB cannot hold %d connections: they need about %d MiB (%d KiB each plus %d MiB "
                             "for the system). Fix: raise %s.memory_mb to %d or lower %s.connections to %d"
                             % (int(memory), cap["connections"], need, BYTES_PER_CONNECTION // 1024,
                                BASE_MEMORY_MB, prefix, need, prefix, max_connections(int(memory)))))
    return problems


def normalise_capacity(capacity):
    cap = dict(CAPACITY_DEFAULTS)
    for key, value in (capacity or {}).items():
        if key in cap and value is not None:
            cap[key] = int(str(value), 10)
    return cap


def memory_needed_mb(connections):
    return BASE_MEMORY_MB + int(math.ceil(connections * BYTES_PER_CONNECTION / (1024.0 * 1024.0)))


def max_connections(memory_mb):
    return max(0, (memory_mb - BASE_MEMORY_MB) * 1024 * 1024 // BYTES_PER_CONNECTION)


def nofile_for(connections):
    """LimitNOFILE of a daemon holding two sockets per connection."""
    return 2 * connections + FD_HEADROOM


def connections_for_nofile(nofile):
    """The connections a daemon holding two sockets per connection can have with ``nofile`` open files."""
    return max(0, (int(nofile) - FD_HEADROOM) // 2)


def hard_nofile(limits_text):
    """The hard open-file limit in a /proc/<pid>/limits text: an int, or 'unlimited'."""
    for line in limits_text.splitlines():
        if line.startswith("Max open files"):
            hard = line[len("Max open files"):].split()[1]
            return hard if hard == "unlimited" else int(hard)
    raise ValueError("no 'Max open files' line in the limits text")


def nofile_shortfall(limits_text, needed, subject, consequence, fix):
    """None when the host's hard open-file limit holds ``needed``, else the message that says so.

    systemd silently clamps a unit's LimitNOFILE to what it may grant, so a
    daemon sized above the host's hard limit starts and then fails accepts.
    ``fix`` may name ``{fit}``: the connections the hard limit holds at two
    sockets each.
    """
    hard = hard_nofile(limits_text)
    if hard == "unlimited" or hard >= int(needed):
        return None
    return ("%s, but this host's hard open-file limit is %d: %s. Fix: %s, or raise the host's limit "
            "(systemd DefaultLimitNOFILE / the container's nofile ulimit)."
            % (subject, hard, consequence, fix.format(fit=connections_for_nofile(hard))))


def router_maxconn(connections):
    """Room for every declared connection plus a quarter (web visitors, bursts, health checks)."""
    return connections + max(1024, connections // 4)


def nginx_workers(maxconn, cpus=1):
    """nginx sizing for ``maxconn`` routed sessions: each is two connections (client + upstream)."""
    cpus = max(1, int(cpus or 1))
    per_worker = int(math.ceil(2.0 * int(maxconn) / cpus)) + 512
    return {"worker_processes": cpus, "worker_connections": per_worker,
            "worker_rlimit_nofile": per_worker + FD_HEADROOM}


def derive(capacity, cpus=1, router_kind=None, backend_loopback=True, prefix="tgproxy_capacity"):
    """All values that follow from ``capacity``; raises :class:`CapacityError`.

    ``router_kind``: ``haproxy``, ``nginx_stream``, ``sslh`` or None (mtg owns
    :443). ``backend_loopback``: whether the router reaches its backends on
    loopback (the kernel then already reuses TIME_WAIT ports for that hop).
    """
    problems = capacity_problems(capacity, prefix)
    if not problems and router_kind is not None and normalise_capacity(capacity)["connections"] > MAX_PORTS:
        problems.append(("%s.connections" % prefix,
                         "is %d, but a router reaches mtg from one address with at most %d source ports. Fix: "
                         "lower it to %d or spread the load over more hosts"
                         % (normalise_capacity(capacity)["connections"], MAX_PORTS, MAX_PORTS)))
    if problems:
        raise CapacityError(problems)
    cap = normalise_capacity(capacity)
    cpus = max(1, int(cpus or 1))
    conns = cap["connections"]
    out = {
        "capacity": cap,
        "memory_needed_mb": memory_needed_mb(conns),
        "mtg_concurrency": conns,
        "mtg_nofile": nofile_for(conns),
        "router_maxconn": None,
        "router_nofile": None,
        "nginx_worker_processes": None,
        "nginx_worker_connections": None,
        "nginx_worker_rlimit_nofile": None,
    }
    nofiles = [out["mtg_nofile"]]
    if router_kind is not None:
        maxconn = router_maxconn(conns)
        out["router_maxconn"] = maxconn
        out["router_nofile"] = nofile_for(maxconn)
        nofiles.append(out["router_nofile"])
        if router_kind == "nginx_stream":
            workers = nginx_workers(maxconn, cpus)
            out["nginx_worker_processes"] = workers["worker_processes"]
            out["nginx_worker_connections"] = workers["worker_connections"]
            out["nginx_worker_rlimit_nofile"] = workers["worker_rlimit_nofile"]
            nofiles.append(workers["worker_rlimit_nofile"])
    backlog = _clamp(_pow2_at_least(cap["new_per_second"]), SOMAXCONN_MIN, SOMAXCONN_MAX)
    sysctl = {
        "net.core.somaxconn": backlog,
        "net.ipv4.tcp_max_syn_backlog": _clamp(_pow2_at_least(2 * cap["new_per_second"]),
                                               SYN_BACKLOG_MIN, SYN_BACKLOG_MAX),
        "fs.nr_open": max([NR_OPEN_DEFAULT] + nofiles),
        "fs.file-max": 2 * sum(nofiles) + 65536,
        "net.ipv4.tcp_keepalive_time": cap["keepalive_seconds"],
        "net.ipv4.tcp_keepalive_intvl": 30,
        "net.ipv4.tcp_keepalive_probes": 5,
    }
    policies = dict.fromkeys(sysctl, "at_least")
    for key in ("net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"):
        policies[key] = "exact"
    if router_kind is not None:
        # one ephemeral port per router->backend connection to the same backend
        default_width = DEFAULT_PORT_RANGE[1] - DEFAULT_PORT_RANGE[0] + 1
        if conns > default_width * 0.8:
            low = max(1024, 65535 - int(conns * 1.25))
            sysctl["net.ipv4.ip_local_port_range"] = "%d 65535" % low
            policies["net.ipv4.ip_local_port_range"] = "widen"
        if not backend_loopback:
            # 2 (the default) reuses TIME_WAIT for loopback only
            sysctl["net.ipv4.tcp_tw_reuse"] = 1
            policies["net.ipv4.tcp_tw_reuse"] = "exact"
    out["sysctl"] = sysctl
    out["policies"] = policies
    return out


def _ints(value):
    return [int(part) for part in str(value).split()]


def merge_value(current, desired, policy, allow_lower=False):
    """The value to apply for one key given what the host has now.

    Returns (value, note): note is ``kept_higher`` when the host's own value
    wins, else None.
    """
    if policy not in POLICIES:
        raise ValueError("unknown policy %r (expected one of %s)" % (policy, ", ".join(POLICIES)))
    if current is None or allow_lower or policy == "exact":
        return str(desired), None
    cur, want = _ints(current), _ints(desired)
    if policy == "at_least":
        if len(cur) != 1 or len(want) != 1:
            raise ValueError("at_least needs one number, got %r and %r" % (current, desired))
        return (str(cur[0]), "kept_higher") if cur[0] > want[0] else (str(want[0]), None)
    if len(cur) != 2 or len(want) != 2:
        raise ValueError("widen needs a range of two numbers, got %r and %r" % (current, desired))
    low, high = min(cur[0], want[0]), max(cur[1], want[1])
    merged = "%d %d" % (low, high)
    return merged, ("kept_higher" if [low, high] != want else None)


def same_value(a, b):
    """sysctl values compare as whitespace-separated words (``1024\\t65535`` == ``1024 65535``)."""
    return str(a).split() == str(b).split()
