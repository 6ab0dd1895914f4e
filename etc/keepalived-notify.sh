#!/usr/bin/env bash
# keepalived-notify.sh: tell isakmpd(8) that this gateway became the VRRP master (active)
# or stopped being it (passive), by writing isakmpd's FIFO command `M active` or
# `M passive` to its FIFO, as isakmpd(8)'s HIGH AVAILABILITY section describes for -S.
#
# Called by keepalived as a `notify` script (arguments: GROUP|INSTANCE, name, state,
# priority; see etc/keepalived.conf.example), or by hand with one argument:
#
#   keepalived-notify.sh INSTANCE IKE MASTER 100     -> M active
#   keepalived-notify.sh INSTANCE IKE BACKUP 100     -> M passive (also FAULT, STOP)
#   keepalived-notify.sh active | passive
#
# The FIFO is $ISAKMPD_FIFO, else /var/run/isakmpd.fifo (isakmpd's default, -f).
# keepalived must never hang on us: we write only to a FIFO that exists, and give up
# after $ISAKMPD_FIFO_TIMEOUT seconds (default 5) when no isakmpd is reading it (opening a
# FIFO for writing blocks until a reader opens it). Messages go to syslog and stderr.
set -u

fifo="${ISAKMPD_FIFO:-/var/run/isakmpd.fifo}"
wait_secs="${ISAKMPD_FIFO_TIMEOUT:-5}"

say() {
  logger -t keepalived-notify -p daemon.notice -- "$*" 2>/dev/null || true
  echo "keepalived-notify: $*" >&2
}

case "$#:${1:-}" in
  1:active|1:passive) mode="$1" ;;
  4:GROUP|4:INSTANCE)
    case "$3" in
      MASTER) mode=active ;;
      BACKUP|FAULT|STOP|DELETED) mode=passive ;;
      *) say "unknown VRRP state '$3' for $1 $2; isakmpd left as it is"; exit 0 ;;
    esac
    ;;
  *)
    echo "usage: keepalived-notify.sh active|passive" >&2
    echo "       keepalived-notify.sh GROUP|INSTANCE name MASTER|BACKUP|FAULT|STOP priority" >&2
    exit 2
    ;;
esac

if [ ! -p "$fifo" ]; then
  say "$fifo is not a FIFO (is isakmpd running?); not sent: M $mode"
  exit 1
fi

# The open and the write happen in the child shell, so `timeout` bounds both.
if timeout --kill-after=1 "$wait_secs" \
    bash -c 'printf "M %s\n" "$1" > "$2"' keepalived-notify "$mode" "$fifo"; then
  say "sent to $fifo: M $mode"
  exit 0
fi
say "isakmpd did not read $fifo within ${wait_secs}s; not sent: M $mode"
exit 1
