//! Phase 1: Main Mode and Aggressive Mode (RFC 2409 5.1, 5.4) with pre-shared keys and RSA
//! signatures, NAT-T detection and the float to port 4500 (RFC 3947), retransmission, rekey
//! and expiry of ISAKMP SAs.

use super::natt::{nat_d, NatTVersion, VID_DPD, VID_DRAFT_02N, VID_RFC3947};
use super::pending::{AuthReady, CryptoPending, KeysReady, PeerAuthenticated};
use super::protect::{open, parse_all, plain, sealed};
use super::timers::Timer;
use super::{Engine, Event, LogLevel};
use crate::codec::{
    cert_encoding, flags, CertPayload, Cookie, ExchangeType, Header, IdPayload, Identity,
    NotifyPayload, NotifyType, Payload, PayloadType, ProtocolId, SaPayload, DOI_IPSEC,
};
use crate::crypto::{
    hash_i, hash_r, phase1_keys, skeyid_sig, CryptoRequest, CryptoResult, DhPrivate, HashAlg,
    Phase1Keys, Secret,
};
use crate::policy::{self, AuthMethod, ChosenPhase1, Credentials, Peer, Phase1Mode};
use crate::x509;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Nonce length we send (RFC 2409 allows 8..256 bytes).
const NONCE_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Initiator,
    Responder,
}

/// Where a phase-1 exchange stands. `*Wait` states wait for a helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum P1State {
    MmI1Sent,
    MmI2Wait,
    MmI2Sent,
    MmI3Wait,
    MmI3Sent,
    MmR1Sent,
    MmR2Wait,
    MmR2Sent,
    MmR3Wait,
    AmI1Wait,
    AmI1Sent,
    AmI2Wait,
    AmR1Wait,
    AmR1Sent,
    AmR2Wait,
    Established,
}

impl P1State {
    pub fn name(self) -> &'static str {
        match self {
            P1State::MmI1Sent => "MAIN_I1 (SA sent)",
            P1State::MmI2Wait => "MAIN_I2 (computing KE)",
            P1State::MmI2Sent => "MAIN_I2 (KE sent)",
            P1State::MmI3Wait => "MAIN_I3 (computing keys)",
            P1State::MmI3Sent => "MAIN_I3 (ID sent)",
            P1State::MmR1Sent => "MAIN_R1 (SA sent)",
            P1State::MmR2Wait => "MAIN_R2 (computing KE)",
            P1State::MmR2Sent => "MAIN_R2 (KE sent)",
            P1State::MmR3Wait => "MAIN_R3 (authenticating)",
            P1State::AmI1Wait => "AGGR_I1 (computing KE)",
            P1State::AmI1Sent => "AGGR_I1 (sent)",
            P1State::AmI2Wait => "AGGR_I2 (authenticating)",
            P1State::AmR1Wait => "AGGR_R1 (computing keys)",
            P1State::AmR1Sent => "AGGR_R1 (sent)",
            P1State::AmR2Wait => "AGGR_R2 (authenticating)",
            P1State::Established => "ESTABLISHED",
        }
    }
}

/// One ISAKMP SA, from its first message to its deletion.
pub(super) struct Phase1 {
    pub serial: u64,
    pub peer: String,
    pub role: Role,
    pub mode: Phase1Mode,
    pub state: P1State,
    pub icookie: Cookie,
    pub rcookie: Cookie,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub chosen: Option<ChosenPhase1>,
    /// Body of the initiator's SA payload (SAi_b), as the initiator sent it.
    pub sai_b: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub gxi: Vec<u8>,
    pub gxr: Vec<u8>,
    pub ni_b: Vec<u8>,
    pub nr_b: Vec<u8>,
    pub gxy: Option<Secret>,
    pub skeyid: Option<Secret>,
    pub keys: Option<Phase1Keys>,
    /// The phase-1 CBC IV: the last ciphertext block of the last phase-1 message.
    pub iv: Vec<u8>,
    /// Body of our ID payload, and the peer's (IDii_b / IDir_b).
    pub id_own_b: Vec<u8>,
    pub id_peer_b: Vec<u8>,
    pub id_peer: Option<IdPayload>,
    pub natt: Option<NatTVersion>,
    pub peer_dpd: bool,
    pub nat_local: bool,
    pub nat_remote: bool,
    /// The last message we sent, for retransmission and for answering duplicates.
    pub last_sent: Option<(SocketAddr, SocketAddr, Vec<u8>)>,
    pub retransmit_step: u32,
    /// How often the current message has been sent again.
    pub tries: u32,
    /// SHA-1 of the last message accepted from the peer, to recognise duplicates.
    pub last_received: Vec<u8>,
    /// A message that arrived while keys were still being computed.
    pub deferred: Option<(SocketAddr, SocketAddr, Vec<u8>)>,
    pub established: Option<Instant>,
    pub expires: Option<Instant>,
    /// Connections to start once this SA is up.
    pub waiting: Vec<String>,
    pub dpd_seq: u32,
    pub dpd_outstanding: Option<(u32, Instant)>,
    pub last_heard: Instant,
    /// Message IDs of Informational and Quick Mode exchanges seen, against replays.
    pub seen_msgids: BTreeSet<u32>,
    /// A newer ISAKMP SA with the same peer has taken over.
    pub replaced: bool,
    /// INITIAL-CONTACT to be honoured once the peer has authenticated.
    pub initial_contact: bool,
}

impl Phase1 {
    /// A new exchange: nothing negotiated yet. The initiator's first state is Main Mode's;
    /// callers set what differs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        serial: u64,
        peer: &str,
        role: Role,
        mode: Phase1Mode,
        (icookie, rcookie): (Cookie, Cookie),
        (local, remote): (SocketAddr, SocketAddr),
        sai_b: Vec<u8>,
        now: Instant,
    ) -> Self {
        Phase1 {
            serial,
            peer: peer.to_string(),
            role,
            mode,
            state: P1State::MmI1Sent,
            icookie,
            rcookie,
            local,
            remote,
            chosen: None,
            sai_b,
            dh: None,
            gxi: Vec::new(),
            gxr: Vec::new(),
            ni_b: Vec::new(),
            nr_b: Vec::new(),
            gxy: None,
            skeyid: None,
            keys: None,
            iv: Vec::new(),
            id_own_b: Vec::new(),
            id_peer_b: Vec::new(),
            id_peer: None,
            natt: None,
            peer_dpd: false,
            nat_local: false,
            nat_remote: false,
            last_sent: None,
            retransmit_step: 0,
            tries: 0,
            last_received: Vec::new(),
            deferred: None,
            established: None,
            expires: None,
            waiting: Vec::new(),
            dpd_seq: 0,
            dpd_outstanding: None,
            last_heard: now,
            seen_msgids: BTreeSet::new(),
            replaced: false,
            initial_contact: false,
        }
    }

    pub fn summary(&self) -> String {
        match &self.chosen {
            Some(c) => format!(
                "{} {} {} {:?} {} {}s",
                match self.mode {
                    Phase1Mode::Main => "main",
                    Phase1Mode::Aggressive => "aggressive",
                },
                c.transform.encr.name(),
                c.transform.hash.name(),
                c.transform.auth,
                c.transform.group.name(),
                c.lifetime.seconds
            ),
            None => "no transform chosen yet".into(),
        }
    }

    fn hash_alg(&self) -> Option<HashAlg> {
        self.chosen.as_ref().map(|c| c.transform.hash)
    }
}

fn sha1(b: &[u8]) -> Vec<u8> {
    crate::crypto::hash(HashAlg::Sha1, &[b])
}

impl Engine {
    pub(super) fn peer_by_name(&self, name: &str) -> Option<Peer> {
        self.cfg
            .policy
            .peers
            .iter()
            .find(|p| p.name == name)
            .cloned()
    }

    /// Our source address for `peer`.
    fn local_for(&self, peer: &Peer) -> SocketAddr {
        if let Some(a) = peer.local_address {
            return a;
        }
        let ip = self
            .cfg
            .local_addresses
            .iter()
            .find(|a| a.is_ipv4() == peer.address.is_ipv4())
            .copied()
            .unwrap_or_else(|| match peer.address {
                SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            });
        SocketAddr::new(ip, self.cfg.ike_port)
    }

    /// Our ID payload in ISAKMP SA `serial` (from its peer section and our address), its body
    /// kept for HASH_I/HASH_R; with the peer section.
    fn own_id(&mut self, serial: u64) -> Option<(Peer, IdPayload)> {
        let p1 = self.phase1.get(&serial)?;
        let peer = self.peer_by_name(&p1.peer)?;
        let id = self.own_identity(&peer, p1.local);
        let body = body_of(&Payload::Id(id.clone())).unwrap_or_default();
        self.phase1.get_mut(&serial)?.id_own_b = body;
        Some((peer, id))
    }

    /// Our identity for `peer`: its configured `ID`, else our address. With a certificate
    /// to send, a configured DN is sent as the certificate writes it, and without an `ID`
    /// the address is used only if the certificate carries it, else the certificate's subject.
    fn own_identity(&self, peer: &Peer, local: SocketAddr) -> IdPayload {
        let address = match local.ip() {
            std::net::IpAddr::V4(a) => Identity::Ipv4(a),
            std::net::IpAddr::V6(a) => Identity::Ipv6(a),
        };
        let identity = match (peer.local_id.clone(), self.own_cert(peer)) {
            (Some(id), Some(cert)) => x509::as_in_certificate(cert, id),
            (Some(id), None) => id,
            (None, Some(cert)) => x509::default_identity(cert, local.ip()).unwrap_or(address),
            (None, None) => address,
        };
        IdPayload {
            protocol: 0,
            port: 0,
            identity,
        }
    }

    /// The certificate we show `peer`: with RSA signatures, ours from `Cert-directory` that
    /// carries our ID for it (else the first of ours).
    fn own_cert(&self, peer: &Peer) -> Option<&[u8]> {
        match peer.credentials {
            Credentials::RsaSig { .. } => {
                self.cfg.policy.x509.own_certificate(peer.local_id.as_ref())
            }
            Credentials::PreShared { .. } => None,
        }
    }

    /// CERTREQ payloads for `peer`, one per CA we trust (X.509 signature certificates, named
    /// by the CA's subject), when the peer must prove its key with a certificate.
    fn cert_requests(&self, peer: &Peer) -> Vec<Payload> {
        match peer.credentials {
            Credentials::RsaSig {
                peer_public_key: None,
                ..
            } => self
                .cfg
                .policy
                .x509
                .ca_names()
                .into_iter()
                .map(|data| {
                    Payload::CertReq(CertPayload {
                        encoding: cert_encoding::X509_SIGNATURE,
                        data,
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// CERTREQ payloads in Main Mode messages 3 and 4, once RSA signatures are chosen.
    fn cert_requests_for(&self, serial: u64, peer: &Peer) -> Vec<Payload> {
        let rsa = self
            .phase1
            .get(&serial)
            .and_then(|p| p.chosen.as_ref())
            .is_some_and(|c| c.transform.auth == AuthMethod::RsaSig);
        if rsa {
            self.cert_requests(peer)
        } else {
            Vec::new()
        }
    }

    /// The public key (DER SubjectPublicKeyInfo) the peer's signature must verify with: the
    /// configured raw key; else the key of the certificate the peer sent (the first X.509
    /// signature CERT, the others as intermediates); else of a `Cert-directory` certificate
    /// carrying the peer's identity. A certificate must verify against our CAs and CRLs and
    /// carry the identity of the peer's ID payload.
    fn peer_public_key(
        &mut self,
        peer: &Peer,
        id: &IdPayload,
        payloads: &[Payload],
    ) -> Result<Vec<u8>, String> {
        if let Credentials::RsaSig {
            peer_public_key: Some(k),
            ..
        } = &peer.credentials
        {
            return Ok(k.clone());
        }
        let certs: Vec<&[u8]> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Cert(c) if c.encoding == cert_encoding::X509_SIGNATURE => {
                    Some(c.data.as_slice())
                }
                _ => None,
            })
            .collect();
        let other_encodings: Vec<u8> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Cert(c) if c.encoding != cert_encoding::X509_SIGNATURE => Some(c.encoding),
                _ => None,
            })
            .collect();
        let material = &self.cfg.policy.x509;
        let verified = match certs.split_first() {
            Some((leaf, chain)) => x509::verify_peer(leaf, chain, &id.identity, material, None)
                .map_err(|e| e.to_string())?,
            None => {
                let held = material.held_for(&id.identity);
                let Some(cert) = held.first() else {
                    let also = if other_encodings.is_empty() {
                        String::new()
                    } else {
                        format!(" (certificate encodings {other_encodings:?} are not supported)")
                    };
                    return Err(format!(
                        "peer sent no X.509 certificate{also}, and no public key or certificate for {} is configured",
                        x509::describe_identity(&id.identity)
                    ));
                };
                x509::verify_peer(cert, &[], &id.identity, material, None)
                    .map_err(|e| format!("{e} (held in Cert-directory)"))?
            }
        };
        self.log(
            LogLevel::Info,
            format!(
                "peer {}: certificate \"{}\" (issuer \"{}\") verified for {}",
                peer.name,
                verified.subject,
                verified.issuer,
                x509::describe_identity(&id.identity)
            ),
        );
        Ok(verified.public_key)
    }

    fn vendor_ids(peer: &Peer) -> Vec<Payload> {
        let mut v = Vec::new();
        if peer.nat_t {
            v.push(Payload::VendorId(VID_RFC3947.to_vec()));
            v.push(Payload::VendorId(VID_DRAFT_02N.to_vec()));
        }
        v.push(Payload::VendorId(VID_DPD.to_vec()));
        v
    }

    fn note_vendor_ids(p1: &mut Phase1, payloads: &[Payload]) {
        for p in payloads {
            if let Payload::VendorId(v) = p {
                if let Some(ver) = NatTVersion::from_vid(v) {
                    // Prefer the RFC dialect when the peer announces both.
                    if p1.natt != Some(NatTVersion::Rfc3947) {
                        p1.natt = Some(ver);
                    }
                }
                if v.as_slice() == VID_DPD {
                    p1.peer_dpd = true;
                }
            }
        }
    }

    /// Start an ISAKMP SA with `peer_name`; `waiting` connections start when it is up.
    pub(super) fn start_phase1(&mut self, peer_name: &str, waiting: Vec<String>) {
        let Some(peer) = self.peer_by_name(peer_name) else {
            self.log(
                LogLevel::Error,
                format!("no phase 1 peer named {peer_name:?}"),
            );
            return;
        };
        if peer.transforms.is_empty() {
            self.log(
                LogLevel::Error,
                format!("peer {peer_name}: no phase 1 transforms configured"),
            );
            return;
        }
        let serial = self.serial();
        let icookie = self.random_cookie();
        let local = self.local_for(&peer);
        let mut offer = policy::phase1_sa(&peer);
        if peer.mode == Phase1Mode::Aggressive {
            // Aggressive Mode sends KE in its first message, so every transform offered
            // must use the same group.
            let g = peer.transforms[0].group;
            let keep: Vec<bool> = peer.transforms.iter().map(|t| t.group == g).collect();
            if let Some(prop) = offer.proposals.first_mut() {
                let mut i = 0;
                prop.transforms.retain(|_| {
                    i += 1;
                    keep.get(i - 1).copied().unwrap_or(false)
                });
            }
        }
        let Some(sai_b) = body_of(&Payload::Sa(offer.clone())) else {
            return self.log(
                LogLevel::Error,
                format!("peer {peer_name}: cannot encode our SA"),
            );
        };
        let mut p1 = Phase1::new(
            serial,
            &peer.name,
            Role::Initiator,
            peer.mode,
            (icookie, Cookie::default()),
            (local, peer.address),
            sai_b,
            self.now,
        );
        p1.waiting = waiting;
        self.log(
            LogLevel::Info,
            format!(
                "initiating {:?} mode with peer {} at {}",
                peer.mode, peer.name, peer.address
            ),
        );
        self.by_cookies.insert((icookie, Cookie::default()), serial);
        self.phase1.insert(serial, p1);
        self.timers.add(
            self.now + self.cfg.timers.exchange_max,
            Timer::P1Timeout { serial },
        );
        match peer.mode {
            Phase1Mode::Main => {
                let mut payloads = vec![Payload::Sa(offer)];
                payloads.extend(Self::vendor_ids(&peer));
                self.p1_send_plain(serial, payloads);
            }
            Phase1Mode::Aggressive => {
                if let Some(p) = self.phase1.get_mut(&serial) {
                    p.state = P1State::AmI1Wait;
                }
                let group = peer.transforms[0].group;
                self.crypto(
                    CryptoRequest::DhKeygen { group },
                    CryptoPending::AmI1Keygen { serial, offer },
                );
            }
        }
    }

    pub(super) fn am_i1_keygen(&mut self, serial: u64, offer: SaPayload, r: CryptoResult) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let ni = self.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if p1.state != P1State::AmI1Wait {
            return;
        }
        p1.gxi = public.clone();
        p1.dh = Some(private);
        p1.ni_b = ni.clone();
        p1.state = P1State::AmI1Sent;
        let Some((peer, id)) = self.own_id(serial) else {
            return;
        };
        let mut payloads = vec![
            Payload::Sa(offer),
            Payload::Ke(public),
            Payload::Nonce(ni),
            Payload::Id(id),
        ];
        payloads.extend(self.cert_requests(&peer));
        payloads.extend(Self::vendor_ids(&peer));
        self.p1_send_plain(serial, payloads);
    }

    /// Unpack a DH keygen result, failing the exchange on error.
    fn keypair(&mut self, serial: u64, r: CryptoResult) -> Option<(Vec<u8>, DhPrivate)> {
        match r {
            CryptoResult::DhKeyPair { public, private } => Some((public, private)),
            other => {
                self.p1_fail(
                    serial,
                    format!(
                        "Diffie-Hellman key generation failed: {}",
                        super::why(&other)
                    ),
                );
                None
            }
        }
    }

    /// Send a cleartext phase-1 message and arm its retransmission.
    fn p1_send_plain(&mut self, serial: u64, payloads: Vec<Payload>) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let exchange = match p1.mode {
            Phase1Mode::Main => ExchangeType::MAIN_MODE,
            Phase1Mode::Aggressive => ExchangeType::AGGRESSIVE,
        };
        let header = Self::header_for(p1, exchange, 0, 0);
        match plain(header, &payloads) {
            Ok(bytes) => self.p1_send(serial, bytes, true),
            Err(e) => self.p1_fail(serial, e),
        }
    }

    /// Send an encrypted phase-1 message (Main Mode 5 and 6).
    fn p1_send_sealed(&mut self, serial: u64, payloads: Vec<Payload>, retransmit: bool) {
        self.p1_send_sealed_as(serial, ExchangeType::MAIN_MODE, payloads, retransmit)
    }

    /// Send an encrypted phase-1 message of exchange `exchange` (Main Mode 5 and 6,
    /// Aggressive Mode 3), the IV chained on.
    fn p1_send_sealed_as(
        &mut self,
        serial: u64,
        exchange: ExchangeType,
        payloads: Vec<Payload>,
        retransmit: bool,
    ) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(keys) = &p1.keys else { return };
        let Some(c) = &p1.chosen else { return };
        let header = Self::header_for(p1, exchange, 0, flags::ENCRYPTION);
        let (from, to) = (p1.local, p1.remote);
        match sealed(header, &payloads, c.transform.encr, &keys.enc_key, &p1.iv) {
            Ok((bytes, iv, view)) => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.iv = iv;
                }
                self.capture(from, to, view);
                self.p1_send(serial, bytes, retransmit);
            }
            Err(e) => self.p1_fail(serial, e),
        }
    }

    fn p1_send(&mut self, serial: u64, bytes: Vec<u8>, retransmit: bool) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.last_sent = Some((p1.local, p1.remote, bytes.clone()));
        p1.retransmit_step += 1;
        p1.tries = 0;
        let step = p1.retransmit_step;
        let (from, to) = (p1.local, p1.remote);
        self.transmit(from, to, bytes);
        if retransmit {
            self.timers.add(
                self.now + self.cfg.timers.retransmit_base,
                Timer::P1Retransmit { serial, step },
            );
        }
    }

    pub(super) fn p1_retransmit(&mut self, serial: u64, step: u32) {
        let retransmits = self.cfg.timers.retransmits;
        let base = self.cfg.timers.retransmit_base;
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        // A newer message (or completion) since this timer was armed makes it stale.
        if p1.retransmit_step != step || p1.state == P1State::Established {
            return;
        }
        if p1.tries >= retransmits {
            let msg = format!(
                "peer {} did not answer after {} retransmissions in {}",
                p1.peer,
                p1.tries,
                p1.state.name()
            );
            self.p1_fail(serial, msg);
            return;
        }
        p1.tries += 1;
        let tries = p1.tries;
        if let Some((from, to, bytes)) = p1.last_sent.clone() {
            self.debug(format!(
                "retransmitting phase 1 message to {to} (try {tries})"
            ));
            let bytes = self.with_marker(from, bytes);
            self.out
                .push_back(super::Output::Transmit(super::Transmit { from, to, bytes }));
        }
        let delay = base.saturating_mul(1u32 << tries.min(16));
        self.timers
            .add(self.now + delay, Timer::P1Retransmit { serial, step });
    }

    /// `last_sent` holds the message without the non-ESP marker; add it when resending.
    pub(super) fn with_marker(&self, from: SocketAddr, bytes: Vec<u8>) -> Vec<u8> {
        if from.port() == self.cfg.natt_port {
            let mut b = super::NON_ESP_MARKER.to_vec();
            b.extend_from_slice(&bytes);
            b
        } else {
            bytes
        }
    }

    pub(super) fn p1_timeout(&mut self, serial: u64) {
        if let Some(p1) = self.phase1.get(&serial) {
            if p1.state != P1State::Established {
                let msg = format!("phase 1 with {} timed out in {}", p1.peer, p1.state.name());
                self.p1_fail(serial, msg);
            }
        }
    }

    /// Abandon a phase-1 exchange that cannot complete.
    pub(super) fn p1_fail(&mut self, serial: u64, reason: String) {
        if let Some(p1) = self.phase1.remove(&serial) {
            self.log(
                LogLevel::Warning,
                format!("phase 1 with {} ({}) failed: {reason}", p1.peer, p1.remote),
            );
            self.by_cookies.remove(&(p1.icookie, p1.rcookie));
            self.by_cookies.remove(&(p1.icookie, Cookie::default()));
            self.quick.retain(|(s, _), _| *s != serial);
        }
    }

    /// A Main or Aggressive Mode message arrived.
    pub(super) fn phase1_datagram(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        let key = (header.initiator_cookie, header.responder_cookie);
        let serial = match self.by_cookies.get(&key) {
            Some(s) => *s,
            None if header.responder_cookie == Cookie::default() => {
                if header.message_id != 0 || header.flags & flags::ENCRYPTION != 0 {
                    self.debug(format!("dropping unexpected phase 1 message from {remote}"));
                    return;
                }
                return self.p1_new_responder(local, remote, header, bytes);
            }
            None => {
                // The responder's first reply names its cookie for the first time.
                let Some(&s) = self
                    .by_cookies
                    .get(&(header.initiator_cookie, Cookie::default()))
                else {
                    self.debug(format!(
                        "dropping phase 1 message from {remote}: no state for its cookies"
                    ));
                    return;
                };
                let ok = self.phase1.get(&s).is_some_and(|p| {
                    p.role == Role::Initiator
                        && matches!(p.state, P1State::MmI1Sent | P1State::AmI1Sent)
                });
                if !ok {
                    self.debug(format!(
                        "dropping phase 1 message from {remote}: responder cookie mismatch"
                    ));
                    return;
                }
                if let Some(p) = self.phase1.get_mut(&s) {
                    p.rcookie = header.responder_cookie;
                }
                self.by_cookies
                    .remove(&(header.initiator_cookie, Cookie::default()));
                self.by_cookies.insert(key, s);
                s
            }
        };
        let digest = sha1(bytes);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if p1.last_received == digest {
            // A retransmission: the peer missed our answer, so send it again.
            if let Some((from, to, b)) = p1.last_sent.clone() {
                self.debug(format!(
                    "duplicate phase 1 message from {remote}: resending our last message"
                ));
                let b = self.with_marker(from, b);
                self.out.push_back(super::Output::Transmit(super::Transmit {
                    from,
                    to,
                    bytes: b,
                }));
            }
            return;
        }
        let expected_mode = match header.exchange {
            ExchangeType::MAIN_MODE => Phase1Mode::Main,
            _ => Phase1Mode::Aggressive,
        };
        if p1.mode != expected_mode {
            self.debug(format!(
                "dropping phase 1 message from {remote}: exchange type does not match the SA"
            ));
            return;
        }
        // The peer floated to the NAT-T port (RFC 3947 4): follow it.
        if local.port() == self.cfg.natt_port && p1.local.port() != self.cfg.natt_port {
            p1.local = local;
            p1.remote = remote;
        }
        match p1.state {
            P1State::MmI1Sent => self.mm_i_r1(serial, header, bytes, digest),
            P1State::MmI2Sent => self.mm_i_r2(serial, header, bytes, digest),
            P1State::MmI3Sent => self.mm_i_r3(serial, header, bytes, digest),
            P1State::MmR1Sent => self.mm_r_i2(serial, header, bytes, digest),
            P1State::MmR2Sent => self.mm_r_i3(serial, local, remote, header, bytes, digest),
            P1State::AmI1Sent => self.am_i_r1(serial, header, bytes, digest),
            P1State::AmR1Sent => self.am_r_i2(serial, header, bytes, digest),
            P1State::MmR2Wait | P1State::MmI3Wait if header.flags & flags::ENCRYPTION != 0 => {
                // Keys are still being computed: keep the message and handle it then.
                if let Some(p) = self.phase1.get_mut(&serial) {
                    p.deferred = Some((local, remote, bytes.to_vec()));
                }
            }
            s => self.debug(format!(
                "ignoring phase 1 message from {remote} in state {}",
                s.name()
            )),
        }
    }

    /// Parse a cleartext phase-1 message, or report why not.
    fn p1_parse(&mut self, serial: u64, header: &Header, bytes: &[u8]) -> Option<Vec<Payload>> {
        if header.flags & flags::ENCRYPTION != 0 {
            self.debug("dropping encrypted phase 1 message where cleartext was expected".into());
            return None;
        }
        match parse_all(
            header.next_payload,
            &bytes[crate::codec::HEADER_LEN..],
            false,
        ) {
            Ok((_, payloads)) => Some(payloads),
            Err(e) => {
                let peer = self
                    .phase1
                    .get(&serial)
                    .map(|p| p.peer.clone())
                    .unwrap_or_default();
                self.log(
                    LogLevel::Notice,
                    format!("malformed phase 1 message from {peer}: {e}"),
                );
                None
            }
        }
    }

    /// Decrypt an encrypted phase-1 message; returns the payloads, their raw body and the next IV.
    fn p1_decrypt(
        &mut self,
        serial: u64,
        header: &Header,
        bytes: &[u8],
    ) -> Option<(Vec<Payload>, Vec<u8>)> {
        let p1 = self.phase1.get(&serial)?;
        let (Some(keys), Some(c)) = (&p1.keys, &p1.chosen) else {
            return None;
        };
        if header.flags & flags::ENCRYPTION == 0 {
            self.log(
                LogLevel::Notice,
                format!(
                    "dropping unencrypted message from {} where encryption is required",
                    p1.peer
                ),
            );
            return None;
        }
        let peer = p1.peer.clone();
        let psk = c.transform.auth == AuthMethod::PreShared;
        let (local, remote) = (p1.local, p1.remote);
        let opened = open(bytes, c.transform.encr, &keys.enc_key, &p1.iv);
        if let Ok((pt, _)) = &opened {
            self.capture(remote, local, super::protect::view(bytes, pt));
        }
        let r = opened
            .and_then(|(pt, iv)| parse_all(header.next_payload, &pt, true).map(|(_, p)| (p, iv)));
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                // With a pre-shared key, garbage after decryption almost always means the two
                // sides hold different keys: say so, as pluto does.
                let hint = if psk {
                    " (probable authentication failure: mismatch of pre-shared keys?)"
                } else {
                    ""
                };
                self.log(
                    LogLevel::Warning,
                    format!("cannot decrypt phase 1 message from {peer}: {e}{hint}"),
                );
                None
            }
        }
    }

    fn mm_i_r1(&mut self, serial: u64, header: &Header, bytes: &[u8], digest: Vec<u8>) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(peer) = self.peer_by_name(&p1.peer) else {
            return;
        };
        let Some(Payload::Sa(sa)) = payloads.iter().find(|p| matches!(p, Payload::Sa(_))) else {
            self.log(
                LogLevel::Notice,
                format!("Main Mode reply from {} has no SA payload", peer.name),
            );
            return;
        };
        let chosen = match policy::accept_phase1_reply(sa, &peer.transforms) {
            Ok(c) => c,
            Err(m) => {
                self.p1_fail(
                    serial,
                    format!("responder's choice is not one we offered: {m}"),
                );
                return;
            }
        };
        let group = chosen.transform.group;
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        Self::note_vendor_ids(p1, &payloads);
        p1.chosen = Some(chosen);
        p1.last_received = digest;
        p1.state = P1State::MmI2Wait;
        p1.retransmit_step += 1;
        self.crypto(
            CryptoRequest::DhKeygen { group },
            CryptoPending::MmI2Keygen { serial },
        );
    }

    /// NAT-D payloads for a message: the peer's address first, then ours (RFC 3947 3.2).
    fn nat_d_payloads(p1: &Phase1, hash: HashAlg) -> Vec<Payload> {
        let Some(v) = p1.natt else { return Vec::new() };
        let draft = v == NatTVersion::Draft;
        vec![
            Payload::NatD {
                hash: nat_d(hash, &p1.icookie, &p1.rcookie, p1.remote),
                draft,
            },
            Payload::NatD {
                hash: nat_d(hash, &p1.icookie, &p1.rcookie, p1.local),
                draft,
            },
        ]
    }

    /// Compare the peer's NAT-D payloads with the addresses we see (RFC 3947 3.2).
    fn detect_nat(&mut self, serial: u64, payloads: &[Payload]) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(h) = p1.hash_alg() else { return };
        if p1.natt.is_none() {
            return;
        }
        let hashes: Vec<&Vec<u8>> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::NatD { hash, .. } => Some(hash),
                _ => None,
            })
            .collect();
        let Some((first, rest)) = hashes.split_first() else {
            // The peer announced NAT-T but sent no NAT-D: treat as no NAT-T.
            p1.natt = None;
            return;
        };
        let ours = nat_d(h, &p1.icookie, &p1.rcookie, p1.local);
        let theirs = nat_d(h, &p1.icookie, &p1.rcookie, p1.remote);
        p1.nat_local = **first != ours;
        p1.nat_remote = !rest.iter().any(|x| **x == theirs);
        let (l, r, peer) = (p1.nat_local, p1.nat_remote, p1.peer.clone());
        if l || r {
            self.log(
                LogLevel::Info,
                format!(
                    "NAT detected with {peer}:{}{}",
                    if l { " we are behind a NAT" } else { "" },
                    if r { " the peer is behind a NAT" } else { "" }
                ),
            );
        }
    }

    /// After NAT is detected, IKE moves to the NAT-T port (RFC 3947 4).
    fn float(&mut self, serial: u64) {
        let natt_port = self.cfg.natt_port;
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if (p1.nat_local || p1.nat_remote) && p1.local.port() != natt_port {
            p1.local.set_port(natt_port);
            p1.remote.set_port(natt_port);
        }
    }

    pub(super) fn mm_i2_send(&mut self, serial: u64, r: CryptoResult) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let ni = self.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if p1.state != P1State::MmI2Wait {
            return;
        }
        p1.gxi = public.clone();
        p1.dh = Some(private);
        p1.ni_b = ni.clone();
        p1.state = P1State::MmI2Sent;
        let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
        let mut payloads = vec![Payload::Ke(public), Payload::Nonce(ni)];
        payloads.extend(Self::nat_d_payloads(p1, h));
        let peer = p1.peer.clone();
        if let Some(peer) = self.peer_by_name(&peer) {
            payloads.extend(self.cert_requests_for(serial, &peer));
        }
        self.p1_send_plain(serial, payloads);
    }

    fn mm_i_r2(&mut self, serial: u64, header: &Header, bytes: &[u8], digest: Vec<u8>) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let (Some(ke), Some(nonce)) = (find_ke(&payloads), find_nonce(&payloads)) else {
            self.log(
                LogLevel::Notice,
                "Main Mode message 4 lacks KE or nonce".into(),
            );
            return;
        };
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.gxr = ke.to_vec();
        p1.nr_b = nonce.to_vec();
        p1.last_received = digest;
        p1.state = P1State::MmI3Wait;
        p1.retransmit_step += 1;
        self.detect_nat(serial, &payloads);
        self.derive_keys(serial, KeysReady::MmI5Send);
    }

    /// g^xy, then SKEYID (from the helper for a pre-shared key), then SKEYID_d/a/e and the
    /// IV; `then` runs when all are ready.
    pub(super) fn derive_keys(&mut self, serial: u64, then: KeysReady) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(c) = &p1.chosen else { return };
        let group = c.transform.group;
        let peer_public = match p1.role {
            Role::Initiator => p1.gxr.clone(),
            Role::Responder => p1.gxi.clone(),
        };
        let Some(private) = p1.dh.take() else { return };
        self.crypto(
            CryptoRequest::DhDerive {
                group,
                private,
                peer_public,
            },
            CryptoPending::P1Shared { serial, then },
        );
    }

    /// g^xy came: SKEYID next, from a helper for a pre-shared key.
    pub(super) fn p1_shared(&mut self, serial: u64, r: CryptoResult, then: KeysReady) {
        let gxy = match r {
            CryptoResult::DhShared(s) => s,
            other => {
                return self.p1_fail(
                    serial,
                    format!("Diffie-Hellman failed: {}", super::why(&other)),
                )
            }
        };
        let peer = self
            .phase1
            .get(&serial)
            .and_then(|p| self.peer_by_name(&p.peer));
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(c) = &p1.chosen else { return };
        let prf_alg = c.transform.hash;
        match c.transform.auth {
            AuthMethod::PreShared => {
                let Some(peer) = peer else { return };
                let Credentials::PreShared { secret } = peer.credentials else {
                    return self.p1_fail(serial, "peer has no pre-shared key configured".into());
                };
                let (ni_b, nr_b) = (p1.ni_b.clone(), p1.nr_b.clone());
                p1.gxy = Some(gxy);
                self.crypto(
                    CryptoRequest::SkeyidPsk {
                        prf: prf_alg,
                        secret,
                        ni_b,
                        nr_b,
                    },
                    CryptoPending::P1Skeyid { serial, then },
                );
            }
            AuthMethod::RsaSig => {
                let skeyid = skeyid_sig(prf_alg, &p1.ni_b, &p1.nr_b, &gxy);
                p1.gxy = Some(gxy);
                self.finish_keys(serial, skeyid, then);
            }
        }
    }

    /// SKEYID from the pre-shared key came.
    pub(super) fn p1_skeyid(&mut self, serial: u64, r: CryptoResult, then: KeysReady) {
        match r {
            CryptoResult::Skeyid(s) => self.finish_keys(serial, s, then),
            other => self.p1_fail(
                serial,
                format!("SKEYID computation failed: {}", super::why(&other)),
            ),
        }
    }

    fn finish_keys(&mut self, serial: u64, skeyid: Secret, then: KeysReady) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let (Some(c), Some(gxy)) = (&p1.chosen, &p1.gxy) else {
            return;
        };
        let keys = phase1_keys(
            c.transform.hash,
            c.transform.hash,
            c.transform.encr,
            skeyid.clone(),
            gxy,
            &p1.icookie.0,
            &p1.rcookie.0,
            &p1.gxi,
            &p1.gxr,
        );
        p1.iv = keys.iv.clone();
        p1.keys = Some(keys);
        p1.skeyid = Some(skeyid);
        self.keys_ready(serial, then);
        // A message that arrived while we computed can be handled now.
        let deferred = self.phase1.get_mut(&serial).and_then(|p| p.deferred.take());
        if let Some((local, remote, bytes)) = deferred {
            if let Ok(h) = Header::parse(&bytes) {
                self.phase1_datagram(local, remote, &h, &bytes);
            }
        }
    }

    /// HASH_I or HASH_R of our side.
    fn own_hash(p1: &Phase1) -> Option<Vec<u8>> {
        let (c, skeyid) = (p1.chosen.as_ref()?, p1.skeyid.as_ref()?);
        let h = c.transform.hash;
        Some(match p1.role {
            Role::Initiator => hash_i(
                h,
                skeyid,
                &p1.gxi,
                &p1.gxr,
                &p1.icookie.0,
                &p1.rcookie.0,
                &p1.sai_b,
                &p1.id_own_b,
            ),
            Role::Responder => hash_r(
                h,
                skeyid,
                &p1.gxr,
                &p1.gxi,
                &p1.rcookie.0,
                &p1.icookie.0,
                &p1.sai_b,
                &p1.id_own_b,
            ),
        })
    }

    /// The hash the peer must have sent.
    fn peer_hash(p1: &Phase1) -> Option<Vec<u8>> {
        let (c, skeyid) = (p1.chosen.as_ref()?, p1.skeyid.as_ref()?);
        let h = c.transform.hash;
        Some(match p1.role {
            Role::Initiator => hash_r(
                h,
                skeyid,
                &p1.gxr,
                &p1.gxi,
                &p1.rcookie.0,
                &p1.icookie.0,
                &p1.sai_b,
                &p1.id_peer_b,
            ),
            Role::Responder => hash_i(
                h,
                skeyid,
                &p1.gxi,
                &p1.gxr,
                &p1.icookie.0,
                &p1.rcookie.0,
                &p1.sai_b,
                &p1.id_peer_b,
            ),
        })
    }

    /// Our authentication payload: HASH for a pre-shared key, SIG (signed by a helper) for RSA;
    /// `then` gets the payload.
    fn own_auth(&mut self, serial: u64, then: AuthReady) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(hash) = Self::own_hash(p1) else {
            return;
        };
        let Some(c) = &p1.chosen else { return };
        // HASH_I/HASH_R are outputs of the negotiated prf; the helper signs nothing else.
        let prf = c.transform.hash;
        match c.transform.auth {
            AuthMethod::PreShared => self.auth_ready(serial, then, vec![Payload::Hash(hash)]),
            AuthMethod::RsaSig => {
                let Some(peer) = self.peer_by_name(&p1.peer) else {
                    return;
                };
                // Our certificate goes before the signature, as RFC 2409 5.1 lists them.
                let cert: Vec<Payload> = self
                    .own_cert(&peer)
                    .map(|c| {
                        Payload::Cert(CertPayload {
                            encoding: cert_encoding::X509_SIGNATURE,
                            data: c.to_vec(),
                        })
                    })
                    .into_iter()
                    .collect();
                let Credentials::RsaSig { secret, .. } = peer.credentials else {
                    return self.p1_fail(serial, "peer has no RSA key configured".into());
                };
                self.crypto(
                    CryptoRequest::RsaSign { secret, prf, hash },
                    CryptoPending::P1Signed { serial, cert, then },
                );
            }
        }
    }

    /// Our signature came: it follows our certificate.
    pub(super) fn p1_signed(
        &mut self,
        serial: u64,
        cert: Vec<Payload>,
        r: CryptoResult,
        then: AuthReady,
    ) {
        match r {
            CryptoResult::Signature(s) => {
                let mut out = cert;
                out.push(Payload::Sig(s));
                self.auth_ready(serial, then, out)
            }
            other => self.p1_fail(serial, format!("signing failed: {}", super::why(&other))),
        }
    }

    /// The peer did not authenticate. A responder says so (encrypted, so that only the real
    /// initiator can read it) so the initiator gives up at once instead of timing out.
    fn p1_auth_failed(&mut self, serial: u64) {
        if self
            .phase1
            .get(&serial)
            .is_some_and(|p| p.role == Role::Responder && p.keys.is_some())
        {
            let spi = self
                .phase1
                .get(&serial)
                .map(|p| [p.icookie.0, p.rcookie.0].concat())
                .unwrap_or_default();
            self.info_notify(
                serial,
                NotifyType::AUTHENTICATION_FAILED,
                ProtocolId::ISAKMP,
                spi,
            );
        }
        self.p1_fail(serial, "authentication failed".into());
    }

    /// Check the peer's ID and authentication payloads; `then` runs if they are good.
    fn check_peer_auth(
        &mut self,
        serial: u64,
        payloads: &[Payload],
        id_body: Vec<u8>,
        then: PeerAuthenticated,
    ) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(peer) = self.peer_by_name(&p1.peer) else {
            return;
        };
        let Some(c) = p1.chosen.clone() else { return };
        let Some(id) = payloads.iter().find_map(|p| match p {
            Payload::Id(i) => Some(i.clone()),
            _ => None,
        }) else {
            return self.p1_fail(serial, "peer sent no identity".into());
        };
        if let Some(expected) = &peer.remote_id {
            if !x509::identities_match(expected, &id.identity) {
                return self.p1_fail(
                    serial,
                    format!(
                        "peer {} claims identity {}, configured Remote-ID is {}",
                        peer.name,
                        x509::describe_identity(&id.identity),
                        x509::describe_identity(expected)
                    ),
                );
            }
        }
        let initial_contact = payloads.iter().any(
            |p| matches!(p, Payload::Notify(n) if n.notify_type == NotifyType::INITIAL_CONTACT),
        );
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.id_peer_b = id_body;
        p1.id_peer = Some(id.clone());
        p1.initial_contact |= initial_contact;
        let Some(expected) = Self::peer_hash(p1) else {
            return;
        };
        match c.transform.auth {
            AuthMethod::PreShared => {
                let got = payloads.iter().find_map(|p| match p {
                    Payload::Hash(h) => Some(h.clone()),
                    _ => None,
                });
                if got
                    .as_deref()
                    .is_some_and(|g| super::protect::ct_eq(g, &expected))
                {
                    self.peer_authenticated(serial, then);
                } else {
                    self.log(
                        LogLevel::Warning,
                        format!("phase 1 authentication of {} failed: HASH mismatch (wrong pre-shared key?)", peer.name),
                    );
                    self.p1_auth_failed(serial);
                }
            }
            AuthMethod::RsaSig => {
                let Some(sig) = payloads.iter().find_map(|p| match p {
                    Payload::Sig(s) => Some(s.clone()),
                    _ => None,
                }) else {
                    return self.p1_fail(serial, "peer sent no signature".into());
                };
                let public_key = match self.peer_public_key(&peer, &id, payloads) {
                    Ok(k) => k,
                    Err(why) => {
                        self.log(
                            LogLevel::Warning,
                            format!("phase 1 authentication of {} failed: {why}", peer.name),
                        );
                        return self.p1_auth_failed(serial);
                    }
                };
                self.crypto(
                    CryptoRequest::RsaVerify {
                        public_key,
                        hash: expected,
                        sig,
                    },
                    CryptoPending::P1Verified {
                        serial,
                        peer: peer.name.clone(),
                        then,
                    },
                );
            }
        }
    }

    /// The helper's verdict on the peer's signature came.
    pub(super) fn p1_verified(
        &mut self,
        serial: u64,
        peer: &str,
        r: CryptoResult,
        then: PeerAuthenticated,
    ) {
        match r {
            CryptoResult::Verified(true) => self.peer_authenticated(serial, then),
            other => {
                self.log(
                    LogLevel::Warning,
                    format!(
                        "RSA signature of peer {peer} is not valid: {}",
                        super::why(&other)
                    ),
                );
                self.p1_auth_failed(serial);
            }
        }
    }

    fn mm_i3_send(&mut self, serial: u64) {
        self.float(serial);
        let Some((peer, id)) = self.own_id(serial) else {
            return;
        };
        let first_contact = !self
            .phase1
            .values()
            .any(|o| o.peer == peer.name && o.state == P1State::Established);
        self.own_auth(serial, AuthReady::MmI5 { id, first_contact });
    }

    fn mm_i_r3(&mut self, serial: u64, header: &Header, bytes: &[u8], digest: Vec<u8>) {
        let Some((payloads, iv)) = self.p1_decrypt(serial, header, bytes) else {
            return;
        };
        let Some(id_body) = id_body_of(&payloads) else {
            return self.log(
                LogLevel::Notice,
                "Main Mode message 6 has no ID payload".into(),
            );
        };
        self.check_peer_auth(
            serial,
            &payloads,
            id_body,
            PeerAuthenticated::MmI6Done { iv, digest },
        );
    }

    /// A first Main or Aggressive Mode message from a peer: become the responder.
    fn p1_new_responder(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        let payloads = match parse_all(
            header.next_payload,
            &bytes[crate::codec::HEADER_LEN..],
            false,
        ) {
            Ok((_, p)) => p,
            Err(e) => {
                return self.log(
                    LogLevel::Notice,
                    format!("malformed first phase 1 message from {remote}: {e}"),
                )
            }
        };
        let mode = if header.exchange == ExchangeType::MAIN_MODE {
            Phase1Mode::Main
        } else {
            Phase1Mode::Aggressive
        };
        let Some(Payload::Sa(sa)) = payloads.iter().find(|p| matches!(p, Payload::Sa(_))) else {
            return self.log(
                LogLevel::Notice,
                format!("first phase 1 message from {remote} has no SA payload"),
            );
        };
        // Aggressive Mode names the peer in its first message; Main Mode only by address.
        let by_id = payloads.iter().find_map(|p| match p {
            Payload::Id(i) => Some(i.identity.clone()),
            _ => None,
        });
        let peer = by_id
            .as_ref()
            .and_then(|id| self.cfg.policy.peer_for_id(id).cloned())
            .or_else(|| self.cfg.policy.peer_for_address(remote.ip()).cloned());
        let Some(peer) = peer else {
            return self.log(
                LogLevel::Notice,
                format!("{mode:?} Mode from {remote}: no phase 1 peer is configured for this address or identity"),
            );
        };
        if peer.mode != mode {
            self.log(
                LogLevel::Notice,
                format!(
                    "{mode:?} Mode from {remote}: peer {} is configured for {:?} Mode",
                    peer.name, peer.mode
                ),
            );
            return;
        }
        let rcookie = self.random_cookie();
        let chosen = match self.cfg.policy.choose_phase1_for(&peer, sa) {
            Ok(c) => c,
            Err(m) => {
                self.log(
                    LogLevel::Warning,
                    format!("{mode:?} Mode from {remote} (peer {}): {m}", peer.name),
                );
                self.notify_plain(
                    local,
                    remote,
                    header.initiator_cookie,
                    rcookie,
                    NotifyType::NO_PROPOSAL_CHOSEN,
                );
                return;
            }
        };
        let serial = self.serial();
        let Some(sai_b) = body_of(&Payload::Sa(sa.clone())) else {
            return;
        };
        let mut p1 = Phase1::new(
            serial,
            &peer.name,
            Role::Responder,
            mode,
            (header.initiator_cookie, rcookie),
            (local, remote),
            sai_b,
            self.now,
        );
        p1.state = P1State::MmR1Sent;
        p1.chosen = Some(chosen.clone());
        p1.last_received = sha1(bytes);
        Self::note_vendor_ids(&mut p1, &payloads);
        if !peer.nat_t {
            p1.natt = None;
        }
        // The SA we answer with: the one proposal and the one transform we chose, as offered.
        let Some(reply_sa) = policy::phase1_reply_sa(sa, &chosen) else {
            return self.log(
                LogLevel::Error,
                format!("cannot build the reply SA for {remote}"),
            );
        };
        self.by_cookies.insert((p1.icookie, p1.rcookie), serial);
        self.phase1.insert(serial, p1);
        self.timers.add(
            self.now + self.cfg.timers.exchange_max,
            Timer::P1Timeout { serial },
        );
        match mode {
            Phase1Mode::Main => {
                let mut out = vec![Payload::Sa(reply_sa)];
                out.extend(Self::vendor_ids(&peer));
                self.p1_send_plain(serial, out);
            }
            Phase1Mode::Aggressive => {
                let (Some(ke), Some(nonce)) = (find_ke(&payloads), find_nonce(&payloads)) else {
                    return self
                        .p1_fail(serial, "Aggressive Mode message 1 lacks KE or nonce".into());
                };
                let Some(id_body) = id_body_of(&payloads) else {
                    return self.p1_fail(serial, "Aggressive Mode message 1 lacks an ID".into());
                };
                let id = payloads.iter().find_map(|p| match p {
                    Payload::Id(i) => Some(i.clone()),
                    _ => None,
                });
                if let Some(expected) = &peer.remote_id {
                    if !id
                        .as_ref()
                        .is_some_and(|i| x509::identities_match(expected, &i.identity))
                    {
                        return self.p1_fail(
                            serial,
                            format!("peer identity {id:?} is not the configured Remote-ID"),
                        );
                    }
                }
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.gxi = ke.to_vec();
                p1.ni_b = nonce.to_vec();
                p1.id_peer_b = id_body;
                p1.id_peer = id;
                p1.state = P1State::AmR1Wait;
                let group = chosen.transform.group;
                self.crypto(
                    CryptoRequest::DhKeygen { group },
                    CryptoPending::AmR1Keygen { serial, reply_sa },
                );
            }
        }
    }

    /// An unauthenticated notification (before any key exists), as RFC 2408 allows.
    fn notify_plain(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        icookie: Cookie,
        rcookie: Cookie,
        t: NotifyType,
    ) {
        let header = Header {
            initiator_cookie: icookie,
            responder_cookie: rcookie,
            next_payload: PayloadType::NONE,
            version: 0x10,
            exchange: ExchangeType::INFORMATIONAL,
            flags: 0,
            message_id: 0,
            length: 0,
        };
        let n = Payload::Notify(NotifyPayload {
            doi: DOI_IPSEC,
            protocol: ProtocolId::ISAKMP,
            spi: [icookie.0, rcookie.0].concat(),
            notify_type: t,
            data: Vec::new(),
        });
        if let Ok(bytes) = plain(header, &[n]) {
            self.transmit(local, remote, bytes);
        }
    }

    fn mm_r_i2(&mut self, serial: u64, header: &Header, bytes: &[u8], digest: Vec<u8>) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let (Some(ke), Some(nonce)) = (find_ke(&payloads), find_nonce(&payloads)) else {
            return self.log(
                LogLevel::Notice,
                "Main Mode message 3 lacks KE or nonce".into(),
            );
        };
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(group) = p1.chosen.as_ref().map(|c| c.transform.group) else {
            return;
        };
        p1.gxi = ke.to_vec();
        p1.ni_b = nonce.to_vec();
        p1.last_received = digest;
        p1.state = P1State::MmR2Wait;
        p1.retransmit_step += 1;
        self.detect_nat(serial, &payloads);
        self.crypto(
            CryptoRequest::DhKeygen { group },
            CryptoPending::MmR2Keygen { serial },
        );
    }

    /// Main Mode responder: our key pair came; send message 4 and derive the keys.
    pub(super) fn mm_r2_send(&mut self, serial: u64, r: CryptoResult) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let nr = self.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.gxr = public.clone();
        p1.dh = Some(private);
        p1.nr_b = nr.clone();
        let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
        let mut out = vec![Payload::Ke(public), Payload::Nonce(nr)];
        out.extend(Self::nat_d_payloads(p1, h));
        let peer = p1.peer.clone();
        if let Some(peer) = self.peer_by_name(&peer) {
            out.extend(self.cert_requests_for(serial, &peer));
        }
        self.p1_send_plain(serial, out);
        self.derive_keys(serial, KeysReady::MmR4Sent);
    }

    fn mm_r_i3(
        &mut self,
        serial: u64,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        let Some((payloads, iv)) = self.p1_decrypt(serial, header, bytes) else {
            return;
        };
        let Some(id_body) = id_body_of(&payloads) else {
            return self.log(
                LogLevel::Notice,
                "Main Mode message 5 has no ID payload".into(),
            );
        };
        if let Some(p1) = self.phase1.get_mut(&serial) {
            p1.state = P1State::MmR3Wait;
            // It decrypted and parsed, so the sender holds the keys: from here the IV is
            // the one after message 5, which an AUTHENTICATION-FAILED notify must use too.
            p1.iv = iv.clone();
        }
        self.check_peer_auth(
            serial,
            &payloads,
            id_body,
            PeerAuthenticated::MmR6Answer {
                iv,
                digest,
                local,
                remote,
            },
        );
    }

    pub(super) fn am_r1_keygen(&mut self, serial: u64, reply_sa: SaPayload, r: CryptoResult) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let nr = self.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.gxr = public.clone();
        p1.dh = Some(private);
        p1.nr_b = nr.clone();
        let Some((_, id)) = self.own_id(serial) else {
            return;
        };
        self.derive_keys(
            serial,
            KeysReady::AmR2Auth {
                reply_sa,
                public,
                nr,
                id,
            },
        );
    }

    fn am_i_r1(&mut self, serial: u64, header: &Header, bytes: &[u8], digest: Vec<u8>) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(peer) = self.peer_by_name(&p1.peer) else {
            return;
        };
        let Some(Payload::Sa(sa)) = payloads.iter().find(|p| matches!(p, Payload::Sa(_))) else {
            return self.log(
                LogLevel::Notice,
                "Aggressive Mode reply has no SA payload".into(),
            );
        };
        let chosen = match policy::accept_phase1_reply(sa, &peer.transforms) {
            Ok(c) => c,
            Err(m) => {
                return self.p1_fail(
                    serial,
                    format!("responder's choice is not one we offered: {m}"),
                )
            }
        };
        let (Some(ke), Some(nonce), Some(id_body)) = (
            find_ke(&payloads),
            find_nonce(&payloads),
            id_body_of(&payloads),
        ) else {
            return self.log(
                LogLevel::Notice,
                "Aggressive Mode reply lacks KE, nonce or ID".into(),
            );
        };
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        Self::note_vendor_ids(p1, &payloads);
        p1.chosen = Some(chosen);
        p1.gxr = ke.to_vec();
        p1.nr_b = nonce.to_vec();
        p1.last_received = digest;
        p1.state = P1State::AmI2Wait;
        p1.retransmit_step += 1;
        self.detect_nat(serial, &payloads);
        self.derive_keys(serial, KeysReady::AmI2Check { payloads, id_body });
    }

    fn am_r_i2(&mut self, serial: u64, header: &Header, bytes: &[u8], digest: Vec<u8>) {
        // Some peers encrypt the third message (pluto does); both forms are accepted.
        let parsed = if header.flags & flags::ENCRYPTION != 0 {
            self.p1_decrypt(serial, header, bytes)
                .map(|(p, iv)| (p, Some(iv)))
        } else {
            self.p1_parse(serial, header, bytes).map(|p| (p, None))
        };
        let Some((payloads, iv)) = parsed else { return };
        // The initiator's NAT-D payloads come in this message (RFC 3947 3.2).
        self.detect_nat(serial, &payloads);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let id_body = p1.id_peer_b.clone();
        let id = p1.id_peer.clone();
        p1.state = P1State::AmR2Wait;
        // The IV chain advances with the encrypted message whatever its verdict: a refusal
        // (the authenticated notification check_peer_auth sends) is encrypted after it.
        if let Some(iv) = iv {
            p1.iv = iv;
        }
        // The peer's ID came in message 1; check_peer_auth expects it among the payloads.
        let mut with_id = payloads;
        if let Some(id) = id {
            with_id.push(Payload::Id(id));
        }
        self.check_peer_auth(
            serial,
            &with_id,
            id_body,
            PeerAuthenticated::AmR3Done { digest },
        );
    }

    /// SKEYID and the keys are ready: the exchange takes its next step.
    fn keys_ready(&mut self, serial: u64, then: KeysReady) {
        match then {
            KeysReady::MmI5Send => self.mm_i3_send(serial),
            KeysReady::MmR4Sent => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.state = P1State::MmR2Sent;
                }
            }
            KeysReady::AmR2Auth {
                reply_sa,
                public,
                nr,
                id,
            } => self.own_auth(
                serial,
                AuthReady::AmR2 {
                    reply_sa,
                    public,
                    nr,
                    id,
                },
            ),
            KeysReady::AmI2Check { payloads, id_body } => {
                self.check_peer_auth(serial, &payloads, id_body, PeerAuthenticated::AmI3Auth)
            }
        }
    }

    /// The peer proved who it is: the exchange takes its next step.
    fn peer_authenticated(&mut self, serial: u64, then: PeerAuthenticated) {
        match then {
            PeerAuthenticated::MmI6Done { iv, digest } => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.iv = iv;
                    p1.last_received = digest;
                }
                self.p1_established(serial);
            }
            PeerAuthenticated::MmR6Answer {
                iv,
                digest,
                local,
                remote,
            } => {
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.iv = iv;
                p1.last_received = digest;
                p1.local = local;
                p1.remote = remote;
                let Some((_, id)) = self.own_id(serial) else {
                    return;
                };
                self.own_auth(serial, AuthReady::MmR6 { id });
            }
            PeerAuthenticated::AmI3Auth => {
                self.float(serial);
                self.own_auth(serial, AuthReady::AmI3);
            }
            PeerAuthenticated::AmR3Done { digest } => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.last_received = digest;
                }
                self.p1_established(serial);
            }
        }
    }

    /// Our authentication payloads are ready: the message that carries them goes out.
    fn auth_ready(&mut self, serial: u64, then: AuthReady, auth: Vec<Payload>) {
        match then {
            AuthReady::MmI5 { id, first_contact } => {
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.state = P1State::MmI3Sent;
                let mut payloads = vec![Payload::Id(id)];
                payloads.extend(auth);
                if first_contact {
                    payloads.push(initial_contact_notify(p1));
                }
                self.p1_send_sealed(serial, payloads, true);
            }
            AuthReady::MmR6 { id } => {
                let mut out = vec![Payload::Id(id)];
                out.extend(auth);
                self.p1_send_sealed(serial, out, false);
                self.p1_established(serial);
            }
            AuthReady::AmR2 {
                reply_sa,
                public,
                nr,
                id,
            } => {
                let Some(peer) = self
                    .phase1
                    .get(&serial)
                    .and_then(|p| self.peer_by_name(&p.peer))
                else {
                    return;
                };
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.state = P1State::AmR1Sent;
                let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
                let mut out = vec![
                    Payload::Sa(reply_sa),
                    Payload::Ke(public),
                    Payload::Nonce(nr),
                    Payload::Id(id),
                ];
                out.extend(Self::nat_d_payloads(p1, h));
                out.extend(auth);
                out.extend(self.cert_requests(&peer));
                out.extend(Self::vendor_ids(&peer));
                self.p1_send_plain(serial, out);
            }
            AuthReady::AmI3 => {
                let Some(p1) = self.phase1.get(&serial) else {
                    return;
                };
                let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
                let mut out = Self::nat_d_payloads(p1, h);
                out.extend(auth);
                // RFC 2409 shows the third message in the clear, but pluto (and racoon,
                // Cisco) encrypt it, and pluto as responder chains its phase 2 IV on an
                // encrypted one: with a clear one, its Quick Mode decrypts to garbage.
                // strongSwan and we as responder take either form.
                self.p1_send_sealed_as(serial, ExchangeType::AGGRESSIVE, out, false);
                if self.phase1.contains_key(&serial) {
                    self.p1_established(serial);
                }
            }
        }
    }

    /// Phase 1 is complete: arm lifetime timers, honour INITIAL-CONTACT, start what waits.
    fn p1_established(&mut self, serial: u64) {
        let now = self.now;
        let timers = self.cfg.timers.clone();
        let fuzz = self.rng.next_u32();
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if p1.state == P1State::Established {
            return;
        }
        p1.state = P1State::Established;
        p1.established = Some(now);
        p1.last_heard = now;
        p1.retransmit_step += 1;
        // Drop what only the exchange needed.
        p1.dh = None;
        p1.gxy = None;
        let lifetime = Duration::from_secs(p1.chosen.as_ref().map_or(3600, |c| c.lifetime.seconds));
        p1.expires = Some(now + lifetime);
        let (peer, icookie, rcookie, remote, summary, role) = (
            p1.peer.clone(),
            p1.icookie,
            p1.rcookie,
            p1.remote,
            p1.summary(),
            p1.role,
        );
        let waiting = std::mem::take(&mut p1.waiting);
        let initial_contact = std::mem::take(&mut p1.initial_contact);
        let dpd = p1.peer_dpd;
        let nat_local = p1.nat_local;
        self.timers.add(now + lifetime, Timer::P1Expire { serial });
        if role == Role::Initiator {
            self.timers.add(
                now + rekey_delay(lifetime, &timers, fuzz),
                Timer::P1Rekey { serial },
            );
        }
        if let Some(peer_cfg) = self.peer_by_name(&peer) {
            if dpd && peer_cfg.dpd_interval > 0 {
                self.timers.add(
                    now + Duration::from_secs(peer_cfg.dpd_interval),
                    Timer::Dpd { serial },
                );
            }
        }
        if nat_local {
            self.timers
                .add(now + timers.nat_keepalive, Timer::Keepalive { serial });
        }
        self.log(
            LogLevel::Info,
            format!("phase 1 established with {peer} ({remote}): {summary}"),
        );
        self.event(Event::Phase1Up {
            peer: peer.clone(),
            icookie,
            rcookie,
            remote,
            summary,
        });
        if initial_contact {
            self.initial_contact(serial);
        }
        for c in waiting {
            self.start_qm(serial, &c);
        }
    }

    pub(super) fn p1_rekey(&mut self, serial: u64) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        if p1.replaced || p1.state != P1State::Established {
            return;
        }
        let peer = p1.peer.clone();
        // Rekey only what is still wanted: a peer with an IPsec SA or an active connection.
        let wanted = self.ipsec.values().any(|s| s.peer == peer)
            || self
                .cfg
                .policy
                .connections
                .iter()
                .any(|c| c.peer == peer && c.active);
        if wanted {
            self.log(LogLevel::Info, format!("rekeying phase 1 with {peer}"));
            self.start_phase1(&peer, Vec::new());
        }
    }

    pub(super) fn p1_expire(&mut self, serial: u64) {
        if self
            .phase1
            .get(&serial)
            .is_some_and(|p| p.state == P1State::Established)
        {
            self.delete_phase1(serial, true, "lifetime expired");
        }
    }

    /// Remove an ISAKMP SA, telling the peer when `notify`.
    pub(super) fn delete_phase1(&mut self, serial: u64, notify: bool, reason: &str) {
        if notify && !self.cfg.passive {
            let Some(p1) = self.phase1.get(&serial) else {
                return;
            };
            let spi = [p1.icookie.0, p1.rcookie.0].concat();
            let d = Payload::Delete(crate::codec::DeletePayload {
                doi: DOI_IPSEC,
                protocol: ProtocolId::ISAKMP,
                spi_size: 16,
                spis: vec![spi],
            });
            self.info_send(serial, vec![d]);
        }
        if let Some(p1) = self.phase1.remove(&serial) {
            self.by_cookies.remove(&(p1.icookie, p1.rcookie));
            self.quick.retain(|(s, _), _| *s != serial);
            self.log(
                LogLevel::Info,
                format!(
                    "phase 1 with {} ({}, cookies {}) deleted: {reason}",
                    p1.peer,
                    p1.remote,
                    cookies(&p1)
                ),
            );
            self.event(Event::Phase1Down {
                peer: p1.peer,
                icookie: p1.icookie,
                rcookie: p1.rcookie,
                reason: reason.to_string(),
            });
        }
    }

    /// The newest established ISAKMP SA with `peer`.
    pub(super) fn established_p1(&self, peer: &str) -> Option<u64> {
        self.phase1
            .values()
            .filter(|p| p.peer == peer && p.state == P1State::Established)
            .max_by_key(|p| (p.established, p.serial))
            .map(|p| p.serial)
    }

    /// A phase-1 exchange with `peer` still being negotiated.
    pub(super) fn pending_p1(&self, peer: &str) -> Option<u64> {
        self.phase1
            .values()
            .filter(|p| p.peer == peer && p.state != P1State::Established)
            .map(|p| p.serial)
            .max()
    }

    /// Keys of an established ISAKMP SA for Quick Mode and Informational: prf, SKEYID_a,
    /// SKEYID_d, the cipher and key, and the phase-1 IV.
    pub(super) fn p1_keys(&self, serial: u64) -> Option<P1Keys> {
        let p1 = self.phase1.get(&serial)?;
        let c = p1.chosen.as_ref()?;
        let k = p1.keys.as_ref()?;
        Some(P1Keys {
            prf: c.transform.hash,
            encr: c.transform.encr,
            skeyid_a: k.skeyid_a.clone(),
            skeyid_d: k.skeyid_d.clone(),
            enc_key: k.enc_key.clone(),
            iv: p1.iv.clone(),
        })
    }
}

/// What Quick Mode and Informational exchanges take from their ISAKMP SA.
pub(super) struct P1Keys {
    pub prf: HashAlg,
    pub encr: crate::crypto::EncrAlg,
    pub skeyid_a: Secret,
    pub skeyid_d: Secret,
    pub enc_key: Secret,
    pub iv: Vec<u8>,
}

/// When to rekey an SA of `lifetime`: pluto's margin plus a random fuzz, the margin capped
/// at half the lifetime so that short test lifetimes still rekey well before expiry.
pub(super) fn rekey_delay(lifetime: Duration, t: &super::Timers, random: u32) -> Duration {
    let margin = t.rekey_margin.min(lifetime / 2);
    let fuzz_max = margin.as_millis() as u64 * u64::from(t.rekey_fuzz_percent) / 100;
    let fuzz = if fuzz_max == 0 {
        0
    } else {
        u64::from(random) % (fuzz_max + 1)
    };
    let total = (margin + Duration::from_millis(fuzz)).min(lifetime * 3 / 4);
    lifetime - total
}

/// The cookies of an ISAKMP SA as isakmpd's `d` command and report write them.
pub(super) fn cookies(p1: &Phase1) -> String {
    let hex = |c: &Cookie| c.0.iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!("{}:{}", hex(&p1.icookie), hex(&p1.rcookie))
}

fn initial_contact_notify(p1: &Phase1) -> Payload {
    Payload::Notify(NotifyPayload {
        doi: DOI_IPSEC,
        protocol: ProtocolId::ISAKMP,
        spi: [p1.icookie.0, p1.rcookie.0].concat(),
        notify_type: NotifyType::INITIAL_CONTACT,
        data: Vec::new(),
    })
}

fn find_ke(p: &[Payload]) -> Option<&[u8]> {
    p.iter().find_map(|x| match x {
        Payload::Ke(k) => Some(k.as_slice()),
        _ => None,
    })
}

fn find_nonce(p: &[Payload]) -> Option<&[u8]> {
    p.iter().find_map(|x| match x {
        Payload::Nonce(n) => Some(n.as_slice()),
        _ => None,
    })
}

/// The body of the first ID payload, as the hash covers it.
fn id_body_of(p: &[Payload]) -> Option<Vec<u8>> {
    p.iter()
        .find(|x| matches!(x, Payload::Id(_)))
        .and_then(body_of)
}

/// A payload's body as the hashes cover it.
fn body_of(p: &Payload) -> Option<Vec<u8>> {
    let mut b = Vec::new();
    p.emit_body(&mut b).ok()?;
    Some(b)
}
