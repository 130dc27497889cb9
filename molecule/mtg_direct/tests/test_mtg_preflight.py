"""Bad input is rejected before anything changes on the host (real role runs)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

from testbed_helpers import alternate_hosts, converge, on_one_host  # noqa: E402

MIRROR = os.environ.get("TGP_MIRROR_URL", "")
# A valid secret for another domain (the key is not used anywhere).
OTHER_DOMAIN_SECRET = "ee" + "5a" * 16 + b"other.example.com".hex()

SNAPSHOT = (
    "sha256sum /etc/mtg/config.toml /etc/mtg/secret /usr/local/bin/mtg /etc/systemd/system/mtg.service"
    " /etc/caddy/Caddyfile /usr/bin/caddy /etc/systemd/system/caddy.service;"
    " systemctl show mtg -p MainPID -p ActiveEnterTimestamp; systemctl show caddy -p MainPID -p ActiveEnterTimestamp"
)

# Cases caught by the topology validator (TGPnnn, on the controller) or, for
# what only a role knows (architecture, versions, CA URL, ...), by the role's
# preflight - both before anything changes.
CASES = {
    "validator-stats-public": (["mtg_stats_bind_to=0.0.0.0:3129"], "TGP305 [mtg_stats_bind_to (mtg.stats_bind)]"),
    "validator-fronting-loop": (["mtg_fronting_port=443"], "TGP403"),
    "malformed-secret": (["mtg_secret=ee1234"], "TGP008 [mtg_secret (mtg.secret)]: mtg.secret is malformed"),
    "secret-domain-mismatch": (["mtg_secret=" + OTHER_DOMAIN_SECRET], "TGP503 [mtg_secret (mtg.secret), mtg_domain (domain)]"),
    "unknown-prefer-ip": (["mtg_prefer_ip=ipv5"], "mtg_prefer_ip"),
    "bind-not-hostport": (["mtg_bind_to=443"], "TGP004 [mtg_bind_to (mtg.bind)]: mtg.bind is '443'"),
    "unsupported-architecture": (["__mtg_architecture=mips64"], "[ansible_facts.architecture] mips64 has no mtg release"),
    # passes the role's preflight; mtg's own check of the candidate file rejects it
    "rejected-by-mtg": (["mtg_anti_replay_error_rate=100"],
                        "mtg rejected the new configuration; the running one was kept"),
    "stats-bound-to-a-name": (["mtg_stats_bind_to=localhost:3129"],
                              "[mtg_stats_bind_to] 'localhost:3129' binds to a name; mtg binds to IP addresses only"),
    # every string is checked for its kind before it reaches a config (module_utils/variables.py)
    "dns-of-another-kind": (["mtg_dns=ftp://resolver.invalid"],
                            "[mtg_dns] 'ftp://resolver.invalid' is not a resolver as mtg reads it"),
    "selftest-host-of-another-kind": (["mtg_selftest_host=127.0.0.1;reboot"],
                                      "[mtg_selftest_host] '127.0.0.1;reboot' is not an IP address or a DNS name"),
    "caddy-email": (["caddy_acme_email=not-an-address"], "[caddy_acme_email] 'not-an-address' is not an e-mail address"),
    "caddy-ca-not-https": (["caddy_acme_ca=http://acme.example.org/dir"], "[caddy_acme_ca]"),
    "caddy-too-old": (["caddy_version=2.6.2"], "Caddy 2.6.2 has no proxy_protocol listener wrapper"),
    "missing-domain": (["mtg_domain="], "TGP501 [mtg_domain (domain)]: domain '' is not a valid"),
    "checksum-mismatch": (
        ["mtg_version=2.99.0", "mtg_release_base_url=%s/tampered/9seconds/mtg/releases/download" % MIRROR],
        "did not match",
    ),
}


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


def _converge(host_name, extra, *options):
    return converge("mtg_direct", host_name, extra, *options)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_and_host_is_unchanged(host, case):
    alternate_hosts(host, CASES, case)
    extra, expected = CASES[case]
    before = host.check_output(SNAPSHOT)
    proc = _converge(host.backend.get_hostname(), extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert host.check_output(SNAPSHOT) == before
    # the secret never shows up in the output of a failed run
    assert host.file("/etc/mtg/secret").content_string.strip() not in out


# Set in the inventory (a second inventory source for the host), where play
# vars outrank them: each is rejected by name, all in one run, never silently
# replaced. -e could not show this: extra vars outrank play vars.
INVENTORY_CASES = {
    "interface": ({"caddy_https_port": 9443, "caddy_proxy_protocol": False, "tgproxy_proxy_protocl": True,
                   "tuning_derived": {}, "mtg_service_name": "mtg-blue"}, [
        "[caddy_https_port, mtg_fronting_port] caddy_https_port is 9443 in the inventory, but site.yml derives it "
        "from mtg_fronting_port (8443)",
        "[caddy_proxy_protocol, mtg_fronting_proxy_protocol] caddy_proxy_protocol is False in the inventory",
        "[tgproxy_proxy_protocl] is not a variable of this collection: did you mean tgproxy_proxy_protocol",
        "[tuning_derived] is set by site.yml for every host (from tgproxy_capacity)",
        "[mtg_service_name, tgproxy_mtg_service] mtg_service_name is 'mtg-blue' in the inventory",
    ]),
    "router-on-a-fronting-host": ({"tgproxy_router": {"maxconn": 1000}}, [
        "TGP007 [tgproxy_router (router), tgproxy_topology (kind)]: A router section is given but kind is "
        "mtg_direct"]),
}


@pytest.mark.parametrize("case", sorted(INVENTORY_CASES))
def test_inventory_values_site_yml_would_replace_are_rejected_by_name(host, case, tmp_path):
    variables, expected = INVENTORY_CASES[case]
    name = host.backend.get_hostname()
    extra_inventory = tmp_path / "inventory.json"
    extra_inventory.write_text(json.dumps({"all": {"hosts": {name: variables}}}))
    before = host.check_output(SNAPSHOT)
    proc = _converge(name, [], "-i", str(extra_inventory))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for text in expected:
        assert text in out, out
    assert host.check_output(SNAPSHOT) == before


def test_check_diff_shows_config_change_but_never_the_secret(host):
    on_one_host(host, "debian13", "check mode and the secret's masking are the same tasks on both")
    before = host.check_output(SNAPSHOT)
    # bind-to is the line after the secret, so the diff's context shows the
    # secret line: masked, while the changed lines are readable
    proc = _converge(host.backend.get_hostname(), ["mtg_bind_to=[::]:4443", "mtg_concurrency=4096"], "--check", "--diff")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert '-bind-to = "[::]:443"\n+bind-to = "[::]:4443"' in out, out
    assert "-concurrency = 8192\n+concurrency = 4096" in out, out
    assert ' secret = "<secret hidden>"\n' in out, out
    live = host.file("/etc/mtg/secret").content_string.strip()
    assert live not in out
    assert host.check_output(SNAPSHOT) == before
    # a new secret: the diff shows that it changes, and neither the live secret nor the new one (in any form)
    new = "ee" + "5a" * 16 + live[34:]
    proc = _converge(host.backend.get_hostname(), ["mtg_secret=" + new], "--check", "--diff")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert '-secret = "<secret hidden, replaced>"\n+secret = "<secret hidden, new>"' in out, out
    for secret in (live, new):
        assert secret not in out and secret[2:34] not in out
    assert host.check_output(SNAPSHOT) == before
