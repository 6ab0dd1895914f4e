//! Building and protecting messages: payload chains, phase-1 encryption with CBC IV
//! chaining (RFC 2409 Appendix B), and the per-exchange IVs of Quick Mode and Informational.

use crate::codec::{
    self, flags, CodecError, Header, Payload, PayloadType, RawPayload, FLAGS_OFFSET, HEADER_LEN,
    LENGTH_OFFSET,
};
use crate::crypto::{decrypt, encrypt, CryptoError, EncrAlg};
use std::fmt;

/// Why a message could not be built, sealed, opened or parsed.
#[derive(Debug)]
pub(super) enum ProtectError {
    Encode(CodecError),
    TooLong,
    Encrypt(CryptoError),
    Decrypt(CryptoError),
    ShorterThanHeader,
    NotBlockAligned { len: usize, block: usize },
    Parse(CodecError),
}

impl fmt::Display for ProtectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtectError::Encode(e) => write!(f, "cannot encode message: {e}"),
            ProtectError::TooLong => f.write_str("message too long"),
            ProtectError::Encrypt(e) => write!(f, "encryption failed: {e}"),
            ProtectError::Decrypt(e) => write!(f, "decryption failed: {e}"),
            ProtectError::ShorterThanHeader => f.write_str("message shorter than its header"),
            ProtectError::NotBlockAligned { len, block } => write!(
                f,
                "encrypted body of {len} bytes is not a multiple of the {block}-byte block"
            ),
            ProtectError::Parse(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProtectError {}

/// The payload chain as bytes, and the type of its first payload.
pub(super) fn chain(payloads: &[Payload]) -> Result<(PayloadType, Vec<u8>), ProtectError> {
    codec::emit_payloads(payloads).map_err(ProtectError::Encode)
}

/// A cleartext message: header then chain.
pub(super) fn plain(mut header: Header, payloads: &[Payload]) -> Result<Vec<u8>, ProtectError> {
    let (first, body) = chain(payloads)?;
    header.next_payload = first;
    header.flags &= !flags::ENCRYPTION;
    finish(header, &body)
}

/// A sealed message, the IV that follows it, and its cleartext view.
pub(super) type Sealed = (Vec<u8>, Vec<u8>, Vec<u8>);

/// An encrypted message. Returns the message, the IV for the next one (the last
/// ciphertext block), and the message as it would look unencrypted (for packet capture).
pub(super) fn sealed(
    mut header: Header,
    payloads: &[Payload],
    encr: EncrAlg,
    key: &[u8],
    iv: &[u8],
) -> Result<Sealed, ProtectError> {
    let (first, mut body) = chain(payloads)?;
    let block = encr.block_len();
    // RFC 2408 3.1: pad with zeros to the cipher's block size.
    let pad = (block - body.len() % block) % block;
    body.resize(body.len() + pad, 0);
    let ct = encrypt(encr, key, iv, &body).map_err(ProtectError::Encrypt)?;
    let next_iv = last_block(&ct, block).to_vec();
    header.next_payload = first;
    // The cleartext view (what a packet capture shows): the flag clear, the padded body.
    let mut clear = header.clone();
    clear.flags &= !flags::ENCRYPTION;
    let view = finish(clear, &body)?;
    header.flags |= flags::ENCRYPTION;
    Ok((finish(header, &ct)?, next_iv, view))
}

/// Decrypt the body of `message` (whose header says it is encrypted). Returns the
/// plaintext body (with its padding) and the IV that follows it; the caller commits the IV
/// only once the message has authenticated, so a forged packet cannot desynchronise it.
pub(super) fn open(
    message: &[u8],
    encr: EncrAlg,
    key: &[u8],
    iv: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), ProtectError> {
    let ct = message
        .get(HEADER_LEN..)
        .ok_or(ProtectError::ShorterThanHeader)?;
    let block = encr.block_len();
    if ct.is_empty() || ct.len() % block != 0 {
        return Err(ProtectError::NotBlockAligned {
            len: ct.len(),
            block,
        });
    }
    let pt = decrypt(encr, key, iv, ct).map_err(ProtectError::Decrypt)?;
    Ok((pt, last_block(ct, block).to_vec()))
}

/// The payloads of a body, walked and parsed.
pub(super) fn parse_all(
    first: PayloadType,
    body: &[u8],
    padded: bool,
) -> Result<(Vec<RawPayload<'_>>, Vec<Payload>), ProtectError> {
    let raws = codec::split_payloads(first, body, padded).map_err(ProtectError::Parse)?;
    let mut parsed = Vec::with_capacity(raws.len());
    for r in &raws {
        parsed.push(Payload::parse(r.payload_type, r.body).map_err(ProtectError::Parse)?);
    }
    Ok((raws, parsed))
}

/// The bytes of the chain after the first payload up to the end of the last one: what
/// Quick Mode and Informational HASH(1) cover.
pub(super) fn after_first<'a>(body: &'a [u8], raws: &[RawPayload<'_>]) -> &'a [u8] {
    match (raws.get(1), raws.last()) {
        (Some(second), Some(last)) => {
            let end = last.offset + last.whole.len();
            body.get(second.offset..end).unwrap_or(&[])
        }
        _ => &[],
    }
}

/// The cleartext view of a received encrypted message: its header with the encryption flag
/// cleared and the length of the decrypted body.
pub(super) fn view(message: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut v = message
        .get(..HEADER_LEN)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    if v.len() == HEADER_LEN {
        v[FLAGS_OFFSET] &= !flags::ENCRYPTION;
        let len = u32::try_from(HEADER_LEN + plaintext.len()).unwrap_or(u32::MAX);
        v[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
    }
    v.extend_from_slice(plaintext);
    v
}

fn finish(mut header: Header, body: &[u8]) -> Result<Vec<u8>, ProtectError> {
    let len = HEADER_LEN + body.len();
    header.length = u32::try_from(len).map_err(|_| ProtectError::TooLong)?;
    let mut out = Vec::with_capacity(len);
    header.emit(&mut out);
    out.extend_from_slice(body);
    Ok(out)
}

fn last_block(ct: &[u8], block: usize) -> &[u8] {
    &ct[ct.len().saturating_sub(block)..]
}

/// Constant-time comparison of a received hash with the expected one. OpenSSL's `memcmp::eq`
/// panics on unequal lengths, and a peer chooses the length, so that is checked first.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Cookie, ExchangeType};

    #[test]
    fn the_cleartext_view_of_a_sealed_message_is_a_valid_unencrypted_message() {
        let header = Header {
            initiator_cookie: Cookie([1; 8]),
            responder_cookie: Cookie([2; 8]),
            next_payload: PayloadType::NONE,
            version: 0x10,
            exchange: ExchangeType::MAIN_MODE,
            flags: flags::ENCRYPTION,
            message_id: 0,
            length: 0,
        };
        let payloads = vec![Payload::Nonce(vec![7; 16]), Payload::Hash(vec![9; 20])];
        let key = [3u8; 16];
        let (sealed_bytes, _, view) =
            sealed(header, &payloads, EncrAlg::AesCbc128, &key, &[0u8; 16]).expect("seal");
        assert_eq!(
            sealed_bytes[FLAGS_OFFSET] & flags::ENCRYPTION,
            flags::ENCRYPTION
        );
        assert_eq!(view[FLAGS_OFFSET] & flags::ENCRYPTION, 0);
        let (pt, _) = open(&sealed_bytes, EncrAlg::AesCbc128, &key, &[0u8; 16]).expect("open");
        assert_eq!(
            super::view(&sealed_bytes, &pt),
            view,
            "the view of the received message equals the sent one"
        );
        // The view parses as a cleartext message with the padding after the last payload.
        let parsed = crate::codec::Header::parse(&view).expect("header");
        let body = &view[HEADER_LEN..];
        let got = crate::codec::parse_payloads(parsed.next_payload, body, true).expect("payloads");
        assert_eq!(got, payloads);
    }
}
