//! Unit tests with bytes built by hand from the RFC 2408 / 2407 / 3947 layouts.

use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Wraps a body in a generic payload header (next payload, reserved, length).
fn gen(next: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() + 4) as u16;
    let mut v = vec![next, 0];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn header_bytes(next: u8, exchange: u8, flags: u8, length: u32) -> Vec<u8> {
    let mut v = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    v.extend_from_slice(&[next, 0x10, exchange, flags]);
    v.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    v.extend_from_slice(&length.to_be_bytes());
    v
}

/// A phase-1 SA body: DOI 1, SIT_IDENTITY_ONLY, one ISAKMP proposal with two transforms.
fn sa_body() -> Vec<u8> {
    // Transform 1: KEY_IKE, AES (basic), key length 128 (basic), life 86400 (variable, 4).
    let t1 = gen(
        3,
        &[
            1, 1, 0, 0, //
            0x80, 0x01, 0x00, 0x07, //
            0x80, 0x0e, 0x00, 0x80, //
            0x00, 0x0c, 0x00, 0x04, 0x00, 0x01, 0x51, 0x80,
        ],
    );
    // Transform 2: KEY_IKE, 3DES.
    let t2 = gen(0, &[2, 1, 0, 0, 0x80, 0x01, 0x00, 0x05]);
    let mut prop = vec![1, 1, 0, 2]; // proposal 1, ISAKMP, SPI size 0, 2 transforms
    prop.extend_from_slice(&t1);
    prop.extend_from_slice(&t2);
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&gen(0, &prop));
    sa
}

fn sa_value() -> SaPayload {
    SaPayload {
        doi: 1,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: vec![],
            transforms: vec![
                Transform {
                    number: 1,
                    transform_id: 1,
                    attributes: vec![
                        Attribute::basic(1, 7),
                        Attribute::basic(14, 128),
                        Attribute {
                            kind: 12,
                            value: AttributeValue::Variable(vec![0, 1, 0x51, 0x80]),
                        },
                    ],
                },
                Transform {
                    number: 2,
                    transform_id: 1,
                    attributes: vec![Attribute::basic(1, 5)],
                },
            ],
        }],
    }
}

/// Parses, checks the value, re-emits and checks the bytes.
fn round_trip(t: PayloadType, body: &[u8], expected: &Payload) {
    let p = Payload::parse(t, body).unwrap();
    assert_eq!(&p, expected);
    assert_eq!(p.payload_type(), t);
    let mut out = Vec::new();
    p.emit_body(&mut out).unwrap();
    assert_eq!(out, body);
}

/// Every strict prefix of `body` must fail to parse.
fn every_prefix_fails(t: PayloadType, body: &[u8]) {
    for n in 0..body.len() {
        assert!(
            Payload::parse(t, &body[..n]).is_err(),
            "prefix {n} of {t:?} parsed"
        );
    }
}

#[test]
fn header_known_bytes() {
    let b = header_bytes(1, 2, 0, 28);
    let h = Header::parse(&b).unwrap();
    assert_eq!(h.initiator_cookie, Cookie([1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(h.responder_cookie, Cookie::default());
    assert_eq!(h.next_payload, PayloadType::SA);
    assert_eq!(h.version, 0x10);
    assert_eq!(h.exchange, ExchangeType::MAIN_MODE);
    assert_eq!(h.message_id, 0x0102_0304);
    assert_eq!(h.length, 28);
    let mut out = Vec::new();
    h.emit(&mut out);
    assert_eq!(out, b);
}

#[test]
fn header_errors() {
    let b = header_bytes(0, 2, 0, 28);
    for n in 0..28 {
        assert!(matches!(
            Header::parse(&b[..n]),
            Err(CodecError::Truncated { .. })
        ));
    }
    for v in [0x00u8, 0x20, 0x21, 0xf0] {
        let mut bad = b.clone();
        bad[17] = v;
        let e = Header::parse(&bad).unwrap_err();
        assert_eq!(e, CodecError::InvalidMajorVersion { version: v });
        assert_eq!(e.notify_type(), NotifyType::INVALID_MAJOR_VERSION);
    }
    // Minor version is not checked.
    let mut minor = b.clone();
    minor[17] = 0x11;
    assert!(Header::parse(&minor).is_ok());
    // Length field below 28.
    let short = header_bytes(0, 2, 0, 27);
    assert!(matches!(
        Header::parse(&short),
        Err(CodecError::BadLength { .. })
    ));
    // Datagram longer than the header says.
    let mut long = b.clone();
    long.push(0);
    assert_eq!(
        Header::parse(&long),
        Err(CodecError::MessageLength {
            stated: 28,
            actual: 29
        })
    );
    // Header says more than the datagram holds.
    let over = header_bytes(0, 2, 0, 40);
    assert_eq!(
        Header::parse(&over),
        Err(CodecError::MessageLength {
            stated: 40,
            actual: 28
        })
    );
    assert!(Header::parse_prefix(&over).is_ok());
}

#[test]
fn sa_known_bytes() {
    round_trip(PayloadType::SA, &sa_body(), &Payload::Sa(sa_value()));
    every_prefix_fails(PayloadType::SA, &sa_body());
}

#[test]
fn sa_with_spi_and_esp() {
    let t = gen(
        0,
        &[1, 12, 0, 0, 0x80, 0x04, 0x00, 0x01, 0x80, 0x06, 0x01, 0x00],
    );
    let mut p1 = vec![1, 3, 4, 1, 0xde, 0xad, 0xbe, 0xef];
    p1.extend_from_slice(&t);
    let mut p2 = vec![1, 2, 4, 1, 0xca, 0xfe, 0xba, 0xbe];
    p2.extend_from_slice(&gen(0, &[1, 3, 0, 0]));
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&gen(2, &p1));
    sa.extend_from_slice(&gen(0, &p2));
    let p = Payload::parse(PayloadType::SA, &sa).unwrap();
    let Payload::Sa(v) = &p else {
        panic!("not an SA")
    };
    assert_eq!(v.proposals.len(), 2);
    assert_eq!(v.proposals[0].spi, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(v.proposals[0].protocol, ProtocolId::IPSEC_ESP);
    assert_eq!(
        v.proposals[0].transforms[0].attributes[1],
        Attribute::basic(6, 256)
    );
    assert_eq!(v.proposals[1].protocol, ProtocolId::IPSEC_AH);
    assert!(v.proposals[1].transforms[0].attributes.is_empty());
    let mut out = Vec::new();
    p.emit_body(&mut out).unwrap();
    assert_eq!(out, sa);
    every_prefix_fails(PayloadType::SA, &sa);
}

#[test]
fn sa_errors() {
    let good = sa_body();
    let parse = |b: &[u8]| Payload::parse(PayloadType::SA, b);
    // DOI and situation.
    let mut b = good.clone();
    b[3] = 2;
    let e = parse(&b).unwrap_err();
    assert_eq!(e, CodecError::Unsupported(Unsupported::Doi(2)));
    assert_eq!(e.notify_type(), NotifyType::DOI_NOT_SUPPORTED);
    let mut b = good.clone();
    b[7] = 3; // SIT_IDENTITY_ONLY | SIT_SECRECY
    let e = parse(&b).unwrap_err();
    assert_eq!(e, CodecError::Unsupported(Unsupported::Situation(3)));
    assert_eq!(e.notify_type(), NotifyType::SITUATION_NOT_SUPPORTED);
    // No proposals.
    let e = parse(&good[..8]).unwrap_err();
    assert_eq!(e.notify_type(), NotifyType::BAD_PROPOSAL_SYNTAX);
    // Proposal's next payload neither 2 nor 0.
    let mut b = good.clone();
    b[8] = 3;
    assert!(matches!(
        parse(&b),
        Err(CodecError::BadNextPayload {
            part: Part::Proposal,
            ..
        })
    ));
    // Proposal says more follow but nothing does.
    let mut b = good.clone();
    b[8] = 2;
    assert!(matches!(
        parse(&b),
        Err(CodecError::Truncated {
            part: Part::Proposal,
            ..
        })
    ));
    // Transform count too high and too low.
    for (count, found) in [(3u8, 2usize), (1, 2)] {
        let mut b = good.clone();
        b[15] = count;
        let e = parse(&b).unwrap_err();
        assert_eq!(
            e,
            CodecError::CountMismatch {
                part: Part::Transform,
                stated: count.into(),
                found
            }
        );
        assert_eq!(e.notify_type(), NotifyType::BAD_PROPOSAL_SYNTAX);
    }
    // First transform's next payload not 3 or 0.
    let mut b = good.clone();
    b[16] = 2;
    assert!(matches!(
        parse(&b),
        Err(CodecError::BadNextPayload {
            part: Part::Transform,
            ..
        })
    ));
    // Proposal length too short (below 4) and too long.
    for len in [0u16, 3, 200] {
        let mut b = good.clone();
        b[10..12].copy_from_slice(&len.to_be_bytes());
        let e = parse(&b).unwrap_err();
        assert!(
            matches!(
                e,
                CodecError::BadLength {
                    part: Part::Proposal,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.notify_type(), NotifyType::BAD_PROPOSAL_SYNTAX);
    }
    // Trailing bytes after the last proposal.
    let mut b = good.clone();
    b.extend_from_slice(&[0, 0]);
    assert!(matches!(
        parse(&b),
        Err(CodecError::TrailingBytes {
            part: Part::Proposal,
            ..
        })
    ));
    // Variable attribute length beyond the transform: life duration length 4 -> 9.
    let mut b = good.clone();
    let at = 34; // SA 8, proposal 8, transform 8, two basic attributes 8, type 2
    assert_eq!(&b[at - 2..at + 2], &[0x00, 0x0c, 0x00, 0x04]);
    b[at + 1] = 9;
    assert!(matches!(
        parse(&b),
        Err(CodecError::BadLength {
            part: Part::SaAttribute,
            ..
        })
    ));
    // Reserved bytes in generic headers are accepted.
    let mut b = good.clone();
    b[9] = 0xff;
    assert!(parse(&b).is_ok());
}

#[test]
fn sa_limits() {
    // 65 proposals with one empty transform each.
    let mut one = vec![1, 1, 0, 1];
    one.extend_from_slice(&gen(0, &[1, 1, 0, 0]));
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    for i in 0..65 {
        sa.extend_from_slice(&gen(if i == 64 { 0 } else { 2 }, &one));
    }
    assert_eq!(
        Payload::parse(PayloadType::SA, &sa),
        Err(CodecError::TooMany {
            part: Part::Proposal,
            limit: MAX_PROPOSALS
        })
    );
    // 65 transforms in one proposal (count field 65).
    let mut prop = vec![1, 1, 0, 65];
    for i in 0..65 {
        prop.extend_from_slice(&gen(if i == 64 { 0 } else { 3 }, &[1, 1, 0, 0]));
    }
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&gen(0, &prop));
    assert_eq!(
        Payload::parse(PayloadType::SA, &sa),
        Err(CodecError::TooMany {
            part: Part::Transform,
            limit: MAX_TRANSFORMS
        })
    );
    // 257 basic attributes in one transform.
    let mut t = vec![1, 1, 0, 0];
    for _ in 0..257 {
        t.extend_from_slice(&[0x80, 0x01, 0x00, 0x07]);
    }
    let mut prop = vec![1, 1, 0, 1];
    prop.extend_from_slice(&gen(0, &t));
    let mut sa = vec![0, 0, 0, 1, 0, 0, 0, 1];
    sa.extend_from_slice(&gen(0, &prop));
    assert_eq!(
        Payload::parse(PayloadType::SA, &sa),
        Err(CodecError::TooMany {
            part: Part::SaAttribute,
            limit: MAX_ATTRIBUTES
        })
    );
}

#[test]
fn opaque_payloads() {
    let data = [9u8, 8, 7, 6, 5];
    round_trip(PayloadType::KE, &data, &Payload::Ke(data.to_vec()));
    round_trip(PayloadType::HASH, &data, &Payload::Hash(data.to_vec()));
    round_trip(PayloadType::SIG, &data, &Payload::Sig(data.to_vec()));
    round_trip(PayloadType::NONCE, &data, &Payload::Nonce(data.to_vec()));
    round_trip(
        PayloadType::VENDOR_ID,
        &data,
        &Payload::VendorId(data.to_vec()),
    );
    round_trip(
        PayloadType::NAT_D,
        &data,
        &Payload::NatD {
            hash: data.to_vec(),
            draft: false,
        },
    );
    round_trip(
        PayloadType::NAT_D_DRAFT,
        &data,
        &Payload::NatD {
            hash: data.to_vec(),
            draft: true,
        },
    );
    round_trip(
        PayloadType(77),
        &data,
        &Payload::Unknown {
            payload_type: PayloadType(77),
            body: data.to_vec(),
        },
    );
    round_trip(PayloadType::KE, &[], &Payload::Ke(vec![]));
}

#[test]
fn id_known_bytes() {
    let v4 = Ipv4Addr::new(192, 0, 2, 1);
    let m4 = Ipv4Addr::new(255, 255, 255, 0);
    let a6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let b6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xff);
    let cases: Vec<(Vec<u8>, Identity)> = vec![
        (
            [&[1u8, 17, 1, 244][..], &v4.octets()].concat(),
            Identity::Ipv4(v4),
        ),
        (
            [&[5u8, 17, 1, 244][..], &a6.octets()].concat(),
            Identity::Ipv6(a6),
        ),
        (
            [&[4u8, 17, 1, 244][..], &v4.octets(), &m4.octets()].concat(),
            Identity::Ipv4Subnet(v4, m4),
        ),
        (
            [&[6u8, 17, 1, 244][..], &a6.octets(), &b6.octets()].concat(),
            Identity::Ipv6Subnet(a6, b6),
        ),
        (
            [&[7u8, 17, 1, 244][..], &v4.octets(), &m4.octets()].concat(),
            Identity::Ipv4Range(v4, m4),
        ),
        (
            [&[8u8, 17, 1, 244][..], &a6.octets(), &b6.octets()].concat(),
            Identity::Ipv6Range(a6, b6),
        ),
        (
            [&[2u8, 17, 1, 244][..], b"a.example"].concat(),
            Identity::Fqdn(b"a.example".to_vec()),
        ),
        (
            [&[3u8, 17, 1, 244][..], b"u@x"].concat(),
            Identity::UserFqdn(b"u@x".to_vec()),
        ),
        (
            [&[9u8, 17, 1, 244][..], &[0x30, 0]].concat(),
            Identity::DerAsn1Dn(vec![0x30, 0]),
        ),
        (
            [&[10u8, 17, 1, 244][..], &[0x30, 1]].concat(),
            Identity::DerAsn1Gn(vec![0x30, 1]),
        ),
        (
            [&[11u8, 17, 1, 244][..], &[0xff]].concat(),
            Identity::KeyId(vec![0xff]),
        ),
    ];
    for (bytes, identity) in cases {
        round_trip(
            PayloadType::ID,
            &bytes,
            &Payload::Id(IdPayload {
                protocol: 17,
                port: 500,
                identity,
            }),
        );
    }
}

#[test]
fn id_errors() {
    let parse = |b: &[u8]| Payload::parse(PayloadType::ID, b);
    every_prefix_fails(PayloadType::ID, &[1, 0, 0, 0, 10, 0, 0, 1]);
    // Wrong lengths for the fixed-size types.
    for (t, good) in [(1u8, 4usize), (5, 16), (4, 8), (6, 32), (7, 8), (8, 32)] {
        for len in [0, good - 1, good + 1, good * 2] {
            let mut b = vec![t, 0, 0, 0];
            b.resize(4 + len, 0);
            let e = parse(&b).unwrap_err();
            assert_eq!(
                e,
                CodecError::InvalidIdType {
                    part: Part::Id,
                    id_type: t
                }
            );
            assert_eq!(e.notify_type(), NotifyType::INVALID_ID_INFORMATION);
        }
    }
    for t in [0u8, 12, 255] {
        let e = parse(&[t, 0, 0, 0, 1, 2, 3, 4]).unwrap_err();
        assert_eq!(e.notify_type(), NotifyType::INVALID_ID_INFORMATION);
    }
    let e = parse(&[1, 0, 0]).unwrap_err();
    assert_eq!(e.notify_type(), NotifyType::INVALID_ID_INFORMATION);
}

#[test]
fn cert_and_cr() {
    let body = [4u8, 0x30, 0x82, 0x01];
    let c = CertPayload {
        encoding: 4,
        data: vec![0x30, 0x82, 0x01],
    };
    round_trip(PayloadType::CERT, &body, &Payload::Cert(c.clone()));
    round_trip(PayloadType::CR, &body, &Payload::CertReq(c));
    round_trip(
        PayloadType::CR,
        &[4],
        &Payload::CertReq(CertPayload {
            encoding: 4,
            data: vec![],
        }),
    );
    assert!(Payload::parse(PayloadType::CERT, &[]).is_err());
    assert!(Payload::parse(PayloadType::CR, &[]).is_err());
}

#[test]
fn notify_known_bytes() {
    // R-U-THERE with a 16-byte ISAKMP SPI (the cookies) and a 4-byte sequence number.
    let mut b = vec![0, 0, 0, 1, 1, 16, 0x8d, 0x28];
    b.extend(1..=16u8);
    b.extend_from_slice(&[0, 0, 0, 7]);
    let n = NotifyPayload {
        doi: 1,
        protocol: ProtocolId::ISAKMP,
        spi: (1..=16).collect(),
        notify_type: NotifyType::R_U_THERE,
        data: vec![0, 0, 0, 7],
    };
    round_trip(PayloadType::NOTIFY, &b, &Payload::Notify(n));
    // Every cut inside the fixed part or the SPI fails; cuts in the data are just less data.
    every_prefix_fails(PayloadType::NOTIFY, &b[..24]);
    // SPI size larger than what is there.
    let e = Payload::parse(PayloadType::NOTIFY, &[0, 0, 0, 1, 1, 16, 0, 14, 1, 2]).unwrap_err();
    assert!(matches!(
        e,
        CodecError::Truncated {
            part: Part::Notify,
            ..
        }
    ));
    assert_eq!(e.notify_type(), NotifyType::PAYLOAD_MALFORMED);
}

#[test]
fn delete_known_bytes() {
    let b = [0, 0, 0, 1, 3, 4, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8];
    let d = DeletePayload {
        doi: 1,
        protocol: ProtocolId::IPSEC_ESP,
        spi_size: 4,
        spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
    };
    round_trip(PayloadType::DELETE, &b, &Payload::Delete(d));
    every_prefix_fails(PayloadType::DELETE, &b);
    let parse = |b: &[u8]| Payload::parse(PayloadType::DELETE, b);
    // One byte too many.
    let mut long = b.to_vec();
    long.push(9);
    assert!(matches!(
        parse(&long),
        Err(CodecError::CountMismatch { .. })
    ));
    // Count says 65535 with 8 bytes: rejected without allocating for 65535 SPIs.
    let mut big = b.to_vec();
    big[6..8].copy_from_slice(&[0xff, 0xff]);
    assert!(matches!(
        parse(&big),
        Err(CodecError::CountMismatch { stated: 65535, .. })
    ));
    // Zero SPI size with a nonzero count.
    assert!(matches!(
        parse(&[0, 0, 0, 1, 3, 0, 0, 5]),
        Err(CodecError::CountMismatch { .. })
    ));
    // Zero SPIs is fine.
    assert!(parse(&[0, 0, 0, 1, 3, 4, 0, 0]).is_ok());
}

#[test]
fn attribute_payload_known_bytes() {
    // XAUTH request: type REQUEST, id 0x1234, XAUTH-USER-NAME and XAUTH-USER-PASSWORD empty,
    // XAUTH-TYPE basic 0.
    let b = [
        1, 0, 0x12, 0x34, 0x40, 0x8a, 0, 0, 0x40, 0x8b, 0, 0, 0xc0, 0x88, 0, 0,
    ];
    let a = AttributePayload {
        cfg_type: cfg_type::REQUEST,
        identifier: 0x1234,
        attributes: vec![
            Attribute {
                kind: 0x408a,
                value: AttributeValue::Variable(vec![]),
            },
            Attribute {
                kind: 0x408b,
                value: AttributeValue::Variable(vec![]),
            },
            Attribute::basic(0x4088, 0),
        ],
    };
    round_trip(PayloadType::ATTRIBUTE, &b, &Payload::Attribute(a));
    every_prefix_fails(PayloadType::ATTRIBUTE, &b[..4]);
    // A half attribute at the end.
    assert!(Payload::parse(PayloadType::ATTRIBUTE, &b[..14]).is_err());
    // A variable attribute announcing more than there is.
    let e = Payload::parse(PayloadType::ATTRIBUTE, &[1, 0, 0, 0, 0, 1, 0, 5, 1]).unwrap_err();
    assert!(matches!(
        e,
        CodecError::BadLength {
            part: Part::CfgAttribute,
            length: 5,
            ..
        }
    ));
}

#[test]
fn nat_oa_known_bytes() {
    let v4 = [1u8, 0, 0, 0, 10, 1, 2, 3];
    round_trip(
        PayloadType::NAT_OA,
        &v4,
        &Payload::NatOa {
            id_type: IdType::IPV4_ADDR,
            address: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            draft: false,
        },
    );
    let mut v6 = vec![5u8, 0, 0, 0];
    v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    round_trip(
        PayloadType::NAT_OA_DRAFT,
        &v6,
        &Payload::NatOa {
            id_type: IdType::IPV6_ADDR,
            address: IpAddr::V6(Ipv6Addr::LOCALHOST),
            draft: true,
        },
    );
    every_prefix_fails(PayloadType::NAT_OA, &v4);
    every_prefix_fails(PayloadType::NAT_OA, &v6);
    let parse = |b: &[u8]| Payload::parse(PayloadType::NAT_OA, b);
    assert!(parse(&[1, 0, 0, 0, 10, 1, 2, 3, 4]).is_err());
    assert!(parse(&[2, 0, 0, 0, 10, 1, 2, 3]).is_err());
    assert!(parse(&[5, 0, 0, 0, 10, 1, 2, 3]).is_err());
}

/// An Aggressive Mode first message: SA, KE, NONCE, ID, VID.
fn message_bytes() -> Vec<u8> {
    let mut body = gen(4, &sa_body());
    body.extend_from_slice(&gen(10, &[0xaa; 8]));
    body.extend_from_slice(&gen(5, &[0xbb; 16]));
    body.extend_from_slice(&gen(13, &[1, 17, 1, 244, 192, 0, 2, 1]));
    body.extend_from_slice(&gen(0, b"vendor"));
    let mut m = header_bytes(1, 4, 0, (28 + body.len()) as u32);
    m.extend_from_slice(&body);
    m
}

#[test]
fn message_known_bytes() {
    let b = message_bytes();
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.header.exchange, ExchangeType::AGGRESSIVE);
    let types: Vec<_> = m.payloads.iter().map(Payload::payload_type).collect();
    assert_eq!(
        types,
        [
            PayloadType::SA,
            PayloadType::KE,
            PayloadType::NONCE,
            PayloadType::ID,
            PayloadType::VENDOR_ID
        ]
    );
    assert_eq!(m.payloads[0], Payload::Sa(sa_value()));
    assert_eq!(m.emit().unwrap(), b);
    // Emit recomputes next payload and length.
    let mut stale = m.clone();
    stale.header.length = 0;
    stale.header.next_payload = PayloadType(99);
    assert_eq!(stale.emit().unwrap(), b);
}

#[test]
fn split_offsets_and_slices() {
    let b = message_bytes();
    let body = &b[28..];
    let raw = split_payloads(PayloadType::SA, body, false).unwrap();
    assert_eq!(raw.len(), 5);
    let mut at = 0;
    for r in &raw {
        assert_eq!(r.offset, at);
        assert_eq!(r.whole, &body[at..at + r.whole.len()]);
        assert_eq!(r.body, &r.whole[4..]);
        at += r.whole.len();
    }
    assert_eq!(at, body.len());
    assert_eq!(raw[0].end(), raw[1].offset);
    assert_eq!(raw[4].end(), body.len());
    assert_eq!(raw[1].payload_type, PayloadType::KE);
    assert_eq!(raw[1].next_payload(), PayloadType::NONCE);
    assert_eq!(raw[0].body, &sa_body()[..]);
    // Trailing padding only with allow_trailing.
    let mut padded = body.to_vec();
    padded.extend_from_slice(&[0; 7]);
    assert_eq!(split_payloads(PayloadType::SA, &padded, true).unwrap(), raw);
    assert_eq!(
        split_payloads(PayloadType::SA, &padded, false),
        Err(CodecError::TrailingBytes {
            part: Part::GenericHeader,
            extra: 7
        })
    );
    // Empty chain.
    assert_eq!(
        split_payloads(PayloadType::NONE, &[], false).unwrap(),
        vec![]
    );
    assert!(split_payloads(PayloadType::NONE, &[0], false).is_err());
    assert!(split_payloads(PayloadType::NONE, &[0], true)
        .unwrap()
        .is_empty());
}

#[test]
fn split_errors() {
    let b = message_bytes();
    let body = &b[28..];
    for n in 0..body.len() {
        assert!(
            split_payloads(PayloadType::SA, &body[..n], false).is_err(),
            "prefix {n}"
        );
        assert!(
            split_payloads(PayloadType::SA, &body[..n], true).is_err(),
            "prefix {n}"
        );
    }
    for len in [0u16, 1, 3] {
        let mut bad = body.to_vec();
        bad[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            split_payloads(PayloadType::SA, &bad, true),
            Err(CodecError::BadLength {
                part: Part::GenericHeader,
                ..
            })
        ));
    }
    let mut too_long = body.to_vec();
    too_long[2..4].copy_from_slice(&((body.len() + 1) as u16).to_be_bytes());
    assert!(matches!(
        split_payloads(PayloadType::SA, &too_long, true),
        Err(CodecError::BadLength { .. })
    ));
    // Too many payloads.
    let mut many = Vec::new();
    for _ in 0..MAX_PAYLOADS {
        many.extend_from_slice(&gen(13, &[]));
    }
    many.extend_from_slice(&gen(0, &[]));
    assert_eq!(
        split_payloads(PayloadType::VENDOR_ID, &many, false),
        Err(CodecError::TooMany {
            part: Part::GenericHeader,
            limit: MAX_PAYLOADS
        })
    );
    assert_eq!(
        split_payloads(PayloadType::VENDOR_ID, &many[4..], false)
            .unwrap()
            .len(),
        128
    );
}

#[test]
fn message_errors() {
    let b = message_bytes();
    // Truncated anywhere: the header length then disagrees.
    for n in 0..b.len() {
        assert!(Message::parse(&b[..n]).is_err(), "prefix {n}");
    }
    // Truncated with the header length fixed up: the chain fails instead.
    for n in 28..b.len() {
        let mut cut = b[..n].to_vec();
        cut[24..28].copy_from_slice(&(n as u32).to_be_bytes());
        assert!(Message::parse(&cut).is_err(), "prefix {n}");
    }
    let mut enc = b.clone();
    enc[19] = flags::ENCRYPTION;
    assert_eq!(Message::parse(&enc), Err(CodecError::Encrypted));
    let mut ver = b.clone();
    ver[17] = 0x20;
    assert_eq!(
        Message::parse(&ver).unwrap_err().notify_type(),
        NotifyType::INVALID_MAJOR_VERSION
    );
}

#[test]
fn emit_with_body_sets_length_and_next() {
    let h = Header::parse(&header_bytes(0, 32, 1, 28)).unwrap();
    let out = Message::emit_with_body(&h, PayloadType::HASH, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(out.len(), 36);
    let back = Header::parse(&out).unwrap();
    assert_eq!(back.next_payload, PayloadType::HASH);
    assert_eq!(back.length, 36);
    assert_eq!(back.flags, 1);
    assert_eq!(&out[28..], &[1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn emit_rejects_overflowing_lengths() {
    let mut out = vec![0xee];
    let huge = Payload::Ke(vec![0; 65532]);
    assert!(matches!(
        huge.emit(PayloadType::NONE, &mut out),
        Err(CodecError::TooLong {
            part: Part::Ke,
            length: 65536,
            ..
        })
    ));
    assert_eq!(out, [0xee], "output restored after a failed emit");
    // 65531 bytes of body is the largest that fits.
    Payload::Ke(vec![0; 65531])
        .emit(PayloadType::NONE, &mut out)
        .unwrap();
    assert_eq!(&out[1..5], &[0, 0, 0xff, 0xff]);

    let attr = Attribute {
        kind: 1,
        value: AttributeValue::Variable(vec![0; 65536]),
    };
    let cfg = Payload::Attribute(AttributePayload {
        cfg_type: 1,
        identifier: 0,
        attributes: vec![attr],
    });
    let mut out = Vec::new();
    assert!(matches!(
        cfg.emit_body(&mut out),
        Err(CodecError::TooLong { .. })
    ));
    assert!(out.is_empty());

    let mut sa = sa_value();
    sa.proposals[0].spi = vec![0; 256];
    assert!(matches!(
        Payload::Sa(sa).emit_body(&mut out),
        Err(CodecError::TooLong { .. })
    ));
    let mut sa = sa_value();
    let t = sa.proposals[0].transforms[0].clone();
    sa.proposals[0].transforms = vec![t; 256];
    assert!(matches!(
        Payload::Sa(sa).emit_body(&mut out),
        Err(CodecError::TooLong { .. })
    ));
    let n = Payload::Notify(NotifyPayload {
        doi: 1,
        protocol: ProtocolId::ISAKMP,
        spi: vec![0; 256],
        notify_type: NotifyType::INITIAL_CONTACT,
        data: vec![],
    });
    assert!(matches!(
        n.emit_body(&mut out),
        Err(CodecError::TooLong { .. })
    ));
    // A list whose later payload fails leaves nothing behind.
    let mut out = Vec::new();
    assert!(emit_payloads_into(&[Payload::Nonce(vec![1]), huge], &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn emit_rejects_inconsistent_fields() {
    let mut out = Vec::new();
    let d = DeletePayload {
        doi: 1,
        protocol: ProtocolId::IPSEC_ESP,
        spi_size: 4,
        spis: vec![vec![1]],
    };
    assert!(matches!(
        Payload::Delete(d).emit_body(&mut out),
        Err(CodecError::Inconsistent { .. })
    ));
    let d = DeletePayload {
        doi: 1,
        protocol: ProtocolId::IPSEC_ESP,
        spi_size: 0,
        spis: vec![vec![]],
    };
    assert!(matches!(
        Payload::Delete(d).emit_body(&mut out),
        Err(CodecError::Inconsistent { .. })
    ));
    let oa = Payload::NatOa {
        id_type: IdType::IPV6_ADDR,
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        draft: false,
    };
    assert!(matches!(
        oa.emit_body(&mut out),
        Err(CodecError::Inconsistent { .. })
    ));
    let af = Payload::Attribute(AttributePayload {
        cfg_type: 1,
        identifier: 0,
        attributes: vec![Attribute::basic(0x8001, 1)],
    });
    assert!(matches!(
        af.emit_body(&mut out),
        Err(CodecError::Inconsistent { .. })
    ));
    let zero = Payload::Unknown {
        payload_type: PayloadType::NONE,
        body: vec![],
    };
    assert!(zero.emit(PayloadType::NONE, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn errors_display_and_notify() {
    let e = CodecError::Truncated {
        part: Part::Nonce,
        needed: 4,
        available: 1,
    };
    assert!(e.to_string().contains("Nonce"));
    assert_eq!(e.notify_type(), NotifyType::PAYLOAD_MALFORMED);
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(!boxed.to_string().is_empty());
}

#[test]
fn quick_mode_hash_layout() {
    // The engine's path: emit the payloads after HASH, prepend HASH naming the first of
    // them, pad as a cipher would, then recover exactly the hashed span on receipt.
    let rest = [Payload::Sa(sa_value()), Payload::Nonce(vec![7; 16])];
    let (first, rest_bytes) = emit_payloads(&rest).unwrap();
    let mut body = Vec::new();
    Payload::Hash(vec![0x55; 20])
        .emit(first, &mut body)
        .unwrap();
    body.extend_from_slice(&rest_bytes);
    body.extend_from_slice(&[0, 0, 0, 3]);
    let raw = split_payloads(PayloadType::HASH, &body, true).unwrap();
    assert_eq!(raw.len(), 3);
    let last = raw.last().unwrap();
    assert_eq!(&body[raw[0].end()..last.end()], &rest_bytes[..]);
    assert_eq!(raw[1].body, &sa_body()[..]);
    assert_eq!(
        parse_payloads(PayloadType::HASH, &body, true).unwrap()[1..],
        rest
    );
}
