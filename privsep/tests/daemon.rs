//! The isakmpd binary as a process: usage errors, refused files, and (as root) the parent,
//! its unprivileged child, the sockets it is handed, restart after death, clean shutdown.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_isakmpd");

fn conf(tag: &str, mode: u32) -> PathBuf {
    let p = std::env::temp_dir().join(format!("isakmpd-{tag}-{}.conf", std::process::id()));
    std::fs::write(&p, "[General]\n").expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

#[test]
fn usage_error_exits_1_with_usage() {
    let out = Command::new(BIN).arg("-x").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown option -- x"), "{err}");
    assert!(err.contains("usage: isakmpd [-46adKLnSTv]"), "{err}");
    let out = Command::new(BIN).args(["-p"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn open_configuration_file_refused() {
    let c = conf("open", 0o644);
    let out = Command::new(BIN)
        .args(["-d", "-c"])
        .arg(&c)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: mode 0644, must not be readable by group or others",
            c.display()
        )),
        "{err}"
    );
    let _ = std::fs::remove_file(&c);
}

#[test]
fn pid_file_outside_var_run_refused() {
    let c = conf("pidout", 0o600);
    let out = Command::new(BIN)
        .args([
            "-d",
            "-n",
            "-4",
            "-p",
            "0",
            "-N",
            "0",
            "-i",
            "/tmp/isakmpd.pid",
            "-c",
        ])
        .arg(&c)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only paths under /var/run are allowed"),
        "{err}"
    );
    let _ = std::fs::remove_file(&c);
}

/// Removes a test's run directory or file however the test ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Kills the daemon if the test fails half-way.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Wait for a line containing `needle`; return it.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => println!("daemon: {l}"),
                Err(_) => break,
            }
        }
        panic!("no line containing {needle:?}");
    }
}

fn field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Live (not zombie) children of `parent`, except `except`.
fn children_of(parent: i32, except: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if pid != except
            && field(&status, "PPid:") == parent.to_string()
            && !field(&status, "State:").starts_with('Z')
        {
            out.push(pid);
        }
    }
    out.sort();
    out
}

/// A freshly executed helper drops its privileges as its first act, but asynchronously to
/// the parent: give it up to five seconds to get there, then check everything.
fn assert_confined(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if field(&status, "NoNewPrivs:") == "1" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for key in ["Uid:", "Gid:"] {
        for id in field(&status, key).split_whitespace() {
            assert_ne!(id, "0", "pid {pid} {key}");
        }
    }
    for key in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:", "CapBnd:"] {
        assert_eq!(field(&status, key), "0000000000000000", "pid {pid} {key}");
    }
    assert_eq!(field(&status, "NoNewPrivs:"), "1", "pid {pid}");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).expect("root"),
        PathBuf::from("/var/empty"),
        "pid {pid}"
    );
}

fn after<'a>(line: &'a str, prefix: &str) -> &'a str {
    line.split_once(prefix).map(|(_, r)| r.trim()).unwrap_or("")
}

#[test]
fn parent_child_sockets_restart_and_shutdown() {
    if !nix::unistd::geteuid().is_root() {
        println!(
            "SKIP parent_child_sockets_restart_and_shutdown: needs root (privilege drop, /var/run)"
        );
        return;
    }
    let c = conf("daemon", 0o600);
    let _conf = RemoveOnDrop(c.clone());
    let rundir = PathBuf::from(format!("/var/run/isakmpd-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&rundir);
    std::fs::create_dir(&rundir).expect("mkdir");
    let _cleanup = RemoveOnDrop(rundir.clone());
    let pidfile = rundir.join("isakmpd.pid");
    let daemon = Command::new(BIN)
        .args([
            "-d", "-n", "-v", "-4", "-p", "0", "-N", "0", "-D", "0=99", "-D", "1=99", "-j", "2",
        ])
        .arg("-c")
        .arg(&c)
        .arg("-i")
        .arg(&pidfile)
        // Its own FIFO: the default path is shared by every daemon the tests start at once.
        .arg("-f")
        .arg(rundir.join("isakmpd.fifo"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut guard = KillOnDrop(Some(daemon));
    let daemon = guard.0.as_mut().expect("daemon");
    let stderr = daemon.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let lines = Lines(rx);
    let port: u16 = after(
        &lines.wait_for("listening on 0.0.0.0:"),
        "listening on 0.0.0.0:",
    )
    .parse()
    .expect("port");
    let first: i32 = after(&lines.wait_for("started child "), "started child ")
        .parse()
        .unwrap_or_else(|e| panic!("pid: {e}"));
    lines.wait_for("child ready");
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("pid file").trim(),
        daemon.id().to_string()
    );

    // The child and the two helpers are unprivileged, capability-less, no_new_privs,
    // chrooted.
    assert_confined(first);
    let helpers = children_of(daemon.id() as i32, first);
    assert_eq!(helpers.len(), 2, "helpers: {helpers:?}");
    for &h in &helpers {
        assert_confined(h);
    }
    // A helper killed is replaced, at the child's request.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helpers[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill helper");
    lines.wait_for("started a replacement helper");
    let deadline = Instant::now() + Duration::from_secs(5);
    let replaced = loop {
        let now = children_of(daemon.id() as i32, first);
        if now.len() == 2 && !now.contains(&helpers[0]) {
            break now;
        }
        assert!(Instant::now() < deadline, "helpers now {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for &h in &replaced {
        assert_confined(h);
    }

    // It reads from the socket the parent bound.
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.send_to(&[0u8; 28], ("127.0.0.1", port)).expect("send");
    lines.wait_for("received 28 bytes");

    // Killed, it is replaced, and the replacement has the sockets.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let second: i32 = after(&lines.wait_for("started child "), "started child ")
        .parse()
        .unwrap_or_else(|e| panic!("pid: {e}"));
    assert_ne!(first, second);
    lines.wait_for("child ready");
    peer.send_to(&[0u8; 40], ("127.0.0.1", port)).expect("send");
    lines.wait_for("received 40 bytes");
    // The new child got two new helpers; the old ones went with the old child.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = children_of(daemon.id() as i32, second);
        if now.len() == 2 && now.iter().all(|h| !replaced.contains(h)) {
            break;
        }
        assert!(Instant::now() < deadline, "helpers after restart {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // SIGTERM: clean exit, pid file removed, child gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("term");
    let st = daemon.wait().expect("wait");
    assert_eq!(st.code(), Some(0));
    assert!(!pidfile.exists(), "pid file left behind");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        std::fs::read_to_string(format!("/proc/{second}/status")).is_err()
            || field(
                &std::fs::read_to_string(format!("/proc/{second}/status")).unwrap_or_default(),
                "State:"
            )
            .starts_with('Z'),
        "child outlived the parent"
    );
    let _ = std::fs::remove_dir_all(&rundir);
    let _ = std::fs::remove_file(&c);
}

#[test]
fn daemonizes_without_d() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP daemonizes_without_d: needs root (privilege drop, /var/run)");
        return;
    }
    let c = conf("bg", 0o600);
    let _conf = RemoveOnDrop(c.clone());
    let rundir = PathBuf::from(format!("/var/run/isakmpd-test-bg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&rundir);
    std::fs::create_dir(&rundir).expect("mkdir");
    let _cleanup = RemoveOnDrop(rundir.clone());
    let pidfile = rundir.join("isakmpd.pid");
    let st = Command::new(BIN)
        .args(["-n", "-4", "-p", "0", "-N", "0", "-j", "1", "-c"])
        .arg(&c)
        .arg("-i")
        .arg(&pidfile)
        .arg("-f")
        .arg(rundir.join("isakmpd.fifo"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(st.code(), Some(0), "the foreground process exits 0");
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon alive");
    assert_ne!(
        field(&status, "PPid:"),
        std::process::id().to_string(),
        "not detached"
    );
    // Double fork: in its own session, but not its leader, and no terminal.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_comm = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields after comm: state ppid pgrp session tty_nr ...
    let (session, tty) = (f[3], f[4]);
    assert_ne!(session, pid.to_string(), "daemon is a session leader");
    assert_eq!(tty, "0", "daemon has a controlling terminal");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/0")).expect("fd 0"),
        PathBuf::from("/dev/null")
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("term");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pidfile.exists() {
        assert!(Instant::now() < deadline, "pid file not removed on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&rundir);
    let _ = std::fs::remove_file(&c);
}
