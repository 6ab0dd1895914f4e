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
    refused: u64,
}

impl Crypto {
    /// How many requests this helper refused (shapes IKEv1 never produces): an honest child
    /// never causes one, so anything above 0 means the child misbehaves.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

impl HelperService for Crypto {
    type Secrets = Secrets;
    type Request = CryptoRequest;
    type Response = CryptoResult;
    fn new(secrets: Secrets) -> Self {
        Crypto {
            store: Store::new(secrets),
            refused: 0,
        }
    }
    fn serve(&mut self, req: CryptoRequest) -> CryptoResult {
        let mut r = serve(&req, &self.store);
        if let CryptoResult::Refused { refused_total, .. } = &mut r {
            self.refused = self.refused.saturating_add(1);
            *refused_total = self.refused;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::crypto::{dh_keygen, rsa_verify, skeyid_psk, Group, HashAlg};

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
        // An unknown name is a failure, not a refusal: the shape is IKEv1's.
        assert!(matches!(c.serve(req("nobody")), CryptoResult::Failed(_)));
        assert_eq!(c.refused(), 0);
    }

    /// Every shape IKEv1 cannot produce is refused, counted, and costs no work; the
    /// neighbouring shapes it does produce are served.
    #[test]
    fn refuses_and_counts_shapes_outside_the_protocol() {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let der = rsa.private_key_to_der().expect("der");
        let public = rsa.public_key_to_der().expect("der");
        let mut c = Crypto::new(Secrets {
            psks: vec![psk("peer-a", b"k")],
            rsa_keys: vec![("host".into(), Secret::new(der))],
        });
        let expect_refused = |c: &mut Crypto, req: CryptoRequest| {
            let before = c.refused();
            match c.serve(req) {
                CryptoResult::Refused {
                    reason,
                    refused_total,
                } => {
                    assert_eq!(refused_total, before + 1, "{reason}");
                    assert_eq!(c.refused(), before + 1);
                    reason
                }
                other => panic!("expected Refused, got {other:?}"),
            }
        };
        let skeyid = |ni: usize, nr: usize| CryptoRequest::SkeyidPsk {
            prf: HashAlg::Sha1,
            secret: "peer-a".into(),
            ni_b: vec![1; ni],
            nr_b: vec![2; nr],
        };
        expect_refused(&mut c, skeyid(7, 16));
        expect_refused(&mut c, skeyid(16, 257));
        for (ni, nr) in [(8, 256), (256, 8)] {
            assert!(matches!(c.serve(skeyid(ni, nr)), CryptoResult::Skeyid(_)));
        }

        let sign = |len: usize| CryptoRequest::RsaSign {
            secret: "host".into(),
            prf: HashAlg::Sha1,
            hash: vec![7; len],
        };
        expect_refused(&mut c, sign(19));
        expect_refused(&mut c, sign(21));
        let CryptoResult::Signature(sig) = c.serve(sign(20)) else {
            panic!("no signature over 20 bytes with SHA1")
        };
        assert_eq!(rsa_verify(&public, &[7; 20], &sig), Ok(true));

        let group = Group::Modp1024;
        let (peer, _) = dh_keygen(group).expect("keygen");
        let (_, private) = dh_keygen(group).expect("keygen");
        let derive = |peer_public: Vec<u8>| CryptoRequest::DhDerive {
            group,
            private: private.clone(),
            peer_public,
        };
        let why = expect_refused(&mut c, derive(peer[1..].to_vec()));
        assert!(why.contains("127 bytes"), "{why}");
        expect_refused(&mut c, derive([&peer[..], &[1]].concat()));
        assert!(matches!(c.serve(derive(peer)), CryptoResult::DhShared(_)));

        let verify = |sig: Vec<u8>| CryptoRequest::RsaVerify {
            public_key: public.clone(),
            hash: vec![7; 20],
            sig,
        };
        expect_refused(&mut c, verify(vec![0; 1025]));
        assert_eq!(c.serve(verify(sig)), CryptoResult::Verified(true));
        assert_eq!(c.refused(), 7);
    }

    #[test]
    fn refusal_reasons_carry_no_request_bytes() {
        let mut c = Crypto::new(Secrets::default());
        let r = c.serve(CryptoRequest::RsaSign {
            secret: "host".into(),
            prf: HashAlg::Sha256,
            hash: b"0123456789abcdef0123".to_vec(),
        });
        let CryptoResult::Refused { reason, .. } = r else {
            panic!("{r:?}")
        };
        assert!(
            !reason.contains("0123") && !reason.contains("48, 49"),
            "{reason}"
        );
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
