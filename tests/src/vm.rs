//! Tests that need the kernel to carry ESP, on hosts whose kernel cannot.
//!
//! Some kernels (cloud micro-VMs, for one) have XFRM netlink but no ESP: policies install,
//! `ip xfrm state add ... proto esp` fails with EPROTONOSUPPORT. On such a host the tests that
//! push traffic through ESP run in a QEMU guest booting Debian's stock kernel over the host's
//! root filesystem (`tests/vm/`, see its README). On a host whose kernel has ESP they run
//! natively, in namespaces, like every other test.
//!
//! # The pattern: one guest boot for many scenarios
//!
//! Each scenario is an ordinary `#[test]` that starts with [`require_esp!`](crate::require_esp),
//! and the scenarios of a file share a name prefix. One more test, the *launcher*, calls
//! [`run_tests_in_guest`] with that prefix:
//!
//! ```no_run
//! // tests/tests/my_datapath.rs
//! use std::time::Duration;
//!
//! #[test]
//! fn esp_tunnel() {
//!     e2e::require_esp!();
//!     // ... namespaces, SAs, ping: runs on an ESP host, or inside the guest ...
//! }
//!
//! #[test]
//! fn esp_transport() {
//!     e2e::require_esp!();
//!     // ...
//! }
//!
//! /// Boots one guest for all `esp_` tests when the host has no ESP.
//! #[test]
//! fn guest_runs_esp_tests() {
//!     e2e::vm::run_tests_in_guest("esp_", Duration::from_secs(900));
//! }
//! ```
//!
//! - host with ESP: the scenarios run natively; the launcher prints that and passes;
//! - host without ESP: each scenario prints that it runs in the guest and returns; the launcher
//!   boots one guest that runs this same test binary (`std::env::current_exe()`, visible in the
//!   guest at its host path) with `PREFIX --skip LAUNCHER --nocapture`, prints the guest's
//!   output, and fails unless the guest's run exits 0 having passed at least one test. The
//!   scenarios run in parallel on the guest's CPUs, as on a host (they are isolated by their
//!   namespaces' names); `RUST_TEST_THREADS=1` (passed through) serializes them;
//! - inside the guest ([`in_guest`]): the scenarios run; the launcher does nothing.
//!
//! Nothing can run without root (namespaces, XFRM, the guest's 9p root); that is a printed
//! skip, as is a host without ESP and without `qemu-system-x86_64` (`tests/run` installs it).
//! For a single test whose body is the whole batch, [`with_esp`] does the same in one call.
//!
//! # In the guest
//!
//! The guest sees the host's whole root read-only with a private writable overlay: the
//! checkout, the cargo target directory and the host's binaries at their host paths. `/run`
//! (so `/var/run`) is a fresh tmpfs; `/tmp` is the host's, copy-on-write and private. The
//! test runs as root in the working directory it had on the host, with `FZ_GUEST=1`; the
//! guest has no network device, only the namespaces a test creates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Set (to `1`) by the guest's init for the command it runs.
pub const GUEST_ENV: &str = "FZ_GUEST";

/// Variables passed from the host into the guest's command, besides any given explicitly.
const PASSED_ENV: &[&str] = &[
    "RUST_BACKTRACE",
    "RUST_LOG",
    "RUST_TEST_THREADS",
    "ISAKMPD_BIN",
    "E2E_LOG",
];

/// Whether this process runs inside the guest that [`run_in_guest`] boots.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some_and(|v| v == "1")
}

/// Whether the running kernel can install an ESP SA: `Ok(())`, or the reason it cannot (the
/// kernel's answer, or why the probe could not run). Probed once per process by
/// `tests/vm/has-esp.sh` in a throw-away namespace.
pub fn esp_probe() -> &'static Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let script = vm_dir().join("has-esp.sh");
        match Command::new("bash").arg(&script).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => {
                let said = String::from_utf8_lossy(&o.stdout).trim().to_string();
                Err(format!("this kernel cannot install an ESP SA: {said}"))
            }
            Err(e) => Err(format!("{}: {e}", script.display())),
        }
    })
}

/// Whether the running kernel carries ESP (see [`esp_probe`]). Inside the guest, true.
pub fn host_has_esp() -> bool {
    esp_probe().is_ok()
}

/// Why ESP scenarios cannot run in this process, if they cannot: not root, or a kernel
/// without ESP outside the guest (then the launcher runs them in a guest).
pub fn esp_skip_reason() -> Option<String> {
    if !crate::is_root() {
        return Some("not root: namespaces and XFRM need CAP_NET_ADMIN".into());
    }
    if in_guest() || host_has_esp() {
        return None;
    }
    Some(match esp_probe() {
        Err(e) => {
            format!("{e}; this test runs in a QEMU guest, booted by its file's launcher test")
        }
        Ok(()) => unreachable!("host_has_esp() was false"),
    })
}

/// Return from the calling test, with the reason printed, unless ESP works here: on a host
/// whose kernel has it, or inside the guest. See the module documentation for the launcher.
#[macro_export]
macro_rules! require_esp {
    () => {
        if let Some(reason) = $crate::vm::esp_skip_reason() {
            let thread = std::thread::current();
            eprintln!(
                "SKIPPED {}: {reason}",
                thread.name().unwrap_or(module_path!())
            );
            return;
        }
    };
}

/// Why a guest cannot be booted here, if it cannot: not root, or no QEMU.
pub fn guest_skip_reason() -> Option<String> {
    if !crate::is_root() {
        return Some("not root: the guest shares the host's whole root filesystem".into());
    }
    let qemu_found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| d.join("qemu-system-x86_64").is_file())
    });
    if !qemu_found {
        return Some(
            "no qemu-system-x86_64 to boot a kernel with ESP (tests/run installs qemu-system-x86)"
                .into(),
        );
    }
    None
}

/// `tests/vm/`, the guest's scripts.
pub fn vm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vm")
}

/// Where the guest's kernel, modules and initramfs are kept: `FZ_VM_CACHE`, else `fz-vm/` in
/// the cargo target directory this test binary was built in (where `tests/run` puts them).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FZ_VM_CACHE") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().unwrap_or_default();
    match exe.ancestors().nth(3) {
        Some(target) if !target.as_os_str().is_empty() => target.join("fz-vm"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fz-vm"),
    }
}

/// A finished guest run.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// The command's exit status.
    pub code: i32,
    /// The command's stdout and stderr, interleaved as written.
    pub output: String,
    /// What `tests/vm/run.sh` said: boot and run times, boot trouble.
    pub log: String,
    /// Host wall-clock time from start to power-off, boot included.
    pub wall: Duration,
}

impl std::fmt::Display for GuestRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "----- guest output -----\n{}\n----- guest run -----\n{}exit status {}, {:.1}s",
            self.output.trim_end(),
            self.log,
            self.code,
            self.wall.as_secs_f64()
        )
    }
}

/// Boot a guest, run `args` in it as root (in this process's working directory, with
/// `FZ_GUEST=1`, the variables of [`PASSED_ENV`] that are set here, and `env`), and return
/// its exit status and output. `Err` when the guest could not be booted or reported no exit
/// status within `timeout` (boot included); the error holds the end of its console.
///
/// The kernel is fetched and the initramfs built on first use, unless `tests/run` did already.
pub fn run_in_guest_with_env(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<GuestRun, String> {
    if args.is_empty() {
        return Err("run_in_guest: no command".into());
    }
    let mut cmd = Command::new("bash");
    cmd.arg(vm_dir().join("run.sh"))
        .arg("-t")
        .arg(timeout.as_secs().max(1).to_string())
        .env("FZ_VM_CACHE", cache_dir());
    for name in PASSED_ENV {
        if let Ok(value) = std::env::var(name) {
            cmd.arg("-e").arg(format!("{name}={value}"));
        }
    }
    for (name, value) in env {
        cmd.arg("-e").arg(format!("{name}={value}"));
    }
    cmd.arg("--").args(args);
    let start = Instant::now();
    let out = cmd.output().map_err(|e| format!("tests/vm/run.sh: {e}"))?;
    let wall = start.elapsed();
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        // run.sh's own failures: no status from the guest, or it could not even start one.
        Some(125) if log.contains("reported no exit status") => {
            Err(format!("the guest did not finish:\n{output}{log}"))
        }
        Some(code) if log.contains("exit status") => Ok(GuestRun {
            code,
            output,
            log,
            wall,
        }),
        _ => Err(format!(
            "tests/vm/run.sh failed ({}) before booting:\n{log}",
            out.status
        )),
    }
}

/// [`run_in_guest_with_env`] with no extra variables.
pub fn run_in_guest(args: &[&str], timeout: Duration) -> Result<GuestRun, String> {
    run_in_guest_with_env(args, &[], timeout)
}

/// Run this test binary's tests whose names contain `filter` in one guest, when the host has
/// no ESP; the launcher of the module documentation. Prints the guest's output; panics if the
/// guest fails to boot, if the run fails, or if no test matched (a renamed test would
/// otherwise pass unseen).
pub fn run_tests_in_guest(filter: &str, timeout: Duration) {
    // The launcher itself, if the filter matches it, has nothing to do in the guest.
    let thread = std::thread::current();
    match thread.name().filter(|n| *n != "main") {
        Some(me) => run_self_in_guest(&[filter, "--skip", me], timeout),
        None => run_self_in_guest(&[filter], timeout),
    }
}

/// For a test whose body is its whole batch of ESP scenarios: run `scenarios` here when ESP
/// works here (a host with ESP, or inside the guest); otherwise boot a guest that runs just
/// this test (found by the test thread's name) and check it passed there.
pub fn with_esp(scenarios: impl FnOnce(), timeout: Duration) {
    if !crate::is_root() {
        eprintln!("SKIPPED: not root: namespaces and XFRM need CAP_NET_ADMIN");
        return;
    }
    if in_guest() || host_has_esp() {
        scenarios();
        return;
    }
    let thread = std::thread::current();
    let Some(name) = thread.name().filter(|n| *n != "main") else {
        panic!("with_esp: the test's name is not known (libtest names the test's thread after it); use run_tests_in_guest");
    };
    run_self_in_guest(&[name, "--exact"], timeout);
}

fn run_self_in_guest(selection: &[&str], timeout: Duration) {
    if let Some(run) = run_self_in_guest_with_env(selection, &[], timeout) {
        check_guest_run(&run, selection);
    }
}

/// [`run_tests_in_guest`] with extra variables for the guest, returning the guest's run
/// (printed, not yet judged: for a launcher that keeps something of its output first, then
/// calls [`check_guest_run`]), or `None` when no guest was booted (inside the guest, a host
/// with ESP, or no way to boot one: printed).
pub fn run_tests_in_guest_with_env(
    filter: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Option<GuestRun> {
    let thread = std::thread::current();
    match thread.name().filter(|n| *n != "main") {
        Some(me) => run_self_in_guest_with_env(&[filter, "--skip", me], env, timeout),
        None => run_self_in_guest_with_env(&[filter], env, timeout),
    }
}

fn run_self_in_guest_with_env(
    selection: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Option<GuestRun> {
    if in_guest() {
        return None;
    }
    if let Some(reason) = guest_skip_reason() {
        eprintln!("SKIPPED (no guest): {reason}");
        return None;
    }
    if host_has_esp() {
        println!("this kernel has ESP: the scenarios run natively, no guest needed");
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe.to_string_lossy().into_owned(),
        Err(e) => panic!("the test binary's path: {e}"),
    };
    let mut args = vec![exe.as_str()];
    args.extend_from_slice(selection);
    args.push("--nocapture");
    let run = match run_in_guest_with_env(&args, env, timeout) {
        Ok(run) => run,
        Err(e) => panic!("guest for {selection:?}: {e}"),
    };
    println!("{run}");
    Some(run)
}

/// Panic unless the guest's run exited 0 having passed at least one test; print what it
/// skipped.
pub fn check_guest_run(run: &GuestRun, selection: &[&str]) {
    assert_eq!(
        run.code, 0,
        "the tests failed in the guest: see its output above"
    );
    let passed = passed_count(&run.output);
    assert!(
        passed > 0,
        "no test matching {selection:?} ran in the guest: see its output above"
    );
    let skipped: Vec<&str> = run
        .output
        .lines()
        .filter(|l| l.starts_with("SKIPPED"))
        .collect();
    if !skipped.is_empty() {
        println!("skipped in the guest:\n{}", skipped.join("\n"));
    }
}

/// `N` of libtest's `test result: ok. N passed; ...` line (0 if there is none).
fn passed_count(output: &str) -> usize {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_passed_tests_of_libtest_summaries() {
        let out = "running 2 tests\n\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 1.00s\n";
        assert_eq!(passed_count(out), 2);
        assert_eq!(passed_count("test result: ok. 0 passed; 0 failed"), 0);
        assert_eq!(passed_count("test result: FAILED. 1 passed; 1 failed"), 0);
        assert_eq!(passed_count(""), 0);
    }

    #[test]
    fn cache_is_in_the_target_directory() {
        if std::env::var_os("FZ_VM_CACHE").is_none() {
            let exe = std::env::current_exe().unwrap();
            assert!(
                exe.starts_with(cache_dir().parent().unwrap()),
                "{}",
                cache_dir().display()
            );
        }
    }
}
