//! Phase 1: the ISAKMP SA record and what Main and Aggressive Mode share: starting an
//! exchange, sending and retransmitting, routing a message to its exchange, becoming a
//! responder, establishment, rekey, expiry and deletion. Each mode's messages, keying,
//! authentication, NAT-T and the resumption of waiting work have modules of their own.

mod aggressive;
mod auth;
mod keys;
mod main_mode;
mod nat;
mod steps;

use super::admission::Admitted;
use super::natt::{nat_d, NatTVersion, VID_DPD, VID_DRAFT_02N, VID_RFC3947};
use super::pending::{AuthReady, CryptoPending, KeysReady, PeerAuthenticated};
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
use crate::engine::protect::{open, parse_all, plain, sealed};
use crate::engine::IsakmpSerial;
use crate::policy::{self, AuthMethod, ChosenPhase1, Credentials, Peer, Phase1Mode};
use crate::policy::{ConnectionName, PeerName};
use crate::x509;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Nonce length we send (RFC 2409 allows 8..256 bytes).
const NONCE_LEN: usize = 32;

/// A first message that would make us keep more than this (its SA payload is kept until the
/// exchange ends) is dropped: our own, with every transform isakmpd.conf can name, a KE of
/// MODP8192, certificate requests and vendor IDs, stays well under it.
const MAX_FIRST_MESSAGE: usize = 16384;

/// Transforms in one offer, over all its proposals: more is dropped, so one forged message
/// costs neither a long match nor a long log line.
const MAX_OFFER_TRANSFORMS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Initiator,
    Responder,
}

/// Which message of Main or Aggressive Mode an exchange has reached. `*Wait` steps wait
/// for a helper. An established SA has no step: see [`Stage`].
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
        }
    }
}

/// What only the exchange needs, until the peer has authenticated: the offer as the
/// initiator sent it, both public values and nonces, our DH private value, g^xy, SKEYID,
/// both ID payload bodies, and a message that came while keys were computed. It is dropped
/// at establishment, so an established SA holds no DH secret (the secrets wipe themselves).
#[derive(Default)]
pub(super) struct Handshake {
    /// Body of the initiator's SA payload (SAi_b), as the initiator sent it.
    pub sai_b: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub gxi: Vec<u8>,
    pub gxr: Vec<u8>,
    pub ni_b: Vec<u8>,
    pub nr_b: Vec<u8>,
    pub gxy: Option<Secret>,
    pub skeyid: Option<Secret>,
    /// Body of our ID payload, and the peer's (IDii_b / IDir_b).
    pub id_own_b: Vec<u8>,
    pub id_peer_b: Vec<u8>,
    /// A message that arrived while keys were still being computed.
    pub deferred: Option<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Connections to start once this SA is up.
    pub waiting: Vec<ConnectionName>,
}

/// What only an established ISAKMP SA needs: its times and Dead Peer Detection.
pub(super) struct Established {
    pub at: Instant,
    pub expires: Instant,
    pub dpd_seq: u32,
    /// The R-U-THERE we wait an answer for, and since when we wait.
    pub dpd_outstanding: Option<(u32, Instant)>,
    /// The sequence number of the peer's last R-U-THERE we answered (RFC 3706 7): an
    /// older or repeated one is not answered.
    pub peer_dpd_seq: Option<u32>,
    /// How many times that number came again (and was answered).
    pub peer_dpd_repeats: u8,
}

/// An ISAKMP SA is negotiating, carrying the exchange's data, or established, carrying
/// its own: no field of one stage exists in the other.
pub(super) enum Stage {
    Negotiating { step: P1State, hs: Box<Handshake> },
    Established(Established),
}

/// One ISAKMP SA, from its first message to its deletion.
pub(super) struct Phase1 {
    pub serial: IsakmpSerial,
    pub peer: PeerName,
    pub role: Role,
    pub mode: Phase1Mode,
    pub stage: Stage,
    pub icookie: Cookie,
    pub rcookie: Cookie,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub chosen: Option<ChosenPhase1>,
    pub keys: Option<Phase1Keys>,
    /// The phase-1 CBC IV: the last ciphertext block of the last phase-1 message.
    pub iv: Vec<u8>,
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
    pub last_heard: Instant,
    /// Message IDs of Informational and Quick Mode exchanges seen, against replays.
    pub seen_msgids: BTreeSet<u32>,
    /// A newer ISAKMP SA with the same peer has taken over.
    pub replaced: bool,
    /// INITIAL-CONTACT to be honoured once the peer has authenticated.
    pub initial_contact: bool,
    /// The exchange's Exchange-max-time timer, cancelled when the exchange ends or
    /// completes: under a flood, ended exchanges must not leave their timers behind.
    pub timeout_timer: Option<super::timers::TimerKey>,
    /// A responder exchange counts as half-open from this address until it authenticates or
    /// goes (admission control); the address it was admitted under, even if it floats.
    pub half_open_from: Option<std::net::IpAddr>,
}

impl Phase1 {
    /// A new exchange: nothing negotiated yet. The initiator's first step is Main Mode's;
    /// callers set what differs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        serial: IsakmpSerial,
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
            peer: PeerName::from(peer),
            role,
            mode,
            stage: Stage::Negotiating {
                step: P1State::MmI1Sent,
                hs: Box::new(Handshake {
                    sai_b,
                    ..Handshake::default()
                }),
            },
            icookie,
            rcookie,
            local,
            remote,
            chosen: None,
            keys: None,
            iv: Vec::new(),
            id_peer: None,
            natt: None,
            peer_dpd: false,
            nat_local: false,
            nat_remote: false,
            last_sent: None,
            retransmit_step: 0,
            tries: 0,
            last_received: Vec::new(),
            last_heard: now,
            seen_msgids: BTreeSet::new(),
            replaced: false,
            initial_contact: false,
            half_open_from: None,
            timeout_timer: None,
        }
    }

    /// The exchange's step, or `None` once established.
    pub fn step(&self) -> Option<P1State> {
        match &self.stage {
            Stage::Negotiating { step, .. } => Some(*step),
            Stage::Established(_) => None,
        }
    }

    /// Whether the step is `s`.
    pub fn at(&self, s: P1State) -> bool {
        self.step() == Some(s)
    }

    pub fn is_established(&self) -> bool {
        matches!(self.stage, Stage::Established(_))
    }

    /// Move the exchange on; an established SA has no steps left, so this does nothing.
    pub fn set_step(&mut self, s: P1State) {
        if let Stage::Negotiating { step, .. } = &mut self.stage {
            *step = s;
        }
    }

    /// The exchange's data, while there is an exchange.
    pub fn hs(&mut self) -> Option<&mut Handshake> {
        match &mut self.stage {
            Stage::Negotiating { hs, .. } => Some(hs),
            Stage::Established(_) => None,
        }
    }

    pub fn hs_ref(&self) -> Option<&Handshake> {
        match &self.stage {
            Stage::Negotiating { hs, .. } => Some(hs),
            Stage::Established(_) => None,
        }
    }

    pub fn established(&self) -> Option<&Established> {
        match &self.stage {
            Stage::Established(e) => Some(e),
            Stage::Negotiating { .. } => None,
        }
    }

    pub fn established_mut(&mut self) -> Option<&mut Established> {
        match &mut self.stage {
            Stage::Established(e) => Some(e),
            Stage::Negotiating { .. } => None,
        }
    }

    /// The header of a reply or a new message within phase-1 SA `serial`.
    pub(super) fn header(&self, exchange: ExchangeType, message_id: u32, flags: u8) -> Header {
        Header {
            initiator_cookie: self.icookie,
            responder_cookie: self.rcookie,
            next_payload: crate::codec::PayloadType::NONE,
            version: 0x10,
            exchange,
            flags,
            message_id,
            length: crate::codec::HEADER_LEN as u32,
        }
    }

    /// The name of where this SA stands, for logs and the report.
    pub fn state_name(&self) -> &'static str {
        self.step().map_or("ESTABLISHED", P1State::name)
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
        self.ctx
            .cfg
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
            .ctx
            .cfg
            .local_addresses
            .iter()
            .find(|a| a.is_ipv4() == peer.address.is_ipv4())
            .copied()
            .unwrap_or_else(|| match peer.address {
                SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            });
        SocketAddr::new(ip, self.ctx.cfg.ike_port)
    }

    /// Start an ISAKMP SA with `peer_name`; `waiting` connections start when it is up.
    pub(super) fn start_phase1(&mut self, peer_name: &str, waiting: Vec<ConnectionName>) {
        let Some(peer) = self.peer_by_name(peer_name) else {
            self.ctx.log(
                LogLevel::Error,
                format!("no phase 1 peer named {peer_name:?}"),
            );
            return;
        };
        if peer.transforms.is_empty() {
            self.ctx.log(
                LogLevel::Error,
                format!("peer {peer_name}: no phase 1 transforms configured"),
            );
            return;
        }
        let serial = self.ctx.isakmp_serial();
        let icookie = self.ctx.random_cookie();
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
            return self.ctx.log(
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
            self.ctx.now,
        );
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.waiting = waiting;
        self.ctx.log(
            LogLevel::Info,
            format!(
                "initiating {:?} mode with peer {} at {}",
                peer.mode, peer.name, peer.address
            ),
        );
        self.by_cookies.insert((icookie, Cookie::default()), serial);
        p1.timeout_timer = Some(self.ctx.timers.add(
            self.ctx.now + self.ctx.cfg.timers.exchange_max,
            Timer::P1Timeout { serial },
        ));
        self.phase1.insert(serial, p1);
        match peer.mode {
            Phase1Mode::Main => {
                let mut payloads = vec![Payload::Sa(offer)];
                payloads.extend(auth::vendor_ids(&peer));
                self.p1_send_plain(serial, payloads);
            }
            Phase1Mode::Aggressive => {
                if let Some(p) = self.phase1.get_mut(&serial) {
                    p.set_step(P1State::AmI1Wait);
                }
                let group = peer.transforms[0].group;
                self.crypto(
                    CryptoRequest::DhKeygen { group },
                    CryptoPending::AmI1Keygen { serial, offer },
                );
            }
        }
    }

    /// Send a cleartext phase-1 message and arm its retransmission.
    fn p1_send_plain(&mut self, serial: IsakmpSerial, payloads: Vec<Payload>) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let exchange = match p1.mode {
            Phase1Mode::Main => ExchangeType::MAIN_MODE,
            Phase1Mode::Aggressive => ExchangeType::AGGRESSIVE,
        };
        let header = p1.header(exchange, 0, 0);
        // A responder's first answer goes to a source that has proven nothing (it may be
        // spoofed): it is not retransmitted, so one forged packet draws one answer. The
        // initiator's retransmission is answered again instead (the last message is kept).
        let retransmit =
            !(p1.role == Role::Responder && (p1.at(P1State::MmR1Sent) || p1.at(P1State::AmR1Sent)));
        match plain(header, &payloads) {
            Ok(bytes) => self.p1_send(serial, bytes, retransmit),
            Err(e) => self.p1_fail(serial, e.to_string()),
        }
    }

    /// Send an encrypted phase-1 message (Main Mode 5 and 6).
    fn p1_send_sealed(&mut self, serial: IsakmpSerial, payloads: Vec<Payload>, retransmit: bool) {
        self.p1_send_sealed_as(serial, ExchangeType::MAIN_MODE, payloads, retransmit)
    }

    /// Send an encrypted phase-1 message of exchange `exchange` (Main Mode 5 and 6,
    /// Aggressive Mode 3), the IV chained on.
    fn p1_send_sealed_as(
        &mut self,
        serial: IsakmpSerial,
        exchange: ExchangeType,
        payloads: Vec<Payload>,
        retransmit: bool,
    ) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(keys) = &p1.keys else { return };
        let Some(c) = &p1.chosen else { return };
        let header = p1.header(exchange, 0, flags::ENCRYPTION);
        let (from, to) = (p1.local, p1.remote);
        match sealed(header, &payloads, c.transform.encr, &keys.enc_key, &p1.iv) {
            Ok((bytes, iv, view)) => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.iv = iv;
                }
                self.ctx.capture(from, to, view);
                self.p1_send(serial, bytes, retransmit);
            }
            Err(e) => self.p1_fail(serial, e.to_string()),
        }
    }

    fn p1_send(&mut self, serial: IsakmpSerial, bytes: Vec<u8>, retransmit: bool) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.last_sent = Some((p1.local, p1.remote, bytes.clone()));
        p1.retransmit_step += 1;
        p1.tries = 0;
        let step = p1.retransmit_step;
        let (from, to) = (p1.local, p1.remote);
        self.ctx.transmit(from, to, bytes);
        if retransmit {
            self.ctx.timers.add(
                self.ctx.now + self.ctx.cfg.timers.retransmit_base,
                Timer::P1Retransmit { serial, step },
            );
        }
    }

    pub(super) fn p1_retransmit(&mut self, serial: IsakmpSerial, step: u32) {
        let retransmits = self.ctx.cfg.timers.retransmits;
        let base = self.ctx.cfg.timers.retransmit_base;
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        // A newer message (or completion) since this timer was armed makes it stale.
        if p1.retransmit_step != step || p1.is_established() {
            return;
        }
        if p1.tries >= retransmits {
            let msg = format!(
                "peer {} did not answer after {} retransmissions in {}",
                p1.peer,
                p1.tries,
                p1.state_name()
            );
            self.p1_fail(serial, msg);
            return;
        }
        p1.tries += 1;
        let tries = p1.tries;
        if let Some((from, to, bytes)) = p1.last_sent.clone() {
            self.ctx.debug(format!(
                "retransmitting phase 1 message to {to} (try {tries})"
            ));
            let bytes = self.ctx.with_marker(from, bytes);
            self.ctx
                .out
                .push_back(super::Output::Transmit(super::Transmit { from, to, bytes }));
        }
        let delay = base.saturating_mul(1u32 << tries.min(16));
        self.ctx
            .timers
            .add(self.ctx.now + delay, Timer::P1Retransmit { serial, step });
    }

    pub(super) fn p1_timeout(&mut self, serial: IsakmpSerial) {
        if let Some(p1) = self.phase1.get(&serial) {
            if !p1.is_established() {
                let msg = format!("phase 1 with {} timed out in {}", p1.peer, p1.state_name());
                self.p1_fail(serial, msg);
            }
        }
    }

    /// Abandon a phase-1 exchange that cannot complete.
    pub(super) fn p1_fail(&mut self, serial: IsakmpSerial, reason: String) {
        if let Some(p1) = self.phase1.remove(&serial) {
            self.exchange_ended(&p1);
            self.ctx.log(
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
                    self.ctx
                        .debug(format!("dropping unexpected phase 1 message from {remote}"));
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
                    self.ctx.debug(format!(
                        "dropping phase 1 message from {remote}: no state for its cookies"
                    ));
                    return;
                };
                let ok = self.phase1.get(&s).is_some_and(|p| {
                    p.role == Role::Initiator
                        && matches!(p.step(), Some(P1State::MmI1Sent | P1State::AmI1Sent))
                });
                if !ok {
                    self.ctx.debug(format!(
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
                self.ctx.debug(format!(
                    "duplicate phase 1 message from {remote}: resending our last message"
                ));
                let b = self.ctx.with_marker(from, b);
                self.ctx
                    .out
                    .push_back(super::Output::Transmit(super::Transmit {
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
            self.ctx.debug(format!(
                "dropping phase 1 message from {remote}: exchange type does not match the SA"
            ));
            return;
        }
        // A message on the NAT-T port may be the peer's float (RFC 3947 4), but anyone can
        // send one with these cookies: the SA follows it only once the message has
        // authenticated (Main Mode message 5, Aggressive Mode message 3).
        let Some(step) = p1.step() else {
            return self.ctx.debug(format!(
                "ignoring phase 1 message from {remote} in state ESTABLISHED"
            ));
        };
        match step {
            P1State::MmI1Sent => self.mm_i_r1(serial, header, bytes, digest),
            P1State::MmI2Sent => self.mm_i_r2(serial, header, bytes, digest),
            P1State::MmI3Sent => self.mm_i_r3(serial, header, bytes, digest),
            P1State::MmR1Sent => self.mm_r_i2(serial, header, bytes, digest),
            P1State::MmR2Sent => self.mm_r_i3(serial, local, remote, header, bytes, digest),
            P1State::AmI1Sent => self.am_i_r1(serial, header, bytes, digest),
            P1State::AmR1Sent => self.am_r_i2(serial, local, remote, header, bytes, digest),
            P1State::MmR2Wait | P1State::MmI3Wait if header.flags & flags::ENCRYPTION != 0 => {
                // Keys are still being computed: keep the message and handle it then.
                if let Some(hs) = self.phase1.get_mut(&serial).and_then(|p| p.hs()) {
                    hs.deferred = Some((local, remote, bytes.to_vec()));
                }
            }
            s => self.ctx.debug(format!(
                "ignoring phase 1 message from {remote} in state {}",
                s.name()
            )),
        }
    }

    /// Parse a cleartext phase-1 message, or report why not.
    fn p1_parse(
        &mut self,
        serial: IsakmpSerial,
        header: &Header,
        bytes: &[u8],
    ) -> Option<Vec<Payload>> {
        if header.flags & flags::ENCRYPTION != 0 {
            self.ctx
                .debug("dropping encrypted phase 1 message where cleartext was expected".into());
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
                self.ctx.log(
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
        serial: IsakmpSerial,
        header: &Header,
        bytes: &[u8],
    ) -> Option<(Vec<Payload>, Vec<u8>)> {
        let p1 = self.phase1.get(&serial)?;
        let (Some(keys), Some(c)) = (&p1.keys, &p1.chosen) else {
            return None;
        };
        if header.flags & flags::ENCRYPTION == 0 {
            self.ctx.log(
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
            self.ctx
                .capture(remote, local, crate::engine::protect::view(bytes, pt));
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
                self.ctx.log(
                    LogLevel::Warning,
                    format!("cannot decrypt phase 1 message from {peer}: {e}{hint}"),
                );
                None
            }
        }
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
                return self.ctx.log(
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
            return self.ctx.log(
                LogLevel::Notice,
                format!("first phase 1 message from {remote} has no SA payload"),
            );
        };
        if first_message_too_big(&mut self.ctx, remote, sa, bytes.len()) {
            return;
        }
        // Aggressive Mode names the peer in its first message; Main Mode only by address.
        let by_id = payloads.iter().find_map(|p| match p {
            Payload::Id(i) => Some(i.identity.clone()),
            _ => None,
        });
        let peer = by_id
            .as_ref()
            .and_then(|id| self.ctx.cfg.policy.peer_for_id(id).cloned())
            .or_else(|| self.ctx.cfg.policy.peer_for_address(remote.ip()).cloned());
        let Some(peer) = peer else {
            return self.ctx.log(
                LogLevel::Notice,
                format!("{mode:?} Mode from {remote}: no phase 1 peer is configured for this address or identity"),
            );
        };
        if peer.mode != mode {
            self.ctx.log(
                LogLevel::Notice,
                format!(
                    "{mode:?} Mode from {remote}: peer {} is configured for {:?} Mode",
                    peer.name, peer.mode
                ),
            );
            return;
        }
        let rcookie = self.ctx.random_cookie();
        let chosen = match self.ctx.cfg.policy.choose_phase1_for(&peer, sa) {
            Ok(c) => c,
            Err(m) => {
                self.ctx.log(
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
        let serial = self.ctx.isakmp_serial();
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
            self.ctx.now,
        );
        p1.set_step(P1State::MmR1Sent);
        p1.chosen = Some(chosen.clone());
        p1.last_received = sha1(bytes);
        p1.note_vendor_ids(&payloads, peer.nat_t);
        // The SA we answer with: the one proposal and the one transform we chose, as offered.
        let Some(reply_sa) = policy::phase1_reply_sa(sa, &chosen) else {
            return self.ctx.log(
                LogLevel::Error,
                format!("cannot build the reply SA for {remote}"),
            );
        };
        match super::admission::admit_first_message(
            &mut self.admission,
            &mut self.ctx,
            serial,
            remote,
            mode,
        ) {
            Admitted::Yes => {}
            Admitted::InPlaceOf(victim) => self.drop_unproven(victim),
            Admitted::No => return,
        }
        p1.half_open_from = Some(remote.ip());
        self.by_cookies.insert((p1.icookie, p1.rcookie), serial);
        p1.timeout_timer = Some(self.ctx.timers.add(
            self.ctx.now + self.ctx.cfg.timers.exchange_max,
            Timer::P1Timeout { serial },
        ));
        self.phase1.insert(serial, p1);
        match mode {
            Phase1Mode::Main => {
                let mut out = vec![Payload::Sa(reply_sa)];
                out.extend(auth::vendor_ids(&peer));
                self.p1_send_plain(serial, out);
            }
            Phase1Mode::Aggressive => {
                let (Some(ke), Some(nonce)) = (find_ke(&payloads), find_nonce(&payloads)) else {
                    return self
                        .p1_fail(serial, "Aggressive Mode message 1 lacks KE or nonce".into());
                };
                if self.nonce_refused(serial, nonce) || self.ke_refused(serial, ke) {
                    return self.p1_fail(serial, "Aggressive Mode message 1 refused".into());
                }
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
                let Some(hs) = p1.hs() else {
                    return;
                };
                hs.gxi = ke.to_vec();
                hs.ni_b = nonce.to_vec();
                hs.id_peer_b = id_body;
                p1.id_peer = id;
                p1.set_step(P1State::AmR1Wait);
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
            self.ctx.transmit(local, remote, bytes);
        }
    }

    /// Phase 1 is complete: arm lifetime timers, honour INITIAL-CONTACT, start what waits.
    fn p1_established(&mut self, serial: IsakmpSerial) {
        let now = self.ctx.now;
        let timers = self.ctx.cfg.timers.clone();
        let fuzz = self.ctx.rng.next_u32();
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if p1.is_established() {
            return;
        }
        p1.last_heard = now;
        p1.retransmit_step += 1;
        if let Some(from) = p1.half_open_from.take() {
            self.admission.release(serial, from);
        }
        if let Some(key) = p1.timeout_timer.take() {
            self.ctx.timers.cancel(key);
        }
        let lifetime = Duration::from_secs(p1.chosen.as_ref().map_or(3600, |c| c.lifetime.seconds));
        // The exchange's data (DH private value, g^xy, nonces, SKEYID) goes here, wiped.
        let hs = std::mem::replace(
            &mut p1.stage,
            Stage::Established(Established {
                at: now,
                expires: now + lifetime,
                dpd_seq: 0,
                dpd_outstanding: None,
                peer_dpd_seq: None,
                peer_dpd_repeats: 0,
            }),
        );
        let waiting = match hs {
            Stage::Negotiating { mut hs, .. } => std::mem::take(&mut hs.waiting),
            Stage::Established(_) => Vec::new(),
        };
        let (peer, icookie, rcookie, remote, summary, role) = (
            p1.peer.clone(),
            p1.icookie,
            p1.rcookie,
            p1.remote,
            p1.summary(),
            p1.role,
        );
        let initial_contact = std::mem::take(&mut p1.initial_contact);
        let dpd = p1.peer_dpd;
        let nat_local = p1.nat_local;
        self.ctx
            .timers
            .add(now + lifetime, Timer::P1Expire { serial });
        if role == Role::Initiator {
            self.ctx.timers.add(
                now + rekey_delay(lifetime, &timers, fuzz),
                Timer::P1Rekey { serial },
            );
        }
        if let Some(peer_cfg) = self.peer_by_name(&peer) {
            if dpd && peer_cfg.dpd_interval > 0 {
                self.ctx.timers.add(
                    now + Duration::from_secs(peer_cfg.dpd_interval),
                    Timer::Dpd { serial },
                );
            }
        }
        if nat_local {
            self.ctx
                .timers
                .add(now + timers.nat_keepalive, Timer::Keepalive { serial });
        }
        self.ctx.log(
            LogLevel::Info,
            format!("phase 1 established with {peer} ({remote}): {summary}"),
        );
        self.ctx.event(Event::Phase1Up {
            peer: peer.clone(),
            icookie,
            rcookie,
            remote,
            summary,
        });
        if initial_contact {
            self.initial_contact(serial);
        }
        if self.ctx.cfg.policy.general.unique_ids {
            self.unique_id(serial);
        }
        for c in waiting {
            self.start_qm(serial, &c);
        }
    }

    pub(super) fn p1_rekey(&mut self, serial: IsakmpSerial) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        if p1.replaced || !p1.is_established() {
            return;
        }
        let peer = p1.peer.clone();
        // Rekey only what is still wanted: a peer with an IPsec SA or an active connection.
        let wanted = self.ipsec.values().any(|s| s.peer == peer)
            || self
                .ctx
                .cfg
                .policy
                .connections
                .iter()
                .any(|c| c.peer == peer && c.active);
        if wanted {
            self.ctx
                .log(LogLevel::Info, format!("rekeying phase 1 with {peer}"));
            self.start_phase1(&peer, Vec::new());
        }
    }

    pub(super) fn p1_expire(&mut self, serial: IsakmpSerial) {
        if self.phase1.get(&serial).is_some_and(|p| p.is_established()) {
            self.delete_phase1(serial, true, "lifetime expired");
        }
    }

    /// Remove an ISAKMP SA, telling the peer when `notify`.
    pub(super) fn delete_phase1(&mut self, serial: IsakmpSerial, notify: bool, reason: &str) {
        if notify && !self.ctx.cfg.passive {
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
            self.exchange_ended(&p1);
            self.by_cookies.remove(&(p1.icookie, p1.rcookie));
            self.quick.retain(|(s, _), _| *s != serial);
            self.ctx.log(
                LogLevel::Info,
                format!(
                    "phase 1 with {} ({}, cookies {}) deleted: {reason}",
                    p1.peer,
                    p1.remote,
                    cookies(&p1)
                ),
            );
            self.ctx.event(Event::Phase1Down {
                peer: p1.peer,
                icookie: p1.icookie,
                rcookie: p1.rcookie,
                reason: reason.to_string(),
            });
        }
    }

    /// A KE must be exactly as long as the negotiated group's public values and a valid
    /// one (1 < y < p-1, or a point on the curve): anything else is refused by name before
    /// it costs a key generation; true when refused. (The derive checks it again.)
    pub(super) fn ke_refused(&mut self, serial: IsakmpSerial, ke: &[u8]) -> bool {
        let Some((group, remote)) = self
            .phase1
            .get(&serial)
            .and_then(|p| Some((p.chosen.as_ref()?.transform.group, p.remote)))
        else {
            return false;
        };
        if ke.len() != group.public_len() {
            self.ctx.log(
                LogLevel::Notice,
                format!(
                    "KE of {} bytes from {remote} for {} (whose public values are {} bytes): message dropped",
                    ke.len(),
                    group.name(),
                    group.public_len()
                ),
            );
            return true;
        }
        match crate::crypto::dh_public_check(group, ke) {
            Ok(()) => false,
            Err(e) => {
                self.ctx.log(
                    LogLevel::Notice,
                    format!(
                        "KE from {remote} for {} refused ({e}): message dropped",
                        group.name()
                    ),
                );
                true
            }
        }
    }

    /// A phase-1 record goes: a responder exchange that had not authenticated gives its
    /// room back, and its timeout is cancelled.
    fn exchange_ended(&mut self, p1: &Phase1) {
        if let Some(from) = p1.half_open_from {
            self.admission.release(p1.serial, from);
        }
        if let Some(key) = p1.timeout_timer {
            self.ctx.timers.cancel(key);
        }
    }

    /// Busy: a half-open exchange whose peer never answered our first message gives its
    /// place to a new one. It goes silently (nothing is sent to an address that has
    /// proven nothing); its timeout goes with it, and a helper answer still due finds
    /// nothing.
    fn drop_unproven(&mut self, serial: IsakmpSerial) {
        if let Some(p1) = self.phase1.remove(&serial) {
            self.exchange_ended(&p1);
            self.by_cookies.remove(&(p1.icookie, p1.rcookie));
            self.ctx.debug(format!(
                "half-open phase 1 with {} ({}, cookies {}) dropped for a newer first message",
                p1.peer,
                p1.remote,
                cookies(&p1)
            ));
        }
    }

    /// What admission control holds and has refused.
    pub fn admission(&self) -> super::AdmissionCounters {
        self.admission.counters()
    }

    /// RFC 2409 5: a nonce is 8 to 256 bytes; true when refused (see `Context`).
    pub(super) fn nonce_refused(&mut self, serial: IsakmpSerial, nonce: &[u8]) -> bool {
        let remote = self.phase1.get(&serial).map(|p| p.remote);
        self.ctx.nonce_refused(remote, nonce)
    }

    /// Whether the peer section of ISAKMP SA `serial` allows NAT traversal.
    pub(super) fn p1_nat_t(&self, serial: IsakmpSerial) -> bool {
        let Some(p1) = self.phase1.get(&serial) else {
            return false;
        };
        self.ctx
            .cfg
            .policy
            .peers
            .iter()
            .any(|p| p.name == p1.peer && p.nat_t)
    }

    /// The newest established ISAKMP SA with `peer`.
    pub(super) fn established_p1(&self, peer: &str) -> Option<IsakmpSerial> {
        self.phase1
            .values()
            .filter(|p| p.peer == peer && p.is_established())
            .max_by_key(|p| (p.established().map(|e| e.at), p.serial))
            .map(|p| p.serial)
    }

    /// A phase-1 exchange with `peer` still being negotiated.
    pub(super) fn pending_p1(&self, peer: &str) -> Option<IsakmpSerial> {
        self.phase1
            .values()
            .filter(|p| p.peer == peer && !p.is_established())
            .map(|p| p.serial)
            .max()
    }

    /// Keys of an established ISAKMP SA for Quick Mode and Informational: prf, SKEYID_a,
    /// SKEYID_d, the cipher and key, and the phase-1 IV.
    pub(super) fn p1_keys(&self, serial: IsakmpSerial) -> Option<P1Keys> {
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

/// The first KE payload of a message (phase 1 or Quick Mode).
pub(super) fn find_ke(p: &[Payload]) -> Option<&[u8]> {
    p.iter().find_map(|x| match x {
        Payload::Ke(k) => Some(k.as_slice()),
        _ => None,
    })
}

/// The first nonce payload of a message (phase 1 or Quick Mode).
pub(super) fn find_nonce(p: &[Payload]) -> Option<&[u8]> {
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

/// A first message that would make us keep too much, or match too long, is dropped with one
/// short line (see `MAX_FIRST_MESSAGE`, `MAX_OFFER_TRANSFORMS`); true when dropped.
fn first_message_too_big(
    ctx: &mut super::context::Context,
    remote: SocketAddr,
    sa: &SaPayload,
    len: usize,
) -> bool {
    let transforms: usize = sa.proposals.iter().map(|p| p.transforms.len()).sum();
    if transforms <= MAX_OFFER_TRANSFORMS && len <= MAX_FIRST_MESSAGE {
        return false;
    }
    ctx.log(
        LogLevel::Notice,
        format!(
            "first phase 1 message from {remote}: {transforms} transforms in {len} bytes is over the limit of {MAX_OFFER_TRANSFORMS} transforms and {MAX_FIRST_MESSAGE} bytes: dropped"
        ),
    );
    true
}
