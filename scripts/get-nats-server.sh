#!/usr/bin/env bash
# Prints the path of a nats-server binary >= 2.10.19 (CPU profiles over the system account need it).
#
# Order of preference:
#   1. $NATS_SERVER_BIN, if set (must be new enough)
#   2. a nats-server on PATH that is new enough
#   3. a cached copy under .cache/nats-server/
#   4. Debian trixie's nats-server package, downloaded with a private apt state into that cache.
#      The Debian mirror is read from this machine's own apt sources; no host is named here.
#
# Only the path goes to stdout; progress and errors go to stderr. Exit 1 when no binary can be had.
set -euo pipefail

MIN_VERSION="2.10.19"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${NATS_AUTOPROF_CACHE:-$root/.cache}/nats-server"

log() { echo "get-nats-server: $*" >&2; }

# version_of BIN -> prints e.g. 2.10.27, or nothing
version_of() {
  "$1" --version 2>/dev/null | sed -n 's/.*v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}

# new_enough VERSION -> exit 0 when VERSION >= MIN_VERSION
new_enough() {
  [ -n "$1" ] || return 1
  [ "$(printf '%s\n%s\n' "$MIN_VERSION" "$1" | sort -V | head -n 1)" = "$MIN_VERSION" ]
}

accept() {
  local bin="$1" v
  v="$(version_of "$bin")"
  if new_enough "$v"; then
    echo "$bin"
    exit 0
  fi
  log "$bin is version '${v:-unknown}', need >= $MIN_VERSION"
  return 1
}

if [ -n "${NATS_SERVER_BIN:-}" ]; then
  [ -x "$NATS_SERVER_BIN" ] || { log "NATS_SERVER_BIN=$NATS_SERVER_BIN is not an executable file"; exit 1; }
  accept "$NATS_SERVER_BIN" || { log "NATS_SERVER_BIN is too old"; exit 1; }
fi

if on_path="$(command -v nats-server 2>/dev/null)"; then
  accept "$on_path" || true
fi

cached="$cache/usr/sbin/nats-server"
if [ -x "$cached" ]; then
  accept "$cached" || true
fi

# --- download Debian trixie's package with a private apt state -------------------------------
# shellcheck source=lib/debian-package.sh
. "$root/scripts/lib/debian-package.sh"
debian_package_extract nats-server trixie "$cache" || { log "could not download nats-server; set NATS_SERVER_BIN"; exit 1; }
[ -x "$cached" ] || { log "the package held no usr/sbin/nats-server"; exit 1; }
accept "$cached" || { log "the downloaded nats-server is too old"; exit 1; }
