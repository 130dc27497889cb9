# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Derivation of daemon limits and sysctls from the declared capacity."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.tgproxy.stealth.plugins.module_utils import tuning


def test_defaults_for_haproxy():
    got = tuning.derive({}, cpus=2, router_kind="haproxy")
    assert got["mtg_concurrency"] == 10000
    assert got["router_maxconn"] == 12500
    assert got["router_nofile"] == 2 * 12500 + 1024
    assert got["mtg_nofile"] == 2 * 10000 + 1024
    assert got["nginx_worker_connections"] is None
    s = got["sysctl"]
    assert s["net.core.somaxconn"] == 4096 and s["net.ipv4.tcp_max_syn_backlog"] == 4096
    assert s["fs.nr_open"] == 1048576
    assert s["fs.file-max"] >= 2 * (got["router_nofile"] + got["mtg_nofile"])
    assert s["net.ipv4.tcp_keepalive_time"] == 300
    # 12500 routed connections fit the default ephemeral range; loopback hop reuses TIME_WAIT already
    assert "net.ipv4.ip_local_port_range" not in s and "net.ipv4.tcp_tw_reuse" not in s
    assert got["policies"]["net.core.somaxconn"] == "at_least"
    assert got["policies"]["net.ipv4.tcp_keepalive_time"] == "exact"


def test_mtg_direct_has_no_router_values():
    got = tuning.derive({"connections": 2000}, router_kind=None)
    assert got["router_maxconn"] is None and got["router_nofile"] is None
    assert got["mtg_concurrency"] == 2000
    assert "net.ipv4.ip_local_port_range" not in got["sysctl"]


def test_nginx_stream_workers_hold_two_connections_per_session():
    got = tuning.derive({"connections": 10000}, cpus=2, router_kind="nginx_stream")
    assert got["nginx_worker_processes"] == 2
    assert got["nginx_worker_connections"] * 2 >= 2 * got["router_maxconn"]
    assert got["nginx_worker_rlimit_nofile"] > got["nginx_worker_connections"]
    assert got["sysctl"]["fs.nr_open"] >= got["nginx_worker_rlimit_nofile"]


def test_large_capacity_widens_port_range_and_backlogs():
    got = tuning.derive({"connections": 60000, "new_per_second": 20000}, cpus=2, router_kind="haproxy",
                        backend_loopback=False)
    s = got["sysctl"]
    low, high = [int(x) for x in s["net.ipv4.ip_local_port_range"].split()]
    assert high == 65535 and high - low + 1 >= 60000
    assert got["policies"]["net.ipv4.ip_local_port_range"] == "widen"
    assert s["net.ipv4.tcp_tw_reuse"] == 1
    assert s["net.core.somaxconn"] == 32768
    assert s["net.ipv4.tcp_max_syn_backlog"] == 65536


def test_backlog_is_capped():
    got = tuning.derive({"new_per_second": 200000}, router_kind="haproxy")
    assert got["sysctl"]["net.core.somaxconn"] == 65535
    assert got["sysctl"]["net.ipv4.tcp_max_syn_backlog"] == 262144


@pytest.mark.parametrize("capacity,variable,words", [
    ({"connections": -5}, "tgproxy_capacity.connections", "expected 1 to 1000000"),
    ({"connections": 0}, "tgproxy_capacity.connections", "expected 1 to"),
    ({"connections": 50000000}, "tgproxy_capacity.connections", "expected 1 to"),
    ({"connections": "many"}, "tgproxy_capacity.connections", "whole number"),
    ({"connections": True}, "tgproxy_capacity.connections", "whole number"),
    ({"new_per_second": 0}, "tgproxy_capacity.new_per_second", "expected 1 to"),
    ({"memory_mb": 2147483648}, "tgproxy_capacity.memory_mb", "megabytes, not bytes"),
    ({"memory_mb": 512, "connections": 20000}, "tgproxy_capacity.memory_mb", "cannot hold 20000 connections"),
    ({"keepalive_seconds": 5}, "tgproxy_capacity.keepalive_seconds", "expected 30 to 7200"),
    ({"conections": 10}, "tgproxy_capacity.conections", "not a capacity setting"),
    ({"connections": 70000}, "tgproxy_capacity.connections", "at most 64512 source ports"),
])
def test_bad_capacity_names_the_variable(capacity, variable, words):
    with pytest.raises(tuning.CapacityError) as exc:
        tuning.derive(capacity, router_kind="haproxy")
    assert [p[0] for p in exc.value.problems] == [variable]
    assert words in exc.value.problems[0][1]


def test_memory_error_gives_both_fixes():
    problems = tuning.capacity_problems({"memory_mb": 512, "connections": 20000})
    msg = problems[0][1]
    assert "raise tgproxy_capacity.memory_mb to %d" % tuning.memory_needed_mb(20000) in msg
    assert "lower tgproxy_capacity.connections to %d" % tuning.max_connections(512) in msg
    assert tuning.capacity_problems({"memory_mb": tuning.memory_needed_mb(20000), "connections": 20000}) == []


def test_every_problem_at_once():
    problems = tuning.capacity_problems({"connections": -1, "new_per_second": -1, "bogus": 1})
    assert [p[0] for p in problems] == ["tgproxy_capacity.bogus", "tgproxy_capacity.connections",
                                        "tgproxy_capacity.new_per_second"]


@pytest.mark.parametrize("current,desired,policy,allow_lower,expected", [
    ("128", "4096", "at_least", False, ("4096", None)),
    ("8192", "4096", "at_least", False, ("8192", "kept_higher")),
    ("8192", "4096", "at_least", True, ("4096", None)),
    ("7200", "300", "exact", False, ("300", None)),
    ("32768 60999", "10240 65535", "widen", False, ("10240 65535", None)),
    ("1024 50000", "10240 65535", "widen", False, ("1024 65535", "kept_higher")),
    ("1024 50000", "10240 65535", "widen", True, ("10240 65535", None)),
    (None, "4096", "at_least", False, ("4096", None)),
])
def test_merge_value(current, desired, policy, allow_lower, expected):
    assert tuning.merge_value(current, desired, policy, allow_lower) == expected


def test_merge_value_rejects_shape_mismatch():
    with pytest.raises(ValueError):
        tuning.merge_value("1 2", "3", "at_least")
    with pytest.raises(ValueError):
        tuning.merge_value("1", "3", "widen")
    with pytest.raises(ValueError):
        tuning.merge_value("1", "3", "lower")


@settings(max_examples=200, deadline=None)
@given(connections=st.integers(1, 64512), rate=st.integers(1, 200000), cpus=st.integers(1, 64),
       kind=st.sampled_from([None, "haproxy", "nginx_stream", "sslh"]), loopback=st.booleans())
def test_derived_values_are_consistent(connections, rate, cpus, kind, loopback):
    got = tuning.derive({"connections": connections, "new_per_second": rate}, cpus=cpus, router_kind=kind,
                        backend_loopback=loopback)
    s = got["sysctl"]
    limits = [got["mtg_nofile"]]
    assert got["mtg_concurrency"] == connections and got["mtg_nofile"] >= 2 * connections
    if kind:
        assert got["router_maxconn"] >= connections
        assert got["router_nofile"] >= 2 * got["router_maxconn"]
        limits.append(got["router_nofile"])
    if kind == "nginx_stream":
        assert got["nginx_worker_connections"] * cpus >= 2 * got["router_maxconn"]
        limits.append(got["nginx_worker_rlimit_nofile"])
    # systemd cannot give a daemon more files than fs.nr_open
    assert s["fs.nr_open"] >= max(limits)
    assert s["fs.file-max"] >= sum(limits)
    assert 4096 <= s["net.core.somaxconn"] <= 65535
    assert s["net.ipv4.tcp_max_syn_backlog"] >= min(s["net.core.somaxconn"], 262144)
    if "net.ipv4.ip_local_port_range" in s:
        low, high = [int(x) for x in s["net.ipv4.ip_local_port_range"].split()]
        assert 1024 <= low < high == 65535 and high - low + 1 >= min(connections, 64512)
    assert set(got["policies"]) == set(s)
