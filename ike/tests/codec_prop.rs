//! Property tests of the ISAKMP codec: round trips of generated valid messages, and no
//! panics on random or mutated input. Test names carry `codec` so `cargo test codec` runs
//! them.

mod codec {
    use ike::codec::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..=max)
    }

    fn attribute() -> impl Strategy<Value = Attribute> {
        prop_oneof![
            (0u16..0x8000, any::<u16>()).prop_map(|(k, v)| Attribute::basic(k, v)),
            (0u16..0x8000, bytes(12)).prop_map(|(kind, b)| Attribute {
                kind,
                value: AttributeValue::Variable(b)
            }),
        ]
    }

    fn transform() -> impl Strategy<Value = Transform> {
        (any::<u8>(), any::<u8>(), vec(attribute(), 0..6)).prop_map(
            |(number, transform_id, attributes)| Transform {
                number,
                transform_id,
                attributes,
            },
        )
    }

    fn proposal() -> impl Strategy<Value = Proposal> {
        (any::<u8>(), any::<u8>(), bytes(16), vec(transform(), 1..4)).prop_map(
            |(number, protocol, spi, transforms)| Proposal {
                number,
                protocol: ProtocolId(protocol),
                spi,
                transforms,
            },
        )
    }

    fn identity() -> impl Strategy<Value = Identity> {
        let v4 = any::<[u8; 4]>().prop_map(Ipv4Addr::from);
        let v6 = any::<[u8; 16]>().prop_map(Ipv6Addr::from);
        prop_oneof![
            v4.clone().prop_map(Identity::Ipv4),
            v6.clone().prop_map(Identity::Ipv6),
            (v4.clone(), v4.clone()).prop_map(|(a, b)| Identity::Ipv4Subnet(a, b)),
            (v6.clone(), v6.clone()).prop_map(|(a, b)| Identity::Ipv6Subnet(a, b)),
            (v4.clone(), v4).prop_map(|(a, b)| Identity::Ipv4Range(a, b)),
            (v6.clone(), v6).prop_map(|(a, b)| Identity::Ipv6Range(a, b)),
            bytes(20).prop_map(Identity::Fqdn),
            bytes(20).prop_map(Identity::UserFqdn),
            bytes(20).prop_map(Identity::DerAsn1Dn),
            bytes(20).prop_map(Identity::DerAsn1Gn),
            bytes(20).prop_map(Identity::KeyId),
        ]
    }

    /// Payload types with no variant of their own (so they parse back as Unknown).
    fn unknown_type() -> impl Strategy<Value = PayloadType> {
        prop_oneof![Just(2u8), Just(3u8), 15u8..=19, 22u8..=129, 132u8..=255].prop_map(PayloadType)
    }

    fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            vec(proposal(), 1..4).prop_map(|proposals| Payload::Sa(SaPayload {
                doi: DOI_IPSEC,
                situation: SIT_IDENTITY_ONLY,
                proposals
            })),
            bytes(40).prop_map(Payload::Ke),
            (any::<u8>(), any::<u16>(), identity()).prop_map(|(protocol, port, identity)| {
                Payload::Id(IdPayload {
                    protocol,
                    port,
                    identity,
                })
            }),
            (any::<u8>(), bytes(30))
                .prop_map(|(encoding, data)| Payload::Cert(CertPayload { encoding, data })),
            (any::<u8>(), bytes(30))
                .prop_map(|(encoding, data)| Payload::CertReq(CertPayload { encoding, data })),
            bytes(32).prop_map(Payload::Hash),
            bytes(32).prop_map(Payload::Sig),
            bytes(32).prop_map(Payload::Nonce),
            (
                any::<u32>(),
                any::<u8>(),
                bytes(16),
                any::<u16>(),
                bytes(16)
            )
                .prop_map(|(doi, protocol, spi, t, data)| Payload::Notify(
                    NotifyPayload {
                        doi,
                        protocol: ProtocolId(protocol),
                        spi,
                        notify_type: NotifyType(t),
                        data,
                    }
                )),
            (any::<u32>(), any::<u8>(), 1u8..=16, 0usize..5).prop_flat_map(
                |(doi, protocol, size, n)| vec(vec(any::<u8>(), usize::from(size)), n).prop_map(
                    move |spis| Payload::Delete(DeletePayload {
                        doi,
                        protocol: ProtocolId(protocol),
                        spi_size: size,
                        spis,
                    })
                )
            ),
            bytes(32).prop_map(Payload::VendorId),
            (any::<u8>(), any::<u16>(), vec(attribute(), 0..6)).prop_map(
                |(cfg_type, identifier, attributes)| Payload::Attribute(AttributePayload {
                    cfg_type,
                    identifier,
                    attributes,
                })
            ),
            (bytes(32), any::<bool>()).prop_map(|(hash, draft)| Payload::NatD { hash, draft }),
            (any::<[u8; 4]>(), any::<bool>()).prop_map(|(a, draft)| Payload::NatOa {
                id_type: IdType::IPV4_ADDR,
                address: IpAddr::V4(a.into()),
                draft,
            }),
            (any::<[u8; 16]>(), any::<bool>()).prop_map(|(a, draft)| Payload::NatOa {
                id_type: IdType::IPV6_ADDR,
                address: IpAddr::V6(a.into()),
                draft,
            }),
            (unknown_type(), bytes(24))
                .prop_map(|(payload_type, body)| Payload::Unknown { payload_type, body }),
        ]
    }

    fn header() -> impl Strategy<Value = Header> {
        (
            any::<[u8; 8]>(),
            any::<[u8; 8]>(),
            0u8..16,
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        )
            .prop_map(|(i, r, minor, exchange, flags, message_id)| Header {
                initiator_cookie: Cookie(i),
                responder_cookie: Cookie(r),
                next_payload: PayloadType::NONE,
                version: 0x10 | minor,
                exchange: ExchangeType(exchange),
                // Message::parse is for cleartext only.
                flags: flags & !flags::ENCRYPTION,
                message_id,
                length: 0,
            })
    }

    fn message() -> impl Strategy<Value = Message> {
        (header(), vec(payload(), 0..8)).prop_map(|(header, payloads)| Message { header, payloads })
    }

    /// A valid message, then a few random byte edits, truncations or extensions.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        (message(), vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6)).prop_filter_map(
            "emit failed",
            |(m, edits)| {
                let mut b = m.emit().ok()?;
                for (pos, val, op) in edits {
                    let at = pos % (b.len() + 1);
                    match op {
                        0 if at < b.len() => b[at] = val,
                        1 => b.truncate(at),
                        2 => b.insert(at, val),
                        _ => b.push(val),
                    }
                }
                Some(b)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn codec_message_round_trip(m in message()) {
            let bytes = m.emit().unwrap();
            let back = Message::parse(&bytes).unwrap();
            prop_assert_eq!(&back.payloads, &m.payloads);
            prop_assert_eq!(back.header.length as usize, bytes.len());
            prop_assert_eq!(
                back.header.next_payload,
                m.payloads.first().map_or(PayloadType::NONE, Payload::payload_type)
            );
            let expected = Header {
                next_payload: back.header.next_payload,
                length: back.header.length,
                ..m.header.clone()
            };
            prop_assert_eq!(&back.header, &expected);
            // emit(parse(x)) == x for emitted bytes.
            prop_assert_eq!(back.emit().unwrap(), bytes);
        }

        #[test]
        fn codec_payload_round_trip(p in payload()) {
            let mut body = Vec::new();
            p.emit_body(&mut body).unwrap();
            let back = Payload::parse(p.payload_type(), &body).unwrap();
            prop_assert_eq!(&back, &p);
            let mut again = Vec::new();
            back.emit_body(&mut again).unwrap();
            prop_assert_eq!(again, body);
        }

        #[test]
        fn codec_split_matches_emit(ps in vec(payload(), 0..8), pad in bytes(16)) {
            let (first, body) = emit_payloads(&ps).unwrap();
            let mut padded = body.clone();
            padded.extend_from_slice(&pad);
            let raw = split_payloads(first, &padded, true).unwrap();
            prop_assert_eq!(raw.len(), ps.len());
            let mut at = 0;
            for (r, p) in raw.iter().zip(&ps) {
                prop_assert_eq!(r.offset, at);
                prop_assert_eq!(r.payload_type, p.payload_type());
                prop_assert_eq!(&r.whole[4..], r.body);
                prop_assert_eq!(&r.parse().unwrap(), p);
                at += r.whole.len();
            }
            prop_assert_eq!(at, body.len());
            prop_assert_eq!(parse_payloads(first, &body, false).unwrap(), ps.clone());
            if !pad.is_empty() {
                prop_assert!(split_payloads(first, &padded, false).is_err());
            }
        }

        #[test]
        fn codec_random_bytes_do_not_panic(b in bytes(600), t in any::<u8>(), trail in any::<bool>()) {
            let _ = Header::parse(&b);
            let _ = Header::parse_prefix(&b);
            let _ = Message::parse(&b);
            let _ = split_payloads(PayloadType(t), &b, trail);
            let _ = parse_payloads(PayloadType(t), &b, trail);
            let _ = Payload::parse(PayloadType(t), &b);
        }

        #[test]
        fn codec_random_bodies_of_each_type_do_not_panic(b in bytes(200)) {
            for t in [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20, 21, 130, 131] {
                if let Ok(p) = Payload::parse(PayloadType(t), &b) {
                    // Whatever parses must emit again, to the same bytes unless reserved
                    // bytes were nonzero.
                    let mut out = Vec::new();
                    prop_assert!(p.emit_body(&mut out).is_ok());
                    prop_assert_eq!(Payload::parse(PayloadType(t), &out).unwrap(), p);
                }
            }
        }

        #[test]
        fn codec_mutated_messages_do_not_panic(b in mutated()) {
            if let Ok(m) = Message::parse(&b) {
                // Anything accepted re-emits and re-parses to the same value.
                let again = m.emit().unwrap();
                prop_assert_eq!(Message::parse(&again).unwrap(), m);
            }
            if b.len() >= HEADER_LEN {
                let _ = split_payloads(PayloadType(b[16]), &b[HEADER_LEN..], true);
                let _ = split_payloads(PayloadType(b[16]), &b[HEADER_LEN..], false);
            }
        }
    }
}
