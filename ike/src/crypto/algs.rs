//! The algorithms of Oakley (phase 1): ciphers, hashes and Diffie-Hellman groups.

use serde::{Deserialize, Serialize};

/// Phase-1 encryption algorithm (Oakley ENCRYPTION_ALGORITHM with KEY_LENGTH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncrAlg {
    TripleDesCbc,
    AesCbc128,
    AesCbc192,
    AesCbc256,
}

/// Phase-1 hash algorithm; its HMAC is the PRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// Diffie-Hellman group (Oakley GROUP_DESCRIPTION): MODP of RFC 2409/3526, ECP of RFC 5903.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    Modp1024,
    Modp1536,
    Modp2048,
    Modp3072,
    Modp4096,
    Modp6144,
    Modp8192,
    Ecp256,
    Ecp384,
    Ecp521,
}

impl EncrAlg {
    /// The cipher for Oakley ENCRYPTION_ALGORITHM `enc` with KEY_LENGTH `key_bits` (RFC 2409
    /// Appendix A, RFC 3602 for AES). DES-CBC (1) and everything else we do not implement is
    /// refused. 3DES has a fixed key, so a KEY_LENGTH other than 192 is refused; AES without
    /// KEY_LENGTH is taken as 128 bits (the default isakmpd and pluto use).
    pub fn from_oakley(enc: u16, key_bits: Option<u16>) -> Option<EncrAlg> {
        match (enc, key_bits) {
            (5, None | Some(192)) => Some(EncrAlg::TripleDesCbc),
            (7, None | Some(128)) => Some(EncrAlg::AesCbc128),
            (7, Some(192)) => Some(EncrAlg::AesCbc192),
            (7, Some(256)) => Some(EncrAlg::AesCbc256),
            _ => None,
        }
    }

    /// The Oakley ENCRYPTION_ALGORITHM value.
    pub fn oakley_id(self) -> u16 {
        match self {
            EncrAlg::TripleDesCbc => 5,
            _ => 7,
        }
    }

    /// The Oakley KEY_LENGTH attribute to send (in bits), `None` for fixed-key ciphers.
    pub fn oakley_key_bits(self) -> Option<u16> {
        match self {
            EncrAlg::TripleDesCbc => None,
            EncrAlg::AesCbc128 => Some(128),
            EncrAlg::AesCbc192 => Some(192),
            EncrAlg::AesCbc256 => Some(256),
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            EncrAlg::TripleDesCbc => 24,
            EncrAlg::AesCbc128 => 16,
            EncrAlg::AesCbc192 => 24,
            EncrAlg::AesCbc256 => 32,
        }
    }

    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            EncrAlg::TripleDesCbc => 8,
            _ => 16,
        }
    }

    /// Human-readable name, for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            EncrAlg::TripleDesCbc => "3DES-CBC",
            EncrAlg::AesCbc128 => "AES-128-CBC",
            EncrAlg::AesCbc192 => "AES-192-CBC",
            EncrAlg::AesCbc256 => "AES-256-CBC",
        }
    }

    pub(crate) fn cipher(self) -> openssl::symm::Cipher {
        use openssl::symm::Cipher;
        match self {
            EncrAlg::TripleDesCbc => Cipher::des_ede3_cbc(),
            EncrAlg::AesCbc128 => Cipher::aes_128_cbc(),
            EncrAlg::AesCbc192 => Cipher::aes_192_cbc(),
            EncrAlg::AesCbc256 => Cipher::aes_256_cbc(),
        }
    }
}

impl HashAlg {
    /// Every hash this implementation knows.
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Md5,
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// The hash for Oakley HASH_ALGORITHM `id`: 1 MD5, 2 SHA, 4/5/6 SHA2-256/384/512
    /// (IANA IPsec registry). Tiger (3) is refused.
    pub fn from_oakley(id: u16) -> Option<HashAlg> {
        match id {
            1 => Some(HashAlg::Md5),
            2 => Some(HashAlg::Sha1),
            4 => Some(HashAlg::Sha256),
            5 => Some(HashAlg::Sha384),
            6 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// The Oakley HASH_ALGORITHM value.
    pub fn oakley_id(self) -> u16 {
        match self {
            HashAlg::Md5 => 1,
            HashAlg::Sha1 => 2,
            HashAlg::Sha256 => 4,
            HashAlg::Sha384 => 5,
            HashAlg::Sha512 => 6,
        }
    }

    /// Digest (and PRF) output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Human-readable name, for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Md5 => "MD5",
            HashAlg::Sha1 => "SHA1",
            HashAlg::Sha256 => "SHA2-256",
            HashAlg::Sha384 => "SHA2-384",
            HashAlg::Sha512 => "SHA2-512",
        }
    }

    /// The block length of the hash function (the HMAC key pad length, RFC 2104).
    pub fn hmac_block_len(self) -> usize {
        match self {
            HashAlg::Md5 | HashAlg::Sha1 | HashAlg::Sha256 => 64,
            HashAlg::Sha384 | HashAlg::Sha512 => 128,
        }
    }

    pub(crate) fn md(self) -> openssl::hash::MessageDigest {
        use openssl::hash::MessageDigest;
        match self {
            HashAlg::Md5 => MessageDigest::md5(),
            HashAlg::Sha1 => MessageDigest::sha1(),
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
        }
    }
}

impl Group {
    /// The group for Oakley GROUP_DESCRIPTION `id`: 2, 5, 14-18 (MODP), 19-21 (ECP).
    /// Group 1 (MODP768) and anything else are refused.
    pub fn from_id(id: u16) -> Option<Group> {
        match id {
            2 => Some(Group::Modp1024),
            5 => Some(Group::Modp1536),
            14 => Some(Group::Modp2048),
            15 => Some(Group::Modp3072),
            16 => Some(Group::Modp4096),
            17 => Some(Group::Modp6144),
            18 => Some(Group::Modp8192),
            19 => Some(Group::Ecp256),
            20 => Some(Group::Ecp384),
            21 => Some(Group::Ecp521),
            _ => None,
        }
    }

    /// The Oakley GROUP_DESCRIPTION value.
    pub fn id(self) -> u16 {
        match self {
            Group::Modp1024 => 2,
            Group::Modp1536 => 5,
            Group::Modp2048 => 14,
            Group::Modp3072 => 15,
            Group::Modp4096 => 16,
            Group::Modp6144 => 17,
            Group::Modp8192 => 18,
            Group::Ecp256 => 19,
            Group::Ecp384 => 20,
            Group::Ecp521 => 21,
        }
    }

    /// True for the elliptic-curve groups of RFC 5903.
    pub fn is_ecp(self) -> bool {
        matches!(self, Group::Ecp256 | Group::Ecp384 | Group::Ecp521)
    }

    /// Length in bytes of the modulus (MODP) or of one field element (ECP): the length of
    /// the shared secret g^xy.
    pub fn secret_len(self) -> usize {
        match self {
            Group::Modp1024 => 128,
            Group::Modp1536 => 192,
            Group::Modp2048 => 256,
            Group::Modp3072 => 384,
            Group::Modp4096 => 512,
            Group::Modp6144 => 768,
            Group::Modp8192 => 1024,
            Group::Ecp256 => 32,
            Group::Ecp384 => 48,
            Group::Ecp521 => 66,
        }
    }

    /// Length in bytes of the KE payload data: the modulus length (MODP) or X|Y (ECP).
    pub fn public_len(self) -> usize {
        if self.is_ecp() {
            2 * self.secret_len()
        } else {
            self.secret_len()
        }
    }

    /// Bits of the MODP private exponent: twice the group's security strength (NIST SP
    /// 800-57 part 1 table 2 and OpenSSL's estimate for larger moduli), as OpenSSL chooses
    /// for the named groups it knows. `None` for ECP groups.
    pub fn exponent_bits(self) -> Option<u32> {
        match self {
            Group::Modp1024 => Some(160),
            Group::Modp1536 => Some(200),
            Group::Modp2048 => Some(224),
            Group::Modp3072 => Some(256),
            Group::Modp4096 => Some(304),
            Group::Modp6144 => Some(352),
            Group::Modp8192 => Some(400),
            _ => None,
        }
    }

    /// Human-readable name, for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Group::Modp1024 => "MODP1024",
            Group::Modp1536 => "MODP1536",
            Group::Modp2048 => "MODP2048",
            Group::Modp3072 => "MODP3072",
            Group::Modp4096 => "MODP4096",
            Group::Modp6144 => "MODP6144",
            Group::Modp8192 => "MODP8192",
            Group::Ecp256 => "ECP256",
            Group::Ecp384 => "ECP384",
            Group::Ecp521 => "ECP521",
        }
    }
}
