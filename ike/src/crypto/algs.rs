//! The algorithms of Oakley (phase 1): ciphers, hashes and Diffie-Hellman groups.

use serde::{Deserialize, Serialize};

/// Phase-1 encryption algorithm (Oakley ENCRYPTION_ALGORITHM with KEY_LENGTH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncrAlg {
    TripleDesCbc,
    AesCbc128,
    AesCbc192,
    AesCbc256,
}

/// Phase-1 hash algorithm; its HMAC is the PRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// Diffie-Hellman group (Oakley GROUP_DESCRIPTION): MODP of RFC 2409/3526, ECP of RFC 5903.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    Modp1024,
    Modp1536,
    Modp2048,
    Modp3072,
    Modp4096,
    Modp6144,
    Modp8192,
    Ecp256,
    Ecp384,
    Ecp521,
}
