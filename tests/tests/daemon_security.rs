//! The privilege boundary as a running pair shows it (`-n`, no kernel): every process of
//! the child and the helpers under its seccomp filter and not dumpable, child and helpers
//! under different users, no core file from any process, no pre-shared key in any log
//! line at the highest debug level (not even one set through the FIFO, which then reaches
//! a helper and not the child), a capture path through a symbolic link refused, and the
//! parent naming the system call a filter killed a process for.

use e2e::daemon::Daemon;
use e2e::pair::*;
use e2e::procfs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

fn fifo_write(d: &Daemon, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.dir.join("isakmpd.fifo"))
        .expect("open FIFO");
    f.write_all(text.as_bytes()).expect("write FIFO");
}

/// "Max core file size" of /proc/<pid>/limits: (soft, hard).
fn core_limit(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    let mut f = line["Max core file size".len()..].split_whitespace();
    Some((f.next()?.to_string(), f.next()?.to_string()))
}

fn uid(pid: u32) -> Option<String> {
    procfs::status_field(pid, "Uid:")?
        .split_whitespace()
        .next()
        .map(str::to_string)
}

#[test]
fn filtered_apart_and_never_dumped() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("sf", &["-n", "-v", "-j", "2"]);
    let mut problems = Vec::new();
    for (name, d) in [("east", &pair.east), ("west", &pair.west)] {
        let children = procfs::role_children(d.pid(), "child");
        let helpers = procfs::role_children(d.pid(), "helper");
        assert_eq!(children.len(), 1, "{name}: children {children:?}");
        assert_eq!(helpers.len(), 2, "{name}: helpers {helpers:?}");
        match core_limit(d.pid()) {
            Some((s, h)) if s == "0" && h == "0" => {}
            other => problems.push(format!("{name} parent: core limit {other:?}")),
        }
        for (role, pid) in children
            .iter()
            .map(|p| ("child", *p))
            .chain(helpers.iter().map(|p| ("helper", *p)))
        {
            // Spawned by exec: the filter goes on a moment after the process appears.
            let mut seccomp = None;
            e2e::wait_until(Duration::from_secs(5), || {
                seccomp = procfs::status_field(pid, "Seccomp:");
                seccomp.as_deref() == Some("2")
            });
            if seccomp.as_deref() != Some("2") {
                problems.push(format!("{name} {role} {pid}: Seccomp {seccomp:?}"));
            }
            // Not dumpable: the kernel gives its /proc files to root.
            let owner = std::fs::metadata(format!("/proc/{pid}/status")).map(|m| m.uid());
            if !matches!(owner, Ok(0)) {
                problems.push(format!(
                    "{name} {role} {pid}: /proc status owned by {owner:?}"
                ));
            }
            match core_limit(pid) {
                Some((s, h)) if s == "0" && h == "0" => {}
                other => problems.push(format!("{name} {role} {pid}: core limit {other:?}")),
            }
        }
        let child_uid = uid(children[0]);
        for h in &helpers {
            let helper_uid = uid(*h);
            if helper_uid.is_none() || helper_uid == child_uid || helper_uid.as_deref() == Some("0")
            {
                problems.push(format!(
                    "{name}: helper {h} uid {helper_uid:?}, child uid {child_uid:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        pair.logs()
    );
}

#[test]
fn no_secret_in_any_log_even_at_debug_99() {
    e2e::require_env!();
    let east_conf = example_conf("east").expect("example configuration");
    let psk = psk_of(&east_conf).expect("the example has a pre-shared key");
    let pair = Pair::psk_from_examples("sl", &["-n", "-v", "-j", "1", "-D", "A=99"]);
    // A new key through the FIFO: it goes to new helpers, never to the child, never to a
    // log line.
    let new_psk = format!("fifo-set-secret-{}-0123456789abcdef", std::process::id());
    let parent = pair.east.pid();
    let old_child = procfs::role_children(parent, "child");
    fifo_write(
        &pair.east,
        &format!("C set [{EAST_PEER_SECTION}]:Authentication={new_psk} force\n"),
    );
    assert!(
        pair.east
            .wait_log("secrets changed", 1, Duration::from_secs(10)),
        "{}",
        pair.logs()
    );
    let mut new_child = Vec::new();
    assert!(e2e::wait_until(Duration::from_secs(10), || {
        new_child = procfs::role_children(parent, "child");
        !new_child.is_empty() && new_child != old_child
    }));
    let mut helpers = Vec::new();
    let keyed = e2e::wait_until(Duration::from_secs(10), || {
        helpers = procfs::role_children(parent, "helper");
        helpers
            .iter()
            .any(|&h| procfs::memory_contains(h, new_psk.as_bytes()).is_ok_and(|(f, _)| f))
    });
    assert!(
        keyed,
        "the control failed: no helper holds the new key ({helpers:?})"
    );
    let (found, searched) =
        procfs::memory_contains(new_child[0], new_psk.as_bytes()).expect("child memory");
    assert!(
        searched > 0 && !found,
        "the new key is in the child's memory"
    );
    // Let the new child negotiate a while at debug 99 (it fails: west has the old key).
    std::thread::sleep(Duration::from_secs(3));
    let lines = pair.east.logs().len() + pair.west.logs().len();
    assert!(
        lines > 50,
        "debug 99 logged only {lines} lines: the test proves little"
    );
    for (name, d) in [("east", &pair.east), ("west", &pair.west)] {
        for key in [psk.as_str(), new_psk.as_str()] {
            let hits: Vec<String> = d.logs().into_iter().filter(|l| l.contains(key)).collect();
            assert!(
                hits.is_empty(),
                "{name} logged a pre-shared key:\n{}",
                hits.join("\n")
            );
        }
    }
    assert!(
        pair.east.log_count("Authentication=<secret>") >= 1,
        "the FIFO line was not logged (redacted) at debug 99:\n{}",
        pair.east.log_text()
    );
}

#[test]
fn capture_through_a_symbolic_link_refused() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("sp", &["-n", "-v", "-j", "1"]);
    let target = pair.east.dir.join("precious");
    std::fs::write(&target, b"keep me").expect("write");
    let link = pair.east.dir.join("trap.pcap");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    fifo_write(&pair.east, &format!("p on={}\n", link.display()));
    assert!(
        pair.east
            .wait_log("a symbolic link, not followed", 1, Duration::from_secs(10)),
        "{}",
        pair.east.log_text()
    );
    assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    // A real path still works.
    let real = pair.east.dir.join("real.pcap");
    fifo_write(&pair.east, &format!("p on={}\n", real.display()));
    assert!(e2e::wait_until(Duration::from_secs(10), || real.exists()));
    let mode = std::fs::metadata(&real).expect("stat").mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// The note the child's SIGSYS handler writes reaches the parent, which names the call.
/// (That the filters kill for `socket`, `open`, `execve` and `ptrace` is shown on real
/// system calls by the helpers crate's seccomp test; a daemon's child cannot be made to
/// make one from outside.) The note is written into the child's note descriptor, as its
/// handler would, and the child is then killed by SIGSYS.
#[test]
fn the_parent_names_the_forbidden_call() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("sn", &["-n", "-v", "-j", "1"]);
    let parent = pair.east.pid();
    let child = procfs::role_children(parent, "child")[0];
    let fd = Path::new("/proc")
        .join(child.to_string())
        .join("fd")
        .join(helpers::seccomp::NOTE_FD.to_string());
    let mut note = std::fs::OpenOptions::new()
        .write(true)
        .open(&fd)
        .expect("the child's note descriptor");
    writeln!(note, "seccomp {child} {}", libc::SYS_socket).expect("write note");
    drop(note);
    let st = std::process::Command::new("kill")
        .args(["-SYS", &child.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let want = format!(
        "child {child} killed by its seccomp filter: system call {} (socket)",
        libc::SYS_socket
    );
    assert!(
        pair.east.wait_log(&want, 1, Duration::from_secs(10)),
        "{}",
        pair.east.log_text()
    );
    // And it is replaced, confined again.
    assert!(e2e::wait_until(Duration::from_secs(10), || {
        procfs::role_children(parent, "child")
            .iter()
            .any(|&p| p != child && procfs::status_field(p, "Seccomp:").as_deref() == Some("2"))
    }));
}
