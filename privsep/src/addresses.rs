//! This host's addresses, as the parent checks the child's kernel requests against them:
//! `Listen-on` when configured, else every interface address, read again (at most once a
//! second) when an address is asked about that was not there before.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The least time between two reads of the interface addresses.
const REFRESH: Duration = Duration::from_secs(1);

/// This host's addresses (IPv6 link-local ones left out: they need a scope to be usable).
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(sa) = a.address else { continue };
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = sa.as_sockaddr_in6() {
                let ip = v6.ip();
                if ip.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
                IpAddr::V6(ip)
            } else {
                continue;
            };
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

#[derive(Debug, Default)]
pub struct LocalAddresses {
    listen_on: Vec<IpAddr>,
    known: Vec<IpAddr>,
    refreshed: Option<Instant>,
}

impl LocalAddresses {
    /// With a `Listen-on` list, exactly those; otherwise the interfaces'.
    pub fn new(listen_on: &[IpAddr]) -> LocalAddresses {
        LocalAddresses {
            listen_on: listen_on.to_vec(),
            ..LocalAddresses::default()
        }
    }

    /// A reload may change `Listen-on`.
    pub fn set_listen_on(&mut self, listen_on: &[IpAddr]) {
        self.listen_on = listen_on.to_vec();
    }

    pub fn is_ours(&mut self, a: IpAddr) -> bool {
        if a.is_unspecified() || a.is_multicast() {
            return false;
        }
        if !self.listen_on.is_empty() {
            return self.listen_on.contains(&a);
        }
        if self.known.contains(&a) {
            return true;
        }
        let now = Instant::now();
        if self
            .refreshed
            .is_some_and(|t| now.saturating_duration_since(t) < REFRESH)
        {
            return false;
        }
        self.refreshed = Some(now);
        self.known = interface_addresses();
        self.known.contains(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_ours_and_listen_on_restricts() {
        let mut l = LocalAddresses::new(&[]);
        assert!(l.is_ours("127.0.0.1".parse().unwrap()));
        assert!(!l.is_ours("0.0.0.0".parse().unwrap()));
        assert!(!l.is_ours("198.51.100.77".parse().unwrap()));
        let mut l = LocalAddresses::new(&["192.0.2.1".parse().unwrap()]);
        assert!(l.is_ours("192.0.2.1".parse().unwrap()));
        assert!(!l.is_ours("127.0.0.1".parse().unwrap()));
    }
}
