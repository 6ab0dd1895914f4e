//! Sans-IO IKEv1 (RFC 2407, 2408, 2409; NAT-T RFC 3947; DPD RFC 3706; ECP RFC 5903).
//!
//! No sockets, no clocks, no threads: the caller feeds datagrams, timeouts and crypto
//! results in, and drains transmits, crypto requests, kernel requests and events out.

// Unit tests that need the engine-pair simulator of ike/tests include it by path; it names
// this crate `ike`, as the integration tests see it.
#[cfg(test)]
extern crate self as ike;

pub mod codec;
pub mod conf;
pub mod crypto;
pub mod engine;
pub mod policy;
pub mod x509;
