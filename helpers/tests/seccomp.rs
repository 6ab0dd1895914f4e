//! The seccomp allow-lists, tried in real processes: each case re-runs this test binary with
//! `CASE_ENV` set, the case installs a profile and then makes one call; the parent checks how
//! the process ended and what note it left on `NOTE_FD` (a pipe) or stderr.

use helpers::seccomp::{self, parse_note, syscall_name, Profile, NOTE_FD};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const CASE_ENV: &str = "HELPERS_SECCOMP_TEST_CASE";

/// Not a test on its own: the body of every case process. Without the variable it does
/// nothing.
#[test]
fn case_entry() {
    let Ok(case) = std::env::var(CASE_ENV) else {
        return;
    };
    let (profile, what) = match case.split_once(':') {
        Some(("child", w)) => (Profile::Child, w.to_string()),
        Some(("helper", w)) => (Profile::Helper, w.to_string()),
        _ => {
            eprintln!("bad case {case}");
            std::process::exit(2);
        }
    };
    run_case(profile, &what);
    // Reaching this line means the call was not refused: the parent then sees exit 0 and no
    // SIGSYS for a denial case.
    println!("CASE {case} RETURNED");
    std::process::exit(0);
}

fn install(profile: Profile) {
    // What the privilege drop does before, done here since the case process keeps its ids.
    nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
    if let Err(e) = seccomp::install(profile) {
        eprintln!("install: {e}");
        std::process::exit(3);
    }
}

fn run_case(profile: Profile, what: &str) {
    match what {
        "openat" => {
            install(profile);
            let _ = std::fs::File::open("/etc/passwd");
        }
        "socket" => {
            install(profile);
            let _ = std::net::UdpSocket::bind("127.0.0.1:0");
        }
        "exec" => {
            install(profile);
            let _ = std::os::unix::process::CommandExt::exec(&mut Command::new("/bin/true"));
        }
        "spawn" => {
            install(profile);
            let _ = Command::new("/bin/true").status();
        }
        "ptrace" => {
            install(profile);
            // SAFETY: PTRACE_TRACEME takes no pointers; the filter stops the call anyway.
            let _ = unsafe {
                libc::ptrace(
                    libc::PTRACE_TRACEME,
                    0,
                    std::ptr::null_mut::<libc::c_void>(),
                    std::ptr::null_mut::<libc::c_void>(),
                )
            };
        }
        // The argument rules: a signal to another process, an fcntl command outside the
        // list (F_DUPFD), executable memory.
        "tgkill-parent" => {
            let parent = std::os::unix::process::parent_id();
            install(profile);
            // SAFETY: tgkill takes integers only; signal 0 would deliver nothing anyway.
            let _ = unsafe { libc::syscall(libc::SYS_tgkill, parent, parent, 0) };
        }
        "fcntl-dupfd" => {
            install(profile);
            // SAFETY: F_DUPFD on stderr takes an integer; the result would be closed below.
            let fd = unsafe { libc::fcntl(2, libc::F_DUPFD, 10) };
            let _ = nix::unistd::close(fd);
        }
        "mmap-exec" => {
            install(profile);
            // SAFETY: an anonymous private mapping that nothing refers to.
            let _ = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
        }
        "thread-openat" => {
            // A thread that existed before install is confined too (TSYNC). It must be
            // running first: a starting Rust thread calls sched_getaffinity (glibc's
            // pthread_getattr_np, for its stack guard), which the helper's list refuses.
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
            let t = std::thread::spawn(move || {
                let _ = ready_tx.send(());
                let _ = rx.recv();
                let _ = std::fs::File::open("/etc/passwd");
            });
            let _ = ready.recv();
            install(profile);
            let _ = tx.send(());
            let _ = t.join();
        }
        "ok" if profile == Profile::Helper => helper_work(),
        "ok" => child_work(),
        "runtime-after" => {
            install(profile);
            let _ = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build();
        }
        other => {
            eprintln!("bad case {other}");
            std::process::exit(2);
        }
    }
}

/// What a crypto helper does after install, in helper_main's order: secrets in, then DH for
/// MODP and ECP groups, an RSA signature, checked, plus randomness and a large allocation.
fn helper_work() {
    use helpers::pool::HelperService;
    use helpers::service::{Crypto, Secrets};
    use ike::crypto::{CryptoRequest, CryptoResult, Group};
    let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
    let der = rsa.private_key_to_der().expect("der");
    let public = rsa.public_key_to_der().expect("public der");
    install(Profile::Helper);

    let mut c = Crypto::new(Secrets {
        psks: vec![],
        rsa_keys: vec![("k".into(), der.into())],
    });
    for group in [Group::Modp2048, Group::Ecp256] {
        let mut keygen = || match c.serve(CryptoRequest::DhKeygen { group }) {
            CryptoResult::DhKeyPair { public, private } => (public, private),
            other => panic!("{group:?} keygen: {other:?}"),
        };
        let (pub_a, priv_a) = keygen();
        let (pub_b, priv_b) = keygen();
        let ab = c.serve(CryptoRequest::DhDerive {
            group,
            private: priv_a,
            peer_public: pub_b,
        });
        let ba = c.serve(CryptoRequest::DhDerive {
            group,
            private: priv_b,
            peer_public: pub_a,
        });
        match (ab, ba) {
            (CryptoResult::DhShared(x), CryptoResult::DhShared(y)) => assert!(x == y),
            other => panic!("{group:?} derive: {other:?}"),
        }
    }
    let hash = vec![7u8; 20];
    let sig = match c.serve(CryptoRequest::RsaSign {
        secret: "k".into(),
        prf: ike::crypto::HashAlg::Sha1,
        hash: hash.clone(),
    }) {
        CryptoResult::Signature(s) => s,
        other => panic!("sign: {other:?}"),
    };
    assert_eq!(
        c.serve(CryptoRequest::RsaVerify {
            public_key: public,
            hash,
            sig,
        }),
        CryptoResult::Verified(true)
    );
    let mut buf = [0u8; 32];
    // SAFETY: getrandom(2) writes at most `buf.len()` bytes into `buf`, which we own.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert_eq!(n, 32);
    let mut big = vec![1u8; 10 << 20];
    big[(10 << 20) - 1] = 2;
    big.extend_from_slice(&[3u8; 4096]);
    assert_eq!(
        big.iter().map(|&b| u64::from(b)).sum::<u64>(),
        (10 << 20) + 1 + 3 * 4096
    );
    eprintln!("helper work done");
}

/// What the child does after install: its runtime (built before, with every driver, as the
/// child builds it) moves a datagram between two UDP sockets made before install, and sleeps.
fn child_work() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a");
    let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind b");
    install(Profile::Child);
    rt.block_on(async move {
        a.set_nonblocking(true).expect("nonblocking a");
        b.set_nonblocking(true).expect("nonblocking b");
        let a = tokio::net::UdpSocket::from_std(a).expect("register a");
        let b = tokio::net::UdpSocket::from_std(b).expect("register b");
        let to = b.local_addr().expect("addr");
        let from = a.local_addr().expect("addr");
        a.send_to(b"isakmp", to).await.expect("send");
        let mut buf = [0u8; 64];
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), b.recv_from(&mut buf))
            .await
            .expect("datagram within 5 s")
            .expect("recv");
        assert_eq!(got, (6, from));
        assert_eq!(&buf[..6], b"isakmp");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    });
    std::thread::sleep(std::time::Duration::from_millis(1));
    // The first time conversion of a process makes glibc read the time zone file: this
    // one (OpenSSL's, as when a certificate's validity is checked) must find it read.
    let t = openssl::asn1::Asn1Time::days_from_now(1).expect("a time");
    let shown = format!("{}", &*t);
    assert!(shown.ends_with("GMT"), "{shown}");
    eprintln!("child work done");
}

/// Why these tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(a) if a.split_whitespace().any(|w| w == "trap") => None,
        Ok(a) => Some(format!(
            "the kernel's seccomp lacks the trap action ({})",
            a.trim()
        )),
        Err(e) => Some(format!(
            "no seccomp filter support (/proc/sys/kernel/seccomp/actions_avail: {e})"
        )),
    }
}

/// What to hand the case process at `NOTE_FD`.
enum Note {
    Pipe,
    Nothing,
    /// A socket: the note must not go there.
    Socket,
}

struct Outcome {
    pid: u32,
    status: std::process::ExitStatus,
    note: String,
    stdout: String,
    stderr: String,
}

fn run(case: &str, note: Note) -> Option<Outcome> {
    if let Some(why) = unavailable() {
        println!("SKIP seccomp case {case}: {why}");
        return None;
    }
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", "case_entry", "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, case)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut reader, writer): (Option<std::fs::File>, Option<OwnedFd>) = match note {
        Note::Pipe => {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
            (Some(std::fs::File::from(r)), Some(w))
        }
        Note::Socket => {
            let (r, w) = std::os::unix::net::UnixDatagram::pair().expect("socketpair");
            r.set_nonblocking(true).expect("nonblocking");
            (
                Some(std::fs::File::from(OwnedFd::from(r))),
                Some(OwnedFd::from(w)),
            )
        }
        Note::Nothing => (None, None),
    };
    if let Some(w) = &writer {
        helpers::ipc::pass_fd_at_exec(&mut cmd, w.as_fd(), NOTE_FD);
    }
    let child = cmd.spawn().expect("spawn");
    // Our copy of the write end must go, or the read below never sees EOF.
    drop(writer);
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    let mut note = String::new();
    if let Some(r) = reader.as_mut() {
        let mut bytes = Vec::new();
        // A socket reader is non-blocking: WouldBlock just means nothing arrived.
        let _ = r.read_to_end(&mut bytes);
        note = String::from_utf8_lossy(&bytes).into_owned();
    }
    Some(Outcome {
        pid,
        status: out.status,
        note,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The call a note names, after checking it is exactly one well-formed line about `pid`.
fn noted_call(text: &str, pid: u32) -> &'static str {
    let body = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("note without newline: {text:?}"));
    assert!(!body.contains('\n'), "more than one note: {text:?}");
    let (noted_pid, nr) = parse_note(body).unwrap_or_else(|| panic!("bad note {body:?}"));
    assert_eq!(noted_pid, pid, "note names another process");
    syscall_name(nr)
}

/// `case` must die by SIGSYS, noting one of `calls` on the note pipe.
fn expect_trap(case: &str, calls: &[&str]) {
    expect_trap_with(case, calls, false)
}

/// As `expect_trap`; `may_be_silent`: the call is made with every signal blocked, and then
/// the kernel kills the process without running the handler, so there may be no note.
fn expect_trap_with(case: &str, calls: &[&str], may_be_silent: bool) {
    let Some(o) = run(case, Note::Pipe) else {
        return;
    };
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGSYS),
        "{case}: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        o.stdout,
        o.stderr
    );
    assert!(!o.stdout.contains("RETURNED"), "{case}: the call returned");
    if may_be_silent && o.note.is_empty() {
        return;
    }
    let call = noted_call(&o.note, o.pid);
    assert!(
        calls.contains(&call),
        "{case}: noted {call}, expected {calls:?}"
    );
}

/// `case` must run to its end and exit 0, with no note.
fn expect_success(case: &str, marker: &str) {
    let Some(o) = run(case, Note::Pipe) else {
        return;
    };
    assert!(
        o.status.success(),
        "{case}: {:?}, note {:?}\nstdout: {}\nstderr: {}",
        o.status,
        o.note,
        o.stdout,
        o.stderr
    );
    assert!(o.stderr.contains(marker), "{case}: stderr {}", o.stderr);
    assert!(o.stdout.contains("RETURNED"), "{case}: stdout {}", o.stdout);
    assert_eq!(o.note, "", "{case}");
}

#[test]
fn helper_refuses_open() {
    expect_trap("helper:openat", &["openat"]);
}

#[test]
fn helper_refuses_socket() {
    expect_trap("helper:socket", &["socket"]);
}

#[test]
fn helper_refuses_execve() {
    expect_trap("helper:exec", &["execve"]);
}

#[test]
fn helper_refuses_new_processes() {
    // glibc's posix_spawn uses clone3 (older ones clone) with all signals blocked, so the
    // kernel kills without running the handler: no note.
    expect_trap_with("helper:spawn", &["clone3", "clone", "fork", "vfork"], true);
}

#[test]
fn helper_refuses_ptrace() {
    expect_trap("helper:ptrace", &["ptrace"]);
}

#[test]
fn helper_confines_threads_started_before_install() {
    expect_trap("helper:thread-openat", &["openat"]);
}

#[test]
fn helper_signals_only_itself() {
    expect_trap("helper:tgkill-parent", &["tgkill"]);
}

#[test]
fn helper_fcntl_is_limited_to_flags() {
    expect_trap("helper:fcntl-dupfd", &["fcntl"]);
}

#[test]
fn helper_gets_no_executable_memory() {
    expect_trap("helper:mmap-exec", &["mmap"]);
}

#[test]
fn child_signals_only_itself() {
    expect_trap("child:tgkill-parent", &["tgkill"]);
}

#[test]
fn child_gets_no_executable_memory() {
    expect_trap("child:mmap-exec", &["mmap"]);
}

#[test]
fn child_refuses_open() {
    expect_trap("child:openat", &["openat"]);
}

#[test]
fn child_refuses_socket() {
    expect_trap("child:socket", &["socket"]);
}

#[test]
fn child_refuses_execve() {
    expect_trap("child:exec", &["execve"]);
}

#[test]
fn child_refuses_new_processes() {
    expect_trap_with("child:spawn", &["clone3", "clone", "fork", "vfork"], true);
}

#[test]
fn child_refuses_ptrace() {
    expect_trap("child:ptrace", &["ptrace"]);
}

#[test]
fn child_confines_threads_started_before_install() {
    expect_trap("child:thread-openat", &["openat"]);
}

#[test]
fn helper_work_runs_under_its_filter() {
    expect_success("helper:ok", "helper work done");
}

#[test]
fn child_work_runs_under_its_filter() {
    expect_success("child:ok", "child work done");
}

/// An ordering constraint for the child: tokio (with its "signal" feature, which the
/// workspace enables) sets up its signal driver with socketpair(2) whenever a runtime has an
/// I/O driver, so the runtime must be built before `install`. If tokio stops doing that, this
/// test says so and the constraint can go.
#[test]
fn child_must_build_its_runtime_before_install() {
    expect_trap("child:runtime-after", &["socketpair"]);
}

#[test]
fn note_goes_to_stderr_without_a_pipe() {
    let Some(o) = run("helper:openat", Note::Nothing) else {
        return;
    };
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGSYS),
        "stderr: {}",
        o.stderr
    );
    let line = o
        .stderr
        .lines()
        .find(|l| l.starts_with("seccomp "))
        .unwrap_or_else(|| panic!("no note on stderr: {}", o.stderr));
    assert_eq!(noted_call(&format!("{line}\n"), o.pid), "openat");
}

#[test]
fn note_never_goes_to_a_socket_at_note_fd() {
    let Some(o) = run("child:socket", Note::Socket) else {
        return;
    };
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGSYS),
        "stderr: {}",
        o.stderr
    );
    assert_eq!(o.note, "", "the note went out on the socket");
    let line = o
        .stderr
        .lines()
        .find(|l| l.starts_with("seccomp "))
        .unwrap_or_else(|| panic!("no note on stderr: {}", o.stderr));
    assert_eq!(noted_call(&format!("{line}\n"), o.pid), "socket");
}
