"""Behaviour of the two-service topology as a user sees it (real mtg, real Caddy)."""

import base64
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import testinfra

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
sys.path.insert(0, os.path.join(PROJECT, "plugins", "module_utils"))
sys.path.insert(0, os.path.join(PROJECT, "tests", "testbed"))

import _faketls  # noqa: E402  (stdlib-only module_utils, imported by path)

sys.path.insert(0, os.path.join(PROJECT, "molecule", "resources", "tests"))

from testbed_helpers import (  # noqa: E402,F401  pylint: disable=unused-import
    DOMAIN, assert_doctor_passes, assert_reference_mode_ran, assert_each_host_serves_its_own_site,
    assert_public_headers_are_ordinary, converge, doctor, leaf_certificate, on_one_host, pebble_root, reference_rows,
    run_playbook, wait_for)


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


def _secret(host):
    return host.file("/etc/mtg/secret").content_string.strip()


def _ip(host):
    return host.check_output("hostname -I").split()[0]


def _wrong_secret(secret):
    # same domain, different key
    key = secret[2:34]
    flipped = "%032x" % (int(key, 16) ^ 1)
    return "ee" + flipped + secret[34:]


def test_service_enabled_running_as_its_user(host):
    svc = host.service("mtg")
    assert svc.is_enabled
    assert svc.is_running
    users = host.check_output("ps -o user= -C mtg").split()
    assert users and set(users) == {"mtg"}


def test_listens_only_where_configured(host):
    # ss -e names the socket's cgroup (the unit); -p cannot see into another
    # user's process without CAP_SYS_PTRACE
    out = host.check_output("ss -Htlne")
    mtg_lines = [line for line in out.splitlines() if "/mtg.service" in line]
    assert sorted(line.split()[3] for line in mtg_lines) == ["*:443", "127.0.0.1:3129"]
    # [::]:443 with v6only:0 takes IPv4 too
    assert "v6only:0" in [line for line in mtg_lines if line.split()[3] == "*:443"][0]


def test_files_and_modes(host):
    conf = host.file("/etc/mtg/config.toml")
    assert (conf.user, conf.group, conf.mode) == ("root", "mtg", 0o640)
    secret = host.file("/etc/mtg/secret")
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)
    assert host.file("/etc/mtg").mode == 0o750
    text = conf.content_string
    # mtg 2.2.8 spells the fronting key `ip`; `host` would be silently ignored
    assert '\n[domain-fronting]\nip = "127.0.0.1"\nport = 8443\nproxy-protocol = true\n' in text
    assert 'bind-to = "[::]:443"' in text
    binary = host.file("/usr/local/bin/mtg")
    assert (binary.user, binary.mode) == ("root", 0o755)
    assert host.check_output("/usr/local/bin/mtg --version").startswith("2.2.8 ")


def test_unit_is_hardened(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show mtg -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp "
            "-p LimitNOFILE -p Restart -p AmbientCapabilities -p User"
        ).splitlines()
    )
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["LimitNOFILE"] == "65536"
    assert props["Restart"] == "always"
    assert props["User"] == "mtg"
    # binds :443, so it needs exactly CAP_NET_BIND_SERVICE
    assert props["AmbientCapabilities"] == "cap_net_bind_service"


def test_selftest_module_on_the_host(host):
    # testinfra hands back the module result (a failed module has ok=False
    # and a msg naming the step) instead of raising
    secret = _secret(host)
    good = host.ansible("tgproxy.stealth.faketls_selftest", "host=127.0.0.1 port=443 secret=%s" % secret, check=False)
    assert good["ok"] is True and good["step"] == "done", good
    wrong = _wrong_secret(secret)
    bad = host.ansible("tgproxy.stealth.faketls_selftest", "host=127.0.0.1 port=443 secret=%s" % wrong, check=False)
    assert bad["ok"] is False and bad["step"] == "verify_server_hmac"
    assert "failed at step verify_server_hmac" in bad["msg"]
    assert wrong not in bad["msg"]
    expected_failure = host.ansible("tgproxy.stealth.faketls_selftest",
                                    "host=127.0.0.1 port=443 expect=fail secret=%s" % wrong, check=False)
    assert expected_failure["ok"] is False and "msg" not in expected_failure


def test_selftest_from_outside_right_and_wrong_secret(host):
    secret = _secret(host)
    ip = _ip(host)
    key = bytes.fromhex(secret[2:34])
    good = _faketls.selftest(ip, 443, key, DOMAIN, timeout=5.0)
    assert good["ok"] is True, good
    wrong = _faketls.selftest(ip, 443, bytes.fromhex(_wrong_secret(secret)[2:34]), DOMAIN, timeout=5.0)
    assert wrong["ok"] is False
    assert wrong["step"] == "verify_server_hmac"


def _dc_handshakes(host):
    """Successful DC-side obfuscated2 handshakes the simulator logged."""
    log = host.check_output("journalctl -u tgp-dcsim -o cat --no-pager")
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return sum(1 for e in events if e.get("event") == "dc_handshake" and e.get("ok"))


def test_bytes_reach_the_dc_simulator_and_come_back(host):
    secret = _secret(host)
    before = _dc_handshakes(host)
    proc = subprocess.run(
        [sys.executable, os.path.join(PROJECT, "tests", "testbed", "mtg_echo.py"), "--host", _ip(host), "--port", "443",
         "--secret", secret, "--payload-size", "65536"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["received"] == summary["sent"] >= 65536
    # the simulator wrote its line before it echoed; the journal takes it in on its own time
    wait_for(lambda: _dc_handshakes(host) > before)
    after = _dc_handshakes(host)
    assert after == before + 1


@pytest.mark.parametrize("sni", [DOMAIN, None])
def test_tls_client_without_secret_gets_the_website(host, sni, pebble_root):
    ip = _ip(host)
    CA = pebble_root
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:443" % ip, "-CAfile", CA, "-verify_return_error",
         "-verify_hostname", DOMAIN, "-brief"] + (["-servername", sni] if sni else ["-noservername"]),
        input="", capture_output=True, text=True, timeout=20, check=False,
    )
    out = proc.stdout + proc.stderr
    if sni is None:
        # a Caddy site has a certificate for its name only (no default, as any Caddy site): Caddy's own alert
        assert "alert internal error" in out, out
        return
    assert proc.returncode == 0, out
    assert "Verification: OK" in out
    # the ACME certificate names the domain in its SAN (the subject is empty)
    assert "Verified peername: %s" % DOMAIN in out
    page = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", CA, "--resolve", "%s:443:%s" % (DOMAIN, ip), "https://%s/" % DOMAIN],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert page.returncode == 0, page.stderr
    assert "Northwind Field Notes" in page.stdout


def test_public_headers_name_no_internal_port_and_http3_only_where_it_answers(host, pebble_root):
    assert_public_headers_are_ordinary(_ip(host), pebble_root, "caddy", host)


def test_each_host_serves_a_website_of_its_own(host, pebble_root):
    assert_each_host_serves_its_own_site(host, pebble_root)


def test_certificate_issued_by_the_acme_ca(host, pebble_root):
    info = leaf_certificate("%s:443" % _ip(host), DOMAIN)
    print(info)
    assert "DNS:%s" % DOMAIN in info
    assert "Pebble" in info.split("issuer=")[1]


def test_web_backend_sees_the_real_client_address(host):
    # the request came from this machine through mtg's fronting with PROXY v2;
    # without PROXY protocol Caddy would log 127.0.0.1 (mtg)
    controller_ip = host.check_output("ip route show default").split()[2]
    page = subprocess.run(
        ["curl", "-sk", "--max-time", "10", "--resolve", "%s:443:%s" % (DOMAIN, _ip(host)),
         "https://%s/?probe=client-address" % DOMAIN],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert page.returncode == 0
    entries = [json.loads(line) for line in host.check_output("tail -n 50 /var/log/caddy/access.log").splitlines()]
    mine = [e for e in entries if "probe=client-address" in e["request"]["uri"]]
    assert mine and mine[-1]["request"]["remote_ip"] == controller_ip


def test_tls_listener_requires_proxy_protocol_and_stays_internal(host):
    out = host.check_output("ss -Htlne")
    caddy = sorted(line.split()[3] for line in out.splitlines() if "/caddy.service" in line)
    # 2019: Caddy's admin endpoint (reloads), loopback only
    assert caddy == ["*:80", "127.0.0.1:2019", "127.0.0.1:8443"]
    url = "https://%s:8443/" % DOMAIN
    without = host.run("curl -sS --max-time 5 --resolve %s:8443:127.0.0.1 %s" % (DOMAIN, url))
    assert without.rc != 0
    with_header = host.run("curl -sS --max-time 5 --haproxy-protocol --resolve %s:8443:127.0.0.1 -k %s" % (DOMAIN, url))
    assert with_header.rc == 0 and "Northwind Field Notes" in with_header.stdout


def test_http_redirect_never_carries_the_internal_port(host):
    head = subprocess.run(
        ["curl", "-sI", "--max-time", "10", "-H", "Host: %s" % DOMAIN, "http://%s/some/page?x=1" % _ip(host)],
        capture_output=True, text=True, timeout=20, check=False,
    ).stdout
    location = [line for line in head.splitlines() if line.lower().startswith("location:")]
    assert location == ["location: https://%s/some/page?x=1" % DOMAIN] or \
        location == ["Location: https://%s/some/page?x=1" % DOMAIN], head


def test_prometheus_endpoint_on_loopback(host):
    metrics = host.check_output("curl -fsS http://127.0.0.1:3129/")
    assert "mtg_" in metrics


def test_every_host_of_the_fleet_has_its_own_secret(host):
    """One run provisions many proxies: each keeps its own secret."""
    inventory = os.path.join(EPHEMERAL, "inventory")
    others = [name for name in ("mtg_direct-debian12", "mtg_direct-debian13") if name != host.backend.get_hostname()]
    mine = _secret(host)
    for name in others:
        other = testinfra.get_host("ansible://%s" % name, ansible_inventory=inventory)
        theirs = other.file("/etc/mtg/secret").content_string.strip()
        assert theirs.startswith("ee") and mine.startswith("ee")
        assert theirs != mine


def test_doctor_finds_the_proxy_indistinguishable_from_its_website_and_from_an_ordinary_one(host):
    ref = assert_doctor_passes(host.backend.get_hostname(), _secret(host))
    assert_reference_mode_ran(host, ref)


def test_doctor_fails_when_a_header_names_an_internal_port(host):
    """A weakened deploy: Caddy's Alt-Svc names the internal TLS port again (as before HTTP/3 moved to the public
    UDP port). The doctor fails in reference mode and names the header and the port."""
    on_one_host(host, "debian13", "the doctor's reference mode and Caddy are the same on both")
    host.run_expect([0], "sed -i 's/h3=\":443\"/h3=\":8443\"/' /etc/caddy/Caddyfile && systemctl reload caddy")
    try:
        proc, text, rows = doctor(host.backend.get_hostname())
    finally:
        host.run_expect([0], "sed -i 's/h3=\":8443\"/h3=\":443\"/' /etc/caddy/Caddyfile && systemctl reload caddy")
    assert proc.returncode != 0, text[-4000:]
    assert "probe https_root differs from the reference site www.reference.stealth.test" in text, text[-4000:]
    assert "alt-svc names port 8443" in text, text[-4000:]


def test_doctor_fails_on_uncalibrated_faketls_noise_naming_the_setting(host):
    """A weakened deploy: mtg without defense.doppelganger sends its random 2.5-4.7 KB record. The doctor measures
    the FakeTLS first flight against the site's own (20 each) and fails naming mtg_doppelganger_urls."""
    name = host.backend.get_hostname()
    if name != "mtg_direct-debian12":
        pytest.skip("the weakened deploy runs once, on the first host")
    off = converge("mtg_direct", name, ['{"mtg_doppelganger_urls": []}'])
    try:
        assert off.returncode == 0, off.stdout[-3000:]
        assert "doppelganger" not in host.file("/etc/mtg/config.toml").content_string
        proc, text, rows = doctor(name)
        assert proc.returncode != 0, text[-4000:]
        assert "FakeTLS first flight: ApplicationData bytes (median of 20) differs from the site's own" in text
        assert "mtg_doppelganger_urls" in text
    finally:
        again = converge("mtg_direct", name, [])
    assert again.returncode == 0, again.stdout[-3000:]
    assert "[defense.doppelganger]" in host.file("/etc/mtg/config.toml").content_string
    ref = reference_rows(doctor(name)[1])
    assert " identical " in ref["faketls_flight_bytes"], ref


FLEET = ("mtg_direct-debian12", "mtg_direct-debian13")


def test_doctor_across_the_fleet_fails_on_a_copied_site_naming_hosts_and_trait(host):
    """Run over the whole inventory, the doctor compares what a visitor sees on each host. A seed file copied from
    one host to the other (the same site on both) makes site.yml warn (TGP603) and the doctor fail on both, naming
    the other host and the shared traits; each host with its own seed again, it passes."""
    if host.backend.get_hostname() != FLEET[0]:
        pytest.skip("the fleet test runs once, from the first host")
    inventory = os.path.join(EPHEMERAL, "inventory")
    other = testinfra.get_host("ansible://%s" % FLEET[1], ansible_inventory=inventory)
    proc, text, rows = doctor("all")
    assert proc.returncode == 0 and text.count("all checks passed") == 2, text[-4000:]
    seed = host.file("/var/lib/tgproxy/site/seed").content_string
    other.run_expect([0], "cp -p /var/lib/tgproxy/site/seed /root/seed.saved && printf %%s %s > "
                          "/var/lib/tgproxy/site/seed" % shlex.quote(seed))
    try:
        converged = run_playbook(os.path.join(PROJECT, "molecule", "mtg_direct", "converge.yml"), "all")
        out = converged.stdout + converged.stderr
        assert converged.returncode == 0, out[-4000:]
        assert re.search(r"TGP603.*?serves\s+the\s+same\s+website\s+as\s+%s" % FLEET[1], out, re.S), out[-4000:]
        proc, text, rows = doctor("all")
        assert proc.returncode != 0, text[-4000:]
        for me, them in (FLEET, FLEET[::-1]):
            for trait in ("the same body at / with %s" % them, "the same body at /favicon.ico with %s" % them,
                          "the same stylesheet with %s" % them):
                assert trait in text, (me, trait, text[-4000:])
        assert "the same certificate" not in text  # each host keeps its own ACME certificate
    finally:
        other.run_expect([0], "mv /root/seed.saved /var/lib/tgproxy/site/seed")
        assert run_playbook(os.path.join(PROJECT, "molecule", "mtg_direct", "converge.yml"), FLEET[1]).returncode == 0
    proc, text, rows = doctor("all")
    assert proc.returncode == 0 and text.count("all checks passed") == 2, text[-4000:]


def test_doctor_fails_when_fronting_cannot_reach_the_website(host):
    """A weakened deploy: mtg on :443 still fronts, but the web server behind it is gone."""
    on_one_host(host, "debian13", "the doctor and mtg's fronting are the same on both")
    host.run_expect([0], "systemctl stop caddy")
    try:
        proc, text, rows = doctor(host.backend.get_hostname())
    finally:
        host.run_expect([0], "systemctl start caddy")
    print("\n".join(rows))
    assert proc.returncode != 0
    different = [row.split()[0] for row in rows if " DIFFERENT " in row]
    # every TLS client now gets a dropped connection instead of the website
    assert {"magic_sni", "random_sni", "no_sni", "alpn_h2"} <= set(different), rows
    assert "caddy.service is not running" in text
    # the failure names the variables to look at
    assert "probe magic_sni differs from the web server in " in text
    assert "Fix: make sure the web server runs and is the default route" in text and "mtg_fronting_host" in text


FIRST, SECOND = "mtg_direct-debian12", "mtg_direct-debian13"
ROLLOUT = os.path.join(PROJECT, "playbooks", "rollout.yml")
# on the first host only: mtg may not reach the website (a break a deploy does not repair)
BREAK = "OUTPUT -p tcp -d 127.0.0.1 --dport 8443 -m owner --uid-owner mtg -j REJECT -m comment --comment tgp-rollout"


def _mtg_state(name):
    """The mtg configuration's concurrency line and mtg's main PID on a host of the scenario."""
    out = subprocess.run(["docker", "exec", name, "sh", "-c",
                          "grep '^concurrency' /etc/mtg/config.toml; systemctl show mtg -p MainPID --value"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return out[0].strip(), out[1].strip()


def test_rollout_stops_at_the_batch_whose_doctor_fails(host):
    """playbooks/rollout.yml, one host per batch, carrying a change (mtg_concurrency) to the whole fleet: the first
    host is broken on purpose, so its doctor fails; the rollout stops there, the later host is untouched, and the
    message names the host and the failed check. A healthy fleet then rolls out to the end."""
    if host.backend.get_hostname() != FIRST:
        pytest.skip("one rollout for the whole fleet (run with the first host)")
    before = {name: _mtg_state(name) for name in (FIRST, SECOND)}
    assert before[FIRST][0] != "concurrency = 4321"
    host.run_expect([0], "iptables -I " + BREAK)
    try:
        proc = run_playbook(ROLLOUT, "all", ["mtg_concurrency=4321"])
    finally:
        host.run_expect([0], "iptables -D " + BREAK)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "%s: doctor found" % FIRST in text, text[-3000:]
    assert "probe magic_sni differs from the web server" in text
    # the first batch got the change; the later host never ran a deploy task (the check play before it reports,
    # in check mode, what a deploy would change on every host: that is not a change)
    assert _mtg_state(FIRST)[0] == "concurrency = 4321"
    assert _mtg_state(SECOND) == before[SECOND]
    assert "TASK [Deploy every role]" in text
    assert not any(line.startswith(("ok: [%s]" % SECOND, "changed: [%s]" % SECOND))
                   for line in text[text.index("PLAY [Deploy in batches"):].splitlines()), "the later host was touched"

    # healthy again: the whole fleet rolls out (the first host back to its setting), each batch's doctor passes
    proc = run_playbook(ROLLOUT, "all", [])
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert text.count("all checks passed") == 2, text[-3000:]
    assert _mtg_state(FIRST)[0] == before[FIRST][0] and _mtg_state(SECOND) == before[SECOND]


REPORT = os.path.join(PROJECT, "playbooks", "report.yml")


def _link(name):
    secret = subprocess.run(["docker", "exec", name, "cat", "/etc/mtg/secret"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return secret, "tg://proxy?server=%s&port=443&secret=%s" % (DOMAIN, secret)


def test_fleet_report_renders_in_a_real_browser_and_its_qr_codes_decode(host, tmp_path):
    """playbooks/report.yml over both hosts: the page renders in headless Chromium, a screenshot shows the fleet
    table and each host's QR code, which decodes to exactly that host's tg:// link; redacted, no secret is left."""
    if host.backend.get_hostname() != FIRST:
        pytest.skip("one report for the whole fleet (run with the first host)")
    import zxingcpp  # noqa: E402  pylint: disable=import-outside-toplevel
    from PIL import Image  # noqa: E402  pylint: disable=import-outside-toplevel

    out = tmp_path / "report"
    proc = run_playbook(REPORT, "all", ["tgproxy_report_dir=%s" % out])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "2 host(s), 2 passed the doctor" in " ".join(proc.stdout.split()), proc.stdout[-3000:]
    for name in (FIRST, SECOND):
        assert _link(name)[0] not in proc.stdout + proc.stderr, "a secret in the run's output"
    page, summary = out / "report.html", out / "report.md"
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert oct(page.stat().st_mode & 0o777) == "0o600" and oct(summary.stat().st_mode & 0o777) == "0o600"
    links = {name: _link(name) for name in (FIRST, SECOND)}
    text = page.read_text()
    for name, (_secret, link) in links.items():
        assert name in text and link.replace("&", "&amp;") in text
        assert link in summary.read_text()
    assert "mtg_direct" in text and "mtg 2.2.8" in text and "all checks passed" in text
    # the doctor's probe table, one probe a line
    assert re.search(r"(^|<pre>)magic_sni +identical ", text, re.M) and "\\n" not in text, text[-3000:]
    # the real browser: the page renders, the screenshot carries the table and both QR codes
    shot = tmp_path / "report.png"
    browser = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                              "--window-size=1280,2400", "--screenshot=%s" % shot, page.as_uri()],
                             capture_output=True, text=True, timeout=120, check=False)
    assert browser.returncode == 0 and shot.exists(), browser.stderr[-2000:]
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<tr><td>mtg_direct-debian1") == 2, dom[:2000]
    image = Image.open(shot)
    decoded = sorted(result.text for result in zxingcpp.read_barcodes(image))
    assert decoded == sorted(link for _secret, link in links.values()), decoded
    # the table's first rows are drawn: the screenshot's top is not blank
    top = image.convert("L").crop((0, 0, image.width, 300))
    assert min(top.getdata()) < 100
    os.makedirs(os.path.join(PROJECT, ".cache"), exist_ok=True)
    image.save(os.path.join(PROJECT, ".cache", "fleet-report.png"))

    # redacted on request: no form of either secret, no QR code
    proc = run_playbook(REPORT, "all", ["tgproxy_report_dir=%s" % out, "tgproxy_report_redact=true"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for path in (page, summary):
        content = path.read_text()
        for secret, _link_ in links.values():
            for form in (secret, secret[2:34], base64.urlsafe_b64encode(bytes.fromhex(secret)).decode().rstrip("="),
                         base64.b64encode(bytes.fromhex(secret)).decode()):
                assert form not in content, (path.name, form)
        assert "redacted" in content
    assert "<svg" not in page.read_text()
    # never in the run's output either
    for secret, _link_ in links.values():
        assert secret not in proc.stdout + proc.stderr


def test_a_change_that_restarts_mtg_on_443_asks_before_cutting_sessions(host):
    """mtg owns :443: no second instance to switch to, so a change restarts it. With a session open the run stops
    in the check play, naming the sessions it would cut and tgproxy_mtg_restart_ok, before anything changes on the
    host; with the opt-in the change is applied (and the session cut)."""
    from router_tests import MTProtoSession  # noqa: E402  pylint: disable=import-outside-toplevel
    name = host.backend.get_hostname()
    on_one_host(host, "debian13", "three runs of site.yml, the same tasks on both")
    converge_yml = os.path.join(PROJECT, "molecule", "mtg_direct", "converge.yml")
    change = ["mtg_tolerate_time_skewness=7s"]
    snapshot = "sha256sum /etc/mtg/config.toml; systemctl show mtg -p MainPID"
    before = host.check_output(snapshot)
    session = MTProtoSession(_ip(host), _secret(host))
    try:
        assert session.echo(1024)
        proc = run_playbook(converge_yml, name, change, ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out[-3000:]
        cut = re.search(r"\[tgproxy_mtg_restart_ok\] this run changes mtg \(config\), which restarts mtg and cuts the "
                        r"(\d+) session\(s\) it carries now \(mtg owns :443 here\); nothing has changed", out)
        assert cut and int(cut.group(1)) >= 1, out[-3000:]
        assert host.check_output(snapshot) == before
        assert session.echo(1024)  # untouched
        proc = run_playbook(converge_yml, name, change + ["tgproxy_mtg_restart_ok=true"])
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert 'tolerate-time-skewness = "7s"' in host.file("/etc/mtg/config.toml").content_string
        with pytest.raises((EOFError, OSError)):
            session.echo(1024)
    finally:
        session.close()
        # no session open now: nothing to ask
        proc = converge("mtg_direct", name, [])
        assert proc.returncode == 0, proc.stdout[-3000:]
