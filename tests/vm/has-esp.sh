#!/usr/bin/env bash
# Can this kernel carry ESP? Installs one tunnel-mode ESP SA with a dummy key in a throw-away
# network namespace. Exit 0: yes. Exit 1: no, with the kernel's answer on stdout (a kernel
# without esp4 answers EPROTONOSUPPORT, which iproute2 prints as "Requested type not found" or
# "Protocol not supported"). Exit 2: cannot tell (not root, no iproute2).
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "not root"; exit 2; }
command -v ip >/dev/null || { echo "no ip command (iproute2)"; exit 2; }
ns=fzespprobe$$
ip netns add "$ns" 2>/dev/null || { echo "cannot create a network namespace"; exit 2; }
trap 'ip netns del "$ns" 2>/dev/null' EXIT
if out=$(ip -n "$ns" xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode tunnel \
  enc 'cbc(aes)' 0x000102030405060708090a0b0c0d0e0f \
  auth-trunc 'hmac(sha1)' 0x000102030405060708090a0b0c0d0e0f10111213 96 2>&1); then
  exit 0
fi
echo "${out:-ip xfrm state add failed}"
exit 1
