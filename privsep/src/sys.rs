//! The few calls of the daemon that need `unsafe`.

use std::ffi::CString;

/// Open the syslog connection now (LOG_NDELAY), so that it survives chroot.
pub(crate) fn openlog_daemon() {
    // openlog keeps the pointer: it must live for the process's life.
    static IDENT: &[u8] = b"isakmpd\0";
    // SAFETY: IDENT is a NUL-terminated static string, valid for the whole process; the
    // flags and facility are libc constants.
    unsafe {
        libc::openlog(
            IDENT.as_ptr().cast(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    };
}

/// Send one message to syslog at `priority`.
pub(crate) fn syslog(priority: libc::c_int, msg: &str) {
    // Interior NULs cannot be sent; replace them rather than drop the message.
    let Ok(c) = CString::new(msg.replace('\0', "\\0")) else {
        return;
    };
    // SAFETY: the format is a static "%s" and its one argument a valid NUL-terminated
    // string that outlives the call.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), c.as_ptr()) };
}

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
