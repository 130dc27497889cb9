"""sslh's transparent mode (debian13) next to the default mode (debian12).

Transparent: the backends (mtg, Caddy, sshd) see the client's own address and
port; a unit of its own loads the marks, the policy route and route_localnet,
and loopback stays unreachable from outside. Default: the backends see
127.0.0.1 and none of that is on the host.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

from router_tests import MTProtoSession, secret_of  # noqa: E402
from testbed_helpers import DOMAIN, assert_ssh_through_443, converge, host_ip  # noqa: E402

SCENARIO = "sslh"
UNIT = "tgproxy-sslh-transparent"
# the test's veth pair inside the host (a private /30 of its own)
VETH, PEER = "10.254.77.1", "10.254.77.2"
CADDY_LOG = "/var/log/caddy/access.log"

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


def wait_for(predicate, seconds=10):
    deadline = time.time() + seconds
    while not predicate() and time.time() < deadline:
        time.sleep(0.3)
    return predicate()


def tls_to_the_website(host):
    """A TLS connection through :443 with an SNI that is not the proxy's (so sslh sends it to Caddy)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection((host_ip(host), 443), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="www.example.net")


def test_only_the_transparent_host_carries_the_mode(host):
    cfg = host.file("/etc/sslh/sslh.cfg").content_string
    rules = host.run("nft list table ip tgproxy_sslh")
    localnet = host.file("/proc/sys/net/ipv4/conf/all/route_localnet").content_string.strip()
    caps = host.check_output("grep CapAmb /proc/$(systemctl show sslh -p MainPID --value)/status")
    net_raw = int(caps.split()[1], 16) & (1 << 13)
    if transparent(host):
        assert "transparent: true;" in cfg
        assert host.service(UNIT).is_running and host.service(UNIT).is_enabled
        assert rules.rc == 0 and 'skuid' in rules.stdout and "127.0.0.0/8" in rules.stdout, rules.stdout
        assert "fwmark 0x1/0xf lookup 100" in host.check_output("ip -4 rule")
        assert "local default dev lo" in host.check_output("ip -4 route show table 100")
        assert localnet == "1" and net_raw
        # IPv4 only (TGP208): no [::]:443
        assert host.check_output("ss -Htln sport = :443 | awk '{print $4}'").split() == ["0.0.0.0:443"]
    else:
        assert "transparent: false;" in cfg
        assert rules.rc != 0 and not host.file("/etc/systemd/system/%s.service" % UNIT).exists
        assert "fwmark" not in host.check_output("ip -4 rule")
        assert localnet == "0" and not net_raw


def test_backends_see_the_clients_own_address_only_in_transparent_mode(host):
    session = MTProtoSession(host_ip(host), secret_of(host))
    web = tls_to_the_website(host)
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
            assert client_web not in peers(host, 8443)
        # the site's access log has the address Caddy saw
        web.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % DOMAIN).encode())
        assert web.recv(64).startswith(b"HTTP/1.1 200"), "no page from the website"
        remote = client_web.rsplit(":", 1) if transparent(host) else ["127.0.0.1", None]

        def logged():
            for line in reversed(host.file(CADDY_LOG).content_string.splitlines()[-20:]):
                req = json.loads(line).get("request", {})
                if req.get("remote_ip") == remote[0] and remote[1] in (None, req.get("remote_port")):
                    return True
            return False
        assert wait_for(logged), host.check_output("tail -n 3 %s" % CADDY_LOG)
    finally:
        session.close()
        web.close()


def test_sshd_logs_the_clients_own_address_only_in_transparent_mode(host, tmp_path):
    with socket.create_connection((host_ip(host), 443), timeout=10) as probe:
        controller = probe.getsockname()[0]
    assert_ssh_through_443(host, host_ip(host), tmp_path, "sslh")
    expected = controller if transparent(host) else "127.0.0.1"
    accepted = host.check_output("journalctl -q --no-pager --since=-2min | grep 'Accepted publickey for root' || true")
    assert accepted and ("from %s port" % expected) in accepted.splitlines()[-1], accepted


def test_loopback_stays_unreachable_from_outside(host):
    """A SYN to 127.0.0.1 that arrives on an interface gets no answer. In transparent mode route_localnet is on
    and the unit's raw-table rule drops it; without that rule the same SYN is answered (the exposure is real)."""
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

        def dropped():
            out = host.run("nft list chain ip tgproxy_sslh prerouting").stdout
            return int(out.split("counter packets ")[1].split()[0]) if "counter packets" in out else 0

        # the probe works: sshd's wildcard socket answers on that interface
        assert answers(VETH, 22) >= 1
        before = dropped()
        # Caddy's TLS listener and mtg's stats listen on 127.0.0.1 only
        assert answers("127.0.0.1", 8443) == 0
        assert answers("127.0.0.1", 3129) == 0
        if transparent(host):
            assert dropped() - before >= 6
            host.run_expect([0], "nft delete table ip tgproxy_sslh")
            try:
                assert answers("127.0.0.1", 8443) >= 1, "route_localnet without the rules should answer"
            finally:
                host.run_expect([0], "systemctl restart %s" % UNIT)
            assert answers("127.0.0.1", 8443) == 0
    finally:
        host.run("ip link del tgpt0")


def fwmark_rules(host):
    return [line.split(":", 1)[1].strip() for line in host.check_output("ip -4 rule").splitlines() if "fwmark" in line]


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


def test_a_new_mark_then_mode_off_then_on_leave_nothing_behind(host):
    """Another mark and table replace the old rule and route (the unit stops as it was loaded first); turning
    the mode off removes the unit, the table, the rule, the route and route_localnet; on again restores it."""
    if not transparent(host):
        pytest.skip("the transparent host only")
    router = host.ansible.get_variables()["tgproxy_router"]
    name = host.backend.get_hostname()
    moved = ["sslh_transparent_mark=2", "sslh_transparent_route_table=101"]
    try:
        proc = converge(SCENARIO, name, moved)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert fwmark_rules(host) == ["from all fwmark 0x2/0xf lookup 101"]
        assert host.check_output("ip -4 route show table 100") == ""
        assert "local default dev lo" in host.check_output("ip -4 route show table 101")
        assert mtg_sees_the_client(host)

        proc = converge(SCENARIO, name, moved + [json.dumps({"tgproxy_router": dict(router, transparent=False)})])
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "transparent: false;" in host.file("/etc/sslh/sslh.cfg").content_string
        assert not host.file("/etc/systemd/system/%s.service" % UNIT).exists
        assert not host.file("/etc/sslh/tgproxy-transparent.nft").exists
        assert host.run("nft list table ip tgproxy_sslh").rc != 0
        assert fwmark_rules(host) == []
        assert host.check_output("ip -4 route show table 101") == ""
        assert host.file("/proc/sys/net/ipv4/conf/all/route_localnet").content_string.strip() == "0"
        assert mtg_sees_the_client(host, own_address=False)
    finally:
        proc = converge(SCENARIO, name, [])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert fwmark_rules(host) == ["from all fwmark 0x1/0xf lookup 100"]
    assert mtg_sees_the_client(host)


def test_the_mode_survives_nftables_service_flushing_the_ruleset(host):
    """Debian's /etc/nftables.conf starts with "flush ruleset": the unit reloads after it, stops with it
    (route_localnet back to 0, never on without the loopback rules) and starts with it."""
    if not transparent(host):
        pytest.skip("the transparent host only")

    host.run_expect([0], "systemctl restart nftables")
    assert host.run("nft list table ip tgproxy_sslh").rc == 0 and mtg_sees_the_client(host)
    host.run_expect([0], "systemctl reload nftables")
    assert host.run("nft list table ip tgproxy_sslh").rc == 0 and mtg_sees_the_client(host)
    host.run_expect([0], "systemctl stop nftables")
    try:
        assert not host.service(UNIT).is_running
        assert host.file("/proc/sys/net/ipv4/conf/all/route_localnet").content_string.strip() == "0"
    finally:
        host.run_expect([0], "systemctl start nftables")
    # pulled in by nftables.service (WantedBy), right after it
    assert wait_for(lambda: host.service(UNIT).is_running) and mtg_sees_the_client(host)
