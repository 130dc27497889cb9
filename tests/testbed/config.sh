# Shared settings of the test bed (sourced by the scripts in this folder).
TGP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TGP_CACHE=${TGP_CACHE:-/var/cache/tgproxy-testbed}
TGP_VENV=${TGP_VENV:-$TGP_CACHE/venv}
TGP_NET=tgp-testbed
TGP_SUBNET=172.30.77.0/24
TGP_GATEWAY=172.30.77.1
TGP_MIRROR_PORT=8089
TGP_MIRROR_URL="http://$TGP_GATEWAY:$TGP_MIRROR_PORT"
TGP_SUITES="bookworm trixie"
# Pinned artifact versions (the only mtg v2 tag the Go module proxy serves here).
TGP_MTG_VERSION=2.2.8
# A second mtg release for the upgrade and downgrade tests: v2.2.8's source
# with this version string (tests/testbed/artifacts.sh).
TGP_MTG_UPGRADE_VERSION=2.2.9
TGP_CADDY_VERSION=2.11.7
PATH=/usr/local/go/bin:$PATH

tgp_image() {
  case "$1" in
    bookworm) echo "tgproxy-testbed/debian:12" ;;
    trixie) echo "tgproxy-testbed/debian:13" ;;
    *) echo "tgproxy-testbed/debian:$1" ;;
  esac
}

# The Debian mirror the base images' apt uses, pinned in the containers'
# /etc/hosts (their DNS queries would have to leave the machine; the egress
# guard rejects them) and allowed through the egress guard on 80/443 only.
TGP_APT_HOST=$(sed -n 's#^URIs: *[a-z]*://\([^/:]*\).*#\1#p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
TGP_APT_HOST=${TGP_APT_HOST:-deb.debian.org}
TGP_APT_IP=$(getent ahostsv4 "$TGP_APT_HOST" 2>/dev/null | awk 'NR == 1 {print $1}')
