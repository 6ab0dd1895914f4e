//! Known-answer tests for ike::crypto: IKEv1 KDF (CAVP layout), RFC 2409 derivations,
//! AES/3DES-CBC (SP 800-38A, SP 800-67) and HMAC (RFC 2202, RFC 4231).

mod crypto {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use ike::crypto::*;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.trim()).expect("hex")
    }

    fn hash_by_cavp_name(name: &str) -> Option<HashAlg> {
        match name {
            "SHA-1" => Some(HashAlg::Sha1),
            "SHA-256" => Some(HashAlg::Sha256),
            "SHA-384" => Some(HashAlg::Sha384),
            "SHA-512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Parses a CAVP IKEv1 KDF .fax file: `[SHA-x]` headers choose the PRF, `[PSK]`/`[DSA]`
    /// headers (libreswan file) or the file name choose the authentication method.
    /// Returns the number of vectors checked.
    fn check_fax(path: &std::path::Path) -> usize {
        let text = std::fs::read_to_string(path).expect("read");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut psk_mode = name.contains("psk");
        let mut prf_alg = None;
        let mut fields: HashMap<String, String> = HashMap::new();
        let mut checked = 0;
        let mut lines: Vec<&str> = text.lines().collect();
        lines.push("");
        for line in lines {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some(hdr) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                match hdr {
                    "PSK" => psk_mode = true,
                    "DSA" => psk_mode = false,
                    _ => {
                        if let Some(a) = hash_by_cavp_name(hdr) {
                            prf_alg = Some(a);
                        } else if hdr.starts_with("SHA-") {
                            prf_alg = None; // e.g. SHA-224: not an Oakley hash, skipped
                        }
                    }
                }
                continue;
            }
            if line.is_empty() {
                if fields.contains_key("SKEYID") {
                    if let Some(prf_alg) = prf_alg {
                        check_vector(&name, prf_alg, psk_mode, &fields);
                        checked += 1;
                    }
                }
                fields.clear();
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                fields.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        checked
    }

    /// A helper's store with one pre-shared key, named "peer".
    struct OnePsk(Vec<u8>);

    impl SecretStore for OnePsk {
        fn psk(&self, name: &str) -> Option<&[u8]> {
            (name == "peer").then_some(&self.0[..])
        }
        fn rsa_key(&self, _: &str) -> Option<&openssl::pkey::PKey<openssl::pkey::Private>> {
            None
        }
    }

    fn check_vector(file: &str, prf_alg: HashAlg, psk_mode: bool, f: &HashMap<String, String>) {
        let what = format!("{file} {prf_alg:?} COUNT {}", f["COUNT"]);
        let ni = h(&f["Ni"]);
        let nr = h(&f["Nr"]);
        let gxy = h(&f["g^xy"]);
        let cky_i: [u8; 8] = h(&f["CKY_I"]).try_into().unwrap();
        let cky_r: [u8; 8] = h(&f["CKY_R"]).try_into().unwrap();
        let skeyid = if psk_mode {
            let psk = h(&f["pre-shared-key"]);
            // The helper's path gives the same answer as the function.
            let req = CryptoRequest::SkeyidPsk {
                prf: prf_alg,
                secret: "peer".into(),
                ni_b: ni.clone(),
                nr_b: nr.clone(),
            };
            assert_eq!(
                serve(&req, &OnePsk(psk.clone())),
                CryptoResult::Skeyid(Secret::new(h(&f["SKEYID"]))),
                "served SKEYID {what}"
            );
            skeyid_psk(prf_alg, &psk, &ni, &nr)
        } else {
            skeyid_sig(prf_alg, &ni, &nr, &gxy)
        };
        assert_eq!(skeyid.as_bytes(), &h(&f["SKEYID"])[..], "SKEYID {what}");
        let keys = phase1_keys(
            prf_alg,
            prf_alg,
            EncrAlg::AesCbc128,
            skeyid,
            &gxy,
            &cky_i,
            &cky_r,
            b"",
            b"",
        );
        assert_eq!(
            keys.skeyid_d.as_bytes(),
            &h(&f["SKEYID_d"])[..],
            "SKEYID_d {what}"
        );
        assert_eq!(
            keys.skeyid_a.as_bytes(),
            &h(&f["SKEYID_a"])[..],
            "SKEYID_a {what}"
        );
        assert_eq!(
            keys.skeyid_e.as_bytes(),
            &h(&f["SKEYID_e"])[..],
            "SKEYID_e {what}"
        );
        assert_eq!(
            keys.enc_key.as_bytes(),
            &keys.skeyid_e[..16],
            "enc key {what}"
        );
    }

    #[test]
    fn ikev1_kdf_cavp_vectors() {
        let mut files: Vec<_> = std::fs::read_dir(data_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "fax"))
            .collect();
        files.sort();
        assert!(files.len() >= 3, "vector files missing: {files:?}");
        let mut total = 0;
        for f in &files {
            let n = check_fax(f);
            assert!(n > 0, "no vectors checked in {f:?}");
            total += n;
        }
        // 2 from libreswan + 2 x 4 hashes x 3 counts from Python.
        assert!(total >= 26, "only {total} vectors");
    }

    fn hash_by_name(name: &str) -> HashAlg {
        [
            HashAlg::Md5,
            HashAlg::Sha1,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ]
        .into_iter()
        .find(|a| a.name() == name)
        .expect("hash name")
    }

    #[test]
    fn rfc2409_derivation_vectors() {
        let text = std::fs::read_to_string(data_dir().join("ikev1_misc_python.txt")).unwrap();
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for block in text.split("\n\n") {
            let f: HashMap<&str, &str> = block
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(" = "))
                .collect();
            let Some(kind) = f.get("kind") else { continue };
            *kinds.entry(kind.to_string()).or_default() += 1;
            let num = |k: &str| f[k].parse::<u64>().unwrap();
            match *kind {
                "cipher_key" => {
                    let k = cipher_key(
                        hash_by_name(f["prf"]),
                        &h(f["skeyid_e"]),
                        num("key_len") as usize,
                    );
                    assert_eq!(k.as_bytes(), &h(f["key"])[..], "{block}");
                }
                "keymat" => {
                    let g = (f["g_qm_xy"] != "none").then(|| h(f["g_qm_xy"]));
                    let k = keymat(
                        hash_by_name(f["prf"]),
                        &h(f["skeyid_d"]),
                        g.as_deref(),
                        num("protocol") as u8,
                        &h(f["spi"]),
                        &h(f["ni_b"]),
                        &h(f["nr_b"]),
                        num("len") as usize,
                    );
                    assert_eq!(k.as_bytes(), &h(f["keymat"])[..], "{block}");
                }
                "phase2_iv" => {
                    let iv = phase2_iv(
                        hash_by_name(f["hash"]),
                        num("block_len") as usize,
                        &h(f["last_block"]),
                        num("message_id") as u32,
                    );
                    assert_eq!(iv, h(f["iv"]), "{block}");
                }
                "qm_hash" => {
                    let p = hash_by_name(f["prf"]);
                    let a = h(f["skeyid_a"]);
                    let mid = num("message_id") as u32;
                    let (ni, nr, rest) = (h(f["ni_b"]), h(f["nr_b"]), h(f["rest"]));
                    assert_eq!(qm_hash1(p, &a, mid, &rest), h(f["hash1"]));
                    assert_eq!(qm_hash2(p, &a, mid, &ni, &rest), h(f["hash2"]));
                    assert_eq!(qm_hash3(p, &a, mid, &ni, &nr), h(f["hash3"]));
                    assert_eq!(info_hash(p, &a, mid, &rest), h(f["info"]));
                }
                "hash_ir" => {
                    let p = hash_by_name(f["prf"]);
                    let s = h(f["skeyid"]);
                    let (gxi, gxr) = (h(f["gxi"]), h(f["gxr"]));
                    let ci: [u8; 8] = h(f["cky_i"]).try_into().unwrap();
                    let cr: [u8; 8] = h(f["cky_r"]).try_into().unwrap();
                    let sa = h(f["sai_b"]);
                    assert_eq!(
                        hash_i(p, &s, &gxi, &gxr, &ci, &cr, &sa, &h(f["idii_b"])),
                        h(f["hash_i"])
                    );
                    assert_eq!(
                        hash_r(p, &s, &gxr, &gxi, &cr, &ci, &sa, &h(f["idir_b"])),
                        h(f["hash_r"])
                    );
                    let bl = num("block_len") as usize;
                    let encr = if bl == 8 {
                        EncrAlg::TripleDesCbc
                    } else {
                        EncrAlg::AesCbc128
                    };
                    let keys = phase1_keys(
                        p,
                        p,
                        encr,
                        Secret::new(s.clone()),
                        b"gxy",
                        &ci,
                        &cr,
                        &gxi,
                        &gxr,
                    );
                    assert_eq!(keys.iv, h(f["phase1_iv"]));
                }
                other => panic!("unknown kind {other}"),
            }
        }
        for k in ["cipher_key", "keymat", "phase2_iv", "qm_hash", "hash_ir"] {
            assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k} vectors");
        }
    }

    #[test]
    fn triple_des_key_is_expanded_from_short_skeyid_e() {
        // SHA-1 gives 20 bytes of SKEYID_e; 3DES needs 24 (RFC 2409 Appendix B).
        let keys = phase1_keys(
            HashAlg::Sha1,
            HashAlg::Sha1,
            EncrAlg::TripleDesCbc,
            Secret::new(vec![7; 20]),
            &[9; 128],
            &[1; 8],
            &[2; 8],
            &[3; 128],
            &[4; 128],
        );
        let k1 = prf(HashAlg::Sha1, &keys.skeyid_e, &[&[0]]);
        let k2 = prf(HashAlg::Sha1, &keys.skeyid_e, &[&k1]);
        assert_eq!(keys.enc_key.as_bytes(), &[k1, k2].concat()[..24]);
        assert_eq!(keys.iv.len(), 8);
    }

    // NIST SP 800-38A F.2.1 / F.2.2 (AES-128-CBC) and F.2.5 / F.2.6 (AES-256-CBC).
    const SP800_38A_IV: &str = "000102030405060708090a0b0c0d0e0f";
    const SP800_38A_PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                                30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    #[test]
    fn aes_128_cbc_sp800_38a() {
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let ct = h(
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
                    73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
        );
        let (iv, pt) = (h(SP800_38A_IV), h(SP800_38A_PT));
        assert_eq!(encrypt(EncrAlg::AesCbc128, &key, &iv, &pt).unwrap(), ct);
        assert_eq!(decrypt(EncrAlg::AesCbc128, &key, &iv, &ct).unwrap(), pt);
    }

    #[test]
    fn aes_256_cbc_sp800_38a() {
        let key = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let ct = h(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                    39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
        let (iv, pt) = (h(SP800_38A_IV), h(SP800_38A_PT));
        assert_eq!(encrypt(EncrAlg::AesCbc256, &key, &iv, &pt).unwrap(), ct);
        assert_eq!(decrypt(EncrAlg::AesCbc256, &key, &iv, &ct).unwrap(), pt);
    }

    #[test]
    fn triple_des_sp800_67_example() {
        // SP 800-67 Rev. 1 appendix B example (TDEA in ECB): each block through CBC with a
        // zero IV is one ECB block.
        let key = h("0123456789abcdef23456789abcdef01456789abcdef0123");
        let pt = h("5468652071756663"); // "The qufc"
        let ct = h("a826fd8ce53b855f");
        let zero = [0u8; 8];
        assert_eq!(
            encrypt(EncrAlg::TripleDesCbc, &key, &zero, &pt).unwrap(),
            ct
        );
        assert_eq!(
            decrypt(EncrAlg::TripleDesCbc, &key, &zero, &ct).unwrap(),
            pt
        );
        // CBC chaining: the second block's IV is the first ciphertext block.
        let two = [pt.clone(), pt.clone()].concat();
        let enc = encrypt(EncrAlg::TripleDesCbc, &key, &zero, &two).unwrap();
        assert_eq!(&enc[..8], &ct[..]);
        assert_eq!(
            &enc[8..],
            &encrypt(EncrAlg::TripleDesCbc, &key, &ct, &pt).unwrap()[..]
        );
    }

    #[test]
    fn cbc_refuses_bad_lengths() {
        let k = [0u8; 16];
        let iv = [0u8; 16];
        assert!(matches!(
            encrypt(EncrAlg::AesCbc128, &k, &iv, &[0; 15]),
            Err(CryptoError::InvalidDataLength { .. })
        ));
        assert!(matches!(
            encrypt(EncrAlg::AesCbc256, &k, &iv, &[0; 16]),
            Err(CryptoError::InvalidKeyLength { .. })
        ));
        assert!(matches!(
            decrypt(EncrAlg::AesCbc128, &k, &iv[..8], &[0; 16]),
            Err(CryptoError::InvalidIvLength { .. })
        ));
        assert_eq!(
            encrypt(EncrAlg::AesCbc128, &k, &iv, &[]).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn hmac_rfc2202_rfc4231() {
        let hi = b"Hi There";
        let k16 = [0x0bu8; 16];
        let k20 = [0x0bu8; 20];
        assert_eq!(
            prf(HashAlg::Md5, &k16, &[hi]),
            h("9294727a3638bb1c13f48ef8158bfc9d")
        );
        assert_eq!(
            prf(HashAlg::Sha1, &k20, &[hi]),
            h("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        assert_eq!(
            prf(HashAlg::Sha256, &k20, &[b"Hi ", b"There"]),
            h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            prf(HashAlg::Sha384, &k20, &[hi]),
            h(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
               faea9ea9076ede7f4af152e8b2fa9cb6"
            )
        );
        assert_eq!(
            prf(HashAlg::Sha512, &k20, &[hi]),
            h(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
               daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            )
        );
        assert_eq!(
            prf(
                HashAlg::Sha256,
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            ),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn hmac_keys_longer_than_a_block_are_hashed_first() {
        // RFC 4231 test case 6 (SHA-256); the others computed with Python's hmac module.
        let key = [0xaau8; 131];
        let data: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let cases = [
            (HashAlg::Md5, "bfecaf4efff90a3a668f3922fec3762d"),
            (HashAlg::Sha1, "90d0dace1c1bdc957339307803160335bde6df2b"),
            (HashAlg::Sha256, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (HashAlg::Sha384, "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"),
            (HashAlg::Sha512, "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"),
        ];
        for (alg, want) in cases {
            assert_eq!(prf(alg, &key, &[data]), h(want), "{alg:?}");
        }
    }

    #[test]
    fn hash_known_answers() {
        assert_eq!(
            hash(HashAlg::Sha1, &[b"a", b"bc"]),
            h("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            hash(HashAlg::Sha256, &[b"abc"]),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            hash(HashAlg::Md5, &[]),
            h("d41d8cd98f00b204e9800998ecf8427e")
        );
    }

    #[test]
    fn prf_accepts_an_empty_key() {
        // RFC 2104 allows it; a misconfigured empty PSK must not abort the process.
        // Python: hmac.new(b"", b"x", hashlib.sha1)
        assert_eq!(
            prf(HashAlg::Sha1, b"", &[b"x"]),
            h("6244e66451a1c8695db9731ce2c4fd5de25ccf87")
        );
    }
}
