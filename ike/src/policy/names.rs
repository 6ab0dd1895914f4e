//! Private mappings between isakmpd.conf names, wire numbers and the typed algorithms.
//! Wire numbers of groups and hashes come from `crypto::algs` (`Group::id`, `HashAlg::oakley_id`).

use super::{AuthMethod, EspCipher, IntegAlg};
use crate::codec::{ipsec_attr, oakley_attr, transform_id};
use crate::crypto::{EncrAlg, Group, HashAlg};

/// A GROUP_DESCRIPTION attribute value (as parsed, up to 64 bits) as a group.
pub(crate) fn group_from_id(id: u64) -> Option<Group> {
    u16::try_from(id).ok().and_then(Group::from_id)
}

/// isakmpd.conf `GROUP_DESCRIPTION` names.
pub(crate) fn group_from_conf(name: &str) -> Option<Group> {
    let n = name.trim().to_ascii_uppercase();
    Some(match n.as_str() {
        "MODP_1024" => Group::Modp1024,
        "MODP_1536" => Group::Modp1536,
        "MODP_2048" => Group::Modp2048,
        "MODP_3072" => Group::Modp3072,
        "MODP_4096" => Group::Modp4096,
        "MODP_6144" => Group::Modp6144,
        "MODP_8192" => Group::Modp8192,
        "ECP_256" => Group::Ecp256,
        "ECP_384" => Group::Ecp384,
        "ECP_521" => Group::Ecp521,
        _ => return None,
    })
}

pub(crate) fn group_label(g: Group) -> &'static str {
    match g {
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

/// Oakley encryption number and KEY_LENGTH (AES only).
pub(crate) fn encr_oakley(e: EncrAlg) -> (u16, Option<u16>) {
    match e {
        EncrAlg::TripleDesCbc => (oakley_attr::ENC_3DES_CBC, None),
        EncrAlg::AesCbc128 => (oakley_attr::ENC_AES_CBC, Some(128)),
        EncrAlg::AesCbc192 => (oakley_attr::ENC_AES_CBC, Some(192)),
        EncrAlg::AesCbc256 => (oakley_attr::ENC_AES_CBC, Some(256)),
    }
}

pub(crate) fn encr_from_oakley(enc: u64, key_bits: Option<u64>) -> Option<EncrAlg> {
    match (enc, key_bits) {
        (e, None) if e == u64::from(oakley_attr::ENC_3DES_CBC) => Some(EncrAlg::TripleDesCbc),
        (e, k) if e == u64::from(oakley_attr::ENC_AES_CBC) => match k {
            // RFC 3602 requires KEY_LENGTH; like most implementations take 128 if absent.
            None | Some(128) => Some(EncrAlg::AesCbc128),
            Some(192) => Some(EncrAlg::AesCbc192),
            Some(256) => Some(EncrAlg::AesCbc256),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn encr_label(e: EncrAlg) -> &'static str {
    match e {
        EncrAlg::TripleDesCbc => "3DES",
        EncrAlg::AesCbc128 => "AES-128",
        EncrAlg::AesCbc192 => "AES-192",
        EncrAlg::AesCbc256 => "AES-256",
    }
}

/// A HASH_ALGORITHM attribute value as a hash.
pub(crate) fn hash_from_oakley(v: u64) -> Option<HashAlg> {
    u16::try_from(v).ok().and_then(HashAlg::from_oakley)
}

pub(crate) fn hash_from_conf(name: &str) -> Option<HashAlg> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "MD5" => HashAlg::Md5,
        "SHA" | "SHA1" => HashAlg::Sha1,
        "SHA2_256" => HashAlg::Sha256,
        "SHA2_384" => HashAlg::Sha384,
        "SHA2_512" => HashAlg::Sha512,
        _ => return None,
    })
}

pub(crate) fn hash_label(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Md5 => "MD5",
        HashAlg::Sha1 => "SHA1",
        HashAlg::Sha256 => "SHA2_256",
        HashAlg::Sha384 => "SHA2_384",
        HashAlg::Sha512 => "SHA2_512",
    }
}

pub(crate) fn auth_oakley(a: AuthMethod) -> u16 {
    match a {
        AuthMethod::PreShared => oakley_attr::AUTH_PRE_SHARED,
        AuthMethod::RsaSig => oakley_attr::AUTH_RSA_SIG,
    }
}

pub(crate) fn auth_from_oakley(v: u64) -> Option<AuthMethod> {
    if v == u64::from(oakley_attr::AUTH_PRE_SHARED) {
        Some(AuthMethod::PreShared)
    } else if v == u64::from(oakley_attr::AUTH_RSA_SIG) {
        Some(AuthMethod::RsaSig)
    } else {
        None
    }
}

pub(crate) fn auth_label(a: AuthMethod) -> &'static str {
    match a {
        AuthMethod::PreShared => "PSK",
        AuthMethod::RsaSig => "RSA_SIG",
    }
}

pub(crate) fn integ_ipsec(i: IntegAlg) -> u16 {
    match i {
        IntegAlg::HmacMd5 => ipsec_attr::AUTH_HMAC_MD5,
        IntegAlg::HmacSha1 => ipsec_attr::AUTH_HMAC_SHA,
        IntegAlg::HmacSha256 => ipsec_attr::AUTH_HMAC_SHA2_256,
        IntegAlg::HmacSha384 => ipsec_attr::AUTH_HMAC_SHA2_384,
        IntegAlg::HmacSha512 => ipsec_attr::AUTH_HMAC_SHA2_512,
    }
}

const INTEGS: [IntegAlg; 5] = [
    IntegAlg::HmacMd5,
    IntegAlg::HmacSha1,
    IntegAlg::HmacSha256,
    IntegAlg::HmacSha384,
    IntegAlg::HmacSha512,
];

pub(crate) fn integ_from_ipsec(v: u64) -> Option<IntegAlg> {
    INTEGS.into_iter().find(|i| u64::from(integ_ipsec(*i)) == v)
}

/// AH transform id of an integrity algorithm.
pub(crate) fn ah_transform(i: IntegAlg) -> u8 {
    match i {
        IntegAlg::HmacMd5 => transform_id::AH_MD5,
        IntegAlg::HmacSha1 => transform_id::AH_SHA,
        IntegAlg::HmacSha256 => transform_id::AH_SHA2_256,
        IntegAlg::HmacSha384 => transform_id::AH_SHA2_384,
        IntegAlg::HmacSha512 => transform_id::AH_SHA2_512,
    }
}

pub(crate) fn integ_from_ah(id: u8) -> Option<IntegAlg> {
    INTEGS.into_iter().find(|i| ah_transform(*i) == id)
}

pub(crate) fn integ_from_conf(name: &str) -> Option<IntegAlg> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "HMAC_MD5" | "MD5" => IntegAlg::HmacMd5,
        "HMAC_SHA" | "SHA" => IntegAlg::HmacSha1,
        "HMAC_SHA2_256" | "SHA2_256" => IntegAlg::HmacSha256,
        "HMAC_SHA2_384" | "SHA2_384" => IntegAlg::HmacSha384,
        "HMAC_SHA2_512" | "SHA2_512" => IntegAlg::HmacSha512,
        _ => return None,
    })
}

pub(crate) fn integ_label(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::HmacMd5 => "HMAC_MD5",
        IntegAlg::HmacSha1 => "HMAC_SHA1",
        IntegAlg::HmacSha256 => "HMAC_SHA2_256",
        IntegAlg::HmacSha384 => "HMAC_SHA2_384",
        IntegAlg::HmacSha512 => "HMAC_SHA2_512",
    }
}

/// ESP transform id and KEY_LENGTH.
pub(crate) fn esp_transform(c: EspCipher) -> (u8, Option<u16>) {
    match c {
        EspCipher::TripleDes => (transform_id::ESP_3DES, None),
        EspCipher::AesCbc { key_bits } => (transform_id::ESP_AES_CBC, Some(key_bits)),
        EspCipher::AesGcm16 { key_bits } => (transform_id::ESP_AES_GCM_16, Some(key_bits)),
        EspCipher::Null => (transform_id::ESP_NULL, None),
    }
}

pub(crate) fn esp_from_wire(id: u8, key_bits: Option<u64>) -> Option<EspCipher> {
    let aes_bits = |k: Option<u64>| match k {
        None | Some(128) => Some(128u16),
        Some(192) => Some(192),
        Some(256) => Some(256),
        _ => None,
    };
    match id {
        transform_id::ESP_3DES if key_bits.is_none() => Some(EspCipher::TripleDes),
        transform_id::ESP_NULL if key_bits.is_none() => Some(EspCipher::Null),
        transform_id::ESP_AES_CBC => {
            aes_bits(key_bits).map(|key_bits| EspCipher::AesCbc { key_bits })
        }
        transform_id::ESP_AES_GCM_16 => {
            aes_bits(key_bits).map(|key_bits| EspCipher::AesGcm16 { key_bits })
        }
        _ => None,
    }
}

pub(crate) fn esp_label(c: EspCipher) -> String {
    match c {
        EspCipher::TripleDes => "3DES".into(),
        EspCipher::AesCbc { key_bits } => format!("AES-{key_bits}"),
        EspCipher::AesGcm16 { key_bits } => format!("AES-GCM16-{key_bits}"),
        EspCipher::Null => "NULL".into(),
    }
}
