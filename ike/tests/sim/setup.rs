//! Policies for engine-pair tests: two gateways, A (192.0.2.1, clients 10.1.0.0/16) and
//! B (192.0.2.2, clients 10.2.0.0/16), one peer and one connection each way.
#![allow(dead_code)]

use super::{Node, Sim, Store};
use ike::codec::{IdPayload, Identity};
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::engine::Timers;
use ike::policy::*;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const A_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const B_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const PSK: &[u8] = b"correct horse battery staple";

pub fn ciphers() -> [EncrAlg; 4] {
    [
        EncrAlg::TripleDesCbc,
        EncrAlg::AesCbc128,
        EncrAlg::AesCbc192,
        EncrAlg::AesCbc256,
    ]
}
pub fn hashes() -> [HashAlg; 5] {
    [
        HashAlg::Md5,
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ]
}
pub fn groups() -> [Group; 10] {
    [
        Group::Modp1024,
        Group::Modp1536,
        Group::Modp2048,
        Group::Modp3072,
        Group::Modp4096,
        Group::Modp6144,
        Group::Modp8192,
        Group::Ecp256,
        Group::Ecp384,
        Group::Ecp521,
    ]
}

/// One RSA key per side, made once per test process.
pub fn rsa_keys() -> &'static [(Vec<u8>, Vec<u8>); 2] {
    static KEYS: OnceLock<[(Vec<u8>, Vec<u8>); 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mk = || {
            let k = Rsa::generate(2048).expect("rsa keygen");
            (
                k.private_key_to_der().expect("der"),
                k.public_key_to_der().expect("der"),
            )
        };
        [mk(), mk()]
    })
}

#[derive(Clone, Debug)]
pub struct Suite1 {
    pub encr: EncrAlg,
    pub hash: HashAlg,
    pub group: Group,
    pub auth: AuthMethod,
    pub mode: Phase1Mode,
}

#[derive(Clone, Debug)]
pub struct Suite2 {
    pub protocol: IpsecProtocol,
    pub cipher: Option<EspCipher>,
    pub integ: Option<IntegAlg>,
    pub encap: EncapMode,
    pub pfs: Option<Group>,
    pub lifetime: u64,
}

impl Default for Suite2 {
    fn default() -> Self {
        Self {
            protocol: IpsecProtocol::Esp,
            cipher: Some(EspCipher::AesCbc { key_bits: 128 }),
            integ: Some(IntegAlg::HmacSha1),
            encap: EncapMode::Tunnel,
            pfs: None,
            lifetime: 1200,
        }
    }
}

pub fn range(v: u64) -> LifetimeRange {
    LifetimeRange {
        default: v,
        min: 10,
        max: 86400,
    }
}

pub fn p1_transform(s: &Suite1, lifetime: u64) -> Phase1Transform {
    Phase1Transform {
        name: format!("{:?}-{:?}-{:?}-{:?}", s.encr, s.hash, s.group, s.auth),
        encr: s.encr,
        hash: s.hash,
        group: s.group,
        auth: s.auth,
        lifetime: range(lifetime),
    }
}

pub fn ipsec_transform(s: &Suite2) -> IpsecTransform {
    IpsecTransform {
        name: format!("{:?}-{:?}-{:?}-{:?}", s.cipher, s.integ, s.encap, s.pfs),
        cipher: s.cipher,
        integ: s.integ,
        encap: s.encap,
        pfs_group: s.pfs,
        lifetime: range(s.lifetime),
        lifetime_kb: None,
    }
}

pub fn subnet(a: [u8; 4], bits: u32) -> IdPayload {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4Subnet(Ipv4Addr::from(a), Ipv4Addr::from(mask)),
    }
}

/// The policy of one side. `me` is 0 for A, 1 for B.
pub fn side_policy(
    me: usize,
    p1: &[Suite1],
    p2: &[Suite2],
    p1_life: u64,
    dpd: u64,
) -> (Policy, Store) {
    let (my_ip, peer_ip) = if me == 0 { (A_IP, B_IP) } else { (B_IP, A_IP) };
    let peer_name = if me == 0 { "peer-b" } else { "peer-a" };
    let keys = rsa_keys();
    let auth = p1.first().map_or(AuthMethod::PreShared, |s| s.auth);
    let credentials = match auth {
        AuthMethod::PreShared => Credentials::PreShared {
            secret: peer_name.into(),
        },
        AuthMethod::RsaSig => Credentials::RsaSig {
            secret: "local-key".into(),
            peer_public_key: Some(keys[1 - me].1.clone()),
        },
    };
    let mode = p1.first().map_or(Phase1Mode::Main, |s| s.mode);
    let peer = Peer {
        name: peer_name.into(),
        address: SocketAddr::new(IpAddr::V4(peer_ip), 500),
        local_address: Some(SocketAddr::new(IpAddr::V4(my_ip), 500)),
        mode,
        transforms: p1.iter().map(|s| p1_transform(s, p1_life)).collect(),
        credentials,
        local_id: None,
        remote_id: None,
        dpd_interval: dpd,
        dpd_timeout: None,
        dpd_action: DpdAction::Clear,
        nat_t: true,
    };
    let nets = [subnet([10, 1, 0, 0], 16), subnet([10, 2, 0, 0], 16)];
    let suites = p2
        .iter()
        .enumerate()
        .map(|(i, s)| ike::policy::Suite {
            name: format!("suite-{i}"),
            protocols: vec![ProtocolProposal {
                protocol: s.protocol,
                transforms: vec![ipsec_transform(s)],
            }],
        })
        .collect();
    let conn = Connection {
        name: "net-a-net-b".into(),
        peer: peer_name.into(),
        local_id: Some(nets[me].clone()),
        remote_id: Some(nets[1 - me].clone()),
        suites,
        active: me == 0,
        keying_tries: 0,
    };
    let mut store = Store::default();
    store.psks.insert(peer_name.into(), PSK.to_vec());
    if let Ok(k) = PKey::private_key_from_der(&keys[me].0) {
        store.keys.insert("local-key".into(), k);
    }
    (super::policy(vec![peer], vec![conn]), store)
}

/// Fast timers for tests.
pub fn timers() -> Timers {
    Timers {
        retransmit_base: Duration::from_millis(500),
        retransmits: 5,
        exchange_max: Duration::from_secs(60),
        rekey_margin: Duration::from_secs(540),
        rekey_fuzz_percent: 100,
        nat_keepalive: Duration::from_secs(20),
        dpd_timeout: Duration::from_secs(15),
    }
}

/// Two engines with the same suites on both sides.
pub fn pair(p1: &[Suite1], p2: &[Suite2], seed: u64) -> Sim {
    pair_with(p1, p1, p2, p2, seed, 3600, 0)
}

pub fn pair_with(
    a1: &[Suite1],
    b1: &[Suite1],
    a2: &[Suite2],
    b2: &[Suite2],
    seed: u64,
    p1_life: u64,
    dpd: u64,
) -> Sim {
    let now = Instant::now();
    let (pa, sa) = side_policy(0, a1, a2, p1_life, dpd);
    let (pb, sb) = side_policy(1, b1, b2, p1_life, dpd);
    let a = Node::new("A", IpAddr::V4(A_IP), pa, sa, timers(), seed, now);
    let b = Node::new(
        "B",
        IpAddr::V4(B_IP),
        pb,
        sb,
        timers(),
        seed.wrapping_add(1),
        now,
    );
    Sim::new(a, b, now)
}
