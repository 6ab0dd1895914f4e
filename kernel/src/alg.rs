//! Translation of negotiated IPsec algorithms into what Linux XFRM wants: crypto API names,
//! key lengths and ICV/truncation lengths.
//!
//! Truncation follows RFC 2403/2404 (HMAC-MD5-96, HMAC-SHA1-96) and RFC 4868 (HMAC-SHA2-256-128,
//! -384-192, -512-256). AES-GCM uses a 16-byte ICV (RFC 4106) and its key is the AES key
//! followed by the 4-byte salt, which is how the kernel's `rfc4106(gcm(aes))` takes it.

use crate::types::{EspCipher, IntegAlg};

/// How the kernel is to be given an encryption algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelCipher {
    /// XFRMA_ALG_CRYPT with this name; key length in bytes.
    Crypt { name: &'static str, key_len: usize },
    /// XFRMA_ALG_AEAD with this name; key length in bytes (including the salt) and ICV in bits.
    Aead {
        name: &'static str,
        key_len: usize,
        icv_bits: u32,
    },
}

/// The kernel's view of an integrity algorithm (XFRMA_ALG_AUTH_TRUNC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelAuth {
    pub name: &'static str,
    pub key_len: usize,
    pub trunc_bits: u32,
}

/// Salt length of RFC 4106 AES-GCM, appended to the key.
pub const GCM_SALT_LEN: usize = 4;

/// The kernel name and key length for `cipher`, or `None` when the cipher is rejected.
pub fn cipher(cipher: EspCipher) -> Option<KernelCipher> {
    match cipher {
        EspCipher::TripleDes => Some(KernelCipher::Crypt {
            name: "cbc(des3_ede)",
            key_len: 24,
        }),
        EspCipher::AesCbc { key_bits } if matches!(key_bits, 128 | 192 | 256) => {
            Some(KernelCipher::Crypt {
                name: "cbc(aes)",
                key_len: usize::from(key_bits / 8),
            })
        }
        EspCipher::AesGcm16 { key_bits } if matches!(key_bits, 128 | 192 | 256) => {
            Some(KernelCipher::Aead {
                name: "rfc4106(gcm(aes))",
                key_len: usize::from(key_bits / 8) + GCM_SALT_LEN,
                icv_bits: 128,
            })
        }
        EspCipher::Null => Some(KernelCipher::Crypt {
            name: "ecb(cipher_null)",
            key_len: 0,
        }),
        EspCipher::AesCbc { .. } | EspCipher::AesGcm16 { .. } => None,
    }
}

/// The kernel name, key length and truncation of `integ`.
pub fn auth(integ: IntegAlg) -> KernelAuth {
    match integ {
        IntegAlg::HmacMd5 => KernelAuth {
            name: "hmac(md5)",
            key_len: 16,
            trunc_bits: 96,
        },
        IntegAlg::HmacSha1 => KernelAuth {
            name: "hmac(sha1)",
            key_len: 20,
            trunc_bits: 96,
        },
        IntegAlg::HmacSha256 => KernelAuth {
            name: "hmac(sha256)",
            key_len: 32,
            trunc_bits: 128,
        },
        IntegAlg::HmacSha384 => KernelAuth {
            name: "hmac(sha384)",
            key_len: 48,
            trunc_bits: 192,
        },
        IntegAlg::HmacSha512 => KernelAuth {
            name: "hmac(sha512)",
            key_len: 64,
            trunc_bits: 256,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphers_have_kernel_names_and_key_lengths() {
        assert_eq!(
            cipher(EspCipher::TripleDes),
            Some(KernelCipher::Crypt {
                name: "cbc(des3_ede)",
                key_len: 24
            })
        );
        for bits in [128u16, 192, 256] {
            assert_eq!(
                cipher(EspCipher::AesCbc { key_bits: bits }),
                Some(KernelCipher::Crypt {
                    name: "cbc(aes)",
                    key_len: usize::from(bits / 8)
                })
            );
            assert_eq!(
                cipher(EspCipher::AesGcm16 { key_bits: bits }),
                Some(KernelCipher::Aead {
                    name: "rfc4106(gcm(aes))",
                    key_len: usize::from(bits / 8) + 4,
                    icv_bits: 128
                })
            );
        }
        assert_eq!(cipher(EspCipher::AesCbc { key_bits: 100 }), None);
        assert_eq!(cipher(EspCipher::AesGcm16 { key_bits: 64 }), None);
    }

    #[test]
    fn integrity_is_truncated_per_rfc_2404_and_4868() {
        let table = [
            (IntegAlg::HmacMd5, "hmac(md5)", 16, 96),
            (IntegAlg::HmacSha1, "hmac(sha1)", 20, 96),
            (IntegAlg::HmacSha256, "hmac(sha256)", 32, 128),
            (IntegAlg::HmacSha384, "hmac(sha384)", 48, 192),
            (IntegAlg::HmacSha512, "hmac(sha512)", 64, 256),
        ];
        for (alg, name, key_len, trunc_bits) in table {
            assert_eq!(
                auth(alg),
                KernelAuth {
                    name,
                    key_len,
                    trunc_bits
                }
            );
        }
    }
}
