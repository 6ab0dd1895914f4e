//! Quick Mode (RFC 2409 5.5): IPsec SA negotiation under an ISAKMP SA, with PFS, several
//! proposals, client IDs, NAT-OA, the responder-lifetime notify, and KEYMAT for the kernel.
//! Here: the exchange's record, its start, SPIs and PFS, sending and retransmission, and the
//! routing of a message to its side; each side and the kernel's part have modules of their own.

mod initiator;
mod install;
mod responder;

use super::pending::{CryptoPending, KernelAnswer, KernelPending, QmShared};
use super::phase1::P1Keys;
use super::phase1::{find_ke, find_nonce};
use super::timers::Timer;
use super::types::{Direction, KernelRequest, SaSpec, Selector};
use super::{Engine, LogLevel};
use crate::codec::{
    flags, Header, IdPayload, IdType, Identity, NotifyPayload, NotifyType, Payload, ProtocolId,
    SaPayload, DOI_IPSEC,
};
use crate::codec::{ipsec_attr, Attribute};
use crate::crypto::{
    keymat, phase2_iv, qm_hash1, qm_hash2, qm_hash3, CryptoRequest, CryptoResult, DhPrivate, Group,
    Secret,
};
use crate::engine::protect::{after_first, chain, open, parse_all, sealed};
use crate::engine::IsakmpSerial;
use crate::policy::ConnectionName;
use crate::policy::{self, ChosenPhase2, EncapMode, EspCipher, IntegAlg, IpsecProtocol, Lifetime};
use std::net::{IpAddr, SocketAddr};

const NONCE_LEN: usize = 32;

/// Our inbound SPIs, one per protocol, as the kernel hands them out.
pub(super) type Spis = Vec<(IpsecProtocol, u32)>;

/// What a Quick Mode exchange has settled with the peer: the proposal chosen, our SPIs, both
/// nonces and the PFS g^xy. It is everything the KEYMAT of the exchange's SAs needs.
pub(super) struct Agreement {
    pub chosen: ChosenPhase2,
    pub spis: Spis,
    pub ni_b: Vec<u8>,
    pub nr_b: Vec<u8>,
    pub gqm: Option<Secret>,
}

/// What a responder took from an acceptable message 1, while our SPIs and PFS values are
/// prepared for message 2.
pub(super) struct Accepted {
    /// The initiator's offer, which the reply SA answers proposal by proposal.
    pub offer: SaPayload,
    pub chosen: ChosenPhase2,
    pub ni_b: Vec<u8>,
    /// The initiator's PFS public value (empty without PFS), and ours once generated.
    pub ke_peer: Vec<u8>,
    pub ke_own: Vec<u8>,
    pub gqm: Option<Secret>,
    pub spis: Spis,
    pub spis_wanted: usize,
    /// Whether to tell the initiator the lifetime we hold it to (RESPONDER-LIFETIME).
    pub responder_lifetime: bool,
}

/// Where a Quick Mode exchange stands; each step holds what it still needs and nothing
/// else, so an initiator's PFS private value, say, exists only until message 2 is checked.
pub(super) enum QmStage {
    /// Initiator before message 1: our SPIs come from the kernel, then the PFS key pair
    /// from a helper.
    IPreparing {
        group: Option<Group>,
        spis: Spis,
        spis_wanted: usize,
        dh: Option<DhPrivate>,
        ke_own: Vec<u8>,
    },
    /// Initiator: message 1 is out; its nonce and PFS private value wait for message 2.
    IOffered {
        spis: Spis,
        ni_b: Vec<u8>,
        dh: Option<DhPrivate>,
    },
    /// Initiator: message 2 was good; the PFS g^xy is being computed.
    IComputing(Box<Agreement>),
    /// Initiator: message 3 waits for our `inbound_pending` inbound SAs, then goes. The
    /// exchange is kept to answer a repeated message 2 and to install its outbound SAs.
    IDone {
        agreement: Box<Agreement>,
        inbound_pending: usize,
    },
    /// Responder: message 1 accepted; SPIs and PFS values on their way.
    RPreparing(Box<Accepted>),
    /// Responder: message 2 is out, and sent again until message 3 comes.
    RAnswered(Box<Agreement>),
    /// Responder: message 3 came; kept to recognise a repeated one.
    RDone(Box<Agreement>),
}

impl QmStage {
    pub fn name(&self) -> &'static str {
        match self {
            QmStage::IPreparing { .. } => "QUICK_I0 (preparing)",
            QmStage::IOffered { .. } => "QUICK_I1 (sent)",
            QmStage::IComputing(_) => "QUICK_I2 (computing)",
            QmStage::IDone { .. } => "QUICK_I2 (done)",
            QmStage::RPreparing(_) => "QUICK_R0 (preparing)",
            QmStage::RAnswered(_) => "QUICK_R1 (sent)",
            QmStage::RDone(_) => "QUICK_R2 (done)",
        }
    }

    pub fn initiator(&self) -> bool {
        matches!(
            self,
            QmStage::IPreparing { .. }
                | QmStage::IOffered { .. }
                | QmStage::IComputing(_)
                | QmStage::IDone { .. }
        )
    }

    /// Our side is done: what is left is answering a repeated last message.
    pub fn done(&self) -> bool {
        matches!(self, QmStage::IDone { .. } | QmStage::RDone(_))
    }

    /// The settled agreement, once there is one.
    pub fn agreement(&self) -> Option<&Agreement> {
        match self {
            QmStage::IComputing(a)
            | QmStage::IDone { agreement: a, .. }
            | QmStage::RAnswered(a)
            | QmStage::RDone(a) => Some(a),
            _ => None,
        }
    }

    /// The inbound SPIs reserved so far.
    pub fn spis(&self) -> &[(IpsecProtocol, u32)] {
        match self {
            QmStage::IPreparing { spis, .. } | QmStage::IOffered { spis, .. } => spis,
            QmStage::RPreparing(a) => &a.spis,
            other => other.agreement().map_or(&[], |a| &a.spis),
        }
    }
}

/// One Quick Mode exchange.
pub(super) struct QuickMode {
    pub msgid: u32,
    pub connection: ConnectionName,
    /// IDci and IDcr as sent on the wire (initiator's client first); none when both
    /// clients are the gateways.
    pub idci: Option<IdPayload>,
    pub idcr: Option<IdPayload>,
    pub stage: QmStage,
    /// The CBC IV: the last ciphertext block of the exchange's last message.
    pub iv: Vec<u8>,
    /// The last message we sent, for retransmission and for answering duplicates.
    pub last_sent: Option<(SocketAddr, SocketAddr, Vec<u8>)>,
    pub step: u32,
    pub tries: u32,
    /// SHA-1 of the last message accepted from the peer, to recognise duplicates.
    pub last_received: Vec<u8>,
}

impl QuickMode {
    /// A new exchange of `connection` at its first step.
    fn new(msgid: u32, connection: ConnectionName, ids: IdPair, stage: QmStage) -> Self {
        QuickMode {
            msgid,
            connection,
            idci: ids.0,
            idcr: ids.1,
            stage,
            iv: Vec::new(),
            last_sent: None,
            step: 0,
            tries: 0,
            last_received: Vec::new(),
        }
    }

    pub fn initiator(&self) -> bool {
        self.stage.initiator()
    }
}

/// IDci and IDcr, or neither.
type IdPair = (Option<IdPayload>, Option<IdPayload>);

/// Key lengths of a protocol's transform: (encryption incl. salt, integrity).
fn key_lengths(cipher: Option<EspCipher>, integ: Option<IntegAlg>) -> (usize, usize) {
    let enc = match cipher {
        None | Some(EspCipher::Null) => 0,
        Some(EspCipher::TripleDes) => 24,
        Some(EspCipher::AesCbc { key_bits }) => usize::from(key_bits) / 8,
        Some(EspCipher::AesGcm16 { key_bits }) => usize::from(key_bits) / 8 + 4,
    };
    let auth = match integ {
        None => 0,
        Some(IntegAlg::HmacMd5) => 16,
        Some(IntegAlg::HmacSha1) => 20,
        Some(IntegAlg::HmacSha256) => 32,
        Some(IntegAlg::HmacSha384) => 48,
        Some(IntegAlg::HmacSha512) => 64,
    };
    (enc, auth)
}

fn protocol_id(p: IpsecProtocol) -> ProtocolId {
    match p {
        IpsecProtocol::Esp => ProtocolId::IPSEC_ESP,
        IpsecProtocol::Ah => ProtocolId::IPSEC_AH,
    }
}

/// The traffic selector an ID payload names; `None` for identities that name no addresses.
fn host_id(addr: IpAddr) -> IdPayload {
    let identity = match addr {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    };
    IdPayload {
        protocol: 0,
        port: 0,
        identity,
    }
}

impl Engine {
    /// Start Quick Mode for `conn_name` under ISAKMP SA `serial`.
    pub(super) fn start_qm(&mut self, serial: IsakmpSerial, conn_name: &str) {
        let Some(conn) = self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .find(|c| c.name == conn_name)
            .cloned()
        else {
            return self.ctx.log(
                LogLevel::Error,
                format!("no connection named {conn_name:?}"),
            );
        };
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let (local, remote) = (p1.local.ip(), p1.remote.ip());
        let mut msgid = 0;
        while msgid == 0 || self.quick.contains_key(&(serial, msgid)) {
            msgid = self.ctx.rng.next_u32();
        }
        let mut protocols: Vec<IpsecProtocol> = Vec::new();
        for s in &conn.suites {
            for p in &s.protocols {
                if !protocols.contains(&p.protocol) {
                    protocols.push(p.protocol);
                }
            }
        }
        if protocols.is_empty() {
            return self.ctx.log(
                LogLevel::Error,
                format!("connection {conn_name}: no suites configured"),
            );
        }
        // Both IDs are sent when either is configured; a missing one means our or the
        // peer's own address.
        let (idci, idcr) = if conn.local_id.is_some() || conn.remote_id.is_some() {
            (
                Some(conn.local_id.clone().unwrap_or_else(|| host_id(local))),
                Some(conn.remote_id.clone().unwrap_or_else(|| host_id(remote))),
            )
        } else {
            (None, None)
        };
        // One KE payload serves every proposal, so the first PFS group found is the one.
        let group = conn
            .suites
            .iter()
            .flat_map(|s| &s.protocols)
            .flat_map(|p| &p.transforms)
            .find_map(|t| t.pfs_group);
        self.ctx.log(
            LogLevel::Info,
            format!("starting Quick Mode for {conn_name} with {}", conn.peer),
        );
        let stage = QmStage::IPreparing {
            group,
            spis: Vec::new(),
            spis_wanted: protocols.len(),
            dh: None,
            ke_own: Vec::new(),
        };
        let qm = QuickMode::new(msgid, conn.name.clone(), (idci, idcr), stage);
        self.qm_begin(serial, qm, protocols, local, remote);
    }

    /// Record a new Quick Mode exchange, arm its timeout, and ask the kernel for one inbound
    /// SPI per protocol; the exchange goes on in `qm_spi` once all have come.
    fn qm_begin(
        &mut self,
        serial: IsakmpSerial,
        qm: QuickMode,
        protocols: Vec<IpsecProtocol>,
        local: IpAddr,
        remote: IpAddr,
    ) {
        let msgid = qm.msgid;
        self.quick.insert((serial, msgid), qm);
        self.ctx.timers.add(
            self.ctx.now + self.ctx.cfg.timers.exchange_max,
            Timer::QmTimeout { serial, msgid },
        );
        for protocol in protocols {
            self.ctx.kernel_then(
                KernelRequest::AllocSpi {
                    protocol,
                    src: remote,
                    dst: local,
                },
                KernelPending::QmSpi {
                    serial,
                    msgid,
                    protocol,
                },
            );
        }
    }

    pub(super) fn qm_spi(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        protocol: IpsecProtocol,
        answer: KernelAnswer,
    ) {
        let spi = match answer {
            KernelAnswer::SpiAllocated(s) => s,
            KernelAnswer::Failed(reason) => {
                return self.qm_fail(serial, msgid, format!("SPI allocation failed: {reason}"))
            }
            KernelAnswer::Installed => {
                return self.qm_fail(
                    serial,
                    msgid,
                    "SPI allocation failed: the kernel answered without an SPI".into(),
                )
            }
        };
        let Some(qm) = self.quick.get_mut(&(serial, msgid)) else {
            return;
        };
        match &mut qm.stage {
            QmStage::IPreparing {
                spis,
                spis_wanted,
                group,
                ..
            } => {
                spis.push((protocol, spi));
                if spis.len() < *spis_wanted {
                    return;
                }
                match *group {
                    Some(group) => self.crypto(
                        CryptoRequest::DhKeygen { group },
                        CryptoPending::QmI1Keygen { serial, msgid },
                    ),
                    None => self.qm_i1_send(serial, msgid),
                }
            }
            QmStage::RPreparing(a) => {
                a.spis.push((protocol, spi));
                if a.spis.len() == a.spis_wanted {
                    self.qm_r1_prepare(serial, msgid);
                }
            }
            // An answer for a step the exchange has left: the SPI is not ours to keep.
            _ => {}
        }
    }

    /// Move exchange (`serial`, `msgid`) to its next step: `next` takes the step by value
    /// and gives the next one, or gives it back (`Err`) if the exchange is not where the
    /// caller expects it. Whether it moved.
    fn qm_advance(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        next: impl FnOnce(QmStage) -> Result<QmStage, QmStage>,
    ) -> bool {
        let Some(mut qm) = self.quick.remove(&(serial, msgid)) else {
            return false;
        };
        let (stage, moved) = match next(qm.stage) {
            Ok(s) => (s, true),
            Err(s) => (s, false),
        };
        qm.stage = stage;
        self.quick.insert((serial, msgid), qm);
        moved
    }

    /// The PFS g^xy of a Quick Mode exchange, from a helper; `then` continues the exchange.
    fn qm_pfs_derive(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        group: Group,
        private: DhPrivate,
        peer_public: Vec<u8>,
        then: QmShared,
    ) {
        self.crypto(
            CryptoRequest::DhDerive {
                group,
                private,
                peer_public,
            },
            CryptoPending::QmShared {
                serial,
                msgid,
                then,
            },
        );
    }

    /// The PFS g^xy came.
    pub(super) fn qm_shared(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        r: CryptoResult,
        then: QmShared,
    ) {
        match r {
            CryptoResult::DhShared(s) => {
                match self.quick.get_mut(&(serial, msgid)).map(|q| &mut q.stage) {
                    Some(QmStage::IComputing(a)) => a.gqm = Some(s),
                    Some(QmStage::RPreparing(a)) => a.gqm = Some(s),
                    _ => return,
                }
                match then {
                    QmShared::R2Send => self.qm_r1_send(serial, msgid),
                    QmShared::I3Send => self.qm_i3_send(serial, msgid),
                }
            }
            other => self.qm_fail(
                serial,
                msgid,
                format!("PFS Diffie-Hellman failed: {}", super::why(&other)),
            ),
        }
    }

    /// UDP encapsulation to announce in the SA (RFC 3947 or draft values), if NAT is in the path.
    fn udp_encap(&self, serial: IsakmpSerial) -> Option<bool> {
        let p1 = self.phase1.get(&serial)?;
        if p1.nat_local || p1.nat_remote {
            p1.natt.map(|v| v == super::NatTVersion::Rfc3947)
        } else {
            None
        }
    }

    fn qm_send(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        keys: &P1Keys,
        payloads: Vec<Payload>,
        retransmit: bool,
    ) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let header = p1.header(
            crate::codec::ExchangeType::QUICK_MODE,
            msgid,
            flags::ENCRYPTION,
        );
        let (from, to) = (p1.local, p1.remote);
        let Some(qm) = self.quick.get_mut(&(serial, msgid)) else {
            return;
        };
        match sealed(header, &payloads, keys.encr, &keys.enc_key, &qm.iv) {
            Ok((bytes, iv, view)) => {
                qm.iv = iv;
                if self.ctx.capture_on {
                    self.ctx.out.push_back(super::Output::Packet {
                        from,
                        to,
                        bytes: view,
                    });
                }
                let Some(qm) = self.quick.get_mut(&(serial, msgid)) else {
                    return;
                };
                qm.last_sent = Some((from, to, bytes.clone()));
                qm.step += 1;
                qm.tries = 0;
                let step = qm.step;
                self.ctx.transmit(from, to, bytes);
                if retransmit {
                    self.ctx.timers.add(
                        self.ctx.now + self.ctx.cfg.timers.retransmit_base,
                        Timer::QmRetransmit {
                            serial,
                            msgid,
                            step,
                        },
                    );
                }
            }
            Err(e) => self.qm_fail(serial, msgid, e.to_string()),
        }
    }

    pub(super) fn qm_retransmit(&mut self, serial: IsakmpSerial, msgid: u32, step: u32) {
        let retransmits = self.ctx.cfg.timers.retransmits;
        let base = self.ctx.cfg.timers.retransmit_base;
        let Some(qm) = self.quick.get_mut(&(serial, msgid)) else {
            return;
        };
        if qm.step != step || !matches!(qm.stage, QmStage::IOffered { .. } | QmStage::RAnswered(_))
        {
            return;
        }
        if qm.tries >= retransmits {
            return self.qm_fail(
                serial,
                msgid,
                format!("no answer after {retransmits} retransmissions"),
            );
        }
        qm.tries += 1;
        let tries = qm.tries;
        if let Some((from, to, bytes)) = qm.last_sent.clone() {
            let bytes = self.ctx.with_marker(from, bytes);
            self.ctx
                .out
                .push_back(super::Output::Transmit(super::Transmit { from, to, bytes }));
        }
        self.ctx.timers.add(
            self.ctx.now + base.saturating_mul(1u32 << tries.min(16)),
            Timer::QmRetransmit {
                serial,
                msgid,
                step,
            },
        );
    }

    pub(super) fn qm_timeout(&mut self, serial: IsakmpSerial, msgid: u32) {
        let Some(qm) = self.quick.get(&(serial, msgid)) else {
            return;
        };
        if qm.stage.done() {
            self.quick.remove(&(serial, msgid));
        } else {
            self.qm_fail(serial, msgid, "exchange timed out".into());
        }
    }

    pub(super) fn qm_fail(&mut self, serial: IsakmpSerial, msgid: u32, reason: String) {
        if let Some(qm) = self.quick.remove(&(serial, msgid)) {
            self.ctx.log(
                LogLevel::Warning,
                format!("Quick Mode for {} failed: {reason}", qm.connection),
            );
            // SPIs we reserved are released.
            let p1 = self
                .phase1
                .get(&serial)
                .map(|p| (p.local.ip(), p.remote.ip()));
            if let Some((local, remote)) = p1 {
                for &(protocol, spi) in qm.stage.spis() {
                    self.ctx.kernel(KernelRequest::DeleteSa {
                        protocol,
                        spi,
                        src: remote,
                        dst: local,
                    });
                }
            }
        }
    }

    /// A Quick Mode message arrived.
    pub(super) fn quick_datagram(
        &mut self,
        _local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        let key = (header.initiator_cookie, header.responder_cookie);
        let Some(&serial) = self.by_cookies.get(&key) else {
            return self
                .ctx
                .debug(format!("dropping Quick Mode from {remote}: no ISAKMP SA"));
        };
        if header.flags & flags::ENCRYPTION == 0 || header.message_id == 0 {
            return self.ctx.log(
                LogLevel::Notice,
                format!("dropping unencrypted or ID-less Quick Mode from {remote}"),
            );
        }
        let Some(keys) = self.p1_keys(serial) else {
            return self.ctx.debug(format!(
                "dropping Quick Mode from {remote}: ISAKMP SA not established"
            ));
        };
        if self
            .phase1
            .get(&serial)
            .is_some_and(|p| !p.is_established())
        {
            return self.ctx.debug(format!(
                "dropping Quick Mode from {remote}: ISAKMP SA not established"
            ));
        }
        let msgid = header.message_id;
        let digest = crate::crypto::hash(crate::crypto::HashAlg::Sha1, &[bytes]);
        if let Some(qm) = self.quick.get(&(serial, msgid)) {
            if qm.last_received == digest {
                if let Some((from, to, b)) = qm.last_sent.clone() {
                    self.ctx
                        .debug("duplicate Quick Mode message: resending our last message".into());
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
            let iv = qm.iv.clone();
            return match qm.stage {
                QmStage::IOffered { .. } => {
                    self.qm_i_r1(serial, msgid, header, bytes, &keys, iv, digest)
                }
                QmStage::RAnswered(_) => {
                    self.qm_r_i2(serial, msgid, header, bytes, &keys, iv, digest)
                }
                ref s => self
                    .ctx
                    .debug(format!("ignoring Quick Mode message in state {}", s.name())),
            };
        }
        if self
            .phase1
            .get(&serial)
            .is_some_and(|p| p.seen_msgids.contains(&msgid))
        {
            return self
                .ctx
                .debug(format!("dropping replayed Quick Mode message {msgid:08x}"));
        }
        let iv = phase2_iv(keys.prf, keys.encr.block_len(), &keys.iv, msgid);
        self.qm_r_i1(serial, msgid, header, bytes, &keys, iv, digest);
    }

    /// Decrypt and check the hash of a Quick Mode message; returns payloads and next IV.
    #[allow(clippy::too_many_arguments)]
    fn qm_open(
        &mut self,
        header: &Header,
        bytes: &[u8],
        keys: &P1Keys,
        iv: &[u8],
        expected_hash: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Option<(Vec<Payload>, Vec<u8>)> {
        let (pt, next_iv) = match open(bytes, keys.encr, &keys.enc_key, iv) {
            Ok(v) => {
                let (local, remote) = self.p1_addresses(header);
                self.ctx
                    .capture(remote, local, crate::engine::protect::view(bytes, &v.0));
                v
            }
            Err(e) => {
                self.ctx.log(
                    LogLevel::Notice,
                    format!("cannot decrypt Quick Mode message: {e}"),
                );
                return None;
            }
        };
        let (raws, payloads) = match parse_all(header.next_payload, &pt, true) {
            Ok(v) => v,
            Err(e) => {
                self.ctx.log(
                    LogLevel::Notice,
                    format!("malformed Quick Mode message (or wrong key): {e}"),
                );
                return None;
            }
        };
        let Some(Payload::Hash(got)) = payloads.first() else {
            self.ctx.log(
                LogLevel::Notice,
                "Quick Mode message does not start with HASH".into(),
            );
            return None;
        };
        let want = expected_hash(after_first(&pt, &raws));
        if !crate::engine::protect::ct_eq(got, &want) {
            self.ctx.log(
                LogLevel::Warning,
                "Quick Mode message failed its HASH check: dropped".into(),
            );
            return None;
        }
        Some((payloads, next_iv))
    }
}

/// How long a rekeying initiator keeps sending on the old SA after its third Quick Mode
/// message (see `qm_i3_send`): ample for the peer to install its new inbound SA, far
/// below any rekey margin.
pub(super) const OUTBOUND_SWITCH_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
/// Our and the peer's selectors of a Quick Mode exchange.
pub(super) fn qm_selectors(qm: &QuickMode, local: IpAddr, remote: IpAddr) -> (Selector, Selector) {
    let (ours, theirs) = if qm.initiator() {
        (&qm.idci, &qm.idcr)
    } else {
        (&qm.idcr, &qm.idci)
    };
    (
        ours.as_ref()
            .and_then(Selector::from_id)
            .unwrap_or_else(|| Selector::host(local)),
        theirs
            .as_ref()
            .and_then(Selector::from_id)
            .unwrap_or_else(|| Selector::host(remote)),
    )
}

fn nat_oa(local: IpAddr, remote: IpAddr, draft: bool) -> Vec<Payload> {
    [local, remote]
        .into_iter()
        .map(|address| Payload::NatOa {
            id_type: if address.is_ipv4() {
                IdType::IPV4_ADDR
            } else {
                IdType::IPV6_ADDR
            },
            address,
            draft,
        })
        .collect()
}

/// An ID as an operator reads it: `192.0.2.0/24 proto 6 port 80`.
pub(super) fn describe_id(id: &IdPayload) -> String {
    let base = match &id.identity {
        Identity::Ipv4(a) => a.to_string(),
        Identity::Ipv6(a) => a.to_string(),
        Identity::Ipv4Subnet(a, m) => format!("{a}/{}", u32::from(*m).leading_ones()),
        Identity::Ipv6Subnet(a, m) => format!("{a}/{}", u128::from(*m).leading_ones()),
        Identity::Ipv4Range(a, b) => format!("{a}-{b}"),
        Identity::Ipv6Range(a, b) => format!("{a}-{b}"),
        Identity::Fqdn(n) | Identity::UserFqdn(n) => String::from_utf8_lossy(n).into_owned(),
        other => crate::x509::describe_identity(other),
    };
    match (id.protocol, id.port) {
        (0, 0) => base,
        (p, 0) => format!("{base} proto {p}"),
        (p, port) => format!("{base} proto {p} port {port}"),
    }
}

/// The body of a RESPONDER-LIFETIME notify: SA life type and duration attributes
/// (RFC 2407 4.6.3.1), seconds and, if limited, kilobytes.
fn lifetime_attributes(l: &Lifetime) -> Vec<u8> {
    let mut attrs = vec![
        Attribute::basic(ipsec_attr::SA_LIFE_TYPE, ipsec_attr::LIFE_SECONDS),
        Attribute::number(ipsec_attr::SA_LIFE_DURATION, l.seconds),
    ];
    if let Some(kb) = l.kilobytes {
        attrs.push(Attribute::basic(
            ipsec_attr::SA_LIFE_TYPE,
            ipsec_attr::LIFE_KILOBYTES,
        ));
        attrs.push(Attribute::number(ipsec_attr::SA_LIFE_DURATION, kb));
    }
    let mut out = Vec::new();
    // Two or four attributes of fixed size cannot overflow a length field.
    if Attribute::emit_list(&attrs, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Lower `l` to what a RESPONDER-LIFETIME notify says (RFC 2407 4.6.3.1). A duration of 0
/// would install an SA without a limit in XFRM, so it is not taken; what was not taken is
/// returned for the log.
fn apply_responder_lifetime(l: &mut Lifetime, data: &[u8]) -> Vec<&'static str> {
    let mut refused = Vec::new();
    let Ok(attrs) = Attribute::parse_list(data) else {
        return refused;
    };
    let mut kind = None;
    for a in attrs {
        match a.kind {
            ipsec_attr::SA_LIFE_TYPE => kind = a.as_u64(),
            ipsec_attr::SA_LIFE_DURATION => match (kind, a.as_u64()) {
                (Some(k), Some(0)) if k == u64::from(ipsec_attr::LIFE_SECONDS) => {
                    refused.push("a lifetime of 0 seconds")
                }
                (Some(k), Some(0)) if k == u64::from(ipsec_attr::LIFE_KILOBYTES) => {
                    refused.push("a lifetime of 0 kilobytes")
                }
                (Some(k), Some(v)) if k == u64::from(ipsec_attr::LIFE_SECONDS) => {
                    l.seconds = l.seconds.min(v)
                }
                (Some(k), Some(v)) if k == u64::from(ipsec_attr::LIFE_KILOBYTES) => {
                    l.kilobytes = Some(l.kilobytes.map_or(v, |x| x.min(v)))
                }
                _ => {}
            },
            _ => {}
        }
    }
    refused
}

/// The gateways of a phase 1 SA, as far as Quick Mode IDs are concerned.
pub struct Gateways {
    pub local: std::net::IpAddr,
    pub remote: std::net::IpAddr,
    /// NAT detected on our side (the peer sees another address for us), on the peer's.
    pub nat_local: bool,
    pub nat_remote: bool,
}

/// The one address a client ID names, if it names a single host with any protocol and port.
fn single_host(id: &IdPayload) -> Option<std::net::IpAddr> {
    use crate::codec::Identity;
    if id.protocol != 0 || id.port != 0 {
        return None;
    }
    match id.identity {
        Identity::Ipv4(a) => Some(a.into()),
        Identity::Ipv6(a) => Some(a.into()),
        Identity::Ipv4Subnet(a, m) if m == std::net::Ipv4Addr::BROADCAST => Some(a.into()),
        Identity::Ipv6Subnet(a, m) if m == std::net::Ipv6Addr::from(u128::MAX) => Some(a.into()),
        _ => None,
    }
}

/// A Quick Mode reply's IDci and IDcr when our offer had none: acceptable when they name
/// the two gateways (RFC 2409 5.5: no IDs means the ISAKMP peers' addresses). Behind a NAT
/// the peer knows that side by another address, so there any single host is taken.
pub fn gateway_ids(idci: &IdPayload, idcr: &IdPayload, g: &Gateways) -> bool {
    match (single_host(idci), single_host(idcr)) {
        (Some(ci), Some(cr)) => (ci == g.local || g.nat_local) && (cr == g.remote || g.nat_remote),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(kind: u16, value: u64) -> Vec<u8> {
        let attrs = [
            Attribute::basic(ipsec_attr::SA_LIFE_TYPE, kind),
            Attribute::number(ipsec_attr::SA_LIFE_DURATION, value),
        ];
        let mut data = Vec::new();
        Attribute::emit_list(&attrs, &mut data).expect("emit");
        data
    }

    #[test]
    fn a_responder_lifetime_lowers_ours_but_zero_is_not_taken() {
        let mut l = Lifetime {
            seconds: 3600,
            kilobytes: Some(4096),
        };
        assert!(
            apply_responder_lifetime(&mut l, &notify(ipsec_attr::LIFE_SECONDS, 600)).is_empty()
        );
        assert_eq!(l.seconds, 600);
        let refused = apply_responder_lifetime(&mut l, &notify(ipsec_attr::LIFE_SECONDS, 0));
        assert_eq!(refused, vec!["a lifetime of 0 seconds"]);
        assert_eq!(l.seconds, 600);
        let refused = apply_responder_lifetime(&mut l, &notify(ipsec_attr::LIFE_KILOBYTES, 0));
        assert_eq!(refused, vec!["a lifetime of 0 kilobytes"]);
        assert_eq!(l.kilobytes, Some(4096));
    }
}
