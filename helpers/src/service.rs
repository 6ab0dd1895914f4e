//! The service the daemon's helpers run: the crypto requests of `ike::crypto`, answered
//! with the long-term secrets the parent gave this helper at start. The child only ever
//! sees the answers (SKEYID, signatures, DH values), never a pre-shared key or private key.

use crate::pool::HelperService;
use ike::crypto::{serve, CryptoRequest, CryptoResult, Secret, SecretStore};
use openssl::pkey::{PKey, Private};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the parent sends each helper once: pre-shared keys by peer section name, RSA
/// private keys (DER) by name. The key bytes are wiped when dropped; Debug prints names
/// only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub psks: Vec<(String, Secret)>,
    pub rsa_keys: Vec<(String, Secret)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &[(String, Secret)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        f.debug_struct("Secrets")
            .field("psks", &names(&self.psks))
            .field("rsa_keys", &names(&self.rsa_keys))
            .finish()
    }
}

/// The secrets in the form `ike::crypto::serve` looks them up. The pre-shared keys are
/// `Secret`s (wiped on drop); the private keys are OpenSSL's `PKey`s, whose free clears the
/// RSA private components (`BN_clear_free`), and the DER they were parsed from is a
/// `Secret` dropped (wiped) as soon as it is parsed.
#[derive(Default)]
pub struct Store {
    psks: HashMap<String, Secret>,
    keys: HashMap<String, PKey<Private>>,
}

impl Store {
    /// A key that does not parse is left out (the parent checked them all before sending);
    /// requests naming it then fail with a clear reason.
    pub fn new(s: Secrets) -> Self {
        let keys = s
            .rsa_keys
            .into_iter()
            .filter_map(|(n, der)| PKey::private_key_from_der(&der).ok().map(|k| (n, k)))
            .collect();
        Self {
            psks: s.psks.into_iter().collect(),
            keys,
        }
    }
}

impl SecretStore for Store {
    fn psk(&self, name: &str) -> Option<&[u8]> {
        self.psks.get(name).map(Secret::as_bytes)
    }
    fn rsa_key(&self, name: &str) -> Option<&PKey<Private>> {
        self.keys.get(name)
    }
}

/// The daemon's helper service.
pub struct Crypto {
    store: Store,
}

impl HelperService for Crypto {
    type Secrets = Secrets;
    type Request = CryptoRequest;
    type Response = CryptoResult;
    fn new(secrets: Secrets) -> Self {
        Crypto {
            store: Store::new(secrets),
        }
    }
    fn serve(&mut self, req: CryptoRequest) -> CryptoResult {
        serve(&req, &self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::crypto::{skeyid_psk, HashAlg};

    fn psk(name: &str, key: &[u8]) -> (String, Secret) {
        (name.into(), Secret::from_slice(key))
    }

    #[test]
    fn serves_skeyid_from_the_named_psk_and_refuses_unknown_names() {
        let mut c = Crypto::new(Secrets {
            psks: vec![psk("peer-a", b"k")],
            rsa_keys: vec![],
        });
        let req = |secret: &str| CryptoRequest::SkeyidPsk {
            prf: HashAlg::Sha1,
            secret: secret.into(),
            ni_b: vec![1; 16],
            nr_b: vec![2; 16],
        };
        match c.serve(req("peer-a")) {
            CryptoResult::Skeyid(s) => assert_eq!(
                &s[..],
                &skeyid_psk(HashAlg::Sha1, b"k", &[1; 16], &[2; 16])[..]
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.serve(req("nobody")), CryptoResult::Failed(_)));
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let s = Secrets {
            psks: vec![psk("p", b"topsecretvalue")],
            rsa_keys: vec![("k".into(), Secret::from_slice(b"privatekeybytes"))],
        };
        let d = format!("{s:?}");
        assert!(!d.contains("topsecret") && !d.contains("privatekey"), "{d}");
        assert!(!d.contains("116, 111, 112"), "{d}");
    }
}
