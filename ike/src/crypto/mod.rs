//! Oakley and IPsec DOI cryptography over OpenSSL: ciphers, PRFs, DH groups, and the key
//! derivations of RFC 2409 (SKEYID, SKEYID_d/a/e, IVs, HASH_I/R, Quick Mode hashes, KEYMAT).
//!
//! INTERFACE CONTRACT (the engine codes against these names; the implementation fills them):
//!
//! ```text
//! pub enum EncrAlg { TripleDesCbc, AesCbc128, AesCbc192, AesCbc256 }
//!     fn from_oakley(enc: u16, key_bits: Option<u16>) -> Option<EncrAlg>   // DES (1) -> None
//!     fn key_len(self) -> usize; fn block_len(self) -> usize; fn name(self) -> &'static str
//! pub enum HashAlg { Md5, Sha1, Sha256, Sha384, Sha512 }
//!     fn from_oakley(id: u16) -> Option<HashAlg>; fn output_len(self) -> usize; fn name(self)
//! pub enum Group { Modp1024, Modp1536, Modp2048, Modp3072, Modp4096, Modp6144, Modp8192,
//!                  Ecp256, Ecp384, Ecp521 }
//!     fn from_id(id: u16) -> Option<Group>  // 1 (MODP768) -> None; fn id(self) -> u16
//!     fn public_len(self) -> usize; fn name(self) -> &'static str
//! pub struct DhPrivate  (Serialize + Deserialize, zeroized on drop, Debug prints nothing secret)
//! pub struct SharedSecret / key material as `Secret` (Vec<u8> wrapper, zeroized on drop,
//!     Deref<Target=[u8]>, Serialize/Deserialize, redacting Debug)
//! pub enum CryptoError { .. } (Display + std::error::Error)
//!
//! pub fn random_bytes(n: usize) -> Vec<u8>                        // OpenSSL RAND
//! pub fn hash(h: HashAlg, parts: &[&[u8]]) -> Vec<u8>
//! pub fn prf(h: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8>  // HMAC
//! pub fn dh_keygen(g: Group) -> Result<(Vec<u8>, DhPrivate), CryptoError>   // public is g^x
//!        left-padded to public_len (MODP) or X|Y (ECP, RFC 5903)
//! pub fn dh_derive(g: Group, private: &DhPrivate, peer_public: &[u8]) -> Result<Secret, CryptoError>
//!        // g^xy left-padded to the modulus length; ECP: x coordinate only. Checks 1<y<p-1 / the point.
//! pub fn encrypt(e: EncrAlg, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError>
//! pub fn decrypt(e: EncrAlg, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError>
//!        // raw CBC, no padding; data must be a multiple of the block length
//! pub fn skeyid_psk(prf: HashAlg, psk: &[u8], ni_b: &[u8], nr_b: &[u8]) -> Secret
//! pub fn skeyid_sig(prf: HashAlg, ni_b: &[u8], nr_b: &[u8], gxy: &[u8]) -> Secret
//! pub struct Phase1Keys { pub skeyid: Secret, pub skeyid_d: Secret, pub skeyid_a: Secret,
//!                         pub skeyid_e: Secret, pub enc_key: Secret, pub iv: Vec<u8> }
//! pub fn phase1_keys(prf: HashAlg, hash: HashAlg, encr: EncrAlg, skeyid: Secret, gxy: &[u8],
//!                    cky_i: &[u8; 8], cky_r: &[u8; 8], gxi: &[u8], gxr: &[u8]) -> Phase1Keys
//!        // SKEYID_d/a/e (RFC 2409 5), key expansion (Appendix B) when SKEYID_e is short,
//!        // initial IV = hash(g^xi | g^xr) truncated to the block length
//! pub fn hash_i(prf, skeyid, gxi, gxr, cky_i, cky_r, sai_b, idii_b) -> Vec<u8>
//! pub fn hash_r(prf, skeyid, gxr, gxi, cky_r, cky_i, sai_b, idir_b) -> Vec<u8>
//! pub fn phase2_iv(hash: HashAlg, block_len: usize, last_phase1_block: &[u8], message_id: u32) -> Vec<u8>
//! pub fn qm_hash1(prf, skeyid_a, message_id, rest) ; qm_hash2(prf, skeyid_a, message_id, ni_b, rest)
//! pub fn qm_hash3(prf, skeyid_a, message_id, ni_b, nr_b)
//! pub fn info_hash(prf, skeyid_a, message_id, rest)               // HASH(1) of Informational
//! pub fn keymat(prf: HashAlg, skeyid_d: &[u8], g_qm_xy: Option<&[u8]>, protocol: u8,
//!               spi: &[u8], ni_b: &[u8], nr_b: &[u8], len: usize) -> Secret   // with expansion
//! pub fn rsa_sign(key: &openssl::pkey::PKeyRef<Private>, hash: &[u8]) -> Result<Vec<u8>, CryptoError>
//! pub fn rsa_verify(public_der_or_pem: &[u8], hash: &[u8], sig: &[u8]) -> Result<bool, CryptoError>
//!        // IKEv1 RSA: PKCS#1 v1.5 padding over the raw hash, no DigestInfo (RFC 2409 5.1)
//!
//! Requests a helper answers (the child never holds long-term secrets):
//! pub enum CryptoRequest { DhKeygen{group}, DhDerive{group, private, peer_public},
//!     SkeyidPsk{prf, secret: String /* name of the secret in the helper's store */, ni_b, nr_b},
//!     RsaSign{secret: String, prf: HashAlg, hash}, RsaVerify{public_key: Vec<u8>, hash, sig} }
//! pub enum CryptoResult { DhKeyPair{public, private}, DhShared(Secret), Skeyid(Secret),
//!     Signature(Vec<u8>), Verified(bool), Failed(String),
//!     Refused{reason: String, refused_total: u64} }
//! pub trait SecretStore { fn psk(&self, name: &str) -> Option<&[u8]>;
//!                         fn rsa_key(&self, name: &str) -> Option<&PKey<Private>>; }
//! pub fn serve(req: &CryptoRequest, store: &dyn SecretStore) -> CryptoResult
//! pub fn validate(req: &CryptoRequest) -> Result<(), ShapeError>   // the shapes serve accepts
//! ```
//!
//! Beyond the contract (additions only; above, only validate's error type changed, from a
//! String to a ShapeError whose Display is the old text):
//!
//! ```text
//! EncrAlg::oakley_id(self) -> u16; EncrAlg::oakley_key_bits(self) -> Option<u16>
//! HashAlg::oakley_id(self) -> u16; HashAlg::ALL
//! pub enum ShapeError { PublicValueLength, PrivateOfOtherGroup, MalformedPrivate, NonceLength,
//!     SignedLength, VerifiedLength, SignatureLength, PublicKeyLength }   // validate's refusals
//! Group::is_ecp(self) -> bool; Group::secret_len(self) -> usize   // length of g^xy
//! Group::exponent_bits(self) -> Option<u32>                        // MODP private exponent
//! DhPrivate::group(&self) -> Group; DhPrivate::public(&self) -> &[u8]
//! Secret::new(Vec<u8>), Secret::from_slice(&[u8]), Secret::truncated(Vec<u8>, usize),
//!     Secret::as_bytes(&self); PartialEq is constant-time; `type SharedSecret = Secret`
//! pub fn cipher_key(prf, skeyid_e, key_len) -> Secret              // RFC 2409 Appendix B
//! pub fn rsa_public_key(der_or_pem) -> Result<PKey<Public>, CryptoError>
//! pub fn rsa_verify_key(&PKeyRef<Public>, hash, sig) -> Result<bool, CryptoError>
//! ```
//!
//! Notes for callers:
//! - `prf`, `hash` and `random_bytes` cannot fail on valid input; OpenSSL fails them only
//!   when it cannot allocate, and then the process aborts (as Rust does on allocation
//!   failure) rather than return a value that could be mistaken for a real one.
//! - `phase1_keys` takes `prf` and `hash` separately: the PRF makes SKEYID_*, the hash
//!   makes the initial IV (RFC 2409 Appendix B); they are the same algorithm in practice.
//! - CBC state across messages is the caller's: the next IV is the last ciphertext block
//!   (of what was sent, or of what was received).

mod algs;
pub use algs::{EncrAlg, Group, HashAlg};
mod dh;
mod helper;
mod kdf;
mod primes;
mod rsa;
mod secret;
mod symm;

pub use dh::{dh_derive, dh_keygen, dh_public_check, DhPrivate};
pub use helper::{
    serve, validate, CryptoRequest, CryptoResult, SecretStore, ShapeError, MAX_PUBLIC_KEY_LEN,
    MAX_SIGNATURE_LEN, NONCE_LEN,
};
pub use kdf::{
    cipher_key, hash_i, hash_r, info_hash, keymat, phase1_keys, phase2_iv, qm_hash1, qm_hash2,
    qm_hash3, skeyid_psk, skeyid_sig, Phase1Keys,
};
pub use rsa::{rsa_public_key, rsa_sign, rsa_verify, rsa_verify_key};
pub use secret::{CryptoError, Secret};
pub use symm::{decrypt, encrypt, hash, prf, random_bytes};

/// The shared secret g^xy is key material like any other.
pub type SharedSecret = Secret;
