#!/usr/bin/env bash
# Install what the interop matrix (tests/tests/interop.rs) needs, only what is missing.
# Debian 12 (bookworm), as root. Idempotent; prints one line per peer it found.
#
#   tests/interop/setup.sh            install and unpack
#   tests/interop/setup.sh --check    install nothing; exit 1 and say what is missing
#
# strongSwan: Debian's charon + swanctl (vici), with the extra plugins for kernel-libipsec
# (userspace ESP when the kernel has none).
# Libreswan: its package conflicts with strongSwan's (strongswan-libcharon, -starter), so
# its .deb is fetched with `apt-get download` and unpacked into a private root,
# $LIBRESWAN_ROOT (default /var/lib/isakmpd-interop/libreswan-root); its runtime
# libraries are ordinary packages and are installed normally. Nothing of it touches
# /usr/libexec/ipsec: the test bind-mounts the private copy there inside the peer's own
# mount namespace.
set -euo pipefail
LIBRESWAN_ROOT=${LIBRESWAN_ROOT:-/var/lib/isakmpd-interop/libreswan-root}
CHECK=no; [ "${1:-}" = --check ] && CHECK=yes

pkgs=(strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins
      libstrongswan-standard-plugins nftables iproute2 iputils-ping openssl libnss3-tools)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
pluto=$LIBRESWAN_ROOT/usr/libexec/ipsec/pluto
if [ $CHECK = yes ]; then
  [ -x "$pluto" ] || missing+=("libreswan (unpacked in $LIBRESWAN_ROOT)")
  if [ ${#missing[@]} -gt 0 ]; then echo "missing: ${missing[*]}"; exit 1; fi
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "setup.sh: must run as root" >&2; exit 1; }
updated=no
apt_update() { [ $updated = yes ] || { apt-get update -qq; updated=yes; }; }
if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x "$pluto" ]; then
  apt_update
  # Runtime dependencies of pluto: the Depends line, alternatives reduced to the first.
  mapfile -t deps < <(apt-cache show libreswan | awk -F': ' '/^Depends:/{print $2; exit}' \
    | tr ',' '\n' | sed 's/([^)]*)//; s/|.*//; s/ //g' | grep -v '^$')
  need=()
  for d in "${deps[@]}"; do dpkg -s "$d" >/dev/null 2>&1 || need+=("$d"); done
  if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  tmp=$(mktemp -d); chmod 755 "$tmp"   # apt-get download runs as _apt
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq libreswan >/dev/null)
  mkdir -p "$LIBRESWAN_ROOT"
  dpkg-deb -x "$tmp"/libreswan_*.deb "$LIBRESWAN_ROOT"
fi
echo "strongSwan: $(/usr/lib/ipsec/charon --version 2>&1 | head -1)"
echo "Libreswan: $("$pluto" --version 2>&1 | head -1) in $LIBRESWAN_ROOT"
