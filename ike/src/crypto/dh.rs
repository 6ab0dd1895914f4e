//! Diffie-Hellman over the MODP groups of RFC 2409/3526 and the ECP groups of RFC 5903,
//! all arithmetic on secrets done by OpenSSL (constant-time paths).

use std::fmt;
use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext, MsbOption};
use openssl::derive::Deriver;
use openssl::dh::Dh;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use serde::{Deserialize, Serialize};

use super::{primes, CryptoError, Group, Secret};

/// Our half of a Diffie-Hellman exchange: the private exponent (MODP) or scalar (ECP), with
/// the public value it belongs to. Wiped on drop; Debug shows only the group.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhPrivate {
    group: Group,
    private: Secret,
    public: Vec<u8>,
}

impl DhPrivate {
    /// The group this value belongs to.
    pub fn group(&self) -> Group {
        self.group
    }

    /// Our public value, as sent in the KE payload.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Whether the lengths are those `dh_keygen` makes for the group (a value that crossed
    /// a process boundary may have been forged).
    pub(crate) fn is_well_formed(&self) -> bool {
        let private_len = match self.group.exponent_bits() {
            Some(bits) => bits.div_ceil(8) as usize,
            None => self.group.secret_len(),
        };
        self.public.len() == self.group.public_len() && self.private.len() == private_len
    }
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhPrivate({})", self.group.name())
    }
}

/// p, q = (p-1)/2, g = 2 and p-1 of one MODP group, parsed once.
struct Modp {
    p: BigNum,
    q: BigNum,
    g: BigNum,
    p_minus_1: BigNum,
}

fn modp_hex(g: Group) -> Option<&'static str> {
    Some(match g {
        Group::Modp1024 => primes::MODP_1024,
        Group::Modp1536 => primes::MODP_1536,
        Group::Modp2048 => primes::MODP_2048,
        Group::Modp3072 => primes::MODP_3072,
        Group::Modp4096 => primes::MODP_4096,
        Group::Modp6144 => primes::MODP_6144,
        Group::Modp8192 => primes::MODP_8192,
        _ => return None,
    })
}

fn parse_modp(hex: &str) -> Result<Modp, openssl::error::ErrorStack> {
    let p = BigNum::from_hex_str(hex)?;
    let mut p_minus_1 = p.to_owned()?;
    p_minus_1.sub_word(1)?;
    let mut q = BigNum::new()?;
    q.rshift1(&p_minus_1)?;
    Ok(Modp {
        p,
        q,
        g: BigNum::from_u32(2)?,
        p_minus_1,
    })
}

fn modp(g: Group) -> Result<&'static Modp, CryptoError> {
    static CACHE: [OnceLock<Modp>; 7] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = match g {
        Group::Modp1024 => &CACHE[0],
        Group::Modp1536 => &CACHE[1],
        Group::Modp2048 => &CACHE[2],
        Group::Modp3072 => &CACHE[3],
        Group::Modp4096 => &CACHE[4],
        Group::Modp6144 => &CACHE[5],
        Group::Modp8192 => &CACHE[6],
        _ => return Err(CryptoError::GroupMismatch),
    };
    if let Some(m) = slot.get() {
        return Ok(m);
    }
    let hex = modp_hex(g).ok_or(CryptoError::GroupMismatch)?;
    let parsed = parse_modp(hex)?;
    Ok(slot.get_or_init(|| parsed))
}

impl Modp {
    fn dh_params(&self) -> Result<Dh<openssl::pkey::Params>, openssl::error::ErrorStack> {
        Dh::from_pqg(
            self.p.to_owned()?,
            Some(self.q.to_owned()?),
            self.g.to_owned()?,
        )
    }
}

/// The curve of an ECP group, built once (building it costs more than a point decode).
fn ec_group(g: Group, nid: Nid) -> Result<&'static EcGroup, CryptoError> {
    static CACHE: [OnceLock<EcGroup>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match g {
        Group::Ecp256 => &CACHE[0],
        Group::Ecp384 => &CACHE[1],
        Group::Ecp521 => &CACHE[2],
        _ => return Err(CryptoError::GroupMismatch),
    };
    if let Some(group) = slot.get() {
        return Ok(group);
    }
    let built = EcGroup::from_curve_name(nid)?;
    Ok(slot.get_or_init(|| built))
}

fn ec_nid(g: Group) -> Option<Nid> {
    match g {
        Group::Ecp256 => Some(Nid::X9_62_PRIME256V1),
        Group::Ecp384 => Some(Nid::SECP384R1),
        Group::Ecp521 => Some(Nid::SECP521R1),
        _ => None,
    }
}

fn to_padded(n: &BigNum, len: usize) -> Result<Vec<u8>, CryptoError> {
    let len = i32::try_from(len).map_err(|_| CryptoError::InvalidPrivateValue)?;
    Ok(n.to_vec_padded(len)?)
}

/// Makes a key pair: the public value `g^x` left-padded to the modulus length (MODP), or
/// `X | Y` each padded to the field size with no point-format octet (ECP, RFC 5903
/// section 7). MODP exponents have `Group::exponent_bits` bits.
pub fn dh_keygen(g: Group) -> Result<(Vec<u8>, DhPrivate), CryptoError> {
    if let Some(nid) = ec_nid(g) {
        return ec_keygen(g, nid);
    }
    let m = modp(g)?;
    let bits = g.exponent_bits().ok_or(CryptoError::GroupMismatch)?;
    let bits = i32::try_from(bits).map_err(|_| CryptoError::GroupMismatch)?;
    let mut x = BigNum::new_secure()?;
    loop {
        x.rand(bits, MsbOption::MAYBE_ZERO, false)?;
        // 1 < x; anything else is a valid exponent (x < 2^bits < q).
        if x.num_bits() > 1 {
            break;
        }
    }
    x.set_const_time();
    let private = Secret::new(to_padded(&x, bits.unsigned_abs().div_ceil(8) as usize)?);
    // g^x with BN_FLG_CONSTTIME on x: BN_mod_exp_mont_consttime, what DH_generate_key runs
    // (without building a DH object and its Montgomery context for every key).
    let mut ctx = BigNumContext::new_secure()?;
    let mut y = BigNum::new()?;
    y.mod_exp(&m.g, &x, &m.p, &mut ctx)?;
    x.clear();
    let public = to_padded(&y, g.public_len())?;
    Ok((
        public.clone(),
        DhPrivate {
            group: g,
            private,
            public,
        },
    ))
}

fn ec_keygen(g: Group, nid: Nid) -> Result<(Vec<u8>, DhPrivate), CryptoError> {
    let group = ec_group(g, nid)?;
    let key = EcKey::generate(group)?;
    let mut ctx = BigNumContext::new()?;
    let mut x = BigNum::new()?;
    let mut y = BigNum::new()?;
    key.public_key()
        .affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
    let flen = g.secret_len();
    let mut public = to_padded(&x, flen)?;
    public.extend_from_slice(&to_padded(&y, flen)?);
    let private = Secret::new(to_padded(&key.private_key().to_owned()?, flen)?);
    Ok((
        public.clone(),
        DhPrivate {
            group: g,
            private,
            public,
        },
    ))
}

/// The shared secret with the peer's public value: `g^xy` left-padded with zeros to the
/// modulus length (MODP), or the X coordinate of the shared point padded to the field size
/// (ECP, RFC 5903 section 7). The peer's value is checked first: `1 < y < p-1` (MODP; the
/// full subgroup check would cost a modexp and protects nothing for ephemeral keys), or a
/// point on the curve (ECP; with cofactor 1 that is full validation).
pub fn dh_derive(g: Group, private: &DhPrivate, peer_public: &[u8]) -> Result<Secret, CryptoError> {
    if private.group != g {
        return Err(CryptoError::GroupMismatch);
    }
    if peer_public.len() != g.public_len() {
        return Err(CryptoError::InvalidPublicValue("wrong length"));
    }
    if let Some(nid) = ec_nid(g) {
        return ec_derive(g, nid, private, peer_public);
    }
    let m = modp(g)?;
    let y = modp_public(m, peer_public)?;
    let mut x = BigNum::from_slice(&private.private)?;
    x.set_const_time();
    let own_y = BigNum::from_slice(&private.public)?;
    let ours = PKey::from_dh(m.dh_params()?.set_key(own_y, x)?)?;
    let theirs = PKey::from_dh(m.dh_params()?.set_public_key(y)?)?;
    let shared = derive_padded(&ours, &theirs, g.secret_len())?;
    Ok(shared)
}

/// A MODP public value `1 < y < p-1`: 0, 1 and p-1 would make the shared secret known to
/// anyone (0, 1 or +-1).
fn modp_public(m: &Modp, bytes: &[u8]) -> Result<BigNum, CryptoError> {
    let y = BigNum::from_slice(bytes)?;
    if y.num_bits() <= 1 || y >= m.p_minus_1 {
        return Err(CryptoError::InvalidPublicValue("not in 1 < y < p-1"));
    }
    Ok(y)
}

/// The check [`dh_derive`] makes of the peer's public value, on its own: the length, and
/// `1 < y < p-1` (MODP) or a point on the curve (ECP). It costs a comparison (MODP) or a
/// point decoding (ECP), so an engine can refuse a bad value before it spends a key
/// generation on the message that carries it.
pub fn dh_public_check(g: Group, peer_public: &[u8]) -> Result<(), CryptoError> {
    if peer_public.len() != g.public_len() {
        return Err(CryptoError::InvalidPublicValue("wrong length"));
    }
    if let Some(nid) = ec_nid(g) {
        let group = ec_group(g, nid)?;
        let mut ctx = BigNumContext::new()?;
        let mut encoded = Vec::with_capacity(1 + peer_public.len());
        encoded.push(0x04);
        encoded.extend_from_slice(peer_public);
        EcPoint::from_bytes(group, &encoded, &mut ctx)
            .map_err(|_| CryptoError::InvalidPublicValue("not a point on the curve"))?;
        return Ok(());
    }
    modp_public(modp(g)?, peer_public).map(|_| ())
}

/// Derives with OpenSSL (which strips leading zero bytes of the result) and puts the zeros
/// back on the left.
fn derive_padded(
    ours: &PKey<Private>,
    theirs: &PKey<impl openssl::pkey::HasPublic>,
    len: usize,
) -> Result<Secret, CryptoError> {
    let mut deriver = Deriver::new(ours)?;
    // The peer's value has been checked by the caller.
    deriver.set_peer_ex(theirs, false)?;
    let raw = Secret::new(deriver.derive_to_vec()?);
    if raw.len() > len {
        return Err(CryptoError::OpenSsl(
            "derived secret longer than the modulus".into(),
        ));
    }
    let mut out = vec![0u8; len];
    out[len - raw.len()..].copy_from_slice(&raw);
    Ok(Secret::new(out))
}

fn ec_derive(
    g: Group,
    nid: Nid,
    private: &DhPrivate,
    peer_public: &[u8],
) -> Result<Secret, CryptoError> {
    let group = ec_group(g, nid)?;
    let mut ctx = BigNumContext::new()?;
    let mut encoded = Vec::with_capacity(1 + peer_public.len());
    encoded.push(0x04);
    encoded.extend_from_slice(peer_public);
    // EC_POINT_oct2point refuses points that are not on the curve.
    let peer = EcPoint::from_bytes(group, &encoded, &mut ctx)
        .map_err(|_| CryptoError::InvalidPublicValue("not a point on the curve"))?;
    // The point at infinity has no X|Y encoding, and P-256/384/521 have cofactor 1, so every
    // point on the curve is in the prime-order group: the on-curve check above is full
    // validation (SP 800-56A 5.6.2.3.3) and EC_KEY_check_key's n*Q = O would cost a
    // scalar multiplication (~43 us on P-256) to learn nothing more.
    let mut d = BigNum::from_slice(&private.private)?;
    d.set_const_time();
    // EC_POINT_mul with one variable point and no generator term takes OpenSSL's
    // constant-time path (Montgomery ladder, or nistz256's fixed window on P-256), the
    // same call ECDH_compute_key makes.
    let mut shared = EcPoint::new(group)?;
    let mul = shared.mul2(group, &peer, &d, &mut ctx);
    d.clear();
    mul?;
    let mut x = BigNum::new_secure()?;
    let mut y = BigNum::new()?;
    shared.affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
    let out = Secret::new(to_padded(&x, g.secret_len())?);
    x.clear();
    Ok(out)
}
