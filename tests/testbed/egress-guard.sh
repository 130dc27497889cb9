#!/usr/bin/env bash
# Egress guard for the test network: containers on $TGP_NET may talk to each
# other, to this machine (mirror server) and to the Debian mirror over HTTP;
# every other destination is rejected in the FORWARD path before a packet
# leaves the machine.  DNS is answered by Docker's embedded resolver on the
# host side, so containers need no outside resolver.
#
#   egress-guard.sh apply    install/refresh the rules (idempotent)
#   egress-guard.sh count    print how many packets the guard rejected
#   egress-guard.sh zero     reset that counter (at the start of a test run)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
chain=TGP-EGRESS

apply() {
  iptables -w -N "$chain" 2>/dev/null || iptables -w -F "$chain"
  iptables -w -N DOCKER-USER 2>/dev/null || true
  iptables -w -A "$chain" -d "$TGP_SUBNET" -j RETURN
  iptables -w -A "$chain" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  local ip hosts
  hosts=$(sed -n 's#^URIs: *[a-z]*://\([^/:]*\).*#\1#p' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  for ip in $(for h in $hosts deb.debian.org; do getent ahostsv4 "$h"; done | awk '{print $1}' | sort -u); do
    iptables -w -A "$chain" -d "$ip/32" -p tcp -m multiport --dports 80,443 -j RETURN
  done
  iptables -w -A "$chain" -j REJECT --reject-with icmp-admin-prohibited
  iptables -w -C DOCKER-USER -s "$TGP_SUBNET" -j "$chain" 2>/dev/null ||
    iptables -w -I DOCKER-USER 1 -s "$TGP_SUBNET" -j "$chain"
}

count() {
  iptables -w -L "$chain" -v -n -x | awk '$3 == "REJECT" {print $1}'
}

case "${1:-}" in
  apply) apply ;;
  count) count ;;
  zero) iptables -w -Z "$chain" ;;
  *) echo "usage: $0 apply|count|zero" >&2; exit 2 ;;
esac
