"""Three-service topology behind sslh (real sslh 1.20 fork / 2.1 select, mtg, Caddy, OpenSSH, Pebble)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

# the router behaviour that does not depend on PROXY protocol or on the router owning :80
from router_tests import (  # noqa: E402,F401  pylint: disable=unused-import
    MTProtoSession, assert_a_further_instance_restarts_only_with_the_opt_in, listeners, main_pid, secret_of,
    test_doctor_finds_the_proxy_indistinguishable_from_its_website_and_from_an_ordinary_one,
    test_every_other_client_gets_the_website, test_public_headers_name_no_internal_port_and_http3_only_where_it_answers,
    test_faketls_with_the_secret_through_the_router, test_mtg_listens_on_loopback_only_and_is_not_reachable_from_outside,
    test_verify_playbook_passes)
from config_property import assert_daemon_accepts_every_accepted_input  # noqa: E402
from testbed_helpers import (  # noqa: E402,F401  pylint: disable=unused-import
    DOMAIN, alternate_hosts, assert_ssh_through_443, converge, host_ip, on_one_host, pebble_root, wait_for, web_answers)

SCENARIO = "sslh"
SNAPSHOT = ("sha256sum /etc/sslh/sslh.cfg /etc/systemd/system/sslh.service.d/tgproxy.conf; systemctl show sslh -p MainPID;"
            # the transparent mode's state (debian13 has it, debian12 not)
            "ip -4 rule; ip -4 route show table all; cat /proc/sys/net/ipv4/conf/*/route_localnet; "
            "systemctl is-active tgproxy-sslh-transparent "
            "|| true; ls /etc/sslh")


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


def flavour(host):
    return host.ansible.get_variables()["sslh_flavour"]


def test_sslh_listens_on_443_for_ipv4_and_ipv6_and_web_owns_80(host):
    """IPv4 and IPv6; IPv4 only in transparent mode (TGP208)."""
    assert host.service("sslh").is_running and host.service("sslh").is_enabled
    tls = sorted(host.check_output("ss -Htln sport = :443 | awk '{print $4}'").split())
    transparent = host.ansible.get_variables().get("tgproxy_router", {}).get("transparent")
    assert tls == (["0.0.0.0:443"] if transparent else ["0.0.0.0:443", "[::]:443"])
    cfg = host.file("/etc/sslh/sslh.cfg").content_string
    # never TLS-terminating, no PROXY header (distribution sslh has none)
    assert "proxy_protocol" not in cfg and "cert" not in cfg.lower()
    unit = host.check_output("systemctl show sslh -p ExecStart --value")
    binary = {"fork": "/usr/sbin/sslh ", "select": "/usr/sbin/sslh-select "}[flavour(host)]
    assert binary in unit and "-F/etc/sslh/sslh.cfg" in unit
    assert "caddy" in host.check_output("ss -Htlne sport = :80")


def test_ssh_through_443_reaches_the_real_sshd(host, tmp_path):
    assert_ssh_through_443(host, host_ip(host), tmp_path, "sslh")


def test_a_config_change_restarts_sslh_and_only_then(host):
    """sslh has no reload: a change restarts it (fork keeps open connections, select cuts them); no change, no restart."""
    pid = main_pid(host, "sslh")
    proc = converge(SCENARIO, host.backend.get_hostname(), [])
    assert proc.returncode == 0 and "Restart sslh" not in proc.stdout, proc.stdout[-3000:]
    assert main_pid(host, "sslh") == pid

    session = MTProtoSession(host_ip(host), secret_of(host))
    try:
        assert session.echo(4096)
        proc = converge(SCENARIO, host.backend.get_hostname(), ["sslh_timeout=4"])
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "RUNNING HANDLER [tgproxy.stealth.sslh : Restart sslh]" in proc.stdout
        assert "timeout: 4;" in host.file("/etc/sslh/sslh.cfg").content_string
        assert main_pid(host, "sslh") != pid
        if flavour(host) == "fork":
            # the connection's own process lives on
            assert session.echo(4096)
        else:
            with pytest.raises((EOFError, OSError)):
                session.echo(4096)
    finally:
        session.close()
        assert converge(SCENARIO, host.backend.get_hostname(), []).returncode == 0


def test_with_mtg_stopped_other_names_still_get_the_website(host, pebble_root):
    """sslh has no health checks: the magic SNI then gets a closed connection (README: known limits)."""
    host.run_expect([0], "systemctl stop mtg")
    try:
        for sni, served in ((DOMAIN, False), ("other.example.net", True)):
            answered, out = web_answers(host_ip(host), sni, pebble_root, "caddy")
            assert answered is served, (sni, out)
    finally:
        host.run_expect([0], "systemctl start mtg")
        # Type=simple: started is not yet listening (the tests after this one reach mtg through sslh)
        assert wait_for(lambda: "127.0.0.1:3128" in listeners(host, "mtg")), listeners(host, "mtg")


BAD_INPUT = [
    ("PROXY protocol asked of sslh", ["tgproxy_proxy_protocol=true"], "TGP107"),
    ("a config sslh cannot parse", ["sslh_timeout=0"], "[sslh_timeout]"),
    ("a flavour sslh does not have", ["sslh_flavour=threads"], "TGP004 [sslh_flavour (router.flavour)]"),
    ("sslh-select sized above what select() holds",
     ["sslh_flavour=select", '{"tgproxy_capacity": {"connections": 2000}}'], "TGP210"),
    ("transparent mode on [::]", ['{"tgproxy_router": {"transparent": true}}'], "TGP208"),
    ("a variable of an earlier version (the netfilter mark), named, not ignored",
     ['{"tgproxy_router": {"transparent": true, "listen": ["0.0.0.0:443"]}, "sslh_transparent_mark": 1}'],
     "[sslh_transparent_mark]"),
]


@pytest.mark.parametrize("case,extra,expected", BAD_INPUT)
def test_bad_input_leaves_the_running_router_alone(host, case, extra, expected):
    alternate_hosts(host, [row[0] for row in BAD_INPUT], case)
    before = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), extra)
    assert proc.returncode != 0, case
    assert expected in proc.stdout + proc.stderr, (case, proc.stdout[-3000:])
    assert host.check_output(SNAPSHOT) == before
    assert host.service("sslh").is_running


def test_every_input_the_model_accepts_gives_a_config_the_daemon_accepts(host):
    """Random valid topologies (routes, SNI names, suffixes, ALPN tokens, backend names, ports, timeouts, PROXY
    flags), rendered by the role's template and checked by the sslh installed on the host
    (molecule/resources/tests/config_property.py)."""
    assert_daemon_accepts_every_accepted_input(host.backend.get_hostname(), "sslh")


def test_a_further_instance_behind_sslh_is_restarted_by_a_change_only_with_the_opt_in(host, tmp_path):
    """sslh cannot switch to a second slot hitlessly: a further instance has one, and a change of it that would cut
    a session stops in the check play until tgproxy_mtg_restart_ok (molecule/resources/tests/router_tests.py)."""
    on_one_host(host, "debian12", "the check play's opt-in is the same with either flavour")
    assert_a_further_instance_restarts_only_with_the_opt_in(host, tmp_path, SCENARIO)
