//! RSA signatures as IKEv1 uses them (RFC 2409 section 5.1): PKCS#1 v1.5 type-1 padding
//! over the raw HASH_I/HASH_R bytes, with no DigestInfo (what strongSwan and pluto do).

use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};

use super::CryptoError;

/// Signs `hash` (HASH_I or HASH_R) with the RSA private `key`.
pub fn rsa_sign(key: &PKeyRef<Private>, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if key.id() != Id::RSA {
        return Err(CryptoError::InvalidKey("not an RSA key"));
    }
    let mut ctx = PkeyCtx::new(key)?;
    ctx.sign_init()?;
    ctx.set_rsa_padding(Padding::PKCS1)?;
    let mut sig = Vec::new();
    ctx.sign_to_vec(hash, &mut sig)?;
    Ok(sig)
}

/// Parses an RSA public key given as DER SubjectPublicKeyInfo, PEM "PUBLIC KEY", or PKCS#1
/// "RSA PUBLIC KEY" (PEM or DER).
pub fn rsa_public_key(der_or_pem: &[u8]) -> Result<PKey<Public>, CryptoError> {
    let pem =
        der_or_pem.starts_with(b"-----") || der_or_pem.windows(11).any(|w| w == b"-----BEGIN ");
    let key = if pem {
        PKey::public_key_from_pem(der_or_pem)
            .or_else(|_| Rsa::public_key_from_pem_pkcs1(der_or_pem).and_then(PKey::from_rsa))
    } else {
        PKey::public_key_from_der(der_or_pem)
            .or_else(|_| Rsa::public_key_from_der_pkcs1(der_or_pem).and_then(PKey::from_rsa))
    }
    .map_err(|_| CryptoError::InvalidKey("cannot parse the public key"))?;
    if key.id() != Id::RSA {
        return Err(CryptoError::InvalidKey("not an RSA key"));
    }
    Ok(key)
}

/// Checks an IKEv1 RSA signature `sig` over `hash`. `Ok(false)` for a wrong signature;
/// `Err` only when the key cannot be used.
pub fn rsa_verify(public_der_or_pem: &[u8], hash: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
    let key = rsa_public_key(public_der_or_pem)?;
    rsa_verify_key(&key, hash, sig)
}

/// As `rsa_verify`, with a parsed key.
pub fn rsa_verify_key(key: &PKeyRef<Public>, hash: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
    if key.id() != Id::RSA {
        return Err(CryptoError::InvalidKey("not an RSA key"));
    }
    if sig.len() != key.size() {
        return Ok(false);
    }
    let mut ctx = PkeyCtx::new(key)?;
    ctx.verify_init()?;
    ctx.set_rsa_padding(Padding::PKCS1)?;
    // OpenSSL reports a malformed signature as an error, a mismatch as false: both are
    // simply "not verified" here.
    Ok(ctx.verify(hash, sig).unwrap_or(false))
}
