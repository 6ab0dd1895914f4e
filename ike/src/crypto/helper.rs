//! The requests a crypto helper process answers. Long-term secrets (pre-shared keys, RSA
//! private keys) live in the helper's `SecretStore`; requests name them.
//!
//! A helper serves a process that parses hostile input, so it answers only requests of the
//! shapes IKEv1 produces ([`validate`]); anything else is `CryptoResult::Refused`. That keeps
//! a compromised child from using the helpers as a general signing or modexp oracle.

use std::fmt;
use std::ops::RangeInclusive;

use openssl::pkey::{PKey, Private};
use serde::{Deserialize, Serialize};

use super::{
    dh_derive, dh_keygen, rsa_sign, rsa_verify, skeyid_psk, DhPrivate, Group, HashAlg, Secret,
};

/// Nonce data lengths RFC 2409 section 5 allows (Ni_b, Nr_b).
pub const NONCE_LEN: RangeInclusive<usize> = 8..=256;
/// Longest RSA signature a helper checks: that of an 8192-bit key.
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Largest public key (DER or PEM) a helper parses.
pub const MAX_PUBLIC_KEY_LEN: usize = 16 * 1024;

/// A piece of crypto work for a helper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CryptoRequest {
    /// A fresh Diffie-Hellman key pair.
    DhKeygen { group: Group },
    /// g^xy from our private value and the peer's public value.
    DhDerive {
        group: Group,
        private: DhPrivate,
        peer_public: Vec<u8>,
    },
    /// `SKEYID = prf(psk, Ni_b | Nr_b)`; `secret` names the pre-shared key in the store.
    SkeyidPsk {
        prf: HashAlg,
        secret: String,
        ni_b: Vec<u8>,
        nr_b: Vec<u8>,
    },
    /// An IKEv1 RSA signature over `hash` (HASH_I or HASH_R, an output of the negotiated
    /// `prf`) with the private key the store names `secret`.
    RsaSign {
        secret: String,
        prf: HashAlg,
        hash: Vec<u8>,
    },
    /// Check an IKEv1 RSA signature (`public_key` DER SubjectPublicKeyInfo or PEM).
    RsaVerify {
        public_key: Vec<u8>,
        hash: Vec<u8>,
        sig: Vec<u8>,
    },
}

/// A helper's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CryptoResult {
    DhKeyPair {
        public: Vec<u8>,
        private: DhPrivate,
    },
    DhShared(Secret),
    Skeyid(Secret),
    Signature(Vec<u8>),
    Verified(bool),
    /// The work could not be done; the reason is safe to log (no secret in it).
    Failed(String),
    /// The request has a shape IKEv1 never produces, so the helper did no work. The reason
    /// is safe to log (lengths and names only); `refused_total` is the helper's running count
    /// of refusals (0 from [`serve`] itself: the service that keeps the count fills it in).
    /// Only a misbehaving client gets these: the engine checks what peers send first.
    Refused {
        reason: String,
        refused_total: u64,
    },
}

/// Where a helper finds long-term secrets by name.
pub trait SecretStore {
    fn psk(&self, name: &str) -> Option<&[u8]>;
    fn rsa_key(&self, name: &str) -> Option<&PKey<Private>>;
}

/// What is wrong with the shape of a request: lengths and algorithm names, never request
/// bytes (the Display text goes to logs and back to the child).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// A peer's DH public value not of the group's length.
    PublicValueLength {
        group: Group,
        len: usize,
    },
    /// A private value made for one group used with another.
    PrivateOfOtherGroup {
        private: Group,
        group: Group,
    },
    MalformedPrivate {
        group: Group,
    },
    /// Ni_b or Nr_b outside what RFC 2409 allows.
    NonceLength {
        name: &'static str,
        len: usize,
    },
    /// A signature asked over something that is not a prf output.
    SignedLength {
        prf: HashAlg,
        len: usize,
    },
    /// A verification asked over something that is no hash's output.
    VerifiedLength {
        len: usize,
    },
    SignatureLength {
        len: usize,
    },
    PublicKeyLength {
        len: usize,
    },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::PublicValueLength { group, len } => write!(
                f,
                "{} public value of {len} bytes (the group's is {})",
                group.name(),
                group.public_len()
            ),
            ShapeError::PrivateOfOtherGroup { private, group } => write!(
                f,
                "private value of {} used with {}",
                private.name(),
                group.name()
            ),
            ShapeError::MalformedPrivate { group } => {
                write!(f, "malformed {} private value", group.name())
            }
            ShapeError::NonceLength { name, len } => write!(
                f,
                "{name} of {len} bytes (RFC 2409 allows {} to {})",
                NONCE_LEN.start(),
                NONCE_LEN.end()
            ),
            ShapeError::SignedLength { prf, len } => write!(
                f,
                "signature asked over {len} bytes, not a {} output ({} bytes)",
                prf.name(),
                prf.output_len()
            ),
            ShapeError::VerifiedLength { len } => write!(
                f,
                "verification asked over {len} bytes, no hash's output length"
            ),
            ShapeError::SignatureLength { len } => {
                write!(f, "signature of {len} bytes (at most {MAX_SIGNATURE_LEN})")
            }
            ShapeError::PublicKeyLength { len } => {
                write!(
                    f,
                    "public key of {len} bytes (at most {MAX_PUBLIC_KEY_LEN})"
                )
            }
        }
    }
}

impl std::error::Error for ShapeError {}

/// Whether `req` has a shape IKEv1 produces; the error says what is wrong. Checked before
/// any work, so a refused request costs no modexp or key operation.
pub fn validate(req: &CryptoRequest) -> Result<(), ShapeError> {
    match req {
        CryptoRequest::DhKeygen { .. } => Ok(()),
        CryptoRequest::DhDerive {
            group,
            private,
            peer_public,
        } => {
            if peer_public.len() != group.public_len() {
                return Err(ShapeError::PublicValueLength {
                    group: *group,
                    len: peer_public.len(),
                });
            }
            if private.group() != *group {
                return Err(ShapeError::PrivateOfOtherGroup {
                    private: private.group(),
                    group: *group,
                });
            }
            // A forged private value could carry an exponent of any length, and the modexp
            // would cost accordingly.
            if !private.is_well_formed() {
                return Err(ShapeError::MalformedPrivate { group: *group });
            }
            Ok(())
        }
        CryptoRequest::SkeyidPsk { ni_b, nr_b, .. } => {
            for (name, nonce) in [("Ni_b", ni_b), ("Nr_b", nr_b)] {
                if !NONCE_LEN.contains(&nonce.len()) {
                    return Err(ShapeError::NonceLength {
                        name,
                        len: nonce.len(),
                    });
                }
            }
            Ok(())
        }
        CryptoRequest::RsaSign { prf, hash, .. } => {
            // IKEv1 signs only HASH_I and HASH_R, which are prf outputs.
            if hash.len() != prf.output_len() {
                return Err(ShapeError::SignedLength {
                    prf: *prf,
                    len: hash.len(),
                });
            }
            Ok(())
        }
        CryptoRequest::RsaVerify {
            public_key,
            hash,
            sig,
        } => {
            if !HashAlg::ALL.iter().any(|h| h.output_len() == hash.len()) {
                return Err(ShapeError::VerifiedLength { len: hash.len() });
            }
            if sig.len() > MAX_SIGNATURE_LEN {
                return Err(ShapeError::SignatureLength { len: sig.len() });
            }
            if public_key.len() > MAX_PUBLIC_KEY_LEN {
                return Err(ShapeError::PublicKeyLength {
                    len: public_key.len(),
                });
            }
            Ok(())
        }
    }
}

/// Does the work of one request. Never panics: a request [`validate`] refuses is
/// `CryptoResult::Refused` (with `refused_total` 0), every other failure
/// `CryptoResult::Failed`.
pub fn serve(req: &CryptoRequest, store: &dyn SecretStore) -> CryptoResult {
    if let Err(shape) = validate(req) {
        return CryptoResult::Refused {
            reason: shape.to_string(),
            refused_total: 0,
        };
    }
    let run = std::panic::AssertUnwindSafe(|| serve_inner(req, store));
    match std::panic::catch_unwind(run) {
        Ok(r) => r,
        Err(_) => CryptoResult::Failed("internal error in crypto helper".into()),
    }
}

fn serve_inner(req: &CryptoRequest, store: &dyn SecretStore) -> CryptoResult {
    match req {
        CryptoRequest::DhKeygen { group } => match dh_keygen(*group) {
            Ok((public, private)) => CryptoResult::DhKeyPair { public, private },
            Err(e) => CryptoResult::Failed(e.to_string()),
        },
        CryptoRequest::DhDerive {
            group,
            private,
            peer_public,
        } => match dh_derive(*group, private, peer_public) {
            Ok(s) => CryptoResult::DhShared(s),
            Err(e) => CryptoResult::Failed(e.to_string()),
        },
        CryptoRequest::SkeyidPsk {
            prf,
            secret,
            ni_b,
            nr_b,
        } => match store.psk(secret) {
            Some(psk) => CryptoResult::Skeyid(skeyid_psk(*prf, psk, ni_b, nr_b)),
            None => CryptoResult::Failed(format!("no pre-shared key named {secret:?}")),
        },
        CryptoRequest::RsaSign { secret, hash, .. } => match store.rsa_key(secret) {
            Some(key) => match rsa_sign(key, hash) {
                Ok(sig) => CryptoResult::Signature(sig),
                Err(e) => CryptoResult::Failed(e.to_string()),
            },
            None => CryptoResult::Failed(format!("no private key named {secret:?}")),
        },
        CryptoRequest::RsaVerify {
            public_key,
            hash,
            sig,
        } => match rsa_verify(public_key, hash, sig) {
            Ok(v) => CryptoResult::Verified(v),
            Err(e) => CryptoResult::Failed(e.to_string()),
        },
    }
}
