#!/usr/bin/env bash
# How many sessions sslh-select carries before select()'s FD_SETSIZE (1024)
# stops it, per Debian release (sslh 1.20 on Debian 12, 2.x on Debian 13).
# A benchmark, not a test: it prints what it measured next to the model's
# limit (topology.sslh_select_max_sessions, enforced by TGP210).
#   bash tests/benchmark/sslh-select.sh            # both releases
#   TGP_SSLH_IMAGES=debian:13 bash tests/benchmark/sslh-select.sh
# Each run is bounded: at most 1100 sessions, opened within 60 s, in one
# container of the test bed's network, traffic on its loopback only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh >/dev/null
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh
images=${TGP_SSLH_IMAGES:-"debian:12 debian:13"}

probe=$(cat <<'PY'
import socket, subprocess, sys, time
MAX, DEADLINE, LISTENERS = 1100, time.time() + 60, int(sys.argv[1])
# a backend that holds every session open (sslh's "anyprot" target)
backend = socket.socket(); backend.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
backend.bind(("127.0.0.1", 9000)); backend.listen(4096)
conf = open("/tmp/sslh.cfg", "w")
listen = ", ".join('{ host: "127.0.0.1"; port: "%d"; }' % (4443 + i) for i in range(LISTENERS))
conf.write('foreground: true;\nlisten: ( %s );\n' % listen +
           'protocols: ( { name: "anyprot"; host: "127.0.0.1"; port: "9000"; } );\ntimeout: 1;\n')
conf.close()
sslh = subprocess.Popen(["sh", "-c", "ulimit -n 65536; exec sslh-select -F/tmp/sslh.cfg"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
time.sleep(1)
clients, accepted, broken = [], [], None
for n in range(1, MAX + 1):
    if time.time() > DEADLINE or sslh.poll() is not None:
        break
    c = socket.create_connection(("127.0.0.1", 4443), timeout=5)
    c.sendall(b"x")  # sslh connects the backend once it has data (or after its timeout)
    clients.append(c)
    backend.settimeout(3)
    try:
        conn, _ = backend.accept()
        accepted.append(conn)
    except socket.timeout:
        broken = n
        break
    if n % 50 == 0:
        # every session so far still carries data both ways
        for i, (cl, be) in enumerate(zip(clients, accepted)):
            be.sendall(b"y")
            cl.settimeout(3)
            if cl.recv(1) != b"y":
                broken = n
                break
        if broken:
            break
alive = sslh.poll() is None
sslh.kill()
err = sslh.stderr.read().decode(errors="replace").strip().splitlines()[-1:] if not alive else []
print("sessions carried: %d; next session %s; sslh %s%s" % (
    len(accepted), "failed" if broken or not alive else "not tried (bound reached)",
    "still running" if alive else "exited", (" (last words: %s)" % err[0]) if err else ""))
PY
)

for image in $images; do
  name=tgp-sslh-select-$$
  docker run -d --rm --name "$name" --network tgp-testbed --add-host "$TGP_APT_HOST:$TGP_APT_IP" \
    --entrypoint sleep "tgproxy-testbed/$image" 600 >/dev/null
  trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
  docker exec "$name" sh -c 'apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y sslh >/dev/null' \
    >/dev/null 2>&1
  version=$(docker exec "$name" dpkg-query -W -f '${Version}' sslh)
  for listeners in 1 2; do
    model=$(python -c "import sys; sys.path.insert(0, 'plugins/module_utils'); import topology
print(topology.sslh_select_max_sessions($listeners, '$version'))")
    result=$(docker exec "$name" python3 -c "$probe" "$listeners")
    printf '%-10s sslh %-12s %d listener(s): model limit (TGP210) %s sessions | measured: %s\n' \
      "$image" "$version" "$listeners" "$model" "$result"
  done
  docker rm -f "$name" >/dev/null
done
