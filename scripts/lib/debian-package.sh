# Sourced by the get-*.sh scripts: download one Debian package with a private apt state (no root
# changes to the machine's apt) and unpack it into a folder. The mirror is read from this machine's own
# apt sources; no host is named here.
#
#   debian_package_extract PACKAGE SUITE DEST
#
# Prints progress on stderr; returns non-zero with a reason on stderr when it cannot.

debian_mirror() {
  local f mirror=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror="$(awk '
      /^URIs:/ { uri=$2 }
      /^Suites:/ { if (uri ~ /debian/ && uri !~ /security/) { print uri; exit } }
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
  [ -n "$mirror" ] || return 1
  echo "$mirror"
}

debian_package_extract() {
  local package="$1" suite="$2" dest="$3" mirror work keyring deb
  command -v apt-get >/dev/null || { echo "no apt-get on this machine" >&2; return 1; }
  command -v dpkg >/dev/null || { echo "no dpkg on this machine" >&2; return 1; }
  mirror="$(debian_mirror)" || { echo "found no Debian mirror in /etc/apt sources" >&2; return 1; }
  work="$(mktemp -d)"
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc" "$work/cache"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ -f "$keyring" ]; then
    echo "deb [signed-by=$keyring] $mirror $suite main" > "$work/etc/sources.list"
  else
    echo "deb $mirror $suite main" > "$work/etc/sources.list"
  fi
  local opts=(
    -o "Dir::Etc::SourceList=$work/etc/sources.list"
    -o "Dir::Etc::SourceParts=$work/etc/none"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::Cache::archives=$work/archives"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
  )
  echo "downloading Debian $suite's $package into $dest (one time)" >&2
  if ! apt-get -qq "${opts[@]}" update >&2; then
    echo "apt-get update for $suite failed" >&2; rm -rf "$work"; return 1
  fi
  if ! (cd "$work" && apt-get -qq "${opts[@]}" download "$package" >&2); then
    echo "apt-get download $package failed" >&2; rm -rf "$work"; return 1
  fi
  deb="$(ls "$work"/"${package}"_*.deb 2>/dev/null | head -n 1)"
  if [ -z "$deb" ]; then
    echo "no $package .deb was downloaded" >&2; rm -rf "$work"; return 1
  fi
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  dpkg -x "$deb" "$dest.tmp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  rm -rf "$work"
}
