//! A scripted, hostile Main Mode initiator: it speaks IKEv1 by hand against a real responder
//! engine in the simulator, message by message, so a test can do what no honest engine
//! would: send a nonce of any length or any KE value, and, once message 4 has given it the
//! keys, send encrypted Informational messages under an ISAKMP SA it never authenticated
//! (it never sends message 5).
//!
//! It speaks through a [`Wire`]: the simulator in ike's own tests, a UDP socket in a
//! network namespace against a real daemon in the end-to-end tests (which include this
//! file by path).
//!
//! It is built only from ike's public API (codec, crypto, policy), so it checks the engine
//! against RFC 2408/2409 as written rather than against the engine's own helpers. With RSA
//! signature authentication SKEYID = prf(Ni_b | Nr_b, g^xy) needs no credential at all,
//! which is exactly why an ISAKMP SA past message 4 proves nothing about who holds it.
#![allow(dead_code)]

use ike::codec::{
    flags, split_payloads, Cookie, DeletePayload, ExchangeType, Header, IdPayload, Message,
    NotifyPayload, NotifyType, Payload, PayloadType, ProtocolId, DOI_IPSEC,
};
use ike::crypto::{
    decrypt, dh_derive, dh_keygen, encrypt, hash_i, info_hash, phase1_keys, phase2_iv, qm_hash1,
    qm_hash3, skeyid_sig, DhPrivate, Phase1Keys,
};
use ike::policy::{accept_phase1_reply, phase1_sa, Peer, Phase1Transform};
use std::net::SocketAddr;

/// Where the scripted initiator's datagrams go and its answers come from.
pub trait Wire {
    /// Delivers `bytes` from `from` to `to`, waits as long as an answer takes (but less
    /// than a retransmission), and returns what `to` sent back to `from` meanwhile.
    fn exchange(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>>;
}

/// One scripted Main Mode initiator and what it has learnt so far.
pub struct ScriptedInitiator {
    /// The address it claims to send from (it may well be another host's).
    pub from: SocketAddr,
    /// The responder's address.
    pub to: SocketAddr,
    pub icookie: Cookie,
    /// Learnt from message 2.
    pub rcookie: Cookie,
    /// The peer it pretends to be: message 1 offers that peer's transforms.
    pretends: Peer,
    /// What the responder chose, from message 2.
    pub chosen: Option<Phase1Transform>,
    gxi: Vec<u8>,
    dh: Option<DhPrivate>,
    ni_b: Vec<u8>,
    gxr: Vec<u8>,
    nr_b: Vec<u8>,
    /// SKEYID and its children, once message 4 has been read.
    pub keys: Option<Phase1Keys>,
    /// The body of the SA payload of message 1, for HASH_I.
    sai_b: Vec<u8>,
    /// The last CBC block of phase 1 once messages 5 and 6 went by: the IV of phase 2.
    pub phase1_last_block: Option<Vec<u8>>,
}

/// A Quick Mode message 1 as sent, and what came back.
pub struct QuickSent {
    pub bytes: Vec<u8>,
    pub replies: Vec<Reply>,
    /// The last CBC block of the message: the IV of the responder's answer.
    pub last_block: Vec<u8>,
}

/// Everything the responder sent back to `from` for our cookies, parsed when cleartext.
#[derive(Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub header: Header,
    /// Empty for encrypted replies (this initiator never needs to read those).
    pub payloads: Vec<Payload>,
}

impl Reply {
    /// A Main Mode message 4 carries the responder's KE and nonce.
    pub fn is_mm4(&self) -> bool {
        self.header.exchange == ExchangeType::MAIN_MODE
            && self.payloads.iter().any(|p| matches!(p, Payload::Ke(_)))
            && self.payloads.iter().any(|p| matches!(p, Payload::Nonce(_)))
    }
}

impl ScriptedInitiator {
    /// An initiator that offers `peer`'s phase 1 transforms, as `peer` itself would.
    pub fn new(from: SocketAddr, to: SocketAddr, peer: &Peer, icookie: [u8; 8]) -> Self {
        Self {
            from,
            to,
            icookie: Cookie(icookie),
            rcookie: Cookie::default(),
            pretends: peer.clone(),
            chosen: None,
            gxi: Vec::new(),
            dh: None,
            ni_b: Vec::new(),
            gxr: Vec::new(),
            nr_b: Vec::new(),
            keys: None,
            sai_b: Vec::new(),
            phase1_last_block: None,
        }
    }

    fn header(&self, exchange: ExchangeType, message_id: u32, flags: u8) -> Header {
        Header {
            initiator_cookie: self.icookie,
            responder_cookie: self.rcookie,
            // Both are computed by Message::emit / emit_with_body.
            next_payload: PayloadType::NONE,
            version: 0x10,
            exchange,
            flags,
            message_id,
            length: 0,
        }
    }

    /// Hands `bytes` to the responder as if they came from `self.from` and returns what
    /// the responder sent back to `self.from` under our initiator cookie.
    pub fn send(&self, wire: &mut impl Wire, bytes: &[u8]) -> Vec<Reply> {
        wire.exchange(self.from, self.to, bytes)
            .into_iter()
            .filter_map(|bytes| {
                let header = Header::parse(&bytes).ok()?;
                if header.initiator_cookie != self.icookie {
                    return None;
                }
                let payloads = if header.is_encrypted() {
                    Vec::new()
                } else {
                    Message::parse(&bytes).ok()?.payloads
                };
                Some(Reply {
                    bytes,
                    header,
                    payloads,
                })
            })
            .collect()
    }

    /// Message 1 (the SA offer); reads message 2 and learns the responder's cookie and choice.
    pub fn mm1(&mut self, sim: &mut impl Wire) -> Result<(), String> {
        let offer = phase1_sa(&self.pretends);
        self.mm1_with(sim, offer)
    }

    /// Aggressive Mode message 1: the offer, an honest KE of the first transform's group, a
    /// nonce and `id` as the ID payload. Returns the responder's answers (message 2 if it
    /// took it).
    pub fn am1(&mut self, sim: &mut impl Wire, id: IdPayload) -> Result<Vec<Reply>, String> {
        let offer = phase1_sa(&self.pretends);
        let group = self
            .pretends
            .transforms
            .first()
            .ok_or("no transform to offer")?
            .group;
        let (public, private) = dh_keygen(group).map_err(|e| format!("dh keygen: {e}"))?;
        self.gxi = public.clone();
        self.dh = Some(private);
        self.ni_b = vec![0x5a; 32];
        let msg = Message {
            header: self.header(ExchangeType::AGGRESSIVE, 0, 0),
            payloads: vec![
                Payload::Sa(offer),
                Payload::Ke(public),
                Payload::Nonce(self.ni_b.clone()),
                Payload::Id(id),
            ],
        };
        let bytes = msg.emit().map_err(|e| format!("emit AM1: {e}"))?;
        Ok(self.send(sim, &bytes))
    }

    /// Message 1 with an offer of the caller's making (it must still contain one of the
    /// transforms we pretend to offer for message 2 to be read).
    pub fn mm1_with(
        &mut self,
        sim: &mut impl Wire,
        offer: ike::codec::SaPayload,
    ) -> Result<(), String> {
        self.sai_b = body_of(&Payload::Sa(offer.clone()))?;
        let msg = Message {
            header: self.header(ExchangeType::MAIN_MODE, 0, 0),
            payloads: vec![Payload::Sa(offer)],
        };
        let bytes = msg.emit().map_err(|e| format!("emit MM1: {e}"))?;
        let replies = self.send(sim, &bytes);
        let mm2 = replies
            .iter()
            .find(|r| r.header.exchange == ExchangeType::MAIN_MODE)
            .ok_or("no Main Mode message 2")?;
        let sa = mm2
            .payloads
            .iter()
            .find_map(|p| match p {
                Payload::Sa(sa) => Some(sa),
                _ => None,
            })
            .ok_or("message 2 has no SA payload")?;
        let chosen = accept_phase1_reply(sa, &self.pretends.transforms)
            .map_err(|m| format!("message 2 chose what we did not offer: {m}"))?;
        self.rcookie = mm2.header.responder_cookie;
        self.chosen = Some(chosen.transform);
        Ok(())
    }

    /// Message 3: an honest KE (or `ke` when given) and a nonce of the caller's choosing.
    /// Returns the responder's answers (message 4 if it accepted, else usually nothing).
    pub fn mm3(
        &mut self,
        sim: &mut impl Wire,
        nonce: Vec<u8>,
        ke: Option<Vec<u8>>,
    ) -> Result<Vec<Reply>, String> {
        let group = self
            .chosen
            .as_ref()
            .ok_or("message 3 before message 2")?
            .group;
        let (public, private) = dh_keygen(group).map_err(|e| format!("dh keygen: {e}"))?;
        self.gxi = ke.unwrap_or(public);
        self.dh = Some(private);
        self.ni_b = nonce.clone();
        let msg = Message {
            header: self.header(ExchangeType::MAIN_MODE, 0, 0),
            payloads: vec![Payload::Ke(self.gxi.clone()), Payload::Nonce(nonce)],
        };
        let bytes = msg.emit().map_err(|e| format!("emit MM3: {e}"))?;
        Ok(self.send(sim, &bytes))
    }

    /// Reads message 4 and derives SKEYID (signature authentication: no credential needed)
    /// and SKEYID_d/a/e, the cipher key and the phase-1 IV.
    pub fn read_mm4(&mut self, mm4: &Reply) -> Result<(), String> {
        let t = self.chosen.clone().ok_or("message 4 before message 2")?;
        for p in &mm4.payloads {
            match p {
                Payload::Ke(k) => self.gxr = k.clone(),
                Payload::Nonce(n) => self.nr_b = n.clone(),
                _ => {}
            }
        }
        if self.gxr.is_empty() || self.nr_b.is_empty() {
            return Err("message 4 lacks KE or nonce".into());
        }
        let dh = self.dh.as_ref().ok_or("no DH private value")?;
        let gxy = dh_derive(t.group, dh, &self.gxr).map_err(|e| format!("dh derive: {e}"))?;
        let skeyid = skeyid_sig(t.hash, &self.ni_b, &self.nr_b, &gxy);
        self.keys = Some(phase1_keys(
            t.hash,
            t.hash,
            t.encr,
            skeyid,
            &gxy,
            &self.icookie.0,
            &self.rcookie.0,
            &self.gxi,
            &self.gxr,
        ));
        Ok(())
    }

    /// MM1 to MM4 with an honest KE and a `nonce_len`-byte nonce; the keys are then known.
    pub fn through_mm4(&mut self, sim: &mut impl Wire, nonce_len: usize) -> Result<(), String> {
        self.mm1(sim)?;
        let replies = self.mm3(sim, vec![0x5a; nonce_len], None)?;
        let mm4 = replies
            .iter()
            .find(|r| r.is_mm4())
            .ok_or("no Main Mode message 4")?;
        self.read_mm4(mm4)
    }

    /// An encrypted Informational under our ISAKMP SA, protected as RFC 2409 5.7 says:
    /// HASH(1) = prf(SKEYID_a, M-ID | payloads after the HASH), encrypted with the IV
    /// hash(last phase-1 CBC block | M-ID). Before message 5 no phase-1 message has been
    /// encrypted, so the last block is the initial IV hash(g^xi | g^xr).
    pub fn informational(
        &self,
        sim: &mut impl Wire,
        message_id: u32,
        payloads: Vec<Payload>,
    ) -> Result<Vec<Reply>, String> {
        let t = self.chosen.as_ref().ok_or("no transform chosen")?;
        let keys = self.keys.as_ref().ok_or("no keys: message 4 not read")?;
        let (_, rest) =
            ike::codec::emit_payloads(&payloads).map_err(|e| format!("emit payloads: {e}"))?;
        let hash = info_hash(t.hash, &keys.skeyid_a, message_id, &rest);
        let mut all = vec![Payload::Hash(hash)];
        all.extend(payloads);
        let (first, body) =
            ike::codec::emit_payloads(&all).map_err(|e| format!("emit payloads: {e}"))?;
        // Self-check: what we hashed must be exactly what follows the HASH payload.
        let raws = split_payloads(first, &body, false).map_err(|e| format!("split: {e}"))?;
        if raws.first().map(|r| &body[r.end()..]) != Some(&rest[..]) {
            return Err("HASH(1) would not cover the payloads after it".into());
        }
        let iv = phase2_iv(t.hash, t.encr.block_len(), &self.phase2_base()?, message_id);
        let header = self.header(ExchangeType::INFORMATIONAL, message_id, flags::ENCRYPTION);
        let (bytes, _) = seal(t, &keys.enc_key, &iv, &header, &all)?;
        Ok(self.send(sim, &bytes))
    }

    /// Message 5 with identity `id` and the signature `sign` makes of HASH_I (an honest
    /// one with the right key, or a forgery), encrypted under the phase-1 keys. Reads
    /// message 6 when it comes (without checking it: the test judges by what the
    /// responder does) and keeps the CBC chain for phase 2.
    pub fn mm5(
        &mut self,
        wire: &mut impl Wire,
        id: IdPayload,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Result<Vec<Reply>, String> {
        let t = self.chosen.clone().ok_or("message 5 before message 2")?;
        let keys = self.keys.as_ref().ok_or("message 5 before message 4")?;
        let idii_b = body_of(&Payload::Id(id.clone()))?;
        let hash = hash_i(
            t.hash,
            &keys.skeyid,
            &self.gxi,
            &self.gxr,
            &self.icookie.0,
            &self.rcookie.0,
            &self.sai_b,
            &idii_b,
        );
        let payloads = vec![Payload::Id(id), Payload::Sig(sign(&hash))];
        let header = self.header(ExchangeType::MAIN_MODE, 0, flags::ENCRYPTION);
        let (bytes, last) = seal(&t, &keys.enc_key, &keys.iv, &header, &payloads)?;
        let replies = self.send(wire, &bytes);
        if let Some(mm6) = replies
            .iter()
            .find(|r| r.header.exchange == ExchangeType::MAIN_MODE && r.header.is_encrypted())
        {
            let block = t.encr.block_len();
            let ct = &mm6.bytes[ike::codec::HEADER_LEN..];
            if ct.len() >= block {
                self.phase1_last_block = Some(ct[ct.len() - block..].to_vec());
            }
        } else {
            self.phase1_last_block = Some(last);
        }
        Ok(replies)
    }

    /// The IV base of a phase-2 message: phase 1's last block once message 6 went by, or
    /// the initial IV of a phase 1 that never got that far.
    fn phase2_base(&self) -> Result<Vec<u8>, String> {
        let keys = self.keys.as_ref().ok_or("no keys: message 4 not read")?;
        Ok(self
            .phase1_last_block
            .clone()
            .unwrap_or_else(|| keys.iv.clone()))
    }

    /// Quick Mode message 1 with message ID `message_id` and `payloads` after HASH(1)
    /// (SA, nonce, KE, IDs as the caller wants them), under our ISAKMP SA.
    pub fn qm1(
        &self,
        wire: &mut impl Wire,
        message_id: u32,
        payloads: Vec<Payload>,
    ) -> Result<QuickSent, String> {
        let t = self.chosen.as_ref().ok_or("no transform chosen")?;
        let keys = self.keys.as_ref().ok_or("no keys: message 4 not read")?;
        let (_, rest) = ike::codec::emit_payloads(&payloads).map_err(|e| format!("emit: {e}"))?;
        let hash = qm_hash1(t.hash, &keys.skeyid_a, message_id, &rest);
        let mut all = vec![Payload::Hash(hash)];
        all.extend(payloads);
        let iv = phase2_iv(t.hash, t.encr.block_len(), &self.phase2_base()?, message_id);
        let header = self.header(ExchangeType::QUICK_MODE, message_id, flags::ENCRYPTION);
        let (bytes, last_block) = seal(t, &keys.enc_key, &iv, &header, &all)?;
        let replies = self.send(wire, &bytes);
        Ok(QuickSent {
            bytes,
            replies,
            last_block,
        })
    }

    /// The payloads of the responder's Quick Mode message 2 to `sent`, decrypted.
    pub fn read_qm2(&self, sent: &QuickSent) -> Result<(Vec<Payload>, Vec<u8>), String> {
        let t = self.chosen.as_ref().ok_or("no transform chosen")?;
        let keys = self.keys.as_ref().ok_or("no keys")?;
        let qm2 = sent
            .replies
            .iter()
            .find(|r| r.header.exchange == ExchangeType::QUICK_MODE)
            .ok_or("no Quick Mode message 2")?;
        let ct = &qm2.bytes[ike::codec::HEADER_LEN..];
        let pt =
            decrypt(t.encr, &keys.enc_key, &sent.last_block, ct).map_err(|e| format!("{e}"))?;
        let payloads = ike::codec::parse_payloads(qm2.header.next_payload, &pt, true)
            .map_err(|e| format!("QM2: {e}"))?;
        let block = t.encr.block_len();
        Ok((payloads, ct[ct.len().saturating_sub(block)..].to_vec()))
    }

    /// Quick Mode message 3 (HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)), encrypted
    /// with the IV that follows `qm2_last_block`.
    pub fn qm3(
        &self,
        wire: &mut impl Wire,
        message_id: u32,
        ni_b: &[u8],
        nr_b: &[u8],
        qm2_last_block: &[u8],
    ) -> Result<(Vec<u8>, Vec<Reply>), String> {
        let t = self.chosen.as_ref().ok_or("no transform chosen")?;
        let keys = self.keys.as_ref().ok_or("no keys")?;
        let hash = qm_hash3(t.hash, &keys.skeyid_a, message_id, ni_b, nr_b);
        let header = self.header(ExchangeType::QUICK_MODE, message_id, flags::ENCRYPTION);
        let (bytes, _) = seal(
            t,
            &keys.enc_key,
            qm2_last_block,
            &header,
            &[Payload::Hash(hash)],
        )?;
        let replies = self.send(wire, &bytes);
        Ok((bytes, replies))
    }

    /// This initiator's own ISAKMP SA as a Delete or Notify names it: CKY-I | CKY-R.
    pub fn isakmp_spi(&self) -> Vec<u8> {
        [self.icookie.0, self.rcookie.0].concat()
    }
}

/// The body of a payload (after its generic header), as SAi_b and IDii_b are taken.
fn body_of(p: &Payload) -> Result<Vec<u8>, String> {
    let (_, bytes) =
        ike::codec::emit_payloads(std::slice::from_ref(p)).map_err(|e| format!("emit: {e}"))?;
    Ok(bytes.get(4..).unwrap_or_default().to_vec())
}

/// `payloads` under `header`, padded with zeros to the block and encrypted with `iv`;
/// with the last ciphertext block (the next IV in the chain).
fn seal(
    t: &Phase1Transform,
    key: &[u8],
    iv: &[u8],
    header: &Header,
    payloads: &[Payload],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (first, mut body) =
        ike::codec::emit_payloads(payloads).map_err(|e| format!("emit payloads: {e}"))?;
    let block = t.encr.block_len();
    body.resize(body.len().div_ceil(block) * block, 0);
    let ct = encrypt(t.encr, key, iv, &body).map_err(|e| format!("{e}"))?;
    let last = ct[ct.len() - block..].to_vec();
    let bytes = Message::emit_with_body(header, first, &ct).map_err(|e| format!("emit: {e}"))?;
    Ok((bytes, last))
}

/// A Delete of ISAKMP SAs, each named by its cookies.
pub fn delete_isakmp(spis: Vec<Vec<u8>>) -> Payload {
    Payload::Delete(DeletePayload {
        doi: DOI_IPSEC,
        protocol: ProtocolId::ISAKMP,
        spi_size: 16,
        spis,
    })
}

/// A Delete of ESP SAs by SPI (the sender's inbound SPIs).
pub fn delete_esp(spis: &[u32]) -> Payload {
    Payload::Delete(DeletePayload {
        doi: DOI_IPSEC,
        protocol: ProtocolId::IPSEC_ESP,
        spi_size: 4,
        spis: spis.iter().map(|s| s.to_be_bytes().to_vec()).collect(),
    })
}

/// A notification about ISAKMP SA `spi` (CKY-I | CKY-R), without data.
pub fn notify(t: NotifyType, spi: Vec<u8>) -> Payload {
    Payload::Notify(NotifyPayload {
        doi: DOI_IPSEC,
        protocol: ProtocolId::ISAKMP,
        spi,
        notify_type: t,
        data: Vec::new(),
    })
}
