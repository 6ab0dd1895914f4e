//! Secret byte strings and the error type of the crypto module.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Key material (g^xy, SKEYID and its children, KEYMAT): a byte vector that is wiped when
/// dropped and never printed. It crosses process boundaries (helper answers) via serde.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of `bytes` (they are wiped when the `Secret` drops).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// The first `len` bytes of `bytes`; the bytes cut off are wiped.
    pub fn truncated(mut bytes: Vec<u8>, len: usize) -> Secret {
        if bytes.len() > len {
            bytes[len..].zeroize();
            bytes.truncate(len);
        }
        Secret(bytes)
    }

    /// The bytes, to fill in place.
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Secret {
        Secret(v)
    }
}

impl Deref for Secret {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Constant-time for equal lengths (OpenSSL's CRYPTO_memcmp).
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0.len() == other.0.len() && openssl::memcmp::eq(&self.0, &other.0)
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// What can go wrong in the crypto module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// OpenSSL reported an error (its error stack, rendered).
    OpenSsl(String),
    /// The peer's Diffie-Hellman public value is the wrong length, out of range
    /// (not 1 < y < p-1), or not a point on the curve.
    InvalidPublicValue(&'static str),
    /// A private value was made for another group than the one it is used with.
    GroupMismatch,
    /// A stored private value is malformed.
    InvalidPrivateValue,
    /// A key of the wrong length for the cipher.
    InvalidKeyLength { expected: usize, got: usize },
    /// An IV of the wrong length for the cipher.
    InvalidIvLength { expected: usize, got: usize },
    /// Data to encrypt or decrypt is not a whole number of blocks.
    InvalidDataLength { block: usize, got: usize },
    /// A key that is not an RSA key, or that cannot be parsed.
    InvalidKey(&'static str),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::OpenSsl(e) => write!(f, "OpenSSL error: {e}"),
            CryptoError::InvalidPublicValue(why) => {
                write!(f, "invalid Diffie-Hellman public value: {why}")
            }
            CryptoError::GroupMismatch => {
                write!(f, "Diffie-Hellman private value belongs to another group")
            }
            CryptoError::InvalidPrivateValue => write!(f, "malformed Diffie-Hellman private value"),
            CryptoError::InvalidKeyLength { expected, got } => {
                write!(f, "cipher key is {got} bytes, expected {expected}")
            }
            CryptoError::InvalidIvLength { expected, got } => {
                write!(f, "IV is {got} bytes, expected {expected}")
            }
            CryptoError::InvalidDataLength { block, got } => {
                write!(f, "{got} bytes is not a multiple of the {block}-byte block")
            }
            CryptoError::InvalidKey(why) => write!(f, "invalid key: {why}"),
        }
    }
}

impl std::error::Error for CryptoError {}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(e: openssl::error::ErrorStack) -> CryptoError {
        CryptoError::OpenSsl(e.to_string())
    }
}
