//! Payload bodies (RFC 2408 section 3) and the chain that carries them.
//!
//! INTERFACE CONTRACT: the types below are the agreed shape used by the engine; the codec
//! implementation fills in `parse`/`emit`.

use super::{CodecError, Cookie, IdType, NotifyType, PayloadType, ProtocolId};
use serde::{Deserialize, Serialize};

/// A data attribute (RFC 2408 3.3). The AF bit decides the form; both forms are kept so that
/// a value round-trips exactly as the peer sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// Attribute type without the AF bit.
    pub kind: u16,
    pub value: AttributeValue,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeValue {
    /// AF = 1: a 16-bit value in the header itself.
    Basic(u16),
    /// AF = 0: a length-prefixed value.
    Variable(Vec<u8>),
}

impl Attribute {
    pub fn basic(kind: u16, value: u16) -> Self {
        Self {
            kind,
            value: AttributeValue::Basic(value),
        }
    }
    /// The numeric value of a basic attribute, or of a variable one of at most 8 bytes
    /// (life durations may arrive either way).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttributeValue::Basic(v) => Some(u64::from(*v)),
            AttributeValue::Variable(b) if b.len() <= 8 => {
                Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            }
            AttributeValue::Variable(_) => None,
        }
    }
    /// A numeric attribute in the shortest form: basic when it fits 16 bits.
    pub fn number(kind: u16, value: u64) -> Self {
        if let Ok(v) = u16::try_from(value) {
            return Self::basic(kind, v);
        }
        let bytes = value.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        Self {
            kind,
            value: AttributeValue::Variable(bytes[skip..].to_vec()),
        }
    }
}

/// Transform payload (RFC 2408 3.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transform {
    pub number: u8,
    pub transform_id: u8,
    pub attributes: Vec<Attribute>,
}

/// Proposal payload (RFC 2408 3.5) with its transforms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub number: u8,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// SA payload (RFC 2408 3.4, IPsec DOI situation of RFC 2407 4.6.1). Only SIT_IDENTITY_ONLY
/// is supported: a situation with the secrecy or integrity bits is `CodecError::Unsupported`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaPayload {
    pub doi: u32,
    pub situation: u32,
    pub proposals: Vec<Proposal>,
}

/// The identity data of an ID payload, typed by [`IdType`]. Strings are kept as bytes: a
/// peer's FQDN need not be UTF-8 and must round-trip.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Identity {
    Ipv4(std::net::Ipv4Addr),
    Ipv6(std::net::Ipv6Addr),
    Ipv4Subnet(std::net::Ipv4Addr, std::net::Ipv4Addr),
    Ipv6Subnet(std::net::Ipv6Addr, std::net::Ipv6Addr),
    Ipv4Range(std::net::Ipv4Addr, std::net::Ipv4Addr),
    Ipv6Range(std::net::Ipv6Addr, std::net::Ipv6Addr),
    Fqdn(Vec<u8>),
    UserFqdn(Vec<u8>),
    DerAsn1Dn(Vec<u8>),
    DerAsn1Gn(Vec<u8>),
    KeyId(Vec<u8>),
}

impl Identity {
    pub fn id_type(&self) -> IdType {
        match self {
            Identity::Ipv4(_) => IdType::IPV4_ADDR,
            Identity::Ipv6(_) => IdType::IPV6_ADDR,
            Identity::Ipv4Subnet(..) => IdType::IPV4_ADDR_SUBNET,
            Identity::Ipv6Subnet(..) => IdType::IPV6_ADDR_SUBNET,
            Identity::Ipv4Range(..) => IdType::IPV4_ADDR_RANGE,
            Identity::Ipv6Range(..) => IdType::IPV6_ADDR_RANGE,
            Identity::Fqdn(_) => IdType::FQDN,
            Identity::UserFqdn(_) => IdType::USER_FQDN,
            Identity::DerAsn1Dn(_) => IdType::DER_ASN1_DN,
            Identity::DerAsn1Gn(_) => IdType::DER_ASN1_GN,
            Identity::KeyId(_) => IdType::KEY_ID,
        }
    }
}

/// ID payload (RFC 2408 3.8 with the IPsec DOI fields of RFC 2407 4.6.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdPayload {
    /// IP protocol number, 0 = any.
    pub protocol: u8,
    /// Port, 0 = any.
    pub port: u16,
    pub identity: Identity,
}

/// CERT (RFC 2408 3.9) and CR (3.10) payloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertPayload {
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Notification payload (RFC 2408 3.14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyPayload {
    pub doi: u32,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub notify_type: NotifyType,
    pub data: Vec<u8>,
}

/// Delete payload (RFC 2408 3.15): every SPI has the same size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletePayload {
    pub doi: u32,
    pub protocol: ProtocolId,
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

/// Attribute payload of the Transaction exchange (Mode Config, XAUTH).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributePayload {
    pub cfg_type: u8,
    pub identifier: u16,
    pub attributes: Vec<Attribute>,
}

/// One payload of a message's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    Sa(SaPayload),
    Ke(Vec<u8>),
    Id(IdPayload),
    Cert(CertPayload),
    CertReq(CertPayload),
    Hash(Vec<u8>),
    Sig(Vec<u8>),
    Nonce(Vec<u8>),
    Notify(NotifyPayload),
    Delete(DeletePayload),
    VendorId(Vec<u8>),
    Attribute(AttributePayload),
    /// NAT-D (RFC 3947 payload 20, or draft payload 130 when `draft` is set).
    NatD {
        hash: Vec<u8>,
        draft: bool,
    },
    /// NAT-OA (RFC 3947 payload 21, or draft 131): an ID-like body carrying the original address.
    NatOa {
        id_type: IdType,
        address: std::net::IpAddr,
        draft: bool,
    },
    /// A payload type we do not interpret; kept so the chain can be walked and re-emitted.
    Unknown {
        payload_type: PayloadType,
        body: Vec<u8>,
    },
}

/// A parsed ISAKMP message: the header fields the engine needs, and the payload chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: super::Header,
    pub payloads: Vec<Payload>,
}

/// Unused-import guard for the contract; the implementation uses these.
#[allow(dead_code)]
fn _contract(_: CodecError, _: Cookie) {}
