//! Finding the peer and the connection an exchange belongs to.

use super::*;
use std::net::IpAddr;

/// An IP identity as an inclusive range of addresses (family, first, last).
fn ip_span(id: &Identity) -> Option<(u8, u128, u128)> {
    let v4 = |a: &std::net::Ipv4Addr| u128::from(u32::from(*a));
    let v6 = |a: &std::net::Ipv6Addr| u128::from(*a);
    Some(match id {
        Identity::Ipv4(a) => (4, v4(a), v4(a)),
        Identity::Ipv6(a) => (6, v6(a), v6(a)),
        Identity::Ipv4Subnet(n, m) => {
            let (n, m) = (u32::from(*n), u32::from(*m));
            (4, u128::from(n & m), u128::from((n & m) | !m))
        }
        Identity::Ipv6Subnet(n, m) => {
            let (n, m) = (u128::from(*n), u128::from(*m));
            (6, n & m, (n & m) | !m)
        }
        Identity::Ipv4Range(a, b) => (4, v4(a), v4(b)),
        Identity::Ipv6Range(a, b) => (6, v6(a), v6(b)),
        _ => return None,
    })
}

fn identity_contains(outer: &Identity, inner: &Identity) -> bool {
    match (ip_span(outer), ip_span(inner)) {
        (Some((fo, ao, bo)), Some((fi, ai, bi))) => fo == fi && ao <= ai && bi <= bo,
        _ => outer == inner,
    }
}

/// Whether `ours` (a configured selector) covers `theirs` (an ID the peer sent): protocol
/// and port 0 mean any.
pub(crate) fn id_contains(ours: &IdPayload, theirs: &IdPayload) -> bool {
    (ours.protocol == 0 || ours.protocol == theirs.protocol)
        && (ours.port == 0 || ours.port == theirs.port)
        && identity_contains(&ours.identity, &theirs.identity)
}

fn host_identity(ip: IpAddr) -> Identity {
    match ip {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

/// Does our selector `ours` accept the peer's ID `theirs`? `host` is the address the
/// selector stands for when an ID is absent (host-to-host).
fn selector_ok(
    ours: Option<&IdPayload>,
    theirs: Option<&IdPayload>,
    host: Option<IpAddr>,
    exact: bool,
) -> bool {
    let host_id = |ip: IpAddr| IdPayload {
        protocol: 0,
        port: 0,
        identity: host_identity(ip),
    };
    match (ours, theirs) {
        (None, None) => true,
        (Some(o), Some(t)) => {
            if exact {
                o == t
            } else {
                id_contains(o, t)
            }
        }
        // Host-to-host on one side, an explicit host ID on the other.
        (None, Some(t)) => host.is_some_and(|h| *t == host_id(h)),
        (Some(o), None) => host.is_some_and(|h| *o == host_id(h)),
    }
}

impl Policy {
    /// A peer by name (case-insensitive, as section names are).
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// A connection by name (case-insensitive).
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The peer configured for a remote address, else the `[Phase 1] Default` peer.
    pub fn peer_for_address(&self, addr: IpAddr) -> Option<&Peer> {
        self.peers
            .iter()
            .find(|p| p.address.ip() == addr)
            .or_else(|| self.default_peer.as_deref().and_then(|d| self.peer(d)))
    }

    /// The peer expecting this identity (`Remote-ID`), else a peer without `Remote-ID` whose
    /// address is the identity's address (isakmpd's default remote ID).
    pub fn peer_for_id(&self, id: &Identity) -> Option<&Peer> {
        self.peers
            .iter()
            .find(|p| {
                p.remote_id
                    .as_ref()
                    .is_some_and(|r| crate::x509::identities_match(r, id))
            })
            .or_else(|| {
                self.peers.iter().find(|p| {
                    p.remote_id.is_none()
                        && !p.address.ip().is_unspecified()
                        && host_identity(p.address.ip()) == *id
                })
            })
    }

    /// Responder's Quick Mode: the connection of `peer` whose `Local-ID` equals (else
    /// contains) IDcr and whose `Remote-ID` equals (else contains) IDci. Absent IDs mean
    /// host-to-host between the peer addresses.
    pub fn connection_for_ids(
        &self,
        peer: &str,
        idci: Option<&IdPayload>,
        idcr: Option<&IdPayload>,
    ) -> Option<&Connection> {
        let p = self.peer(peer);
        let remote_host = p.map(|p| p.address.ip()).filter(|a| !a.is_unspecified());
        let local_host = p.and_then(|p| p.local_address).map(|a| a.ip());
        let mine = || {
            self.connections
                .iter()
                .filter(|c| c.peer.eq_ignore_ascii_case(peer))
        };
        for exact in [true, false] {
            if let Some(c) = mine().find(|c| {
                selector_ok(c.local_id.as_ref(), idcr, local_host, exact)
                    && selector_ok(c.remote_id.as_ref(), idci, remote_host, exact)
            }) {
                return Some(c);
            }
        }
        None
    }
}
