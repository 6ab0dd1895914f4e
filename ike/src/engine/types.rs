//! What goes into and comes out of the engine: configuration, outputs, kernel requests and events.

use crate::codec::{Cookie, IdPayload, Identity};
use crate::crypto::{CryptoRequest, Secret};
use crate::policy::{ConnectionName, PeerName};
use crate::policy::{EncapMode, EspCipher, IntegAlg, IpsecProtocol, Lifetime, Policy};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Identifies one request the engine made (crypto or kernel) so the answer finds its exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// The serial number of an ISAKMP SA (pluto's `#N`): one per phase-1 exchange, never reused
/// while the engine runs. Its own type, so that it cannot be taken for an IPsec SA's.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct IsakmpSerial(pub u64);

/// The serial number of an IPsec SA bundle (one Quick Mode's SAs), from the same counter as
/// [`IsakmpSerial`]s.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct IpsecSerial(pub u64);

impl std::fmt::Display for IsakmpSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for IpsecSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Timer and retransmission settings (isakmpd's [General] section, pluto's rekey rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timers {
    /// First retransmission after this; each further one doubles it.
    pub retransmit_base: Duration,
    /// How many times a message is sent again before the exchange is given up (`Retransmits`).
    pub retransmits: u32,
    /// An exchange that has not finished after this is abandoned (`Exchange-max-time`).
    pub exchange_max: Duration,
    /// Rekey this long before expiry (pluto's `rekeymargin`), at most half the lifetime.
    pub rekey_margin: Duration,
    /// Add up to this percentage of the margin at random (pluto's `rekeyfuzz`).
    pub rekey_fuzz_percent: u32,
    /// NAT-T keepalive interval when we are behind a NAT (RFC 3948).
    pub nat_keepalive: Duration,
    /// Seconds without an R-U-THERE-ACK after which a DPD peer is declared dead.
    pub dpd_timeout: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            retransmit_base: Duration::from_secs(1),
            retransmits: 3,
            exchange_max: Duration::from_secs(120),
            rekey_margin: Duration::from_secs(540),
            rekey_fuzz_percent: 100,
            nat_keepalive: Duration::from_secs(20),
            dpd_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything the engine is told about its world at start.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub policy: Policy,
    pub timers: Timers,
    /// Our addresses, used as the source of initiated exchanges when a peer names no
    /// `Local-address`, and in NAT-D hashes.
    pub local_addresses: Vec<IpAddr>,
    /// IKE port (500, or `-p`).
    pub ike_port: u16,
    /// NAT-T port (4500, or `-N`).
    pub natt_port: u16,
    /// HA standby (`-S`, `M passive`): neither initiate nor answer.
    pub passive: bool,
}

/// One transmission for the caller to send. From the NAT-T port, `bytes` already carries
/// the non-ESP marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Direction of an IPsec SA as seen from this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// A traffic selector: a network, a protocol and a port, as negotiated in IDci/IDcr.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Selector {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// Upper end of an address range (ID_IPV4_ADDR_RANGE); `None` for a subnet.
    pub range_end: Option<IpAddr>,
    pub protocol: u8,
    pub port: u16,
}

impl Selector {
    /// The selector a Quick Mode client ID names; `None` for an ID that names no
    /// addresses (FQDN, user FQDN, DN, key ID).
    pub fn from_id(id: &IdPayload) -> Option<Selector> {
        let (address, prefix_len, range_end) = match &id.identity {
            Identity::Ipv4(a) => (IpAddr::V4(*a), 32, None),
            Identity::Ipv6(a) => (IpAddr::V6(*a), 128, None),
            Identity::Ipv4Subnet(a, m) => {
                (IpAddr::V4(*a), u32::from(*m).leading_ones() as u8, None)
            }
            Identity::Ipv6Subnet(a, m) => {
                (IpAddr::V6(*a), u128::from(*m).leading_ones() as u8, None)
            }
            Identity::Ipv4Range(a, b) => (IpAddr::V4(*a), 32, Some(IpAddr::V4(*b))),
            Identity::Ipv6Range(a, b) => (IpAddr::V6(*a), 128, Some(IpAddr::V6(*b))),
            _ => return None,
        };
        Some(Selector {
            address,
            prefix_len,
            range_end,
            protocol: id.protocol,
            port: id.port,
        })
    }

    /// One host, any protocol and port: what no client ID means (RFC 2409 5.5).
    pub fn host(addr: IpAddr) -> Selector {
        Selector {
            address: addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            range_end: None,
            protocol: 0,
            port: 0,
        }
    }

    /// The first and last address covered, as numbers of the family's width, with the
    /// family's width in bits; `None` for a malformed selector (prefix longer than the
    /// family, a range across families or running backwards).
    pub fn bounds(&self) -> Option<(u128, u128, u32)> {
        let (start, bits) = match self.address {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        match self.range_end {
            Some(end) => {
                let end = match (self.address, end) {
                    (IpAddr::V4(_), IpAddr::V4(e)) => u128::from(u32::from(e)),
                    (IpAddr::V6(_), IpAddr::V6(e)) => u128::from(e),
                    _ => return None,
                };
                (start <= end).then_some((start, end, bits))
            }
            None => {
                let len = u32::from(self.prefix_len);
                if len > bits {
                    return None;
                }
                let host_bits = bits - len;
                let host_mask = if host_bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                let lo = start & !host_mask;
                Some((lo, lo | host_mask, bits))
            }
        }
    }

    /// Whether every packet `inner` matches also matches `self`: the same family, an address
    /// span inside ours, and our protocol and port unless ours are 0 (any). A malformed
    /// selector contains nothing and is contained in nothing.
    pub fn contains(&self, inner: &Selector) -> bool {
        let (Some((lo, hi, bits)), Some((ilo, ihi, ibits))) = (self.bounds(), inner.bounds())
        else {
            return false;
        };
        bits == ibits
            && lo <= ilo
            && ihi <= hi
            && (self.protocol == 0 || self.protocol == inner.protocol)
            && (self.port == 0 || self.port == inner.port)
    }

    /// A single address with any protocol and port.
    pub fn is_single_host(&self) -> bool {
        self.protocol == 0 && self.port == 0 && self.bounds().is_some_and(|(lo, hi, _)| lo == hi)
    }
}

/// One IPsec SA for the kernel: one direction of one protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaSpec {
    pub connection: ConnectionName,
    pub direction: Direction,
    pub protocol: IpsecProtocol,
    pub spi: u32,
    /// Outer addresses: source and destination of the encapsulated packets.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub mode: EncapMode,
    /// UDP encapsulation ports (source, destination) when NAT-T is in use.
    pub udp_encap: Option<(u16, u16)>,
    pub cipher: Option<EspCipher>,
    /// Cipher key; for AES-GCM the key followed by the 4-byte salt (RFC 4106).
    pub enc_key: Secret,
    pub integ: Option<IntegAlg>,
    pub auth_key: Secret,
    /// Hard limits; the kernel crate derives its soft limits from these.
    pub lifetime: Lifetime,
    /// Selectors, from our side: traffic from `local` to `remote`.
    pub local: Selector,
    pub remote: Selector,
    /// Links the SAs and policies of one negotiation (xfrm reqid).
    pub reqid: u32,
}

/// Policies that route a connection's traffic through its SAs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    pub connection: ConnectionName,
    pub local: Selector,
    pub remote: Selector,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub mode: EncapMode,
    pub protocols: Vec<IpsecProtocol>,
    pub reqid: u32,
}

/// What the engine asks of the kernel (through the privileged parent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelRequest {
    /// Reserve an inbound SPI for `protocol` from `src` (the peer) to `dst` (us).
    AllocSpi {
        protocol: IpsecProtocol,
        src: IpAddr,
        dst: IpAddr,
    },
    AddSa(SaSpec),
    DeleteSa {
        protocol: IpsecProtocol,
        spi: u32,
        src: IpAddr,
        dst: IpAddr,
    },
    AddPolicy(PolicySpec),
    DeletePolicy(PolicySpec),
}

/// What the kernel tells the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelEvent {
    /// Answer to `AllocSpi`.
    SpiAllocated { id: RequestId, spi: u32 },
    /// `AddSa` `id` is in the kernel (a rekeying initiator sends its third Quick Mode
    /// message only once its new inbound SA is there: the peer may use it at once).
    Installed { id: RequestId },
    /// A request failed; the engine gives up the exchange that needed it.
    Failed { id: RequestId, reason: String },
    /// Traffic matched a policy with no SA: start the connection that covers it.
    Acquire {
        local: IpAddr,
        remote: IpAddr,
        protocol: u8,
    },
    /// An SA reached a soft (rekey) or hard (gone) limit.
    Expire {
        protocol: IpsecProtocol,
        spi: u32,
        dst: IpAddr,
        hard: bool,
    },
    /// The peer's NAT mapping changed (new outer address or port).
    Mapping { old: SocketAddr, new: SocketAddr },
}

/// Severity of a log line the engine produced.
/// Why an operator's command (`c`, `t`, `d`) was not carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// An HA standby initiates nothing.
    Passive,
    /// `c`: no connection or peer of that name.
    UnknownName(String),
    /// `t`: nothing is up under that name.
    NoSa(String),
    /// `d`: no ISAKMP SA with those cookies.
    UnknownCookies,
    /// `d` with a message ID: no IPsec SA from that Quick Mode.
    UnknownMessageId(u32),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Passive => write!(f, "passive mode: not initiating"),
            CommandError::UnknownName(n) => write!(f, "no connection or peer named {n:?}"),
            CommandError::NoSa(n) => write!(f, "no SA for {n:?}"),
            CommandError::UnknownCookies => write!(f, "no ISAKMP SA with these cookies"),
            CommandError::UnknownMessageId(m) => {
                write!(f, "no IPsec SA from message ID {m:08x} under these cookies")
            }
        }
    }
}

impl std::error::Error for CommandError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Something that happened, for logs, the report and updown scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Phase1Up {
        peer: PeerName,
        icookie: Cookie,
        rcookie: Cookie,
        remote: SocketAddr,
        summary: String,
    },
    Phase1Down {
        peer: PeerName,
        icookie: Cookie,
        rcookie: Cookie,
        reason: String,
    },
    Phase2Up {
        connection: ConnectionName,
        peer: PeerName,
        /// (protocol, inbound SPI, outbound SPI)
        spis: Vec<(IpsecProtocol, u32, u32)>,
        local_id: Option<IdPayload>,
        remote_id: Option<IdPayload>,
        summary: String,
        /// Our and the peer's gateway addresses, and the negotiated selectors.
        local_addr: IpAddr,
        remote_addr: IpAddr,
        local: Selector,
        remote: Selector,
        /// No other SA of this connection was up: a tunnel appears (updown's up verbs).
        first: bool,
    },
    Phase2Down {
        connection: ConnectionName,
        spis: Vec<(IpsecProtocol, u32, u32)>,
        reason: String,
        local_addr: IpAddr,
        remote_addr: IpAddr,
        local: Selector,
        remote: Selector,
        /// No SA of this connection remains: the tunnel is gone (updown's down verbs).
        last: bool,
    },
    /// A peer did not answer DPD and was declared dead.
    PeerDead {
        peer: PeerName,
    },
    Log {
        level: LogLevel,
        message: String,
    },
}

/// One output for the caller to act on.
#[derive(Clone, Debug)]
pub enum Output {
    Transmit(Transmit),
    Crypto {
        id: RequestId,
        request: CryptoRequest,
    },
    Kernel {
        id: RequestId,
        request: KernelRequest,
    },
    Event(Event),
    /// With packet capture on: an IKE message sent or received, in cleartext (decrypted,
    /// encryption flag cleared), without the NAT-T marker.
    Packet {
        from: SocketAddr,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(a: &str, len: u8) -> Selector {
        Selector {
            prefix_len: len,
            ..Selector::host(a.parse().expect("ip"))
        }
    }

    fn range(a: &str, b: &str) -> Selector {
        Selector {
            range_end: Some(b.parse().expect("ip")),
            ..Selector::host(a.parse().expect("ip"))
        }
    }

    #[test]
    fn containment_by_span_family_protocol_and_port() {
        let lan = net("10.1.0.0", 16);
        assert!(lan.contains(&net("10.1.2.0", 24)));
        assert!(lan.contains(&Selector::host("10.1.255.255".parse().expect("ip"))));
        assert!(lan.contains(&lan));
        assert!(!lan.contains(&net("10.0.0.0", 8)));
        assert!(!lan.contains(&net("0.0.0.0", 0)));
        assert!(!lan.contains(&Selector::host("10.2.0.1".parse().expect("ip"))));
        // Host bits in the address do not widen a subnet.
        assert!(!net("10.1.0.7", 16).contains(&net("10.2.0.0", 24)));
        assert!(lan.contains(&range("10.1.0.10", "10.1.0.20")));
        assert!(!lan.contains(&range("10.1.255.0", "10.2.0.0")));
        assert!(range("10.1.0.10", "10.1.0.20")
            .contains(&Selector::host("10.1.0.15".parse().expect("ip"))));
        assert!(!range("10.1.0.10", "10.1.0.20").contains(&net("10.1.0.0", 28)));
        // Families never mix, not even the whole space.
        assert!(!net("0.0.0.0", 0).contains(&net("::", 0)));
        assert!(net("::", 0).contains(&net("2001:db8::", 32)));
        // A protocol or port of ours narrows; the inner selector cannot widen it.
        let tcp80 = Selector {
            protocol: 6,
            port: 80,
            ..lan.clone()
        };
        assert!(!tcp80.contains(&lan));
        assert!(lan.contains(&tcp80));
        assert!(tcp80.contains(&Selector {
            prefix_len: 24,
            ..tcp80.clone()
        }));
        // Malformed selectors contain nothing and are in nothing.
        assert!(!net("0.0.0.0", 0).contains(&net("10.0.0.0", 33)));
        assert!(!range("10.0.0.9", "10.0.0.1")
            .contains(&Selector::host("10.0.0.5".parse().expect("ip"))));
        assert!(!net("0.0.0.0", 0).contains(&range("10.0.0.9", "10.0.0.1")));
    }

    #[test]
    fn single_hosts() {
        assert!(Selector::host("192.0.2.1".parse().expect("ip")).is_single_host());
        assert!(range("192.0.2.1", "192.0.2.1").is_single_host());
        assert!(!net("192.0.2.0", 31).is_single_host());
        assert!(!Selector {
            protocol: 17,
            ..Selector::host("192.0.2.1".parse().expect("ip"))
        }
        .is_single_host());
    }
}
