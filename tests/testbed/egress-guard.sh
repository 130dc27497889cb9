#!/usr/bin/env bash
# Egress guard for the test network: containers on $TGP_NET may talk to each
# other, to this machine (mirror server) and to the Debian mirror over HTTP;
# every other destination is rejected in the FORWARD path before a packet
# leaves the machine.  DNS is answered by Docker's embedded resolver on the
# host side, so containers need no outside resolver.
#
#   egress-guard.sh apply    install/refresh the rules (idempotent)
#   egress-guard.sh verify   check the rules are in place (first in DOCKER-USER, REJECT last)
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
  for ip in $( (echo "$TGP_APT_IP"; for h in $hosts deb.debian.org; do getent ahostsv4 "$h"; done | awk '{print $1}') | grep . | sort -u); do
    iptables -w -A "$chain" -d "$ip/32" -p tcp -m multiport --dports 80,443 -j RETURN
  done
  iptables -w -A "$chain" -m limit --limit 30/min -j LOG --log-prefix "tgp-egress-rejected: "
  iptables -w -A "$chain" -j REJECT --reject-with icmp-admin-prohibited
  iptables -w -C DOCKER-USER -s "$TGP_SUBNET" -j "$chain" 2>/dev/null ||
    iptables -w -I DOCKER-USER 1 -s "$TGP_SUBNET" -j "$chain"
}

count() {
  iptables -w -L "$chain" -v -n -x | awk '$3 == "REJECT" {print $1}'
}

# what was rejected (kernel log lines of the LOG rule), for the report
show() {
  dmesg 2>/dev/null | grep 'tgp-egress-rejected: ' | tail -"${1:-20}" || true
}

verify() {
  iptables -w -C DOCKER-USER -s "$TGP_SUBNET" -j "$chain" ||
    { echo "egress guard: DOCKER-USER does not send $TGP_SUBNET to $chain" >&2; exit 1; }
  [ "$(iptables -w -S DOCKER-USER | sed -n 2p)" = "-A DOCKER-USER -s $TGP_SUBNET -j $chain" ] ||
    { echo "egress guard: the jump to $chain is not the first rule of DOCKER-USER" >&2; exit 1; }
  [ "$(iptables -w -S "$chain" | tail -1)" = "-A $chain -j REJECT --reject-with icmp-admin-prohibited" ] ||
    { echo "egress guard: $chain does not end in REJECT" >&2; exit 1; }
  echo "egress guard: $TGP_SUBNET may reach only itself, this host and: $(iptables -w -S "$chain" | awk '/-d .*dports/ {print $4}' | tr '\n' ' ')"
}

case "${1:-}" in
  apply) apply ;;
  verify) verify ;;
  count) count ;;
  show) show "${2:-20}" ;;
  zero) iptables -w -Z "$chain" ;;
  *) echo "usage: $0 apply|verify|count|show|zero" >&2; exit 2 ;;
esac
