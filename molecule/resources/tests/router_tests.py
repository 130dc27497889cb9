"""Behaviour every SNI-router topology must show (imported by each router scenario's tests).

A scenario's test module defines a ``router`` fixture (dict): ``scenario``,
``unit`` (systemd unit of the router), ``config`` (its file),
``change`` (extra vars that change the config) and ``changed_text`` (what the
file then contains), ``reload_handler`` (the handler's task line); where the
router keeps a view of mtg's health, ``mtg_servers_up`` (host -> how many mtg
servers it counts usable) or ``failed_upstream_skip_s`` (how long it skips an
upstream that refused a connection).
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "plugins", "module_utils"))

import _faketls  # noqa: E402  (stdlib-only module_utils, imported by path)
from testbed_helpers import (  # noqa: E402
    DOMAIN, EPHEMERAL, PROJECT, assert_doctor_passes, assert_reference_mode_ran, assert_each_host_serves_its_own_site,
    assert_public_headers_are_ordinary, converge, host_ip, on_one_host, run_playbook, start_playbook, wait_for, web_answers)

sys.path.insert(0, os.path.join(PROJECT, "tests", "testbed"))
import mtg_echo  # noqa: E402  (the test bed's MTProto client side)
import migration_load  # noqa: E402  (bounded client load: sessions through mtg to the DC simulator)


def listeners(host, unit):
    return sorted(line.split()[3] for line in host.check_output("ss -Htlne").splitlines() if "/%s.service" % unit in line)


def secret_of(host):
    return host.file("/etc/mtg/secret").content_string.strip()


def main_pid(host, unit):
    return host.check_output("systemctl show %s -p MainPID --value" % unit)


def web_backend(host):
    return host.ansible.get_variables().get("tgproxy_web_backend", "caddy")


def test_mtg_listens_on_loopback_only_and_is_not_reachable_from_outside(host):
    assert listeners(host, "mtg") == ["127.0.0.1:3128", "127.0.0.1:3129"]
    with pytest.raises(OSError):
        socket.create_connection((host_ip(host), 3128), timeout=3)


def test_faketls_with_the_secret_through_the_router(host):
    key = secret_of(host)[2:34]
    result = _faketls.selftest(host_ip(host), 443, bytes.fromhex(key), DOMAIN, timeout=10)
    assert result["ok"] is True, result
    wrong = bytes.fromhex("%032x" % (int(key, 16) ^ 1))
    assert _faketls.selftest(host_ip(host), 443, wrong, DOMAIN, timeout=10)["step"] == "verify_server_hmac"


@pytest.mark.parametrize("sni", ["random-name.example.net", DOMAIN, None])
def test_every_other_client_gets_the_website(host, sni, pebble_root):
    answered, out = web_answers(host_ip(host), sni, pebble_root, web_backend(host))
    assert answered, out


def test_public_headers_name_no_internal_port_and_http3_only_where_it_answers(host, pebble_root):
    assert_public_headers_are_ordinary(host_ip(host), pebble_root, web_backend(host), host)


def test_each_host_serves_a_website_of_its_own(host, pebble_root):
    assert_each_host_serves_its_own_site(host, pebble_root)


def test_web_sees_the_real_client_address_on_both_paths(host):
    controller_ip = host.check_output("ip route show default").split()[2]
    # router -> web directly (another SNI, the site's Host), and router -> mtg -> web (the magic SNI). A Caddy site
    # has a certificate for its own name only (no fallback, as any Caddy site): another SNI ends at its TLS alert
    paths = [(DOMAIN, "router-mtg-web")] + ([("other.example.net", "router-web")] if web_backend(host) != "caddy" else [])
    for sni, probe in paths:
        request = "GET /?probe=%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (probe, DOMAIN)
        subprocess.run(["openssl", "s_client", "-connect", "%s:443" % host_ip(host), "-servername", sni, "-quiet"],
                       input=request, capture_output=True, text=True, timeout=20, check=False)
        if web_backend(host) == "caddy":
            log = host.check_output("grep probe=%s /var/log/caddy/access.log | tail -1" % probe)
            assert '"remote_ip":"%s"' % controller_ip in log, (probe, log)
        else:
            log = host.check_output("grep probe=%s /var/log/nginx/tgproxy-web.access.log | tail -1" % probe)
            assert log.startswith(controller_ip + " "), (probe, log)


# where the router passes all of :80 (router.http.acme_passthrough_to: the web server's HTTP listener)
WEB_HTTP = "127.0.0.1:8080"


def http_head(curl_args):
    """Status line and headers of a curl -sS -D - answer (Date dropped: it is the only header that may differ)."""
    lines = [line for line in curl_args.replace("\r\n", "\n").split("\n") if line]
    return [line for line in lines if not line.lower().startswith("date:")]


def test_port_80_is_answered_by_the_web_server_itself(host):
    """The router passes all of :80 at layer 4: the web server answers every request, as on any website (Caddy's
    308, nginx's 301), never the router's own redirect; no Location names a port other than 443."""
    ip = host_ip(host)
    caddy = web_backend(host) == "caddy"
    for hostname, path in ((DOMAIN, "/some/page?x=1"), (DOMAIN, "/.well-known/acme-challenge/unknown-token"),
                           (ip, "/some/page?x=1")):
        public = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "10", "-H", "Host: " + hostname,
                                 "http://%s%s" % (ip, path)], capture_output=True, text=True, timeout=20, check=False)
        head = http_head(public.stdout)
        assert public.returncode == 0 and head, (hostname, path, public.stderr)
        # byte for byte what the web server's own HTTP listener answers (the router adds and changes nothing)
        own = host.check_output("curl -sS -D - -o /dev/null --max-time 10 -H %s http://%s%s",
                                "Host: " + hostname, WEB_HTTP, path)
        assert head == http_head(own), (hostname, path, head, own)
        status = head[0].split(" ")[1]
        fields = dict((k.strip().lower(), v.strip()) for k, dummy, v in (line.partition(":") for line in head[1:]))
        if caddy:
            assert status == "308" and fields.get("server") == "Caddy", head
            assert fields.get("connection") == "close", head  # as Caddy's own redirect on any Caddy site
        # nginx's Server as the distribution's nginx.conf has it (Debian 12 names the version, 13 does not)
        elif "acme-challenge" in path:
            assert status == "404" and fields.get("server", "").split("/")[0] == "nginx", head  # no such token
        else:
            assert status == "301" and fields.get("server", "").split("/")[0] == "nginx", head
        location = fields.get("location")
        if location is not None:
            assert not re.match(r"^https?://[^/]*:(?!443(/|$))\d+", location), head
        if status in ("301", "308"):
            want = "https://%s%s" % (hostname if caddy else DOMAIN, path)
            assert location == want, head


def test_verify_playbook_passes(host, pebble_root):
    cmd = ["ansible-playbook", "-i", os.path.join(EPHEMERAL, "inventory"), "--limit", host.backend.get_hostname(),
           os.path.join(PROJECT, "playbooks", "verify.yml"), "-e", "tgproxy_verify_ca_cert=" + pebble_root]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                         env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))
    text = out.stdout + out.stderr
    print(text[-3000:])
    assert out.returncode == 0, text
    assert text.count("PASS  ") == 6 and "FAIL  " not in text
    assert secret_of(host) not in text


def test_doctor_finds_the_proxy_indistinguishable_from_its_website_and_from_an_ordinary_one(host):
    ref = assert_doctor_passes(host.backend.get_hostname(), secret_of(host))
    assert_reference_mode_ran(host, ref)


class MTProtoSession:
    """One client session through the router and mtg to the DC simulator, kept open."""

    def __init__(self, address, secret):
        key, domain = mtg_echo.parse_secret(secret)
        self.conn, result = _faketls.open_faketls(address, 443, key, domain, timeout=10.0)
        assert self.conn is not None, result
        self.conn.settimeout(20)
        frame, self.encryptor, self.decryptor = mtg_echo.client_obfuscated2(key, 2)
        self.conn.sendall(frame)

    def echo(self, size):
        """Send ``size`` random bytes as packets; True when the DC's echo matches."""
        stream = mtg_echo.frame_packets(os.urandom(size))
        self.conn.sendall(self.encryptor.update(stream))
        received = b""
        while len(received) < len(stream):
            data = self.conn.recv(65536)
            if not data:
                raise EOFError("session closed after %d of %d bytes" % (len(received), len(stream)))
            received += self.decryptor.update(data)
        return received == stream

    def close(self):
        self.conn.close()


def test_config_change_reloads_without_dropping_an_open_connection(host, router):
    """An MTProto session opened before the reload still carries traffic after it."""
    on_one_host(host, router["one_host"], "the other host's router reloads under load in the blue/green test")
    session = MTProtoSession(host_ip(host), secret_of(host))
    pid = main_pid(host, router["unit"])
    try:
        assert session.echo(4096)
        proc = converge(router["scenario"], host.backend.get_hostname(), router["change"])
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert router["reload_handler"] in proc.stdout
        assert router["changed_text"] in host.file(router["config"]).content_string
        # the same session, through the same master process
        assert session.echo(4096)
        assert main_pid(host, router["unit"]) == pid
    finally:
        session.close()
        assert converge(router["scenario"], host.backend.get_hostname(), []).returncode == 0


def mtg_routed_again(host, router):
    """After ``systemctl start mtg``: mtg listens (Type=simple: started is not yet listening) and the router
    sends the magic SNI to it again, as the tests after this one expect."""
    assert wait_for(lambda: "127.0.0.1:3128" in listeners(host, "mtg")), listeners(host, "mtg")
    if "mtg_servers_up" in router:
        # HAProxy: a health check (rise 1) has seen mtg up
        assert wait_for(lambda: router["mtg_servers_up"](host) >= 1), "the router still counts mtg down"
    # nginx: its own clock, no state to read; the last refused connection was before the start
    time.sleep(router.get("failed_upstream_skip_s", 0))


def test_website_still_served_on_443_with_mtg_stopped(host, router, pebble_root):
    host.run_expect([0], "systemctl stop mtg")
    try:
        time.sleep(5)  # the router notices (health checks, failed upstream)
        if "mtg_servers_up" in router:
            # HAProxy's health checks (every 2 s, down after 2 failures) have marked mtg down: 5 s can be short
            wait_for(lambda: router["mtg_servers_up"](host) == 0)
        for sni in (DOMAIN, "other.example.net"):
            answered, out = web_answers(host_ip(host), sni, pebble_root, web_backend(host))
            assert answered, (sni, out)
    finally:
        host.run_expect([0], "systemctl start mtg")
        mtg_routed_again(host, router)


# -- blue/green mtg (playbooks/tasks/mtg.yml) -----------------------------------------------------------------------
FACT = "/etc/ansible/facts.d/tgproxy.fact"
# a change of mtg's configuration only (the model and the router stay as they are)
MTG_CHANGE = ["mtg_tolerate_time_skewness=7s"]
# one line per result (the YAML format folds long messages)
JSON = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
DRAIN = re.compile(r"drain: (\S+) sessions on the old slot at the switch, (\d+) when the drain began, (\d+) of those "
                   r"ended on their own, (\d+) closed at the")


def host_state(host):
    fact = host.file(FACT)
    return json.loads(fact.content_string) if fact.exists else {}


# the test bed's mtg releases: the inventory's, and a second one built from the same source (config.sh,
# artifacts.sh; tests/testbed/env.sh exports them)
BASE = os.environ["TGP_MTG_VERSION"]
UPGRADE = os.environ["TGP_MTG_UPGRADE_VERSION"]


def mtg_version(host, unit):
    """The release the binary of an mtg unit reports (``mtg --version``: the version first)."""
    binary = host.check_output("systemctl show %s -p ExecStart --value" % unit).split("path=")[-1].split(" ")[0]
    return host.check_output("%s --version" % binary).split()[0]


def recap_changed(text):
    match = re.search(r"changed=(\d+)", text.split("PLAY RECAP")[-1])
    return int(match.group(1)) if match else None


def assert_mtg_changes_are_blue_green(host, router, tmp_path, full=True):
    """A change of mtg under client load goes through the second instance: no failed connection, no broken
    session, no byte lost; a run with nothing to change changes nothing and the doctor passes on the second
    instance (``full``: one scenario does these two, for CI time, and its change is a version upgrade as well as
    a configuration change); a play killed after the switch is resumed by the next run, which ends with one mtg,
    the inventory's, behind the router (``full``: a downgrade back to the inventory's release)."""
    name = host.backend.get_hostname()
    converge_yml = os.path.join(PROJECT, "molecule", router["scenario"], "converge.yml")
    assert host_state(host).get("mtg_slot", "blue") == "blue"
    # 1. under load: >= 500 sessions exchanging data with the DC simulator, 100 new connections/s
    # short sessions live 3-12 s: all of those open at the switch end within the 15 s drain
    load = migration_load.Run(tmp_path, host_ip(host), 443, secret_of(host), sessions=520, short=0.8,
                              short_life="3:12", rate=100, duration=600)
    # full: the test bed's second mtg release as well (tests/testbed/artifacts.sh)
    change = MTG_CHANGE + (["mtg_version=" + UPGRADE] if full else [])
    assert mtg_version(host, "mtg") == BASE
    started = time.time()
    try:
        proc = run_playbook(converge_yml, name, change + ["tgproxy_mtg_drain_deadline=15"], **JSON)
        took = time.time() - started
        time.sleep(5)  # the load keeps going through the new instance
    finally:
        result = load.finish()
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    drain = DRAIN.search(text)
    assert drain, text[-3000:]
    at_switch, at_drain, ended, closed = drain.group(1), int(drain.group(2)), int(drain.group(3)), int(drain.group(4))
    failed_new, broken, lost = migration_load.damage(result)
    long_closed = result["sessions"]["long"].get("closed_by_server", 0)
    print(json.dumps({"router": router["unit"], "failed_new": failed_new, "broken_sessions": broken, "bytes_lost": lost,
                      "longest_gap_s": result["new"]["longest_gap_s"], "run_s": round(took, 1),
                      "new_ok": result["new"]["ok"], "peak_open": result["peak_open"], "at_switch": at_switch,
                      "at_drain": at_drain, "ended_on_their_own": ended, "closed_at_deadline": closed,
                      "long_closed": long_closed, "bytes_echoed": result["bytes"]["echoed"]}))
    assert result["peak_open"] >= 500, result
    assert (failed_new, broken, lost) == (0, 0, 0), result
    # every long session still on the old instance was closed at the deadline, and no other session broke;
    # the drain counts mtg's side of each connection: a site measurement the new mtg opened between the drain's
    # count at the switch and the router's reload counts as one more
    assert closed >= long_closed and ended + closed == at_drain, drain.group(0)
    # no new connection failed (above); none waited long either. With two scenarios side by side on the CI's
    # two cores, nginx's reload under this load once held accepts for 1.36 s (CI run 13); alone, 0.1-0.4 s
    assert result["new"]["longest_gap_s"] < 3.0, result["new"]
    assert result["bytes"]["echoed"] == result["bytes"]["sent"] > 0, result["bytes"]
    assert host_state(host)["mtg_slot"] == "green" and "mtg_switch_from" not in host_state(host)
    assert host.service("mtg-green").is_running and not host.service("mtg").is_running
    assert not host.service("mtg").is_enabled and host.service("mtg-green").is_enabled
    assert listeners(host, "mtg-green") == ["127.0.0.1:3132", "127.0.0.1:3133"]
    assert 'tolerate-time-skewness = "7s"' in host.file("/etc/mtg/mtg-green.toml").content_string
    assert "127.0.0.1:3132" in host.file(router["config"]).content_string
    # the new release runs as the second instance; the first one's binary was never replaced
    assert mtg_version(host, "mtg-green") == (UPGRADE if full else BASE)
    assert mtg_version(host, "mtg") == BASE
    assert "switching from mtg blue (mtg) to green (mtg-green): %s changed" % (
        "binary, config" if full else "config") in text, text[-3000:]
    # 2. nothing to change: nothing changes
    if full:
        proc = converge(router["scenario"], name, change)
        assert proc.returncode == 0 and recap_changed(proc.stdout) == 0, proc.stdout[-3000:]
        assert "stays live" in proc.stdout
        # the doctor reads the live instance: its unit, its stats endpoint, its calibrated FakeTLS flight
        assert_doctor_passes(name, secret_of(host))
    # 3. back to the inventory's settings, the play killed after the switch, during the drain
    session = MTProtoSession(host_ip(host), secret_of(host))
    play = start_playbook(converge_yml, name, ["tgproxy_mtg_drain_deadline=300"])
    try:
        assert wait_for(lambda: host_state(host).get("mtg_switch_from") == "green" or play.poll() is not None,
                        seconds=300, interval=1)
        assert play.poll() is None, play.communicate()[0][-3000:]
        # the router's reload happens right after the record: wait for the drain to begin
        assert wait_for(lambda: "127.0.0.1:3128" in host.file(router["config"]).content_string, seconds=120), \
            "the router's configuration never named the old instance's port again"
        time.sleep(3)
    finally:
        play.kill()
        play.communicate()
    # the session opened before is still on the old instance, which still runs
    assert session.echo(4096)
    assert host.service("mtg-green").is_running and host.service("mtg").is_running, "an instance stopped"
    proc = run_playbook(converge_yml, name, ["tgproxy_mtg_drain_deadline=2"], **JSON)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    assert "a switch a stopped play left" in text, text[-3000:]
    with pytest.raises((EOFError, OSError)):
        session.echo(4096)  # closed at the deadline of the resumed drain
    session.close()
    assert host_state(host)["mtg_slot"] == "blue" and "mtg_switch_from" not in host_state(host)
    assert host.service("mtg").is_running and not host.service("mtg-green").is_running
    assert listeners(host, "mtg") == ["127.0.0.1:3128", "127.0.0.1:3129"]
    assert 'tolerate-time-skewness = "7s"' not in host.file("/etc/mtg/config.toml").content_string
    assert mtg_version(host, "mtg") == BASE  # full: the downgrade
    fresh = MTProtoSession(host_ip(host), secret_of(host))
    try:
        assert fresh.echo(4096)
    finally:
        fresh.close()


# -- further mtg instances (tgproxy_mtg_instances) ------------------------------------------------------------------
INSTANCE_DOMAINS = {"spring": "cdn.stealth.test", "autumn": "static.stealth.test"}
# mtg's units, files and binaries on the host (bad input changes none of them)
MTG_FILES = ("ls /etc/mtg /etc/systemd/system /usr/local/bin | sort;"
             " systemctl list-units 'mtg*' --no-legend --plain | sort")


def instances_vars(tmp_path, instances):
    """An extra-vars file with the inventory's tgproxy_mtg_instances (a list does not fit -e key=value)."""
    path = tmp_path / ("instances-%d.json" % len(list(tmp_path.glob("instances-*.json"))))
    path.write_text(json.dumps({"tgproxy_mtg_instances": instances}))
    return "@%s" % path


def resolve_instance_domains(host):
    """Test bed: the instances' names resolve to the host (Pebble's HTTP-01, mtg's measurement of its site)."""
    host.run_expect([0], "grep -q ' cdn.stealth.test ' /etc/hosts || echo '127.0.0.1 cdn.stealth.test "
                         "static.stealth.test ' >> /etc/hosts")


def site_body(ip, domain, cafile):
    proc = subprocess.run(["curl", "-fsS", "--cacert", cafile, "--resolve", "%s:443:%s" % (domain, ip),
                           "https://%s/" % domain], capture_output=True, text=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def echoes(ip, secret, size=1024):
    session = MTProtoSession(ip, secret)
    try:
        return session.echo(size)
    finally:
        session.close()


def instance_drain(text, name, slot_from, slot_to, bind, why="config changed"):
    """(at the switch, at the drain, ended on their own, closed at the deadline) of one instance's switch."""
    unit = "mtg-%s%s" % (name, "-green" if slot_to == "green" else "")
    pattern = (r"mtg instance %s %s -> %s: %s on %s is live \(%s\)\",\s*\"drain: (\S+) sessions on the old slot at "
               r"the switch, (\d+) when the drain began, (\d+) of those ended on their own, (\d+) closed at the") % (
                   name, slot_from, slot_to, unit, re.escape(bind), re.escape(why))
    match = re.search(pattern, text)
    assert match, text[-4000:]
    return match.group(1), int(match.group(2)), int(match.group(3)), int(match.group(4))


def assert_further_instances_go_blue_green_and_retire(host, tmp_path, cafile, scenario, config, routed):
    """Two more mtg instances behind the router, each with its own domain, secret, certificate and website: each
    passes FakeTLS through :443 and has links in the fleet report. Bad input (two instances on one port, one domain
    twice) is rejected before any change. A change of an instance (a new secret) goes blue/green, as for the first
    instance: a session on it keeps working through the switch until the drain's deadline while new ones reach the
    new slot; a play killed during that drain is resumed by the next run; the doctor then checks the live slots.
    The instance given a retire_at in that run serves its old links until then; at it the host stops it with no
    run, and its name gets a website of its own. The next run removes it (still listed) and the instance the
    inventory no longer lists; their secrets stay, and the first instance is as it was.
    ``routed(port)``: whether the router has sent a connection to that loopback port (its log)."""
    name = host.backend.get_hostname()
    converge_yml = os.path.join(PROJECT, "molecule", scenario, "converge.yml")
    snapshot = "sha256sum %s /etc/caddy/Caddyfile; %s" % (config, MTG_FILES)
    resolve_instance_domains(host)
    ip = host_ip(host)
    instances = [{"name": "spring", "domain": INSTANCE_DOMAINS["spring"]},
                 {"name": "autumn", "domain": INSTANCE_DOMAINS["autumn"]}]
    proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, instances)], **JSON)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    secrets = {}
    for instance, domain in INSTANCE_DOMAINS.items():
        unit = "mtg-" + instance
        assert host.service(unit).is_running and host.service(unit).is_enabled
        assert not host.service(unit + "-green").is_running
        secret_file = host.file("/etc/mtg/%s.secret" % unit)
        assert secret_file.mode == 0o600
        secrets[instance] = secret_file.content_string.strip()
        assert secrets[instance] != secret_of(host) and domain.encode().hex() in secrets[instance]
        # generated and kept; its link printed by the run, as the first instance's is
        assert "secret=%s" % secrets[instance] in proc.stdout
        # Telegram's way through :443 to this instance and the DC simulator, and back
        assert echoes(ip, secrets[instance], 4096)
        # a certificate and a website of its own: not the first domain's page
        assert "Verification: OK" in subprocess.run(
            ["openssl", "s_client", "-connect", "%s:443" % ip, "-servername", domain, "-CAfile", cafile,
             "-verify_return_error", "-verify_hostname", domain, "-brief"], input="", capture_output=True, text=True,
            timeout=20, check=False).stderr
    bodies = [site_body(ip, domain, cafile) for domain in [DOMAIN] + list(INSTANCE_DOMAINS.values())]
    assert len(set(bodies)) == 3
    assert listeners(host, "mtg-spring") == ["127.0.0.1:3140", "127.0.0.1:3141"]
    assert listeners(host, "mtg-autumn") == ["127.0.0.1:3142", "127.0.0.1:3143"]
    # bad input: rejected before any change (two instances on one port, one domain twice)
    before = host.check_output(snapshot)
    for bad, code in (([{"name": "spring", "domain": INSTANCE_DOMAINS["spring"], "bind": "127.0.0.1:3140"},
                        {"name": "autumn", "domain": INSTANCE_DOMAINS["autumn"], "bind": "127.0.0.1:3140"}], "TGP320"),
                      ([{"name": "spring", "domain": INSTANCE_DOMAINS["spring"]},
                        {"name": "autumn", "domain": INSTANCE_DOMAINS["spring"]}], "TGP341")):
        proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, bad)], **JSON)
        assert proc.returncode != 0 and code in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
        assert "TASK [Deploy every role]" not in proc.stdout
        assert host.check_output(snapshot) == before
    # a re-run changes nothing
    proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, instances)])
    assert proc.returncode == 0 and recap_changed(proc.stdout) == 0, proc.stdout[-3000:]
    # a change of one instance: spring gets a new secret (given in the inventory) while a session is open on it.
    # The play is killed during spring's drain; the next run resumes it and applies the rest: the rotation, autumn
    # retires 300 s after that run starts (the operator sets retire_at on the instance being replaced)
    old_secret = secrets["spring"]
    secrets["spring"] = "ee" + os.urandom(16).hex() + INSTANCE_DOMAINS["spring"].encode().hex()
    instances[0]["secret"] = secrets["spring"]
    session = MTProtoSession(ip, old_secret)
    fresh = None
    started = time.time()
    try:
        assert session.echo(1024)
        play = start_playbook(converge_yml, name, [instances_vars(tmp_path, instances), "tgproxy_mtg_drain_deadline=300"],
                              **JSON)
        try:
            assert wait_for(lambda: host_state(host).get("mtg_instance_switch_from", {}).get("spring") == "blue"
                            or play.poll() is not None, seconds=400, interval=1)
            assert play.poll() is None, play.communicate()[0][-4000:]
            # the router's reload follows the record (its configuration is written a few tasks before the
            # reload): then new connections reach spring's new slot, the 20 handshakes through :443 first
            assert wait_for(lambda: routed(3144) or play.poll() is not None, seconds=60, interval=0.5)
            assert play.poll() is None, play.communicate()[0][-4000:]
            # during the drain the session opened before still works, on the old slot; a new one, with the new
            # secret, gets the new slot
            assert session.echo(1024)
            fresh = MTProtoSession(ip, secrets["spring"])
            assert fresh.echo(1024)
        finally:
            play.kill()
            play.communicate()
        killed = time.time()
        assert host.service("mtg-spring").is_running and host.service("mtg-spring-green").is_running
        assert session.echo(1024) and fresh.echo(1024)
        retire_at = int(time.time()) + 300
        instances[1]["retire_at"] = retire_at
        # the next run finishes spring's drain where the host stands, then applies the rest (autumn's retirement)
        proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, instances), "tgproxy_mtg_drain_deadline=10"],
                            **JSON)
        text = proc.stdout + proc.stderr
        assert proc.returncode == 0, text[-5000:]
        at_switch, at_drain, ended, closed = instance_drain(text, "spring", "blue", "green", "127.0.0.1:3144",
                                                            "a switch a stopped play left")
        print(json.dumps({"spring": {"at_switch": at_switch, "at_drain": at_drain, "ended": ended, "closed": closed},
                          "killed_after_s": round(killed - started), "resumed_in_s": round(time.time() - killed)}))
        # the session on the old slot was closed at the deadline (its client reconnects), the new one goes on
        assert closed >= 1 and ended + closed == at_drain
        with pytest.raises((EOFError, OSError)):
            session.echo(1024)
        assert fresh.echo(1024)
    finally:
        session.close()
        if fresh:
            fresh.close()
    # the old secret no longer opens spring (its link got the website: fronted); the new one does, and is printed
    with pytest.raises((EOFError, OSError, AssertionError)):
        echoes(ip, old_secret)
    assert echoes(ip, secrets["spring"]) and "secret=%s" % secrets["spring"] in text
    assert host.file("/etc/mtg/mtg-spring.secret").content_string.strip() == secrets["spring"]
    state = host_state(host)
    assert state["mtg_instance_slots"] == {"spring": "green"} and state.get("mtg_slot", "blue") == "blue"
    assert not state["mtg_instance_switch_from"] and "mtg_switch_from" not in state
    assert host.service("mtg-spring-green").is_running and host.service("mtg-spring-green").is_enabled
    assert not host.service("mtg-spring").is_running and not host.service("mtg-spring").is_enabled
    assert listeners(host, "mtg-spring-green") == ["127.0.0.1:3144", "127.0.0.1:3145"]
    # autumn and the first instance had nothing to change: they stayed as they were
    assert host.service("mtg-autumn").is_running and not host.service("mtg-autumn-green").is_running
    assert "mtg instance autumn blue (mtg-autumn) stays live" in text and "mtg blue (mtg) stays live" in text
    # the doctor checks the live slots (the fleet report runs it) and the report gives each instance's links
    report_vars = tmp_path / "report.json"
    report_vars.write_text(json.dumps({"tgproxy_mtg_instances": instances, "tgproxy_report_dir": str(tmp_path / "r")}))
    proc = run_playbook(os.path.join(PROJECT, "playbooks", "report.yml"), name, ["@%s" % report_vars])
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "1 passed the doctor" in " ".join(text.split()), text[-4000:]
    assert all(secret not in text for secret in list(secrets.values()) + [old_secret])
    summary = (tmp_path / "r" / "report.md").read_text()
    for instance, domain in INSTANCE_DOMAINS.items():
        assert "- %s %s (%s): `tg://proxy?server=" % (name, instance, domain) in summary, summary
        assert "&secret=%s`" % secrets[instance] in summary
    # until retire_at autumn's old link works
    assert echoes(ip, secrets["autumn"])
    assert time.time() < retire_at, "the runs before retire_at took longer than its 300 s window"
    assert host.service("mtg-autumn-retire.timer").is_running
    # at retire_at the host stops it itself (its timer), with no run, and the router sends its name to the website
    time.sleep(max(0, retire_at - time.time()) + 1)
    assert wait_for(lambda: not host.service("mtg-autumn").is_running, seconds=30), "the timer did not stop it"
    assert not host.service("mtg-autumn").is_enabled
    # (HAProxy: two failed health checks, 2 s apart; nginx: at once, to the backup server)
    time.sleep(6)

    def retired_link_gets_the_website():
        with pytest.raises((EOFError, OSError, AssertionError)):
            echoes(ip, secrets["autumn"])
        assert site_body(ip, INSTANCE_DOMAINS["autumn"], cafile) == bodies[2]

    retired_link_gets_the_website()
    # a switch of spring that a stopped play left unfinished, as the record has it: removing spring forgets that
    # too (listed again it starts afresh on its first slot, which a remembered switch would then drain)
    state = dict(host_state(host), mtg_instance_switch_from={"spring": "blue"})
    host.run_expect([0], "printf '%%s\\n' %s > %s" % (shlex.quote(json.dumps(state)), FACT))
    # the next run, spring gone from the inventory and autumn still listed (retired): both slots' units,
    # configurations and binaries go, autumn's timer and both routes too; their secrets stay (a later retire_at
    # gives the same links back); autumn's name keeps its certificate and website. The first instance is as it was
    proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, instances[1:])])
    assert proc.returncode == 0, proc.stdout[-5000:]
    for instance in INSTANCE_DOMAINS:
        for path in ("systemd/system/mtg-%s.service", "systemd/system/mtg-%s-green.service", "mtg/mtg-%s.toml",
                     "mtg/mtg-%s-green.toml"):
            assert not host.file("/etc/" + path % instance).exists, path % instance
        assert not host.file("/usr/local/bin/mtg-" + instance).exists
        assert not host.file("/usr/local/bin/mtg-green-" + instance).exists
        assert host.file("/etc/mtg/mtg-%s.secret" % instance).exists
    for path in ("mtg-autumn-retire.timer", "mtg-autumn-retire.service"):
        assert not host.file("/etc/systemd/system/" + path).exists, path
    assert host_state(host)["mtg_instance_slots"] == {} and host_state(host)["mtg_instance_switch_from"] == {}
    retired_link_gets_the_website()
    assert echoes(ip, secret_of(host))


def assert_a_further_instance_restarts_only_with_the_opt_in(host, tmp_path, scenario):
    """Without blue/green (sslh) a further instance is restarted by a change: with a session on it, the check play
    names the instance and the sessions it would cut and stops before any change, until the operator opts in.
    Then the inventory without it: it stops and goes."""
    name = host.backend.get_hostname()
    converge_yml = os.path.join(PROJECT, "molecule", scenario, "converge.yml")
    resolve_instance_domains(host)
    ip = host_ip(host)
    instances = [{"name": "spring", "domain": INSTANCE_DOMAINS["spring"]}]
    proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, instances)], **JSON)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert not host.file("/etc/systemd/system/mtg-spring-green.service").exists  # one slot: no blue/green here
    secret = host.file("/etc/mtg/mtg-spring.secret").content_string.strip()
    before = host.check_output(MTG_FILES)
    moved = [dict(instances[0], stats_bind="127.0.0.1:3149")]
    session = MTProtoSession(ip, secret)
    try:
        assert session.echo(1024)
        proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, moved)], **JSON)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0, text[-3000:]
        # (the count includes the connections of spring's own site measurement, which the router sent to it)
        cut = re.search(r"\[tgproxy_mtg_restart_ok\] this run changes mtg instance spring \([^)]*config[^)]*\), "
                        r"which restarts mtg-spring and cuts the (\d+) session\(s\)", text)
        assert cut and int(cut.group(1)) >= 1, text[-3000:]
        assert "TASK [Deploy every role]" not in text and host.check_output(MTG_FILES) == before
        assert session.echo(1024)
        proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, moved), "tgproxy_mtg_restart_ok=true"],
                            **JSON)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
        assert re.search(r"this run restarts mtg-spring, cutting \d+ sessions \(tgproxy_mtg_restart_ok\)", proc.stdout)
        with pytest.raises((EOFError, OSError)):
            session.echo(1024)
    finally:
        session.close()
    assert "127.0.0.1:3149" in listeners(host, "mtg-spring")
    assert echoes(ip, secret)
    proc = run_playbook(converge_yml, name, [instances_vars(tmp_path, [])])
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert not host.file("/etc/systemd/system/mtg-spring.service").exists
    assert echoes(ip, secret_of(host))
