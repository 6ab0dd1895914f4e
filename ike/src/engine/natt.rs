//! NAT traversal (RFC 3947): vendor IDs that announce support, NAT-D hashes, and the
//! non-ESP marker of port 4500.

use crate::codec::Cookie;
use crate::crypto::{hash, HashAlg};
use std::net::SocketAddr;

/// MD5("RFC 3947").
pub const VID_RFC3947: [u8; 16] = hex16("4a131c81070358455c5728f20e95452f");
/// MD5("draft-ietf-ipsec-nat-t-ike-02\n"), still sent by older peers.
pub const VID_DRAFT_02N: [u8; 16] = hex16("90cb80913ebb696e086381b5ec427b1f");
/// MD5("draft-ietf-ipsec-nat-t-ike-03").
pub const VID_DRAFT_03: [u8; 16] = hex16("7d9419a65310ca6f2c179d9215529d56");
/// RFC 3706 Dead Peer Detection vendor ID (version 1.0).
pub const VID_DPD: [u8; 16] = hex16("afcad71368a1f1c96b8696fc77570100");

/// The four zero bytes that precede IKE on the NAT-T port (RFC 3948 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// Which NAT-T dialect the peer speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NatTVersion {
    Rfc3947,
    Draft,
}

impl NatTVersion {
    /// From a vendor ID payload, if it announces NAT-T.
    pub fn from_vid(vid: &[u8]) -> Option<Self> {
        if vid == VID_RFC3947 {
            Some(Self::Rfc3947)
        } else if vid == VID_DRAFT_02N || vid == VID_DRAFT_03 {
            Some(Self::Draft)
        } else {
            None
        }
    }
}

/// HASH(CKY-I | CKY-R | IP | Port), the NAT-D value of one address (RFC 3947 3.2).
pub fn nat_d(h: HashAlg, icookie: &Cookie, rcookie: &Cookie, addr: SocketAddr) -> Vec<u8> {
    let port = addr.port().to_be_bytes();
    match addr.ip() {
        std::net::IpAddr::V4(a) => hash(h, &[&icookie.0, &rcookie.0, &a.octets(), &port]),
        std::net::IpAddr::V6(a) => hash(h, &[&icookie.0, &rcookie.0, &a.octets(), &port]),
    }
}

const fn hex16(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a hex digit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_ids_are_the_md5_of_their_names() {
        let md5 = |s: &str| hash(HashAlg::Md5, &[s.as_bytes()]);
        assert_eq!(md5("RFC 3947"), VID_RFC3947);
        assert_eq!(md5("draft-ietf-ipsec-nat-t-ike-02\n"), VID_DRAFT_02N);
        assert_eq!(md5("draft-ietf-ipsec-nat-t-ike-03"), VID_DRAFT_03);
    }
}
