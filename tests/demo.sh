#!/usr/bin/env bash
# Deploy the whole stack to the embedded default host: a local systemd
# container (tgproxy-local) from the test bed's Debian 12 image, then print
# the proxy link and the FakeTLS self-test result.
#   bash tests/demo.sh            # deploy (again: idempotent)
#   bash tests/demo.sh destroy    # remove the container
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=tgproxy-local
if [ "${1:-}" = destroy ]; then docker rm -f "$name" >/dev/null 2>&1 || true; exit 0; fi

bash tests/testbed/setup.sh
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh

if ! docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null | grep -q true; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --hostname "$name" --network "$TGP_NET" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "$(tgp_image bookworm)" /lib/systemd/systemd >/dev/null
  for _ in $(seq 1 30); do
    state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 1
  done
fi

inv=inventory-example/local
state=$TGP_ROOT/.cache/demo
mkdir -p "$state"
# test-bed scaffolding: the web server behind mtg and the DC simulator
MOLECULE_EPHEMERAL_DIRECTORY=$state MOLECULE_PROJECT_DIRECTORY=$TGP_ROOT \
  ansible-playbook -i "$inv" molecule/resources/prepare.yml >"$state/prepare.log" ||
  { tail -30 "$state/prepare.log"; exit 1; }
ansible-playbook -i "$inv" playbooks/site.yml
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
# the site's certificate comes from the test bed's ACME CA (Pebble) in the container
docker exec "$name" curl -fsS https://acme.stealth.test:15000/roots/0 >"$state/acme-root.pem"
echo
echo "The proxy runs in container $name ($ip). From this machine, what a browser or a probe sees:"
echo "  openssl s_client -connect $ip:443 -servername proxy.stealth.test -CAfile $state/acme-root.pem -brief </dev/null"
