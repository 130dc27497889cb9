"""nginx web backend with certificates from acme.sh (real nginx, acme.sh, Pebble, BIND)."""

import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

from testbed_helpers import (  # noqa: E402,F401  pylint: disable=unused-import
    DOMAIN, alternate_hosts, assert_doctor_passes, assert_reference_mode_ran, child_pids, converge, count_lines, host_ip,
    leaf_certificate, on_one_host, pebble_root, reloaded, wait_for)

SCENARIO = "nginx_acme"
CERT_DIR = "/var/lib/acme.sh/%s_ecc" % DOMAIN
ACCESS_LOG = "/var/log/nginx/tgproxy-web.access.log"
SNAPSHOT = (
    "sha256sum /etc/nginx/sites-available/tgproxy-web.conf /etc/ssl/tgproxy/*.pem /etc/systemd/system/acme-sh-renew.*"
    " %s/fullchain.cer; systemctl show nginx -p MainPID -p ActiveEnterTimestamp" % CERT_DIR
)


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


def _vars(host):
    return host.ansible.get_variables()


def _serial(host):
    return re.search(r"serial=(\w+)", leaf_certificate("%s:443" % host_ip(host), DOMAIN)).group(1)


def _nginx_pid(host):
    return host.check_output("systemctl show nginx -p MainPID --value")


def _renew_argv(host):
    """The renewal unit's own command, turned into a forced renewal of the site."""
    unit = host.file("/etc/systemd/system/acme-sh-renew.service").content_string
    user = re.search(r"^User=(.+)$", unit, re.M).group(1)
    command = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1).replace("--cron", "--renew -d %s --ecc --force" % DOMAIN)
    return command if user == "root" else "runuser -u %s -- %s" % (user, command)


def test_nginx_listens_where_configured(host):
    out = host.check_output("ss -Htlne")
    nginx = sorted(line.split()[3] for line in out.splitlines() if "/nginx.service" in line)
    assert nginx == ["0.0.0.0:80", "127.0.0.1:8443", "[::]:80"]


def test_acme_sh_runs_as_configured(host):
    v = _vars(host)
    user = v["acme_sh_user"]
    home = host.file("/var/lib/acme.sh")
    assert home.user == user and home.mode == 0o700
    for path in ("/etc/ssl/tgproxy/privkey.pem", "%s/%s.key" % (CERT_DIR, DOMAIN)):
        key = host.file(path)
        assert key.user == user and key.mode == 0o600, path
    conf = host.file("%s/%s.conf" % (CERT_DIR, DOMAIN)).content_string
    if v["acme_sh_challenge"] == "dns-01":
        assert "Le_Webroot='dns_nsupdate'" in conf
        creds = host.file("/var/lib/acme.sh/dns-credentials.env")
        assert creds.mode == 0o600 and "NSUPDATE_KEY=" in creds.content_string
    else:
        assert "Le_Webroot='/var/www/acme-challenge'" in conf
    if user == "root":
        assert not host.file("/etc/sudoers.d/tgproxy-acme-sh").exists
    else:
        rules = host.check_output("sudo -l -U %s" % user)
        assert "NOPASSWD: /usr/bin/systemctl reload nginx" in rules
        assert "ALL) ALL" not in rules
    if v["acme_sh_install_method"] == "release":
        script = host.file("/opt/acme.sh/acme.sh")
        assert script.user == "root" and script.mode == 0o755 and "VER=3.1.1" in script.content_string
        # its user can run acme.sh but not change it
        assert host.run("runuser -u %s -- test -w /opt/acme.sh/acme.sh" % user).rc != 0
    else:
        assert host.package("acme.sh").is_installed


def test_site_certificate_issued_by_the_acme_ca(host, pebble_root):
    ip = host_ip(host)
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:443" % ip, "-servername", DOMAIN, "-CAfile", pebble_root,
         "-verify_return_error", "-verify_hostname", DOMAIN, "-brief"],
        input="", capture_output=True, text=True, timeout=20, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Verification: OK" in out, out
    info = leaf_certificate("%s:443" % ip, DOMAIN)
    print(info)
    assert "DNS:%s" % DOMAIN in info and "Pebble" in info.split("issuer=")[1]
    page = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", pebble_root, "--resolve", "%s:443:%s" % (DOMAIN, ip),
         "https://%s/" % DOMAIN],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert page.returncode == 0 and "Northwind Field Notes" in page.stdout, page.stderr


def test_web_backend_sees_the_real_client_address(host):
    controller_ip = host.check_output("ip route show default").split()[2]
    logged = count_lines(host, "cat " + ACCESS_LOG, "probe=client-address")
    page = subprocess.run(
        ["curl", "-sk", "--max-time", "10", "--resolve", "%s:443:%s" % (DOMAIN, host_ip(host)),
         "https://%s/?probe=client-address" % DOMAIN],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert page.returncode == 0
    # nginx logs a request after it has sent the response (on a kept-alive connection, before the client closes)
    wait_for(lambda: count_lines(host, "cat " + ACCESS_LOG, "probe=client-address") > logged)
    lines = [line for line in host.check_output("tail -n 50 /var/log/nginx/tgproxy-web.access.log").splitlines()
             if "probe=client-address" in line]
    assert lines and lines[-1].startswith(controller_ip + " "), lines


def test_tls_listener_requires_proxy_protocol(host):
    url = "https://%s:8443/" % DOMAIN
    without = host.run("curl -sS --max-time 5 -k --resolve %s:8443:127.0.0.1 %s" % (DOMAIN, url))
    assert without.rc != 0
    with_header = host.run("curl -sS --max-time 5 -k --haproxy-protocol --resolve %s:8443:127.0.0.1 %s" % (DOMAIN, url))
    assert with_header.rc == 0 and "Northwind Field Notes" in with_header.stdout


def test_http_serves_acme_tokens_and_redirects_without_the_internal_port(host):
    token = "tgp-probe-%d" % time.time()
    # (the DNS-01 host has no token directory of its own: the server serves it anyway)
    host.run_expect([0], "mkdir -p /var/www/acme-challenge/.well-known/acme-challenge && "
                         "echo %s > /var/www/acme-challenge/.well-known/acme-challenge/%s" % (token, token))
    base = "http://%s" % host_ip(host)
    got = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "Host: " + DOMAIN,
                          "%s/.well-known/acme-challenge/%s" % (base, token)],
                         capture_output=True, text=True, timeout=20, check=False)
    host.run_expect([0], "rm -f /var/www/acme-challenge/.well-known/acme-challenge/%s" % token)
    assert got.stdout.strip() == token
    head = subprocess.run(["curl", "-sI", "--max-time", "10", "-H", "Host: " + DOMAIN, base + "/some/page?x=1"],
                          capture_output=True, text=True, timeout=20, check=False).stdout
    assert head.startswith("HTTP/1.1 301")
    assert "Location: https://%s/some/page?x=1\n" % DOMAIN in head, head


def test_renewal_timer_runs_and_does_not_reissue_a_valid_certificate(host):
    assert host.service("acme-sh-renew.timer").is_enabled
    assert host.service("acme-sh-renew.timer").is_running
    before = _serial(host)
    host.run_expect([0], "systemctl start acme-sh-renew.service")
    assert "Result=success" in host.check_output("systemctl show acme-sh-renew.service -p Result")
    assert _serial(host) == before


def test_forced_renewal_reloads_nginx_without_dropping_an_open_connection(host):
    size = 40 * 1024 * 1024
    host.run_expect([0], "head -c %d /dev/urandom > /var/www/site/big.bin" % size)
    before_serial, before_pid = _serial(host), _nginx_pid(host)
    workers = child_pids(host, before_pid)
    site = host.file("/etc/nginx/sites-available/tgproxy-web.conf").content_string
    # straight to nginx's TLS listener (HTTP/2 where it is on), with the PROXY
    # header it expects; slow enough for the download to span the renewal
    download = subprocess.Popen(
        ["docker", "exec", host.backend.get_hostname(), "curl", "-sSk", "--max-time", "60", "--limit-rate", "2500K",
         "-o", "/dev/null", "-w", "%{http_version} %{size_download}", "--resolve", "%s:8443:127.0.0.1" % DOMAIN]
        + (["--haproxy-protocol"] if " proxy_protocol" in site else [])
        + ["https://%s:8443/big.bin" % DOMAIN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # the download's connection is open before the renewal starts (docker exec and the handshake take time)
        wait_for(lambda: '"curl"' in host.check_output("ss -Htnp state established '( dport = :8443 )'"))
        time.sleep(1.5)
        renew = host.run(_renew_argv(host))
        assert renew.rc == 0, renew.stdout + renew.stderr
        assert "Reload success" in renew.stdout + renew.stderr
        assert download.poll() is None, "the download ended before the renewal finished; nothing was proven"
        out, err = download.communicate(timeout=60)
    finally:
        if download.poll() is None:
            download.kill()
        host.run("rm -f /var/www/site/big.bin")
    assert download.returncode == 0, err + host.run("tail -n 5 /var/log/nginx/error.log").stdout
    assert out.split()[-1] == str(size)
    # systemctl reload only signals the master: wait for the new workers to be the ones that accept
    wait_for(lambda: reloaded(host, 8443, workers))
    assert _serial(host) != before_serial
    # reloaded, not restarted
    assert _nginx_pid(host) == before_pid


def test_rerun_does_not_reissue_and_changes_nothing(host):
    before, snap = _serial(host), host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), [])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"changed=0\s", out), out
    assert _serial(host) == before and host.check_output(SNAPSHOT) == snap


def test_check_diff_on_a_converged_host_changes_nothing(host):
    snap = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), [], "--check", "--diff")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"changed=0\s", out), out
    assert host.check_output(SNAPSHOT) == snap


@pytest.fixture()
def other_key(host):
    """A valid key that does not belong to the site's certificate."""
    host.run_expect([0], "install -D -m 0600 /etc/testbed/acme.stealth.test.key /etc/ssl/tgproxy-test/other.key")
    yield "/etc/ssl/tgproxy-test/other.key"
    host.run("rm -rf /etc/ssl/tgproxy-test")


def test_manual_certificate_backend_accepts_a_matching_pair(host):
    on_one_host(host, "debian13", "the manual-certificate bad inputs alternate between both")
    snap = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), ["tgproxy_web_backend=manual_cert"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Require a certificate that matches the key" in out
    assert host.check_output(SNAPSHOT) == snap


CASES = {
    "missing-domain": (["mtg_domain="], "TGP501 [mtg_domain (domain)]"),
    "acme-email": (["acme_sh_email=not-an-address"], "[acme_sh_email] 'not-an-address' is not an e-mail address"),
    "acme-ca-not-https": (["acme_sh_ca=http://acme.stealth.test:14000/dir"], "[acme_sh_ca]"),
    "key-outside-cert-dirs": (["nginx_web_ssl_certificate_key=/var/www/site/privkey.pem"],
                              "[nginx_web_ssl_certificate_key] '/var/www/site/privkey.pem' is outside the certificate directories"),
    "proxy-allow-empty": (['{"nginx_web_proxy_allow": []}'], "nginx_web_proxy_allow"),
    # no protocol at all: of its kind (a list of TLS protocol names), refused only by nginx's own check
    "rejected-by-nginx": (['{"nginx_web_ssl_protocols": []}'], "nginx: configuration file /etc/nginx/nginx.conf test failed"),
    "tls-protocol-of-another-kind": (['{"nginx_web_ssl_protocols": ["TLSv9"]}'],
                                     "TGP954 [nginx_web_ssl_protocols] ['TLSv9']"),
    "manual-cert-missing": (["tgproxy_web_backend=manual_cert", "nginx_web_ssl_certificate=/etc/ssl/tgproxy-test/none.pem"],
                            "both files must exist"),
    "manual-key-mismatch": (["tgproxy_web_backend=manual_cert", "nginx_web_ssl_certificate_key=/etc/ssl/tgproxy-test/other.key"],
                            "the certificate does not match the key /etc/ssl/tgproxy-test/other.key"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_and_host_is_unchanged(host, other_key, case):
    alternate_hosts(host, CASES, case, both=["rejected-by-nginx"])
    extra, expected = CASES[case]
    before = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert host.check_output(SNAPSHOT) == before
    assert host.service("nginx").is_running


def test_doctor_finds_the_proxy_indistinguishable_from_its_website_and_from_an_ordinary_one(host):
    """mtg on :443 in front of nginx: every probe pair identical or a listed known difference, also against the
    scenario's ordinary nginx site."""
    ref = assert_doctor_passes(host.backend.get_hostname(), host.file("/etc/mtg/secret").content_string.strip())
    assert_reference_mode_ran(host, ref)
