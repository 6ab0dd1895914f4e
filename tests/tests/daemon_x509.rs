//! Two isakmpd daemons (`-n -v`, no kernel) authenticating with X.509 certificates made at
//! test time: a CA, a certificate for each gateway, a CRL. Identities as DER_ASN1_DN (in
//! OpenSSL's slash form on one side, the comma form on the other) and as FQDN; a revoked
//! certificate is refused with a log line naming it.

use e2e::daemon::Daemon;
use e2e::pair::*;
use ike_test_support::pki::{rsa_key, Ca, San};
use openssl::x509::X509;
use std::time::Duration;

const ARGS: &[&str] = &["-n", "-v", "-j", "2"];

const EAST_DN: &[(&str, &str)] = &[("C", "US"), ("O", "Test"), ("CN", "east")];
const WEST_DN: &[(&str, &str)] = &[("C", "US"), ("O", "Test"), ("CN", "west")];

/// The files of one gateway: its key, the CA, its certificate, the CRL.
struct Files {
    key: Vec<u8>,
    ca: Vec<u8>,
    cert: Vec<u8>,
    crl: Vec<u8>,
}

impl Files {
    fn list(&self) -> Vec<(&str, &[u8])> {
        vec![
            ("local.key", &self.key),
            ("ca/ca.crt", &self.ca),
            ("certs/local.crt", &self.cert),
            ("crls/ca.crl", &self.crl),
        ]
    }
}

/// East's and west's files from one CA. With `revoke_east`, the CRL revokes east's
/// certificate; otherwise it revokes a third certificate only.
fn pki(revoke_east: bool) -> (Files, Files) {
    let mut ca = Ca::new(&[("C", "US"), ("O", "Test"), ("CN", "Test CA")]).expect("ca");
    let (ek, wk) = (rsa_key(2048).expect("key"), rsa_key(2048).expect("key"));
    let east = ca
        .issue(
            EAST_DN,
            &[
                San::Dns("east.example.net".into()),
                San::Ip(EAST_ADDR.parse().expect("ip")),
            ],
            &ek,
        )
        .expect("east");
    let west = ca
        .issue(WEST_DN, &[San::Dns("west.example.net".into())], &wk)
        .expect("west");
    let third = ca
        .issue(&[("CN", "third")], &[], &rsa_key(2048).expect("key"))
        .expect("third");
    let crl = ca
        .crl(&[if revoke_east { &east } else { &third }])
        .expect("crl");
    let pem = |c: &X509| c.to_pem().expect("pem");
    let files = |key: &openssl::pkey::PKey<openssl::pkey::Private>, cert: &X509| Files {
        key: key.private_key_to_pem_pkcs8().expect("pem"),
        ca: pem(&ca.cert),
        cert: pem(cert),
        crl: crl.clone(),
    };
    (files(&ek, &east), files(&wk, &west))
}

fn line_with(d: &Daemon, needle: &str) -> Option<String> {
    d.logs().into_iter().find(|l| l.contains(needle))
}

fn assert_up_with(pair: &mut Pair, east_sees: &str, west_sees: &str) {
    if let Err(e) = pair.wait_up(Duration::from_secs(20)) {
        panic!("{e}\n{}", pair.logs());
    }
    let logs = pair.logs();
    let l = line_with(&pair.east, "certificate \"C=US, O=Test, CN=west\"")
        .unwrap_or_else(|| panic!("east did not verify west's certificate\n{logs}"));
    assert!(l.contains(east_sees), "{l}\n{logs}");
    let l = line_with(&pair.west, "certificate \"C=US, O=Test, CN=east\"")
        .unwrap_or_else(|| panic!("west did not verify east's certificate\n{logs}"));
    assert!(l.contains(west_sees), "{l}\n{logs}");
    for (d, section) in [
        (&pair.east, EAST_PEER_SECTION),
        (&pair.west, WEST_PEER_SECTION),
    ] {
        let l = line_with(d, &format!("{PHASE1_UP} with {section}"))
            .unwrap_or_else(|| panic!("no phase 1 with {section}\n{logs}"));
        assert!(l.contains("RsaSig"), "{l}\n{logs}");
    }
}

/// DER_ASN1_DN identities on both sides, each side naming the other's subject as its
/// Remote-ID: east in OpenSSL's slash form, west in the comma form.
#[test]
fn x509_pair_with_dn_identities() {
    e2e::require_env!();
    let (east, west) = pki(false);
    let mut pair = Pair::start_x509(
        "xd",
        (
            &east.list(),
            Some("ID-type=DER_ASN1_DN\nName=/C=US/O=Test/CN=east\n"),
            Some("ID-type=DER_ASN1_DN\nName=/C=US/O=Test/CN=west\n"),
        ),
        (
            &west.list(),
            Some("ID-type=DER_ASN1_DN\nName=C=US, O=Test, CN=west\n"),
            Some("ID-type=DER_ASN1_DN\nName=C=US, O=Test, CN=east\n"),
        ),
        ARGS,
    )
    .expect("start the pair");
    assert_up_with(
        &mut pair,
        "verified for DN \"C=US, O=Test, CN=west\"",
        "verified for DN \"C=US, O=Test, CN=east\"",
    );
}

/// FQDN identities (subjectAltName DNS names); west names no Remote-ID, so any identity
/// east's certificate proves will do.
#[test]
fn x509_pair_with_fqdn_identities() {
    e2e::require_env!();
    let (east, west) = pki(false);
    let mut pair = Pair::start_x509(
        "xf",
        (
            &east.list(),
            Some("ID-type=FQDN\nName=east.example.net\n"),
            Some("ID-type=FQDN\nName=west.example.net\n"),
        ),
        (
            &west.list(),
            Some("ID-type=FQDN\nName=west.example.net\n"),
            None,
        ),
        ARGS,
    )
    .expect("start the pair");
    assert_up_with(
        &mut pair,
        "verified for FQDN west.example.net",
        "verified for FQDN east.example.net",
    );
}

/// West's CRL revokes east's certificate: west refuses it, naming the certificate and
/// saying it is revoked, and tells east, which gives up; no phase 2 comes up.
#[test]
fn x509_revoked_certificate_refused() {
    e2e::require_env!();
    let (east, west) = pki(true);
    let pair = Pair::start_x509(
        "xr",
        (&east.list(), None, None),
        (&west.list(), None, None),
        ARGS,
    )
    .expect("start the pair");
    let refused = e2e::wait_until(Duration::from_secs(20), || {
        line_with(&pair.west, "is revoked").is_some()
            && line_with(&pair.east, "AUTHENTICATION-FAILED").is_some()
    });
    let logs = pair.logs();
    assert!(refused, "no refusal\n{logs}");
    let l = line_with(&pair.west, "is revoked").unwrap_or_default();
    assert!(
        l.contains(&format!(
            "phase 1 authentication of {WEST_PEER_SECTION} failed"
        )) && l.contains("certificate \"C=US, O=Test, CN=east\"")
            && l.contains("revoked by the CRL of \"C=US, O=Test, CN=Test CA\""),
        "{l}\n{logs}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pair.west.log_count(PHASE1_UP), 0, "{logs}");
    assert_eq!(
        pair.east.log_count(PHASE2_UP) + pair.west.log_count(PHASE2_UP),
        0,
        "{logs}"
    );
}
