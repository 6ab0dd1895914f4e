//! Seccomp allow-lists for the two unprivileged processes (DESIGN.md section 1).
//!
//! `install(Profile::Child)` confines the child (a tokio current-thread runtime on sockets it
//! was handed), `install(Profile::Helper)` a crypto helper (a blocking loop on one socket).
//! Both lists are tables below, so that they can be read and reviewed as data.
//!
//! A call outside the list is not failed with an errno, which code might retry or ignore: it
//! raises SIGSYS (`SECCOMP_RET_TRAP`). The handler (in `sys.rs`) writes one line
//! `seccomp <pid> <nr>\n` to `NOTE_FD` if that is a pipe, else to stderr, and lets the signal
//! kill the process. The parent sees the child die by SIGSYS and reads the line with
//! `parse_note`, which treats it as hostile: a compromised process can write anything there.
//!
//! There is no note when the refused call was made with SIGSYS blocked (glibc's posix_spawn
//! blocks every signal around clone3): the kernel then kills without running the handler. A
//! call through another ABI (i386 `int 0x80`) kills at once too (seccompiler's arch check),
//! and x32 numbers are simply not in the lists.
//!
//! Order for a caller: `openssl::init()` and the privilege drop, then (the child) build the
//! tokio runtime, then `install`, then run. `install` applies the filter to every thread of
//! the process (TSYNC), but no thread can be started afterwards: clone and clone3 are not
//! allowed, and a thread still starting up when the filter lands may die of it (Rust's thread
//! start calls sched_getaffinity, which only the child's list allows).

use crate::sys;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::RawFd;

/// The descriptor on which a confined process reports the system call that killed it, when
/// the parent gave it the write end of a pipe there.
pub const NOTE_FD: RawFd = 4;

/// Longest note the handler writes, newline included: "seccomp " (8), a pid (at most 10
/// digits), a space, a system call number (at most a sign and 10 digits) and "\n".
pub(crate) const NOTE_MAX: usize = 8 + 10 + 1 + 11 + 1;

/// Which allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The child: packets, the engine, IPC with the parent and the helpers, logging.
    Child,
    /// A crypto helper: requests in, answers out, OpenSSL in between.
    Helper,
}

#[derive(Debug)]
pub enum SeccompError {
    /// The allow-lists and the SIGSYS handler exist for x86_64 and aarch64 only.
    UnsupportedArch(&'static str),
    /// sigaction(SIGSYS) failed.
    Handler(nix::Error),
    /// prctl(PR_SET_NO_NEW_PRIVS) failed.
    NoNewPrivs(nix::Error),
    /// seccompiler refused the table (a bug in the table, not an operator error).
    Compile(seccompiler::BackendError),
    /// The kernel refused the filter: no seccomp support, or (TSYNC) a thread could not be
    /// synchronised.
    Apply(seccompiler::Error),
}

impl fmt::Display for SeccompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompError::UnsupportedArch(a) => {
                write!(f, "seccomp: no allow-list for architecture {a}")
            }
            SeccompError::Handler(e) => write!(f, "seccomp: sigaction(SIGSYS): {e}"),
            SeccompError::NoNewPrivs(e) => write!(f, "seccomp: prctl(PR_SET_NO_NEW_PRIVS): {e}"),
            SeccompError::Compile(e) => write!(f, "seccomp: building the filter: {e}"),
            SeccompError::Apply(seccompiler::Error::ThreadSync(tid)) => {
                write!(f, "seccomp: thread {tid} could not take the filter (TSYNC)")
            }
            SeccompError::Apply(e) => write!(f, "seccomp: installing the filter: {e}"),
        }
    }
}

impl std::error::Error for SeccompError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SeccompError::UnsupportedArch(_) => None,
            SeccompError::Handler(e) | SeccompError::NoNewPrivs(e) => Some(e),
            SeccompError::Compile(e) => Some(e),
            SeccompError::Apply(e) => Some(e),
        }
    }
}

/// When an allowed call's arguments are checked too. Arguments are compared as 32-bit values
/// (all the checked ones are C `int`s), so junk in a register's upper half cannot matter.
#[derive(Debug, Clone, Copy)]
enum Args {
    /// Any arguments.
    Any,
    /// Argument `.0` is one of `.1`.
    OneOf(u8, &'static [u64]),
    /// Argument `.0` has none of the bits `.1`.
    NoBits(u8, u64),
    /// Argument `.0` is this process's pid: a signal only to ourselves.
    OwnPid(u8),
}

/// One entry. Numbers are `i64` as seccompiler's; `libc::c_long` is that on both LP64
/// architectures supported.
#[derive(Debug, Clone, Copy)]
struct Allow {
    nr: i64,
    args: Args,
}

const fn any(nr: i64) -> Allow {
    Allow {
        nr,
        args: Args::Any,
    }
}

const fn only(nr: i64, args: Args) -> Allow {
    Allow { nr, args }
}

/// fcntl(2) commands: non-blocking mode (tokio, the IPC channel), close-on-exec, and the
/// duplicate tokio's signal driver makes of its receiver.
const FCNTL_CMDS: &[u64] = &[
    libc::F_GETFL as u64,
    libc::F_SETFL as u64,
    libc::F_GETFD as u64,
    libc::F_SETFD as u64,
    libc::F_DUPFD_CLOEXEC as u64,
];

/// ioctl(2) requests: mio sets non-blocking mode and close-on-exec this way.
// The casts are no-ops with glibc (c_ulong) but not with musl (c_int).
#[allow(clippy::unnecessary_cast)]
const IOCTL_REQS: &[u64] = &[libc::FIONBIO as u64, libc::FIOCLEX as u64];

/// What every confined process needs: this is the whole Helper list, and the base of the
/// Child's.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const BASE: &[Allow] = &[
    // The IPC channel (ipc.rs): frames with SCM_RIGHTS, one recvmsg/sendmsg each.
    any(libc::SYS_recvmsg),
    any(libc::SYS_sendmsg),
    // Plain reads and writes: stderr (eprintln!, log lines), the SIGSYS note.
    any(libc::SYS_read),
    any(libc::SYS_write),
    // The allocator (glibc malloc) and OpenSSL's buffers. No PROT_EXEC: nothing here loads
    // or generates code after start-up, and refusing it makes injected code harder to run.
    only(libc::SYS_mmap, Args::NoBits(2, libc::PROT_EXEC as u64)),
    only(libc::SYS_mprotect, Args::NoBits(2, libc::PROT_EXEC as u64)),
    any(libc::SYS_munmap),
    any(libc::SYS_mremap),
    any(libc::SYS_brk),
    any(libc::SYS_madvise),
    // Locks (std Mutex, OpenSSL's locks, tokio's parker).
    any(libc::SYS_futex),
    // OpenSSL's DRBG seeding, std's HashMap keys.
    any(libc::SYS_getrandom),
    // Time: std Instant/SystemTime when the vDSO is not used, OpenSSL's DRBG reseed clock.
    any(libc::SYS_clock_gettime),
    any(libc::SYS_sched_yield),
    // glibc's and OpenSSL's fork checks; the SIGSYS handler's pid.
    any(libc::SYS_getpid),
    any(libc::SYS_gettid),
    // Dropping an OwnedFd.
    any(libc::SYS_close),
    only(libc::SYS_fcntl, Args::OneOf(1, FCNTL_CMDS)),
    // Signals: the SIGSYS handler resets SIGSYS and unblocks it; std's stack-overflow guard
    // uses the alternate stack. A process that installs its own SIGSYS handler only survives
    // the trap: the call itself still does not run.
    any(libc::SYS_sigaltstack),
    any(libc::SYS_rt_sigaction),
    any(libc::SYS_rt_sigprocmask),
    any(libc::SYS_rt_sigreturn),
    // The SIGSYS handler's tgkill(getpid(), gettid(), SIGSYS) and abort()'s SIGABRT, to this
    // process only. kill(2) is not needed: the handler signals its own thread.
    only(libc::SYS_tgkill, Args::OwnPid(0)),
    // The kernel restarts an interrupted sleep with this.
    any(libc::SYS_restart_syscall),
    // glibc's per-thread registrations, which it may repeat.
    any(libc::SYS_set_robust_list),
    any(libc::SYS_rseq),
    any(libc::SYS_exit),
    any(libc::SYS_exit_group),
];

/// What the child needs beyond `BASE`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const CHILD: &[Allow] = &[
    // tokio's reactor (mio): the epoll set and its eventfd waker, also when a runtime is
    // built after `install` without a signal driver.
    any(libc::SYS_epoll_create1),
    any(libc::SYS_epoll_ctl),
    #[cfg(target_arch = "x86_64")]
    any(libc::SYS_epoll_wait),
    any(libc::SYS_epoll_pwait),
    any(libc::SYS_epoll_pwait2),
    any(libc::SYS_eventfd2),
    #[cfg(target_arch = "x86_64")]
    any(libc::SYS_poll),
    any(libc::SYS_ppoll),
    // The UDP sockets the parent handed over (500, 4500, ...) and the connected syslog
    // datagram socket: glibc's send(2) is sendto(2) on both architectures.
    any(libc::SYS_recvfrom),
    any(libc::SYS_sendto),
    any(libc::SYS_recvmmsg),
    any(libc::SYS_sendmmsg),
    any(libc::SYS_writev),
    any(libc::SYS_readv),
    // Local and peer addresses of the handed sockets; SO_ERROR after a failed send (tokio).
    any(libc::SYS_getsockname),
    any(libc::SYS_getpeername),
    any(libc::SYS_getsockopt),
    // Timers of the engine (retransmits, DPD, lifetimes) and std::thread::sleep.
    any(libc::SYS_clock_getres),
    any(libc::SYS_clock_nanosleep),
    any(libc::SYS_nanosleep),
    any(libc::SYS_gettimeofday),
    // Logging and reports name who we run as.
    any(libc::SYS_getuid),
    any(libc::SYS_geteuid),
    any(libc::SYS_getgid),
    any(libc::SYS_getegid),
    only(libc::SYS_ioctl, Args::OneOf(1, IOCTL_REQS)),
    // std::thread::available_parallelism asks this (it also reads cgroup files first, which
    // the filter refuses: do not call it after `install`).
    any(libc::SYS_sched_getaffinity),
];

#[cfg(target_arch = "x86_64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;

/// The allow-list of `profile`, in table order.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn allow_list(profile: Profile) -> Vec<Allow> {
    match profile {
        Profile::Helper => BASE.to_vec(),
        Profile::Child => BASE.iter().chain(CHILD).copied().collect(),
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn allow_list(_profile: Profile) -> Vec<Allow> {
    Vec::new()
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(SeccompError::Compile)
}

/// seccompiler's form of one entry's argument check: rules are alternatives, the conditions
/// of a rule all hold; no rules at all means any arguments.
fn rules(args: Args, pid: u32) -> Result<Vec<SeccompRule>, SeccompError> {
    let rule = |c: SeccompCondition| SeccompRule::new(vec![c]).map_err(SeccompError::Compile);
    match args {
        Args::Any => Ok(Vec::new()),
        Args::OneOf(arg, values) => values
            .iter()
            .map(|&v| rule(cond(arg, SeccompCmpOp::Eq, v)?))
            .collect(),
        Args::NoBits(arg, bits) => Ok(vec![rule(cond(arg, SeccompCmpOp::MaskedEq(bits), 0)?)?]),
        Args::OwnPid(arg) => Ok(vec![rule(cond(arg, SeccompCmpOp::Eq, u64::from(pid))?)?]),
    }
}

/// The BPF program for `profile` in a process whose pid is `pid`.
fn compile(profile: Profile, pid: u32) -> Result<BpfProgram, SeccompError> {
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (profile, pid);
        Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for a in allow_list(profile) {
            // The tables hold each call once (a unit test checks), so no merging is needed.
            map.insert(a.nr, rules(a.args, pid)?);
        }
        let filter = SeccompFilter::new(map, SeccompAction::Trap, SeccompAction::Allow, ARCH)
            .map_err(SeccompError::Compile)?;
        BpfProgram::try_from(filter).map_err(SeccompError::Compile)
    }
}

/// Where the SIGSYS note goes: `NOTE_FD` if it is a pipe (the parent's), else stderr. Only a
/// pipe, so that the note never goes out on a socket that happens to have that number.
fn note_target() -> RawFd {
    match nix::sys::stat::fstat(NOTE_FD) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFIFO => NOTE_FD,
        _ => libc::STDERR_FILENO,
    }
}

/// Confine the whole process (every thread, TSYNC) to `profile`'s allow-list, for good.
///
/// Initialises OpenSSL first, since that reads its configuration files. Call after the
/// privilege drop and after every thread and the tokio runtime were started: no thread can be
/// created afterwards, and building a runtime with a signal driver needs socketpair(2).
pub fn install(profile: Profile) -> Result<(), SeccompError> {
    openssl::init();
    sys::init_time_zone();
    let pid = std::process::id();
    let program = compile(profile, pid)?;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    sys::install_sigsys_handler(pid, note_target()).map_err(SeccompError::Handler)?;
    nix::sys::prctl::set_no_new_privs().map_err(SeccompError::NoNewPrivs)?;
    seccompiler::apply_filter_all_threads(&program).map_err(SeccompError::Apply)
}

/// Bytes into a fixed buffer; what does not fit is dropped. Used by the signal handler, so it
/// allocates nothing and cannot panic.
struct Line<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Line<'_> {
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn decimal(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (v % 10) as u8;
            }
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            self.push(digits.get(i).copied().unwrap_or(b'?'));
        }
    }
}

/// Write the note `seccomp <pid> <nr>\n` into `buf`; returns its length. Async-signal-safe.
pub(crate) fn format_note(buf: &mut [u8; NOTE_MAX], pid: u32, nr: i32) -> usize {
    let mut line = Line { buf, len: 0 };
    for &b in b"seccomp " {
        line.push(b);
    }
    line.decimal(u64::from(pid));
    line.push(b' ');
    if nr < 0 {
        // No system call has a negative number; a deliberate syscall(-1) gets a line that
        // parse_note refuses, which the parent logs as unparseable.
        line.push(b'-');
    }
    line.decimal(u64::from(nr.unsigned_abs()));
    line.push(b'\n');
    line.len
}

/// One field of a note: 1 to 10 ASCII digits, no sign, no leading zero (the handler writes
/// none), at most `i32::MAX`.
fn note_number(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    let v: u64 = s.parse().ok()?;
    u32::try_from(v).ok().filter(|&v| v <= i32::MAX as u32)
}

/// Parse one note line (without its newline) as the SIGSYS handler writes it:
/// `seccomp <pid> <nr>`. Anything else, including extra spaces, signs, leading zeros, a zero
/// pid or numbers beyond `i32::MAX`, is `None`: the line comes from a process that may be
/// compromised.
pub fn parse_note(line: &str) -> Option<(u32, i64)> {
    if line.len() >= NOTE_MAX {
        return None;
    }
    let rest = line.strip_prefix("seccomp ")?;
    let (pid, nr) = rest.split_once(' ')?;
    let pid = note_number(pid).filter(|&p| p != 0)?;
    let nr = note_number(nr)?;
    Some((pid, i64::from(nr)))
}

macro_rules! names {
    ($($(#[$m:meta])* $sys:ident,)*) => {
        /// System call numbers of this architecture and their names (with the `SYS_` prefix,
        /// which `syscall_name` strips).
        const NAMES: &[(i64, &str)] = &[$($(#[$m])* (libc::$sys, stringify!($sys)),)*];
    };
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
names! {
    // Allowed in at least one profile.
    SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_close, SYS_fcntl, SYS_ioctl,
    SYS_mmap, SYS_munmap, SYS_mremap, SYS_brk, SYS_madvise, SYS_mprotect,
    SYS_futex, SYS_getrandom, SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep,
    SYS_nanosleep, SYS_gettimeofday, SYS_sched_yield, SYS_sched_getaffinity,
    SYS_getpid, SYS_gettid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
    SYS_sigaltstack, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn,
    SYS_restart_syscall, SYS_exit, SYS_exit_group, SYS_set_robust_list, SYS_rseq,
    SYS_kill, SYS_tgkill,
    SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_eventfd2,
    SYS_ppoll,
    #[cfg(target_arch = "x86_64")] SYS_epoll_wait,
    #[cfg(target_arch = "x86_64")] SYS_poll,
    SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg, SYS_recvmmsg, SYS_sendmmsg,
    SYS_getsockname, SYS_getpeername, SYS_getsockopt,
    // Refused, and worth naming in a log line.
    #[cfg(target_arch = "x86_64")] SYS_open,
    #[cfg(target_arch = "x86_64")] SYS_creat,
    SYS_openat, SYS_openat2, SYS_open_by_handle_at, SYS_name_to_handle_at,
    SYS_socket, SYS_socketpair, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
    SYS_shutdown, SYS_setsockopt,
    SYS_execve, SYS_execveat, SYS_ptrace,
    #[cfg(target_arch = "x86_64")] SYS_fork,
    #[cfg(target_arch = "x86_64")] SYS_vfork,
    SYS_clone, SYS_clone3, SYS_wait4, SYS_waitid, SYS_tkill,
    SYS_pidfd_open, SYS_pidfd_send_signal, SYS_pidfd_getfd,
    SYS_chroot, SYS_pivot_root, SYS_chdir, SYS_fchdir, SYS_mount, SYS_umount2,
    SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
    SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_capset, SYS_prctl, SYS_seccomp,
    SYS_unshare, SYS_setns, SYS_bpf, SYS_perf_event_open, SYS_userfaultfd,
    SYS_process_vm_readv, SYS_process_vm_writev, SYS_memfd_create,
    SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load, SYS_reboot,
    SYS_keyctl, SYS_add_key, SYS_request_key,
    SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
    #[cfg(target_arch = "x86_64")] SYS_mknod,
    #[cfg(target_arch = "x86_64")] SYS_link,
    #[cfg(target_arch = "x86_64")] SYS_unlink,
    #[cfg(target_arch = "x86_64")] SYS_rename,
    #[cfg(target_arch = "x86_64")] SYS_mkdir,
    #[cfg(target_arch = "x86_64")] SYS_rmdir,
    #[cfg(target_arch = "x86_64")] SYS_symlink,
    #[cfg(target_arch = "x86_64")] SYS_chmod,
    #[cfg(target_arch = "x86_64")] SYS_chown,
    #[cfg(target_arch = "x86_64")] SYS_lchown,
    #[cfg(target_arch = "x86_64")] SYS_stat,
    #[cfg(target_arch = "x86_64")] SYS_lstat,
    #[cfg(target_arch = "x86_64")] SYS_access,
    #[cfg(target_arch = "x86_64")] SYS_pipe,
    #[cfg(target_arch = "x86_64")] SYS_dup2,
    #[cfg(target_arch = "x86_64")] SYS_select,
    #[cfg(target_arch = "x86_64")] SYS_epoll_create,
    #[cfg(target_arch = "x86_64")] SYS_eventfd,
    #[cfg(target_arch = "x86_64")] SYS_arch_prctl,
    #[cfg(target_arch = "x86_64")] SYS_iopl,
    #[cfg(target_arch = "x86_64")] SYS_ioperm,
    #[cfg(target_arch = "x86_64")] SYS_modify_ldt,
    SYS_mknodat, SYS_linkat, SYS_unlinkat, SYS_renameat2, SYS_mkdirat, SYS_symlinkat,
    SYS_readlinkat, SYS_fchmod, SYS_fchmodat, SYS_fchown, SYS_fchownat,
    SYS_fstat, SYS_newfstatat, SYS_statx, SYS_faccessat, SYS_faccessat2, SYS_getdents64,
    SYS_lseek, SYS_pread64, SYS_pwrite64, SYS_truncate, SYS_ftruncate, SYS_fsync,
    SYS_pipe2, SYS_dup, SYS_dup3, SYS_uname, SYS_sysinfo, SYS_getcwd, SYS_prlimit64,
    SYS_sched_setaffinity, SYS_sched_setscheduler, SYS_setpriority, SYS_personality,
    SYS_pkey_mprotect, SYS_mlock, SYS_mincore, SYS_shmget, SYS_shmat,
    SYS_timerfd_create, SYS_signalfd4, SYS_inotify_init1, SYS_fanotify_init,
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NAMES: &[(i64, &str)] = &[];

/// The name of system call `nr` on this architecture, for log lines; "unknown" for a number
/// not in the table.
pub fn syscall_name(nr: i64) -> &'static str {
    NAMES
        .iter()
        .find(|&&(n, _)| n == nr)
        .map(|&(_, name)| name.strip_prefix("SYS_").unwrap_or(name))
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests;
