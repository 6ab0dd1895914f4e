//! The interop matrix: our daemon against strongSwan and Libreswan, every scenario in both
//! roles (see `e2e::interop`), each tunnel proven by a ping between the client subnets that
//! crosses ESP in the kernel. The matrix is written to a file and printed; the test fails
//! if any cell fails. Cells that cannot run here are n/a with the reason (for example
//! MODP1024 with Libreswan's Debian build).
//!
//! The matrix needs a kernel with ESP (our daemon and both peers install their SAs into
//! it): natively where the host has it, otherwise in one QEMU guest booted by
//! `interop_guest_runs_the_matrix` (see `e2e::vm`), which prints the guest's matrix and
//! writes it to the results file on the host.
//!
//! Environment: `E2E_INTEROP_PEERS`, `E2E_INTEROP_SCENARIOS`, `E2E_INTEROP_ROLES` narrow
//! the matrix (and are passed into the guest); `E2E_INTEROP_RESULTS` is the results file
//! (default `<target>/tmp/interop-matrix.txt`); `E2E_ESP=0|1` overrides the kernel probe;
//! `E2E_INTEROP_KERNEL=0` runs our daemon with `-n` even where the kernel has ESP.

use e2e::interop::run::{run, Options};
use std::path::PathBuf;
use std::time::Duration;

/// The matrix's text is printed between these lines, for the launcher to find in the
/// guest's output.
const BEGIN: &str = "----- interop matrix begin -----";
const END: &str = "----- interop matrix end -----";

/// Variables the guest's run of the matrix needs from the host.
const GUEST_ENV: &[&str] = &[
    "E2E_INTEROP_PEERS",
    "E2E_INTEROP_SCENARIOS",
    "E2E_INTEROP_ROLES",
    "E2E_INTEROP_KERNEL",
    "E2E_ESP",
    "LIBRESWAN_ROOT",
];

fn results_path() -> PathBuf {
    std::env::var_os("E2E_INTEROP_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-matrix.txt"))
}

#[test]
fn interop_matrix() {
    e2e::require_env!();
    if let Some(why) = e2e::interop::missing_tools() {
        eprintln!("SKIPPED interop_matrix: {why}");
        return;
    }
    e2e::require_esp!();
    let opts = Options::from_env();
    let t0 = std::time::Instant::now();
    let matrix = run(&opts).unwrap_or_else(|e| panic!("interop topology: {e}"));
    let text = format!(
        "{}# total {:.1}s\n",
        matrix.render(),
        t0.elapsed().as_secs_f64()
    );
    let path = results_path();
    if !e2e::vm::in_guest() {
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("interop: cannot write {}: {e}", path.display());
        }
    }
    println!("interop matrix ({}):\n{BEGIN}\n{text}{END}", path.display());
    let failed = matrix.failures();
    assert!(
        failed.is_empty(),
        "{} interop cell(s) failed; matrix in {}",
        failed.len(),
        path.display()
    );
    let _ = std::fs::remove_dir_all(&opts.state_dir);
}

/// Boots one guest for the matrix when the host kernel has no ESP; writes the guest's
/// matrix to the results file here.
#[test]
fn interop_guest_runs_the_matrix() {
    e2e::require_env!();
    if let Some(why) = e2e::interop::missing_tools() {
        eprintln!("SKIPPED interop_guest_runs_the_matrix: {why}");
        return;
    }
    let vars: Vec<(&str, String)> = GUEST_ENV
        .iter()
        .filter_map(|&n| std::env::var(n).ok().map(|v| (n, v)))
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let Some(guest) =
        e2e::vm::run_tests_in_guest_with_env("interop_matrix", &env, Duration::from_secs(1500))
    else {
        return;
    };
    let path = results_path();
    match matrix_of(&guest.output) {
        Some(text) => match std::fs::write(&path, text) {
            Ok(()) => println!(
                "interop matrix from the guest written to {}",
                path.display()
            ),
            Err(e) => eprintln!("interop: cannot write {}: {e}", path.display()),
        },
        None => eprintln!("interop: no matrix in the guest's output"),
    }
    e2e::vm::check_guest_run(&guest, &["interop_matrix"]);
}

/// The text between [`BEGIN`] and [`END`] in the guest's output.
fn matrix_of(output: &str) -> Option<String> {
    let start = output.find(BEGIN)? + BEGIN.len() + 1;
    let len = output.get(start..)?.find(END)?;
    output.get(start..start + len).map(str::to_string)
}
