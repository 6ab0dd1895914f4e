//! X.509 certificates for RSA-signature authentication, as isakmpd's `[X509-Certificates]`
//! uses them: trust anchors (`CA-directory`), revocation lists (`CRL-directory`) and our own
//! certificates (`Cert-directory`), all public material handed in as DER by the caller.
//!
//! Everything here is a function of bytes: no paths, no clock of its own. Validity is checked
//! at the time the caller names (`at`, unix seconds) or, when it names none, at OpenSSL's
//! current time. The engine names none, so a daemon checks validity against the wall clock of
//! the (unprivileged) process that parses the peer's certificate; tests name a time.
//!
//! The chain is verified with OpenSSL's `X509Store`. The openssl crate offers no safe way to
//! put an in-memory CRL into a store, so revocation is checked here, as
//! `X509_V_FLAG_CRL_CHECK_ALL` would: every certificate of the verified chain below the trust
//! anchor is looked up in the CRLs its issuer signed. Once `CRL-directory` holds any CRL, a
//! certificate whose issuer has none there is refused (OpenSSL's "unable to get certificate
//! CRL"); with no CRLs at all, revocation is not checked. A CRL past its next update still
//! counts: what it revokes stays revoked.
//!
//! Hostile DER gives an error, never a panic: every parse goes through OpenSSL and every
//! failure becomes an [`X509Error`].

use crate::codec::Identity;
use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{CrlStatus, X509Crl, X509Name, X509NameRef, X509Ref, X509StoreContext, X509};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

/// The public X.509 material of `[X509-Certificates]`, as DER.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    /// `CA-directory`: the certificates of the authorities we trust (trust anchors).
    pub cas: Vec<Vec<u8>>,
    /// `CRL-directory`: certificate revocation lists.
    pub crls: Vec<Vec<u8>>,
    /// `Cert-directory` certificates whose public key is our `Private-key`'s: ours to send.
    pub own: Vec<Vec<u8>>,
    /// The other `Cert-directory` certificates: peers' certificates we hold, used (after the
    /// same checks) for a peer that sends none.
    pub others: Vec<Vec<u8>>,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: &[Vec<u8>]| -> Vec<String> {
            v.iter()
                .map(|d| {
                    X509::from_der(d)
                        .map(|c| name_to_string(c.subject_name()))
                        .unwrap_or_else(|_| "(unparsable)".into())
                })
                .collect()
        };
        f.debug_struct("Material")
            .field("cas", &names(&self.cas))
            .field("crls", &self.crls.len())
            .field("own", &names(&self.own))
            .field("others", &names(&self.others))
            .finish()
    }
}

impl Material {
    /// No trust anchors: certificates from peers cannot be checked.
    pub fn has_cas(&self) -> bool {
        !self.cas.is_empty()
    }

    /// The subject names (DER) of our CAs, for CERTREQ payloads.
    pub fn ca_names(&self) -> Vec<Vec<u8>> {
        self.cas
            .iter()
            .filter_map(|d| X509::from_der(d).ok())
            .filter_map(|c| c.subject_name().to_der().ok())
            .collect()
    }

    /// Our certificate for a peer we show `id` to: the first of ours that carries `id`
    /// (subject DN, in either order, or subjectAltName), else the first of ours.
    pub fn own_certificate(&self, id: Option<&Identity>) -> Option<&[u8]> {
        let carries = |der: &&Vec<u8>| {
            id.is_some_and(|id| {
                X509::from_der(der).is_ok_and(|c| carries_identity(&c, id, DnOrder::Either))
            })
        };
        self.own
            .iter()
            .find(carries)
            .or_else(|| self.own.first())
            .map(Vec::as_slice)
    }

    /// Held certificates (`Cert-directory`, not ours) that carry `id`.
    pub fn held_for(&self, id: &Identity) -> Vec<&[u8]> {
        self.others
            .iter()
            .filter(|d| X509::from_der(d).is_ok_and(|c| carries_identity(&c, id, DnOrder::Exact)))
            .map(Vec::as_slice)
            .collect()
    }
}

/// Why a certificate was not accepted. The text is for the log: it names the certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum X509Error {
    /// Not a DER certificate (or CRL) OpenSSL can read.
    Malformed(String),
    /// No `CA-directory` certificates to check against.
    NoTrustAnchors,
    /// The chain does not verify (unknown issuer, bad signature, expired, not yet valid...).
    Untrusted { subject: String, reason: String },
    /// A certificate of the chain is on its issuer's CRL.
    Revoked {
        subject: String,
        serial: String,
        issuer: String,
    },
    /// CRL checking is on but the issuer of `subject` has no CRL in `CRL-directory`.
    NoCrl { subject: String, issuer: String },
    /// The certificate does not carry the identity the peer claims.
    IdentityMismatch { subject: String, identity: String },
    /// The key in the certificate cannot be used.
    BadKey { subject: String, reason: String },
    /// The peer sent more certificates than a chain may hold ([`MAX_CHAIN`]).
    ChainTooLong { sent: usize },
}

/// Most certificates a peer's chain may hold, its own included: its certificate and up to
/// seven intermediates, as strongSwan's trust path. Each costs a parse and a signature
/// check before the peer has proven anything, so a longer chain is refused unread.
pub const MAX_CHAIN: usize = 8;

impl fmt::Display for X509Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            X509Error::Malformed(why) => write!(f, "malformed certificate: {why}"),
            X509Error::ChainTooLong { sent } => write!(
                f,
                "{sent} certificates sent, more than a chain may hold ({MAX_CHAIN})"
            ),
            X509Error::NoTrustAnchors => write!(
                f,
                "no CA certificates (CA-directory) to verify the certificate against"
            ),
            X509Error::Untrusted { subject, reason } => {
                write!(f, "certificate \"{subject}\" is not trusted: {reason}")
            }
            X509Error::Revoked {
                subject,
                serial,
                issuer,
            } => write!(
                f,
                "certificate \"{subject}\" (serial {serial}) is revoked by the CRL of \"{issuer}\""
            ),
            X509Error::NoCrl { subject, issuer } => write!(
                f,
                "certificate \"{subject}\" cannot be checked for revocation: no CRL of \"{issuer}\" in CRL-directory"
            ),
            X509Error::IdentityMismatch { subject, identity } => write!(
                f,
                "certificate \"{subject}\" does not carry the identity {identity} the peer claims"
            ),
            X509Error::BadKey { subject, reason } => {
                write!(f, "certificate \"{subject}\": unusable public key: {reason}")
            }
        }
    }
}

impl std::error::Error for X509Error {}

/// Why a certificate or CRL file cannot be read.
#[derive(Debug)]
pub enum ReadError {
    /// OpenSSL cannot parse it (PEM or DER).
    Unreadable(openssl::error::ErrorStack),
    /// A PEM file without a certificate in it.
    NoCertificate,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Unreadable(e) => e.fmt(f),
            ReadError::NoCertificate => f.write_str("no certificate in it"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Why a DN as the configuration writes it is not one.
#[derive(Debug)]
pub enum DnError {
    LoneBackslash,
    /// A part without `=`.
    NotAttributeValue(String),
    /// An attribute without a value.
    NoValue(String),
    /// An attribute name OpenSSL does not know.
    UnknownAttribute(String),
    Empty,
    OpenSsl(openssl::error::ErrorStack),
}

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnError::LoneBackslash => f.write_str("DN ends in a lone backslash"),
            DnError::NotAttributeValue(part) => write!(f, "{part:?} is not attribute=value"),
            DnError::NoValue(k) => write!(f, "{k} has no value"),
            DnError::UnknownAttribute(k) => write!(f, "{k:?} is not an attribute OpenSSL knows"),
            DnError::Empty => f.write_str("empty DN"),
            DnError::OpenSsl(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DnError {}

/// A peer certificate that verified: its subject (for logs) and public key (DER
/// SubjectPublicKeyInfo, for the signature check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
    pub issuer: String,
    pub public_key: Vec<u8>,
}

/// Verify `leaf` (DER), with the peer's other certificates `chain` as untrusted
/// intermediates, against `m`'s CAs and CRLs at `at` (unix seconds; `None`: now), and check
/// that it carries `identity` (the peer's ID payload): the subject for a DER_ASN1_DN,
/// a subjectAltName DNS name, e-mail address or IP address for FQDN, USER_FQDN and addresses.
pub fn verify_peer(
    leaf: &[u8],
    chain: &[&[u8]],
    identity: &Identity,
    m: &Material,
    at: Option<i64>,
) -> Result<Verified, X509Error> {
    let sent = chain.len().saturating_add(1);
    if sent > MAX_CHAIN {
        return Err(X509Error::ChainTooLong { sent });
    }
    let cert = parse_cert(leaf)?;
    let subject = name_to_string(cert.subject_name());
    let path = verify_chain(&cert, chain, m, at)?;
    check_revocation(&path, m)?;
    if !carries_identity(&cert, identity, DnOrder::Exact) {
        return Err(X509Error::IdentityMismatch {
            subject,
            identity: describe_identity(identity),
        });
    }
    let public_key = cert
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(|e| X509Error::BadKey {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
    Ok(Verified {
        subject,
        issuer: name_to_string(cert.issuer_name()),
        public_key,
    })
}

fn parse_cert(der: &[u8]) -> Result<X509, X509Error> {
    let cert = X509::from_der(der).map_err(|e| X509Error::Malformed(first_error(&e)))?;
    // OpenSSL accepts trailing bytes after the certificate; the peer's payload must be one.
    match cert.to_der() {
        Ok(again) if again.len() == der.len() => Ok(cert),
        _ => Err(X509Error::Malformed(
            "trailing bytes after the certificate".into(),
        )),
    }
}

fn first_error(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_string))
        .unwrap_or_else(|| "not DER".into())
}

/// The verified path, leaf first, trust anchor last.
fn verify_chain(
    cert: &X509Ref,
    chain: &[&[u8]],
    m: &Material,
    at: Option<i64>,
) -> Result<Vec<X509>, X509Error> {
    let subject = name_to_string(cert.subject_name());
    let internal = |e: openssl::error::ErrorStack| X509Error::Untrusted {
        subject: subject.clone(),
        reason: e.to_string(),
    };
    if !m.has_cas() {
        return Err(X509Error::NoTrustAnchors);
    }
    let mut store = X509StoreBuilder::new().map_err(internal)?;
    for ca in &m.cas {
        // The parent checked them; one that does not parse here is skipped.
        if let Ok(c) = X509::from_der(ca) {
            store.add_cert(c).map_err(internal)?;
        }
    }
    let mut param = X509VerifyParam::new().map_err(internal)?;
    // OpenSSL's depth counts the intermediates between the certificate and its anchor.
    param.set_depth(MAX_CHAIN as i32 - 1);
    if let Some(t) = at {
        param.set_time(t as _);
    }
    store.set_param(&param).map_err(internal)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(internal)?;
    for c in chain {
        untrusted.push(parse_cert(c)?).map_err(internal)?;
    }
    let mut ctx = X509StoreContext::new().map_err(internal)?;
    let (ok, reason, at_subject, path) = ctx
        .init(&store, cert, &untrusted, |c| {
            let ok = c.verify_cert()?;
            let at_subject = c.current_cert().map(|x| name_to_string(x.subject_name()));
            let path: Vec<X509> = c
                .chain()
                .map(|s| s.iter().map(|x| x.to_owned()).collect())
                .unwrap_or_default();
            Ok((ok, c.error().error_string(), at_subject, path))
        })
        .map_err(internal)?;
    if !ok {
        let reason = match at_subject {
            Some(s) if s != subject => format!("{reason} (at \"{s}\")"),
            _ => reason.to_string(),
        };
        return Err(X509Error::Untrusted { subject, reason });
    }
    Ok(path)
}

/// Every certificate of `path` below the trust anchor against its issuer's CRLs.
fn check_revocation(path: &[X509], m: &Material) -> Result<(), X509Error> {
    if m.crls.is_empty() {
        return Ok(());
    }
    let crls: Vec<X509Crl> = m
        .crls
        .iter()
        .filter_map(|d| X509Crl::from_der(d).ok())
        .collect();
    for pair in path.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        let Ok(issuer_key) = issuer.public_key() else {
            continue;
        };
        let mut found = false;
        for crl in &crls {
            let same_issuer = crl
                .issuer_name()
                .try_cmp(issuer.subject_name())
                .is_ok_and(|o| o == Ordering::Equal);
            if !same_issuer || !crl.verify(&issuer_key).unwrap_or(false) {
                continue;
            }
            found = true;
            if let CrlStatus::Revoked(_) = crl.get_by_cert(cert) {
                return Err(X509Error::Revoked {
                    subject: name_to_string(cert.subject_name()),
                    serial: serial_hex(cert),
                    issuer: name_to_string(issuer.subject_name()),
                });
            }
        }
        if !found {
            return Err(X509Error::NoCrl {
                subject: name_to_string(cert.subject_name()),
                issuer: name_to_string(issuer.subject_name()),
            });
        }
    }
    Ok(())
}

fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_else(|_| "?".into())
}

/// How DNs are compared: exactly (a peer's ID against its certificate), or also in reverse
/// RDN order (a configured string, which may be written most-significant first, as OpenSSL
/// and IPsec daemons print them, or last, as RFC 4514 does).
#[derive(Clone, Copy, PartialEq, Eq)]
enum DnOrder {
    Exact,
    Either,
}

fn carries_identity(cert: &X509Ref, id: &Identity, order: DnOrder) -> bool {
    let sans = cert.subject_alt_names();
    let san_any = |f: &dyn Fn(&openssl::x509::GeneralNameRef) -> bool| {
        sans.as_ref().is_some_and(|s| s.iter().any(f))
    };
    match id {
        Identity::DerAsn1Dn(der) => match X509Name::from_der(der) {
            Ok(n) => dn_equal(&n, cert.subject_name(), order),
            Err(_) => false,
        },
        Identity::Fqdn(name) => {
            san_any(&|g| g.dnsname().is_some_and(|d| eq_name(d.as_bytes(), name)))
        }
        Identity::UserFqdn(name) => {
            san_any(&|g| g.email().is_some_and(|d| eq_name(d.as_bytes(), name)))
        }
        Identity::Ipv4(a) => san_any(&|g| g.ipaddress() == Some(&a.octets()[..])),
        Identity::Ipv6(a) => san_any(&|g| g.ipaddress() == Some(&a.octets()[..])),
        _ => false,
    }
}

/// DNS names and e-mail addresses compare without regard to case or a final dot.
fn eq_name(a: &[u8], b: &[u8]) -> bool {
    let trim = |x: &[u8]| x.strip_suffix(b".").map_or(x.to_vec(), <[u8]>::to_vec);
    trim(a).eq_ignore_ascii_case(&trim(b))
}

fn dn_equal(a: &X509NameRef, b: &X509NameRef, order: DnOrder) -> bool {
    if a.try_cmp(b).is_ok_and(|o| o == Ordering::Equal) {
        return true;
    }
    order == DnOrder::Either
        && reversed(a).is_some_and(|r| r.try_cmp(b).is_ok_and(|o| o == Ordering::Equal))
}

fn reversed(n: &X509NameRef) -> Option<X509Name> {
    let entries: Vec<_> = n.entries().collect();
    let mut b = X509Name::builder().ok()?;
    for e in entries.iter().rev() {
        b.append_entry(e).ok()?;
    }
    Some(b.build())
}

/// Whether two identities name the same thing: DNs compared as X.509 compares names (case
/// and spacing of values aside) in either RDN order; names without regard to case.
pub fn identities_match(a: &Identity, b: &Identity) -> bool {
    match (a, b) {
        (Identity::DerAsn1Dn(x), Identity::DerAsn1Dn(y)) => {
            x == y
                || match (X509Name::from_der(x), X509Name::from_der(y)) {
                    (Ok(x), Ok(y)) => dn_equal(&x, &y, DnOrder::Either),
                    _ => false,
                }
        }
        (Identity::Fqdn(x), Identity::Fqdn(y)) | (Identity::UserFqdn(x), Identity::UserFqdn(y)) => {
            eq_name(x, y)
        }
        _ => a == b,
    }
}

/// An identity as an operator reads it.
pub fn describe_identity(id: &Identity) -> String {
    match id {
        Identity::Ipv4(a) => a.to_string(),
        Identity::Ipv6(a) => a.to_string(),
        Identity::Fqdn(n) => format!("FQDN {}", String::from_utf8_lossy(n)),
        Identity::UserFqdn(n) => format!("USER_FQDN {}", String::from_utf8_lossy(n)),
        Identity::DerAsn1Dn(d) => match dn_to_string(d) {
            Some(s) => format!("DN \"{s}\""),
            None => "DN (unparsable)".into(),
        },
        other => format!("{other:?}"),
    }
}

/// A DER Name as `C=US, O=Test, CN=west` (RDNs in the order of the encoding).
pub fn dn_to_string(der: &[u8]) -> Option<String> {
    X509Name::from_der(der).ok().map(|n| name_to_string(&n))
}

fn name_to_string(n: &X509NameRef) -> String {
    n.entries()
        .map(|e| {
            let nid = e.object().nid();
            let key = match nid {
                Nid::UNDEF => e.object().to_string(),
                _ => nid
                    .short_name()
                    .map_or_else(|_| e.object().to_string(), str::to_string),
            };
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={}", escape_value(&value))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '/') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A DN as isakmpd.conf writes it (`Name=` of a DER_ASN1_DN ID) to DER: OpenSSL's slash form
/// `/C=US/O=Test/CN=west` or the comma form `C=US, O=Test, CN=west`, RDNs in the order
/// written (which DER keeps). `\` escapes a separator; spaces around `=` and separators are
/// ignored. Attribute names are OpenSSL's short or long names, in any case (`E` and `Email`
/// for emailAddress).
pub fn parse_dn(s: &str) -> Result<Vec<u8>, DnError> {
    let s = s.trim();
    let (body, sep) = match s.strip_prefix('/') {
        Some(rest) => (rest, '/'),
        None => (s, ','),
    };
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(DnError::LoneBackslash),
            },
            c if c == sep || (sep == ',' && c == ';') => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut b = X509Name::builder().map_err(DnError::OpenSsl)?;
    let mut n = 0;
    for part in parts {
        if part.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(DnError::NotAttributeValue(part));
        };
        let (k, v) = (attribute_name(k.trim()), v.trim());
        if v.is_empty() {
            return Err(DnError::NoValue(k));
        }
        // No attribute name holds a NUL, and the openssl crate panics on one (it makes the
        // name a C string with unwrap).
        if k.contains('\0') {
            return Err(DnError::UnknownAttribute(k));
        }
        b.append_entry_by_text(&k, v)
            .map_err(|_| DnError::UnknownAttribute(k.clone()))?;
        n += 1;
    }
    if n == 0 {
        return Err(DnError::Empty);
    }
    b.build().to_der().map_err(DnError::OpenSsl)
}

fn attribute_name(k: &str) -> String {
    let known = [
        ("C", "C"),
        ("ST", "ST"),
        ("S", "ST"),
        ("L", "L"),
        ("O", "O"),
        ("OU", "OU"),
        ("CN", "CN"),
        ("E", "emailAddress"),
        ("EMAIL", "emailAddress"),
        ("EMAILADDRESS", "emailAddress"),
        ("DC", "DC"),
        ("UID", "UID"),
        ("SN", "SN"),
        ("GN", "GN"),
        ("T", "title"),
        ("TITLE", "title"),
        ("SERIALNUMBER", "serialNumber"),
        ("STREET", "street"),
        ("POSTALCODE", "postalCode"),
    ];
    let up = k.to_ascii_uppercase();
    known
        .iter()
        .find(|(a, _)| *a == up)
        .map_or_else(|| k.to_string(), |(_, b)| (*b).to_string())
}

/// The identity to show with our certificate when none is configured: our address if the
/// certificate's subjectAltName holds it (isakmpd's default ID is the address), else the
/// certificate's subject (what strongSwan and Libreswan default to).
pub fn default_identity(cert: &[u8], addr: IpAddr) -> Option<Identity> {
    let c = X509::from_der(cert).ok()?;
    let ip = match addr {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    };
    if carries_identity(&c, &ip, DnOrder::Exact) {
        return Some(ip);
    }
    c.subject_name().to_der().ok().map(Identity::DerAsn1Dn)
}

/// A configured DN written in the other RDN order, or with other string types, than our
/// certificate's subject becomes the subject exactly, so the peer compares like with like.
pub fn as_in_certificate(cert: &[u8], id: Identity) -> Identity {
    let Identity::DerAsn1Dn(der) = &id else {
        return id;
    };
    let (Ok(c), Ok(n)) = (X509::from_der(cert), X509Name::from_der(der)) else {
        return id;
    };
    if dn_equal(&n, c.subject_name(), DnOrder::Either) {
        if let Ok(subject) = c.subject_name().to_der() {
            return Identity::DerAsn1Dn(subject);
        }
    }
    id
}

/// Certificates in a file: PEM (one or more) or one DER certificate.
pub fn certs_from_file(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ReadError> {
    let certs = if is_pem(bytes) {
        X509::stack_from_pem(bytes).map_err(ReadError::Unreadable)?
    } else {
        vec![X509::from_der(bytes).map_err(ReadError::Unreadable)?]
    };
    if certs.is_empty() {
        return Err(ReadError::NoCertificate);
    }
    certs
        .iter()
        .map(|c| c.to_der().map_err(ReadError::Unreadable))
        .collect()
}

/// A CRL file, PEM or DER.
pub fn crl_from_file(bytes: &[u8]) -> Result<Vec<u8>, ReadError> {
    let crl = if is_pem(bytes) {
        X509Crl::from_pem(bytes)
    } else {
        X509Crl::from_der(bytes)
    }
    .map_err(ReadError::Unreadable)?;
    crl.to_der().map_err(ReadError::Unreadable)
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The public key (DER SubjectPublicKeyInfo) of a certificate.
pub fn public_key_of(cert: &[u8]) -> Result<Vec<u8>, ReadError> {
    X509::from_der(cert)
        .and_then(|c| c.public_key())
        .and_then(|k| k.public_key_to_der())
        .map_err(ReadError::Unreadable)
}

/// The subject of a DER certificate, for messages.
pub fn subject_of(cert: &[u8]) -> Option<String> {
    X509::from_der(cert)
        .ok()
        .map(|c| name_to_string(c.subject_name()))
}

#[cfg(test)]
mod tests;
