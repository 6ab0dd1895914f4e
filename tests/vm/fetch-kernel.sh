#!/usr/bin/env bash
# Fetch Debian's stock kernel (the package linux-image-amd64 currently points at) with
# `apt-get download` -- nothing is installed on the host -- and unpack it into
# $FZ_VM_CACHE/kroot with a modules.dep, for the guest (see README.md). Idempotent: a kernel
# already unpacked is kept. KPKG=linux-image-<release> picks another one.
set -euo pipefail
. "$(dirname "$0")/common.sh"

command -v depmod >/dev/null || die "depmod missing (apt-get install kmod)"
rel=$(kernel_release)
if [ -z "$rel" ] || [ ! -e "$KROOT/boot/vmlinuz-$rel" ]; then
  pkg=${KPKG:-}
  if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)
  fi
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)
  fi
  [ -n "$pkg" ] || die "apt knows no linux-image-amd64 (no Debian package lists?)"
  debs=$FZ_VM_CACHE/debs
  rm -rf "$debs" "$KROOT"
  mkdir -p "$debs"
  say "downloading $pkg"
  # apt drops to the _apt user for downloads; it cannot write into a root-only directory and
  # then says so, harmlessly. Keep that noise out of the log.
  (cd "$debs" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' >&2) || true
  deb=$(ls "$debs"/"$pkg"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
  dpkg-deb -x "$deb" "$KROOT.tmp"
  mv "$KROOT.tmp" "$KROOT"
  rm -rf "$debs"
  rel=$(kernel_release)
  [ -n "$rel" ] && [ -e "$KROOT/boot/vmlinuz-$rel" ] || die "$deb holds no kernel image"
fi
# Debian generates modules.dep in the package's postinst, which never ran here.
[ -s "$KROOT/lib/modules/$rel/modules.dep" ] || depmod -b "$KROOT" "$rel"
say "kernel $rel in $KROOT"
