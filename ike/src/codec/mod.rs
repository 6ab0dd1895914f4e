//! RFC 2408 wire format: the ISAKMP header and every payload an IKEv1 peer sends.
//!
//! Parsing checks every length and count against the bytes present and returns a typed
//! [`CodecError`]; nothing here panics or allocates from a length field the peer chose.
//! For valid input `emit(parse(x)) == x`.

mod error;
mod header;
mod payload;
mod types;

pub use error::CodecError;
pub use header::{Header, HEADER_LEN};
pub use payload::*;
pub use types::*;
