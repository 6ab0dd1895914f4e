//! Protocol numbers of RFC 2407/2408/2409/3947/3706, as open newtypes so that unknown values
//! survive a round trip.

use serde::{Deserialize, Serialize};

/// An ISAKMP cookie (RFC 2408 3.1): 8 opaque bytes naming one side of a phase-1 SA.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Cookie(pub [u8; 8]);

/// Exchange type (RFC 2408 3.1, RFC 2409 5, IPsec DOI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExchangeType(pub u8);
impl ExchangeType {
    pub const BASE: Self = Self(1);
    /// Identity Protection: IKE's Main Mode.
    pub const MAIN_MODE: Self = Self(2);
    pub const AUTH_ONLY: Self = Self(3);
    pub const AGGRESSIVE: Self = Self(4);
    pub const INFORMATIONAL: Self = Self(5);
    /// Transaction exchange (Mode Config, XAUTH).
    pub const TRANSACTION: Self = Self(6);
    pub const QUICK_MODE: Self = Self(32);
    pub const NEW_GROUP: Self = Self(33);
}

/// Next-payload / payload type numbers (RFC 2408 3.1, RFC 3947, draft NAT-T numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PayloadType(pub u8);
impl PayloadType {
    pub const NONE: Self = Self(0);
    pub const SA: Self = Self(1);
    pub const PROPOSAL: Self = Self(2);
    pub const TRANSFORM: Self = Self(3);
    pub const KE: Self = Self(4);
    pub const ID: Self = Self(5);
    pub const CERT: Self = Self(6);
    pub const CR: Self = Self(7);
    pub const HASH: Self = Self(8);
    pub const SIG: Self = Self(9);
    pub const NONCE: Self = Self(10);
    pub const NOTIFY: Self = Self(11);
    pub const DELETE: Self = Self(12);
    pub const VENDOR_ID: Self = Self(13);
    pub const ATTRIBUTE: Self = Self(14);
    pub const NAT_D: Self = Self(20);
    pub const NAT_OA: Self = Self(21);
    /// draft-ietf-ipsec-nat-t-ike-02/03 numbers, still sent by old peers.
    pub const NAT_D_DRAFT: Self = Self(130);
    pub const NAT_OA_DRAFT: Self = Self(131);
}

/// Header flags (RFC 2408 3.1).
pub mod flags {
    pub const ENCRYPTION: u8 = 0x01;
    pub const COMMIT: u8 = 0x02;
    pub const AUTH_ONLY: u8 = 0x04;
}

/// Domain of interpretation. Only the IPsec DOI (1) is meaningful here; 0 is ISAKMP's own.
pub const DOI_ISAKMP: u32 = 0;
pub const DOI_IPSEC: u32 = 1;
/// IPsec DOI situation SIT_IDENTITY_ONLY (RFC 2407 4.2).
pub const SIT_IDENTITY_ONLY: u32 = 1;

/// Protocol identifiers (RFC 2407 4.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtocolId(pub u8);
impl ProtocolId {
    pub const ISAKMP: Self = Self(1);
    pub const IPSEC_AH: Self = Self(2);
    pub const IPSEC_ESP: Self = Self(3);
    pub const IPCOMP: Self = Self(4);
}

/// Transform identifiers. For ISAKMP proposals: KEY_IKE = 1. For ESP (RFC 2407 4.4.4):
/// 3DES = 3, NULL = 11, AES-CBC = 12, AES-GCM-16 = 20 (RFC 4106). For AH (4.4.3): MD5 = 2,
/// SHA = 3, SHA2-256 = 5, SHA2-384 = 6, SHA2-512 = 7.
pub mod transform_id {
    pub const KEY_IKE: u8 = 1;
    pub const ESP_3DES: u8 = 3;
    pub const ESP_NULL: u8 = 11;
    pub const ESP_AES_CBC: u8 = 12;
    pub const ESP_AES_GCM_16: u8 = 20;
    pub const AH_MD5: u8 = 2;
    pub const AH_SHA: u8 = 3;
    pub const AH_SHA2_256: u8 = 5;
    pub const AH_SHA2_384: u8 = 6;
    pub const AH_SHA2_512: u8 = 7;
}

/// Oakley (phase 1) attribute classes, RFC 2409 Appendix A.
pub mod oakley_attr {
    pub const ENCRYPTION_ALGORITHM: u16 = 1;
    pub const HASH_ALGORITHM: u16 = 2;
    pub const AUTHENTICATION_METHOD: u16 = 3;
    pub const GROUP_DESCRIPTION: u16 = 4;
    pub const GROUP_TYPE: u16 = 5;
    pub const LIFE_TYPE: u16 = 11;
    pub const LIFE_DURATION: u16 = 12;
    pub const PRF: u16 = 13;
    pub const KEY_LENGTH: u16 = 14;
    pub const FIELD_SIZE: u16 = 15;
    pub const GROUP_ORDER: u16 = 16;

    /// Encryption algorithm values.
    pub const ENC_DES_CBC: u16 = 1;
    pub const ENC_3DES_CBC: u16 = 5;
    pub const ENC_AES_CBC: u16 = 7;
    /// Hash algorithm values.
    pub const HASH_MD5: u16 = 1;
    pub const HASH_SHA: u16 = 2;
    pub const HASH_SHA2_256: u16 = 4;
    pub const HASH_SHA2_384: u16 = 5;
    pub const HASH_SHA2_512: u16 = 6;
    /// Authentication method values.
    pub const AUTH_PRE_SHARED: u16 = 1;
    pub const AUTH_DSS: u16 = 2;
    pub const AUTH_RSA_SIG: u16 = 3;
    /// XAUTH variants (draft-ietf-ipsec-isakmp-xauth): initiator-PSK and initiator-RSA.
    pub const AUTH_XAUTH_INIT_PSK: u16 = 65001;
    pub const AUTH_XAUTH_INIT_RSA: u16 = 65005;
    /// Life type values.
    pub const LIFE_SECONDS: u16 = 1;
    pub const LIFE_KILOBYTES: u16 = 2;
}

/// IPsec DOI (phase 2) attribute classes, RFC 2407 4.5, RFC 3947 for UDP encapsulation.
pub mod ipsec_attr {
    pub const SA_LIFE_TYPE: u16 = 1;
    pub const SA_LIFE_DURATION: u16 = 2;
    pub const GROUP_DESCRIPTION: u16 = 3;
    pub const ENCAPSULATION_MODE: u16 = 4;
    pub const AUTHENTICATION_ALGORITHM: u16 = 5;
    pub const KEY_LENGTH: u16 = 6;
    pub const KEY_ROUNDS: u16 = 7;

    pub const LIFE_SECONDS: u16 = 1;
    pub const LIFE_KILOBYTES: u16 = 2;

    pub const ENCAP_TUNNEL: u16 = 1;
    pub const ENCAP_TRANSPORT: u16 = 2;
    /// RFC 3947 values.
    pub const ENCAP_UDP_TUNNEL: u16 = 3;
    pub const ENCAP_UDP_TRANSPORT: u16 = 4;
    /// draft-ietf-ipsec-nat-t-ike values still sent by old peers.
    pub const ENCAP_UDP_TUNNEL_DRAFT: u16 = 61443;
    pub const ENCAP_UDP_TRANSPORT_DRAFT: u16 = 61444;

    pub const AUTH_HMAC_MD5: u16 = 1;
    pub const AUTH_HMAC_SHA: u16 = 2;
    pub const AUTH_HMAC_SHA2_256: u16 = 5;
    pub const AUTH_HMAC_SHA2_384: u16 = 6;
    pub const AUTH_HMAC_SHA2_512: u16 = 7;
}

/// Identification types (RFC 2407 4.6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdType(pub u8);
impl IdType {
    pub const IPV4_ADDR: Self = Self(1);
    pub const FQDN: Self = Self(2);
    pub const USER_FQDN: Self = Self(3);
    pub const IPV4_ADDR_SUBNET: Self = Self(4);
    pub const IPV6_ADDR: Self = Self(5);
    pub const IPV6_ADDR_SUBNET: Self = Self(6);
    pub const IPV4_ADDR_RANGE: Self = Self(7);
    pub const IPV6_ADDR_RANGE: Self = Self(8);
    pub const DER_ASN1_DN: Self = Self(9);
    pub const DER_ASN1_GN: Self = Self(10);
    pub const KEY_ID: Self = Self(11);
}

/// Notify message types (RFC 2408 3.14.1, RFC 2407 4.6.3, RFC 3706).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotifyType(pub u16);
impl NotifyType {
    pub const INVALID_PAYLOAD_TYPE: Self = Self(1);
    pub const DOI_NOT_SUPPORTED: Self = Self(2);
    pub const SITUATION_NOT_SUPPORTED: Self = Self(3);
    pub const INVALID_COOKIE: Self = Self(4);
    pub const INVALID_MAJOR_VERSION: Self = Self(5);
    pub const INVALID_MINOR_VERSION: Self = Self(6);
    pub const INVALID_EXCHANGE_TYPE: Self = Self(7);
    pub const INVALID_FLAGS: Self = Self(8);
    pub const INVALID_MESSAGE_ID: Self = Self(9);
    pub const INVALID_PROTOCOL_ID: Self = Self(10);
    pub const INVALID_SPI: Self = Self(11);
    pub const INVALID_TRANSFORM_ID: Self = Self(12);
    pub const ATTRIBUTES_NOT_SUPPORTED: Self = Self(13);
    pub const NO_PROPOSAL_CHOSEN: Self = Self(14);
    pub const BAD_PROPOSAL_SYNTAX: Self = Self(15);
    pub const PAYLOAD_MALFORMED: Self = Self(16);
    pub const INVALID_KEY_INFORMATION: Self = Self(17);
    pub const INVALID_ID_INFORMATION: Self = Self(18);
    pub const INVALID_CERT_ENCODING: Self = Self(19);
    pub const INVALID_CERTIFICATE: Self = Self(20);
    pub const CERT_TYPE_UNSUPPORTED: Self = Self(21);
    pub const INVALID_CERT_AUTHORITY: Self = Self(22);
    pub const INVALID_HASH_INFORMATION: Self = Self(23);
    pub const AUTHENTICATION_FAILED: Self = Self(24);
    pub const INVALID_SIGNATURE: Self = Self(25);
    pub const ADDRESS_NOTIFICATION: Self = Self(26);
    pub const NOTIFY_SA_LIFETIME: Self = Self(27);
    pub const CERTIFICATE_UNAVAILABLE: Self = Self(28);
    pub const UNSUPPORTED_EXCHANGE_TYPE: Self = Self(29);
    pub const UNEQUAL_PAYLOAD_LENGTHS: Self = Self(30);
    /// IPsec DOI status types.
    pub const RESPONDER_LIFETIME: Self = Self(24576);
    pub const REPLAY_STATUS: Self = Self(24577);
    pub const INITIAL_CONTACT: Self = Self(24578);
    /// RFC 3706.
    pub const R_U_THERE: Self = Self(36136);
    pub const R_U_THERE_ACK: Self = Self(36137);

    /// Types below 8192 are errors (RFC 2408 3.14.1).
    pub fn is_error(self) -> bool {
        self.0 < 8192
    }
}

/// Certificate encodings (RFC 2408 3.9).
pub mod cert_encoding {
    pub const X509_SIGNATURE: u8 = 4;
    pub const CRL: u8 = 7;
}

/// Mode Config / XAUTH attribute payload message types (draft-dukes-ike-mode-cfg).
pub mod cfg_type {
    pub const REQUEST: u8 = 1;
    pub const REPLY: u8 = 2;
    pub const SET: u8 = 3;
    pub const ACK: u8 = 4;
}
