//! The key derivations of RFC 2409: SKEYID and its children, the phase-1 cipher key and IV,
//! HASH_I/HASH_R, Quick Mode and Informational hashes, phase-2 IVs and KEYMAT.

use super::{hash, prf, EncrAlg, HashAlg, Secret};

/// `SKEYID = prf(pre-shared-key, Ni_b | Nr_b)` (RFC 2409 section 5, pre-shared keys).
pub fn skeyid_psk(prf_alg: HashAlg, psk: &[u8], ni_b: &[u8], nr_b: &[u8]) -> Secret {
    Secret::new(prf(prf_alg, psk, &[ni_b, nr_b]))
}

/// `SKEYID = prf(Ni_b | Nr_b, g^xy)` (RFC 2409 section 5, signatures).
pub fn skeyid_sig(prf_alg: HashAlg, ni_b: &[u8], nr_b: &[u8], gxy: &[u8]) -> Secret {
    let key = Secret::new([ni_b, nr_b].concat());
    Secret::new(prf(prf_alg, &key, &[gxy]))
}

/// Everything phase 1 derives from SKEYID.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Phase1Keys {
    pub skeyid: Secret,
    pub skeyid_d: Secret,
    pub skeyid_a: Secret,
    pub skeyid_e: Secret,
    /// The cipher key: SKEYID_e truncated, or expanded per RFC 2409 Appendix B.
    pub enc_key: Secret,
    /// The IV of the first encrypted message: `hash(g^xi | g^xr)` truncated to a block.
    pub iv: Vec<u8>,
}

/// Derives SKEYID_d, SKEYID_a, SKEYID_e (RFC 2409 section 5), the cipher key and the
/// initial IV:
///
/// ```text
/// SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
/// SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
/// SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
/// ```
///
/// `prf_alg` is the PRF (the HMAC of the negotiated hash), `hash_alg` the negotiated hash
/// that makes the IV; the two are the same in every suite we negotiate.
#[allow(clippy::too_many_arguments)]
pub fn phase1_keys(
    prf_alg: HashAlg,
    hash_alg: HashAlg,
    encr: EncrAlg,
    skeyid: Secret,
    gxy: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    gxi: &[u8],
    gxr: &[u8],
) -> Phase1Keys {
    let skeyid_d = Secret::new(prf(prf_alg, &skeyid, &[gxy, cky_i, cky_r, &[0]]));
    let skeyid_a = Secret::new(prf(prf_alg, &skeyid, &[&skeyid_d, gxy, cky_i, cky_r, &[1]]));
    let skeyid_e = Secret::new(prf(prf_alg, &skeyid, &[&skeyid_a, gxy, cky_i, cky_r, &[2]]));
    let enc_key = cipher_key(prf_alg, &skeyid_e, encr.key_len());
    let mut iv = hash(hash_alg, &[gxi, gxr]);
    iv.truncate(encr.block_len());
    Phase1Keys {
        skeyid,
        skeyid_d,
        skeyid_a,
        skeyid_e,
        enc_key,
        iv,
    }
}

/// The phase-1 cipher key from SKEYID_e: its first `key_len` bytes, or, when SKEYID_e is
/// shorter, the first `key_len` bytes of `Ka = K1 | K2 | ...` with `K1 = prf(SKEYID_e, 0)`
/// and `Kn = prf(SKEYID_e, Kn-1)` (RFC 2409 Appendix B).
pub fn cipher_key(prf_alg: HashAlg, skeyid_e: &[u8], key_len: usize) -> Secret {
    if skeyid_e.len() >= key_len {
        return Secret::from_slice(&skeyid_e[..key_len]);
    }
    let mut ka = Vec::with_capacity(key_len + prf_alg.output_len());
    let mut k = Secret::new(prf(prf_alg, skeyid_e, &[&[0]]));
    loop {
        ka.extend_from_slice(&k);
        if ka.len() >= key_len {
            break;
        }
        k = Secret::new(prf(prf_alg, skeyid_e, &[&k]));
    }
    Secret::truncated(ka, key_len)
}

/// `HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)` (RFC 2409 section 5).
#[allow(clippy::too_many_arguments)]
pub fn hash_i(
    prf_alg: HashAlg,
    skeyid: &[u8],
    gxi: &[u8],
    gxr: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    sai_b: &[u8],
    idii_b: &[u8],
) -> Vec<u8> {
    prf(prf_alg, skeyid, &[gxi, gxr, cky_i, cky_r, sai_b, idii_b])
}

/// `HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)` (RFC 2409 section 5).
#[allow(clippy::too_many_arguments)]
pub fn hash_r(
    prf_alg: HashAlg,
    skeyid: &[u8],
    gxr: &[u8],
    gxi: &[u8],
    cky_r: &[u8; 8],
    cky_i: &[u8; 8],
    sai_b: &[u8],
    idir_b: &[u8],
) -> Vec<u8> {
    prf(prf_alg, skeyid, &[gxr, gxi, cky_r, cky_i, sai_b, idir_b])
}

/// The IV of the first message of a phase-2 (Quick Mode) or Informational exchange:
/// `hash(last phase-1 CBC block | M-ID)` truncated to the block length (RFC 2409 Appendix B).
pub fn phase2_iv(
    hash_alg: HashAlg,
    block_len: usize,
    last_phase1_block: &[u8],
    message_id: u32,
) -> Vec<u8> {
    let mut iv = hash(hash_alg, &[last_phase1_block, &message_id.to_be_bytes()]);
    iv.truncate(block_len);
    iv
}

/// Quick Mode `HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])`;
/// `rest` is the message after the HASH payload (RFC 2409 section 5.5).
pub fn qm_hash1(prf_alg: HashAlg, skeyid_a: &[u8], message_id: u32, rest: &[u8]) -> Vec<u8> {
    prf(prf_alg, skeyid_a, &[&message_id.to_be_bytes(), rest])
}

/// Quick Mode `HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])`.
pub fn qm_hash2(
    prf_alg: HashAlg,
    skeyid_a: &[u8],
    message_id: u32,
    ni_b: &[u8],
    rest: &[u8],
) -> Vec<u8> {
    prf(prf_alg, skeyid_a, &[&message_id.to_be_bytes(), ni_b, rest])
}

/// Quick Mode `HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)`.
pub fn qm_hash3(
    prf_alg: HashAlg,
    skeyid_a: &[u8],
    message_id: u32,
    ni_b: &[u8],
    nr_b: &[u8],
) -> Vec<u8> {
    prf(
        prf_alg,
        skeyid_a,
        &[&[0], &message_id.to_be_bytes(), ni_b, nr_b],
    )
}

/// Informational `HASH(1) = prf(SKEYID_a, M-ID | N/D)`; `rest` is the message after the
/// HASH payload (RFC 2409 section 5.7).
pub fn info_hash(prf_alg: HashAlg, skeyid_a: &[u8], message_id: u32, rest: &[u8]) -> Vec<u8> {
    prf(prf_alg, skeyid_a, &[&message_id.to_be_bytes(), rest])
}

/// KEYMAT for one direction of one IPsec SA (RFC 2409 section 5.5), `len` bytes of
///
/// ```text
/// K1 = prf(SKEYID_d, [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
/// K2 = prf(SKEYID_d, K1 | [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
/// ...
/// ```
#[allow(clippy::too_many_arguments)]
pub fn keymat(
    prf_alg: HashAlg,
    skeyid_d: &[u8],
    g_qm_xy: Option<&[u8]>,
    protocol: u8,
    spi: &[u8],
    ni_b: &[u8],
    nr_b: &[u8],
    len: usize,
) -> Secret {
    let gxy = g_qm_xy.unwrap_or(&[]);
    let proto = [protocol];
    let mut out = Vec::with_capacity(len + prf_alg.output_len());
    let mut k = Secret::new(prf(prf_alg, skeyid_d, &[gxy, &proto, spi, ni_b, nr_b]));
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len {
            break;
        }
        k = Secret::new(prf(prf_alg, skeyid_d, &[&k, gxy, &proto, spi, ni_b, nr_b]));
    }
    Secret::truncated(out, len)
}
