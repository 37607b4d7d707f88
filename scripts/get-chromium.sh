#!/usr/bin/env bash
# Prints the path of a Chromium for the browser tests (test/browser/, driven by playwright-core).
#
# Order of preference:
#   1. $CHROMIUM_BIN, if set
#   2. chromium (or chromium-browser) on PATH
#   3. as root: Debian's `chromium` package (apt-get update, then apt-get install -y --no-install-recommends chromium)
#
# Only the path goes to stdout; progress and errors go to stderr. Exit 1 when no Chromium can be had.
set -euo pipefail

log() { echo "get-chromium: $*" >&2; }

works() {
  "$1" --version >/dev/null 2>&1
}

if [ -n "${CHROMIUM_BIN:-}" ]; then
  [ -x "$CHROMIUM_BIN" ] || { log "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable file"; exit 1; }
  echo "$CHROMIUM_BIN"
  exit 0
fi

for name in chromium chromium-browser; do
  if on_path="$(command -v "$name" 2>/dev/null)" && works "$on_path"; then
    echo "$on_path"
    exit 0
  fi
done

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  log "installing Debian's chromium package (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends chromium >&2
  if on_path="$(command -v chromium 2>/dev/null)" && works "$on_path"; then
    echo "$on_path"
    exit 0
  fi
fi

log "no Chromium found. Install one and run again, e.g. on Debian/Ubuntu as root:"
log "  apt-get update && apt-get install -y --no-install-recommends chromium"
log "or point CHROMIUM_BIN at a Chromium or Chrome binary."
exit 1
