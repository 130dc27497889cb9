#!/usr/bin/env bash
# Test CA and server certificates for the test bed (idempotent).
#   make-ca.sh DIR NAME...   -> DIR/ca.crt and DIR/NAME.crt, DIR/NAME.key per NAME
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
[ -s ca.key ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=tgproxy test bed CA" -keyout ca.key -out ca.crt 2>/dev/null
for name in "$@"; do
  if [ ! -s "$name.crt" ] || ! openssl x509 -in "$name.crt" -noout -checkend 86400 >/dev/null; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
      -keyout "$name.key" -out "$name.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$name" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  fi
  chmod 0644 "$name.crt"
  chmod 0600 "$name.key"
done
chmod 0644 ca.crt
chmod 0600 ca.key
