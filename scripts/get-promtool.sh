#!/usr/bin/env bash
# Prints the path of a `promtool` binary (used by the tests to check the /metrics exposition):
# $PROMTOOL_BIN, else one on PATH, else a cached copy under .cache/prometheus/, else Debian bookworm's
# prometheus package (bookworm ships promtool in it) unpacked into that cache with a private apt state (see lib/debian-package.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${NATS_AUTOPROF_CACHE:-$root/.cache}/prometheus"
log() { echo "get-promtool: $*" >&2; }

if [ -n "${PROMTOOL_BIN:-}" ]; then
  [ -x "$PROMTOOL_BIN" ] || { log "PROMTOOL_BIN=$PROMTOOL_BIN is not an executable file"; exit 1; }
  echo "$PROMTOOL_BIN"; exit 0
fi
if p="$(command -v promtool 2>/dev/null)"; then echo "$p"; exit 0; fi
cached="$cache/usr/bin/promtool"
if [ -x "$cached" ]; then echo "$cached"; exit 0; fi
# shellcheck source=lib/debian-package.sh
. "$root/scripts/lib/debian-package.sh"
debian_package_extract prometheus bookworm "$cache" || { log "could not download prometheus; set PROMTOOL_BIN"; exit 1; }
[ -x "$cached" ] || { log "the package held no usr/bin/promtool"; exit 1; }
# Keep only promtool (the server binary and web assets are most of the package).
mv "$cached" "$cache.promtool" && rm -rf "$cache" && mkdir -p "$(dirname "$cached")" && mv "$cache.promtool" "$cached"
echo "$cached"
