"""Kernel parameters and daemon limits derived from tgproxy_capacity.

The haproxy scenario declares connections 7000, new_per_second 5000 (see
molecule.yml); the container may set its own network keys, not the global
fs.* ones (prepare.yml).
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

from testbed_helpers import converge, on_one_host  # noqa: E402

SCENARIO = "haproxy"
DROPIN = "/etc/sysctl.d/90-tgproxy.conf"
NET_KEYS = ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


def _proc(key):
    return "/proc/sys/" + key.replace(".", "/")


def _live(host, key):
    return " ".join(host.file(_proc(key)).content_string.split())


def _set_live(host, key, value):
    host.run_expect([0], "echo %s > %s" % (value, _proc(key)))


def _dropin(host):
    lines = host.file(DROPIN).content_string.splitlines()
    return dict(line.split(" = ", 1) for line in lines if " = " in line and not line.startswith("#"))


def test_derived_values_are_in_the_dropin_and_live(host):
    conf = _dropin(host)
    assert host.file(DROPIN).mode == 0o644
    assert conf["net.core.somaxconn"] == "8192"
    assert int(conf["net.ipv4.tcp_max_syn_backlog"]) >= 16384
    assert (conf["net.ipv4.tcp_keepalive_time"], conf["net.ipv4.tcp_keepalive_intvl"],
            conf["net.ipv4.tcp_keepalive_probes"]) == ("300", "30", "5")
    assert int(conf["fs.nr_open"]) >= 1048576 and int(conf["fs.file-max"]) >= 2 * (18524 + 15024)
    for key in NET_KEYS:
        assert _live(host, key) == conf[key], key


def test_daemon_limits_follow_the_capacity(host):
    assert re.search(r"^\s*maxconn 8750$", host.file("/etc/haproxy/haproxy.cfg").content_string, re.M)
    assert re.search(r"^concurrency = 7000$", host.file("/etc/mtg/config.toml").content_string, re.M)
    unit = host.file("/etc/systemd/system/haproxy.service.d/tgproxy.conf").content_string
    assert "LimitNOFILE=18524" in unit


def test_never_lowers_and_check_diff_tell_the_truth(host):
    on_one_host(host, "debian12", "the other host sets a key the container cannot (the same module)")
    name = host.backend.get_hostname()
    _set_live(host, "net.core.somaxconn", 16384)          # the host has more than derived
    _set_live(host, "net.ipv4.tcp_keepalive_time", 7200)  # drifted back to the kernel default
    try:
        check = converge(SCENARIO, name, [], "--check", "--diff")
        assert check.returncode == 0, check.stdout[-3000:]
        assert "-net.ipv4.tcp_keepalive_time = 7200" in check.stdout
        assert "+net.ipv4.tcp_keepalive_time = 300" in check.stdout
        assert "+net.core.somaxconn = 16384" in check.stdout  # the file keeps the host's higher value
        assert _live(host, "net.ipv4.tcp_keepalive_time") == "7200"  # check mode touched nothing
        assert _dropin(host)["net.core.somaxconn"] == "8192"

        run = converge(SCENARIO, name, [])
        assert run.returncode == 0, run.stdout[-3000:]
        assert "net.core.somaxconn: 16384 -> 16384 (kept_higher)" in run.stdout
        assert "net.ipv4.tcp_keepalive_time: 7200 -> 300 (applied)" in run.stdout
        assert _live(host, "net.core.somaxconn") == "16384"
        assert _dropin(host)["net.core.somaxconn"] == "16384"
        assert _live(host, "net.ipv4.tcp_keepalive_time") == "300"
    finally:
        _set_live(host, "net.core.somaxconn", 8192)
        assert converge(SCENARIO, name, []).returncode == 0
    assert _dropin(host)["net.core.somaxconn"] == "8192"


def test_a_key_the_container_cannot_set_is_reported_not_hidden(host):
    on_one_host(host, "debian13", "the other host lowers nothing and tells the truth in check mode (the same module)")
    name = host.backend.get_hostname()
    before = _live(host, "fs.nr_open")
    extra = ['{"tuning_extra_sysctl": {"fs.nr_open": %d}}' % (int(before) * 2)]
    try:
        run = converge(SCENARIO, name, extra)
        assert run.returncode == 0, run.stdout[-3000:]
        assert re.search(r"fs\.nr_open = %d was written to %s but not applied live: read-only here"
                         % (int(before) * 2, DROPIN), re.sub(r"\s+", " ", run.stdout + run.stderr))
        assert _live(host, "fs.nr_open") == before
        strict = converge(SCENARIO, name, extra + ["tuning_fail_on_unapplied=true"])
        assert strict.returncode != 0 and "could not apply fs.nr_open" in strict.stdout + strict.stderr
    finally:
        assert converge(SCENARIO, name, []).returncode == 0
    assert "fs.nr_open" not in _dropin(host) or _dropin(host)["fs.nr_open"] == before
