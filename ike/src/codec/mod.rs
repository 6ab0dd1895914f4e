//! RFC 2408 wire format: the ISAKMP header and every payload an IKEv1 peer sends.
//!
//! Parsing checks every length and count against the bytes present and returns a typed
//! [`CodecError`]; nothing here panics or allocates from a length field the peer chose.
//! For valid input `emit(parse(x)) == x`.
//!
//! Entry points:
//! - cleartext datagrams: [`Message::parse`] / [`Message::emit`];
//! - encrypted datagrams: [`Header::parse`], decrypt, then [`split_payloads`] (with
//!   `allow_trailing` for the padding) and [`RawPayload::parse`], or [`parse_payloads`];
//!   to send, [`emit_payloads`] (or [`Payload::emit`] for a HASH payload placed in front of
//!   an already emitted rest), encrypt, then [`Message::emit_with_body`].
//!
//! Emitting is fallible: every `emit*` that writes a length or count field returns
//! `Result` and fails with [`CodecError::TooLong`] (or `Inconsistent` for contradictory
//! fields) instead of wrapping, leaving the output buffer as it was. `Header::emit` alone is
//! infallible, as it writes fixed-size fields as given.

mod body;
mod chain;
mod error;
mod header;
mod payload;
mod types;
mod wire;

#[cfg(test)]
mod tests;

pub use body::{MAX_ATTRIBUTES, MAX_PROPOSALS, MAX_TRANSFORMS};
pub use chain::{
    emit_payloads, emit_payloads_into, parse_payloads, split_payloads, RawPayload, MAX_PAYLOADS,
};
pub use error::{CodecError, Part, Unsupported};
pub use header::{Header, FLAGS_OFFSET, HEADER_LEN, LENGTH_OFFSET};
pub use payload::*;
pub use types::*;
