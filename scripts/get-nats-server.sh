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
command -v apt-get >/dev/null || { log "no apt-get here: install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN"; exit 1; }
command -v dpkg >/dev/null || { log "no dpkg here: install nats-server >= $MIN_VERSION and set NATS_SERVER_BIN"; exit 1; }

# The first Debian (not -security) mirror from this machine's sources, in either format.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror="$(awk '
    /^URIs:/ { uri=$2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/ && uri !~ /security/ && uri ~ /debian/) { print uri; exit } }
  ' "$f")"
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    mirror="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i ~ /debian/ && $i !~ /security/) { print $i; exit } break } }' "$f")"
    [ -n "$mirror" ] && break
  done
fi
[ -n "$mirror" ] || { log "found no Debian mirror in /etc/apt sources; set NATS_SERVER_BIN"; exit 1; }

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc" "$work/cache" "$cache"
if [ -f "$keyring" ]; then
  echo "deb [signed-by=$keyring] $mirror trixie main" > "$work/etc/sources.list"
else
  echo "deb $mirror trixie main" > "$work/etc/sources.list"
fi
apt_opts=(
  -o "Dir::Etc::SourceList=$work/etc/sources.list"
  -o "Dir::Etc::SourceParts=$work/etc/none"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::archives=$work/archives"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
log "downloading Debian trixie's nats-server into $cache (one time)"
apt-get -qq "${apt_opts[@]}" update >&2 || { log "apt-get update against trixie failed"; exit 1; }
(cd "$work" && apt-get -qq "${apt_opts[@]}" download nats-server >&2) || { log "apt-get download nats-server failed"; exit 1; }
deb="$(ls "$work"/nats-server_*.deb 2>/dev/null | head -n 1)"
[ -n "$deb" ] || { log "no .deb was downloaded"; exit 1; }
rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
dpkg -x "$deb" "$cache.tmp"
rm -rf "$cache" && mv "$cache.tmp" "$cache"
[ -x "$cached" ] || { log "the package held no usr/sbin/nats-server"; exit 1; }
accept "$cached" || { log "the downloaded nats-server is too old"; exit 1; }
