#!/usr/bin/env bash
# Build the guest's initramfs, $FZ_VM_CACHE/initramfs.cpio.gz: a static busybox and the few
# modules needed to reach the host's files (virtio PCI, 9p over virtio, overlayfs), and a
# first-stage /init that mounts the host's root read-only under a tmpfs overlay, mounts the
# run's read-write share and switches to the host's bash running the run's guest-init.sh.
# Needs fetch-kernel.sh to have run; needs busybox-static, cpio, kmod.
set -euo pipefail
. "$(dirname "$0")/common.sh"

rel=$(kernel_release)
[ -n "$rel" ] || die "no kernel in $KROOT: run fetch-kernel.sh first"
bb=$(command -v busybox || true)
[ -n "$bb" ] || die "busybox missing (apt-get install busybox-static)"
# The initramfs has no C library: a dynamically linked busybox cannot run there.
case $(LC_ALL=C ldd "$bb" 2>&1 || true) in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) die "$bb is dynamically linked (apt-get install busybox-static)" ;;
esac
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"

work=$(mktemp -d "$FZ_VM_CACHE/initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,lib/mods,proc,sys,dev,lower,upper,newroot}
cp "$bb" "$work/bin/busybox"

# Each module after the ones it needs, once; built-in ones print as "builtin" and are skipped.
: > "$work/lib/mods/order"
for m in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -d "$KROOT" -S "$rel" --show-depends "$m" || die "kernel $rel has no module $m"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
  name=$(basename "$ko"); name=${name%%.ko*}.ko
  case $ko in
    *.ko.xz) xz -dc "$ko" > "$work/lib/mods/$name" ;;
    *.ko.zst) zstd -qdc "$ko" > "$work/lib/mods/$name" ;;
    *.ko.gz) gzip -dc "$ko" > "$work/lib/mods/$name" ;;
    *) cp "$ko" "$work/lib/mods/$name" ;;
  esac
  echo "$name" >> "$work/lib/mods/order"
done

cat > "$work/init" <<'INIT'
#!/bin/busybox sh
# Stage 1 (initramfs). Stage 2 is the host's bash running $fzrun/guest-init.sh.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "fz-vm stage 1: $*"; echo o > /proc/sysrq-trigger; sleep 10; }
run=$(sed -n 's/.*[ ^]fzrun=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$run" ] || run=$(sed -n 's/^fzrun=\([^ ]*\).*/\1/p' /proc/cmdline)
for m in $(cat /lib/mods/order); do insmod "/lib/mods/$m" || fail "insmod $m"; done
# cache=loose: the host's root does not change under a run, and TCG pays for every round trip.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
  || fail "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work,index=off,xino=off,metacopy=off,redirect_dir=off \
  overlay /newroot || fail "overlay over the host root failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 run "/newroot$run" \
  || fail "cannot mount the run directory $run (9p tag run)"
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$run/guest-init.sh"
INIT
chmod 0755 "$work/init"
out=$FZ_VM_CACHE/initramfs.cpio.gz
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
echo "$rel" > "$FZ_VM_CACHE/initramfs.release"
say "initramfs $out for $rel: $(tr '\n' ' ' < "$work/lib/mods/order")"
