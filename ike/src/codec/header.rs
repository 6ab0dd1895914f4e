//! The fixed 28-byte ISAKMP header (RFC 2408 3.1).

use super::error::Part;
use super::wire::Reader;
use super::{CodecError, Cookie, ExchangeType, PayloadType};

pub const HEADER_LEN: usize = 28;
/// Where the Flags octet sits in the header (RFC 2408 3.1: two cookies, next payload,
/// version, exchange type, then flags).
pub const FLAGS_OFFSET: usize = 19;
/// Where the 32-bit Length field sits in the header (after the Message ID).
pub const LENGTH_OFFSET: usize = 24;

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

impl Header {
    /// Parses the header of a whole datagram. `bytes` must be exactly the message: the
    /// header's length field has to equal `bytes.len()`, so a datagram longer or shorter than
    /// the header says is rejected rather than silently cut or padded.
    pub fn parse(bytes: &[u8]) -> Result<Header, CodecError> {
        let header = Self::parse_prefix(bytes)?;
        if header.length as usize != bytes.len() {
            return Err(CodecError::MessageLength {
                stated: header.length,
                actual: bytes.len(),
            });
        }
        Ok(header)
    }

    /// Parses the first 28 bytes without comparing the length field to `bytes.len()` (beyond
    /// requiring it to be at least 28). For callers that need the cookies of a datagram
    /// before deciding what to do with it.
    pub fn parse_prefix(bytes: &[u8]) -> Result<Header, CodecError> {
        let mut r = Reader::new(bytes, Part::Header);
        let initiator_cookie = Cookie(r.array()?);
        let responder_cookie = Cookie(r.array()?);
        let next_payload = PayloadType(r.u8()?);
        let version = r.u8()?;
        let exchange = ExchangeType(r.u8()?);
        let flags = r.u8()?;
        let message_id = r.u32()?;
        let length = r.u32()?;
        if version >> 4 != 1 {
            return Err(CodecError::InvalidMajorVersion { version });
        }
        if (length as usize) < HEADER_LEN {
            return Err(CodecError::BadLength {
                part: Part::Header,
                length: length as usize,
                available: bytes.len(),
            });
        }
        Ok(Header {
            initiator_cookie,
            responder_cookie,
            next_payload,
            version,
            exchange,
            flags,
            message_id,
            length,
        })
    }

    /// Writes the 28 header bytes exactly as the fields say (`length` included; see
    /// `Message::emit` for a version that computes it).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_cookie.0);
        out.extend_from_slice(&self.responder_cookie.0);
        out.push(self.next_payload.0);
        out.push(self.version);
        out.push(self.exchange.0);
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    /// True when the encryption flag is set: the body must be decrypted before parsing.
    pub fn is_encrypted(&self) -> bool {
        self.flags & super::flags::ENCRYPTION != 0
    }
}
