//! Fuzz targets of the workspace, one function each. Every function takes any bytes and must
//! return normally: a panic (including a failed invariant assertion) is a bug found.
//!
//! `fuzz/fuzz_targets/<target>.rs` calls these under libFuzzer (`fuzz/run`, nightly);
//! `tests/replay.rs` runs the committed corpora in `corpus/<target>/` through them on stable,
//! so every seed and every crash input kept in `corpus/<target>/regressions/` stays a test.

mod codec;
mod conf;
mod fifo;
mod ipc;
pub mod responder;
pub mod x509;

pub use codec::codec;
pub use conf::conf;
pub use fifo::fifo;
pub use ipc::ipc;
pub use responder::responder;
pub use x509::x509;

/// A target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// The targets by name, as the corpus directories and `fuzz/fuzz_targets` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("codec", codec),
    ("conf", conf),
    ("fifo", fifo),
    ("responder", responder),
];
