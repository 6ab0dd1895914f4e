//! What this crate is asked to do and what it reports, as plain XFRM data: SAs with their
//! algorithms, keys, selectors and lifetimes, policies, deletes, SPI allocation, and the
//! ACQUIRE / EXPIRE / MAPPING events. The daemon maps its negotiation's types onto these,
//! so this crate knows XFRM and nothing of IKE.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use zeroize::Zeroizing;

/// IPsec protocol of an SA or policy template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpsecProtocol {
    Esp,
    Ah,
}

/// XFRM mode of an SA or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncapMode {
    Tunnel,
    Transport,
}

/// Direction of an SA as seen from this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// ESP encryption; [`crate::alg::cipher`] gives its kernel name and key length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EspCipher {
    TripleDes,
    AesCbc {
        key_bits: u16,
    },
    /// RFC 4106 AES-GCM with a 16-byte ICV; no separate integrity algorithm.
    AesGcm16 {
        key_bits: u16,
    },
    Null,
}

/// Integrity algorithm of ESP or AH; [`crate::alg::auth`] gives its kernel name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegAlg {
    HmacMd5,
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// Hard limits of an SA; the soft ones are derived at [`crate::SOFT_PERCENT`]%.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub seconds: u64,
    pub kilobytes: Option<u64>,
}

/// A traffic selector: a network (prefix or range), a protocol and a port (0: any).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// Upper end of an address range; `None` for a prefix.
    pub range_end: Option<IpAddr>,
    pub protocol: u8,
    pub port: u16,
}

/// Key material for the kernel: wiped when dropped, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    /// Takes ownership of `bytes` (wiped when the key drops).
    pub fn new(bytes: Vec<u8>) -> Key {
        Key(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

/// One SA: one direction of one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaSpec {
    /// Names the SA in errors (the daemon's connection name).
    pub connection: String,
    pub direction: Direction,
    pub protocol: IpsecProtocol,
    pub spi: u32,
    /// Outer addresses.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub mode: EncapMode,
    /// `UDP_ENCAP_ESPINUDP` ports (source, destination).
    pub udp_encap: Option<(u16, u16)>,
    pub cipher: Option<EspCipher>,
    /// For AES-GCM the key followed by the 4-byte salt.
    pub enc_key: Key,
    pub integ: Option<IntegAlg>,
    pub auth_key: Key,
    pub lifetime: Lifetime,
    /// From our side: traffic from `local` to `remote` (used by transport SAs).
    pub local: Selector,
    pub remote: Selector,
    pub reqid: u32,
}

/// The policies of one connection (out and in, plus fwd in tunnel mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySpec {
    pub connection: String,
    pub local: Selector,
    pub remote: Selector,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub mode: EncapMode,
    pub protocols: Vec<IpsecProtocol>,
    pub reqid: u32,
}

/// One operation on XFRM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XfrmRequest {
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

/// What the caller must hear about a request it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The SPI `AllocSpi` reserved.
    SpiAllocated(u32),
    /// The SA of `AddSa` is in the kernel.
    Installed,
    /// The request failed; the one-line reason (also the line to log).
    Failed(String),
}

/// An event from the kernel about an SA or policy of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XfrmEvent {
    /// Traffic matched a policy with no SA.
    Acquire {
        local: IpAddr,
        remote: IpAddr,
        protocol: u8,
    },
    /// An SA reached a soft or hard limit.
    Expire {
        protocol: IpsecProtocol,
        spi: u32,
        dst: IpAddr,
        hard: bool,
    },
    /// A NAT-T peer's outer address or port changed.
    Mapping { old: SocketAddr, new: SocketAddr },
}
