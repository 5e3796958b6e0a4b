#!/usr/bin/env bash
# Installs the real consul, nomad and vault binaries that `make dev` and the tests run, into ./bin, and
# the Chromium that the web UI tests drive headless.
#
# Neither has a Debian package and `go install module@version` refuses both (their go.mod files
# replace their own submodules with folders that module zips leave out), so they are built from
# the Go module proxy with those replaces dropped. A build takes minutes, so finished binaries are
# kept in a per-user cache outside the work tree and reused by every clone on this machine.
# Binaries already on PATH are used when their version matches.
#
# Chromium is Debian's package, installed with apt-get when no chromium is on PATH; the UI tests
# find it on PATH (or at $DAGFLOW_CHROMIUM). PostgreSQL, for the history tests and make dev, is
# Debian's package too, installed the same way when missing.
set -euo pipefail

CONSUL_VERSION=${CONSUL_VERSION:-1.22.0}
NOMAD_VERSION=${NOMAD_VERSION:-1.11.3}
# Vault, for the test of the vault block against a real Vault dev server.
VAULT_VERSION=${VAULT_VERSION:-1.21.1}
# Nomad pins its api submodule to an old pseudo-version that no longer compiles with v1.11.3.
NOMAD_API_VERSION=${NOMAD_API_VERSION:-v0.0.0-20261016150620-df630b26e78a}

root=$(cd "$(dirname "$0")/.." && pwd)
bindir="$root/bin"
cache="${DAGFLOW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dagflow/tools}"
mkdir -p "$bindir" "$cache"

log() { printf 'tools: %s\n' "$*" >&2; }

# version_of NAME PATH prints the bare version a binary reports ("1.22.0").
version_of() {
  "$2" version 2>/dev/null | head -n 1 | sed -E 's/^[A-Za-z]+ v([0-9.]+).*/\1/'
}

# build NAME MODULE VERSION [extra go mod edit args...] builds MODULE@VERSION into the cache,
# with cgo when CGO=1 (the binary's cache name then ends in -cgo).
build() {
  local name=$1 module=$2 version=$3 cgo=${CGO:-0}
  shift 3
  local out="$cache/$name-$version"
  [ "$cgo" = 1 ] && out="$out-cgo"
  if [ -x "$out" ]; then
    printf '%s\n' "$out"
    return
  fi
  if [ "$cgo" = 1 ] && ! command -v gcc >/dev/null; then
    apt_install gcc "building $name with cgo"
  fi
  log "building $name v$version from the Go module proxy (a few minutes, once per machine)"
  local dir src work
  dir=$(GOFLAGS=-mod=mod go mod download -json "$module@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "go mod download $module@v$version gave no directory"; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  src="$work/src"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  (
    cd "$src"
    # Drop every replace that points into the module's own tree: those folders are not in the zip.
    # go.mod is canonical: one replace per line, "[replace] PATH [VERSION] => TARGET".
    sed -E -n 's/^(replace)?[[:space:]]*([^[:space:]]+)( [^[:space:]]+)? => \.\/.*/\2/p' go.mod |
      sort -u | while read -r path; do go mod edit -dropreplace="$path"; done
    for edit in "$@"; do go mod edit "$edit"; done
    GONOSUMDB="github.com/hashicorp/$name" GOFLAGS="-mod=mod -buildvcs=false" \
      CGO_ENABLED="$cgo" go build -trimpath -o "$out.tmp" .
  )
  mv "$out.tmp" "$out"
  printf '%s\n' "$out"
}

# install NAME MODULE VERSION [edits...] links a matching binary into ./bin.
install() {
  local name=$1 version=$3 found
  found=$(command -v "$name" || true)
  if [ -n "$found" ] && [ "$found" != "$bindir/$name" ] && [ "$(version_of "$name" "$found")" = "$version" ]; then
    log "using $found (v$version)"
  else
    found=$(build "$@")
  fi
  ln -sf "$found" "$bindir/$name"
  log "$name v$(version_of "$name" "$bindir/$name") -> bin/$name"
}

# apt_install PACKAGE WHAT installs a Debian package, as root or through sudo.
apt_install() {
  command -v apt-get >/dev/null || { log "no apt-get to install $1: install $2 by hand"; exit 1; }
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { log "installing $1 needs root: run apt-get install $1 as root"; exit 1; }
    sudo=(sudo)
  fi
  log "installing Debian's $1 for $2 (apt-get, once per machine)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$1" >/dev/null
}

# install_chromium installs Debian's chromium unless a chromium is on PATH already.
install_chromium() {
  local found
  found=$(command -v chromium || command -v chromium-browser || true)
  if [ -n "$found" ]; then
    # Debian's wrapper script prints a harmless shell warning on stderr when run as root.
    log "using $found ($("$found" --version 2>/dev/null | head -n 1))"
    return
  fi
  apt_install chromium "the UI tests (or set DAGFLOW_CHROMIUM)"
  log "$(chromium --version 2>/dev/null | head -n 1) -> $(command -v chromium)"
}

# install_postgres installs Debian's PostgreSQL unless its server programs are on PATH or where
# Debian puts them (/usr/lib/postgresql/VERSION/bin), which is where the tests look.
install_postgres() {
  local found
  found=$(command -v postgres || ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | tail -n 1 || true)
  if [ -z "$found" ]; then
    apt_install postgresql "the history tests and make dev"
    found=$(ls /usr/lib/postgresql/*/bin/postgres | tail -n 1)
  fi
  log "using $found ($("$found" --version | head -n 1))"
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
case "$what" in
  consul) install consul github.com/hashicorp/consul "$CONSUL_VERSION" ;;
  # Nomad's exec driver, which tasks with volume mounts need (raw_exec cannot mount), is only
  # compiled in with cgo.
  nomad) CGO=1 install nomad github.com/hashicorp/nomad "$NOMAD_VERSION" "-require=github.com/hashicorp/nomad/api@$NOMAD_API_VERSION" ;;
  vault) install vault github.com/hashicorp/vault "$VAULT_VERSION" ;;
  chromium) install_chromium ;;
  postgres) install_postgres ;;
  all)
    "$0" consul
    "$0" nomad
    "$0" vault
    "$0" chromium
    "$0" postgres
    ;;
  *) log "usage: $0 [consul|nomad|vault|chromium|postgres|all]..."; exit 2 ;;
esac
done
