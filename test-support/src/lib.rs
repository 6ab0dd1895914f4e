//! Helpers for the workspace's tests, kept out of the production crates so that nothing
//! test-only is part of their public API. Used as a `[dev-dependencies]` entry only.
//!
//! It depends on openssl and nothing of the workspace, so ike's own unit tests can use it
//! without a second copy of ike in the build.

pub mod pki;
