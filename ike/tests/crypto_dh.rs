//! Diffie-Hellman: key generation and derivation for every group,
//! left-padding of g^xy, peer value checks.

mod crypto {
    use ike::crypto::*;
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::derive::Deriver;
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use serde::Deserialize;

    const ALL: [Group; 10] = [
        Group::Modp1024,
        Group::Modp1536,
        Group::Modp2048,
        Group::Modp3072,
        Group::Modp4096,
        Group::Modp6144,
        Group::Modp8192,
        Group::Ecp256,
        Group::Ecp384,
        Group::Ecp521,
    ];

    /// The fields of a `DhPrivate` as postcard lays them out, to reach the private value.
    #[derive(Deserialize)]
    struct Opened {
        _group: Group,
        private: Vec<u8>,
        public: Vec<u8>,
    }

    fn open(p: &DhPrivate) -> Opened {
        postcard::from_bytes(&postcard::to_allocvec(p).unwrap()).unwrap()
    }

    /// The group's prime from OpenSSL's copy, a source independent of ike's constants
    /// (those are checked against it in ike's own unit tests, crypto::primes).
    fn prime_of(g: Group) -> BigNum {
        match g {
            Group::Modp1024 => BigNum::get_rfc2409_prime_1024(),
            Group::Modp1536 => BigNum::get_rfc3526_prime_1536(),
            Group::Modp2048 => BigNum::get_rfc3526_prime_2048(),
            Group::Modp3072 => BigNum::get_rfc3526_prime_3072(),
            Group::Modp4096 => BigNum::get_rfc3526_prime_4096(),
            Group::Modp6144 => BigNum::get_rfc3526_prime_6144(),
            Group::Modp8192 => BigNum::get_rfc3526_prime_8192(),
            _ => unreachable!(),
        }
        .unwrap()
    }

    #[test]
    fn every_group_agrees_on_the_shared_secret() {
        for g in ALL {
            let (pub_a, priv_a) = dh_keygen(g).unwrap();
            let (pub_b, priv_b) = dh_keygen(g).unwrap();
            assert_eq!(pub_a.len(), g.public_len(), "{g:?}");
            assert_eq!(priv_a.public(), &pub_a[..]);
            assert_eq!(priv_a.group(), g);
            let s_a = dh_derive(g, &priv_a, &pub_b).unwrap();
            let s_b = dh_derive(g, &priv_b, &pub_a).unwrap();
            assert_eq!(s_a, s_b, "{g:?}");
            assert_eq!(s_a.len(), g.secret_len(), "{g:?}");
            assert_ne!(pub_a, pub_b);
        }
    }

    #[test]
    fn modp_exponents_are_short() {
        for g in ALL.into_iter().filter(|g| !g.is_ecp()) {
            let bits = g.exponent_bits().unwrap() as usize;
            for _ in 0..4 {
                let (_, private) = dh_keygen(g).unwrap();
                let x = BigNum::from_slice(&open(&private).private).unwrap();
                assert!(x.num_bits() as usize <= bits, "{g:?}");
                assert!(x.num_bits() > 1);
            }
            // And public = 2^x mod p, computed independently.
            let (public, private) = dh_keygen(g).unwrap();
            let o = open(&private);
            let mut ctx = BigNumContext::new().unwrap();
            let mut y = BigNum::new().unwrap();
            let two = BigNum::from_u32(2).unwrap();
            let x = BigNum::from_slice(&o.private).unwrap();
            y.mod_exp(&two, &x, &prime_of(g), &mut ctx).unwrap();
            assert_eq!(y.to_vec_padded(g.public_len() as i32).unwrap(), public);
            assert_eq!(o.public, public);
        }
    }

    /// g^xy with a leading zero byte (1 in 256) must keep it: left-padded to the modulus.
    #[test]
    fn modp_shared_secret_with_leading_zero_is_left_padded() {
        let g = Group::Modp1024;
        let p = prime_of(g);
        let mut ctx = BigNumContext::new().unwrap();
        let mut found = 0;
        for _ in 0..20_000 {
            let (pub_a, priv_a) = dh_keygen(g).unwrap();
            let (pub_b, priv_b) = dh_keygen(g).unwrap();
            let s_a = dh_derive(g, &priv_a, &pub_b).unwrap();
            let s_b = dh_derive(g, &priv_b, &pub_a).unwrap();
            assert_eq!(s_a, s_b);
            assert_eq!(s_a.len(), 128);
            // Independent: y_b ^ x_a mod p, padded by OpenSSL's BN_bn2binpad.
            let x_a = BigNum::from_slice(&open(&priv_a).private).unwrap();
            let y_b = BigNum::from_slice(&pub_b).unwrap();
            let mut z = BigNum::new().unwrap();
            z.mod_exp(&y_b, &x_a, &p, &mut ctx).unwrap();
            assert_eq!(s_a.as_bytes(), &z.to_vec_padded(128).unwrap()[..]);
            if s_a[0] == 0 {
                found += 1;
                if found == 2 {
                    return;
                }
            }
        }
        panic!("no shared secret with a leading zero byte in 20000 tries");
    }

    /// The same for ECP: the x coordinate keeps its leading zero byte.
    #[test]
    fn ecp_shared_secret_with_leading_zero_is_left_padded() {
        let g = Group::Ecp256;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        for _ in 0..20_000 {
            let (pub_a, priv_a) = dh_keygen(g).unwrap();
            let (pub_b, priv_b) = dh_keygen(g).unwrap();
            let s_a = dh_derive(g, &priv_a, &pub_b).unwrap();
            let s_b = dh_derive(g, &priv_b, &pub_a).unwrap();
            assert_eq!(s_a, s_b);
            assert_eq!(s_a.len(), 32);
            if s_a[0] != 0 {
                continue;
            }
            // Independent: ECDH through EVP_PKEY_derive (which strips the leading zero).
            let d_a = BigNum::from_slice(&open(&priv_a).private).unwrap();
            let q_a =
                EcPoint::from_bytes(&group, &[&[4u8][..], &pub_a].concat(), &mut ctx).unwrap();
            let q_b =
                EcPoint::from_bytes(&group, &[&[4u8][..], &pub_b].concat(), &mut ctx).unwrap();
            let ours =
                PKey::from_ec_key(EcKey::from_private_components(&group, &d_a, &q_a).unwrap())
                    .unwrap();
            let theirs = PKey::from_ec_key(EcKey::from_public_key(&group, &q_b).unwrap()).unwrap();
            let mut deriver = Deriver::new(&ours).unwrap();
            deriver.set_peer(&theirs).unwrap();
            let raw = deriver.derive_to_vec().unwrap();
            let x = BigNum::from_slice(&raw).unwrap();
            assert!(raw.len() <= 32);
            assert_eq!(s_a.as_bytes(), &x.to_vec_padded(32).unwrap()[..]);
            return;
        }
        panic!("no ECP shared secret with a leading zero byte in 20000 tries");
    }

    #[test]
    fn ecp_public_value_is_x_and_y_without_prefix() {
        let group = EcGroup::from_curve_name(Nid::SECP521R1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let (public, _) = dh_keygen(Group::Ecp521).unwrap();
        assert_eq!(public.len(), 132);
        let point = EcPoint::from_bytes(&group, &[&[4u8][..], &public].concat(), &mut ctx);
        assert!(point.is_ok());
    }

    #[test]
    fn modp_peer_values_out_of_range_are_refused() {
        let g = Group::Modp1024;
        let (_, private) = dh_keygen(g).unwrap();
        let p = prime_of(g);
        let mut p_minus_1 = p.to_owned().unwrap();
        p_minus_1.sub_word(1).unwrap();
        let mut p_plus_1 = p.to_owned().unwrap();
        p_plus_1.add_word(1).unwrap();
        let bad = [
            BigNum::from_u32(0).unwrap(),
            BigNum::from_u32(1).unwrap(),
            p_minus_1,
            p.to_owned().unwrap(),
            p_plus_1,
        ];
        for y in bad {
            let v = y.to_vec_padded(128).unwrap();
            assert!(
                matches!(
                    dh_derive(g, &private, &v),
                    Err(CryptoError::InvalidPublicValue(_))
                ),
                "{y} accepted"
            );
        }
        assert!(dh_derive(g, &private, &[0xff; 129]).is_err());
        assert!(dh_derive(g, &private, &[0x12; 127]).is_err());
        // 2 is the generator: a legal (if silly) value.
        let mut two = vec![0u8; 128];
        two[127] = 2;
        assert!(dh_derive(g, &private, &two).is_ok());
    }

    #[test]
    fn ecp_points_off_the_curve_are_refused() {
        let g = Group::Ecp256;
        let (mut public, private) = dh_keygen(g).unwrap();
        let (peer, _) = dh_keygen(g).unwrap();
        assert!(dh_derive(g, &private, &peer).is_ok());
        public[63] ^= 1;
        assert!(matches!(
            dh_derive(g, &private, &public),
            Err(CryptoError::InvalidPublicValue(_))
        ));
        assert!(dh_derive(g, &private, &[0u8; 64]).is_err());
        assert!(dh_derive(g, &private, &peer[..63]).is_err());
    }

    #[test]
    fn private_value_of_another_group_is_refused() {
        let (_, private) = dh_keygen(Group::Modp1024).unwrap();
        let (peer, _) = dh_keygen(Group::Modp2048).unwrap();
        assert_eq!(
            dh_derive(Group::Modp2048, &private, &peer),
            Err(CryptoError::GroupMismatch)
        );
    }

    #[test]
    fn private_values_survive_postcard_and_do_not_print() {
        for g in [Group::Modp2048, Group::Ecp384] {
            let (public, private) = dh_keygen(g).unwrap();
            let bytes = postcard::to_allocvec(&private).unwrap();
            let back: DhPrivate = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, private);
            let (peer, peer_priv) = dh_keygen(g).unwrap();
            assert_eq!(
                dh_derive(g, &back, &peer).unwrap(),
                dh_derive(g, &peer_priv, &public).unwrap()
            );
            let dbg = format!("{private:?}");
            assert_eq!(dbg, format!("DhPrivate({})", g.name()));
        }
    }
}
