"""sslh's transparent mode (debian13) next to the default mode (debian12).

Transparent: the backends (mtg, Caddy, sshd) see the client's own address and
port; a unit of its own adds one policy rule (packets this host sends from
127.0.0.0/8 go to a table whose default route is local) and route_localnet
stays 0, so loopback is unreachable from outside whatever happens to the
firewall. Default: the backends see 127.0.0.1 and none of that is on the host.
"""

import json
import os
import random
import shlex
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

from router_tests import MTProtoSession, secret_of  # noqa: E402  (puts plugins/module_utils on the path)
from probes import truncated_record  # noqa: E402  (stdlib-only module_utils, imported by path)
from testbed_helpers import assert_ssh_through_443, converge, host_ip, wait_for  # noqa: E402

SCENARIO = "sslh"
UNIT = "tgproxy-sslh-transparent"
# the test's veth pair inside the host (a private /30 of its own)
VETH, PEER = "10.254.77.1", "10.254.77.2"
# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]

# TCP SYNs in raw Ethernet frames sent into an interface, then a count of the
# SYN-ACKs that come back on it.
SYN_PROBE = r"""
import random, select, socket, struct, sys, time
iface, dst_mac, src_ip, dst_ip = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3], sys.argv[4]
dport = int(sys.argv[5])
def csum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sock.bind((iface, 0x0800))
sport = random.randint(40000, 60000)
src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
tcp = struct.pack("!HHIIBBHHH", sport, dport, random.randint(1, 2**31), 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
frame = dst_mac + sock.getsockname()[4] + b"\x08\x00" + ip + tcp
for _ in range(3):
    sock.send(frame)
    time.sleep(0.2)
answers, deadline = 0, time.time() + 2
while time.time() < deadline:
    if not select.select([sock], [], [], max(0, deadline - time.time()))[0]:
        break
    pkt = sock.recv(65535)[14:]
    if len(pkt) < 40 or pkt[9] != 6:
        continue
    seg = pkt[(pkt[0] & 0x0F) * 4:]
    s_port, d_port = struct.unpack("!HH", seg[:4])
    if s_port == dport and d_port == sport and seg[13] & 0x12 == 0x12:
        answers += 1
print(answers)
"""


def transparent(host):
    return bool(host.ansible.get_variables().get("tgproxy_router", {}).get("transparent"))


def peers(host, port):
    """Remote ends of the established connections to local port ``port``."""
    return set(host.check_output("ss -Htn state established '( sport = :%d )' | awk '{print $4}'" % port).split())


def held_to_the_website(host):
    """A connection through :443 that sslh hands to Caddy and Caddy holds open: the first half of a ClientHello
    (sslh waits for the rest until its timeout, then passes the connection to its default route, the web server;
    a full hello with another name would end at Caddy's alert at once, as on any Caddy site)."""
    raw = socket.create_connection((host_ip(host), 443), timeout=10)
    raw.sendall(truncated_record("www.example.net"))
    return raw


RULE = "from 127.0.0.0/8 iif lo lookup %d"
# every route_localnet of the host (all, default and each interface)
LOCALNET = "cat /proc/sys/net/ipv4/conf/*/route_localnet | sort -u | tr '\\n' ' '"


def policy_rules(host):
    """The host's IPv4 policy rules other than the kernel's three."""
    kernel = ("from all lookup local", "from all lookup main", "from all lookup default")
    rules = [line.split(":", 1)[1].strip() for line in host.check_output("ip -4 rule").splitlines()]
    return [rule for rule in rules if rule not in kernel]


def local_routes(host, table):
    """The routes of a routing table, one string each (whitespace normalised)."""
    return [" ".join(line.split()) for line in host.check_output("ip -4 route show table %d" % table).splitlines()]


def route_localnet(host):
    return host.check_output(LOCALNET).split()


def settled(host, seconds=30):
    """True once systemd has no queued job (every start/stop/reload that was asked has finished)."""
    return wait_for(lambda: host.check_output("systemctl list-jobs --no-legend | wc -l").strip() == "0", seconds)


def test_only_the_transparent_host_carries_the_mode(host):
    cfg = host.file("/etc/sslh/sslh.cfg").content_string
    caps = host.check_output("grep CapAmb /proc/$(systemctl show sslh -p MainPID --value)/status")
    net_raw = int(caps.split()[1], 16) & (1 << 13)
    # no netfilter table of ours (an earlier version loaded one), no route_localnet anywhere
    assert host.run("command -v nft && nft list table ip tgproxy_sslh").rc != 0
    assert not host.file("/etc/sslh/tgproxy-transparent.nft").exists
    assert route_localnet(host) == ["0"]
    if transparent(host):
        assert "transparent: true;" in cfg
        assert host.service(UNIT).is_running and host.service(UNIT).is_enabled
        assert policy_rules(host) == [RULE % 100]
        assert local_routes(host, 100) == ["local default dev lo scope host"]
        assert net_raw
        # IPv4 only (TGP208): no [::]:443
        assert host.check_output("ss -Htln sport = :443 | awk '{print $4}'").split() == ["0.0.0.0:443"]
    else:
        assert "transparent: false;" in cfg
        assert not host.file("/etc/systemd/system/%s.service" % UNIT).exists
        assert policy_rules(host) == []
        assert not net_raw


def test_backends_see_the_clients_own_address_only_in_transparent_mode(host):
    session = MTProtoSession(host_ip(host), secret_of(host))
    web = held_to_the_website(host)
    try:
        assert session.echo(1024)
        client_mtg = "%s:%d" % session.conn.sock.getsockname()[:2]
        client_web = "%s:%d" % web.getsockname()[:2]
        if transparent(host):
            # mtg and Caddy are connected to the client's own address and port
            assert wait_for(lambda: client_mtg in peers(host, 3128)), peers(host, 3128)
            assert wait_for(lambda: client_web in peers(host, 8443)), peers(host, 8443)
        else:
            assert peers(host, 3128) and all(p.startswith("127.0.0.1:") for p in peers(host, 3128))
            # sslh has passed the connection on (after its timeout), from loopback
            assert wait_for(lambda: peers(host, 8443)), peers(host, 8443)
            assert all(p.startswith("127.0.0.1:") for p in peers(host, 8443)), peers(host, 8443)
    finally:
        session.close()
        web.close()


def test_sshd_logs_the_clients_own_address_only_in_transparent_mode(host, tmp_path):
    with socket.create_connection((host_ip(host), 443), timeout=10) as probe:
        controller = probe.getsockname()[0]
    journal = "journalctl -q --no-pager --since=-10min | grep 'Accepted publickey for root' || true"
    before = len(host.check_output(journal).splitlines())
    assert_ssh_through_443(host, host_ip(host), tmp_path, "sslh")
    expected = controller if transparent(host) else "127.0.0.1"
    # this login's line (the journal takes sshd's log in on its own time), not an earlier one
    assert wait_for(lambda: len(host.check_output(journal).splitlines()) > before), host.check_output(journal)
    accepted = host.check_output(journal)
    assert ("from %s port" % expected) in accepted.splitlines()[-1], accepted


def test_loopback_stays_unreachable_from_outside(host):
    """A SYN to 127.0.0.1 that arrives on an interface gets no answer: route_localnet is 0, so the kernel drops it
    as a martian. The probe is not blind: with route_localnet turned on by hand the same SYN is answered on the
    host without the mode; on the transparent host it is still not, as the policy rule sends every reply from
    127.0.0.0/8 back into the host (a second barrier)."""
    # a veth pair inside the host: frames sent into tgpt1 arrive on tgpt0 from outside (iif != lo), as from a
    # neighbour on the LAN (frames to 127.0.0.1 from another container never cross the test bed's bridge)
    host.run_expect([0], "ip link add tgpt0 type veth peer name tgpt1 && ip addr add %s/30 dev tgpt0 && "
                         "ip link set tgpt0 up && ip link set tgpt1 up && "
                         "ip neigh replace %s lladdr $(cat /sys/class/net/tgpt1/address) dev tgpt0" % (VETH, PEER))
    try:
        mac = host.file("/sys/class/net/tgpt0/address").content_string.strip()

        def answers(dst_ip, port):
            proc = subprocess.run(["docker", "exec", host.backend.get_hostname(), "python3", "-c", SYN_PROBE, "tgpt1",
                                   mac, PEER, dst_ip, str(port)], capture_output=True, text=True, timeout=30,
                                  check=False)
            assert proc.returncode == 0, proc.stderr
            return int(proc.stdout.strip())

        # the probe works: sshd's wildcard socket answers on that interface
        assert answers(VETH, 22) >= 1
        assert route_localnet(host) == ["0"]
        # Caddy's TLS listener and mtg's stats listen on 127.0.0.1 only
        assert answers("127.0.0.1", 8443) == 0
        assert answers("127.0.0.1", 3129) == 0
        host.run_expect([0], "sysctl -q -w net.ipv4.conf.all.route_localnet=1")
        try:
            if transparent(host):
                assert answers("127.0.0.1", 8443) == 0, "a reply from loopback left the host"
            else:
                assert answers("127.0.0.1", 8443) >= 1, "route_localnet on should expose loopback (probe blind?)"
        finally:
            host.run_expect([0], "sysctl -q -w net.ipv4.conf.all.route_localnet=0")
        assert answers("127.0.0.1", 8443) == 0
    finally:
        host.run("ip link del tgpt0")


def mtg_sees_the_client(host, own_address=True):
    """During one MTProto session through :443: mtg's connection comes from the client's own address and port
    (own_address), or only from 127.0.0.1 (not own_address)."""
    session = MTProtoSession(host_ip(host), secret_of(host))
    try:
        assert session.echo(1024)
        client = "%s:%d" % session.conn.sock.getsockname()[:2]
        if own_address:
            return wait_for(lambda: client in peers(host, 3128))
        seen = peers(host, 3128)
        return bool(seen) and all(p.startswith("127.0.0.1:") for p in seen)
    finally:
        session.close()


# the operator's own firewall (Debian's nftables.service, whose ruleset starts with "flush ruleset"), hammered
HAMMER = [
    "systemctl restart nftables",
    "systemctl reload nftables",
    "systemctl reload nftables; systemctl reload nftables; systemctl reload nftables",
    "nft flush ruleset",
    "systemctl stop nftables; systemctl start nftables",
    # concurrent with a start of our unit
    "systemctl restart %(unit)s & systemctl reload nftables & systemctl restart nftables & wait",
    "systemctl reload nftables & systemctl restart %(unit)s & wait; systemctl reload nftables",
    "systemctl restart --no-block nftables; systemctl restart --no-block %(unit)s; systemctl reload nftables",
    "systemctl stop %(unit)s; systemctl reload nftables & systemctl start %(unit)s & wait",
    "systemctl restart %(unit)s & systemctl restart %(unit)s & nft flush ruleset & wait",
]
# a sample every few milliseconds until /run/tgp-sampler.stop exists (at most 20,000 samples):
# the route_localnet values, then whether our rule and route are there
SAMPLER = ("n=0; while [ ! -e /run/tgp-sampler.stop ] && [ $n -lt 20000 ]; do n=$((n+1)); "
           "echo \"$(%s)| $(ip -4 rule | grep -c 'from 127.0.0.0/8 iif lo lookup 100')"
           " $(ip -4 route show table 100 | grep -c 'local default')\"; done > /run/tgp-sampler.log" % LOCALNET)


NFT_DROPIN = "/run/systemd/system/nftables.service.d"


@pytest.fixture()
def nftables(host):
    """The operator's firewall: Debian's nftables with its stock /etc/nftables.conf, started."""
    if host.run("command -v nft").rc != 0:
        host.run_expect([0], "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nftables")
    # the hammer starts it more often than systemd's default start limit (5 in 10 s) allows: lifted for the test
    host.run_expect([0], "mkdir -p %s && printf '[Unit]\\nStartLimitIntervalSec=0\\n' > %s/hammer.conf && "
                         "systemctl daemon-reload && systemctl start nftables" % (NFT_DROPIN, NFT_DROPIN))
    yield
    host.run_expect([0], "systemctl stop nftables && rm -rf %s && systemctl daemon-reload" % NFT_DROPIN)


def test_the_mode_holds_under_any_order_of_firewall_reloads_and_unit_starts(host, nftables):
    """Firewall restarts, reloads, flushes and stops, back to back and concurrent with starts of our unit: at every
    sample route_localnet is 0 (loopback never reachable from outside); after each round settles, the rule and
    the route are there exactly once and mtg sees the client's own address."""
    if not transparent(host):
        pytest.skip("the transparent host only")
    assert policy_rules(host) == [RULE % 100]
    host.run_expect([0], "rm -f /run/tgp-sampler.stop /run/tgp-sampler.log && printf '%%s\\n' %s > /run/tgp-sampler.sh"
                    % shlex.quote(SAMPLER))
    # a script file: systemd-run would expand the $ of a command line itself
    host.run_expect([0], "systemd-run --unit tgp-sampler --collect sh /run/tgp-sampler.sh")
    rounds = HAMMER * 3
    random.Random(18).shuffle(rounds)
    try:
        for i, action in enumerate(rounds):
            host.run_expect([0], "sh -c %s" % shlex.quote(action % {"unit": UNIT}))
            assert settled(host), (i, action, host.check_output("systemctl list-jobs"))
            assert host.service(UNIT).is_running, (i, action)
            assert policy_rules(host) == [RULE % 100], (i, action)
            assert local_routes(host, 100) == ["local default dev lo scope host"], (i, action)
            if i % 3 == 0:
                assert mtg_sees_the_client(host), (i, action)
    finally:
        host.run("touch /run/tgp-sampler.stop")
        assert wait_for(lambda: host.run("systemctl is-active tgp-sampler").rc != 0, 20)
    samples = host.file("/run/tgp-sampler.log").content_string.splitlines()
    assert len(samples) >= 200, len(samples)
    localnet = [s.split("|")[0].split() for s in samples]
    print("hammer: %d rounds, %d samples, route_localnet values seen %s, rule or route absent in %d samples"
          % (len(rounds), len(samples), sorted({v for values in localnet for v in values}),
             sum(s.split("|")[1].split() != ["1", "1"] for s in samples)))
    assert all(values == ["0"] for values in localnet), [s for s in samples if s.split("|")[0].split() != ["0"]][:5]
    # the rule did go away and come back during the unit's restarts: the sampler saw the rounds
    assert any(s.split("|")[1].split() != ["1", "1"] for s in samples), "the sampler saw no restart of the unit"
    assert mtg_sees_the_client(host)


# The unit and the rules an earlier version of the role installed (netfilter marks and route_localnet): a host
# upgraded from it must end with route_localnet 0 and none of it left.
EARLIER_UNIT = """[Unit]
Description=sslh transparent mode (an earlier version of the role)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/sslh/tgproxy-transparent.nft
ExecStart=/usr/sbin/ip -4 rule add fwmark 0x1/0xf lookup 100
ExecStart=/usr/sbin/sysctl -q -w net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.default.route_localnet=1
ExecStop=/usr/sbin/sysctl -q -w net.ipv4.conf.all.route_localnet=0 net.ipv4.conf.default.route_localnet=0
ExecStop=-/usr/sbin/ip -4 rule del fwmark 0x1/0xf lookup 100
ExecStop=-/usr/sbin/nft delete table ip tgproxy_sslh
[Install]
WantedBy=multi-user.target
"""
EARLIER_RULES = """table ip tgproxy_sslh {
    chain prerouting {
        type filter hook prerouting priority raw; policy accept;
        iifname != "lo" ip daddr 127.0.0.0/8 counter drop
    }
}
"""


def test_upgrade_then_another_table_then_mode_off_then_on_leave_nothing_behind(host, nftables):
    """A host in the earlier version's state converges to the policy rule alone (route_localnet 0, no table, no
    fwmark rule, no rules file); another table replaces the rule (the unit stops as it was loaded first); turning
    the mode off removes the unit, the rule and the route; on again restores them."""
    if not transparent(host):
        pytest.skip("the transparent host only")
    router = host.ansible.get_variables()["tgproxy_router"]
    name = host.backend.get_hostname()
    unit_file = "/etc/systemd/system/%s.service" % UNIT
    host.run_expect([0], "systemctl stop %s" % UNIT)
    host.run_expect([0], "printf %%s %s > %s && printf %%s %s > /etc/sslh/tgproxy-transparent.nft && "
                         "systemctl daemon-reload && systemctl restart %s"
                    % (shlex.quote(EARLIER_UNIT), unit_file, shlex.quote(EARLIER_RULES), UNIT))
    assert "1" in route_localnet(host) and "fwmark 0x1/0xf lookup 100" in host.check_output("ip -4 rule")
    moved = ["sslh_transparent_route_table=101"]
    try:
        proc = converge(SCENARIO, name, moved)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert route_localnet(host) == ["0"]
        assert host.run("nft list table ip tgproxy_sslh").rc != 0
        assert not host.file("/etc/sslh/tgproxy-transparent.nft").exists
        assert policy_rules(host) == [RULE % 101]
        assert local_routes(host, 100) == []
        assert local_routes(host, 101) == ["local default dev lo scope host"]
        assert mtg_sees_the_client(host)

        proc = converge(SCENARIO, name, moved + [json.dumps({"tgproxy_router": dict(router, transparent=False)})])
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "transparent: false;" in host.file("/etc/sslh/sslh.cfg").content_string
        assert not host.file(unit_file).exists
        assert policy_rules(host) == []
        assert local_routes(host, 101) == []
        assert route_localnet(host) == ["0"]
        assert mtg_sees_the_client(host, own_address=False)
    finally:
        proc = converge(SCENARIO, name, [])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert policy_rules(host) == [RULE % 100]
    assert mtg_sees_the_client(host)
