//! SA offers, the responder's choice, the initiator's check of the reply, the Mismatch log
//! line, and the selection of peer and connection.

use ike::codec::*;
use ike::conf::Conf;
use ike::crypto::{EncrAlg, Group};
use ike::policy::*;
use std::net::{IpAddr, Ipv4Addr};

const CONF: &str = "\
[Phase 1]
10.1.0.2=\t\tpeer-west
Default=\t\tanyone

[Phase 2]
Connections=\t\tIPsec-east-west,IPsec-bundle
Passive-connections=\tIPsec-hosts,IPsec-trp

[peer-west]
Phase=\t\t\t1
Address=\t\t10.1.0.2
Local-address=\t\t10.1.0.1
Configuration=\t\tmm
Authentication=\t\tsecret
Remote-ID=\t\twest-fqdn

[west-fqdn]
ID-type=\t\tFQDN
Name=\t\t\twest.example.net

[anyone]
Phase=\t\t\t1
Authentication=\t\tother-secret

[mm]
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-256-SHA2-256-GRP14,3DES-SHA

[IPsec-east-west]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-west
Configuration=\t\tqm
Local-ID=\t\tnet-east
Remote-ID=\t\tnet-west

[IPsec-hosts]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-west
Configuration=\t\tqm

[IPsec-trp]
Phase=\t\t\t2
ISAKMP-peer=\t\tanyone
Configuration=\t\tqm-trp

[IPsec-bundle]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-west
Configuration=\t\tqm-bundle
Local-ID=\t\thost-east
Remote-ID=\t\tnet-west-web

[net-east]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t192.168.10.0
Netmask=\t\t255.255.255.0

[net-west]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t192.168.11.0
Netmask=\t\t255.255.255.0

[host-east]
ID-type=\t\tIPV4_ADDR
Address=\t\t192.168.20.1

[net-west-web]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t192.168.21.0
Netmask=\t\t24
Protocol=\t\ttcp
Port=\t\t\t80

[qm]
Suites=\t\t\tQM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE,QM-ESP-3DES-SHA-SUITE

[qm-trp]
Suites=\t\t\tQM-ESP-TRP-AES-GCM-128-SUITE

[qm-bundle]
Suites=\t\t\tbundle,QM-ESP-AES-GCM-256-PFS-GRP19-SUITE

[bundle]
Protocols=\t\tb-ah,b-esp

[b-ah]
PROTOCOL_ID=\t\tIPSEC_AH
Transforms=\t\tb-ah-xf

[b-ah-xf]
TRANSFORM_ID=\t\tSHA2_256
GROUP_DESCRIPTION=\tMODP_2048
Life=\t\t\tL30m,L1GB

[b-esp]
PROTOCOL_ID=\t\tIPSEC_ESP
Transforms=\t\tb-esp-xf

[b-esp-xf]
TRANSFORM_ID=\t\tAES
KEY_LENGTH=\t\t256
AUTHENTICATION_ALGORITHM=\tHMAC_SHA2_256
GROUP_DESCRIPTION=\tMODP_2048
Life=\t\t\tL30m

[L30m]
LIFE_TYPE=\t\tSECONDS
LIFE_DURATION=\t\t1800,600:3600

[L1GB]
LIFE_TYPE=\t\tKILOBYTES
LIFE_DURATION=\t\t1000000,1000:2000000
";

fn policy() -> Policy {
    Policy::from_conf(&Conf::parse(CONF).unwrap()).unwrap()
}

fn b(kind: u16, v: u16) -> Attribute {
    Attribute::basic(kind, v)
}

fn p1_transform(
    number: u8,
    enc: u16,
    bits: Option<u16>,
    hash: u16,
    group: u16,
    life: Option<u64>,
) -> Transform {
    let mut attributes = vec![b(oakley_attr::ENCRYPTION_ALGORITHM, enc)];
    if let Some(k) = bits {
        attributes.push(b(oakley_attr::KEY_LENGTH, k));
    }
    attributes.push(b(oakley_attr::HASH_ALGORITHM, hash));
    attributes.push(b(
        oakley_attr::AUTHENTICATION_METHOD,
        oakley_attr::AUTH_PRE_SHARED,
    ));
    attributes.push(b(oakley_attr::GROUP_DESCRIPTION, group));
    if let Some(l) = life {
        attributes.push(b(oakley_attr::LIFE_TYPE, oakley_attr::LIFE_SECONDS));
        attributes.push(Attribute::number(oakley_attr::LIFE_DURATION, l));
    }
    Transform {
        number,
        transform_id: transform_id::KEY_IKE,
        attributes,
    }
}

fn p1_offer(transforms: Vec<Transform>) -> SaPayload {
    SaPayload {
        doi: DOI_IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: vec![],
            transforms,
        }],
    }
}

#[test]
fn phase1_sa_layout() {
    let p = policy();
    let sa = phase1_sa(p.peer("peer-west").unwrap());
    assert_eq!((sa.doi, sa.situation), (1, 1));
    assert_eq!(sa.proposals.len(), 1);
    let pr = &sa.proposals[0];
    assert_eq!(
        (pr.number, pr.protocol, pr.spi.len()),
        (1, ProtocolId::ISAKMP, 0)
    );
    assert_eq!(pr.transforms.len(), 2);
    assert_eq!(
        pr.transforms[0],
        p1_transform(1, 7, Some(256), 4, 14, Some(3600))
    );
    assert_eq!(pr.transforms[1], p1_transform(2, 5, None, 2, 2, Some(3600)));
}

#[test]
fn choose_phase1_own_offer_and_peer_order() {
    let p = policy();
    let ours = &p.peer("peer-west").unwrap().transforms;
    let c = choose_phase1(&phase1_sa(p.peer("peer-west").unwrap()), ours).unwrap();
    assert_eq!((c.proposal_number, c.transform_number), (1, 1));
    assert_eq!(c.transform.encr, EncrAlg::AesCbc256);
    assert_eq!(
        c.lifetime,
        Lifetime {
            seconds: 3600,
            kilobytes: None
        }
    );
    assert!(!c.responder_lifetime);

    // The peer's order wins: its first acceptable transform is 3DES.
    let offer = p1_offer(vec![
        p1_transform(1, 7, Some(128), 2, 2, Some(28800)), // AES-128: not ours
        p1_transform(2, 5, None, 2, 2, Some(28800)),
        p1_transform(3, 7, Some(256), 4, 14, Some(28800)),
    ]);
    let c = choose_phase1(&offer, ours).unwrap();
    assert_eq!(c.transform_number, 2);
    assert_eq!(c.transform.name, "3DES-SHA");
    assert_eq!(c.lifetime.seconds, 28800);
    // Absent lifetime: our default.
    let c = choose_phase1(&p1_offer(vec![p1_transform(1, 5, None, 2, 2, None)]), ours).unwrap();
    assert_eq!(c.lifetime.seconds, 3600);
}

#[test]
fn choose_phase1_lifetime_range() {
    let p = policy();
    let ours = &p.peer("peer-west").unwrap().transforms;
    // Above our maximum (sent as a 4-byte variable attribute): accepted, cut, notify.
    let c = choose_phase1(
        &p1_offer(vec![p1_transform(1, 5, None, 2, 2, Some(100_000))]),
        ours,
    )
    .unwrap();
    assert_eq!(c.lifetime.seconds, 86400);
    assert!(c.responder_lifetime);
    // Below our minimum: refused, and said so.
    let e = choose_phase1(
        &p1_offer(vec![p1_transform(1, 5, None, 2, 2, Some(30))]),
        ours,
    )
    .unwrap_err();
    assert!(e.to_string().contains("below our minimum 60"), "{e}");
    // At the edges.
    for l in [60, 86400] {
        let c = choose_phase1(
            &p1_offer(vec![p1_transform(1, 5, None, 2, 2, Some(l))]),
            ours,
        )
        .unwrap();
        assert_eq!((c.lifetime.seconds, c.responder_lifetime), (l, false));
    }
}

#[test]
fn mismatch_says_what_each_side_offered() {
    let ours = vec![Phase1Transform {
        name: "AES-256-SHA2-256-GRP14".into(),
        encr: EncrAlg::AesCbc256,
        hash: ike::crypto::HashAlg::Sha256,
        group: Group::Modp2048,
        auth: AuthMethod::PreShared,
        lifetime: LifetimeRange {
            default: 3600,
            min: 60,
            max: 86400,
        },
    }];
    let offer = p1_offer(vec![p1_transform(1, 7, Some(128), 2, 2, Some(28800))]);
    let e = choose_phase1(&offer, &ours).unwrap_err();
    assert_eq!(e.theirs, vec!["AES-128-SHA1-MODP1024-PSK life 28800s"]);
    assert_eq!(
        e.ours,
        vec!["AES-256-SHA2_256-MODP2048-PSK life 60..86400s"]
    );
    assert_eq!(
        e.to_string(),
        "no proposal chosen: peer offered [AES-128-SHA1-MODP1024-PSK life 28800s], \
         we accept [AES-256-SHA2_256-MODP2048-PSK life 60..86400s]: \
         AES-128-SHA1-MODP1024-PSK life 28800s: cipher AES-128 != AES-256, hash SHA1 != SHA2_256, \
         group MODP1024 != MODP2048"
    );

    // Unsupported things are named too.
    let mut t = p1_transform(1, 1, None, 2, 1, None); // DES with MODP768
    t.attributes.push(b(oakley_attr::PRF, 1));
    let e = choose_phase1(&p1_offer(vec![t]), &ours).unwrap_err();
    assert!(
        e.to_string()
            .contains("DES-SHA1-MODP768-PSK: PRF attribute not supported"),
        "{e}"
    );
    let e =
        choose_phase1(&p1_offer(vec![p1_transform(1, 1, None, 2, 1, None)]), &ours).unwrap_err();
    assert!(e.reasons[0].contains("cipher DES != AES-256"), "{e}");
    let e = choose_phase1(
        &SaPayload {
            doi: 1,
            situation: 1,
            proposals: vec![],
        },
        &ours,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no proposal"), "{e}");
    let mut offer = p1_offer(vec![p1_transform(1, 7, Some(256), 4, 14, None)]);
    offer.proposals[0].protocol = ProtocolId::IPSEC_ESP;
    let e = choose_phase1(&offer, &ours).unwrap_err();
    assert!(e.to_string().contains("is not ISAKMP"), "{e}");
}

#[test]
fn accept_phase1_reply_checks_the_choice() {
    let p = policy();
    let ours = &p.peer("peer-west").unwrap().transforms;
    let reply = p1_offer(vec![p1_transform(2, 5, None, 2, 2, Some(3600))]);
    let c = accept_phase1_reply(&reply, ours).unwrap();
    assert_eq!(
        (c.transform_number, c.transform.name.as_str()),
        (2, "3DES-SHA")
    );
    // Two transforms in a reply.
    let two = p1_offer(vec![
        p1_transform(1, 5, None, 2, 2, None),
        p1_transform(2, 5, None, 2, 2, None),
    ]);
    assert!(accept_phase1_reply(&two, ours)
        .unwrap_err()
        .to_string()
        .contains("one transform"));
    // Something we never offered.
    let other = p1_offer(vec![p1_transform(1, 7, Some(192), 2, 2, None)]);
    assert!(accept_phase1_reply(&other, ours)
        .unwrap_err()
        .to_string()
        .contains("not one we offered"));
    // A longer lifetime than we offered.
    let longer = p1_offer(vec![p1_transform(1, 5, None, 2, 2, Some(7200))]);
    assert!(accept_phase1_reply(&longer, ours)
        .unwrap_err()
        .to_string()
        .contains("above what we offered"));
    // The reply built from the responder's choice is accepted.
    let offer = phase1_sa(p.peer("peer-west").unwrap());
    let chosen = choose_phase1(&offer, ours).unwrap();
    let r = phase1_reply_sa(&offer, &chosen).unwrap();
    assert_eq!(r.proposals[0].transforms.len(), 1);
    assert_eq!(
        accept_phase1_reply(&r, ours).unwrap().transform,
        chosen.transform
    );
}

fn spi(suite: usize, p: IpsecProtocol) -> [u8; 4] {
    [
        0xa0,
        suite as u8,
        if p == IpsecProtocol::Ah { 0x51 } else { 0x50 },
        1,
    ]
}

#[test]
fn phase2_sa_layout() {
    let p = policy();
    let conn = p.connection("IPsec-bundle").unwrap();
    assert_eq!(
        spis_needed(conn),
        vec![
            (0, IpsecProtocol::Ah),
            (0, IpsecProtocol::Esp),
            (1, IpsecProtocol::Esp)
        ]
    );
    let sa = phase2_sa(conn, spi, None);
    assert_eq!((sa.doi, sa.situation, sa.proposals.len()), (1, 1, 3));
    let (ah, esp, gcm) = (&sa.proposals[0], &sa.proposals[1], &sa.proposals[2]);
    assert_eq!(
        (ah.number, ah.protocol, ah.spi.clone()),
        (1, ProtocolId::IPSEC_AH, spi(0, IpsecProtocol::Ah).to_vec())
    );
    assert_eq!((esp.number, esp.protocol), (1, ProtocolId::IPSEC_ESP));
    assert_eq!(
        (gcm.number, gcm.protocol, gcm.spi.clone()),
        (
            2,
            ProtocolId::IPSEC_ESP,
            spi(1, IpsecProtocol::Esp).to_vec()
        )
    );
    assert_eq!(
        ah.transforms,
        vec![Transform {
            number: 1,
            transform_id: transform_id::AH_SHA2_256,
            attributes: vec![
                b(ipsec_attr::SA_LIFE_TYPE, ipsec_attr::LIFE_SECONDS),
                b(ipsec_attr::SA_LIFE_DURATION, 1800),
                b(ipsec_attr::SA_LIFE_TYPE, ipsec_attr::LIFE_KILOBYTES),
                Attribute::number(ipsec_attr::SA_LIFE_DURATION, 1_000_000),
                b(ipsec_attr::GROUP_DESCRIPTION, 14),
                b(ipsec_attr::ENCAPSULATION_MODE, ipsec_attr::ENCAP_TUNNEL),
                b(
                    ipsec_attr::AUTHENTICATION_ALGORITHM,
                    ipsec_attr::AUTH_HMAC_SHA2_256
                ),
            ],
        }]
    );
    assert_eq!(esp.transforms[0].transform_id, transform_id::ESP_AES_CBC);
    assert_eq!(
        esp.transforms[0].attributes.last(),
        Some(&b(ipsec_attr::KEY_LENGTH, 256))
    );
    let g = &gcm.transforms[0];
    assert_eq!(g.transform_id, transform_id::ESP_AES_GCM_16);
    assert!(g.attributes.contains(&b(ipsec_attr::GROUP_DESCRIPTION, 19)));
    assert!(g.attributes.contains(&b(ipsec_attr::KEY_LENGTH, 256)));
    assert!(!g
        .attributes
        .iter()
        .any(|a| a.kind == ipsec_attr::AUTHENTICATION_ALGORITHM));

    let encap = |sa: &SaPayload| {
        sa.proposals[0].transforms[0]
            .attributes
            .iter()
            .find(|a| a.kind == ipsec_attr::ENCAPSULATION_MODE)
            .cloned()
    };
    assert_eq!(
        encap(&phase2_sa(conn, spi, Some(true))),
        Some(b(ipsec_attr::ENCAPSULATION_MODE, 3))
    );
    assert_eq!(
        encap(&phase2_sa(conn, spi, Some(false))),
        Some(b(ipsec_attr::ENCAPSULATION_MODE, 61443))
    );
    let trp = p.connection("IPsec-trp").unwrap();
    assert_eq!(
        encap(&phase2_sa(trp, spi, Some(true))),
        Some(b(ipsec_attr::ENCAPSULATION_MODE, 4))
    );
    assert_eq!(
        encap(&phase2_sa(trp, spi, Some(false))),
        Some(b(ipsec_attr::ENCAPSULATION_MODE, 61444))
    );
    assert_eq!(
        encap(&phase2_sa(trp, spi, None)),
        Some(b(ipsec_attr::ENCAPSULATION_MODE, 2))
    );
}

#[test]
fn choose_phase2_bundle() {
    let p = policy();
    let conn = p.connection("IPsec-bundle").unwrap();
    let offer = phase2_sa(conn, spi, None);
    let c = choose_phase2(&offer, conn).unwrap();
    assert_eq!(c.proposal_number, 1);
    assert_eq!(c.protocols.len(), 2);
    assert_eq!(c.protocols[0].protocol, IpsecProtocol::Ah);
    assert_eq!(c.protocols[0].peer_spi, spi(0, IpsecProtocol::Ah));
    assert_eq!(c.protocols[1].protocol, IpsecProtocol::Esp);
    assert_eq!(c.protocols[1].peer_spi, spi(0, IpsecProtocol::Esp));
    assert_eq!(c.pfs_group, Some(Group::Modp2048));
    assert_eq!(
        (c.encap, c.udp_encap, c.responder_lifetime),
        (EncapMode::Tunnel, None, false)
    );
    assert_eq!(
        c.lifetime,
        Lifetime {
            seconds: 1800,
            kilobytes: Some(1_000_000)
        }
    );

    // The responder's reply is accepted by the initiator.
    let reply = phase2_reply_sa(&offer, &c, |p| {
        [9, 9, 9, if p == IpsecProtocol::Ah { 1 } else { 2 }]
    })
    .unwrap();
    assert_eq!(reply.proposals.len(), 2);
    let back = accept_phase2_reply(&reply, conn).unwrap();
    assert_eq!(back.proposal_number, 1);
    assert_eq!(back.protocols[1].peer_spi, [9, 9, 9, 2]);
    assert_eq!(back.pfs_group, Some(Group::Modp2048));
}

#[test]
fn a_bundle_must_match_whole() {
    let p = policy();
    let conn = p.connection("IPsec-bundle").unwrap();
    let mut offer = phase2_sa(conn, spi, None);
    // Only ESP of proposal 1 (the AH half is dropped), and no GCM proposal.
    offer.proposals.remove(2);
    offer.proposals.remove(0);
    let e = choose_phase2(&offer, conn).unwrap_err();
    assert!(e.to_string().contains("also needs AH"), "{e}");
    // Proposal 2 alone (GCM) matches the second suite.
    let mut offer = phase2_sa(conn, spi, None);
    offer.proposals.drain(0..2);
    let c = choose_phase2(&offer, conn).unwrap();
    assert_eq!((c.proposal_number, c.pfs_group), (2, Some(Group::Ecp256)));
    assert_eq!(
        c.protocols[0].transform.cipher,
        Some(EspCipher::AesGcm16 { key_bits: 256 })
    );
}

#[test]
fn choose_phase2_udp_encap_and_lifetimes() {
    let p = policy();
    let hosts = p.connection("IPsec-hosts").unwrap();
    for (udp, mode) in [(Some(true), 3u16), (Some(false), 61443)] {
        let offer = phase2_sa(hosts, spi, udp);
        let c = choose_phase2(&offer, hosts).unwrap();
        assert_eq!(
            (c.encap, c.udp_encap),
            (EncapMode::Tunnel, udp),
            "mode {mode}"
        );
    }
    let trp = p.connection("IPsec-trp").unwrap();
    let c = choose_phase2(&phase2_sa(trp, spi, Some(false)), trp).unwrap();
    assert_eq!((c.encap, c.udp_encap), (EncapMode::Transport, Some(false)));
    // Transport offered to a tunnel-only connection.
    let e = choose_phase2(&phase2_sa(trp, spi, None), hosts).unwrap_err();
    assert!(
        e.to_string().contains("mode transport != tunnel") || e.to_string().contains("cipher"),
        "{e}"
    );

    // Lifetime above our maximum: capped and flagged; below the minimum: refused.
    let mut offer = phase2_sa(hosts, spi, None);
    offer.proposals[0].transforms[0].attributes[1] =
        Attribute::number(ipsec_attr::SA_LIFE_DURATION, 200_000);
    let c = choose_phase2(&offer, hosts).unwrap();
    assert_eq!((c.lifetime.seconds, c.responder_lifetime), (86400, true));
    offer.proposals[0].transforms[0].attributes[1] = b(ipsec_attr::SA_LIFE_DURATION, 10);
    let c = choose_phase2(&offer, hosts).unwrap();
    assert_eq!(
        c.proposal_number, 2,
        "suite 1 refused for its lifetime, suite 2 taken"
    );
    offer.proposals.truncate(1);
    let e = choose_phase2(&offer, hosts).unwrap_err();
    assert!(
        e.to_string().contains("life (s) 10 below our minimum 60"),
        "{e}"
    );
}

#[test]
fn phase2_mismatch_text_and_bad_offers() {
    let p = policy();
    let hosts = p.connection("IPsec-hosts").unwrap();
    let offer = SaPayload {
        doi: 1,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IPSEC_ESP,
            spi: vec![1, 2, 3, 4],
            transforms: vec![Transform {
                number: 1,
                transform_id: transform_id::ESP_AES_CBC,
                attributes: vec![
                    b(ipsec_attr::ENCAPSULATION_MODE, 1),
                    b(
                        ipsec_attr::AUTHENTICATION_ALGORITHM,
                        ipsec_attr::AUTH_HMAC_MD5,
                    ),
                    b(ipsec_attr::KEY_LENGTH, 128),
                ],
            }],
        }],
    };
    let e = choose_phase2(&offer, hosts).unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with("no proposal chosen: peer offered [#1 ESP AES-128-HMAC_MD5 tunnel]"),
        "{s}"
    );
    assert!(s.contains("we accept [QM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE: ESP AES-256-HMAC_SHA2_256 tunnel PFS MODP2048 life 60..86400s"), "{s}");
    assert!(s.contains("cipher AES-128 != AES-256"), "{s}");
    assert!(s.contains("integrity HMAC_MD5 != HMAC_SHA1"), "{s}");

    let mut bad = offer.clone();
    bad.proposals[0].spi = vec![1, 2];
    assert!(choose_phase2(&bad, hosts)
        .unwrap_err()
        .to_string()
        .contains("SPI of 2 bytes"));
    let mut bad = offer.clone();
    bad.proposals[0].transforms[0]
        .attributes
        .push(b(ipsec_attr::KEY_ROUNDS, 3));
    assert!(choose_phase2(&bad, hosts)
        .unwrap_err()
        .to_string()
        .contains("unsupported attribute 7"));
    let mut bad = offer;
    bad.proposals[0].protocol = ProtocolId::IPCOMP;
    assert!(choose_phase2(&bad, hosts)
        .unwrap_err()
        .to_string()
        .contains("protocol 4 not supported"));
}

#[test]
fn accept_phase2_reply_refuses_other_choices() {
    let p = policy();
    let hosts = p.connection("IPsec-hosts").unwrap();
    let offer = phase2_sa(hosts, spi, None);
    // Two proposal numbers in a reply.
    assert!(accept_phase2_reply(&offer, hosts).is_err());
    // Our suite 2 (3DES-SHA) with a changed transform.
    let mut reply = offer.clone();
    reply.proposals.remove(0);
    reply.proposals[0].transforms[0].transform_id = transform_id::ESP_AES_CBC;
    assert!(accept_phase2_reply(&reply, hosts).is_err());
    let mut reply = offer;
    reply.proposals.remove(0);
    let c = accept_phase2_reply(&reply, hosts).unwrap();
    assert_eq!(c.proposal_number, 2);
    assert_eq!(c.protocols[0].transform.cipher, Some(EspCipher::TripleDes));
}

fn id4(identity: Identity) -> IdPayload {
    IdPayload {
        protocol: 0,
        port: 0,
        identity,
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn selection() {
    let p = policy();
    assert_eq!(
        p.peer_for_address(IpAddr::V4(v4("10.1.0.2"))).unwrap().name,
        "peer-west"
    );
    assert_eq!(
        p.peer_for_address(IpAddr::V4(v4("10.9.9.9"))).unwrap().name,
        "anyone"
    );
    assert_eq!(
        p.peer_for_id(&Identity::Fqdn(b"west.example.net".to_vec()))
            .unwrap()
            .name,
        "peer-west"
    );
    assert!(p
        .peer_for_id(&Identity::Fqdn(b"east.example.net".to_vec()))
        .is_none());

    let net_east = id4(Identity::Ipv4Subnet(
        v4("192.168.10.0"),
        v4("255.255.255.0"),
    ));
    let net_west = id4(Identity::Ipv4Subnet(
        v4("192.168.11.0"),
        v4("255.255.255.0"),
    ));
    // Exact: IDci is the initiator's (their) network, IDcr ours.
    let c = p
        .connection_for_ids("peer-west", Some(&net_west), Some(&net_east))
        .unwrap();
    assert_eq!(c.name, "IPsec-east-west");
    // Contained: a host of each network.
    let h_west = id4(Identity::Ipv4(v4("192.168.11.7")));
    let h_east = id4(Identity::Ipv4Range(v4("192.168.10.1"), v4("192.168.10.9")));
    assert_eq!(
        p.connection_for_ids("peer-west", Some(&h_west), Some(&h_east))
            .unwrap()
            .name,
        "IPsec-east-west"
    );
    // Not contained.
    let outside = id4(Identity::Ipv4(v4("192.168.12.1")));
    assert!(p
        .connection_for_ids("peer-west", Some(&outside), Some(&net_east))
        .is_none());
    // Reversed IDs do not match.
    assert!(p
        .connection_for_ids("peer-west", Some(&net_east), Some(&net_west))
        .is_none());
    // Absent IDs: host to host.
    assert_eq!(
        p.connection_for_ids("peer-west", None, None).unwrap().name,
        "IPsec-hosts"
    );
    // Explicit host IDs equal to the peers' addresses are host to host too.
    let me = id4(Identity::Ipv4(v4("10.1.0.1")));
    let them = id4(Identity::Ipv4(v4("10.1.0.2")));
    assert_eq!(
        p.connection_for_ids("peer-west", Some(&them), Some(&me))
            .unwrap()
            .name,
        "IPsec-hosts"
    );
    // Protocol and port: tcp/80 is required by IPsec-bundle's Remote-ID.
    let host_east = id4(Identity::Ipv4(v4("192.168.20.1")));
    let web = IdPayload {
        protocol: 6,
        port: 80,
        identity: Identity::Ipv4(v4("192.168.21.5")),
    };
    assert_eq!(
        p.connection_for_ids("peer-west", Some(&web), Some(&host_east))
            .unwrap()
            .name,
        "IPsec-bundle"
    );
    let ssh = IdPayload {
        port: 22,
        ..web.clone()
    };
    assert!(p
        .connection_for_ids("peer-west", Some(&ssh), Some(&host_east))
        .is_none());
    // Another peer's connections are not considered.
    assert!(p
        .connection_for_ids("anyone", Some(&net_west), Some(&net_east))
        .is_none());
    assert_eq!(
        p.connection_for_ids("ANYONE", None, None).unwrap().name,
        "IPsec-trp"
    );
}

#[test]
fn key_length_ranges_as_isakmpd() {
    let p = Policy::from_conf(
        &Conf::parse(
            "[Phase 1]\n10.0.0.2=p\n[p]\nConfiguration=mm\nAuthentication=k\n\
             [mm]\nTransforms=AES-SHA,AES-128-SHA\n\
             [Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nConfiguration=qm\n\
             [qm]\nSuites=QM-ESP-AES-SHA-PFS-SUITE\n",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(p.key_length_range("aes-sha"), Some((128, 256)));
    assert_eq!(
        p.key_length_range("AES-128-SHA"),
        None,
        "128,128:128 is no range"
    );
    assert_eq!(
        p.key_length_range("QM-ESP-AES-SHA-PFS-XF"),
        Some((128, 256))
    );
    let peer = p.peer("p").unwrap();
    assert_eq!(peer.transforms[0].encr, EncrAlg::AesCbc128, "offer 128");

    let offer = p1_offer(vec![p1_transform(1, 7, Some(256), 2, 2, None)]);
    assert!(
        choose_phase1(&offer, &peer.transforms).is_err(),
        "exact match refuses"
    );
    let c = p.choose_phase1_for(peer, &offer).unwrap();
    assert_eq!(
        (c.transform.name.as_str(), c.transform.encr),
        ("AES-SHA", EncrAlg::AesCbc256)
    );

    let conn = p.connection("c").unwrap();
    let mut offer = phase2_sa(conn, spi, None);
    let attrs = &mut offer.proposals[0].transforms[0].attributes;
    let kl = attrs
        .iter_mut()
        .find(|a| a.kind == ipsec_attr::KEY_LENGTH)
        .unwrap();
    *kl = b(ipsec_attr::KEY_LENGTH, 192);
    assert!(choose_phase2(&offer, conn).is_err());
    let c = p.choose_phase2_for(conn, &offer).unwrap();
    assert_eq!(
        c.protocols[0].transform.cipher,
        Some(EspCipher::AesCbc { key_bits: 192 })
    );
    // Outside the range stays refused.
    let bad = p1_offer(vec![p1_transform(1, 7, Some(512), 2, 2, None)]);
    assert!(p.choose_phase1_for(peer, &bad).is_err());
}
