"""playbooks/migrate.yml against a live mtg on :443, under client load (real mtg, HAProxy, Caddy, iptables).

The tests run in file order: the starting point, --check, an automatic
rollback, the migration itself, then what must hold after it.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))
from testbed_helpers import DOMAIN, EPHEMERAL, PROJECT, assert_doctor_passes, host_ip, run_playbook, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "testbed"))
import migration_load  # noqa: E402  pylint: disable=wrong-import-position

MIGRATE = os.path.join(PROJECT, "playbooks", "migrate.yml")
SITE = os.path.join(PROJECT, "playbooks", "site.yml")
TARGET = "@" + os.path.join(PROJECT, "molecule", "migrate", "vars", "target.yml")
RESULTS = os.path.join(EPHEMERAL or "/tmp", "migration-results.json")
# one line per result (the YAML format folds long messages)
JSON = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
# what is compared before and after a run that must change nothing
SNAPSHOT = ("iptables-save -t nat 2>/dev/null | grep -c tgproxy-migrate || true;"
            " systemctl is-active mtg haproxy mtg-routed caddy || true;"
            " systemctl is-enabled mtg haproxy mtg-routed 2>&1 || true;"
            " ss -Htln | awk '{print $4}' | sort; sha256sum /etc/mtg/* /etc/caddy/Caddyfile 2>/dev/null;"
            " systemctl show mtg -p MainPID; ls /etc/ansible/facts.d 2>&1 || true")


def name(host):
    return host.backend.get_hostname()


def secret_of(host):
    return host.file("/etc/mtg/secret").content_string.strip()


def recap_changed(text):
    match = re.search(r"changed=(\d+)", text.split("PLAY RECAP")[-1])
    return int(match.group(1)) if match else None


def start_load(host, tmp_path, **options):
    return migration_load.Run(tmp_path, host_ip(host), 443, secret_of(host), **options)


def test_starting_point_is_mtg_on_443(host):
    assert host.service("mtg").is_running
    assert host.check_output("ss -Htln sport = :443 | wc -l") == "1"
    assert not host.service("haproxy").is_running


def test_check_mode_shows_the_plan_and_changes_nothing(host):
    before = host.check_output(SNAPSHOT)
    proc = run_playbook(MIGRATE, name(host), [TARGET], "--check", "--diff", **JSON)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert "is fresh: prepare, smoke test, swap, verify, web, drain, settle, persist" in text
    # the rules it would add, shown by --diff
    assert "-A TGPROXY-MIGRATE -p tcp -m tcp --dport 443 -m comment --comment tgproxy-migrate " \
           "-j REDIRECT --to-ports 10443" in text
    assert secret_of(host) not in text
    assert host.check_output(SNAPSHOT) == before


def test_a_bad_target_topology_stops_in_the_validator_before_the_host_changes(host):
    """mtg on a public address behind the router (TGP301) and PROXY on one hop only (TGP2xx): nothing runs."""
    before = host.check_output(SNAPSHOT)
    proc = run_playbook(MIGRATE, name(host), [TARGET, "mtg_bind_to=0.0.0.0:3128", "mtg_proxy_protocol_listener=false"],
                        **JSON)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "TGP301" in text and "mtg_bind_to" in text, text[-3000:]
    assert "TASK [Install iptables" not in text and "Migrate the live proxy" not in text
    assert host.check_output(SNAPSHOT) == before


def test_a_failed_smoke_test_rolls_back_and_the_live_proxy_keeps_serving(host, tmp_path):
    """A bad variable (HAProxy routes before the ClientHello arrives): FakeTLS fails on the spare port."""
    load = start_load(host, tmp_path, sessions=120, rate=20)
    try:
        proc = run_playbook(MIGRATE, name(host), [TARGET, "haproxy_inspect_delay=0s"], **JSON)
    finally:
        result = load.finish()
    text = proc.stdout + proc.stderr
    print(json.dumps(result["new"]), result["sessions"])
    assert proc.returncode != 0
    # before the swap: no client ever saw the new path
    assert "Migration rolled back at \"Smoke test through the spare port, from the controller" in text, text[-4000:]
    assert host.check_output("iptables-save -t nat | grep -c tgproxy-migrate || true") == "0"
    assert host.check_output("ip6tables-save -t nat | grep -c tgproxy-migrate || true") == "0"
    assert host.service("mtg").is_running and host.service("mtg").is_enabled
    for unit in ("haproxy", "mtg-routed"):
        assert not host.service(unit).is_running and not host.service(unit).is_enabled
    assert migration_load.damage(result) == (0, 0, 0), result
    assert result["new"]["ok"] > 0 and not result["server_closes"]


def test_migration_under_load_drops_nothing(host, tmp_path):
    load = start_load(host, tmp_path)
    started = time.time()
    try:
        proc = run_playbook(MIGRATE, name(host), [TARGET], **JSON)
        took = time.time() - started
        time.sleep(5)  # the load keeps going through the new path
    finally:
        result = load.finish()
    text = proc.stdout + proc.stderr
    print(json.dumps({"new": result["new"], "sessions": result["sessions"], "closes": len(result["server_closes"]),
                      "errors": result["errors"][:5]}))
    assert proc.returncode == 0, text[-5000:]
    drain = re.search(r"drain: (\d+) sessions on the live proxy at the swap, (\d+) when the drain began, "
                      r"(\d+) of those ended on their own, (\d+) closed at the", text)
    assert drain, text[-3000:]
    at_swap, at_drain, ended, closed = (int(x) for x in drain.groups())
    failed_new, broken_sessions, lost = migration_load.damage(result)
    long_closed = result["sessions"]["long"].get("closed_by_server", 0)
    figures = {"failed_new": failed_new, "broken_sessions": broken_sessions, "bytes_lost": lost,
               "longest_gap_s": result["new"]["longest_gap_s"], "migration_s": round(took, 1),
               "new_ok": result["new"]["ok"], "peak_open": result["peak_open"], "at_swap": at_swap, "at_drain": at_drain,
               "ended_on_their_own": ended, "closed_at_deadline": closed, "long_closed": long_closed,
               "bytes_echoed": result["bytes"]["echoed"], "sessions": result["sessions"]}
    with open(RESULTS, "w") as handle:
        json.dump({"figures": figures, "load": result}, handle, indent=1)
    print(json.dumps(figures))
    assert result["peak_open"] >= 500
    assert (failed_new, broken_sessions, lost) == (0, 0, 0), result
    # every session the migration closed is one the load saw closed, all at the deadline
    assert long_closed == closed and at_swap >= at_drain >= closed
    # the short sessions open at the swap (lives 5-20 s) all ended on their own on the old instance
    assert at_swap > closed
    assert closed <= result["sessions"]["long"].get("completed", 0) + long_closed
    times = [when for when, group, pending in result["server_closes"]]
    assert not times or max(times) - min(times) < 3, result["server_closes"]
    assert result["new"]["longest_gap_s"] < 1.0, result["new"]
    assert result["bytes"]["echoed"] == result["bytes"]["sent"] > 0


def test_after_the_migration_the_router_owns_the_public_ports(host):
    listening = set(host.check_output("ss -Htln | awk '{print $4}'").split())
    assert {"0.0.0.0:443", "0.0.0.0:80", "[::]:443", "[::]:80", "127.0.0.1:3128", "127.0.0.1:3130"} <= listening
    # the spare ports are gone; mtg only on loopback (mtg-routed: the old unit is stopped)
    assert not [addr for addr in listening if addr.rsplit(":", 1)[1] in ("10443", "10080", "3129")], listening
    assert [addr for addr in listening if addr.endswith(":3128")] == ["127.0.0.1:3128"]
    assert host.check_output("iptables-save -t nat | grep -c tgproxy-migrate || true") == "0"
    assert host.check_output("ip6tables-save -t nat | grep -c tgproxy-migrate || true") == "0"
    assert not host.service("mtg").is_running and not host.service("mtg").is_enabled
    for unit in ("haproxy", "mtg-routed", "caddy"):
        assert host.service(unit).is_running and host.service(unit).is_enabled
    fact = json.loads(host.file("/etc/ansible/facts.d/tgproxy.fact").content_string)
    assert fact == {"mtg_service": "mtg-routed", "mtg_stats_bind": "127.0.0.1:3130", "migrated_from": "mtg",
                    "router": "haproxy"}


def test_after_the_migration_caddy_answers_port_80_through_the_router(host):
    """HAProxy answered :80 itself only until Caddy's HTTP listener moved behind it (stage 6): now it passes all of
    :80 on at layer 4 and Caddy answers, as on any Caddy site."""
    cfg = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert "server web_http 127.0.0.1:8080" in cfg and "redirect scheme" not in cfg, cfg
    head = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "10", "-H", "Host: " + DOMAIN,
                           "http://%s/after-migration?x=1" % host_ip(host)],
                          capture_output=True, text=True, timeout=20, check=False).stdout
    assert head.startswith("HTTP/1.1 308 ") and re.search(r"(?im)^server: Caddy$", head), head
    assert re.search(r"(?im)^location: https://%s/after-migration\?x=1$" % re.escape(DOMAIN), head), head


def test_a_second_migration_run_changes_nothing(host):
    before = host.check_output(SNAPSHOT)
    proc = run_playbook(MIGRATE, name(host), [TARGET], **JSON)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert "is done: nothing to do" in text
    assert recap_changed(text) == 0, text[-4000:]
    assert host.check_output(SNAPSHOT) == before


def test_site_yml_keeps_the_migrated_host_as_it_is(host):
    """site.yml with the target inventory reads the migration's record: the same units, nothing changed."""
    proc = run_playbook(SITE, name(host), [TARGET])
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert recap_changed(text) == 0, text[-4000:]


def test_doctor_passes_after_the_migration(host):
    assert_doctor_passes(name(host), secret_of(host), TARGET)


def test_the_swap_module_works_with_the_legacy_backend_too(host):
    """iptables-legacy: the same transaction, found again by its tag, removed by the rollback."""
    def module(args, *options):
        cmd = ["ansible", "-i", os.path.join(EPHEMERAL, "inventory"), name(host), "-m",
               "tgproxy.stealth.iptables_redirect", "-a", json.dumps(args)] + list(options)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                              env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))
    try:
        legacy = {"redirects": {"8443": 18443}, "backend": "legacy", "families": ["ipv4"]}
        first = module(legacy)
        assert first.returncode == 0 and "| CHANGED =>" in first.stdout, first.stdout + first.stderr
        saved = host.check_output("iptables-legacy-save -t nat")
        assert "-A TGPROXY-MIGRATE -p tcp -m tcp --dport 8443 -m comment --comment tgproxy-migrate " \
               "-j REDIRECT --to-ports 18443" in saved
        again = module(legacy)
        assert again.returncode == 0 and "| SUCCESS =>" in again.stdout, again.stdout
        # the nft backend (the host's default) sees the leftover and the rollback removes it
        removed = module({"state": "absent", "families": ["ipv4"]})
        assert removed.returncode == 0 and "exist in the legacy backend too" in removed.stdout + removed.stderr, \
            removed.stdout + removed.stderr
    finally:
        host.run("iptables-legacy -t nat -D PREROUTING -m comment --comment tgproxy-migrate -j TGPROXY-MIGRATE;"
                 " iptables-legacy -t nat -D OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "
                 "tgproxy-migrate -j TGPROXY-MIGRATE; iptables-legacy -t nat -F TGPROXY-MIGRATE;"
                 " iptables-legacy -t nat -X TGPROXY-MIGRATE")
    assert "tgproxy" not in host.check_output("iptables-legacy-save -t nat")


def test_a_restart_comes_back_in_the_new_topology(host):
    """Everything the host needs after a reboot is enabled; the old proxy is not."""
    subprocess.run(["docker", "restart", name(host)], check=True, timeout=120)
    deadline = time.time() + 90
    units = ["haproxy", "mtg-routed", "caddy", "mtg"]
    while time.time() < deadline:
        states = subprocess.run(["docker", "exec", name(host), "systemctl", "is-active"] + units,
                                capture_output=True, text=True, check=False).stdout.split()
        if states[:3] == ["active"] * 3:
            break
        time.sleep(2)
    assert states == ["active", "active", "active", "inactive"], dict(zip(units, states))

    def listeners():
        return subprocess.run(["docker", "exec", name(host), "ss", "-Htln"], capture_output=True, text=True,
                              check=True).stdout.split()
    # mtg-routed is Type=simple: active once started, listening a moment later (HAProxy and Caddy tell systemd
    # they are ready once they listen)
    wait_for(lambda: "127.0.0.1:3128" in listeners())
    listening = listeners()
    assert "0.0.0.0:443" in listening and "[::]:443" in listening and "127.0.0.1:3128" in listening
    # nothing to do, and the final FakeTLS check through :443 passes
    proc = run_playbook(MIGRATE, name(host), [TARGET], **JSON)
    assert proc.returncode == 0 and "is done: nothing to do" in proc.stdout, proc.stdout[-3000:]
    assert "FakeTLS through :443: passed" in proc.stdout
