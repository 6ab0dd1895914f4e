//! Typed policy built from the configuration database: the peers (phase 1), the connections
//! (phase 2), their proposals, and the matching of a peer's offer against them.
//!
//! INTERFACE CONTRACT: the types here are what the engine consumes. The policy implementation
//! (building them from `conf::Conf`, and matching offers) lives in submodules.

use crate::codec::{IdPayload, Identity};
use crate::crypto::{EncrAlg, Group, HashAlg};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Exchange mode of phase 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase1Mode {
    Main,
    Aggressive,
}

/// Phase 1 authentication method (RFC 2409 Appendix A).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMethod {
    PreShared,
    RsaSig,
}

/// A lifetime limit: seconds and, optionally, kilobytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    pub seconds: u64,
    pub kilobytes: Option<u64>,
}

/// The `X,Y:Z` form of isakmpd.conf lifetimes: offer `X`, accept a peer's offer in `[Y, Z]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifetimeRange {
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

/// One ISAKMP transform we offer or accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase1Transform {
    /// Section name, e.g. `AES-256-SHA2-256-GRP14`; used in logs.
    pub name: String,
    pub encr: EncrAlg,
    pub hash: HashAlg,
    /// PRF for SKEYID; IKEv1 uses the HMAC of `hash` unless a PRF attribute is negotiated.
    pub group: Group,
    pub auth: AuthMethod,
    pub lifetime: LifetimeRange,
}

/// How this peer proves who it is, and how we check the peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Credentials {
    /// The name under which the helpers hold the pre-shared key (the peer section's name).
    PreShared { secret: String },
    /// Our private key's name in the helpers' store; the peer's raw RSA public key (DER,
    /// SubjectPublicKeyInfo) when configured as a raw key. Without one the peer proves its
    /// key with an X.509 certificate checked against [`Policy::x509`].
    RsaSig {
        secret: String,
        peer_public_key: Option<Vec<u8>>,
    },
}

/// A configured phase-1 peer (`[Phase 1]` entry and its section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub name: PeerName,
    /// Peer's address; port 500 unless configured.
    pub address: SocketAddr,
    /// Our address for this peer, if configured (`Local-address`).
    pub local_address: Option<SocketAddr>,
    pub mode: Phase1Mode,
    pub transforms: Vec<Phase1Transform>,
    pub credentials: Credentials,
    /// Our identity (`ID` tag); defaults to our IP address.
    pub local_id: Option<Identity>,
    /// Expected peer identity (`Remote-ID`); if set, a peer claiming another identity fails.
    pub remote_id: Option<Identity>,
    /// DPD: seconds of idleness before R-U-THERE (`DPD-check-interval`), 0 = off.
    pub dpd_interval: u64,
    /// DPD: seconds without an R-U-THERE-ACK before the peer is declared dead
    /// (`DPD-timeout`, else `[General]`); `None`: the engine's default (30 s).
    pub dpd_timeout: Option<u64>,
    /// What to do when the peer is declared dead.
    pub dpd_action: DpdAction,
    /// NAT-T enabled for this peer.
    pub nat_t: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DpdAction {
    Clear,
    Restart,
    Hold,
}

/// IPsec protocol of a phase-2 proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpsecProtocol {
    Esp,
    Ah,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncapMode {
    Tunnel,
    Transport,
}

/// ESP encryption of a phase-2 transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EspCipher {
    TripleDes,
    AesCbc {
        key_bits: u16,
    },
    /// AES-GCM with a 16-byte ICV (RFC 4106); no separate authentication algorithm.
    AesGcm16 {
        key_bits: u16,
    },
    Null,
}

/// Integrity algorithm of ESP or AH (IPsec DOI authentication algorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntegAlg {
    HmacMd5,
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// One IPsec transform we offer or accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecTransform {
    pub name: String,
    /// `None` for AH.
    pub cipher: Option<EspCipher>,
    /// `None` for combined-mode ciphers (GCM).
    pub integ: Option<IntegAlg>,
    pub encap: EncapMode,
    /// PFS group (`GROUP_DESCRIPTION`), `None` = no PFS.
    pub pfs_group: Option<Group>,
    pub lifetime: LifetimeRange,
    pub lifetime_kb: Option<LifetimeRange>,
}

/// One protocol of a suite, with its transforms in preference order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolProposal {
    pub protocol: IpsecProtocol,
    pub transforms: Vec<IpsecTransform>,
}

/// A suite (`Suites=` entry): protocols proposed together (e.g. AH+ESP), in one proposal number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    pub protocols: Vec<ProtocolProposal>,
}

/// A configured phase-2 connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub name: ConnectionName,
    /// The phase-1 peer (`ISAKMP-peer`).
    pub peer: PeerName,
    /// Our traffic selector (`Local-ID`), as sent in IDci/IDcr; `None` = host-to-host.
    pub local_id: Option<IdPayload>,
    pub remote_id: Option<IdPayload>,
    pub suites: Vec<Suite>,
    /// Started at boot and kept up (listed in `[Phase 2] Connections`); otherwise passive/on demand.
    pub active: bool,
    /// `Keying-tries`: how many times the watchdog starts the connection without it
    /// coming up before it stops (pluto's keyingtries); 0: without end.
    #[serde(default)]
    pub keying_tries: u32,
}

/// The chosen phase-1 transform from a peer's offer, with the attribute values agreed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenPhase1 {
    pub proposal_number: u8,
    pub transform_number: u8,
    pub transform: Phase1Transform,
    /// Lifetime agreed (the peer's value when inside our accepted range).
    pub lifetime: Lifetime,
    /// The peer offered more than our maximum: we cut it to our maximum and must tell the
    /// peer with a RESPONDER-LIFETIME notify. (Added by the policy implementation.)
    pub responder_lifetime: bool,
}

/// The chosen phase-2 proposal: one transform per protocol, with the peer's SPIs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenPhase2 {
    pub proposal_number: u8,
    pub protocols: Vec<ChosenProtocol>,
    pub lifetime: Lifetime,
    pub pfs_group: Option<Group>,
    pub encap: EncapMode,
    /// UDP encapsulation asked for in ENCAPSULATION_MODE: `Some(true)` RFC 3947 values (3/4),
    /// `Some(false)` draft values (61443/61444), `None` plain. (Added.)
    pub udp_encap: Option<bool>,
    /// A lifetime was above our maximum and was cut: send RESPONDER-LIFETIME. (Added.)
    pub responder_lifetime: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenProtocol {
    pub protocol: IpsecProtocol,
    pub transform_number: u8,
    pub transform: IpsecTransform,
    /// The SPI in the offer (the sender's inbound SPI).
    pub peer_spi: [u8; 4],
}

/// Why no proposal was chosen: one line per offered proposal naming what did not match,
/// suitable for the log (pluto's lesson: say what each side offered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub ours: Vec<String>,
    pub theirs: Vec<String>,
    pub reasons: Vec<String>,
}

// ---- Additions of the policy implementation (not in the first contract) ----

mod build;
mod matching;
mod names;
mod proposal;
mod section;
mod select;

pub use build::{parse_range, redact_secrets, secrets};
pub(crate) use matching::describe_p1;
pub use matching::{
    accept_phase1_reply, accept_phase2_reply, choose_phase1, choose_phase2, phase1_reply_sa,
    phase2_reply_sa,
};
pub use proposal::{phase1_sa, phase2_sa, spis_needed};
pub use section::{ConnectionName, PeerName};

/// The `[General]` settings the engine uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneralSettings {
    /// `Retransmits` (default 3).
    pub retransmits: u32,
    /// `Exchange-max-time` in seconds (default 120).
    pub exchange_max_time: u64,
    /// `Check-interval` in seconds (default 60): the watchdog of active connections.
    pub check_interval: u64,
    /// `DPD-check-interval` in seconds (default 0 = off); a peer's own tag wins.
    pub dpd_check_interval: u64,
    /// `DPD-timeout` in seconds, if set (the engine's default is 30); a peer's own tag wins.
    pub dpd_timeout: Option<u64>,
    /// `NAT-T-Keepalive` in seconds (default 20).
    pub nat_t_keepalive: u64,
    /// `Listen-on` addresses; empty = every address.
    pub listen_on: Vec<std::net::IpAddr>,
    /// `Max-half-open` (default 8192): responder phase-1 exchanges not yet authenticated,
    /// in all; a first message beyond it is dropped unanswered.
    pub max_half_open: u32,
    /// `Max-half-open-per-address` (default 16): the same, from one source address.
    pub max_half_open_per_address: u32,
    /// `Aggressive-mode-rate` (default 20): Aggressive Mode first messages taken a second.
    pub aggressive_mode_rate: u32,
    /// `Unique-ids` (default yes, pluto's uniqueids): a peer that authenticates with the
    /// identity (a name, not an address) of another established ISAKMP SA of the same peer
    /// section at another address replaces it and its IPsec SAs.
    #[serde(default = "yes")]
    pub unique_ids: bool,
    /// `Fail-closed` (default yes): every connection whose peer address and selectors
    /// are known has its policies in the kernel from the start, so its traffic never
    /// leaves in the clear (before the first SA, between SAs, after a failure); `no`
    /// installs an active connection's policies only once its first SA is up.
    #[serde(default = "yes")]
    pub fail_closed: bool,
}

fn yes() -> bool {
    true
}

/// The whole typed policy built from a [`crate::conf::Conf`] by [`Policy::from_conf`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Every peer named in `[Phase 1]` or by a connection's `ISAKMP-peer`, in that order.
    pub peers: Vec<Peer>,
    /// `[Phase 2] Connections` (active) then `Passive-connections` (not active).
    pub connections: Vec<Connection>,
    /// `[Phase 1] Default`: the peer used for addresses not listed.
    pub default_peer: Option<String>,
    pub general: GeneralSettings,
    /// Accepted key-length ranges of AES transforms whose `KEY_LENGTH` is an `X,Y:Z` range
    /// with `Y < Z` (e.g. the autogenerated `AES-SHA`: offer 128, accept 128..256), keyed by
    /// the transform section name in lower case. Used by [`Policy::choose_phase1_for`] and
    /// [`Policy::choose_phase2_for`]; the free `choose_*` functions match exactly.
    pub key_lengths: std::collections::BTreeMap<String, (u16, u16)>,
    /// `[X509-Certificates]`: CA certificates, CRLs and certificates, as DER. Empty from
    /// [`Policy::from_conf`] (which reads no files); whoever reads the directories fills it.
    #[serde(default)]
    pub x509: crate::x509::Material,
}

/// A configuration the policy cannot use: the section and tag at fault, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyError {
    pub section: String,
    /// Empty when the whole section is at fault.
    pub tag: String,
    pub reason: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tag.is_empty() {
            write!(f, "[{}]: {}", self.section, self.reason)
        } else {
            write!(f, "[{}]:{}: {}", self.section, self.tag, self.reason)
        }
    }
}

impl std::error::Error for PolicyError {}
