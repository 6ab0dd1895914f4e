//! The end-to-end harness: network namespaces joined by veth pairs, isakmpd daemons started
//! in them, and their logs. Everything a test creates is named `fzike<pid>…` and removed
//! when the test's values are dropped, so a failed test leaves nothing behind.
//!
//! Tests that need ESP in the kernel run natively where the kernel has it and in a QEMU guest
//! where it does not: see [`vm`].

pub mod daemon;
pub mod flood;
pub mod flood_scene;
pub mod interop;
pub mod netns;
pub mod pair;
pub mod ping;
pub mod procfs;
pub mod road;
pub mod updown;
pub mod vm;
pub mod xfrm;

use std::time::{Duration, Instant};

/// Why these tests cannot run here, if they cannot: they need root, `ip netns` and the
/// daemon binary. Tests print the reason and return instead of passing silently.
pub fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    match std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "`ip netns` fails: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("no `ip` command (iproute2): {e}")),
    }
    if !daemon::binary().exists() {
        return Some(format!(
            "daemon binary {} not built",
            daemon::binary().display()
        ));
    }
    assert_fresh(&daemon::binary());
    None
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY-free check of the effective uid: /proc/self/status is always there on Linux.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .is_some_and(|euid| euid == "0")
}

/// `cargo test -p e2e` does not rebuild the daemon (this crate cannot depend on a binary):
/// a binary older than the daemon's sources would test old code, so refuse it loudly.
fn assert_fresh(bin: &std::path::Path) {
    fn newest(dir: &std::path::Path, best: &mut std::time::SystemTime) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                newest(&p, best);
            } else if p.extension().is_some_and(|x| x == "rs") {
                if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                    *best = (*best).max(t);
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut src = std::time::UNIX_EPOCH;
    for c in ["privsep/src", "helpers/src", "ike/src", "fifo/src"] {
        newest(&root.join(c), &mut src);
    }
    let built = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH);
    assert!(
        built >= src,
        "{} is older than the daemon's sources: run `cargo build -p privsep` (add --release for a release test run) first, or `cargo test --workspace`",
        bin.display()
    );
}

/// Skip the calling test, loudly, when the environment cannot run it.
#[macro_export]
macro_rules! require_env {
    () => {
        if let Some(reason) = $crate::skip_reason() {
            eprintln!("SKIPPED {}: {reason}", module_path!());
            return;
        }
    };
}

/// Poll `f` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
