#!/usr/bin/env bash
# Deploy the whole stack to the embedded default host: a local systemd
# container (tgproxy-local) from the test bed's Debian 12 image, in any
# topology with any web backend; then print the proxy links, the FakeTLS
# self-test and the doctor's verdict.
#   bash tests/demo.sh [TOPOLOGY] [WEB]   # deploy (again: idempotent)
#       TOPOLOGY  mtg_fronting (default), haproxy, nginx_stream or sslh
#       WEB       caddy (default) or nginx_acme_sh
#   bash tests/demo.sh destroy            # remove the container
# Another topology or web backend than the container runs starts a new
# container (site.yml does not move a live host between topologies: that is
# playbooks/migrate.yml's job).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=tgproxy-local
if [ "${1:-}" = destroy ]; then docker rm -f "$name" >/dev/null 2>&1 || true; exit 0; fi
topology=${1:-mtg_fronting}
web=${2:-caddy}
inv=inventory-example/local
for choice in "$topology" "$web"; do
  [ -f "tests/demo/$choice.yml" ] || {
    echo "unknown topology or web backend: $choice (topologies: mtg_fronting haproxy nginx_stream sslh;" \
      "web: caddy nginx_acme_sh)" >&2
    exit 2
  }
done

bash tests/testbed/setup.sh
# shellcheck source=tests/testbed/env.sh
source tests/testbed/env.sh

state=$TGP_ROOT/.cache/demo
mkdir -p "$state"
if [ "$(cat "$state/running" 2>/dev/null)" != "$topology $web" ]; then
  docker rm -f "$name" >/dev/null 2>&1 || true
fi
if ! docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null | grep -q true; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  # apt reaches the Debian mirror by a pinned address (as in the Molecule scenarios)
  docker run -d --name "$name" --hostname "$name" --network "$TGP_NET" \
    --add-host "$TGP_APT_HOST:$TGP_APT_IP" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "$(tgp_image bookworm)" /lib/systemd/systemd >/dev/null
  for _ in $(seq 1 30); do
    status=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$status" in running | degraded) break ;; esac
    sleep 1
  done
  rm -f "$state/running"
fi

choose=(-e "@tests/demo/$topology.yml" -e "@tests/demo/$web.yml")
# test-bed scaffolding: the web server behind mtg and the DC simulator
MOLECULE_EPHEMERAL_DIRECTORY=$state MOLECULE_PROJECT_DIRECTORY=$TGP_ROOT \
  ansible-playbook -i "$inv" "${choose[@]}" molecule/resources/prepare.yml >"$state/prepare.log" ||
  { tail -30 "$state/prepare.log"; exit 1; }
ansible-playbook -i "$inv" "${choose[@]}" playbooks/site.yml
echo "$topology $web" >"$state/running"
ansible-playbook -i "$inv" "${choose[@]}" playbooks/doctor.yml >"$state/doctor.log" 2>&1 && doctor=0 || doctor=$?
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
# the site's certificate comes from the test bed's ACME CA (Pebble) in the container
docker exec "$name" curl -fsS https://acme.stealth.test:15000/roots/0 >"$state/acme-root.pem"
echo
echo "Topology $topology, web backend $web, in container $name ($ip)."
echo "The doctor: $(grep -oE '(all checks passed[^"]*|doctor found [^"]*)' "$state/doctor.log" | tail -1)" \
  "(full output: $state/doctor.log)"
echo "From this machine, what a browser or a probe sees:"
echo "  openssl s_client -connect $ip:443 -servername proxy.stealth.test -CAfile $state/acme-root.pem -brief </dev/null"
exit "$doctor"
