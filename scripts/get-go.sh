#!/usr/bin/env bash
# Prints the path of a `go` binary whose `go tool pprof` opens profiles (used by the tests that check a
# captured profile the way an operator would read it).
#
# Order of preference:
#   1. $GO_BIN, if set
#   2. a go on PATH
#   3. a cached copy under .cache/go/
#   4. Debian bookworm's golang-1.19-go package (what golang-go 1.19 depends on), downloaded with a private
#      apt state into that cache. The Debian mirror is read from this machine's own apt sources.
#
# Only the path goes to stdout; progress and errors go to stderr. Exit 1 when no go can be had.
# A cached go lives outside its built-in GOROOT: run it with GOROOT set to "$(dirname "$(dirname BIN)")".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${NATS_AUTOPROF_CACHE:-$root/.cache}/go"

log() { echo "get-go: $*" >&2; }

works() {
  GOROOT="$(dirname "$(dirname "$1")")" "$1" tool -n pprof >/dev/null 2>&1
}

if [ -n "${GO_BIN:-}" ]; then
  [ -x "$GO_BIN" ] || { log "GO_BIN=$GO_BIN is not an executable file"; exit 1; }
  echo "$GO_BIN"
  exit 0
fi

if on_path="$(command -v go 2>/dev/null)"; then
  echo "$on_path"
  exit 0
fi

cached="$cache/usr/lib/go-1.19/bin/go"
if [ -x "$cached" ] && works "$cached"; then
  echo "$cached"
  exit 0
fi

# shellcheck source=lib/debian-package.sh
. "$root/scripts/lib/debian-package.sh"
debian_package_extract golang-1.19-go bookworm "$cache" || { log "could not download go; set GO_BIN"; exit 1; }
[ -x "$cached" ] || { log "the package held no usr/lib/go-1.19/bin/go"; exit 1; }
works "$cached" || { log "$cached cannot run go tool pprof"; exit 1; }
echo "$cached"
