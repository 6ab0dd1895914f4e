//! Hashes, HMAC (the Oakley PRF), randomness and raw CBC encryption.

use openssl::hash::Hasher;
use openssl::symm::{Crypter, Mode};

use super::{CryptoError, EncrAlg, HashAlg, Secret};

/// OpenSSL digests, HMAC and RAND fail only when memory cannot be allocated (all inputs are
/// valid by construction here). Rust's allocator aborts in that case too, and so do we:
/// returning anything (an empty hash, say) could be mistaken for a real value.
fn or_abort<T, E>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(_) => std::process::abort(),
    }
}

/// `n` bytes from OpenSSL's CSPRNG (cookies, nonces, IVs, SPIs).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    or_abort(openssl::rand::rand_bytes(&mut v));
    v
}

/// `h(parts[0] | parts[1] | ...)`.
pub fn hash(h: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
    or_abort(try_hash(h, parts))
}

fn try_hash(h: HashAlg, parts: &[&[u8]]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut hasher = Hasher::new(h.md())?;
    for p in parts {
        hasher.update(p)?;
    }
    Ok(hasher.finish()?.to_vec())
}

/// The Oakley PRF: `HMAC-h(key, parts[0] | parts[1] | ...)` (RFC 2409 section 5, RFC 2104).
pub fn prf(h: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    or_abort(try_prf(h, key, parts))
}

fn try_prf(h: HashAlg, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    // HMAC (RFC 2104) over OpenSSL digests: H((K ^ opad) | H((K ^ ipad) | text)). Two
    // digest contexts cost less than building an HMAC EVP_PKEY and signer for each call.
    let block = h.hmac_block_len();
    let mut k = Secret::new(vec![0u8; block]);
    if key.len() > block {
        let d = try_hash(h, &[key])?;
        k.as_mut_bytes()[..d.len()].copy_from_slice(&d);
    } else {
        k.as_mut_bytes()[..key.len()].copy_from_slice(key);
    }
    let mut pad = Secret::new(k.iter().map(|b| b ^ 0x36).collect());
    let mut inner = Hasher::new(h.md())?;
    inner.update(&pad)?;
    for p in parts {
        inner.update(p)?;
    }
    let inner = inner.finish()?;
    for (p, b) in pad.as_mut_bytes().iter_mut().zip(k.iter()) {
        *p = b ^ 0x5c;
    }
    let mut outer = Hasher::new(h.md())?;
    outer.update(&pad)?;
    outer.update(&inner)?;
    Ok(outer.finish()?.to_vec())
}

fn check_lengths(e: EncrAlg, key: &[u8], iv: &[u8], data: &[u8]) -> Result<(), CryptoError> {
    if key.len() != e.key_len() {
        return Err(CryptoError::InvalidKeyLength {
            expected: e.key_len(),
            got: key.len(),
        });
    }
    if iv.len() != e.block_len() {
        return Err(CryptoError::InvalidIvLength {
            expected: e.block_len(),
            got: iv.len(),
        });
    }
    let partial = data.len() % e.block_len();
    if partial != 0 {
        return Err(CryptoError::InvalidDataLength {
            block: e.block_len(),
            got: data.len(),
        });
    }
    Ok(())
}

fn cbc(e: EncrAlg, mode: Mode, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_lengths(e, key, iv, data)?;
    let mut c = Crypter::new(e.cipher(), mode, key, Some(iv))?;
    c.pad(false);
    let mut out = vec![0u8; data.len() + e.block_len()];
    let mut n = c.update(data, &mut out)?;
    n += c.finalize(&mut out[n..])?;
    out.truncate(n);
    Ok(out)
}

/// Raw CBC encryption without padding (ISAKMP pads itself, RFC 2409 section 5.3);
/// `data` must be a whole number of blocks. The next IV is the last block of the result.
pub fn encrypt(e: EncrAlg, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    cbc(e, Mode::Encrypt, key, iv, data)
}

/// Raw CBC decryption without padding; `data` must be a whole number of blocks.
/// The next IV is the last block of `data` (the ciphertext).
pub fn decrypt(e: EncrAlg, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    cbc(e, Mode::Decrypt, key, iv, data)
}
