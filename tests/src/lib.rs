//! The end-to-end harness: network namespaces joined by veth pairs, isakmpd daemons started
//! in them, and their logs. Everything a test creates is named `fzike<pid>…` and removed
//! when the test's values are dropped, so a failed test leaves nothing behind.

pub mod daemon;
pub mod netns;
pub mod pair;
pub mod procfs;

use std::time::{Duration, Instant};

/// Why these tests cannot run here, if they cannot: they need root, `ip netns` and the
/// daemon binary. Tests print the reason and return instead of passing silently.
pub fn skip_reason() -> Option<String> {
    // SAFETY-free check of the effective uid: /proc/self/status is always there on Linux.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .is_some_and(|euid| euid == "0");
    if !root {
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
    None
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
