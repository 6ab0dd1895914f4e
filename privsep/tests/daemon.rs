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
                Ok(_) => {}
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
    let rundir = PathBuf::from(format!("/var/run/isakmpd-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&rundir);
    std::fs::create_dir(&rundir).expect("mkdir");
    let pidfile = rundir.join("isakmpd.pid");
    let daemon = Command::new(BIN)
        .args([
            "-d", "-v", "-4", "-p", "0", "-N", "0", "-D", "0=99", "-D", "1=99", "-j", "0",
        ])
        .arg("-c")
        .arg(&c)
        .arg("-i")
        .arg(&pidfile)
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

    // The child is unprivileged, capability-less, no_new_privs, chrooted.
    let status = std::fs::read_to_string(format!("/proc/{first}/status")).expect("status");
    for id in field(&status, "Uid:").split_whitespace() {
        assert_ne!(id, "0");
    }
    for id in field(&status, "Gid:").split_whitespace() {
        assert_ne!(id, "0");
    }
    for key in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:", "CapBnd:"] {
        assert_eq!(field(&status, key), "0000000000000000", "{key}");
    }
    assert_eq!(field(&status, "NoNewPrivs:"), "1");
    assert_eq!(
        std::fs::read_link(format!("/proc/{first}/root")).expect("root"),
        PathBuf::from("/var/empty")
    );

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
