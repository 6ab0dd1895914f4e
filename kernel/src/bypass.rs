//! Per-socket bypass policies for the IKE sockets (IP_XFRM_POLICY / IPV6_XFRM_POLICY).
//!
//! A host-to-host policy covers the IKE traffic between the two hosts too: without a socket
//! policy that allows it in the clear, rekeying and Deletes would go through the very SAs
//! being replaced, and once those are gone IKE could not reach the peer at all. pluto and
//! charon set the same two policies on their sockets.

use netlink_packet_core::Emitable;
use netlink_packet_xfrm::{UserPolicyInfo, XFRM_POLICY_ALLOW, XFRM_POLICY_IN, XFRM_POLICY_OUT};

/// The `struct xfrm_userpolicy_info` to pass with setsockopt for one direction: allow
/// everything of `family` (AF_INET or AF_INET6) without IPsec.
pub fn socket_bypass_policy(family: u16, outbound: bool) -> Vec<u8> {
    let mut p = UserPolicyInfo::default();
    p.selector.family = family;
    p.action = XFRM_POLICY_ALLOW;
    p.direction = if outbound {
        XFRM_POLICY_OUT
    } else {
        XFRM_POLICY_IN
    };
    let mut buf = vec![0u8; p.buffer_len()];
    p.emit(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_kernels() {
        // struct xfrm_userpolicy_info: selector 56, lft 64, curlft 32, priority, index,
        // then dir, action, flags, share; 168 bytes with padding.
        let out = socket_bypass_policy(libc::AF_INET as u16, true);
        assert_eq!(out.len(), 168);
        assert_eq!(u16::from_ne_bytes([out[40], out[41]]), libc::AF_INET as u16);
        assert_eq!(out[160], XFRM_POLICY_OUT);
        assert_eq!(out[161], XFRM_POLICY_ALLOW);
        let inb = socket_bypass_policy(libc::AF_INET6 as u16, false);
        assert_eq!(
            u16::from_ne_bytes([inb[40], inb[41]]),
            libc::AF_INET6 as u16
        );
        assert_eq!(inb[160], XFRM_POLICY_IN);
    }
}
