//! The parent's own record of what it put in the kernel for the child: reqids per
//! connection, SPIs allocated and not yet used, SAs and policies installed, and which
//! tunnels are up. It is the authority the monitor checks deletes against (the child may
//! remove only what is recorded here) and the source of updown runs (a tunnel's first SA
//! pair in, its last SA out). Every table is bounded, so a child that asks without end
//! costs the parent a bounded amount of memory.

use crate::updown;
use ike::engine::{Direction, PolicySpec, SaSpec, Selector};
use ike::policy::ConnectionName;
use ike::policy::IpsecProtocol;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// SPIs one peer address may hold allocated and unused at once: a Quick Mode needs one or
/// two, and exchanges with one peer run a few at a time.
pub const MAX_LARVAL_PER_PEER: usize = 64;
/// SPIs allocated and unused at once, over all peers (road warriors under `Default`).
pub const MAX_LARVAL: usize = 4096;
/// SAs of one connection towards one remote address: one SA per direction and protocol,
/// times the bundles that overlap during rekeys.
pub const MAX_SAS_PER_PEER: usize = 32;
/// SAs in all.
pub const MAX_SAS: usize = 65536;
/// Policy sets of one connection towards one remote address.
pub const MAX_POLICIES_PER_PEER: usize = 4;
/// Policy sets in all.
pub const MAX_POLICIES: usize = 32768;
/// The first reqid the parent hands out (0x4000 itself is the larval SAs' reqid).
pub const FIRST_REQID: u32 = kernel::OWNED_REQID_BASE + 1;

/// An SA as XFRM finds it: protocol, SPI and destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SaKey {
    pub protocol: IpsecProtocol,
    pub spi: u32,
    pub dst: IpAddr,
}

/// The unit updown scripts run for: one connection between two gateways with one pair of
/// selectors (for a road-warrior connection, one client).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelKey {
    pub connection: ConnectionName,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub local: Selector,
    pub remote: Selector,
}

/// An SA the parent installed, or tried to: a refused install is kept (not installed) so
/// that the child's later delete of it is accepted quietly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaRecord {
    pub tunnel: TunnelKey,
    pub direction: Direction,
    pub src: IpAddr,
    pub reqid: u32,
    pub installed: bool,
}

#[derive(Debug, Default)]
struct Tunnel {
    inbound: usize,
    outbound: usize,
    up: bool,
}

/// An SPI the kernel allocated for a peer, not yet used by an inbound SA.
#[derive(Clone, Copy, Debug)]
struct Larval {
    peer: IpAddr,
    at: Instant,
}

/// What removing an SA from the table found.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    /// An installed SA (or one whose install the kernel refused).
    Sa(SaRecord),
    /// An allocated SPI never used.
    Larval,
}

/// The parent's table.
#[derive(Debug, Default)]
pub struct Table {
    reqids: BTreeMap<ConnectionName, u32>,
    larval: HashMap<SaKey, Larval>,
    larval_per_peer: HashMap<IpAddr, usize>,
    sas: BTreeMap<SaKey, SaRecord>,
    sas_per_peer: HashMap<(ConnectionName, IpAddr), usize>,
    policies: BTreeMap<TunnelKey, PolicySpec>,
    policies_per_peer: HashMap<(ConnectionName, IpAddr), usize>,
    tunnels: BTreeMap<TunnelKey, Tunnel>,
}

/// Why the table has no room for what the child asks: which bound was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoom {
    /// Every reqid the daemon owns is assigned to a connection.
    Reqids {
        connection: String,
        in_use: usize,
    },
    LarvalPerPeer {
        peer: IpAddr,
        held: usize,
    },
    Larval {
        total: usize,
    },
    SasPerPeer {
        connection: String,
        remote: IpAddr,
        held: usize,
    },
    Sas {
        total: usize,
    },
    PoliciesPerPeer {
        connection: ConnectionName,
        remote: IpAddr,
        held: usize,
    },
    Policies {
        total: usize,
    },
}

impl std::fmt::Display for NoRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoRoom::Reqids { connection, in_use } => write!(
                f,
                "no reqid left for connection {connection:?} (all {in_use} in use)"
            ),
            NoRoom::LarvalPerPeer { peer, held } => write!(
                f,
                "{peer} already holds {held} unused SPIs (at most {MAX_LARVAL_PER_PEER})"
            ),
            NoRoom::Larval { total } => write!(
                f,
                "{total} unused SPIs allocated in all (at most {MAX_LARVAL})"
            ),
            NoRoom::SasPerPeer {
                connection,
                remote,
                held,
            } => write!(
                f,
                "connection {connection} already has {held} SAs with {remote} (at most {MAX_SAS_PER_PEER})"
            ),
            NoRoom::Sas { total } => write!(f, "{total} SAs in all (at most {MAX_SAS})"),
            NoRoom::PoliciesPerPeer {
                connection,
                remote,
                held,
            } => write!(
                f,
                "connection {connection} already has {held} policy sets towards {remote} (at most {MAX_POLICIES_PER_PEER})"
            ),
            NoRoom::Policies { total } => {
                write!(f, "{total} policy sets in all (at most {MAX_POLICIES})")
            }
        }
    }
}

impl std::error::Error for NoRoom {}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// The reqid of `connection`, assigned on first use and kept for the daemon's life (so
    /// a reload never moves a connection's SAs to other policies).
    pub fn reqid(&mut self, connection: &str) -> Result<u32, NoRoom> {
        if let Some(r) = self.reqids.get(connection) {
            return Ok(*r);
        }
        let next = FIRST_REQID + self.reqids.len() as u32;
        if !kernel::OWNED_REQIDS.contains(&next) {
            return Err(NoRoom::Reqids {
                connection: connection.to_string(),
                in_use: self.reqids.len(),
            });
        }
        self.reqids.insert(ConnectionName::from(connection), next);
        Ok(next)
    }

    /// Forget allocated SPIs older than `max_age` (the kernel has let their larval SAs go).
    pub fn expire_larval(&mut self, now: Instant, max_age: Duration) {
        let per_peer = &mut self.larval_per_peer;
        self.larval.retain(|_, l| {
            let keep = now.saturating_duration_since(l.at) < max_age;
            if !keep {
                decrement(per_peer, &l.peer);
            }
            keep
        });
    }

    /// Whether another SPI may be allocated for `peer`.
    pub fn larval_room(&self, peer: IpAddr) -> Result<(), NoRoom> {
        let mine = self.larval_per_peer.get(&peer).copied().unwrap_or(0);
        if mine >= MAX_LARVAL_PER_PEER {
            return Err(NoRoom::LarvalPerPeer { peer, held: mine });
        }
        if self.larval.len() >= MAX_LARVAL {
            return Err(NoRoom::Larval {
                total: self.larval.len(),
            });
        }
        Ok(())
    }

    pub fn record_larval(&mut self, key: SaKey, peer: IpAddr, now: Instant) {
        if self.larval.insert(key, Larval { peer, at: now }).is_none() {
            *self.larval_per_peer.entry(peer).or_default() += 1;
        }
    }

    /// Whether `key` is an SPI allocated for `peer` and not yet used.
    pub fn is_larval(&self, key: &SaKey, peer: IpAddr) -> bool {
        self.larval.get(key).is_some_and(|l| l.peer == peer)
    }

    fn take_larval(&mut self, key: &SaKey) -> bool {
        match self.larval.remove(key) {
            Some(l) => {
                decrement(&mut self.larval_per_peer, &l.peer);
                true
            }
            None => false,
        }
    }

    /// Whether another SA of `connection` towards `remote` may go in.
    pub fn sa_room(&self, connection: &str, remote: IpAddr) -> Result<(), NoRoom> {
        let n = self
            .sas_per_peer
            .get(&(ConnectionName::from(connection), remote))
            .copied()
            .unwrap_or(0);
        if n >= MAX_SAS_PER_PEER {
            return Err(NoRoom::SasPerPeer {
                connection: connection.to_string(),
                remote,
                held: n,
            });
        }
        if self.sas.len() >= MAX_SAS {
            return Err(NoRoom::Sas {
                total: self.sas.len(),
            });
        }
        Ok(())
    }

    pub fn sa(&self, key: &SaKey) -> Option<&SaRecord> {
        self.sas.get(key)
    }

    /// Record an SA the monitor allowed, installed or refused by the kernel. Returns the
    /// updown run due when this completes its tunnel's first inbound and outbound pair.
    pub fn record_sa(&mut self, spec: &SaSpec, installed: bool) -> Option<updown::Request> {
        let key = SaKey {
            protocol: spec.protocol,
            spi: spec.spi,
            dst: spec.dst,
        };
        if spec.direction == Direction::Inbound {
            self.take_larval(&key);
        }
        let (local_addr, remote_addr) = match spec.direction {
            Direction::Inbound => (spec.dst, spec.src),
            Direction::Outbound => (spec.src, spec.dst),
        };
        let tunnel = TunnelKey {
            connection: spec.connection.clone(),
            local_addr,
            remote_addr,
            local: spec.local.clone(),
            remote: spec.remote.clone(),
        };
        let record = SaRecord {
            tunnel: tunnel.clone(),
            direction: spec.direction,
            src: spec.src,
            reqid: spec.reqid,
            installed,
        };
        // The same SA again (the kernel answered EEXIST, say): forget the earlier record.
        if let Some(old) = self.sas.remove(&key) {
            self.forget(&old);
        }
        *self
            .sas_per_peer
            .entry((spec.connection.clone(), remote_addr))
            .or_default() += 1;
        self.sas.insert(key, record);
        if !installed {
            return None;
        }
        let t = self.tunnels.entry(tunnel.clone()).or_default();
        match spec.direction {
            Direction::Inbound => t.inbound += 1,
            Direction::Outbound => t.outbound += 1,
        }
        if !t.up && t.inbound > 0 && t.outbound > 0 {
            t.up = true;
            return Some(request(&tunnel, true));
        }
        None
    }

    /// Take `key` out of the table if the SA from `src` is recorded (installed or allocated):
    /// `None` when it is not ours to delete. The updown run due, if this was its tunnel's
    /// last SA, comes with it.
    pub fn remove_sa(
        &mut self,
        key: &SaKey,
        src: IpAddr,
    ) -> Option<(Removed, Option<updown::Request>)> {
        if self.is_larval(key, src) {
            self.take_larval(key);
            return Some((Removed::Larval, None));
        }
        if !matches!(self.sas.get(key), Some(r) if r.src == src) {
            return None;
        }
        let record = self.sas.remove(key)?;
        let down = self.forget(&record);
        Some((Removed::Sa(record), down))
    }

    /// Update the counters for a record taken out; the down run if its tunnel is gone.
    fn forget(&mut self, r: &SaRecord) -> Option<updown::Request> {
        decrement(
            &mut self.sas_per_peer,
            &(r.tunnel.connection.clone(), r.tunnel.remote_addr),
        );
        if !r.installed {
            return None;
        }
        let t = self.tunnels.get_mut(&r.tunnel)?;
        match r.direction {
            Direction::Inbound => t.inbound = t.inbound.saturating_sub(1),
            Direction::Outbound => t.outbound = t.outbound.saturating_sub(1),
        }
        if t.inbound + t.outbound > 0 {
            return None;
        }
        let was_up = t.up;
        self.tunnels.remove(&r.tunnel);
        was_up.then(|| request(&r.tunnel, false))
    }

    /// Whether another policy set of `connection` towards `remote` may go in (one that is
    /// already recorded may always be installed again).
    pub fn policy_room(&self, spec: &PolicySpec) -> Result<(), NoRoom> {
        if self.policies.contains_key(&policy_key(spec)) {
            return Ok(());
        }
        let n = self
            .policies_per_peer
            .get(&(spec.connection.clone(), spec.remote_addr))
            .copied()
            .unwrap_or(0);
        if n >= MAX_POLICIES_PER_PEER {
            return Err(NoRoom::PoliciesPerPeer {
                connection: spec.connection.clone(),
                remote: spec.remote_addr,
                held: n,
            });
        }
        if self.policies.len() >= MAX_POLICIES {
            return Err(NoRoom::Policies {
                total: self.policies.len(),
            });
        }
        Ok(())
    }

    pub fn record_policy(&mut self, spec: &PolicySpec) {
        if self
            .policies
            .insert(policy_key(spec), spec.clone())
            .is_none()
        {
            *self
                .policies_per_peer
                .entry((spec.connection.clone(), spec.remote_addr))
                .or_default() += 1;
        }
    }

    /// The recorded policy set with the connection, gateways and selectors of `spec`.
    pub fn policy(&self, spec: &PolicySpec) -> Option<&PolicySpec> {
        self.policies.get(&policy_key(spec))
    }

    /// Take the recorded policy set matching `spec` out of the table.
    pub fn remove_policy(&mut self, spec: &PolicySpec) -> Option<PolicySpec> {
        let removed = self.policies.remove(&policy_key(spec))?;
        decrement(
            &mut self.policies_per_peer,
            &(removed.connection.clone(), removed.remote_addr),
        );
        Some(removed)
    }

    /// Everything is gone from the kernel (flushed): empty the table, keep the reqids, and
    /// return the down runs of the tunnels that were up.
    pub fn clear(&mut self) -> Vec<updown::Request> {
        let downs = self
            .tunnels
            .iter()
            .filter(|(_, t)| t.up)
            .map(|(k, _)| request(k, false))
            .collect();
        let reqids = std::mem::take(&mut self.reqids);
        *self = Table {
            reqids,
            ..Table::default()
        };
        downs
    }

    /// (SPIs allocated and unused, SAs, policy sets, tunnels up), for the report.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.larval.len(),
            self.sas.len(),
            self.policies.len(),
            self.tunnels.values().filter(|t| t.up).count(),
        )
    }
}

fn decrement<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = m.get_mut(k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(k);
        }
    }
}

fn policy_key(spec: &PolicySpec) -> TunnelKey {
    TunnelKey {
        connection: spec.connection.clone(),
        local_addr: spec.local_addr,
        remote_addr: spec.remote_addr,
        local: spec.local.clone(),
        remote: spec.remote.clone(),
    }
}

fn request(t: &TunnelKey, up: bool) -> updown::Request {
    updown::Request {
        connection: t.connection.to_string(),
        up,
        me: t.local_addr,
        peer: t.remote_addr,
        my_client: t.local.clone(),
        peer_client: t.remote.clone(),
    }
}

#[cfg(test)]
mod tests;
