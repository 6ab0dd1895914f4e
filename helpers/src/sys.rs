//! The few calls that need `unsafe`. Everything else goes through `nix`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Take ownership of a descriptor the kernel just installed for us (SCM_RIGHTS).
pub(crate) fn owned_from_received(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was returned by recvmsg(2) in an SCM_RIGHTS control message: the kernel
    // installed it in our table for this call, nothing else refers to it, and we take
    // ownership exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Arrange for `fd` to appear as descriptor `target` (without close-on-exec) in the process
/// `cmd` starts. The caller keeps `fd` open until `spawn` returns.
pub(crate) fn inherit_fd_as(cmd: &mut Command, fd: RawFd, target: RawFd) {
    // SAFETY: the closure runs between fork and exec in the child. It calls only dup2(2) and
    // fcntl(2), both async-signal-safe, allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Take ownership of a descriptor number inherited at exec (see `inherit_fd_as`).
/// Returns `None` unless the number is open.
pub(crate) fn owned_from_inherited(fd: RawFd) -> Option<OwnedFd> {
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return None;
    }
    // Mark it close-on-exec again: nothing we exec should inherit it.
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    // SAFETY: the descriptor is open (F_GETFD succeeded) and by the exec protocol of this
    // crate it was passed to us for our exclusive use; we take ownership once, at start-up.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Register an owned descriptor with the current tokio reactor.
pub(crate) fn register_async(fd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor, it is moved into the `AsyncFd`, so it
    // stays open for the `AsyncFd`'s whole life, and `as_raw_fd` on it always returns the
    // same number.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(std::io::Error::from)
}
