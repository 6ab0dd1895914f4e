//! The interop matrix: our daemon against strongSwan and Libreswan, every scenario in both
//! roles (see `e2e::interop`). The matrix is written to a file and printed; the test fails
//! if any cell fails. Cells that cannot run here are n/a with the reason (for example
//! phase 2 with Libreswan on a kernel without ESP).
//!
//! Environment: `E2E_INTEROP_PEERS`, `E2E_INTEROP_SCENARIOS`, `E2E_INTEROP_ROLES` narrow
//! the matrix; `E2E_INTEROP_RESULTS` is the results file (default
//! `<target>/tmp/interop-matrix.txt`); `E2E_ESP=0|1` overrides the kernel probe;
//! `E2E_INTEROP_KERNEL=0` runs our daemon with `-n` even where the kernel has ESP.

use e2e::interop::run::{run, Options};
use std::path::PathBuf;

#[test]
fn interop_matrix() {
    e2e::require_env!();
    if let Some(why) = e2e::interop::missing_tools() {
        eprintln!("SKIPPED interop_matrix: {why}");
        return;
    }
    let opts = Options::from_env();
    let t0 = std::time::Instant::now();
    let matrix = run(&opts).unwrap_or_else(|e| panic!("interop topology: {e}"));
    let text = format!(
        "{}# total {:.1}s\n",
        matrix.render(),
        t0.elapsed().as_secs_f64()
    );
    let path = std::env::var_os("E2E_INTEROP_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-matrix.txt"));
    if let Err(e) = std::fs::write(&path, &text) {
        eprintln!("interop: cannot write {}: {e}", path.display());
    }
    println!("interop matrix ({}):\n{text}", path.display());
    let failed = matrix.failures();
    assert!(
        failed.is_empty(),
        "{} interop cell(s) failed; matrix in {}",
        failed.len(),
        path.display()
    );
    let _ = std::fs::remove_dir_all(&opts.state_dir);
}
