#!/usr/bin/env bash
# Which established sessions survive `systemctl restart sslh` (sslh has no
# reload: a restart is the only way to change its configuration), per sslh
# flavour (fork, select, ev) and Debian release (sslh 1.20 on 12, 2.1 on 13).
# A benchmark, not a test: it prints what it measured.
#   bash tests/benchmark/sslh-restart.sh            # both releases
#   TGP_SSLH_IMAGES=debian:13 bash tests/benchmark/sslh-restart.sh
#   TGP_SSLH_KILLMODE=control-group bash tests/benchmark/sslh-restart.sh
# sslh runs under systemd from the package's own sslh.service (a drop-in
# only swaps the binary: the unit's ExecStart names /usr/sbin/sslh and never
# reads DAEMON= of /etc/default/sslh), on 127.0.0.1:443, anyprot -> a python3
# echo backend on 127.0.0.1:9000. Bounded: 50 sessions, a new-connection
# probe every 10 ms for at most 10 s (1000 tries), one container per release,
# all traffic on its loopback.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh >/dev/null
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh
images=${TGP_SSLH_IMAGES:-"debian:12 debian:13"}
sessions=50
# TGP_SSLH_KILLMODE=control-group: override the unit's KillMode (default: the package's)
killmode_line=${TGP_SSLH_KILLMODE:+KillMode=$TGP_SSLH_KILLMODE\\n}

echo_backend=$(cat <<'PY'
import socketserver
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", 9000), Echo).serve_forever()
PY
)

probe=$(cat <<'PY'
import os, socket, subprocess, sys, threading, time
N = int(sys.argv[1])
def echo(s, msg, timeout):
    """True if msg comes back whole on s (a session working both ways)."""
    try:
        s.settimeout(timeout); s.sendall(msg); got = b""
        while len(got) < len(msg):
            data = s.recv(4096)
            if not data:
                return False
            got += data
        return got == msg
    except OSError:
        return False
def new_session(msg, timeout):
    try:
        s = socket.create_connection(("127.0.0.1", 443), timeout=timeout)
    except OSError as e:
        return None, type(e).__name__
    if echo(s, msg, timeout):
        return s, None
    s.close(); return None, "no echo"
def procs():  # processes in sslh.service's cgroup (v1 or v2 host)
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            n += "/system.slice/sslh.service\n" in open("/proc/%s/cgroup" % pid).read()
        except OSError:
            pass
    return n
held = []
for i in range(N):
    s, err = new_session(b"hello %d\n" % i, 3)
    if s is None:
        sys.exit("session %d not established: %s" % (i, err))
    held.append(s)
tries, stop = [], threading.Event()  # (time, ok, error) of each new-connection try
def prober():
    start = time.time()
    for _ in range(1000):
        if stop.is_set() or time.time() - start > 10:
            return
        t = time.time(); s, err = new_session(b"p", 0.5)
        tries.append((t, s is not None, err))
        if s: s.close()
        time.sleep(max(0, 0.01 - (time.time() - t)))
before = procs()
th = threading.Thread(target=prober); th.start(); time.sleep(0.3)
t0 = time.time()
rc = subprocess.run(["systemctl", "restart", "sslh"]).returncode
t1 = time.time()
while th.is_alive() and not any(ok and t > t1 + 1 for t, ok, _ in tries):
    time.sleep(0.05)  # until new sessions work again for 1 s (or the 10 s bound)
stop.set(); th.join()
survived = sum(echo(s, b"after restart %d\n" % i, 2) for i, s in enumerate(held))
ok_times = [t for t, ok, _ in tries if ok]
gap = max((b - a for a, b in zip(ok_times, ok_times[1:])), default=float("nan"))
after = procs()
errors = sorted({e for _, ok, e in tries if not ok})
print("%d/%d|%.0f|%d of %d (%s)|%.0f|%d|%d->%d" % (survived, N, gap * 1000,
      sum(not ok for _, ok, _ in tries), len(tries), ",".join(errors) or "-",
      (t1 - t0) * 1000, rc, before, after))
for s in held:
    s.close()
PY
)

printf '%-9s %-11s %-11s %-13s %-8s %-6s %-34s %-14s %s\n' release sslh flavour KillMode survived 'gap ms' 'failed new tries' 'restart' 'sslh procs before->after'
name=tgp-sslh-restart-$$
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
for image in $images; do
  # a systemd container as Molecule starts them (.config/molecule/config.yml)
  docker run -d --rm --name "$name" --hostname sslh-restart --network tgp-testbed \
    --add-host "$TGP_APT_HOST:$TGP_APT_IP" --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "tgproxy-testbed/$image" /lib/systemd/systemd >/dev/null
  for _ in $(seq 1 50); do
    docker exec "$name" systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded' && break
    sleep 0.2
  done
  docker exec "$name" sh -c 'apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y sslh >/dev/null' \
    >/dev/null 2>&1
  version=$(docker exec "$name" dpkg-query -W -f '${Version}' sslh)
  # the package's options, with our listener and route in place of its examples
  docker exec "$name" sed -i \
    's#--listen <change-me>:443 --ssh 127.0.0.1:22 --ssl 127.0.0.1:443#--listen 127.0.0.1:443 --anyprot 127.0.0.1:9000#' \
    /etc/default/sslh
  docker exec -d "$name" python3 -c "$echo_backend"
  for flavour in sslh sslh-select sslh-ev; do
    docker exec "$name" test -x "/usr/sbin/$flavour" || continue
    docker exec "$name" sh -c "systemctl stop sslh; sleep 0.5
      sed -i 's#^DAEMON=.*#DAEMON=/usr/sbin/$flavour#' /etc/default/sslh
      mkdir -p /etc/systemd/system/sslh.service.d
      printf '[Service]\nExecStart=\nExecStart=/usr/sbin/$flavour --foreground \$DAEMON_OPTS\n$killmode_line' \
        > /etc/systemd/system/sslh.service.d/flavour.conf
      systemctl daemon-reload; systemctl start sslh; sleep 1; systemctl is-active -q sslh"
    killmode=$(docker exec "$name" systemctl show -p KillMode --value sslh)
    docker exec "$name" sh -c "rm -f /tmp/cursor; journalctl -u sslh --cursor-file=/tmp/cursor -n1 >/dev/null"
    IFS='|' read -r survived gap failed restart_ms rc procs < <(docker exec "$name" python3 -c "$probe" "$sessions")
    # what systemd said about the restart: how the old main process ended, left-overs
    journal=$(docker exec "$name" journalctl -u sslh --cursor-file=/tmp/cursor -o cat)
    printf '%-9s %-11s %-11s %-13s %-8s %-6s %-34s %-14s %s\n' "$image" "$version" "$flavour" "$killmode" \
      "$survived" "$gap" "$failed" "${restart_ms}ms rc=$rc" "$procs"
    printf '  systemd: %s; %d left-over process(es) found at start\n' \
      "$(grep -E 'Main process exited|Deactivated|Failed with' <<<"$journal" | sed 's/^sslh.service: //' | paste -sd';' -)" \
      "$(grep -c 'left-over process' <<<"$journal" || true)"
  done
  docker rm -f "$name" >/dev/null
done
