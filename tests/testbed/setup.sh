#!/usr/bin/env bash
# Hermetic test bed for the tgproxy.stealth collection.
#
# Idempotent and cached: a second run reuses the Python environment, the
# Docker base images and the artifact mirror.  Everything it needs comes from
# the package registries this project may use (PyPI, Debian, the Go module
# proxy); nothing is downloaded from GitHub or a container registry.
#
#   bash tests/testbed/setup.sh            # set everything up
#   source tests/testbed/env.sh            # afterwards: venv + variables
#
# Environment knobs:
#   TGP_CACHE   cache directory (default /var/cache/tgproxy-testbed)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/config.sh
source "$here/config.sh"

log() { printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
t0=$SECONDS

mkdir -p "$TGP_CACHE" "$TGP_CACHE/logs"

apt_updated=
apt_install() {
  local missing=()
  # installed, not merely known (a removed package keeps its config files and a dpkg status)
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- 1. host packages -------------------------------------------------------
apt_install docker.io debootstrap iptables curl ca-certificates openssl python3-venv
# the fleet report's browser test (headless Chromium from Debian)
apt_install chromium
# mtg is built with Go from the Go module proxy; a Debian Go that is too old
# fetches the toolchain go.mod asks for through the same proxy (GOTOOLCHAIN).
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || apt_install golang-go

# --- 2. Python environment (controller + test tools) ------------------------
req="$TGP_ROOT/requirements-test.lock"
req_hash=$(cat "$req" "$TGP_ROOT/requirements.txt" | sha256sum | cut -c1-16)
if [ ! -x "$TGP_VENV/bin/molecule" ] || [ "$(cat "$TGP_VENV/.req-hash" 2>/dev/null)" != "$req_hash" ]; then
  log "creating Python environment in $TGP_VENV"
  rm -rf "$TGP_VENV"
  python3 -m venv "$TGP_VENV"
  "$TGP_VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$TGP_VENV/bin/pip" install -q -r "$req"
  echo "$req_hash" >"$TGP_VENV/.req-hash"
fi

# --- 3. Docker engine --------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd >"$TGP_CACHE/logs/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up"; tail -20 "$TGP_CACHE/logs/dockerd.log"; exit 1; }
fi

# --- 4. test network + egress guard -----------------------------------------
if ! docker network inspect "$TGP_NET" >/dev/null 2>&1; then
  docker network create --subnet "$TGP_SUBNET" --gateway "$TGP_GATEWAY" "$TGP_NET" >/dev/null
fi
bash "$here/egress-guard.sh" apply

# --- 5. base images (debootstrap -> docker import) ---------------------------
mirror_url=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror_url=${mirror_url:-http://deb.debian.org/debian}
for suite in $TGP_SUITES; do
  tag=$(tgp_image "$suite")
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    log "debootstrap $suite -> $tag"
    dir=$(mktemp -d "$TGP_CACHE/rootfs-$suite.XXXX")
    debootstrap --variant=minbase \
      --include=python3,python3-apt,systemd,systemd-sysv,dbus,iproute2,iptables,ca-certificates,openssl,procps,sudo,curl,tar,gzip \
      "$suite" "$dir" "$mirror_url" >"$TGP_CACHE/logs/debootstrap-$suite.log" 2>&1
    # test-bed extras (the DC simulator needs AES): installed after the base
    # system is configured, as debootstrap orders python3-cryptography badly
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography \
      >>"$TGP_CACHE/logs/debootstrap-$suite.log" 2>&1
    chroot "$dir" apt-get clean
    # the image gets the same mirror the host uses
    printf 'deb %s %s main\n' "$mirror_url" "$suite" >"$dir/etc/apt/sources.list"
    tar -C "$dir" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$tag" >/dev/null
    rm -rf "$dir"
  fi
done

# --- 6. artifacts, laid out like the upstream releases -----------------------
bash "$here/artifacts.sh"

# --- 7. mirror server on the test network's gateway --------------------------
bash "$here/mirror.sh" start

log "test bed ready in $((SECONDS - t0)) s (cache $TGP_CACHE)"
