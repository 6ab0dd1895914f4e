# Stage 2 of the guest, PID 1: the host's bash, on the host's root (read-only 9p, tmpfs
# overlay on top), with this run's directory mounted read-write at the same path as on the
# host. run.sh copies this file into the run directory; it is not executed on the host.
#
# Sets up what a booted system would have (/proc, /sys, /dev, /run, the guest kernel's modules
# for autoloading, lo), runs the run's job.sh as root, writes its output and exit status into
# the run directory and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
run=$(dirname "$0")
kroot=$(cat "$run/kroot")
rel=$(uname -r)
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
# The host's /run (pid files, netns bind mounts, sockets of the host's services) must not
# leak in; /tmp stays the overlay: writable, private to the guest, and off 9p, so unix
# sockets work there.
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/lock
mount -t tmpfs -o mode=1777 tmpfs /var/tmp 2>/dev/null
mount -t debugfs none /sys/kernel/debug 2>/dev/null
# The modules of the guest's kernel where modprobe looks for them, so that the kernel's
# request_module() (xfrm-type-2-50 for esp4, crypto-rfc4106(gcm(aes)), nft-expr-masq, ...)
# finds them: the host's /lib/modules holds the host kernel's, if any.
mkdir -p "/lib/modules/$rel"
mount --bind "$kroot/lib/modules/$rel" "/lib/modules/$rel"
echo /sbin/modprobe > /proc/sys/kernel/modprobe
# What autoloading cannot reach through an alias is loaded here.
modprobe -a $(cat "$run/modules") 2> "$run/modprobe.log"
hostname fzvm
ip link set lo up
export FZ_GUEST=1
read -r _ boot_end _ < /proc/uptime 2>/dev/null || boot_end=?
echo "$boot_end" > "$run/booted"
bash "$run/job.sh" > "$run/output" 2>&1 < /dev/null
echo $? > "$run/status"
read -r up _ < /proc/uptime
echo "$up" > "$run/finished"
sync
echo o > /proc/sysrq-trigger
sleep 30
