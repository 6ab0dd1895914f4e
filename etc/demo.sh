#!/usr/bin/env bash
# Two isakmpd gateways on one machine, each in its own network namespace, joined by a veth
# pair, configured from etc/isakmpd.conf.example-east and -west:
#
#   10.1.0.0/16 --- east 192.0.2.1 ===== veth ===== 192.0.2.2 west --- 10.2.0.0/16
#
# East brings up phase 1 (Main Mode, pre-shared key) and phase 2 (Quick Mode, ESP tunnel)
# with west. Both run with -d -v: in the foreground, logging each completed phase, with the
# SAs and policies installed in each namespace's XFRM. Then 10.1.0.1 pings 10.2.0.1 through
# the tunnel and the ESP counters are shown. On a kernel without ESP (some VMs and
# containers) the daemons log the kernel's refusal of each SA and the ping is skipped.
# Needs root (namespaces).
#
#   sudo etc/demo.sh            bring it up, print the phase lines, tear it all down
#   sudo etc/demo.sh --keep     ... and leave it running (logs followed) until Ctrl-C
#
# The binary is $ISAKMPD if set, else this checkout's `cargo build --release -p privsep`.
# Everything it makes is named isakmpd-demo-* and removed on exit.
set -euo pipefail

keep=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $a (try --help)" >&2; exit 1 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: network namespaces need root; run it with sudo" >&2
  exit 1
fi

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [ -n "${ISAKMPD:-}" ]; then
  bin="$ISAKMPD"
else
  echo "demo.sh: building isakmpd (cargo build --release -p privsep)" >&2
  (cd "$root" && cargo build --release -p privsep >&2)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/isakmpd"
fi
if [ ! -x "$bin" ]; then
  echo "demo.sh: no isakmpd binary at $bin" >&2
  exit 1
fi

sides=(east west)
declare -A addr=([east]=192.0.2.1 [west]=192.0.2.2)
declare -A net=([east]=10.1.0.1/16 [west]=10.2.0.1/16)
declare -A other=([east]=10.2.0.0/16 [west]=10.1.0.0/16)
declare -A pid=()
run=""
tailpid=""

cleanup() {
  local s
  trap - EXIT INT TERM
  for s in "${sides[@]}"; do
    if [ -n "${pid[$s]:-}" ] && kill -0 "${pid[$s]}" 2>/dev/null; then
      kill -TERM "${pid[$s]}" 2>/dev/null || true
    fi
  done
  for s in "${sides[@]}"; do
    if [ -n "${pid[$s]:-}" ]; then
      # SIGTERM: the daemon deletes its SAs (telling the peer) and exits within seconds.
      for _ in $(seq 50); do kill -0 "${pid[$s]}" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "${pid[$s]}" 2>/dev/null || true
      wait "${pid[$s]}" 2>/dev/null || true
    fi
    ip netns del "isakmpd-demo-$s" 2>/dev/null || true
  done
  # The log follower last, so the daemons' shutdown lines are shown.
  if [ -n "$tailpid" ]; then kill "$tailpid" 2>/dev/null || true; fi
  if [ -n "$run" ]; then rm -rf "$run"; fi
  rmdir /var/run/isakmpd-demo 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespaces and the link; a demo left over from before is removed first.
for s in "${sides[@]}"; do
  ip netns del "isakmpd-demo-$s" 2>/dev/null || true
  ip netns add "isakmpd-demo-$s"
  ip -n "isakmpd-demo-$s" link set lo up
done
ip link add idemo-east netns isakmpd-demo-east type veth peer name idemo-west netns isakmpd-demo-west
for s in "${sides[@]}"; do
  ip -n "isakmpd-demo-$s" addr add "${addr[$s]}/24" dev "idemo-$s"
  ip -n "isakmpd-demo-$s" link set "idemo-$s" up
  # The client subnet behind each gateway: an address on lo, and a route to the other one.
  ip -n "isakmpd-demo-$s" addr add "${net[$s]}" dev lo
done
ip -n isakmpd-demo-east route add "${other[east]}" via "${addr[west]}" src 10.1.0.1
ip -n isakmpd-demo-west route add "${other[west]}" via "${addr[east]}" src 10.2.0.1

# Configurations mode 0600 (isakmpd refuses one that others may read) and the run files,
# all under /var/run, where isakmpd allows its pid, FIFO and report files.
mkdir -p -m 0700 /var/run/isakmpd-demo
run="$(mktemp -d /var/run/isakmpd-demo/run.XXXXXX)"
for s in "${sides[@]}"; do
  install -m 0600 "$here/isakmpd.conf.example-$s" "$run/$s.conf"
done

# West (the responder) first, then east, which initiates at once.
for s in west east; do
  ip netns exec "isakmpd-demo-$s" "$bin" -d -v \
    -c "$run/$s.conf" -i "$run/$s.pid" -f "$run/$s.fifo" -R "$run/$s.report" \
    2>"$run/$s.log" &
  pid[$s]=$!
done

up=0
for _ in $(seq 300); do
  for s in "${sides[@]}"; do
    if ! kill -0 "${pid[$s]}" 2>/dev/null; then
      echo "demo.sh: the $s daemon exited; its log:" >&2
      cat "$run/$s.log" >&2
      exit 1
    fi
  done
  if grep -q 'phase 2 established' "$run/east.log" && grep -q 'phase 2 established' "$run/west.log"; then
    up=1
    break
  fi
  sleep 0.1
done

for s in "${sides[@]}"; do
  echo "== $s (${addr[$s]}, pid ${pid[$s]}):"
  grep -E 'phase [12] established' "$run/$s.log" | sed 's/^/   /' || true
done
if [ "$up" != 1 ]; then
  echo "demo.sh: phase 2 not up on both sides within 30 s; the logs:" >&2
  for s in "${sides[@]}"; do echo "== $s" >&2; cat "$run/$s.log" >&2; done
  exit 1
fi
echo "demo.sh: both gateways have phase 1 and phase 2 up"

if grep -q 'kernel refused ESP SA' "$run/east.log"; then
  echo "demo.sh: this kernel has no ESP, so the SAs were negotiated but not installed:"
  grep -m1 'kernel refused ESP SA' "$run/east.log" | sed 's/^/   /'
  echo "demo.sh: no ping through the tunnel here"
else
  sleep 0.5
  echo "demo.sh: ping 10.1.0.1 -> 10.2.0.1 through the tunnel:"
  if ip netns exec isakmpd-demo-east ping -c 3 -i 0.3 -W 2 -I 10.1.0.1 10.2.0.1 | sed 's/^/   /'; then
    echo "demo.sh: east's ESP SAs (ip -s xfrm state):"
    ip -n isakmpd-demo-east -s xfrm state | grep -E '^src|proto esp|lifetime current|bytes' | sed 's/^/   /'
  else
    echo "demo.sh: the ping did not cross the tunnel" >&2
    exit 1
  fi
fi

if [ "$keep" = 1 ]; then
  echo "demo.sh: running; logs in $run; Ctrl-C stops both daemons and removes everything"
  echo "   processes:  ps -o pid,ppid,user,args --ppid ${pid[east]},${pid[west]}"
  tail -n 0 -f "$run/east.log" "$run/west.log" &
  tailpid=$!
  wait "${pid[east]}" "${pid[west]}" || true
fi
