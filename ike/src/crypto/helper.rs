//! The requests a crypto helper process answers. Long-term secrets (pre-shared keys, RSA
//! private keys) live in the helper's `SecretStore`; requests name them.

use openssl::pkey::{PKey, Private};
use serde::{Deserialize, Serialize};

use super::{
    dh_derive, dh_keygen, rsa_sign, rsa_verify, skeyid_psk, DhPrivate, Group, HashAlg, Secret,
};

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
    /// An IKEv1 RSA signature over `hash` with the private key the store names `secret`.
    RsaSign { secret: String, hash: Vec<u8> },
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
}

/// Where a helper finds long-term secrets by name.
pub trait SecretStore {
    fn psk(&self, name: &str) -> Option<&[u8]>;
    fn rsa_key(&self, name: &str) -> Option<&PKey<Private>>;
}

/// Does the work of one request. Never panics: every failure is `CryptoResult::Failed`.
pub fn serve(req: &CryptoRequest, store: &dyn SecretStore) -> CryptoResult {
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
        CryptoRequest::RsaSign { secret, hash } => match store.rsa_key(secret) {
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
