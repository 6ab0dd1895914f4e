//! The few calls of the daemon that need `unsafe`.

/// fork(2). Only call while the process has a single thread (checked): then the child is a
/// faithful copy and may go on running Rust code.
pub(crate) fn fork() -> std::io::Result<nix::unistd::ForkResult> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(std::io::Error::other(format!(
            "fork with {threads} threads refused"
        )));
    }
    // SAFETY: the process is single-threaded (checked just above), so no lock can be held
    // by a thread that does not exist in the child.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// Linux's UDP_ENCAP socket option and its ESP-in-UDP type (RFC 3948), from
/// <linux/udp.h>; the libc crate does not export them for every target.
const UDP_ENCAP: libc::c_int = 100;
const UDP_ENCAP_ESPINUDP: libc::c_int = 2;

/// Mark a NAT-T socket as RFC 3948 ESP-in-UDP: the kernel then takes the ESP packets that
/// arrive on it (no non-ESP marker) for its SAs and passes IKE (with the marker) to us.
pub(crate) fn set_udp_encap_espinudp(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    let value: libc::c_int = UDP_ENCAP_ESPINUDP;
    // SAFETY: fd is a valid open descriptor for the duration of the call (borrowed); the
    // option value points to a live c_int and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SOL_UDP,
            UDP_ENCAP,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// IP_XFRM_POLICY and IPV6_XFRM_POLICY from <linux/in.h> and <linux/in6.h>.
const IP_XFRM_POLICY: libc::c_int = 17;
const IPV6_XFRM_POLICY: libc::c_int = 35;

/// Let IKE on this socket bypass IPsec in both directions (see `kernel::socket_bypass_policy`).
pub(crate) fn set_socket_bypass(fd: std::os::fd::BorrowedFd<'_>, v6: bool) -> std::io::Result<()> {
    let (level, name, family) = if v6 {
        (libc::IPPROTO_IPV6, IPV6_XFRM_POLICY, libc::AF_INET6)
    } else {
        (libc::IPPROTO_IP, IP_XFRM_POLICY, libc::AF_INET)
    };
    for outbound in [false, true] {
        let policy = kernel::socket_bypass_policy(family as u16, outbound);
        // SAFETY: fd is a valid open descriptor for the duration of the call (borrowed); the
        // value points to `policy`, a live buffer of exactly the length passed, laid out as
        // the kernel's struct xfrm_userpolicy_info.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                level,
                name,
                policy.as_ptr().cast(),
                policy.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
