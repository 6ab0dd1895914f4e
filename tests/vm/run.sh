#!/usr/bin/env bash
# Run one command as root in a throw-away QEMU guest booting Debian's stock kernel (which has
# ESP, GCM, NAT... as modules) over the host's root filesystem: the host's binaries, the
# checkout and the cargo target directory are all there at their host paths, read-only with a
# private writable overlay (tmpfs). The guest has no network device: only namespaces it makes.
#
#   tests/vm/run.sh [-t SECS] [-e NAME=VALUE]... [--] COMMAND [ARG...]
#
# The command runs in the caller's working directory with the PATH of the guest's init,
# FZ_GUEST=1 and each -e variable. Its output (stdout and stderr together) goes to stdout,
# the run's timings and any boot trouble to stderr, and run.sh exits with its status; if the
# guest never reported one (boot failure, timeout) it says why and exits 125.
#
# Environment: FZ_VM_CACHE (see common.sh), FZ_VM_MEM (MiB, default 1536), FZ_VM_CPUS (default:
# the host's, at most 4), FZ_VM_ACCEL (tcg, the default, or kvm), FZ_VM_KEEP=1 keeps the run
# directory, FZ_VM_MODULES (extra modules to load at boot).
set -euo pipefail
. "$(dirname "$0")/common.sh"

timeout=600
env_lines=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) timeout=$2; shift 2 ;;
    -e) case $2 in *=*) ;; *) die "-e wants NAME=VALUE, not $2" ;; esac
        env_lines+=("export ${2%%=*}=$(printf '%q' "${2#*=}")"); shift 2 ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die "usage: $0 [-t SECS] [-e NAME=VALUE]... [--] COMMAND [ARG...]"
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

# The kernel and the initramfs, made on first use (tests/run makes them beforehand).
rel=$(kernel_release)
[ -n "$rel" ] && [ -e "$KROOT/boot/vmlinuz-$rel" ] || bash "$VM_SRC/fetch-kernel.sh"
rel=$(kernel_release)
initrd=$FZ_VM_CACHE/initramfs.cpio.gz
if [ ! -s "$initrd" ] || [ "$VM_SRC/mkinitramfs.sh" -nt "$initrd" ] \
  || [ "$(cat "$FZ_VM_CACHE/initramfs.release" 2>/dev/null)" != "$rel" ]; then
  bash "$VM_SRC/mkinitramfs.sh"
fi

# One directory per run, shared read-write with the guest at the same path.
mkdir -p "$FZ_VM_CACHE/runs"
run=$(mktemp -d "$FZ_VM_CACHE/runs/run.XXXXXX")
[ "${FZ_VM_KEEP:-0}" = 1 ] || trap 'rm -rf "$run"' EXIT
cp "$VM_SRC/guest-init.sh" "$run/guest-init.sh"
echo "$KROOT" > "$run/kroot"
# Loaded at boot: ESP-in-UDP needs no module of its own (esp4 does it), the rest autoload
# through their aliases; xfrm_user is here so that the first `ip xfrm` is not the one to wait.
echo "xfrm_user esp4 esp6 ${FZ_VM_MODULES:-}" > "$run/modules"
{
  echo "cd -- $(printf '%q' "$PWD") || exit 125"
  for l in "${env_lines[@]}"; do echo "$l"; done
  printf 'exec'; printf ' %q' "$@"; echo
} > "$run/job.sh"

cpus=${FZ_VM_CPUS:-$(nproc)}
[ "$cpus" -le 4 ] || cpus=4
case ${FZ_VM_ACCEL:-tcg} in
  # Nested KVM hangs in early boot on some cloud VMs even where /dev/kvm exists: opt in.
  kvm) accel=(-accel kvm -cpu host) ;;
  tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
  *) die "FZ_VM_ACCEL is tcg or kvm" ;;
esac
start=$(date +%s.%N)
rc=0
timeout -k 10 "$timeout" "$qemu" -nodefaults -no-user-config "${accel[@]}" \
  -m "${FZ_VM_MEM:-1536}" -smp "$cpus" -display none -monitor none -no-reboot \
  -serial "file:$run/console.log" \
  -kernel "$KROOT/boot/vmlinuz-$rel" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init fzrun=$run" \
  -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev "local,id=run,path=$run,security_model=none,multidevs=remap" \
  -device virtio-9p-pci,fsdev=run,mount_tag=run \
  < /dev/null > "$run/qemu.log" 2>&1 || rc=$?
wall=$(echo "$(date +%s.%N) $start" | awk '{printf "%.1f", $1 - $2}')

[ -f "$run/output" ] && cat "$run/output"
if [ -s "$run/modprobe.log" ]; then say "modprobe at boot: $(cat "$run/modprobe.log")"; fi
if [ ! -s "$run/status" ]; then
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then say "timed out after ${timeout}s"; fi
  say "the guest reported no exit status (qemu exit $rc, ${wall}s); qemu said:"
  tail -n 20 "$run/qemu.log" >&2 || true
  say "guest console:"
  tail -n 40 "$run/console.log" >&2 || true
  exit 125
fi
status=$(cat "$run/status")
say "guest kernel $rel booted in $(cat "$run/booted")s, command finished at $(cat "$run/finished")s (guest clock), ${wall}s wall in all, exit status $status"
exit "$status"
