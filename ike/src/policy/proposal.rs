//! The SA payloads we offer as initiator.

use super::names::*;
use super::*;
use crate::codec::{
    ipsec_attr, oakley_attr, transform_id, Attribute, Proposal, ProtocolId, SaPayload, Transform,
    DOI_IPSEC, SIT_IDENTITY_ONLY,
};

pub(crate) fn wire_protocol(p: IpsecProtocol) -> ProtocolId {
    match p {
        IpsecProtocol::Esp => ProtocolId::IPSEC_ESP,
        IpsecProtocol::Ah => ProtocolId::IPSEC_AH,
    }
}

/// The Oakley attributes of one phase-1 transform, with the lifetime we offer.
pub(crate) fn phase1_attributes(t: &Phase1Transform, life_seconds: u64) -> Vec<Attribute> {
    let (enc, bits) = encr_oakley(t.encr);
    let mut a = vec![Attribute::basic(oakley_attr::ENCRYPTION_ALGORITHM, enc)];
    if let Some(b) = bits {
        a.push(Attribute::basic(oakley_attr::KEY_LENGTH, b));
    }
    a.push(Attribute::basic(
        oakley_attr::HASH_ALGORITHM,
        t.hash.oakley_id(),
    ));
    a.push(Attribute::basic(
        oakley_attr::AUTHENTICATION_METHOD,
        auth_oakley(t.auth),
    ));
    a.push(Attribute::basic(
        oakley_attr::GROUP_DESCRIPTION,
        t.group.id(),
    ));
    a.push(Attribute::basic(
        oakley_attr::LIFE_TYPE,
        oakley_attr::LIFE_SECONDS,
    ));
    a.push(Attribute::number(oakley_attr::LIFE_DURATION, life_seconds));
    a
}

/// Our phase-1 SA: DOI 1, SIT_IDENTITY_ONLY, one ISAKMP proposal (number 1, empty SPI) with
/// one KEY_IKE transform per configured transform, numbered from 1 in preference order.
pub fn phase1_sa(peer: &Peer) -> SaPayload {
    let transforms = peer
        .transforms
        .iter()
        .enumerate()
        .map(|(i, t)| Transform {
            number: u8::try_from(i + 1).unwrap_or(u8::MAX),
            transform_id: transform_id::KEY_IKE,
            attributes: phase1_attributes(t, t.lifetime.default),
        })
        .collect();
    SaPayload {
        doi: DOI_IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: Vec::new(),
            transforms,
        }],
    }
}

/// The ENCAPSULATION_MODE value for a mode and a UDP encapsulation choice.
pub(crate) fn encap_value(mode: EncapMode, udp_encap: Option<bool>) -> u16 {
    match (mode, udp_encap) {
        (EncapMode::Tunnel, None) => ipsec_attr::ENCAP_TUNNEL,
        (EncapMode::Transport, None) => ipsec_attr::ENCAP_TRANSPORT,
        (EncapMode::Tunnel, Some(true)) => ipsec_attr::ENCAP_UDP_TUNNEL,
        (EncapMode::Transport, Some(true)) => ipsec_attr::ENCAP_UDP_TRANSPORT,
        (EncapMode::Tunnel, Some(false)) => ipsec_attr::ENCAP_UDP_TUNNEL_DRAFT,
        (EncapMode::Transport, Some(false)) => ipsec_attr::ENCAP_UDP_TRANSPORT_DRAFT,
    }
}

/// The IPsec DOI transform id and attributes of one phase-2 transform, with the lifetimes
/// we offer.
pub(crate) fn phase2_transform(
    protocol: IpsecProtocol,
    t: &IpsecTransform,
    life: u64,
    life_kb: Option<u64>,
    udp_encap: Option<bool>,
) -> (u8, Vec<Attribute>) {
    let mut a = vec![
        Attribute::basic(ipsec_attr::SA_LIFE_TYPE, ipsec_attr::LIFE_SECONDS),
        Attribute::number(ipsec_attr::SA_LIFE_DURATION, life),
    ];
    if let Some(kb) = life_kb {
        a.push(Attribute::basic(
            ipsec_attr::SA_LIFE_TYPE,
            ipsec_attr::LIFE_KILOBYTES,
        ));
        a.push(Attribute::number(ipsec_attr::SA_LIFE_DURATION, kb));
    }
    if let Some(g) = t.pfs_group {
        a.push(Attribute::basic(ipsec_attr::GROUP_DESCRIPTION, g.id()));
    }
    a.push(Attribute::basic(
        ipsec_attr::ENCAPSULATION_MODE,
        encap_value(t.encap, udp_encap),
    ));
    if let Some(i) = t.integ {
        a.push(Attribute::basic(
            ipsec_attr::AUTHENTICATION_ALGORITHM,
            integ_ipsec(i),
        ));
    }
    let id = match (protocol, t.cipher) {
        (IpsecProtocol::Esp, Some(c)) => {
            let (id, bits) = esp_transform(c);
            if let Some(b) = bits {
                a.push(Attribute::basic(ipsec_attr::KEY_LENGTH, b));
            }
            id
        }
        // A transform without cipher under ESP is not built by the policy; send ESP NULL.
        (IpsecProtocol::Esp, None) => transform_id::ESP_NULL,
        (IpsecProtocol::Ah, _) => t.integ.map(ah_transform).unwrap_or(transform_id::AH_SHA),
    };
    (id, a)
}

/// What SPIs a phase-2 offer for `conn` needs: (suite index, protocol), in offer order. The
/// engine allocates one inbound SPI per entry (or one per protocol, reused) and answers the
/// `spi` callback of [`phase2_sa`] from them.
pub fn spis_needed(conn: &Connection) -> Vec<(usize, IpsecProtocol)> {
    conn.suites
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.protocols.iter().map(move |p| (i, p.protocol)))
        .collect()
}

/// Our Quick Mode SA for `conn`: one proposal number per suite (suite index + 1), one
/// Proposal payload per protocol of the suite (same number, in the suite's order), each with
/// our inbound SPI `spi(suite_index, protocol)` and its transforms numbered from 1.
/// `udp_encap`: `None` plain ENCAPSULATION_MODE values, `Some(true)` RFC 3947 UDP values,
/// `Some(false)` the draft values (61443/61444), as NAT detection decided.
pub fn phase2_sa(
    conn: &Connection,
    mut spi: impl FnMut(usize, IpsecProtocol) -> [u8; 4],
    udp_encap: Option<bool>,
) -> SaPayload {
    let mut proposals = Vec::new();
    for (si, suite) in conn.suites.iter().enumerate() {
        let number = u8::try_from(si + 1).unwrap_or(u8::MAX);
        for p in &suite.protocols {
            let transforms = p
                .transforms
                .iter()
                .enumerate()
                .map(|(ti, t)| {
                    let (transform_id, attributes) = phase2_transform(
                        p.protocol,
                        t,
                        t.lifetime.default,
                        t.lifetime_kb.map(|k| k.default),
                        udp_encap,
                    );
                    Transform {
                        number: u8::try_from(ti + 1).unwrap_or(u8::MAX),
                        transform_id,
                        attributes,
                    }
                })
                .collect();
            proposals.push(Proposal {
                number,
                protocol: wire_protocol(p.protocol),
                spi: spi(si, p.protocol).to_vec(),
                transforms,
            });
        }
    }
    SaPayload {
        doi: DOI_IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals,
    }
}
