//! Becoming a daemon: double fork, setsid, stdio to /dev/null.

use nix::unistd::{setsid, ForkResult};
use std::os::fd::AsRawFd;

/// Detach from the terminal. Call while single-threaded (before the tokio runtime): the
/// original process and the intermediate one exit here; only the daemon returns.
pub fn daemonize() -> std::io::Result<()> {
    match crate::sys::fork()? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    setsid()?;
    // The second fork makes sure the daemon, no session leader, never gets a terminal back.
    match crate::sys::fork()? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    std::env::set_current_dir("/")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in [0, 1, 2] {
        nix::unistd::dup2(null.as_raw_fd(), fd)?;
    }
    Ok(())
}
