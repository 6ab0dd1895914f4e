//! The fixed 28-byte ISAKMP header (RFC 2408 3.1).

use super::{Cookie, ExchangeType, PayloadType};

pub const HEADER_LEN: usize = 28;

/// ISAKMP header. `length` is the total message length as the header states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub initiator_cookie: Cookie,
    pub responder_cookie: Cookie,
    pub next_payload: PayloadType,
    /// Major version in the high nibble (must be 1), minor in the low nibble (0).
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: u8,
    pub message_id: u32,
    pub length: u32,
}
