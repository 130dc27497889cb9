"""Three-service topology behind HAProxy (real HAProxy, mtg, Caddy, Pebble)."""

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

# the behaviour every router topology shares
from router_tests import *  # noqa: E402,F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from router_tests import assert_mtg_changes_are_blue_green, listeners, main_pid  # noqa: E402
from config_property import assert_daemon_accepts_every_accepted_input  # noqa: E402
from testbed_helpers import (  # noqa: E402,F401  pylint: disable=unused-import
    DOMAIN, PROJECT, alternate_hosts, assert_ssh_through_443, child_pids, converge, count_lines, doctor, host_ip,
    on_one_host, pebble_root, reloaded, wait_for)

SCENARIO = "haproxy"
JOURNAL = "journalctl -u haproxy --no-pager -o cat"
SNAPSHOT = ("sha256sum /etc/haproxy/haproxy.cfg /etc/sysctl.d/90-tgproxy.conf; cat /proc/sys/net/core/somaxconn;"
            " systemctl show haproxy -p MainPID -p ActiveEnterTimestamp")


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


def mtg_servers_up(host):
    """Servers of the mtg backend that HAProxy's health checks count as usable (its Prometheus exporter)."""
    metric = 'haproxy_backend_active_servers{proxy="mtg"}'
    return int(host.check_output("curl -fsS http://127.0.0.1:8405/metrics | grep -F '%s '" % metric).split()[-1])


@pytest.fixture()
def router():
    # one_host: where a reload runs with no load (HAProxy 2.6; 3.0 reloads under load in the blue/green test)
    return {"scenario": SCENARIO, "unit": "haproxy", "config": "/etc/haproxy/haproxy.cfg", "one_host": "debian12",
            "change": ["haproxy_inspect_delay=4s"], "changed_text": "inspect-delay 4s",
            "reload_handler": "RUNNING HANDLER [tgproxy.stealth.haproxy : Reload haproxy]",
            "mtg_servers_up": mtg_servers_up}


def test_listeners_and_bind_addresses(host):
    assert listeners(host, "haproxy") == ["0.0.0.0:443", "0.0.0.0:80", "127.0.0.1:8405", "[::]:443", "[::]:80"]
    assert listeners(host, "caddy") == ["127.0.0.1:2019", "127.0.0.1:8080", "127.0.0.1:8443"]


def test_ssh_through_443_reaches_the_real_sshd(host, tmp_path):
    """SSH multiplexed on :443 by the client's banner; the SSH backend gets no PROXY header."""
    assert_ssh_through_443(host, host_ip(host), tmp_path, "haproxy")
    cfg = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert "server sshd 127.0.0.1:22 check" in cfg


def test_router_config_never_terminates_tls(host):
    cfg = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert " ssl " not in cfg and "crt " not in cfg
    assert "send-proxy-v2" in cfg and "timeout tunnel 1h" in cfg and "option tcpka" in cfg


def test_port_80_is_passed_on_at_layer_4(host):
    """HAProxy parses and answers nothing on :80: a TCP frontend passes every connection to Caddy's HTTP listener."""
    cfg = host.file("/etc/haproxy/haproxy.cfg").content_string
    http_in = cfg[cfg.index("frontend http_in"):cfg.index("frontend prometheus")]
    assert "mode http" not in http_in and "redirect" not in http_in and "acme_http" not in http_in, http_in
    assert "default_backend web.http" in http_in and "server web_http 127.0.0.1:8080\n" in http_in, http_in
    logged = count_lines(host, JOURNAL, " http_in web.http/web_http ")
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "http://%s/tgproxy-layer4" % host_ip(host)],
                   capture_output=True, timeout=20, check=False)
    # a TCP log line, once the connection has closed (no request line: HAProxy never read the request)
    assert wait_for(lambda: count_lines(host, JOURNAL, " http_in web.http/web_http ") > logged)
    assert count_lines(host, JOURNAL, "/tgproxy-layer4") == 0


def test_router_logs_the_routed_sni(host):
    controller_ip = host.check_output("ip route show default").split()[2]
    logged = {sni: count_lines(host, JOURNAL, "sni=" + sni) for sni in ("other.example.net", DOMAIN)}
    for sni in ("other.example.net", DOMAIN):
        subprocess.run(["openssl", "s_client", "-connect", "%s:443" % host_ip(host), "-servername", sni],
                       input="", capture_output=True, text=True, timeout=20, check=False)
    # HAProxy logs a session once both its sides have closed, after the client is gone, and the journal takes
    # the line in after that
    wait_for(lambda: all(count_lines(host, JOURNAL, "sni=" + sni) > n for sni, n in logged.items()))
    journal = host.check_output("journalctl -u haproxy --no-pager -n 200")
    assert re.search(r"%s:\d+ .* tls_in web/web .* sni=other.example.net" % re.escape(controller_ip), journal), journal[-2000:]
    assert re.search(r"%s:\d+ .* tls_in mtg/mtg .* sni=%s" % (re.escape(controller_ip), re.escape(DOMAIN)), journal)


def test_prometheus_exporter_on_loopback(host):
    assert "haproxy_process_" in host.check_output("curl -fsS http://127.0.0.1:8405/metrics")


CASES = {
    "maxconn-above-open-file-limit": (['{"tgproxy_router": {"maxconn": 20000}}'], "needs 41024 open files"),
    # of its kind (a duration), so only haproxy's own check of the candidate file refuses it (timer overflow)
    "rejected-by-haproxy": (["haproxy_inspect_delay=999999999d"], "haproxy -c"),
    "inspect-delay-of-another-kind": (["haproxy_inspect_delay=soon"],
                                      "TGP954 [haproxy_inspect_delay] 'soon'"),
    "mtg-public-behind-router": (["mtg_bind_to=0.0.0.0:3128"], "TGP301"),
    "second-mtg-on-the-first-ones-port": (["tgproxy_mtg_alternate_bind=127.0.0.1:3128"],
                                          "tgproxy_mtg_alternate_bind (mtg.alternate_bind)"),
    "capacity-negative": (['{"tgproxy_capacity": {"connections": -1}}'], "TGP701"),
    "capacity-memory-too-small": (['{"tgproxy_capacity": {"connections": 7000, "memory_mb": 300, '
                                   '"new_per_second": 100000}}'], "300 MiB cannot hold 7000 connections"),
    "proxy-mismatch": (['{"tgproxy_router": {"maxconn": 9000, "backends": {"mtg": {"address": "127.0.0.1:3128"},'
                        ' "web": {"address": "127.0.0.1:8443", "send_proxy": "none"}}}}'], "TGP102"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_leaves_the_running_router_alone(host, case):
    alternate_hosts(host, CASES, case, both=["rejected-by-haproxy"])
    extra, expected = CASES[case]
    before = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert host.check_output(SNAPSHOT) == before
    assert host.service("haproxy").is_running


def test_doctor_fails_on_a_router_with_a_proxy_mismatch(host):
    """A weakened deploy: HAProxy stops sending the PROXY header the web server waits for (edited on the host,
    past the validator, which rejects this as TGP102). Every client routed to the web server now hangs or is
    dropped; the doctor fails on those probes and names tgproxy_proxy_protocol."""
    on_one_host(host, "debian12", "the doctor's probes are the same on both")
    cfg = "/etc/haproxy/haproxy.cfg"
    workers = child_pids(host, main_pid(host, "haproxy"))
    host.run_expect([0], r"sed -i '/^backend web$/,/^$/s/ send-proxy-v2//' %s && haproxy -c -q -f %s"
                    r" && systemctl reload haproxy" % (cfg, cfg))
    try:
        # the reload only signals the master: wait for the new workers to be the ones that accept
        wait_for(lambda: reloaded(host, 443, workers))
        assert "server web 127.0.0.1:8443 check" in host.file(cfg).content_string
        proc, text, rows = doctor(host.backend.get_hostname())
    finally:
        assert converge(SCENARIO, host.backend.get_hostname(), []).returncode == 0
    print("\n".join(rows))
    assert proc.returncode != 0
    different = {row.split()[0] for row in rows if " DIFFERENT " in row}
    # the names routed straight to the web server break; the magic SNI (mtg fronts with its own header) does not
    assert {"random_sni", "no_sni", "other_site_sni"} <= different, rows
    assert "magic_sni" not in different
    assert "tgproxy_proxy_protocol" in text
    assert "send-proxy-v2" in host.file(cfg).content_string


@pytest.mark.parametrize("daemon", ["haproxy", "caddy", "mtg"])
def test_every_input_the_model_accepts_gives_a_config_the_daemon_accepts(host, daemon):
    """Random valid topologies and random strings of every kind, rendered by the roles' templates and the model's
    renderer, checked by the daemon installed on the host (molecule/resources/tests/config_property.py)."""
    assert_daemon_accepts_every_accepted_input(host.backend.get_hostname(), daemon)


def test_a_change_of_mtg_under_load_goes_blue_green_and_drops_nothing(host, router, tmp_path):
    """HAProxy 3.0 (Debian 13): the second instance, a hitless reload, the drain; a killed play resumes."""
    on_one_host(host, "debian13", "the switch under load behind nginx stream runs on debian12")
    assert_mtg_changes_are_blue_green(host, router, tmp_path)
