//! The ISAKMP codec: whole cleartext messages, and the payload chain of an encrypted one as
//! the engine reads it after decryption (with padding allowed).
//!
//! Invariant: what parses, re-emits, and the emitted bytes parse to the same value
//! (`parse(emit(parse(x))) == parse(x)`; the bytes themselves may differ, e.g. in reserved
//! fields the parser ignores).

use ike::codec::{split_payloads, Header, Message, Payload, HEADER_LEN};

pub fn codec(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        if let Ok(bytes) = m.emit() {
            let again = Message::parse(&bytes);
            assert_eq!(
                again.as_ref(),
                Ok(&m),
                "re-emitted message parses differently"
            );
            assert_eq!(
                m.emit().as_deref(),
                Ok(bytes.as_slice()),
                "emit is not deterministic"
            );
        }
    }
    // An encrypted message's body, taken as if decrypted, the way the engine reads it.
    if let Ok(h) = Header::parse_prefix(data) {
        let body = data.get(HEADER_LEN..).unwrap_or_default();
        if let Ok(raw) = split_payloads(h.next_payload, body, true) {
            for r in &raw {
                if let Ok(p) = r.parse() {
                    payload_round_trip(&p);
                }
            }
        }
    }
}

fn payload_round_trip(p: &Payload) {
    let mut out = Vec::new();
    if p.emit(ike::codec::PayloadType::NONE, &mut out).is_ok() {
        let raw = split_payloads(p.payload_type(), &out, false);
        let Ok(raw) = raw else {
            panic!("emitted payload does not split: {raw:?}");
        };
        assert_eq!(raw.len(), 1, "one payload emitted, {} read back", raw.len());
        assert_eq!(
            raw[0].parse().as_ref(),
            Ok(p),
            "re-emitted payload parses differently"
        );
    }
}
