//! The top-level payload chain and whole messages.

use super::error::Part;
use super::wire::Reader;
use super::{CodecError, Header, Message, Payload, PayloadType, HEADER_LEN};

/// Most payloads accepted in one message's chain. Real messages carry a dozen at most; the
/// bound keeps a datagram of 16k empty payloads from costing 16k parse results.
pub const MAX_PAYLOADS: usize = 128;

/// One payload of a chain, not yet interpreted: borrowed slices into the message body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    pub payload_type: PayloadType,
    /// Offset of the generic header within the body passed to `split_payloads`.
    pub offset: usize,
    /// The payload including its 4-byte generic header.
    pub whole: &'a [u8],
    /// The payload without the generic header.
    pub body: &'a [u8],
}

impl<'a> RawPayload<'a> {
    /// Interprets the body.
    pub fn parse(&self) -> Result<Payload, CodecError> {
        Payload::parse(self.payload_type, self.body)
    }

    /// Offset just past this payload within the body passed to `split_payloads`. Quick Mode
    /// HASH(1) covers `body[raw[0].end()..raw.last().end()]`: the payloads after the HASH,
    /// without the padding of the decrypted body.
    pub fn end(&self) -> usize {
        self.offset + self.whole.len()
    }

    /// The next-payload field of this payload's generic header.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.whole.first().copied().unwrap_or(0))
    }
}

/// Splits a message body (everything after the ISAKMP header, decrypted if it was
/// encrypted) into its payloads by following the next-payload fields from `first`.
///
/// Each payload length must be at least 4 and within the bytes. With `allow_trailing`,
/// bytes after the last payload (the zero padding of a decrypted body) are ignored;
/// without it they are an error. A nonzero reserved byte is accepted.
pub fn split_payloads(
    first: PayloadType,
    body: &[u8],
    allow_trailing: bool,
) -> Result<Vec<RawPayload<'_>>, CodecError> {
    let mut r = Reader::new(body, Part::GenericHeader);
    let mut out = Vec::new();
    let mut next = first;
    while next != PayloadType::NONE {
        if out.len() == MAX_PAYLOADS {
            return Err(CodecError::TooMany {
                part: Part::GenericHeader,
                limit: MAX_PAYLOADS,
            });
        }
        let offset = body.len() - r.remaining();
        let following = PayloadType(r.u8()?);
        let _reserved = r.u8()?;
        let length = usize::from(r.u16()?);
        let available = r.remaining() + 4;
        if length < 4 || length > available {
            return Err(CodecError::BadLength {
                part: Part::GenericHeader,
                length,
                available,
            });
        }
        let payload_body = r.take(length - 4)?;
        // offset + length <= body.len() was just established by the reads above.
        let whole = body.get(offset..offset + length).unwrap_or_default();
        out.push(RawPayload {
            payload_type: next,
            offset,
            whole,
            body: payload_body,
        });
        next = following;
    }
    if !allow_trailing && r.remaining() != 0 {
        return Err(CodecError::TrailingBytes {
            part: Part::GenericHeader,
            extra: r.remaining(),
        });
    }
    Ok(out)
}

/// `split_payloads` and then `Payload::parse` of each.
pub fn parse_payloads(
    first: PayloadType,
    body: &[u8],
    allow_trailing: bool,
) -> Result<Vec<Payload>, CodecError> {
    split_payloads(first, body, allow_trailing)?
        .iter()
        .map(RawPayload::parse)
        .collect()
}

/// Emits a chain of payloads with their generic headers, each naming the type of the one
/// after it (the last naming NONE). Returns the type of the first (NONE for an empty list),
/// which goes in the ISAKMP header's next-payload field or the preceding payload's.
///
/// Fails if any payload's body exceeds 65531 bytes, or on any error of
/// [`Payload::emit_body`].
pub fn emit_payloads(payloads: &[Payload]) -> Result<(PayloadType, Vec<u8>), CodecError> {
    let mut out = Vec::new();
    emit_payloads_into(payloads, &mut out)?;
    let first = payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type);
    Ok((first, out))
}

/// Like [`emit_payloads`], appending to `out` (e.g. after a HASH payload built separately).
/// On error `out` is left as it was.
pub fn emit_payloads_into(payloads: &[Payload], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map_or(PayloadType::NONE, Payload::payload_type);
        if let Err(e) = p.emit(next, out) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

impl Message {
    /// Parses a cleartext datagram: the header (see `Header::parse`) and a payload chain
    /// filling the rest exactly. A message with the encryption flag set is refused with
    /// `CodecError::Encrypted`: its body must be decrypted and given to `parse_payloads`.
    pub fn parse(bytes: &[u8]) -> Result<Message, CodecError> {
        let header = Header::parse(bytes)?;
        if header.is_encrypted() {
            return Err(CodecError::Encrypted);
        }
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        let payloads = parse_payloads(header.next_payload, body, false)?;
        Ok(Message { header, payloads })
    }

    /// Emits the message. The header's `next_payload` and `length` are computed from the
    /// payloads; the values stored in `self.header` for those two are ignored.
    pub fn emit(&self) -> Result<Vec<u8>, CodecError> {
        let (first, body) = emit_payloads(&self.payloads)?;
        Self::emit_with_body(&self.header, first, &body)
    }

    /// Emits `header` followed by an already-built body (e.g. ciphertext), with the
    /// header's next-payload set to `first` and its length to 28 + `body.len()`. Other header
    /// fields (flags included) are written as given.
    pub fn emit_with_body(
        header: &Header,
        first: PayloadType,
        body: &[u8],
    ) -> Result<Vec<u8>, CodecError> {
        let total = HEADER_LEN + body.len();
        let length = u32::try_from(total).map_err(|_| CodecError::TooLong {
            part: Part::Message,
            length: total,
            max: u32::MAX as usize,
        })?;
        let header = Header {
            next_payload: first,
            length,
            ..header.clone()
        };
        let mut out = Vec::with_capacity(total);
        header.emit(&mut out);
        out.extend_from_slice(body);
        Ok(out)
    }
}
