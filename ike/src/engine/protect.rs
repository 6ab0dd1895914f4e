//! Building and protecting messages: payload chains, phase-1 encryption with CBC IV
//! chaining (RFC 2409 Appendix B), and the per-exchange IVs of Quick Mode and Informational.

use crate::codec::{self, flags, Header, Payload, PayloadType, RawPayload, HEADER_LEN};
use crate::crypto::{decrypt, encrypt, EncrAlg};

/// The payload chain as bytes, and the type of its first payload.
pub(super) fn chain(payloads: &[Payload]) -> Result<(PayloadType, Vec<u8>), String> {
    codec::emit_payloads(payloads).map_err(|e| format!("cannot encode message: {e}"))
}

/// A cleartext message: header then chain.
pub(super) fn plain(mut header: Header, payloads: &[Payload]) -> Result<Vec<u8>, String> {
    let (first, body) = chain(payloads)?;
    header.next_payload = first;
    header.flags &= !flags::ENCRYPTION;
    finish(header, &body)
}

/// An encrypted message. Returns the message and the IV for the next one (the last
/// ciphertext block).
pub(super) fn sealed(
    mut header: Header,
    payloads: &[Payload],
    encr: EncrAlg,
    key: &[u8],
    iv: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (first, mut body) = chain(payloads)?;
    let block = encr.block_len();
    // RFC 2408 3.1: pad with zeros to the cipher's block size.
    let pad = (block - body.len() % block) % block;
    body.resize(body.len() + pad, 0);
    let ct = encrypt(encr, key, iv, &body).map_err(|e| format!("encryption failed: {e}"))?;
    let next_iv = last_block(&ct, block).to_vec();
    header.next_payload = first;
    header.flags |= flags::ENCRYPTION;
    Ok((finish(header, &ct)?, next_iv))
}

/// Decrypt the body of `message` (whose header says it is encrypted). Returns the
/// plaintext body (with its padding) and the IV that follows it; the caller commits the IV
/// only once the message has authenticated, so a forged packet cannot desynchronise it.
pub(super) fn open(
    message: &[u8],
    encr: EncrAlg,
    key: &[u8],
    iv: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let ct = message
        .get(HEADER_LEN..)
        .ok_or("message shorter than its header")?;
    let block = encr.block_len();
    if ct.is_empty() || ct.len() % block != 0 {
        return Err(format!(
            "encrypted body of {} bytes is not a multiple of the {block}-byte block",
            ct.len()
        ));
    }
    let pt = decrypt(encr, key, iv, ct).map_err(|e| format!("decryption failed: {e}"))?;
    Ok((pt, last_block(ct, block).to_vec()))
}

/// The payloads of a body, walked and parsed.
pub(super) fn parse_all(
    first: PayloadType,
    body: &[u8],
    padded: bool,
) -> Result<(Vec<RawPayload<'_>>, Vec<Payload>), String> {
    let raws = codec::split_payloads(first, body, padded).map_err(|e| e.to_string())?;
    let mut parsed = Vec::with_capacity(raws.len());
    for r in &raws {
        parsed.push(Payload::parse(r.payload_type, r.body).map_err(|e| e.to_string())?);
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

fn finish(mut header: Header, body: &[u8]) -> Result<Vec<u8>, String> {
    let len = HEADER_LEN + body.len();
    header.length = u32::try_from(len).map_err(|_| "message too long".to_string())?;
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
