//! The few calls that need `unsafe`. Everything else goes through `nix`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Take ownership of a descriptor the kernel just installed for us (SCM_RIGHTS).
pub(crate) fn owned_from_received(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was returned by recvmsg(2) in an SCM_RIGHTS control message: the kernel
    // installed it in our table for this call, nothing else refers to it, and we take
    // ownership exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Most descriptors one exec may be handed at fixed numbers.
pub(crate) const MAX_INHERITED: usize = 4;
/// Where descriptors wait between fork and exec before they move to their numbers: above
/// any number a target may have, so that moving one never closes another's source.
const STAGING_FD: libc::c_int = 100;

/// Arrange for each `(fd, target)` to appear as descriptor `target` (without close-on-exec)
/// in the process `cmd` starts. All at once, because moving one descriptor to its target
/// number could otherwise close the source of another. The caller keeps the descriptors
/// open until `spawn` returns. More than [`MAX_INHERITED`] is refused at spawn.
pub(crate) fn inherit_fds_as(cmd: &mut Command, pairs: &[(RawFd, RawFd)]) {
    let n = pairs.len();
    let mut fixed = [(-1, -1); MAX_INHERITED];
    for (slot, p) in fixed.iter_mut().zip(pairs) {
        *slot = *p;
    }
    // SAFETY: the closure runs between fork and exec in the child. It calls only fcntl(2),
    // dup2(2) and close(2), all async-signal-safe, allocates nothing (the pairs are copied
    // into a fixed array before) and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            if n > MAX_INHERITED {
                return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
            }
            let mut staged = [-1; MAX_INHERITED];
            for i in 0..n {
                let fd = libc::fcntl(fixed[i].0, libc::F_DUPFD, STAGING_FD);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                staged[i] = fd;
            }
            for i in 0..n {
                // dup2 leaves close-on-exec clear on the target.
                if libc::dup2(staged[i], fixed[i].1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(staged[i]);
            }
            Ok(())
        });
    }
}

/// Take ownership of a descriptor number inherited at exec (see `inherit_fds_as`).
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

/// Where the SIGSYS handler writes its note, and the pid the note names. Set once by
/// `install_sigsys_handler`, before the filter; atomics because the handler may read them on
/// any thread.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static NOTE_TARGET: AtomicI32 = AtomicI32::new(libc::STDERR_FILENO);
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static NOTE_PID: AtomicU32 = AtomicU32::new(0);

/// `si_code` of a SIGSYS raised by a seccomp `SECCOMP_RET_TRAP` (`SYS_SECCOMP` in the kernel's
/// uapi/asm-generic/siginfo.h; libc does not export it).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_SECCOMP: libc::c_int = 1;

/// Offset of `si_syscall` in the kernel's `siginfo_t` on LP64 Linux (x86_64 and aarch64 share
/// the generic layout): `si_signo`, `si_errno`, `si_code` (three ints), four bytes of padding
/// for the pointer-aligned union, then `_sigsys { void *_call_addr; int _syscall; ... }`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SI_SYSCALL_OFFSET: usize = 24;

/// Install the SIGSYS handler that reports a trapped system call as one line
/// (`seccomp <pid> <nr>\n`) on `note_fd`, then lets the signal kill the process.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn install_sigsys_handler(pid: u32, note_fd: RawFd) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    NOTE_PID.store(pid, Ordering::SeqCst);
    NOTE_TARGET.store(note_fd, Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::SigAction(on_sigsys),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    // SAFETY: `on_sigsys` is async-signal-safe: it reads two atomics and the siginfo the
    // kernel passed, formats into a stack buffer, and calls only write(2), sigaction(2),
    // sigprocmask(2), getpid(2), gettid(2), tgkill(2) and _exit(2). It allocates nothing and
    // takes no lock.
    unsafe { sigaction(Signal::SIGSYS, &action) }.map(drop)
}

/// The system call number a seccomp SIGSYS reports, or `None` for a SIGSYS from elsewhere
/// (kill(2) from another process carries no system call).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn trapped_syscall(info: *const libc::siginfo_t) -> Option<i32> {
    if info.is_null() {
        return None;
    }
    // SAFETY: with SA_SIGINFO the kernel passes a pointer to a complete siginfo_t (128 bytes,
    // 8-aligned), valid for the handler's duration; `si_code` is a field libc declares.
    let code = unsafe { (*info).si_code };
    if code != SYS_SECCOMP {
        return None;
    }
    // SAFETY: same siginfo_t; for SYS_SECCOMP the kernel filled `_sigsys`, whose `_syscall`
    // int lies at SI_SYSCALL_OFFSET (24 + 4 <= 128, 4-aligned since the struct is 8-aligned).
    Some(unsafe {
        info.cast::<u8>()
            .add(SI_SYSCALL_OFFSET)
            .cast::<i32>()
            .read()
    })
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if let Some(nr) = trapped_syscall(info) {
        let mut line = [0u8; crate::seccomp::NOTE_MAX];
        let len = crate::seccomp::format_note(&mut line, NOTE_PID.load(Ordering::SeqCst), nr);
        let fd = NOTE_TARGET.load(Ordering::SeqCst);
        // SAFETY: `line[..len]` is initialised stack memory (format_note never returns more
        // than the buffer's length); write(2) is async-signal-safe. A short or failed write
        // loses the note, nothing else: the process dies below either way.
        let _ = unsafe { libc::write(fd, line.as_ptr().cast(), len) };
    }
    // SAFETY: all async-signal-safe calls on stack data. The default action for SIGSYS
    // terminates the process, so the parent sees "killed by SIGSYS"; SIGSYS is blocked while
    // this handler runs, hence the unblock before tgkill(2). _exit(2) is reached only if
    // the signal failed, so that a trapped process never carries on.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGSYS, &dfl, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGSYS);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        // To this thread: a signal to the process could be taken by another thread while
        // this one reaches _exit first.
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            libc::SIGSYS,
        );
        libc::_exit(128 + libc::SIGSYS);
    }
}

/// Make libc read the time zone now. glibc reads it (opening /etc/localtime, or the file
/// `TZ` names) at the first time conversion of a process, even a `gmtime_r`, which OpenSSL
/// calls to check a certificate's validity; under a seccomp filter that open would kill.
pub(crate) fn init_time_zone() {
    let t: libc::time_t = 0;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: both pointers point to live values of the right types for the duration of
    // the call; gmtime_r writes only into `tm`, which is not read afterwards.
    unsafe { libc::gmtime_r(&t, tm.as_mut_ptr()) };
}
