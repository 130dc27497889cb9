"""Three-service topology behind HAProxy (real HAProxy, mtg, Caddy, Pebble)."""

import http.client
import os
import re
import socket
import ssl
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "resources", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "plugins", "module_utils"))

import _faketls  # noqa: E402  (stdlib-only module_utils, imported by path)
from testbed_helpers import DOMAIN, converge, host_ip, leaf_certificate, pebble_root  # noqa: E402,F401  pylint: disable=unused-import

SCENARIO = "haproxy"
SNAPSHOT = ("sha256sum /etc/haproxy/haproxy.cfg /etc/sysctl.d/90-tgproxy.conf; cat /proc/sys/net/core/somaxconn;"
            " systemctl show haproxy -p MainPID -p ActiveEnterTimestamp")


def _listeners(host, unit):
    return sorted(line.split()[3] for line in host.check_output("ss -Htlne").splitlines() if "/%s.service" % unit in line)


def _secret(host):
    return host.file("/etc/mtg/secret").content_string.strip()


def _pid(host):
    return host.check_output("systemctl show haproxy -p MainPID --value")


def test_listeners_and_bind_addresses(host):
    assert _listeners(host, "haproxy") == ["0.0.0.0:443", "0.0.0.0:80", "127.0.0.1:8405", "[::]:443", "[::]:80"]
    assert _listeners(host, "mtg") == ["127.0.0.1:3128", "127.0.0.1:3129"]
    assert _listeners(host, "caddy") == ["127.0.0.1:2019", "127.0.0.1:8080", "127.0.0.1:8443"]


def test_mtg_is_not_reachable_from_outside(host):
    with pytest.raises(OSError):
        socket.create_connection((host_ip(host), 3128), timeout=3)


def test_router_config_never_terminates_tls(host):
    cfg = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert " ssl " not in cfg and "crt " not in cfg
    assert "send-proxy-v2" in cfg and "timeout tunnel 1h" in cfg and "option tcpka" in cfg


def test_faketls_with_the_secret_through_the_router(host):
    key = _secret(host)[2:34]
    result = _faketls.selftest(host_ip(host), 443, bytes.fromhex(key), DOMAIN, timeout=10)
    assert result["ok"] is True, result
    wrong = bytes.fromhex("%032x" % (int(key, 16) ^ 1))
    assert _faketls.selftest(host_ip(host), 443, wrong, DOMAIN, timeout=10)["step"] == "verify_server_hmac"


@pytest.mark.parametrize("sni", ["random-name.example.net", DOMAIN, None])
def test_every_other_client_gets_the_website(host, sni, pebble_root):
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:443" % host_ip(host), "-CAfile", pebble_root, "-verify_return_error",
         "-verify_hostname", DOMAIN, "-brief"] + (["-servername", sni] if sni else ["-noservername"]),
        input="", capture_output=True, text=True, timeout=20, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Verification: OK" in out, out


def test_web_sees_the_real_client_address_and_router_logs_the_sni(host):
    controller_ip = host.check_output("ip route show default").split()[2]
    # router -> web directly (another SNI, the site's Host), and router -> mtg -> web (the magic SNI)
    for sni, probe in (("other.example.net", "router-web"), (DOMAIN, "router-mtg-web")):
        request = "GET /?probe=%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (probe, DOMAIN)
        subprocess.run(["openssl", "s_client", "-connect", "%s:443" % host_ip(host), "-servername", sni, "-quiet"],
                       input=request, capture_output=True, text=True, timeout=20, check=False)
        log = host.check_output("grep probe=%s /var/log/caddy/access.log | tail -1" % probe)
        assert '"remote_ip":"%s"' % controller_ip in log, (probe, log)
    journal = host.check_output("journalctl -u haproxy --no-pager -n 200")
    assert re.search(r"%s:\d+ .* tls_in web/web .* sni=other.example.net" % re.escape(controller_ip), journal), journal[-2000:]
    assert re.search(r"%s:\d+ .* tls_in mtg/mtg .* sni=%s" % (re.escape(controller_ip), re.escape(DOMAIN)), journal)


def test_port_80_acme_passthrough_and_redirect(host):
    ip = host_ip(host)
    acme = subprocess.run(["curl", "-sI", "--max-time", "10", "-H", "Host: " + DOMAIN,
                           "http://%s/.well-known/acme-challenge/unknown-token" % ip], capture_output=True, text=True, check=False).stdout
    # Caddy answers (308), not the router's 301
    assert not acme.startswith("HTTP/1.1 301"), acme
    head = subprocess.run(["curl", "-sI", "--max-time", "10", "-H", "Host: " + DOMAIN, "http://%s/some/page?x=1" % ip],
                          capture_output=True, text=True, check=False).stdout
    assert head.startswith("HTTP/1.1 301")
    assert re.search(r"(?im)^location: https://%s/some/page\?x=1$" % re.escape(DOMAIN), head), head


def test_prometheus_exporter_on_loopback(host):
    assert "haproxy_process_" in host.check_output("curl -fsS http://127.0.0.1:8405/metrics")


def test_verify_playbook_passes(host, pebble_root):
    proc = converge(SCENARIO, host.backend.get_hostname(), ["tgproxy_verify_ca_cert=" + pebble_root])
    assert proc.returncode == 0
    cmd = ["ansible-playbook", "-i", os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "inventory"), "--limit",
           host.backend.get_hostname(), os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", "verify.yml"),
           "-e", "tgproxy_verify_ca_cert=" + pebble_root]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    text = out.stdout + out.stderr
    print(text[-3000:])
    assert out.returncode == 0, text
    assert text.count("PASS  ") == 6 and "FAIL  " not in text
    assert _secret(host) not in text


def test_config_change_reloads_without_dropping_an_open_connection(host):
    """A keep-alive connection opened before the reload still answers after it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host_ip(host), 443, context=ctx, timeout=30)
    conn.request("GET", "/?probe=before-reload", headers={"Host": DOMAIN})
    first = conn.getresponse()
    assert first.status == 200 and b"Northwind Field Notes" in first.read()
    sock, pid = conn.sock, _pid(host)
    try:
        proc = converge(SCENARIO, host.backend.get_hostname(), ["haproxy_inspect_delay=4s"])
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "RUNNING HANDLER [tgproxy.stealth.haproxy : Reload haproxy]" in proc.stdout
        assert "inspect-delay 4s" in host.file("/etc/haproxy/haproxy.cfg").content_string
        conn.request("GET", "/?probe=after-reload", headers={"Host": DOMAIN})
        second = conn.getresponse()
        assert second.status == 200 and b"Northwind Field Notes" in second.read()
        # the same TCP connection, through the same HAProxy master
        assert conn.sock is sock
        assert _pid(host) == pid
    finally:
        conn.close()
        assert converge(SCENARIO, host.backend.get_hostname(), []).returncode == 0


def test_website_still_served_on_443_with_mtg_stopped(host, pebble_root):
    host.run_expect([0], "systemctl stop mtg")
    try:
        time.sleep(5)  # two failed health checks
        for sni in (DOMAIN, "other.example.net"):
            proc = subprocess.run(["openssl", "s_client", "-connect", "%s:443" % host_ip(host), "-servername", sni,
                                   "-CAfile", pebble_root, "-verify_return_error", "-verify_hostname", DOMAIN, "-brief"],
                                  input="", capture_output=True, text=True, timeout=20, check=False)
            assert proc.returncode == 0 and "Verification: OK" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    finally:
        host.run_expect([0], "systemctl start mtg")


CASES = {
    "maxconn-above-open-file-limit": (['{"tgproxy_router": {"maxconn": 20000}}'], "needs 41024 open files"),
    "rejected-by-haproxy": (["haproxy_inspect_delay=soon"], "haproxy -c"),
    "mtg-public-behind-router": (["mtg_bind_to=0.0.0.0:3128"], "TGP301"),
    "capacity-negative": (['{"tgproxy_capacity": {"connections": -1}}'], "TGP701"),
    "capacity-memory-too-small": (['{"tgproxy_capacity": {"connections": 8000, "memory_mb": 300, '
                                   '"new_per_second": 100000}}'], "300 MiB cannot hold 8000 connections"),
    "proxy-mismatch": (['{"tgproxy_router": {"maxconn": 9000, "backends": {"mtg": {"address": "127.0.0.1:3128"},'
                        ' "web": {"address": "127.0.0.1:8443", "send_proxy": "none"}}}}'], "TGP102"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_leaves_the_running_router_alone(host, case):
    extra, expected = CASES[case]
    before = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert host.check_output(SNAPSHOT) == before
    assert host.service("haproxy").is_running
