//! Typed codec errors.

use super::{NotifyType, PayloadType};
use std::fmt;

/// Which structure was being parsed or emitted when an error arose. It decides the
/// notification a responder sends: RFC 2408 5.5/5.6 want BAD-PROPOSAL-SYNTAX for anything
/// wrong inside an SA's proposals and transforms, 5.8 INVALID-ID-INFORMATION for ID payloads,
/// and PAYLOAD-MALFORMED for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Header,
    /// The 4-byte generic payload header of the top-level chain.
    GenericHeader,
    Sa,
    Proposal,
    Transform,
    /// A data attribute inside a transform.
    SaAttribute,
    Ke,
    Id,
    Cert,
    CertReq,
    Hash,
    Sig,
    Nonce,
    Notify,
    Delete,
    VendorId,
    /// Attribute payload of the Transaction exchange.
    CfgAttributes,
    /// A data attribute inside an Attribute payload.
    CfgAttribute,
    NatD,
    NatOa,
    Unknown,
    /// The whole message (emit only).
    Message,
}

impl Part {
    fn notify_type(self) -> NotifyType {
        match self {
            Part::Proposal | Part::Transform | Part::SaAttribute => NotifyType::BAD_PROPOSAL_SYNTAX,
            Part::Id => NotifyType::INVALID_ID_INFORMATION,
            _ => NotifyType::PAYLOAD_MALFORMED,
        }
    }
}

/// Features of RFC 2407/2408 this codec deliberately does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// SA payload with a DOI other than IPsec: the situation's layout is DOI-specific, so the
    /// proposals cannot be located.
    Doi(u32),
    /// IPsec DOI situation other than SIT_IDENTITY_ONLY: secrecy/integrity fields would follow.
    Situation(u32),
}

/// Why a message could not be parsed or emitted. Each maps onto the RFC 2408 notification a
/// responder may send back (`notify_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// Fewer bytes than a fixed-size field or structure needs.
    Truncated {
        part: Part,
        needed: usize,
        available: usize,
    },
    /// A length field below its structure's minimum, or beyond the bytes present.
    BadLength {
        part: Part,
        length: usize,
        available: usize,
    },
    /// Bytes left over after a structure that must fill its container exactly.
    TrailingBytes { part: Part, extra: usize },
    /// The ISAKMP header's version byte has a major version other than 1.
    InvalidMajorVersion { version: u8 },
    /// The ISAKMP header's length disagrees with the datagram's length.
    MessageLength { stated: u32, actual: usize },
    /// `Message::parse` was given a message with the encryption flag set.
    Encrypted,
    /// A next-payload value not allowed where it appears (e.g. a non-transform inside a
    /// proposal).
    BadNextPayload { part: Part, found: PayloadType },
    /// A count field disagrees with what follows (transforms in a proposal, SPIs in a Delete).
    CountMismatch {
        part: Part,
        stated: usize,
        found: usize,
    },
    /// More items than this codec accepts (see the `MAX_*` limits).
    TooMany { part: Part, limit: usize },
    /// An SA that breaks RFC 2408 4.2 structurally (no proposals, no transforms).
    BadProposal { reason: &'static str },
    /// A feature deliberately not parsed.
    Unsupported(Unsupported),
    /// ID (or NAT-OA) type not known, or its data has the wrong length for its type.
    InvalidIdType { part: Part, id_type: u8 },
    /// Emit: a value whose length does not fit its length field.
    TooLong {
        part: Part,
        length: usize,
        max: usize,
    },
    /// Emit: fields that contradict each other (e.g. an SPI not of the declared size).
    Inconsistent { part: Part, reason: &'static str },
}

impl CodecError {
    /// The RFC 2408 3.14.1 notification a responder would send for this error.
    pub fn notify_type(&self) -> NotifyType {
        match self {
            CodecError::InvalidMajorVersion { .. } => NotifyType::INVALID_MAJOR_VERSION,
            CodecError::Unsupported(Unsupported::Doi(_)) => NotifyType::DOI_NOT_SUPPORTED,
            CodecError::Unsupported(Unsupported::Situation(_)) => {
                NotifyType::SITUATION_NOT_SUPPORTED
            }
            CodecError::BadProposal { .. } => NotifyType::BAD_PROPOSAL_SYNTAX,
            CodecError::InvalidIdType { part, .. } => part.notify_type(),
            CodecError::MessageLength { .. } | CodecError::Encrypted => {
                NotifyType::PAYLOAD_MALFORMED
            }
            CodecError::Truncated { part, .. }
            | CodecError::BadLength { part, .. }
            | CodecError::TrailingBytes { part, .. }
            | CodecError::BadNextPayload { part, .. }
            | CodecError::CountMismatch { part, .. }
            | CodecError::TooMany { part, .. }
            | CodecError::TooLong { part, .. }
            | CodecError::Inconsistent { part, .. } => part.notify_type(),
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated {
                part,
                needed,
                available,
            } => {
                write!(
                    f,
                    "{part:?}: truncated, need {needed} bytes, have {available}"
                )
            }
            CodecError::BadLength {
                part,
                length,
                available,
            } => {
                write!(
                    f,
                    "{part:?}: bad length {length} ({available} bytes available)"
                )
            }
            CodecError::TrailingBytes { part, extra } => {
                write!(f, "{part:?}: {extra} trailing bytes")
            }
            CodecError::InvalidMajorVersion { version } => {
                write!(f, "invalid ISAKMP version {version:#04x}, major must be 1")
            }
            CodecError::MessageLength { stated, actual } => {
                write!(f, "header length {stated} but datagram is {actual} bytes")
            }
            CodecError::Encrypted => write!(f, "message is encrypted"),
            CodecError::BadNextPayload { part, found } => {
                write!(f, "{part:?}: next payload {} not allowed here", found.0)
            }
            CodecError::CountMismatch {
                part,
                stated,
                found,
            } => {
                write!(f, "{part:?}: count says {stated}, found {found}")
            }
            CodecError::TooMany { part, limit } => write!(f, "{part:?}: more than {limit}"),
            CodecError::BadProposal { reason } => write!(f, "bad proposal syntax: {reason}"),
            CodecError::Unsupported(Unsupported::Doi(d)) => write!(f, "unsupported DOI {d}"),
            CodecError::Unsupported(Unsupported::Situation(s)) => {
                write!(f, "unsupported situation {s:#x}")
            }
            CodecError::InvalidIdType { part, id_type } => {
                write!(f, "{part:?}: invalid ID type {id_type} or length for it")
            }
            CodecError::TooLong { part, length, max } => {
                write!(f, "{part:?}: length {length} exceeds field maximum {max}")
            }
            CodecError::Inconsistent { part, reason } => write!(f, "{part:?}: {reason}"),
        }
    }
}

impl std::error::Error for CodecError {}
