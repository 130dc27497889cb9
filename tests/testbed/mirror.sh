#!/usr/bin/env bash
# Serve the artifact mirror over HTTP on the test network's gateway address.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
pidfile=$TGP_CACHE/mirror.pid
case "${1:-}" in
  start)
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
      curl -fsS -o /dev/null "$TGP_MIRROR_URL/"; then exit 0; fi
    nohup python3 -m http.server --bind "$TGP_GATEWAY" --directory "$TGP_CACHE/mirror" "$TGP_MIRROR_PORT" \
      >"$TGP_CACHE/logs/mirror.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 30); do curl -fsS -o /dev/null "$TGP_MIRROR_URL/" 2>/dev/null && exit 0; sleep 0.5; done
    echo "mirror did not start" >&2; exit 1 ;;
  stop) [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; rm -f "$pidfile" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
