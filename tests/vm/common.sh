# Sourced by the other tests/vm scripts: where the guest's kernel, modules and initramfs live.
#
# FZ_VM_CACHE overrides; the default is fz-vm/ in the cargo target directory, which a CI run
# keeps between `tests/run` (which fills it) and the tests (which use it), and which
# `cargo clean` removes. Nothing here is ever committed.
VM_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_SRC/../.." && pwd)
if [ -z "${FZ_VM_CACHE:-}" ]; then
  FZ_VM_CACHE=${CARGO_TARGET_DIR:-$REPO/target}/fz-vm
fi
mkdir -p "$FZ_VM_CACHE"
FZ_VM_CACHE=$(cd "$FZ_VM_CACHE" && pwd)
KROOT=$FZ_VM_CACHE/kroot

say() { echo "fz-vm: $*" >&2; }
die() { say "$*"; exit 1; }

# The kernel release unpacked in $KROOT (empty if none yet).
kernel_release() {
  local d
  for d in "$KROOT"/lib/modules/*/; do
    [ -d "$d" ] && { basename "$d"; return 0; }
  done
  return 0
}
