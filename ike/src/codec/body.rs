//! Parsing and emitting payload bodies (everything after the 4-byte generic header).

use super::error::{Part, Unsupported};
use super::wire::{finish_generic, fit_u16, fit_u8, start_generic, Reader};
use super::{
    Attribute, AttributePayload, AttributeValue, CertPayload, CodecError, DeletePayload, IdPayload,
    IdType, Identity, NotifyPayload, NotifyType, Payload, PayloadType, Proposal, ProtocolId,
    SaPayload, Transform, DOI_IPSEC, SIT_IDENTITY_ONLY,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most proposals accepted in one SA payload.
pub const MAX_PROPOSALS: usize = 64;
/// Most transforms accepted in one proposal.
pub const MAX_TRANSFORMS: usize = 64;
/// Most data attributes accepted in one transform or Attribute payload.
pub const MAX_ATTRIBUTES: usize = 256;

/// The AF bit of an attribute's type field (RFC 2408 3.3).
const AF: u16 = 0x8000;

impl Payload {
    /// Parses a payload body of the given type. Types without a variant become
    /// `Payload::Unknown`, so this only fails on malformed bodies of known types.
    pub fn parse(payload_type: PayloadType, body: &[u8]) -> Result<Payload, CodecError> {
        Ok(match payload_type {
            PayloadType::SA => Payload::Sa(parse_sa(body)?),
            PayloadType::KE => Payload::Ke(body.to_vec()),
            PayloadType::ID => Payload::Id(parse_id(body)?),
            PayloadType::CERT => Payload::Cert(parse_cert(body, Part::Cert)?),
            PayloadType::CR => Payload::CertReq(parse_cert(body, Part::CertReq)?),
            PayloadType::HASH => Payload::Hash(body.to_vec()),
            PayloadType::SIG => Payload::Sig(body.to_vec()),
            PayloadType::NONCE => Payload::Nonce(body.to_vec()),
            PayloadType::NOTIFY => Payload::Notify(parse_notify(body)?),
            PayloadType::DELETE => Payload::Delete(parse_delete(body)?),
            PayloadType::VENDOR_ID => Payload::VendorId(body.to_vec()),
            PayloadType::ATTRIBUTE => Payload::Attribute(parse_cfg(body)?),
            PayloadType::NAT_D => Payload::NatD {
                hash: body.to_vec(),
                draft: false,
            },
            PayloadType::NAT_D_DRAFT => Payload::NatD {
                hash: body.to_vec(),
                draft: true,
            },
            PayloadType::NAT_OA => parse_nat_oa(body, false)?,
            PayloadType::NAT_OA_DRAFT => parse_nat_oa(body, true)?,
            other => Payload::Unknown {
                payload_type: other,
                body: body.to_vec(),
            },
        })
    }

    /// The payload type number this payload is sent with.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke(_) => PayloadType::KE,
            Payload::Id(_) => PayloadType::ID,
            Payload::Cert(_) => PayloadType::CERT,
            Payload::CertReq(_) => PayloadType::CR,
            Payload::Hash(_) => PayloadType::HASH,
            Payload::Sig(_) => PayloadType::SIG,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::Attribute(_) => PayloadType::ATTRIBUTE,
            Payload::NatD { draft: false, .. } => PayloadType::NAT_D,
            Payload::NatD { draft: true, .. } => PayloadType::NAT_D_DRAFT,
            Payload::NatOa { draft: false, .. } => PayloadType::NAT_OA,
            Payload::NatOa { draft: true, .. } => PayloadType::NAT_OA_DRAFT,
            Payload::Unknown { payload_type, .. } => *payload_type,
        }
    }

    fn part(&self) -> Part {
        match self {
            Payload::Sa(_) => Part::Sa,
            Payload::Ke(_) => Part::Ke,
            Payload::Id(_) => Part::Id,
            Payload::Cert(_) => Part::Cert,
            Payload::CertReq(_) => Part::CertReq,
            Payload::Hash(_) => Part::Hash,
            Payload::Sig(_) => Part::Sig,
            Payload::Nonce(_) => Part::Nonce,
            Payload::Notify(_) => Part::Notify,
            Payload::Delete(_) => Part::Delete,
            Payload::VendorId(_) => Part::VendorId,
            Payload::Attribute(_) => Part::CfgAttributes,
            Payload::NatD { .. } => Part::NatD,
            Payload::NatOa { .. } => Part::NatOa,
            Payload::Unknown { .. } => Part::Unknown,
        }
    }

    /// Appends the body (without generic header) to `out`.
    ///
    /// Fails, rather than wrapping, when a nested length or count does not fit its field
    /// (an attribute value over 65535 bytes, an SPI over 255, more than 255 transforms...)
    /// or when fields contradict each other. On error `out` is left as it was.
    /// The body's own length is checked by whoever writes the generic header
    /// (`emit_payload`, `emit_payloads`).
    pub fn emit_body(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        let r = self.emit_body_inner(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn emit_body_inner(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Payload::Sa(sa) => emit_sa(sa, out)?,
            Payload::Ke(b)
            | Payload::Hash(b)
            | Payload::Sig(b)
            | Payload::Nonce(b)
            | Payload::VendorId(b)
            | Payload::NatD { hash: b, .. }
            | Payload::Unknown { body: b, .. } => out.extend_from_slice(b),
            Payload::Id(id) => emit_id(id, out),
            Payload::Cert(c) | Payload::CertReq(c) => {
                out.push(c.encoding);
                out.extend_from_slice(&c.data);
            }
            Payload::Notify(n) => {
                out.extend_from_slice(&n.doi.to_be_bytes());
                out.push(n.protocol.0);
                out.push(fit_u8(Part::Notify, n.spi.len())?);
                out.extend_from_slice(&n.notify_type.0.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Payload::Delete(d) => emit_delete(d, out)?,
            Payload::Attribute(a) => {
                out.push(a.cfg_type);
                out.push(0);
                out.extend_from_slice(&a.identifier.to_be_bytes());
                emit_attributes(&a.attributes, Part::CfgAttribute, out)?;
            }
            Payload::NatOa {
                id_type, address, ..
            } => {
                out.push(id_type.0);
                out.extend_from_slice(&[0, 0, 0]);
                match (*id_type, address) {
                    (IdType::IPV4_ADDR, IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
                    (IdType::IPV6_ADDR, IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
                    _ => {
                        return Err(CodecError::Inconsistent {
                            part: Part::NatOa,
                            reason: "ID type does not match the address family",
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends this payload with its generic header, `next` being the type of the payload
    /// that follows (`PayloadType::NONE` for the last). On error `out` is left as it was.
    pub fn emit(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if self.payload_type() == PayloadType::NONE {
            // Type 0 would end the chain early on the receiving side.
            return Err(CodecError::Inconsistent {
                part: Part::Unknown,
                reason: "payload type 0 cannot be sent",
            });
        }
        let at = start_generic(out, next.0);
        let r = self
            .emit_body_inner(out)
            .and_then(|()| finish_generic(out, at, self.part()));
        if r.is_err() {
            out.truncate(at);
        }
        r
    }
}

fn parse_sa(body: &[u8]) -> Result<SaPayload, CodecError> {
    let mut r = Reader::new(body, Part::Sa);
    let doi = r.u32()?;
    let situation = r.u32()?;
    if doi != DOI_IPSEC {
        return Err(CodecError::Unsupported(Unsupported::Doi(doi)));
    }
    if situation != SIT_IDENTITY_ONLY {
        return Err(CodecError::Unsupported(Unsupported::Situation(situation)));
    }
    let mut proposals = Vec::new();
    for sub in SubPayloads::new(r.rest(), Part::Proposal, PayloadType::PROPOSAL) {
        if proposals.len() == MAX_PROPOSALS {
            return Err(CodecError::TooMany {
                part: Part::Proposal,
                limit: MAX_PROPOSALS,
            });
        }
        proposals.push(parse_proposal(sub?)?);
    }
    if proposals.is_empty() {
        return Err(CodecError::BadProposal {
            reason: "SA payload without proposals",
        });
    }
    Ok(SaPayload {
        doi,
        situation,
        proposals,
    })
}

fn parse_proposal(body: &[u8]) -> Result<Proposal, CodecError> {
    let mut r = Reader::new(body, Part::Proposal);
    let number = r.u8()?;
    let protocol = ProtocolId(r.u8()?);
    let spi_size = r.u8()?;
    let count = usize::from(r.u8()?);
    let spi = r.take(usize::from(spi_size))?.to_vec();
    let mut transforms = Vec::new();
    for sub in SubPayloads::new(r.rest(), Part::Transform, PayloadType::TRANSFORM) {
        if transforms.len() == MAX_TRANSFORMS {
            return Err(CodecError::TooMany {
                part: Part::Transform,
                limit: MAX_TRANSFORMS,
            });
        }
        transforms.push(parse_transform(sub?)?);
    }
    if transforms.len() != count {
        return Err(CodecError::CountMismatch {
            part: Part::Transform,
            stated: count,
            found: transforms.len(),
        });
    }
    if transforms.is_empty() {
        return Err(CodecError::BadProposal {
            reason: "proposal without transforms",
        });
    }
    Ok(Proposal {
        number,
        protocol,
        spi,
        transforms,
    })
}

fn parse_transform(body: &[u8]) -> Result<Transform, CodecError> {
    let mut r = Reader::new(body, Part::Transform);
    let number = r.u8()?;
    let transform_id = r.u8()?;
    let _reserved = r.u16()?;
    let attributes = parse_attributes(r.rest(), Part::SaAttribute)?;
    Ok(Transform {
        number,
        transform_id,
        attributes,
    })
}

/// Parses data attributes filling `body` exactly.
fn parse_attributes(body: &[u8], part: Part) -> Result<Vec<Attribute>, CodecError> {
    let mut r = Reader::new(body, part);
    let mut attributes = Vec::new();
    while r.remaining() > 0 {
        if attributes.len() == MAX_ATTRIBUTES {
            return Err(CodecError::TooMany {
                part,
                limit: MAX_ATTRIBUTES,
            });
        }
        let raw = r.u16()?;
        let kind = raw & !AF;
        let word = r.u16()?;
        let value = if raw & AF != 0 {
            AttributeValue::Basic(word)
        } else {
            let available = r.remaining();
            let len = usize::from(word);
            if len > available {
                return Err(CodecError::BadLength {
                    part,
                    length: len,
                    available,
                });
            }
            AttributeValue::Variable(r.take(len)?.to_vec())
        };
        attributes.push(Attribute { kind, value });
    }
    Ok(attributes)
}

fn emit_sa(sa: &SaPayload, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.extend_from_slice(&sa.doi.to_be_bytes());
    out.extend_from_slice(&sa.situation.to_be_bytes());
    for (i, p) in sa.proposals.iter().enumerate() {
        let more = i + 1 < sa.proposals.len();
        let at = start_generic(out, if more { PayloadType::PROPOSAL.0 } else { 0 });
        out.push(p.number);
        out.push(p.protocol.0);
        out.push(fit_u8(Part::Proposal, p.spi.len())?);
        out.push(fit_u8(Part::Transform, p.transforms.len())?);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let more = j + 1 < p.transforms.len();
            let tat = start_generic(out, if more { PayloadType::TRANSFORM.0 } else { 0 });
            out.push(t.number);
            out.push(t.transform_id);
            out.extend_from_slice(&[0, 0]);
            emit_attributes(&t.attributes, Part::SaAttribute, out)?;
            finish_generic(out, tat, Part::Transform)?;
        }
        finish_generic(out, at, Part::Proposal)?;
    }
    Ok(())
}

fn emit_attributes(attrs: &[Attribute], part: Part, out: &mut Vec<u8>) -> Result<(), CodecError> {
    for a in attrs {
        if a.kind & AF != 0 {
            return Err(CodecError::Inconsistent {
                part,
                reason: "attribute type must not include the AF bit",
            });
        }
        match &a.value {
            AttributeValue::Basic(v) => {
                out.extend_from_slice(&(a.kind | AF).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttributeValue::Variable(b) => {
                out.extend_from_slice(&a.kind.to_be_bytes());
                out.extend_from_slice(&fit_u16(part, b.len())?.to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    Ok(())
}

fn parse_id(body: &[u8]) -> Result<IdPayload, CodecError> {
    let mut r = Reader::new(body, Part::Id);
    let id_type = r.u8()?;
    let protocol = r.u8()?;
    let port = r.u16()?;
    let data = r.rest();
    let bad = || CodecError::InvalidIdType {
        part: Part::Id,
        id_type,
    };
    let v4 = |b: &[u8]| {
        <[u8; 4]>::try_from(b)
            .map(Ipv4Addr::from)
            .map_err(|_| bad())
    };
    let v6 = |b: &[u8]| {
        <[u8; 16]>::try_from(b)
            .map(Ipv6Addr::from)
            .map_err(|_| bad())
    };
    // Two addresses of one family: the data must be exactly twice the address size.
    let halves = |size: usize| {
        if data.len() == 2 * size {
            Ok(data.split_at(size))
        } else {
            Err(bad())
        }
    };
    let identity = match IdType(id_type) {
        IdType::IPV4_ADDR => Identity::Ipv4(v4(data)?),
        IdType::IPV6_ADDR => Identity::Ipv6(v6(data)?),
        IdType::IPV4_ADDR_SUBNET => {
            let (a, m) = halves(4)?;
            Identity::Ipv4Subnet(v4(a)?, v4(m)?)
        }
        IdType::IPV6_ADDR_SUBNET => {
            let (a, m) = halves(16)?;
            Identity::Ipv6Subnet(v6(a)?, v6(m)?)
        }
        IdType::IPV4_ADDR_RANGE => {
            let (a, b) = halves(4)?;
            Identity::Ipv4Range(v4(a)?, v4(b)?)
        }
        IdType::IPV6_ADDR_RANGE => {
            let (a, b) = halves(16)?;
            Identity::Ipv6Range(v6(a)?, v6(b)?)
        }
        IdType::FQDN => Identity::Fqdn(data.to_vec()),
        IdType::USER_FQDN => Identity::UserFqdn(data.to_vec()),
        IdType::DER_ASN1_DN => Identity::DerAsn1Dn(data.to_vec()),
        IdType::DER_ASN1_GN => Identity::DerAsn1Gn(data.to_vec()),
        IdType::KEY_ID => Identity::KeyId(data.to_vec()),
        _ => return Err(bad()),
    };
    Ok(IdPayload {
        protocol,
        port,
        identity,
    })
}

fn emit_id(id: &IdPayload, out: &mut Vec<u8>) {
    out.push(id.identity.id_type().0);
    out.push(id.protocol);
    out.extend_from_slice(&id.port.to_be_bytes());
    match &id.identity {
        Identity::Ipv4(a) => out.extend_from_slice(&a.octets()),
        Identity::Ipv6(a) => out.extend_from_slice(&a.octets()),
        Identity::Ipv4Subnet(a, b) | Identity::Ipv4Range(a, b) => {
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&b.octets());
        }
        Identity::Ipv6Subnet(a, b) | Identity::Ipv6Range(a, b) => {
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&b.octets());
        }
        Identity::Fqdn(b)
        | Identity::UserFqdn(b)
        | Identity::DerAsn1Dn(b)
        | Identity::DerAsn1Gn(b)
        | Identity::KeyId(b) => out.extend_from_slice(b),
    }
}

fn parse_cert(body: &[u8], part: Part) -> Result<CertPayload, CodecError> {
    let mut r = Reader::new(body, part);
    let encoding = r.u8()?;
    Ok(CertPayload {
        encoding,
        data: r.rest().to_vec(),
    })
}

fn parse_notify(body: &[u8]) -> Result<NotifyPayload, CodecError> {
    let mut r = Reader::new(body, Part::Notify);
    let doi = r.u32()?;
    let protocol = ProtocolId(r.u8()?);
    let spi_size = r.u8()?;
    let notify_type = NotifyType(r.u16()?);
    let spi = r.take(usize::from(spi_size))?.to_vec();
    let data = r.rest().to_vec();
    Ok(NotifyPayload {
        doi,
        protocol,
        spi,
        notify_type,
        data,
    })
}

fn parse_delete(body: &[u8]) -> Result<DeletePayload, CodecError> {
    let mut r = Reader::new(body, Part::Delete);
    let doi = r.u32()?;
    let protocol = ProtocolId(r.u8()?);
    let spi_size = r.u8()?;
    let count = usize::from(r.u16()?);
    let rest = r.rest();
    let size = usize::from(spi_size);
    // Both checks come before any allocation: the SPIs must fill the rest exactly, and a
    // zero size with a nonzero count would describe SPIs that take no bytes at all.
    if size == 0 && count != 0 {
        return Err(CodecError::CountMismatch {
            part: Part::Delete,
            stated: count,
            found: 0,
        });
    }
    if count * size != rest.len() {
        return Err(CodecError::CountMismatch {
            part: Part::Delete,
            stated: count,
            found: rest.len().checked_div(size).unwrap_or(0),
        });
    }
    let spis = if size == 0 {
        Vec::new()
    } else {
        rest.chunks(size).map(<[u8]>::to_vec).collect()
    };
    Ok(DeletePayload {
        doi,
        protocol,
        spi_size,
        spis,
    })
}

fn emit_delete(d: &DeletePayload, out: &mut Vec<u8>) -> Result<(), CodecError> {
    if d.spi_size == 0 && !d.spis.is_empty() {
        return Err(CodecError::Inconsistent {
            part: Part::Delete,
            reason: "zero SPI size with SPIs present",
        });
    }
    if d.spis.iter().any(|s| s.len() != usize::from(d.spi_size)) {
        return Err(CodecError::Inconsistent {
            part: Part::Delete,
            reason: "an SPI's length differs from spi_size",
        });
    }
    out.extend_from_slice(&d.doi.to_be_bytes());
    out.push(d.protocol.0);
    out.push(d.spi_size);
    out.extend_from_slice(&fit_u16(Part::Delete, d.spis.len())?.to_be_bytes());
    for s in &d.spis {
        out.extend_from_slice(s);
    }
    Ok(())
}

fn parse_cfg(body: &[u8]) -> Result<AttributePayload, CodecError> {
    let mut r = Reader::new(body, Part::CfgAttributes);
    let cfg_type = r.u8()?;
    let _reserved = r.u8()?;
    let identifier = r.u16()?;
    let attributes = parse_attributes(r.rest(), Part::CfgAttribute)?;
    Ok(AttributePayload {
        cfg_type,
        identifier,
        attributes,
    })
}

fn parse_nat_oa(body: &[u8], draft: bool) -> Result<Payload, CodecError> {
    let mut r = Reader::new(body, Part::NatOa);
    let id_type = r.u8()?;
    let _reserved = r.take(3)?;
    let data = r.rest();
    let bad = || CodecError::InvalidIdType {
        part: Part::NatOa,
        id_type,
    };
    let address = match IdType(id_type) {
        IdType::IPV4_ADDR => IpAddr::V4(<[u8; 4]>::try_from(data).map_err(|_| bad())?.into()),
        IdType::IPV6_ADDR => IpAddr::V6(<[u8; 16]>::try_from(data).map_err(|_| bad())?.into()),
        _ => return Err(bad()),
    };
    Ok(Payload::NatOa {
        id_type: IdType(id_type),
        address,
        draft,
    })
}

/// Iterates over a chain of generic-header sub-payloads (proposals in an SA, transforms in a
/// proposal) yielding their bodies. Each must announce `kind` as the next payload or 0 for
/// the last; the chain must fill `buf` exactly. Stops after the first error.
struct SubPayloads<'a> {
    r: Reader<'a>,
    part: Part,
    kind: PayloadType,
    done: bool,
}

impl<'a> SubPayloads<'a> {
    fn new(buf: &'a [u8], part: Part, kind: PayloadType) -> Self {
        // An empty buffer is an empty chain; the caller decides whether that is allowed.
        Self {
            r: Reader::new(buf, part),
            part,
            kind,
            done: buf.is_empty(),
        }
    }

    fn next_inner(&mut self) -> Result<&'a [u8], CodecError> {
        let next = self.r.u8()?;
        let _reserved = self.r.u8()?;
        let length = usize::from(self.r.u16()?);
        let available = self.r.remaining() + 4;
        if length < 4 || length > available {
            return Err(CodecError::BadLength {
                part: self.part,
                length,
                available,
            });
        }
        let body = self.r.take(length - 4)?;
        if next == 0 {
            self.done = true;
            let extra = self.r.remaining();
            if extra != 0 {
                return Err(CodecError::TrailingBytes {
                    part: self.part,
                    extra,
                });
            }
        } else if next != self.kind.0 {
            return Err(CodecError::BadNextPayload {
                part: self.part,
                found: PayloadType(next),
            });
        }
        Ok(body)
    }
}

impl<'a> Iterator for SubPayloads<'a> {
    type Item = Result<&'a [u8], CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_inner();
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl Attribute {
    /// A list of data attributes filling `body` exactly, as notification data carries them
    /// (RESPONDER-LIFETIME, RFC 2407 4.6.3.1).
    pub fn parse_list(body: &[u8]) -> Result<Vec<Attribute>, CodecError> {
        parse_attributes(body, Part::SaAttribute)
    }

    /// Append a list of data attributes to `out`.
    pub fn emit_list(attrs: &[Attribute], out: &mut Vec<u8>) -> Result<(), CodecError> {
        emit_attributes(attrs, Part::SaAttribute, out)
    }
}
