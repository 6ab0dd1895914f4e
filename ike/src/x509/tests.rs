use super::*;
use ike_test_support::pki::{rsa_key, Ca, San};
use std::net::Ipv4Addr;
use std::sync::OnceLock;

const CA_DN: &[(&str, &str)] = &[("C", "US"), ("O", "Test"), ("CN", "Test CA")];
const WEST_DN: &[(&str, &str)] = &[("C", "US"), ("O", "Test"), ("CN", "west")];
const EAST_DN: &[(&str, &str)] = &[("C", "US"), ("O", "Test"), ("CN", "east")];

/// A CA, west's and east's certificates (east revoked), a CRL, and an unrelated CA.
struct Pki {
    ca: Ca,
    other_ca: Ca,
    west: Vec<u8>,
    east: Vec<u8>,
    crl: Vec<u8>,
    /// West's key certified by the unrelated CA.
    west_by_other: Vec<u8>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca = Ca::new(CA_DN).expect("ca");
        let mut other_ca =
            Ca::new(&[("C", "US"), ("O", "Elsewhere"), ("CN", "Other CA")]).expect("ca");
        let wk = rsa_key(2048).expect("key");
        let ek = rsa_key(2048).expect("key");
        let west = ca
            .issue(
                WEST_DN,
                &[
                    San::Dns("west.example.net".into()),
                    San::Email("admin@west.example.net".into()),
                    San::Ip("192.0.2.2".parse().expect("ip")),
                ],
                &wk,
            )
            .expect("west");
        let east = ca
            .issue(EAST_DN, &[San::Dns("east.example.net".into())], &ek)
            .expect("east");
        let crl = ca.crl(&[&east]).expect("crl");
        let west_by_other = other_ca.issue(WEST_DN, &[], &wk).expect("cert");
        Pki {
            west: west.to_der().expect("der"),
            east: east.to_der().expect("der"),
            west_by_other: west_by_other.to_der().expect("der"),
            crl,
            ca,
            other_ca,
        }
    })
}

fn material(with_crl: bool) -> Material {
    let p = pki();
    Material {
        cas: vec![p.ca.cert.to_der().expect("der")],
        crls: if with_crl {
            vec![p.crl.clone()]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

fn dn(s: &str) -> Identity {
    Identity::DerAsn1Dn(parse_dn(s).expect("dn"))
}

#[test]
fn chain_to_our_ca_verifies_and_gives_the_key() {
    let p = pki();
    let v = verify_peer(
        &p.west,
        &[],
        &dn("/C=US/O=Test/CN=west"),
        &material(true),
        None,
    )
    .expect("verified");
    assert_eq!(v.subject, "C=US, O=Test, CN=west");
    assert_eq!(v.issuer, "C=US, O=Test, CN=Test CA");
    assert_eq!(v.public_key, public_key_of(&p.west).expect("key"));
}

#[test]
fn certificate_of_another_ca_is_refused() {
    let p = pki();
    let e = verify_peer(
        &p.west_by_other,
        &[],
        &dn("/C=US/O=Test/CN=west"),
        &material(false),
        None,
    )
    .expect_err("refused");
    assert!(matches!(e, X509Error::Untrusted { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("CN=west") && text.contains("not trusted"),
        "{text}"
    );
    // The other CA's own certificate as an intermediate does not help: it is not trusted.
    let other = p.other_ca.cert.to_der().expect("der");
    assert!(verify_peer(
        &p.west_by_other,
        &[&other],
        &dn("/C=US/O=Test/CN=west"),
        &material(false),
        None
    )
    .is_err());
    // Nor does a store without any CA.
    assert_eq!(
        verify_peer(
            &p.west,
            &[],
            &dn("/C=US/O=Test/CN=west"),
            &Material::default(),
            None
        ),
        Err(X509Error::NoTrustAnchors)
    );
}

#[test]
fn revoked_certificate_is_refused_naming_subject_and_revoked() {
    let p = pki();
    let id = dn("C=US, O=Test, CN=east");
    let e = verify_peer(&p.east, &[], &id, &material(true), None).expect_err("refused");
    assert!(matches!(e, X509Error::Revoked { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("C=US, O=Test, CN=east") && text.contains("revoked"),
        "{text}"
    );
    // Without the CRL the same certificate is good.
    assert!(verify_peer(&p.east, &[], &id, &material(false), None).is_ok());
}

#[test]
fn crl_checking_needs_a_crl_from_each_issuer() {
    let p = pki();
    // A CRL from another CA is present, none from ours: CRL checking is on and cannot be done.
    let other_crl = p.other_ca.crl(&[]).expect("crl");
    let mut m = material(false);
    m.crls.push(other_crl);
    let e = verify_peer(&p.west, &[], &dn("/C=US/O=Test/CN=west"), &m, None).expect_err("refused");
    assert!(matches!(e, X509Error::NoCrl { .. }), "{e}");
    // A CRL claiming our CA's name but signed by another key does not count either.
    let mut forged = Ca::new(CA_DN).expect("ca");
    let mut m = material(false);
    m.crls.push(forged.crl(&[]).expect("crl"));
    let _ = forged.issue(EAST_DN, &[], &forged.key.clone());
    assert!(matches!(
        verify_peer(&p.east, &[], &dn("/C=US/O=Test/CN=east"), &m, None),
        Err(X509Error::NoCrl { .. })
    ));
}

#[test]
fn identity_must_be_in_the_certificate() {
    let p = pki();
    let m = material(true);
    let ok = [
        dn("/C=US/O=Test/CN=west"),
        dn("C = US, O = Test, CN = west"),
        Identity::Fqdn(b"west.example.net".to_vec()),
        Identity::Fqdn(b"WEST.example.net".to_vec()),
        Identity::UserFqdn(b"admin@west.example.net".to_vec()),
        Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 2)),
    ];
    for id in &ok {
        assert!(verify_peer(&p.west, &[], id, &m, None).is_ok(), "{id:?}");
    }
    let bad = [
        dn("/C=US/O=Test/CN=east"),
        // The peer's ID must be the subject itself, not its reversal.
        dn("CN=west, O=Test, C=US"),
        Identity::Fqdn(b"east.example.net".to_vec()),
        Identity::UserFqdn(b"root@west.example.net".to_vec()),
        Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
        Identity::KeyId(b"west".to_vec()),
        Identity::DerAsn1Dn(b"\x30\x03garbage".to_vec()),
    ];
    for id in &bad {
        let e = verify_peer(&p.west, &[], id, &m, None).expect_err("refused");
        assert!(
            matches!(e, X509Error::IdentityMismatch { .. }),
            "{id:?}: {e}"
        );
        assert!(e.to_string().contains("does not carry"), "{e}");
    }
}

#[test]
fn validity_is_checked_at_the_time_given() {
    let mut ca = Ca::new(CA_DN).expect("ca");
    let key = rsa_key(2048).expect("key");
    let cert = ca
        .issue_valid(WEST_DN, &[], &key, 1_000_000_000, 1_100_000_000)
        .expect("cert")
        .to_der()
        .expect("der");
    let m = Material {
        cas: vec![ca.cert.to_der().expect("der")],
        ..Default::default()
    };
    let id = dn("/C=US/O=Test/CN=west");
    // Then the certificate was valid but the CA (made today) was not yet; now the
    // certificate has expired.
    let e = verify_peer(&cert, &[], &id, &m, Some(1_050_000_000)).expect_err("ca not yet valid");
    assert!(e.to_string().contains("not yet valid"), "{e}");
    let e = verify_peer(&cert, &[], &id, &m, None).expect_err("expired");
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn garbled_der_is_an_error_never_a_panic() {
    let p = pki();
    let m = material(true);
    let id = dn("/C=US/O=Test/CN=west");
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x30],
        vec![0x30, 0x82, 0xff, 0xff],
        vec![0xff; 64],
        p.west[..p.west.len() / 2].to_vec(),
    ];
    let mut trailing = p.west.clone();
    trailing.extend_from_slice(b"extra");
    cases.push(trailing);
    // Every single-byte corruption of the header and a sample of the body.
    for i in (0..p.west.len()).step_by(7) {
        let mut c = p.west.clone();
        c[i] ^= 0x5a;
        cases.push(c);
    }
    for c in &cases {
        let r = std::panic::catch_unwind(|| verify_peer(c, &[], &id, &m, None));
        let r = r.expect("no panic");
        if c != &p.west {
            assert!(r.is_err(), "corrupted certificate accepted");
        }
        // Garbage as an intermediate, too.
        let r = std::panic::catch_unwind(|| verify_peer(&p.west, &[c], &id, &m, None));
        assert!(r.is_ok(), "panic with a garbled intermediate");
    }
    assert!(matches!(
        verify_peer(&[0x30, 0x00], &[], &id, &m, None),
        Err(X509Error::Malformed(_))
    ));
    // Garbled trust material from the caller is skipped, not fatal.
    let mut m2 = material(true);
    m2.cas.push(vec![1, 2, 3]);
    m2.crls.push(vec![4, 5, 6]);
    assert!(verify_peer(&p.west, &[], &id, &m2, None).is_ok());
    assert!(dn_to_string(&[0x30, 0x05, 1]).is_none());
    assert!(public_key_of(&[0x30]).is_err());
}

#[test]
fn dn_strings_in_slash_and_comma_form() {
    let a = parse_dn("/C=US/O=Test/CN=west").expect("slash");
    let b = parse_dn("C=US, O=Test, CN=west").expect("comma");
    let c = parse_dn("  c = US ,o=Test;  cn=west ").expect("loose");
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(dn_to_string(&a).as_deref(), Some("C=US, O=Test, CN=west"));
    let e = parse_dn("/O=Acme\\/Sub/CN=a\\,b/E=x@y").expect("escapes");
    assert_eq!(
        dn_to_string(&e).as_deref(),
        Some("O=Acme\\/Sub, CN=a\\,b, emailAddress=x@y")
    );
    for bad in ["", "/", "C", "C=", "NOSUCHATTR=x", "C=US\\"] {
        assert!(parse_dn(bad).is_err(), "{bad:?}");
    }
    // Configured DNs match in either order and regardless of case.
    assert!(identities_match(
        &dn("CN=west, O=Test, C=US"),
        &dn("/C=US/O=Test/CN=west")
    ));
    assert!(identities_match(
        &dn("/C=us/O=TEST/CN=West"),
        &dn("/C=US/O=Test/CN=west")
    ));
    assert!(!identities_match(
        &dn("/C=US/O=Test/CN=east"),
        &dn("/C=US/O=Test/CN=west")
    ));
    assert!(identities_match(
        &Identity::Fqdn(b"A.example".to_vec()),
        &Identity::Fqdn(b"a.example".to_vec())
    ));
}

#[test]
fn our_certificate_and_identity() {
    let p = pki();
    let m = Material {
        own: vec![p.east.clone(), p.west.clone()],
        ..material(false)
    };
    // The certificate that carries our configured ID, else the first.
    assert_eq!(
        m.own_certificate(Some(&dn("CN=west, O=Test, C=US"))),
        Some(&p.west[..])
    );
    assert_eq!(
        m.own_certificate(Some(&Identity::Fqdn(b"west.example.net".to_vec()))),
        Some(&p.west[..])
    );
    assert_eq!(m.own_certificate(None), Some(&p.east[..]));
    // Default ID: the address when the certificate carries it, else the subject.
    assert_eq!(
        default_identity(&p.west, "192.0.2.2".parse().expect("ip")),
        Some(Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 2)))
    );
    assert_eq!(
        default_identity(&p.west, "192.0.2.9".parse().expect("ip")),
        Some(dn("/C=US/O=Test/CN=west"))
    );
    // A configured DN in the other order is sent as the certificate writes it.
    assert_eq!(
        as_in_certificate(&p.west, dn("CN=west, O=Test, C=US")),
        dn("C=US, O=Test, CN=west")
    );
    let ca_names = m.ca_names();
    assert_eq!(ca_names.len(), 1);
    assert_eq!(
        dn_to_string(&ca_names[0]).as_deref(),
        Some("C=US, O=Test, CN=Test CA")
    );
    let held = Material {
        others: vec![p.east.clone(), p.west.clone()],
        ..material(false)
    };
    assert_eq!(
        held.held_for(&Identity::Fqdn(b"west.example.net".to_vec())),
        vec![&p.west[..]]
    );
}

#[test]
fn files_in_pem_and_der() {
    let p = pki();
    let pem = p.ca.cert.to_pem().expect("pem");
    let mut two = pem.clone();
    two.extend_from_slice(&X509::from_der(&p.west).expect("x").to_pem().expect("pem"));
    assert_eq!(certs_from_file(&pem).expect("pem").len(), 1);
    assert_eq!(certs_from_file(&two).expect("pem").len(), 2);
    assert_eq!(certs_from_file(&p.west).expect("der"), vec![p.west.clone()]);
    assert!(certs_from_file(b"hello").is_err());
    assert!(
        certs_from_file(b"-----BEGIN CERTIFICATE-----\nzz\n-----END CERTIFICATE-----\n").is_err()
    );
    assert_eq!(crl_from_file(&p.crl).expect("der"), p.crl);
    let crl_pem = X509Crl::from_der(&p.crl)
        .expect("crl")
        .to_pem()
        .expect("pem");
    assert_eq!(crl_from_file(&crl_pem).expect("pem"), p.crl);
    assert!(crl_from_file(&pem).is_err());
}

#[test]
fn a_chain_longer_than_max_chain_is_refused_unread() {
    let p = pki();
    let id = dn("/C=US/O=Test/CN=west");
    let m = material(true);
    let seven: Vec<&[u8]> = vec![p.west.as_slice(); MAX_CHAIN - 1];
    assert!(verify_peer(&p.west, &seven, &id, &m, None).is_ok());
    // Garbage would fail to parse: refused before any is read.
    let junk = [0u8; 3];
    let eight: Vec<&[u8]> = vec![junk.as_slice(); MAX_CHAIN];
    let e = verify_peer(&p.west, &eight, &id, &m, None).expect_err("too long");
    assert_eq!(e, X509Error::ChainTooLong { sent: 9 });
    assert_eq!(
        e.to_string(),
        "9 certificates sent, more than a chain may hold (8)"
    );
}

/// Found by fuzzing (fuzzing/corpus/x509/regressions/): a NUL in an attribute name made the
/// openssl crate panic (it turns the name into a C string with unwrap); a NUL in a value is
/// passed with its length and is only data.
#[test]
fn parse_dn_refuses_a_nul_in_an_attribute_name() {
    assert!(matches!(
        parse_dn("C\0N=west"),
        Err(DnError::UnknownAttribute(k)) if k == "C\0N"
    ));
    assert!(matches!(
        parse_dn("/O=Test/\0=x"),
        Err(DnError::UnknownAttribute(_))
    ));
    assert!(parse_dn("CN=we\0st").is_ok());
}
