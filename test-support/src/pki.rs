//! A throw-away PKI for tests, made with the openssl crate at test time: a CA, certificates
//! it issues (RSA keys, subject, subjectAltNames, validity) and CRLs it signs.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509CrlBuilder, X509Name, X509RevokedBuilder, X509};

/// A subjectAltName entry of an issued certificate.
#[derive(Clone, Debug)]
pub enum San {
    Dns(String),
    Email(String),
    Ip(std::net::IpAddr),
}

/// A certification authority: its key, its self-signed certificate, the next serial number.
pub struct Ca {
    pub key: PKey<Private>,
    pub cert: X509,
    next_serial: u32,
}

/// A fresh RSA key.
pub fn rsa_key(bits: u32) -> Result<PKey<Private>, ErrorStack> {
    PKey::from_rsa(Rsa::generate(bits)?)
}

/// A name from `(attribute, value)` pairs, in that order.
pub fn name(parts: &[(&str, &str)]) -> Result<X509Name, ErrorStack> {
    let mut b = X509Name::builder()?;
    for (k, v) in parts {
        b.append_entry_by_text(k, v)?;
    }
    Ok(b.build())
}

impl Ca {
    /// A self-signed CA named `subject`, valid from a day ago for ten years.
    pub fn new(subject: &[(&str, &str)]) -> Result<Ca, ErrorStack> {
        let key = rsa_key(2048)?;
        let name = name(subject)?;
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*BigNum::from_u32(1)?.to_asn1_integer()?)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
        b.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Ca {
            key,
            cert: b.build(),
            next_serial: 2,
        })
    }

    /// A certificate for `key` named `subject` with `sans`, valid from a day ago for a year.
    pub fn issue(
        &mut self,
        subject: &[(&str, &str)],
        sans: &[San],
        key: &PKey<Private>,
    ) -> Result<X509, ErrorStack> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.issue_valid(subject, sans, key, now - 86_400, now + 365 * 86_400)
    }

    /// As [`Ca::issue`], valid from `not_before` to `not_after` (unix seconds).
    pub fn issue_valid(
        &mut self,
        subject: &[(&str, &str)],
        sans: &[San],
        key: &PKey<Private>,
        not_before: i64,
        not_after: i64,
    ) -> Result<X509, ErrorStack> {
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*BigNum::from_u32(self.next_serial)?.to_asn1_integer()?)?;
        self.next_serial += 1;
        b.set_subject_name(&*name(subject)?)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(key)?;
        b.set_not_before(&*Asn1Time::from_unix(not_before as _)?)?;
        b.set_not_after(&*Asn1Time::from_unix(not_after as _)?)?;
        b.append_extension(BasicConstraints::new().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        if !sans.is_empty() {
            let mut s = SubjectAlternativeName::new();
            for san in sans {
                match san {
                    San::Dns(d) => s.dns(d),
                    San::Email(e) => s.email(e),
                    San::Ip(a) => s.ip(&a.to_string()),
                };
            }
            let ext = s.build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(ext)?;
        }
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(b.build())
    }

    /// A CRL of this CA revoking `revoked`, valid for thirty days, as DER.
    pub fn crl(&self, revoked: &[&X509]) -> Result<Vec<u8>, ErrorStack> {
        let mut b = X509CrlBuilder::new()?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&X509Builder::new()?.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.append_extension(CrlNumber::new(BigNum::from_u32(self.next_serial)?)?.build()?)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_last_update(&*Asn1Time::days_from_now(0)?)?;
        b.set_next_update(&*Asn1Time::days_from_now(30)?)?;
        for c in revoked {
            let mut r = X509RevokedBuilder::new()?;
            r.set_serial_number(c.serial_number())?;
            r.set_revocation_date(&*Asn1Time::days_from_now(0)?)?;
            b.add_revoked(r.build())?;
        }
        b.sign(&self.key, MessageDigest::sha256())?;
        b.build()?.to_der()
    }
}
