//! Established IPsec SAs: their policies, rekey before expiry (pluto's margin and fuzz),
//! expiry, deletion, kernel events, operator teardown and shutdown.

use super::phase1::rekey_delay;
use super::quick::qm_selectors;
use super::timers::Timer;
use super::types::{KernelRequest, PolicySpec, Selector};
use super::{Engine, Event, LogLevel};
use crate::codec::{DeletePayload, IdPayload, Payload, ProtocolId, DOI_IPSEC};
use crate::engine::{IpsecSerial, IsakmpSerial};
use crate::policy::{ConnectionName, PeerName};
use crate::policy::{EncapMode, IpsecProtocol};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One tunnel of a connection: the connection and the pair of selectors its SAs carry.
/// A connection many road warriors share has one per client; each has its own SAs, its
/// own policies and its own updown runs, and a new SA replaces only its own tunnel's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct TunnelId {
    pub connection: ConnectionName,
    pub local: Selector,
    pub remote: Selector,
}

impl TunnelId {
    pub fn of_policy(p: &PolicySpec) -> TunnelId {
        TunnelId {
            connection: p.connection.clone(),
            local: p.local.clone(),
            remote: p.remote.clone(),
        }
    }
}

/// One negotiated IPsec SA bundle (both directions of each protocol).
pub(super) struct IpsecSa {
    pub serial: IpsecSerial,
    pub connection: ConnectionName,
    pub peer: PeerName,
    /// The identity the peer authenticated with in the ISAKMP SA it came from: a Delete or
    /// INITIAL-CONTACT touches only SAs of the identity that sends it, so one road warrior
    /// under a shared peer section cannot remove another's.
    pub peer_id: Option<IdPayload>,
    /// The ISAKMP SA it was negotiated under, and the Quick Mode message ID.
    pub p1: IsakmpSerial,
    pub msgid: u32,
    /// (protocol, inbound SPI, outbound SPI)
    pub spis: Vec<(IpsecProtocol, u32, u32)>,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub local_sel: Selector,
    pub remote_sel: Selector,
    pub established: Instant,
    pub expires: Instant,
    pub initiator: bool,
    /// A newer SA for the same tunnel is up; this one only waits to expire.
    pub replaced: bool,
    pub summary: String,
}

impl IpsecSa {
    /// Whether this SA belongs to `t` (compared in place: it runs once per SA for every
    /// SA that comes or goes).
    pub fn in_tunnel(&self, t: &TunnelId) -> bool {
        self.connection == t.connection && self.local_sel == t.local && self.remote_sel == t.remote
    }

    pub fn tunnel(&self) -> TunnelId {
        TunnelId {
            connection: self.connection.clone(),
            local: self.local_sel.clone(),
            remote: self.remote_sel.clone(),
        }
    }
}

/// A read-only view of an IPsec SA, for reports and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpsecSaInfo {
    pub connection: ConnectionName,
    pub peer: PeerName,
    pub spis: Vec<(IpsecProtocol, u32, u32)>,
    pub local: Selector,
    pub remote: Selector,
    pub established: Instant,
    pub expires: Instant,
    pub replaced: bool,
    /// We initiated it (and so rekey it).
    pub initiator: bool,
    pub summary: String,
}

/// A read-only view of an ISAKMP SA or phase-1 exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase1Info {
    /// The engine's number for this ISAKMP SA, as work waiting for an answer names it.
    pub serial: IsakmpSerial,
    pub peer: PeerName,
    pub icookie: crate::codec::Cookie,
    pub rcookie: crate::codec::Cookie,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub initiator: bool,
    pub state: &'static str,
    pub established: bool,
    pub expires: Option<Instant>,
    pub summary: String,
    pub nat_local: bool,
    pub nat_remote: bool,
}

/// A Quick Mode exchange in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeInfo {
    pub connection: ConnectionName,
    pub message_id: u32,
    pub initiator: bool,
    pub state: &'static str,
}

impl Engine {
    /// Quick Mode finished on our side: record the SA bundle and arm its timers.
    pub(super) fn qm_established(&mut self, serial: IsakmpSerial, msgid: u32) {
        let now = self.ctx.now;
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let (local, remote, peer) = (p1.local.ip(), p1.remote.ip(), p1.peer.clone());
        let peer_id = p1.id_peer.clone();
        let Some(qm) = self.quick.get(&(serial, msgid)) else {
            return;
        };
        let Some(agreement) = qm.stage.agreement() else {
            return;
        };
        let chosen = agreement.chosen.clone();
        let (local_sel, remote_sel) = qm_selectors(qm, local, remote);
        let spis: Vec<(IpsecProtocol, u32, u32)> = chosen
            .protocols
            .iter()
            .filter_map(|cp| {
                let ours = agreement.spis.iter().find(|(p, _)| *p == cp.protocol)?.1;
                Some((cp.protocol, ours, u32::from_be_bytes(cp.peer_spi)))
            })
            .collect();
        let connection = qm.connection.clone();
        let initiator = qm.initiator();
        let summary = chosen
            .protocols
            .iter()
            .map(|cp| format!("{:?} {}", cp.protocol, cp.transform.name))
            .chain(chosen.pfs_group.map(|g| format!("PFS {}", g.name())))
            .chain(std::iter::once(format!(
                "{:?} {}s",
                chosen.encap, chosen.lifetime.seconds
            )))
            .collect::<Vec<_>>()
            .join(", ");
        let lifetime = Duration::from_secs(chosen.lifetime.seconds.max(1));
        let (ids_l, ids_r) = if initiator {
            (qm.idci.clone(), qm.idcr.clone())
        } else {
            (qm.idcr.clone(), qm.idci.clone())
        };
        let sa_serial = self.ctx.ipsec_serial();
        self.keying_attempts.remove(&connection);
        let tunnel = TunnelId {
            connection: connection.clone(),
            local: local_sel.clone(),
            remote: remote_sel.clone(),
        };
        let first = !self.ipsec.values().any(|s| s.in_tunnel(&tunnel));
        // Older bundles of this tunnel are superseded; they expire on their own so that
        // packets in flight under them are still accepted (no gap). Other tunnels of the
        // connection (other road warriors) are not touched.
        for old in self.ipsec.values_mut().filter(|s| s.in_tunnel(&tunnel)) {
            old.replaced = true;
        }
        self.ipsec.insert(
            sa_serial,
            IpsecSa {
                serial: sa_serial,
                connection: connection.clone(),
                peer: peer.clone(),
                peer_id,
                p1: serial,
                msgid,
                spis: spis.clone(),
                local,
                remote,
                local_sel: local_sel.clone(),
                remote_sel: remote_sel.clone(),
                established: now,
                expires: now + lifetime,
                initiator,
                replaced: false,
                summary: summary.clone(),
            },
        );
        self.ctx
            .timers
            .add(now + lifetime, Timer::SaExpire { serial: sa_serial });
        if initiator {
            let fuzz = self.ctx.rng.next_u32();
            self.ctx.timers.add(
                now + rekey_delay(lifetime, &self.ctx.cfg.timers, fuzz),
                Timer::SaRekey { serial: sa_serial },
            );
        }
        if !self.policies.contains_key(&tunnel) {
            let spec = PolicySpec {
                connection: connection.clone(),
                local: local_sel.clone(),
                remote: remote_sel.clone(),
                local_addr: local,
                remote_addr: remote,
                mode: chosen.encap,
                protocols: spis.iter().map(|(p, _, _)| *p).collect(),
                reqid: self.reqid(&connection),
            };
            self.policies.insert(tunnel, spec.clone());
            self.ctx.kernel(KernelRequest::AddPolicy(spec));
        }
        self.ctx.log(
            LogLevel::Info,
            format!("phase 2 established for {connection} with {peer}: {summary}"),
        );
        self.ctx.event(Event::Phase2Up {
            connection,
            peer,
            spis,
            local_id: ids_l,
            remote_id: ids_r,
            summary,
            local_addr: local,
            remote_addr: remote,
            local: local_sel,
            remote: remote_sel,
            first,
        });
    }

    pub(super) fn sa_rekey(&mut self, serial: IpsecSerial) {
        let Some(sa) = self.ipsec.get(&serial) else {
            return;
        };
        if sa.replaced {
            return;
        }
        let name = sa.connection.clone();
        if !self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .any(|c| c.name == name)
        {
            return;
        }
        if self.ctx.cfg.passive {
            return;
        }
        self.ctx
            .log(LogLevel::Info, format!("rekeying phase 2 for {name}"));
        self.start_connection(&name);
    }

    pub(super) fn sa_expire(&mut self, serial: IpsecSerial) {
        if self.ipsec.contains_key(&serial) {
            self.remove_ipsec_sa(serial, true, "lifetime expired");
        }
    }

    /// Remove an IPsec SA bundle from the kernel, telling the peer when `notify`.
    pub(super) fn remove_ipsec_sa(&mut self, serial: IpsecSerial, notify: bool, reason: &str) {
        let Some(sa) = self.ipsec.remove(&serial) else {
            return;
        };
        if notify && !self.ctx.cfg.passive {
            if let Some(p1) = self.p1_of(&sa) {
                for (protocol, spi_in, _) in &sa.spis {
                    let d = Payload::Delete(DeletePayload {
                        doi: DOI_IPSEC,
                        protocol: match protocol {
                            IpsecProtocol::Esp => ProtocolId::IPSEC_ESP,
                            IpsecProtocol::Ah => ProtocolId::IPSEC_AH,
                        },
                        spi_size: 4,
                        spis: vec![spi_in.to_be_bytes().to_vec()],
                    });
                    self.info_send(p1, vec![d]);
                }
            }
        }
        for (protocol, spi_in, spi_out) in &sa.spis {
            self.ctx.kernel(KernelRequest::DeleteSa {
                protocol: *protocol,
                spi: *spi_in,
                src: sa.remote,
                dst: sa.local,
            });
            self.ctx.kernel(KernelRequest::DeleteSa {
                protocol: *protocol,
                spi: *spi_out,
                src: sa.local,
                dst: sa.remote,
            });
        }
        self.ctx.log(
            LogLevel::Info,
            format!("phase 2 for {} deleted: {reason}", sa.connection),
        );
        let tunnel = sa.tunnel();
        let others = self.ipsec.values().any(|s| s.in_tunnel(&tunnel));
        self.ctx.event(Event::Phase2Down {
            connection: sa.connection.clone(),
            spis: sa.spis.clone(),
            reason: reason.into(),
            local_addr: sa.local,
            remote_addr: sa.remote,
            local: sa.local_sel.clone(),
            remote: sa.remote_sel.clone(),
            last: !others,
        });
        // The last SA of a tunnel deleted by the peer or the operator takes its policies
        // with it; expiry of a replaced SA does not.
        if !others && reason != "lifetime expired" && !self.traps.contains(&sa.connection) {
            self.remove_tunnel_policy(&tunnel);
        }
    }

    /// The established ISAKMP SA to tell about IPsec SA `sa`: the one it was negotiated
    /// under, or a newer one with the same peer at the same address (never another road
    /// warrior's under a shared peer section).
    fn p1_of(&self, sa: &IpsecSa) -> Option<IsakmpSerial> {
        if self.phase1.get(&sa.p1).is_some_and(|p| p.is_established()) {
            return Some(sa.p1);
        }
        self.phase1
            .values()
            .filter(|p| p.peer == sa.peer && p.remote.ip() == sa.remote && p.is_established())
            .max_by_key(|p| (p.established().map(|e| e.at), p.serial))
            .map(|p| p.serial)
    }

    /// Fail-closed: put back the policies of connections that lost them (an operator's
    /// teardown, DPD's clear), so their traffic is held, not sent in the clear.
    pub(super) fn keep_closed(&mut self) {
        if self.ctx.cfg.policy.general.fail_closed && !self.ctx.cfg.passive {
            self.install_traps();
        }
    }

    /// Remove every policy of `connection` (all its tunnels), and its trap.
    pub(super) fn remove_policies(&mut self, connection: &str) {
        self.traps.remove(connection);
        let tunnels: Vec<TunnelId> = self
            .policies
            .keys()
            .filter(|t| t.connection == connection)
            .cloned()
            .collect();
        for t in tunnels {
            self.remove_tunnel_policy(&t);
        }
    }

    /// Remove the policies of one tunnel.
    pub(super) fn remove_tunnel_policy(&mut self, tunnel: &TunnelId) {
        if let Some(spec) = self.policies.remove(tunnel) {
            self.ctx.kernel(KernelRequest::DeletePolicy(spec));
        }
    }

    /// The connections that have policies in the kernel, each once.
    fn connections_with_policies(&self) -> Vec<ConnectionName> {
        let mut conns: Vec<ConnectionName> =
            self.policies.keys().map(|t| t.connection.clone()).collect();
        conns.dedup();
        conns
    }

    /// On-demand connections (configured, not in `[Phase 2] Connections`) get their
    /// policies now, before any SA, as pluto's routed connections: the first packet that
    /// matches makes the kernel send an ACQUIRE, which starts the negotiation, and until an
    /// SA is there the traffic is held, never sent in the clear. Only connections whose
    /// peer address and both selectors are known can be trapped; our end of the tunnel is
    /// `Local-address`, or left to the kernel's route to the peer.
    pub(super) fn install_traps(&mut self) {
        // Once, not per connection: this runs at every watchdog round.
        let with_policies: std::collections::BTreeSet<&ConnectionName> =
            self.policies.keys().map(|t| &t.connection).collect();
        let candidates: Vec<PolicySpec> = self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .filter(|c| !c.active || self.ctx.cfg.policy.general.fail_closed)
            .filter(|c| !with_policies.contains(&c.name))
            .filter_map(|c| {
                let peer = self
                    .ctx
                    .cfg
                    .policy
                    .peers
                    .iter()
                    .find(|p| p.name == c.peer)?;
                let remote_addr = peer.address.ip();
                if remote_addr.is_unspecified() {
                    return None;
                }
                let local_addr = peer.local_address.map(|a| a.ip());
                let local = match &c.local_id {
                    Some(id) => Selector::from_id(id)?,
                    None => Selector::host(local_addr?),
                };
                let remote = match &c.remote_id {
                    Some(id) => Selector::from_id(id)?,
                    None => Selector::host(remote_addr),
                };
                let suite = c.suites.first()?;
                let mode = suite.protocols.first()?.transforms.first()?.encap;
                let protocols = suite.protocols.iter().map(|p| p.protocol).collect();
                let local_addr = local_addr.unwrap_or(if remote_addr.is_ipv4() {
                    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                });
                Some(PolicySpec {
                    connection: c.name.clone(),
                    local,
                    remote,
                    local_addr,
                    remote_addr,
                    mode,
                    protocols,
                    reqid: 0,
                })
            })
            .collect();
        for mut spec in candidates {
            spec.reqid = self.reqid(&spec.connection);
            let connection = spec.connection.clone();
            self.ctx.debug(format!(
                "policies for {connection} before any SA (on demand or Fail-closed)"
            ));
            self.traps.insert(connection);
            self.policies
                .insert(TunnelId::of_policy(&spec), spec.clone());
            self.ctx.kernel(KernelRequest::AddPolicy(spec));
        }
    }

    /// Bring `name` up: Quick Mode under an existing ISAKMP SA, or phase 1 first.
    pub(super) fn start_connection(&mut self, name: &str) {
        let Some(conn) = self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .find(|c| c.name == name)
            .cloned()
        else {
            return;
        };
        if let Some(serial) = self.established_p1(&conn.peer) {
            self.start_qm(serial, name);
        } else if let Some(serial) = self.pending_p1(&conn.peer) {
            if let Some(p1) = self.phase1.get_mut(&serial) {
                if let Some(hs) = p1.hs() {
                    if !hs.waiting.iter().any(|w| w == name) {
                        hs.waiting.push(ConnectionName::from(name));
                    }
                }
            }
        } else {
            self.start_phase1(&conn.peer, vec![conn.name.clone()]);
        }
    }

    pub(super) fn connection_is_up_or_pending(&self, name: &str) -> bool {
        self.ipsec
            .values()
            .any(|s| s.connection == name && !s.replaced)
            || self
                .quick
                .values()
                .any(|q| q.connection == name && !q.stage.done())
            || self
                .phase1
                .values()
                .filter_map(|p| p.hs_ref())
                .any(|hs| hs.waiting.iter().any(|w| w == name))
    }

    /// ACQUIRE: traffic wants a connection that is not up.
    pub(super) fn acquire(&mut self, local: IpAddr, remote: IpAddr, protocol: u8) {
        if self.ctx.cfg.passive {
            return self
                .ctx
                .debug(format!("passive: ignoring ACQUIRE for {local} -> {remote}"));
        }
        let conn = self.ctx.cfg.policy.connections.iter().find(|c| {
            let l = c.local_id.as_ref().and_then(Selector::from_id);
            let r = c.remote_id.as_ref().and_then(Selector::from_id);
            let peer_addr = self
                .ctx
                .cfg
                .policy
                .peers
                .iter()
                .find(|p| p.name == c.peer)
                .map(|p| p.address.ip());
            let l_ok = l.is_none_or(|s| covers(&s, local, protocol));
            let r_ok = match r {
                Some(s) => covers(&s, remote, protocol),
                None => peer_addr == Some(remote),
            };
            l_ok && r_ok
        });
        match conn.map(|c| c.name.clone()) {
            Some(name) if !self.connection_is_up_or_pending(&name) => {
                self.ctx.log(
                    LogLevel::Info,
                    format!("ACQUIRE {local} -> {remote}: starting {name}"),
                );
                self.start_connection(&name);
            }
            Some(_) => {}
            None => self.ctx.log(
                LogLevel::Notice,
                format!("ACQUIRE {local} -> {remote}: no connection covers it"),
            ),
        }
    }

    /// The kernel says an SA reached a limit (bytes, usually; time is ours to track too).
    pub(super) fn sa_expired(
        &mut self,
        protocol: IpsecProtocol,
        spi: u32,
        _dst: IpAddr,
        hard: bool,
    ) {
        let sa = self
            .ipsec
            .values()
            .find(|s| {
                s.spis
                    .iter()
                    .any(|(p, i, o)| *p == protocol && (*i == spi || *o == spi))
            })
            .map(|s| s.serial);
        let Some(serial) = sa else { return };
        if hard {
            self.remove_ipsec_sa(serial, true, "lifetime expired");
        } else {
            self.sa_rekey(serial);
        }
    }

    /// The peer's NAT mapping changed: IKE follows it.
    pub(super) fn mapping_changed(&mut self, old: SocketAddr, new: SocketAddr) {
        for p1 in self.phase1.values_mut().filter(|p| p.remote == old) {
            p1.remote = new;
        }
        self.ctx.log(
            LogLevel::Info,
            format!("NAT mapping of peer changed from {old} to {new}"),
        );
    }

    /// Operator `t name`: delete a connection's IPsec SAs (and policies), or a peer's ISAKMP SAs.
    pub fn teardown(&mut self, now: Instant, name: &str) -> Result<(), super::CommandError> {
        self.ctx.now = now;
        let sas: Vec<_> = self
            .ipsec
            .values()
            .filter(|s| s.connection == name)
            .map(|s| s.serial)
            .collect();
        if !sas.is_empty() {
            for s in sas {
                self.remove_ipsec_sa(s, true, "teardown by operator");
            }
            self.remove_policies(name);
            self.keep_closed();
            return Ok(());
        }
        let p1s: Vec<_> = self
            .phase1
            .values()
            .filter(|p| p.peer == name)
            .map(|p| p.serial)
            .collect();
        if p1s.is_empty() {
            return Err(super::CommandError::NoSa(name.to_string()));
        }
        for s in p1s {
            self.delete_phase1(s, true, "teardown by operator");
        }
        Ok(())
    }

    /// Operator `d cookies [msgid]`: delete the ISAKMP SA with these cookies or, with a
    /// message ID, the IPsec SA negotiated under it in that Quick Mode.
    pub fn delete_by_cookies(
        &mut self,
        now: Instant,
        icookie: crate::codec::Cookie,
        rcookie: crate::codec::Cookie,
        msgid: Option<u32>,
    ) -> Result<(), super::CommandError> {
        self.ctx.now = now;
        let Some(&p1) = self.by_cookies.get(&(icookie, rcookie)) else {
            return Err(super::CommandError::UnknownCookies);
        };
        match msgid {
            None => {
                let established = self.phase1.get(&p1).is_some_and(|p| p.is_established());
                self.delete_phase1(p1, established, "deleted by operator");
                Ok(())
            }
            Some(m) => {
                let sa = self
                    .ipsec
                    .values()
                    .find(|s| s.p1 == p1 && s.msgid == m)
                    .map(|s| s.serial);
                let sa = sa.ok_or(super::CommandError::UnknownMessageId(m))?;
                self.remove_ipsec_sa(sa, true, "deleted by operator");
                Ok(())
            }
        }
    }

    /// Operator `T`: tear down every IPsec SA (telling the peers).
    pub fn teardown_all(&mut self, now: Instant) {
        self.ctx.now = now;
        let sas: Vec<_> = self.ipsec.keys().copied().collect();
        for s in sas {
            self.remove_ipsec_sa(s, true, "teardown by operator");
        }
        for c in self.connections_with_policies() {
            self.remove_policies(&c);
        }
        self.keep_closed();
    }

    /// SIGTERM: delete every SA, telling the peers unless passive.
    pub fn shutdown(&mut self, now: Instant) {
        self.ctx.now = now;
        let sas: Vec<_> = self.ipsec.keys().copied().collect();
        for s in sas {
            self.remove_ipsec_sa(s, true, "shutdown");
        }
        for c in self.connections_with_policies() {
            self.remove_policies(&c);
        }
        let p1s: Vec<_> = self.phase1.keys().copied().collect();
        for s in p1s {
            let established = self.phase1.get(&s).is_some_and(|p| p.is_established());
            self.delete_phase1(s, established, "shutdown");
        }
    }

    /// Established IPsec SAs.
    pub fn ipsec_sas(&self) -> Vec<IpsecSaInfo> {
        let mut v: Vec<IpsecSaInfo> = self
            .ipsec
            .values()
            .map(|s| IpsecSaInfo {
                connection: s.connection.clone(),
                peer: s.peer.clone(),
                spis: s.spis.clone(),
                local: s.local_sel.clone(),
                remote: s.remote_sel.clone(),
                established: s.established,
                expires: s.expires,
                replaced: s.replaced,
                initiator: s.initiator,
                summary: s.summary.clone(),
            })
            .collect();
        v.sort_by_key(|s| (s.connection.clone(), s.established));
        v
    }

    /// ISAKMP SAs and phase-1 exchanges.
    pub fn phase1_sas(&self) -> Vec<Phase1Info> {
        let mut v: Vec<(IsakmpSerial, Phase1Info)> = self
            .phase1
            .values()
            .map(|p| {
                (
                    p.serial,
                    Phase1Info {
                        serial: p.serial,
                        peer: p.peer.clone(),
                        icookie: p.icookie,
                        rcookie: p.rcookie,
                        local: p.local,
                        remote: p.remote,
                        initiator: p.role == super::phase1::Role::Initiator,
                        state: p.state_name(),
                        established: p.is_established(),
                        expires: p.established().map(|e| e.expires),
                        summary: p.summary(),
                        nat_local: p.nat_local,
                        nat_remote: p.nat_remote,
                    },
                )
            })
            .collect();
        v.sort_by_key(|(s, _)| *s);
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// Quick Mode exchanges in progress.
    pub fn exchanges(&self) -> Vec<ExchangeInfo> {
        self.quick
            .values()
            .map(|q| ExchangeInfo {
                connection: q.connection.clone(),
                message_id: q.msgid,
                initiator: q.initiator(),
                state: q.stage.name(),
            })
            .collect()
    }

    /// Pending timers as (deadline, description), for the report.
    pub fn pending_timers(&self) -> Vec<(Instant, String)> {
        self.ctx
            .timers
            .iter()
            .map(|(t, timer)| (t, format!("{timer:?}")))
            .collect()
    }

    /// Kernel policies we hold, by connection.
    pub fn installed_policies(&self) -> Vec<PolicySpec> {
        self.policies.values().cloned().collect()
    }

    /// Whether `mode` of a policy is tunnel (for callers that build kernel templates).
    pub fn is_tunnel(mode: EncapMode) -> bool {
        mode == EncapMode::Tunnel
    }
}

/// Does selector `s` cover address `a` (and protocol)?
fn covers(s: &Selector, a: IpAddr, protocol: u8) -> bool {
    if s.protocol != 0 && protocol != 0 && s.protocol != protocol {
        return false;
    }
    match (s.address, a) {
        (IpAddr::V4(n), IpAddr::V4(x)) => match s.range_end {
            Some(IpAddr::V4(e)) => n <= x && x <= e,
            _ => {
                let bits = u32::from(s.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(n) & mask == u32::from(x) & mask
            }
        },
        (IpAddr::V6(n), IpAddr::V6(x)) => match s.range_end {
            Some(IpAddr::V6(e)) => n <= x && x <= e,
            _ => {
                let bits = u32::from(s.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(n) & mask == u128::from(x) & mask
            }
        },
        _ => false,
    }
}
