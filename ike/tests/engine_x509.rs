//! Engine pairs authenticating with X.509 certificates: Main and Aggressive Mode, DN, FQDN
//! and default identities; revoked, foreign, mismatched and garbled certificates refused.

mod sim;

use ike::codec::Identity;
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::policy::*;
use ike::x509::{parse_dn, Material};
use ike_test_support::pki::{Ca, San};
use openssl::pkey::PKey;
use openssl::x509::X509;
use sim::setup::*;
use sim::Sim;
use std::sync::OnceLock;
use std::time::Duration;

const CONN: &str = "net-a-net-b";

/// A test CA with certificates for A's and B's keys (the sim's RSA keys), a second
/// certificate of A's key that the CRL revokes, and an unrelated CA certifying A's key.
struct Pki {
    ca: Vec<u8>,
    a: Vec<u8>,
    b: Vec<u8>,
    a_revoked: Vec<u8>,
    crl: Vec<u8>,
    other_ca: Vec<u8>,
    a_by_other: Vec<u8>,
}

fn der(c: &X509) -> Vec<u8> {
    c.to_der().expect("der")
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let keys = rsa_keys();
        let ka = PKey::private_key_from_der(&keys[0].0).expect("key");
        let kb = PKey::private_key_from_der(&keys[1].0).expect("key");
        let mut ca = Ca::new(&[("C", "US"), ("O", "Test"), ("CN", "Test CA")]).expect("ca");
        let a = ca
            .issue(
                &[("C", "US"), ("O", "Test"), ("CN", "a")],
                &[San::Dns("a.example.net".into())],
                &ka,
            )
            .expect("a");
        let b = ca
            .issue(
                &[("C", "US"), ("O", "Test"), ("CN", "b")],
                &[San::Dns("b.example.net".into()), San::Ip(B_IP.into())],
                &kb,
            )
            .expect("b");
        let a_revoked = ca
            .issue(
                &[("C", "US"), ("O", "Test"), ("CN", "a")],
                &[San::Dns("a.example.net".into())],
                &ka,
            )
            .expect("a2");
        let crl = ca.crl(&[&a_revoked]).expect("crl");
        let mut other = Ca::new(&[("O", "Elsewhere"), ("CN", "Other CA")]).expect("ca");
        let a_by_other = other
            .issue(&[("C", "US"), ("O", "Test"), ("CN", "a")], &[], &ka)
            .expect("a3");
        Pki {
            ca: der(&ca.cert),
            a: der(&a),
            b: der(&b),
            a_revoked: der(&a_revoked),
            crl,
            other_ca: der(&other.cert),
            a_by_other: der(&a_by_other),
        }
    })
}

fn suite(mode: Phase1Mode) -> Vec<Suite1> {
    vec![Suite1 {
        encr: EncrAlg::AesCbc256,
        hash: HashAlg::Sha256,
        group: Group::Modp2048,
        auth: AuthMethod::RsaSig,
        mode,
    }]
}

fn dn(s: &str) -> Identity {
    Identity::DerAsn1Dn(parse_dn(s).expect("dn"))
}

/// One side's certificate configuration.
struct Side {
    material: Material,
    local_id: Option<Identity>,
    remote_id: Option<Identity>,
}

impl Side {
    fn new(own: &[u8]) -> Side {
        let p = pki();
        Side {
            material: Material {
                cas: vec![p.ca.clone()],
                crls: vec![p.crl.clone()],
                own: vec![own.to_vec()],
                others: Vec::new(),
            },
            local_id: None,
            remote_id: None,
        }
    }
}

fn configure(node: &mut sim::Node, side: Side) {
    let mut policy = node.engine.config().policy.clone();
    policy.x509 = side.material;
    let peer = &mut policy.peers[0];
    if let Credentials::RsaSig {
        peer_public_key, ..
    } = &mut peer.credentials
    {
        *peer_public_key = None;
    }
    peer.local_id = side.local_id;
    peer.remote_id = side.remote_id;
    node.engine.set_policy(policy);
}

fn cert_pair(mode: Phase1Mode, a: Side, b: Side, seed: u64) -> Sim {
    let mut sim = pair(&suite(mode), &[Suite2::default()], seed);
    configure(&mut sim.a, a);
    configure(&mut sim.b, b);
    sim
}

fn logs(sim: &Sim) -> String {
    sim.a
        .logs
        .iter()
        .map(|(_, l)| format!("A: {l}"))
        .chain(sim.b.logs.iter().map(|(_, l)| format!("B: {l}")))
        .filter(|l| !l.contains("retransmitting"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(sim: &mut Sim) -> bool {
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    sim.run_until(Duration::from_secs(30), |s| {
        s.a.phase2_up(CONN) >= 1 && s.b.phase2_up(CONN) >= 1
    })
}

/// A refused negotiation: B logs `needle`, A is told AUTHENTICATION-FAILED, no SA remains.
fn refused(mut sim: Sim, needle: &[&str]) {
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    sim.advance(Duration::from_secs(5));
    let l = logs(&sim);
    for n in needle {
        assert!(
            sim.b.logs.iter().any(
                |(_, x)| x.contains("phase 1 authentication of peer-a failed") && x.contains(n)
            ),
            "B did not log {n:?}:\n{l}"
        );
    }
    assert!(
        sim.a.log_contains("AUTHENTICATION-FAILED"),
        "A was not told:\n{l}"
    );
    // (An Aggressive Mode initiator is up once it has sent its last message, until the
    // responder's AUTHENTICATION-FAILED arrives.)
    assert_eq!(sim.b.phase1_up(), 0, "{l}");
    assert_eq!(sim.a.phase2_up(CONN) + sim.b.phase2_up(CONN), 0, "{l}");
    assert!(sim.a.engine.phase1_sas().is_empty() && sim.b.engine.phase1_sas().is_empty());
}

#[test]
fn main_mode_with_certificates_and_dn_identities() {
    let p = pki();
    let mut a = Side::new(&p.a);
    a.local_id = Some(dn("/C=US/O=Test/CN=a"));
    // Written most-significant last (RFC 4514 order): still B's subject.
    a.remote_id = Some(dn("CN=b, O=Test, C=US"));
    let mut b = Side::new(&p.b);
    b.local_id = Some(dn("C=US, O=Test, CN=b"));
    b.remote_id = Some(dn("/C=US/O=Test/CN=a"));
    let mut sim = cert_pair(Phase1Mode::Main, a, b, 1);
    assert!(run(&mut sim), "not up:\n{}", logs(&sim));
    assert!(
        sim.b.log_contains(
            "peer peer-a: certificate \"C=US, O=Test, CN=a\" (issuer \"C=US, O=Test, CN=Test CA\") verified for DN \"C=US, O=Test, CN=a\""
        ),
        "{}",
        logs(&sim)
    );
    assert!(
        sim.a.log_contains(
            "certificate \"C=US, O=Test, CN=b\" (issuer \"C=US, O=Test, CN=Test CA\") verified"
        ),
        "{}",
        logs(&sim)
    );
    // The IDs went out as the certificates write them.
    let info = sim.a.engine.phase1_sas();
    assert_eq!(info.len(), 1);
}

#[test]
fn main_mode_default_identities_come_from_the_certificates() {
    // No ID configured: B's certificate carries B's address, so B shows its address
    // (isakmpd's default); A's does not carry A's, so A shows its subject.
    let p = pki();
    let mut sim = cert_pair(Phase1Mode::Main, Side::new(&p.a), Side::new(&p.b), 2);
    assert!(run(&mut sim), "not up:\n{}", logs(&sim));
    assert!(
        sim.a.log_contains("verified for 192.0.2.2"),
        "{}",
        logs(&sim)
    );
    assert!(
        sim.b.log_contains("verified for DN \"C=US, O=Test, CN=a\""),
        "{}",
        logs(&sim)
    );
}

#[test]
fn aggressive_mode_with_certificates_and_fqdn_identities() {
    let p = pki();
    let mut a = Side::new(&p.a);
    a.local_id = Some(Identity::Fqdn(b"a.example.net".to_vec()));
    a.remote_id = Some(Identity::Fqdn(b"b.example.net".to_vec()));
    let mut b = Side::new(&p.b);
    b.local_id = Some(Identity::Fqdn(b"b.example.net".to_vec()));
    b.remote_id = Some(Identity::Fqdn(b"a.example.net".to_vec()));
    let mut sim = cert_pair(Phase1Mode::Aggressive, a, b, 3);
    assert!(run(&mut sim), "not up:\n{}", logs(&sim));
    assert!(
        sim.b.log_contains("verified for FQDN a.example.net"),
        "{}",
        logs(&sim)
    );
    assert!(
        sim.a.log_contains("verified for FQDN b.example.net"),
        "{}",
        logs(&sim)
    );
}

#[test]
fn certificates_over_a_lossy_link() {
    let p = pki();
    for seed in 10..16u64 {
        let mode = if seed % 2 == 0 {
            Phase1Mode::Main
        } else {
            Phase1Mode::Aggressive
        };
        let mut sim = cert_pair(mode, Side::new(&p.a), Side::new(&p.b), seed);
        sim.faults = sim::Faults {
            loss: 20,
            duplicate: 10,
            reorder: 10,
        };
        let now = sim.now;
        sim.a.engine.initiate(now, CONN).expect("initiate");
        let ok = sim.run_until(Duration::from_secs(120), |s| {
            s.a.phase2_up(CONN) >= 1 && s.b.phase2_up(CONN) >= 1
        });
        assert!(ok, "seed {seed} {mode:?}:\n{}", logs(&sim));
    }
}

#[test]
fn revoked_certificate_is_refused() {
    let p = pki();
    let sim = cert_pair(
        Phase1Mode::Main,
        Side::new(&p.a_revoked),
        Side::new(&p.b),
        4,
    );
    refused(sim, &["certificate \"C=US, O=Test, CN=a\"", "is revoked"]);
}

#[test]
fn certificate_of_an_untrusted_ca_is_refused() {
    let p = pki();
    let sim = cert_pair(
        Phase1Mode::Main,
        Side::new(&p.a_by_other),
        Side::new(&p.b),
        5,
    );
    refused(sim, &["\"C=US, O=Test, CN=a\" is not trusted"]);
    // Trusting only the other CA refuses our CA's certificates the same way.
    let mut b = Side::new(&p.b);
    b.material.cas = vec![p.other_ca.clone()];
    b.material.crls.clear();
    let sim = cert_pair(Phase1Mode::Main, Side::new(&p.a), b, 6);
    refused(sim, &["not trusted"]);
}

#[test]
fn identity_not_in_the_certificate_is_refused() {
    let p = pki();
    let mut a = Side::new(&p.a);
    a.local_id = Some(Identity::Fqdn(b"b.example.net".to_vec()));
    let sim = cert_pair(Phase1Mode::Main, a, Side::new(&p.b), 7);
    refused(sim, &["does not carry the identity FQDN b.example.net"]);
    let mut a = Side::new(&p.a);
    a.local_id = Some(dn("/C=US/O=Test/CN=b"));
    let sim = cert_pair(Phase1Mode::Aggressive, a, Side::new(&p.b), 8);
    refused(
        sim,
        &["does not carry the identity DN \"C=US, O=Test, CN=b\""],
    );
}

#[test]
fn garbled_certificate_is_refused_without_panic() {
    let p = pki();
    let mut garbage = p.a.clone();
    for i in (20..garbage.len()).step_by(50) {
        garbage[i] ^= 0xa5;
    }
    for (i, bad) in [
        vec![0x30, 0x82, 0x10],
        garbage,
        b"not a certificate".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut a = Side::new(&p.a);
        a.material.own = vec![bad];
        let sim = cert_pair(Phase1Mode::Main, a, Side::new(&p.b), 20 + i as u64);
        refused(sim, &["certificate"]);
    }
}

#[test]
fn peer_without_certificate_uses_one_held_in_cert_directory() {
    // A sends none (it has none of its own); B holds A's certificate.
    let p = pki();
    let mut a = Side::new(&p.a);
    a.material.own.clear();
    a.local_id = Some(Identity::Fqdn(b"a.example.net".to_vec()));
    let mut b = Side::new(&p.b);
    b.material.others = vec![p.b.clone(), p.a.clone()];
    let mut sim = cert_pair(Phase1Mode::Main, a, b, 30);
    assert!(run(&mut sim), "not up:\n{}", logs(&sim));
    // Without it, B refuses clearly.
    let mut a = Side::new(&p.a);
    a.material.own.clear();
    let sim = cert_pair(Phase1Mode::Main, a, Side::new(&p.b), 31);
    refused(sim, &["peer sent no X.509 certificate"]);
}
