#!/usr/bin/env bash
# Test CA and a server certificate for the test bed's fronting domain.
#   make-ca.sh DIR DOMAIN   -> DIR/ca.crt DIR/site.crt DIR/site.key (idempotent)
set -euo pipefail
dir=$1 domain=$2
mkdir -p "$dir"
cd "$dir"
[ -s ca.key ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=tgproxy test bed CA" -keyout ca.key -out ca.crt 2>/dev/null
if [ ! -s site.crt ] || ! openssl x509 -in site.crt -noout -checkend 86400 >/dev/null ||
  ! openssl x509 -in site.crt -noout -ext subjectAltName | grep -q "DNS:$domain"; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$domain" \
    -keyout site.key -out site.csr 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$domain" >site.ext
  openssl x509 -req -in site.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile site.ext -out site.crt 2>/dev/null
fi
chmod 0644 ca.crt site.crt
chmod 0600 ca.key site.key
