//! Building the typed policy from realistic isakmpd.conf files, and its errors.

use ike::codec::{IdPayload, Identity};
use ike::conf::Conf;
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::policy::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Two gateways with a pre-shared key, each protecting a subnet (east side).
pub const PSK_GATEWAYS: &str = "\
[General]
Retransmits=\t\t5
Listen-on=\t\t10.1.0.1
DPD-check-interval=\t20

[Phase 1]
10.1.0.2=\t\tpeer-west

[Phase 2]
Connections=\t\tIPsec-east-west

[peer-west]
Phase=\t\t\t1
Transport=\t\tudp
Local-address=\t\t10.1.0.1
Address=\t\t10.1.0.2
Configuration=\t\tmain-mode-strong
Authentication=\t\tmekmitasdigoat

[main-mode-strong]
DOI=\t\t\tIPSEC
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-256-SHA2-256-GRP14,3DES-SHA

[IPsec-east-west]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-west
Configuration=\t\tquick-mode-strong
Local-ID=\t\tNet-east
Remote-ID=\t\tNet-west

[Net-west]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t192.168.11.0
Netmask=\t\t255.255.255.0

[Net-east]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t192.168.10.0
Netmask=\t\t255.255.255.0

[quick-mode-strong]
DOI=\t\t\tIPSEC
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\tQM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE,\\
\t\t\tQM-ESP-3DES-SHA-PFS-SUITE
";

/// RSA signatures, FQDN identities, an AH+ESP bundle with our own sections, a GCM suite,
/// a passive IPv6/range connection and a default peer.
pub const RSA_SIG: &str = "\
[Phase 1]
192.0.2.20=\t\tISAKMP-peer-rsa
Default=\t\troad-warriors

[Phase 2]
Connections=\t\tIPsec-rsa
Passive-connections=\tIPsec-road

[X509-Certificates]
Private-key=\t\t/etc/isakmpd/private/gw1.key

[ISAKMP-peer-rsa]
Phase=\t\t\t1
Address=\t\t192.0.2.20
Port=\t\t\t4500
Configuration=\t\trsa-main-mode
ID=\t\t\tmy-fqdn
Remote-ID=\t\ttheir-fqdn
DPD-check-interval=\t30
DPD-action=\t\trestart
NAT-T=\t\t\tno

[road-warriors]
Phase=\t\t\t1
Configuration=\t\trsa-aggressive
Remote-ID=\t\troad-user

[rsa-main-mode]
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-128-SHA-GRP14-RSA_SIG,3DES-SHA-RSA_SIG

[rsa-aggressive]
EXCHANGE_TYPE=\t\tAGGRESSIVE
Transforms=\t\tmy-p1-xf

[my-p1-xf]
ENCRYPTION_ALGORITHM=\tAES_CBC
KEY_LENGTH=\t\t192
HASH_ALGORITHM=\t\tSHA2_384
AUTHENTICATION_METHOD=\tRSA_SIG
GROUP_DESCRIPTION=\tECP_384
Life=\t\t\tLife-8h

[Life-8h]
LIFE_TYPE=\t\tSECONDS
LIFE_DURATION=\t\t28800,3600:86400

[my-fqdn]
ID-type=\t\tFQDN
Name=\t\t\tgw1.example.com

[their-fqdn]
ID-type=\t\tFQDN
Name=\t\t\tgw2.example.com

[road-user]
ID-type=\t\tUSER_FQDN
Name=\t\t\talice@example.com

[IPsec-rsa]
Phase=\t\t\t2
ISAKMP-peer=\t\tISAKMP-peer-rsa
Configuration=\t\trsa-quick-mode
Local-ID=\t\thost-a
Remote-ID=\t\tnet-b-https

[host-a]
ID-type=\t\tIPV4_ADDR
Address=\t\t192.0.2.10

[net-b-https]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t10.20.0.0
Netmask=\t\t16
Protocol=\t\ttcp
Port=\t\t\t443

[rsa-quick-mode]
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\tMy-bundle-suite,QM-ESP-AES-GCM-256-PFS-GRP19-SUITE

[My-bundle-suite]
Protocols=\t\tMy-AH,My-ESP

[My-AH]
PROTOCOL_ID=\t\tIPSEC_AH
Transforms=\t\tMy-AH-XF

[My-AH-XF]
TRANSFORM_ID=\t\tSHA2_256
ENCAPSULATION_MODE=\tTUNNEL
AUTHENTICATION_ALGORITHM=\tHMAC_SHA2_256
GROUP_DESCRIPTION=\tMODP_2048
Life=\t\t\tLife-30m,Life-1GB

[My-ESP]
PROTOCOL_ID=\t\tIPSEC_ESP
Transforms=\t\tMy-ESP-XF

[My-ESP-XF]
TRANSFORM_ID=\t\tAES
KEY_LENGTH=\t\t256,128:256
ENCAPSULATION_MODE=\tTUNNEL
AUTHENTICATION_ALGORITHM=\tHMAC_SHA2_256
GROUP_DESCRIPTION=\tMODP_2048
Life=\t\t\tLife-30m

[Life-30m]
LIFE_TYPE=\t\tSECONDS
LIFE_DURATION=\t\t1800,600:3600

[Life-1GB]
LIFE_TYPE=\t\tKILOBYTES
LIFE_DURATION=\t\t1000000,1000:2000000

[IPsec-road]
Phase=\t\t\t2
ISAKMP-peer=\t\troad-warriors
Local-ID=\t\tnet-a-v6
Remote-ID=\t\trange-b

[net-a-v6]
ID-type=\t\tIPV6_ADDR_SUBNET
Network=\t\t2001:db8:1::
Netmask=\t\t48

[range-b]
ID-type=\t\tIPV4_ADDR_RANGE
Start=\t\t\t10.30.0.10
End=\t\t\t10.30.0.20
";

fn policy(text: &str) -> Policy {
    Policy::from_conf(&Conf::parse(text).unwrap()).unwrap()
}

fn policy_err(text: &str) -> PolicyError {
    match Policy::from_conf(&Conf::parse(text).unwrap()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn psk_gateways() {
    let p = policy(PSK_GATEWAYS);
    assert_eq!(p.general.retransmits, 5);
    assert_eq!(p.general.exchange_max_time, 120);
    assert_eq!(p.general.listen_on, vec![IpAddr::V4(v4("10.1.0.1"))]);
    assert_eq!(p.default_peer, None);
    assert_eq!(p.peers.len(), 1);
    let peer = &p.peers[0];
    assert_eq!(peer.name, "peer-west");
    assert_eq!(peer.address, "10.1.0.2:500".parse::<SocketAddr>().unwrap());
    assert_eq!(peer.local_address, Some("10.1.0.1:500".parse().unwrap()));
    assert_eq!(peer.mode, Phase1Mode::Main);
    assert_eq!(
        peer.credentials,
        Credentials::PreShared {
            secret: "peer-west".into()
        }
    );
    assert_eq!(peer.dpd_interval, 20, "from [General]");
    assert_eq!(peer.dpd_timeout, None, "the engine's default");
    assert_eq!(peer.dpd_action, DpdAction::Clear);
    assert!(peer.nat_t);
    assert_eq!(peer.local_id, None);
    let range = LifetimeRange {
        default: 3600,
        min: 60,
        max: 86400,
    };
    assert_eq!(
        peer.transforms,
        vec![
            Phase1Transform {
                name: "AES-256-SHA2-256-GRP14".into(),
                encr: EncrAlg::AesCbc256,
                hash: HashAlg::Sha256,
                group: Group::Modp2048,
                auth: AuthMethod::PreShared,
                lifetime: range,
            },
            Phase1Transform {
                name: "3DES-SHA".into(),
                encr: EncrAlg::TripleDesCbc,
                hash: HashAlg::Sha1,
                group: Group::Modp1024,
                auth: AuthMethod::PreShared,
                lifetime: range,
            },
        ]
    );
    assert_eq!(p.connections.len(), 1);
    let c = &p.connections[0];
    assert_eq!(
        (c.name.as_str(), c.peer.as_str(), c.active),
        ("IPsec-east-west", "peer-west", true)
    );
    assert_eq!(
        c.local_id,
        Some(IdPayload {
            protocol: 0,
            port: 0,
            identity: Identity::Ipv4Subnet(v4("192.168.10.0"), v4("255.255.255.0"))
        })
    );
    assert_eq!(
        c.remote_id.as_ref().map(|i| &i.identity),
        Some(&Identity::Ipv4Subnet(
            v4("192.168.11.0"),
            v4("255.255.255.0")
        ))
    );
    assert_eq!(c.suites.len(), 2);
    let s0 = &c.suites[0];
    assert_eq!(s0.name, "QM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE");
    assert_eq!(s0.protocols.len(), 1);
    assert_eq!(s0.protocols[0].protocol, IpsecProtocol::Esp);
    let t = &s0.protocols[0].transforms[0];
    assert_eq!(t.cipher, Some(EspCipher::AesCbc { key_bits: 256 }));
    assert_eq!(t.integ, Some(IntegAlg::HmacSha256));
    assert_eq!(t.encap, EncapMode::Tunnel);
    assert_eq!(t.pfs_group, Some(Group::Modp2048));
    assert_eq!(
        t.lifetime,
        LifetimeRange {
            default: 1200,
            min: 60,
            max: 86400
        }
    );
    assert_eq!(t.lifetime_kb, None);
    let t = &c.suites[1].protocols[0].transforms[0];
    assert_eq!(
        (t.cipher, t.integ, t.pfs_group),
        (
            Some(EspCipher::TripleDes),
            Some(IntegAlg::HmacSha1),
            Some(Group::Modp1024)
        )
    );
}

#[test]
fn rsa_signatures() {
    let p = policy(RSA_SIG);
    assert_eq!(p.default_peer.as_deref(), Some("road-warriors"));
    let peer = p.peer("isakmp-peer-rsa").unwrap();
    assert_eq!(
        peer.address,
        "192.0.2.20:4500".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        peer.credentials,
        Credentials::RsaSig {
            secret: "/etc/isakmpd/private/gw1.key".into(),
            peer_public_key: None
        }
    );
    assert_eq!(
        peer.local_id,
        Some(Identity::Fqdn(b"gw1.example.com".to_vec()))
    );
    assert_eq!(
        peer.remote_id,
        Some(Identity::Fqdn(b"gw2.example.com".to_vec()))
    );
    assert_eq!(
        (peer.dpd_interval, peer.dpd_action, peer.nat_t),
        (30, DpdAction::Restart, false)
    );
    assert_eq!(peer.transforms[0].encr, EncrAlg::AesCbc128);
    assert_eq!(peer.transforms[0].group, Group::Modp2048);
    assert!(peer.transforms.iter().all(|t| t.auth == AuthMethod::RsaSig));

    let road = p.peer("road-warriors").unwrap();
    assert!(road.address.ip().is_unspecified());
    assert_eq!(road.mode, Phase1Mode::Aggressive);
    let t = &road.transforms[0];
    assert_eq!(
        (t.encr, t.hash, t.group),
        (EncrAlg::AesCbc192, HashAlg::Sha384, Group::Ecp384)
    );
    assert_eq!(
        t.lifetime,
        LifetimeRange {
            default: 28800,
            min: 3600,
            max: 86400
        }
    );

    let c = p.connection("IPsec-rsa").unwrap();
    assert!(c.active);
    assert_eq!(
        c.local_id.as_ref().unwrap().identity,
        Identity::Ipv4(v4("192.0.2.10"))
    );
    let r = c.remote_id.as_ref().unwrap();
    assert_eq!((r.protocol, r.port), (6, 443));
    assert_eq!(
        r.identity,
        Identity::Ipv4Subnet(v4("10.20.0.0"), v4("255.255.0.0"))
    );
    let bundle = &c.suites[0];
    assert_eq!(
        bundle
            .protocols
            .iter()
            .map(|p| p.protocol)
            .collect::<Vec<_>>(),
        vec![IpsecProtocol::Ah, IpsecProtocol::Esp]
    );
    let ah = &bundle.protocols[0].transforms[0];
    assert_eq!((ah.cipher, ah.integ), (None, Some(IntegAlg::HmacSha256)));
    assert_eq!(
        ah.lifetime,
        LifetimeRange {
            default: 1800,
            min: 600,
            max: 3600
        }
    );
    assert_eq!(
        ah.lifetime_kb,
        Some(LifetimeRange {
            default: 1_000_000,
            min: 1000,
            max: 2_000_000
        })
    );
    let esp = &bundle.protocols[1].transforms[0];
    assert_eq!(esp.cipher, Some(EspCipher::AesCbc { key_bits: 256 }));
    let gcm = &c.suites[1].protocols[0].transforms[0];
    assert_eq!(
        (gcm.cipher, gcm.integ, gcm.pfs_group),
        (
            Some(EspCipher::AesGcm16 { key_bits: 256 }),
            None,
            Some(Group::Ecp256)
        )
    );

    let road_c = p.connection("IPsec-road").unwrap();
    assert!(!road_c.active);
    assert_eq!(road_c.suites.len(), 2, "Default-quick-mode");
    assert_eq!(
        road_c.local_id.as_ref().unwrap().identity,
        Identity::Ipv6Subnet(
            "2001:db8:1::".parse().unwrap(),
            "ffff:ffff:ffff::".parse::<Ipv6Addr>().unwrap()
        )
    );
    assert_eq!(
        road_c.remote_id.as_ref().unwrap().identity,
        Identity::Ipv4Range(v4("10.30.0.10"), v4("10.30.0.20"))
    );
}

#[test]
fn secrets_stay_with_the_parent() {
    let conf = Conf::parse(PSK_GATEWAYS).unwrap();
    assert_eq!(
        secrets(&conf),
        vec![(
            "peer-west".to_string(),
            ike::crypto::Secret::from_slice(b"mekmitasdigoat")
        )]
    );
    let p = Policy::from_conf(&conf).unwrap();
    let text = format!("{p:?}");
    assert!(
        !text.contains("mekmitasdigoat"),
        "the policy must not hold the key"
    );
    let child = redact_secrets(&conf);
    assert!(secrets(&child).is_empty());
    assert!(!child.dump().contains("mekmitasdigoat"));
    assert_eq!(child.get_str("peer-west", "Address"), Some("10.1.0.2"));
    assert!(secrets(&Conf::parse(RSA_SIG).unwrap()).is_empty());
}

#[test]
fn the_child_can_still_build_the_policy() {
    // The unprivileged child gets the redacted copy and builds the same policy from it.
    let conf = Conf::parse(PSK_GATEWAYS).unwrap();
    let child = redact_secrets(&conf);
    assert_eq!(child.get_str("peer-west", "Authentication"), Some(""));
    assert_eq!(
        Policy::from_conf(&child).unwrap(),
        Policy::from_conf(&conf).unwrap()
    );
    let reparsed = Conf::parse(&child.dump()).unwrap();
    assert_eq!(
        Policy::from_conf(&reparsed).unwrap(),
        Policy::from_conf(&conf).unwrap()
    );
}

#[test]
fn defaults_only_gives_an_empty_policy() {
    let p = Policy::from_conf(&Conf::new()).unwrap();
    assert!(p.peers.is_empty() && p.connections.is_empty());
    assert_eq!(p.general.retransmits, 3);
    assert_eq!(p.general.check_interval, 60);
    assert_eq!(p.general.nat_t_keepalive, 20);
    assert_eq!(p.general.dpd_check_interval, 0);
}

#[test]
fn peer_without_configuration_uses_default_main_mode() {
    let p = policy("[Phase 1]\n10.0.0.9=p\n[p]\nAuthentication=k\n");
    let peer = &p.peers[0];
    assert_eq!(
        peer.address.ip(),
        IpAddr::V4(v4("10.0.0.9")),
        "address from the [Phase 1] key"
    );
    assert_eq!(peer.transforms.len(), 1);
    assert_eq!(peer.transforms[0].name, "3DES-SHA");
}

/// `DPD-timeout` (this implementation's addition, after pluto's `dpdtimeout`): a peer's own
/// tag wins over `[General]`'s, and without either the engine's default applies.
#[test]
fn dpd_timeout_per_peer_and_general() {
    let p = policy(
        "[General]\nDPD-timeout=12\n[Phase 1]\n10.0.0.1=a\n10.0.0.2=b\n\
         [a]\nAddress=10.0.0.1\nAuthentication=k\nDPD-check-interval=2\nDPD-timeout=5\n\
         [b]\nAddress=10.0.0.2\nAuthentication=k\n",
    );
    let get = |n: &str| p.peers.iter().find(|x| x.name == n).unwrap().dpd_timeout;
    assert_eq!(get("a"), Some(5));
    assert_eq!(get("b"), Some(12));
    assert_eq!(p.general.dpd_timeout, Some(12));
}

#[test]
fn errors_name_section_and_tag() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("[Phase 1]\n10.0.0.1=nowhere\n", "Phase 1", "10.0.0.1", "does not exist"),
        ("[Phase 1]\nnot-an-ip=p\n[p]\nAuthentication=k\n", "Phase 1", "not-an-ip", "IP address"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nPhase=2\nAuthentication=k\n", "p", "Phase", "expected 1"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAddress=bogus\nAuthentication=k\n", "p", "Address", "not an IP"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nPort=70000\nAuthentication=k\n", "p", "Port", "not a port"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n", "p", "Configuration", "[mm]"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nEXCHANGE_TYPE=ID_PROT\n", "mm", "Transforms", "missing"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nEXCHANGE_TYPE=BASE\nTransforms=3DES-SHA\n", "mm", "EXCHANGE_TYPE", "BASE"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=DES-SHA\n", "mm", "Transforms", "[DES-SHA]"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=x\n[x]\nENCRYPTION_ALGORITHM=BLOWFISH_CBC\n", "x", "ENCRYPTION_ALGORITHM", "not supported"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=x\n[x]\nENCRYPTION_ALGORITHM=AES_CBC\nHASH_ALGORITHM=SHA\nAUTHENTICATION_METHOD=PRE_SHARED\n", "x", "GROUP_DESCRIPTION", "missing"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=x\n[x]\nENCRYPTION_ALGORITHM=AES_CBC\nHASH_ALGORITHM=SHA\nAUTHENTICATION_METHOD=PRE_SHARED\nGROUP_DESCRIPTION=MODP_768\n", "x", "GROUP_DESCRIPTION", "MODP_768"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=x\n[x]\nENCRYPTION_ALGORITHM=AES_CBC\nKEY_LENGTH=100\nHASH_ALGORITHM=SHA\nAUTHENTICATION_METHOD=PRE_SHARED\nGROUP_DESCRIPTION=MODP_2048\n", "x", "KEY_LENGTH", "100"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=x\n[x]\nENCRYPTION_ALGORITHM=AES_CBC\nHASH_ALGORITHM=SHA\nAUTHENTICATION_METHOD=PRE_SHARED\nGROUP_DESCRIPTION=MODP_2048\nLife=L\n[L]\nLIFE_TYPE=SECONDS\nLIFE_DURATION=10,60:100\n", "L", "LIFE_DURATION", "10,60:100"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nTransforms=x\n[x]\nENCRYPTION_ALGORITHM=AES_CBC\nHASH_ALGORITHM=SHA\nAUTHENTICATION_METHOD=PRE_SHARED\nGROUP_DESCRIPTION=MODP_2048\nLife=L\n[L]\nLIFE_TYPE=BYTES\nLIFE_DURATION=10\n", "L", "LIFE_TYPE", "BYTES"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nPhase=1\n", "p", "Authentication", "missing"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nID=nope\n", "p", "ID", "[nope]"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nID=i\n[i]\nID-type=DER_ASN1_GN\n", "i", "ID-type", "DER_ASN1_GN"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nID=i\n[i]\nID-type=DER_ASN1_DN\n", "i", "Name", "missing"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nID=i\n[i]\nID-type=DER_ASN1_DN\nName=/C=US/Bogus=x\n", "i", "Name", "Bogus"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nID=i\n[i]\nID-type=FQDN\n", "i", "Name", "missing"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nDPD-action=panic\n", "p", "DPD-action", "panic"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nDPD-timeout=0\n", "p", "DPD-timeout", "at least 1"),
        ("[Phase 1]\n10.0.0.1=p\n[p]\nAuthentication=k\nNAT-T=maybe\n", "p", "NAT-T", "maybe"),
        ("[Phase 2]\nConnections=c\n", "Phase 2", "Connections", "[c]"),
        ("[Phase 2]\nConnections=c\n[c]\nPhase=2\n", "c", "ISAKMP-peer", "missing"),
        ("[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=gone\n", "c", "ISAKMP-peer", "[gone]"),
        ("[Phase 2]\nPassive-connections=c\n[c]\nISAKMP-peer=p\nConfiguration=q\n[p]\nAuthentication=k\n[q]\nSuites=s\n[s]\nProtocols=pr\n[pr]\nPROTOCOL_ID=IPCOMP\n", "pr", "PROTOCOL_ID", "IPCOMP"),
        ("[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nConfiguration=q\n[p]\nAuthentication=k\n[q]\nSuites=s\n[s]\nProtocols=pr\n[pr]\nPROTOCOL_ID=IPSEC_ESP\nTransforms=x\n[x]\nTRANSFORM_ID=BLOWFISH\n", "x", "TRANSFORM_ID", "BLOWFISH"),
        ("[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nConfiguration=q\n[p]\nAuthentication=k\n[q]\nSuites=s\n[s]\nProtocols=pr\n[pr]\nPROTOCOL_ID=IPSEC_ESP\nTransforms=x\n[x]\nTRANSFORM_ID=AES_GCM_16\nAUTHENTICATION_ALGORITHM=HMAC_SHA\n", "x", "AUTHENTICATION_ALGORITHM", "GCM"),
        ("[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nConfiguration=q\n[p]\nAuthentication=k\n[q]\nSuites=s\n[s]\nProtocols=pr\n[pr]\nPROTOCOL_ID=IPSEC_ESP\nTransforms=x\n[x]\nTRANSFORM_ID=AES\nENCAPSULATION_MODE=BEET\n", "x", "ENCAPSULATION_MODE", "BEET"),
        ("[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nLocal-ID=l\n[p]\nAuthentication=k\n[l]\nID-type=IPV4_ADDR_SUBNET\nNetwork=10.0.0.0\nNetmask=255.0.0.0\nProtocol=sctpish\n", "l", "Protocol", "sctpish"),
        ("[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nConfiguration=q\n[p]\nAuthentication=k\n[q]\nEXCHANGE_TYPE=QUICK_MODE\n", "q", "Suites", "missing"),
        (
            "[Phase 1]\n10.0.0.1=p\n[p]\nConfiguration=mm\nAuthentication=k\n[mm]\nEXCHANGE_TYPE=AGGRESSIVE\nTransforms=3DES-SHA,AES-SHA-GRP14\n",
            "mm",
            "Transforms",
            "one DH group",
        ),
        (
            "[Phase 2]\nConnections=c\n[c]\nISAKMP-peer=p\nConfiguration=q\n[p]\nAuthentication=k\n[q]\nSuites=s\n[s]\nProtocols=QM-AH-SHA-PFS-GRP14,QM-ESP-AES-SHA-PFS-GRP5\n",
            "s",
            "Protocols",
            "different PFS groups",
        ),
    ];
    for (text, section, tag, needle) in cases {
        let e = policy_err(text);
        assert_eq!(
            (e.section.as_str(), e.tag.as_str()),
            (*section, *tag),
            "{text}\n=> {e}"
        );
        assert!(
            e.to_string().contains(needle),
            "{e} should mention {needle}"
        );
        assert!(
            e.to_string().starts_with(&format!("[{section}]:{tag}: ")),
            "{e}"
        );
    }
}

#[test]
fn parse_range_forms() {
    assert_eq!(
        parse_range("3600,60:86400"),
        Some(LifetimeRange {
            default: 3600,
            min: 60,
            max: 86400
        })
    );
    assert_eq!(
        parse_range(" 120 "),
        Some(LifetimeRange {
            default: 120,
            min: 120,
            max: 120
        })
    );
    assert_eq!(parse_range("10,60:100"), None);
    assert_eq!(parse_range("1,2"), None);
    assert_eq!(parse_range("x"), None);
}

#[test]
fn ipv6_peer_keys_and_ports() {
    let p = policy(
        "[Phase 1]\n2001:db8::2=v6peer\n[v6peer]\nPhase=1\nPort=4500\nLocal-address=2001:db8::1\nAuthentication=k\n",
    );
    let peer = p.peer("v6peer").unwrap();
    assert_eq!(
        peer.address,
        "[2001:db8::2]:4500".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        peer.local_address.unwrap().ip(),
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        p.peer_for_address("2001:db8::2".parse().unwrap())
            .unwrap()
            .name,
        "v6peer"
    );
    assert!(p.peer_for_address("2001:db8::3".parse().unwrap()).is_none());
}

#[test]
fn fifo_changes_then_rebuild() {
    // A C set / C add sequence followed by a policy rebuild, as the daemon does.
    let mut conf = Conf::parse(PSK_GATEWAYS).unwrap();
    let t = conf.begin();
    conf.set(t, "IPsec-extra", "Phase", "2", false, false)
        .unwrap();
    conf.set(t, "IPsec-extra", "ISAKMP-peer", "peer-west", false, false)
        .unwrap();
    conf.add(t, "Phase 2", "Connections", "IPsec-extra")
        .unwrap();
    conf.end(t, true).unwrap();
    let p = Policy::from_conf(&conf).unwrap();
    let c = p.connection("IPsec-extra").unwrap();
    assert!(c.active);
    assert_eq!(c.local_id, None);
    assert_eq!(
        c.suites[0].name, "QM-ESP-3DES-SHA-PFS-SUITE",
        "Default-quick-mode"
    );
}

/// `ID-type=DER_ASN1_DN` with `Name` in OpenSSL's slash form or the comma form: the same DER
/// Name, RDNs in the order written.
#[test]
fn der_asn1_dn_identities() {
    let conf = |name: &str| {
        format!(
            "[Phase 1]\n192.0.2.2=p\n[p]\nConfiguration=mm\nID=me\nRemote-ID=them\n[mm]\nEXCHANGE_TYPE=ID_PROT\nTransforms=AES-SHA-RSA_SIG\n[me]\nID-type=DER_ASN1_DN\nName={name}\n[them]\nID-type=DER_ASN1_DN\nName=C=US, O=Test, CN=east\n"
        )
    };
    let a = policy(&conf("/C=US/O=Test/CN=west"));
    let b = policy(&conf("C=US, O=Test, CN=west"));
    let (pa, pb) = (a.peer("p").unwrap(), b.peer("p").unwrap());
    assert_eq!(pa.local_id, pb.local_id);
    let Some(Identity::DerAsn1Dn(der)) = &pa.local_id else {
        panic!("not a DN: {:?}", pa.local_id);
    };
    assert_eq!(
        ike::x509::dn_to_string(der).as_deref(),
        Some("C=US, O=Test, CN=west")
    );
    let Some(Identity::DerAsn1Dn(der)) = &pa.remote_id else {
        panic!("not a DN: {:?}", pa.remote_id);
    };
    assert_eq!(
        ike::x509::dn_to_string(der).as_deref(),
        Some("C=US, O=Test, CN=east")
    );
}

#[test]
fn half_open_limits_have_defaults_and_refuse_zero() {
    let p = policy(PSK_GATEWAYS);
    assert_eq!(
        (
            p.general.max_half_open,
            p.general.max_half_open_per_address,
            p.general.aggressive_mode_rate
        ),
        (8192, 16, 20)
    );
    let text = PSK_GATEWAYS.replace(
        "Retransmits=\t\t5\n",
        "Retransmits=\t\t5\nMax-half-open=\t\t100\nMax-half-open-per-address=\t4\n",
    );
    let p = policy(&text);
    assert_eq!(
        (p.general.max_half_open, p.general.max_half_open_per_address),
        (100, 4)
    );
    let zero = PSK_GATEWAYS.replace(
        "Retransmits=\t\t5\n",
        "Retransmits=\t\t5\nMax-half-open=\t0\n",
    );
    let e = policy_err(&zero).to_string();
    assert!(
        e.contains("Max-half-open") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn keying_tries_come_from_the_connection_then_general_and_must_be_numbers() {
    assert_eq!(policy(PSK_GATEWAYS).connections[0].keying_tries, 0);
    let general = PSK_GATEWAYS.replace(
        "Retransmits=\t\t5\n",
        "Retransmits=\t\t5\nKeying-tries=\t3\n",
    );
    assert_eq!(policy(&general).connections[0].keying_tries, 3);
    let own = general.replace(
        "[IPsec-east-west]\n",
        "[IPsec-east-west]\nKeying-tries=\t1\n",
    );
    assert_eq!(policy(&own).connections[0].keying_tries, 1);
    let bad = general.replace("Keying-tries=\t3", "Keying-tries=\tforever");
    let e = policy_err(&bad).to_string();
    assert!(
        e.contains("Keying-tries") && e.contains("not a number"),
        "{e}"
    );
}
