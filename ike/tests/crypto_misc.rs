//! Algorithm tables, secrets, IKEv1 RSA signatures and the helper's serve().

mod crypto {
    use std::collections::HashMap;

    use ike::crypto::*;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::{Padding, Rsa};

    #[test]
    fn oakley_ids_map_to_algorithms() {
        assert_eq!(EncrAlg::from_oakley(1, None), None, "DES must be refused");
        assert_eq!(EncrAlg::from_oakley(5, None), Some(EncrAlg::TripleDesCbc));
        assert_eq!(EncrAlg::from_oakley(5, Some(128)), None);
        assert_eq!(EncrAlg::from_oakley(7, Some(128)), Some(EncrAlg::AesCbc128));
        assert_eq!(EncrAlg::from_oakley(7, Some(192)), Some(EncrAlg::AesCbc192));
        assert_eq!(EncrAlg::from_oakley(7, Some(256)), Some(EncrAlg::AesCbc256));
        assert_eq!(EncrAlg::from_oakley(7, Some(64)), None);
        for e in [
            EncrAlg::TripleDesCbc,
            EncrAlg::AesCbc128,
            EncrAlg::AesCbc192,
            EncrAlg::AesCbc256,
        ] {
            assert_eq!(
                EncrAlg::from_oakley(e.oakley_id(), e.oakley_key_bits()),
                Some(e)
            );
        }
        assert_eq!(EncrAlg::TripleDesCbc.key_len(), 24);
        assert_eq!(EncrAlg::TripleDesCbc.block_len(), 8);
        assert_eq!(EncrAlg::AesCbc192.key_len(), 24);
        assert_eq!(EncrAlg::AesCbc256.block_len(), 16);

        assert_eq!(HashAlg::from_oakley(3), None, "Tiger");
        for (id, len) in [(1, 16), (2, 20), (4, 32), (5, 48), (6, 64)] {
            let h = HashAlg::from_oakley(id).unwrap();
            assert_eq!(h.output_len(), len);
            assert_eq!(h.oakley_id(), id);
            assert_eq!(hash(h, &[b"x"]).len(), len);
        }

        assert_eq!(Group::from_id(1), None, "MODP768 must be refused");
        for (id, plen) in [
            (2, 128),
            (5, 192),
            (14, 256),
            (15, 384),
            (16, 512),
            (17, 768),
            (18, 1024),
            (19, 64),
            (20, 96),
            (21, 132),
        ] {
            let g = Group::from_id(id).unwrap();
            assert_eq!(g.id(), id);
            assert_eq!(g.public_len(), plen, "{g:?}");
            assert!(!g.name().is_empty());
        }
        assert_eq!(Group::from_id(22), None);
    }

    #[test]
    fn secrets_do_not_print_and_survive_serde() {
        let s = Secret::new(vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(format!("{s:?}"), "Secret(4 bytes)");
        let bytes = postcard::to_allocvec(&s).unwrap();
        let back: Secret = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(&back[..], &[0xde, 0xad, 0xbe, 0xef]);
        assert_ne!(Secret::from_slice(&[1, 2]), Secret::from_slice(&[1, 2, 3]));
        let keys = phase1_keys(
            HashAlg::Sha1,
            HashAlg::Sha1,
            EncrAlg::AesCbc128,
            Secret::new(vec![1; 20]),
            &[2; 32],
            &[3; 8],
            &[4; 8],
            &[5; 32],
            &[6; 32],
        );
        let dbg = format!("{keys:?}");
        assert!(
            !dbg.contains(&format!("{:?}", &keys.skeyid_d[..4])),
            "{dbg}"
        );
        let e: Box<dyn std::error::Error> = Box::new(CryptoError::GroupMismatch);
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn random_bytes_are_random() {
        let a = random_bytes(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_bytes(32));
        assert!(random_bytes(0).is_empty());
    }

    fn rsa_key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    #[test]
    fn rsa_signature_is_pkcs1_type1_over_the_raw_hash() {
        let key = rsa_key();
        let hash_r = hash(HashAlg::Sha1, &[b"HASH_R"]);
        let sig = rsa_sign(&key, &hash_r).unwrap();
        assert_eq!(sig.len(), 256);
        // Independent: RSA_public_decrypt recovers the hash itself, no DigestInfo.
        let rsa = key.rsa().unwrap();
        let mut out = vec![0u8; 256];
        let n = rsa.public_decrypt(&sig, &mut out, Padding::PKCS1).unwrap();
        assert_eq!(&out[..n], &hash_r[..]);
        // And RSA_private_encrypt with PKCS#1 padding gives the same (deterministic) bytes.
        let mut again = vec![0u8; 256];
        let n = rsa
            .private_encrypt(&hash_r, &mut again, Padding::PKCS1)
            .unwrap();
        assert_eq!(&again[..n], &sig[..]);

        let der = key.public_key_to_der().unwrap();
        let pem = key.public_key_to_pem().unwrap();
        let pkcs1 = rsa.public_key_to_pem_pkcs1().unwrap();
        for k in [&der, &pem, &pkcs1] {
            assert_eq!(rsa_verify(k, &hash_r, &sig), Ok(true));
        }
        let mut wrong = hash_r.clone();
        wrong[0] ^= 1;
        assert_eq!(rsa_verify(&der, &wrong, &sig), Ok(false));
        let mut bad_sig = sig.clone();
        bad_sig[10] ^= 1;
        assert_eq!(rsa_verify(&der, &hash_r, &bad_sig), Ok(false));
        assert_eq!(rsa_verify(&der, &hash_r, &sig[1..]), Ok(false));
        assert_eq!(rsa_verify(&der, &hash_r, &[]), Ok(false));
        // A signature by another key does not verify.
        let other = rsa_sign(&rsa_key(), &hash_r).unwrap();
        assert_eq!(rsa_verify(&der, &hash_r, &other), Ok(false));
        assert!(rsa_verify(b"not a key", &hash_r, &sig).is_err());
    }

    #[test]
    fn rsa_refuses_other_key_types() {
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let key = PKey::from_ec_key(ec).unwrap();
        assert!(matches!(
            rsa_sign(&key, b"x"),
            Err(CryptoError::InvalidKey(_))
        ));
        let der = key.public_key_to_der().unwrap();
        assert!(matches!(
            rsa_verify(&der, b"x", &[0; 64]),
            Err(CryptoError::InvalidKey(_))
        ));
    }

    struct Store {
        psks: HashMap<String, Vec<u8>>,
        keys: HashMap<String, PKey<Private>>,
    }

    impl SecretStore for Store {
        fn psk(&self, name: &str) -> Option<&[u8]> {
            self.psks.get(name).map(|v| &v[..])
        }
        fn rsa_key(&self, name: &str) -> Option<&PKey<Private>> {
            self.keys.get(name)
        }
    }

    /// What a helper does: every request goes through postcard both ways, as over the socket.
    fn over_wire(req: CryptoRequest, store: &Store) -> CryptoResult {
        let req: CryptoRequest =
            postcard::from_bytes(&postcard::to_allocvec(&req).unwrap()).unwrap();
        let res = serve(&req, store);
        postcard::from_bytes(&postcard::to_allocvec(&res).unwrap()).unwrap()
    }

    #[test]
    fn serve_answers_every_request_and_fails_cleanly() {
        let store = Store {
            psks: [("peer-a".to_string(), b"s3cret".to_vec())].into(),
            keys: [("host".to_string(), rsa_key())].into(),
        };
        let group = Group::Ecp256;
        let CryptoResult::DhKeyPair { public, private } =
            over_wire(CryptoRequest::DhKeygen { group }, &store)
        else {
            panic!("no key pair")
        };
        let (peer_pub, peer_priv) = dh_keygen(group).unwrap();
        let CryptoResult::DhShared(shared) = over_wire(
            CryptoRequest::DhDerive {
                group,
                private: private.clone(),
                peer_public: peer_pub,
            },
            &store,
        ) else {
            panic!("no shared secret")
        };
        assert_eq!(shared, dh_derive(group, &peer_priv, &public).unwrap());
        assert!(matches!(
            over_wire(
                CryptoRequest::DhDerive {
                    group,
                    private,
                    peer_public: vec![0; 64],
                },
                &store
            ),
            CryptoResult::Failed(_)
        ));

        let res = over_wire(
            CryptoRequest::SkeyidPsk {
                prf: HashAlg::Sha256,
                secret: "peer-a".into(),
                ni_b: vec![1; 16],
                nr_b: vec![2; 16],
            },
            &store,
        );
        assert_eq!(
            res,
            CryptoResult::Skeyid(skeyid_psk(HashAlg::Sha256, b"s3cret", &[1; 16], &[2; 16]))
        );
        let res = over_wire(
            CryptoRequest::SkeyidPsk {
                prf: HashAlg::Sha256,
                secret: "nobody".into(),
                ni_b: vec![1; 8],
                nr_b: vec![2; 256],
            },
            &store,
        );
        assert!(matches!(res, CryptoResult::Failed(_)));

        let hash = vec![7u8; 20];
        let CryptoResult::Signature(sig) = over_wire(
            CryptoRequest::RsaSign {
                secret: "host".into(),
                prf: HashAlg::Sha1,
                hash: hash.clone(),
            },
            &store,
        ) else {
            panic!("no signature")
        };
        let public_key = store.keys["host"].public_key_to_der().unwrap();
        assert_eq!(
            over_wire(
                CryptoRequest::RsaVerify {
                    public_key: public_key.clone(),
                    hash: hash.clone(),
                    sig: sig.clone(),
                },
                &store
            ),
            CryptoResult::Verified(true)
        );
        assert_eq!(
            over_wire(
                CryptoRequest::RsaVerify {
                    public_key,
                    hash: vec![8u8; 20],
                    sig,
                },
                &store
            ),
            CryptoResult::Verified(false)
        );
        assert!(matches!(
            over_wire(
                CryptoRequest::RsaSign {
                    secret: "nobody".into(),
                    prf: HashAlg::Sha1,
                    hash,
                },
                &store
            ),
            CryptoResult::Failed(_)
        ));
        assert!(matches!(
            over_wire(
                CryptoRequest::RsaVerify {
                    public_key: b"garbage".to_vec(),
                    hash: vec![0; 32],
                    sig: vec![],
                },
                &store
            ),
            CryptoResult::Failed(_)
        ));
    }

    fn refused(req: CryptoRequest, store: &Store) -> String {
        assert!(validate(&req).is_err(), "{req:?} passes validate");
        match over_wire(req, store) {
            CryptoResult::Refused {
                reason,
                refused_total: 0,
            } => reason,
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[test]
    fn serve_refuses_shapes_ikev1_never_asks_for() {
        let store = Store {
            psks: [("peer-a".to_string(), b"s3cret".to_vec())].into(),
            keys: [("host".to_string(), rsa_key())].into(),
        };
        let skeyid = |ni: usize, nr: usize| CryptoRequest::SkeyidPsk {
            prf: HashAlg::Sha1,
            secret: "peer-a".into(),
            ni_b: vec![1; ni],
            nr_b: vec![2; nr],
        };
        for (ni, nr) in [(7, 16), (16, 7), (257, 16), (16, 257), (0, 0)] {
            let why = refused(skeyid(ni, nr), &store);
            assert!(why.contains("RFC 2409"), "{why}");
        }
        for (ni, nr) in [(8, 8), (256, 256), (8, 256)] {
            assert_eq!(
                over_wire(skeyid(ni, nr), &store),
                CryptoResult::Skeyid(skeyid_psk(
                    HashAlg::Sha1,
                    b"s3cret",
                    &vec![1; ni],
                    &vec![2; nr]
                ))
            );
        }

        let sign = |prf: HashAlg, len: usize| CryptoRequest::RsaSign {
            secret: "host".into(),
            prf,
            hash: vec![9; len],
        };
        for len in [0, 19, 21, 32] {
            refused(sign(HashAlg::Sha1, len), &store);
        }
        refused(sign(HashAlg::Sha256, 20), &store);
        for h in HashAlg::ALL {
            assert!(matches!(
                over_wire(sign(h, h.output_len()), &store),
                CryptoResult::Signature(_)
            ));
        }

        let (peer, _) = dh_keygen(Group::Modp2048).unwrap();
        let (_, private) = dh_keygen(Group::Modp2048).unwrap();
        let derive = |group: Group, private: &DhPrivate, peer: Vec<u8>| CryptoRequest::DhDerive {
            group,
            private: private.clone(),
            peer_public: peer,
        };
        let why = refused(
            derive(Group::Modp2048, &private, peer[1..].to_vec()),
            &store,
        );
        assert!(why.contains("255 bytes"), "{why}");
        let long = [&peer[..], &[0]].concat();
        refused(derive(Group::Modp2048, &private, long), &store);
        // The private value must belong to the group asked for.
        let (ecp_peer, _) = dh_keygen(Group::Ecp256).unwrap();
        refused(derive(Group::Ecp256, &private, ecp_peer), &store);
        assert!(matches!(
            over_wire(derive(Group::Modp2048, &private, peer), &store),
            CryptoResult::DhShared(_)
        ));
        // A forged private value with a longer exponent than ours is refused before the
        // modexp: serde accepts it, validate does not.
        let bytes = postcard::to_allocvec(&private).unwrap();
        let mut forged: Vec<u8> = Vec::new();
        // group (1 byte varint), then the private value's length (varint 28 for 224 bits).
        assert_eq!(bytes[1], 28, "layout of DhPrivate changed");
        forged.extend_from_slice(&bytes[..1]);
        forged.push(29);
        forged.extend_from_slice(&bytes[2..30]);
        forged.push(0x55);
        forged.extend_from_slice(&bytes[30..]);
        let forged: DhPrivate = postcard::from_bytes(&forged).unwrap();
        let (peer, _) = dh_keygen(Group::Modp2048).unwrap();
        let why = refused(derive(Group::Modp2048, &forged, peer), &store);
        assert!(why.contains("malformed"), "{why}");

        let public_key = store.keys["host"].public_key_to_der().unwrap();
        let verify = |hash: usize, sig: usize, key: &[u8]| CryptoRequest::RsaVerify {
            public_key: key.to_vec(),
            hash: vec![3; hash],
            sig: vec![4; sig],
        };
        refused(verify(20, 1025, &public_key), &store);
        refused(verify(19, 256, &public_key), &store);
        refused(verify(0, 256, &public_key), &store);
        refused(verify(20, 256, &vec![0x30; MAX_PUBLIC_KEY_LEN + 1]), &store);
        assert_eq!(
            over_wire(verify(20, 1024, &public_key), &store),
            CryptoResult::Verified(false)
        );
    }

    #[test]
    fn results_do_not_print_secrets() {
        let r = CryptoResult::Skeyid(Secret::new(vec![0xab; 20]));
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("171"), "{dbg}");
        assert!(dbg.contains("20 bytes"));
    }

    #[test]
    fn keymat_lengths_and_prefixes() {
        let k = keymat(
            HashAlg::Sha1,
            &[1; 20],
            None,
            3,
            &[0, 0, 1, 0],
            &[2; 16],
            &[3; 16],
            72,
        );
        assert_eq!(k.len(), 72);
        let short = keymat(
            HashAlg::Sha1,
            &[1; 20],
            None,
            3,
            &[0, 0, 1, 0],
            &[2; 16],
            &[3; 16],
            16,
        );
        assert_eq!(&k[..16], &short[..]);
        let pfs = keymat(
            HashAlg::Sha1,
            &[1; 20],
            Some(&[9; 128]),
            3,
            &[0, 0, 1, 0],
            &[2; 16],
            &[3; 16],
            16,
        );
        assert_ne!(pfs, short);
    }
}

mod crypto_props {
    use ike::crypto::*;
    use proptest::prelude::*;

    fn encr() -> impl Strategy<Value = EncrAlg> {
        prop_oneof![
            Just(EncrAlg::TripleDesCbc),
            Just(EncrAlg::AesCbc128),
            Just(EncrAlg::AesCbc192),
            Just(EncrAlg::AesCbc256),
        ]
    }

    proptest! {
        #[test]
        fn crypto_cbc_round_trips(e in encr(), seed in any::<u8>(), blocks in 0usize..8) {
            let key = vec![seed; e.key_len()];
            let iv = vec![seed ^ 0x55; e.block_len()];
            let data: Vec<u8> = (0..blocks * e.block_len()).map(|i| i as u8 ^ seed).collect();
            let ct = encrypt(e, &key, &iv, &data).unwrap();
            prop_assert_eq!(ct.len(), data.len());
            prop_assert_eq!(decrypt(e, &key, &iv, &ct).unwrap(), data);
        }

        #[test]
        fn crypto_keymat_is_a_prefix_of_longer_keymat(len in 1usize..200, extra in 1usize..64) {
            let short = keymat(HashAlg::Sha256, &[1; 32], None, 3, &[1, 2, 3, 4], &[5; 16], &[6; 16], len);
            let long = keymat(HashAlg::Sha256, &[1; 32], None, 3, &[1, 2, 3, 4], &[5; 16], &[6; 16], len + extra);
            prop_assert_eq!(short.len(), len);
            prop_assert_eq!(&long[..len], &short[..]);
        }
    }
}
