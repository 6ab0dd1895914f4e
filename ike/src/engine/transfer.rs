//! Export and import of an established ISAKMP SA with its IPsec SAs, so that another engine
//! (an HA standby, a restarted child) carries on with the peer without a new Main Mode.
//!
//! Times travel as durations relative to the moment of export, since an `Instant` means
//! nothing in another process. Keys travel in `Secret`s, which zeroize and never print.
//! IPsec SA keys do not travel: the engine hands them to the kernel and keeps none.

use super::phase1::{rekey_delay, Established, Phase1, Role, Stage};
use super::sa::IpsecSa;
use super::timers::Timer;
use super::{Engine, LogLevel, NatTVersion, PolicySpec, Selector};
use crate::codec::{Cookie, IdPayload};
use crate::crypto::Phase1Keys;
use crate::policy::{ChosenPhase1, IpsecProtocol, Phase1Mode};
use crate::policy::{ConnectionName, PeerName};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// An established ISAKMP SA and the IPsec SAs negotiated under it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IsakmpSaState {
    pub peer: PeerName,
    pub initiator: bool,
    pub mode: Phase1Mode,
    pub icookie: Cookie,
    pub rcookie: Cookie,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub chosen: ChosenPhase1,
    pub keys: Phase1Keys,
    /// The last phase-1 CBC block: every phase-2 and Informational IV starts from it.
    pub iv: Vec<u8>,
    pub id_peer: Option<IdPayload>,
    pub natt: Option<NatTVersion>,
    pub peer_dpd: bool,
    pub nat_local: bool,
    pub nat_remote: bool,
    /// How long ago it was established, and how long it has left.
    pub age: Duration,
    pub expires_in: Duration,
    pub dpd_seq: u32,
    /// The sequence number of the peer's last R-U-THERE answered.
    #[serde(default)]
    pub peer_dpd_seq: Option<u32>,
    /// Message IDs already seen, so that a replay is still refused after the move.
    pub seen_msgids: Vec<u32>,
    pub ipsec: Vec<IpsecSaState>,
    /// The kernel policies of the connections above, as installed, with their reqids.
    pub policies: Vec<PolicySpec>,
}

/// An IPsec SA bundle as the engine records it (its keys are in the kernel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecSaState {
    pub connection: ConnectionName,
    pub msgid: u32,
    /// (protocol, inbound SPI, outbound SPI)
    pub spis: Vec<(IpsecProtocol, u32, u32)>,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub local_sel: Selector,
    pub remote_sel: Selector,
    pub age: Duration,
    pub expires_in: Duration,
    pub initiator: bool,
    pub replaced: bool,
    pub summary: String,
}

/// Why an export or import was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// No ISAKMP SA has these cookies.
    NoSuchSa,
    /// The ISAKMP SA is still negotiating, or already replaced by a newer one.
    NotEstablished,
    /// The importing engine already has an ISAKMP SA with these cookies.
    AlreadyPresent,
    /// The importing engine's policy has no such peer, or no such connection for it.
    UnknownPeer(PeerName),
    UnknownConnection(ConnectionName),
    /// The state has run out of lifetime.
    Expired,
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::NoSuchSa => write!(f, "no ISAKMP SA with these cookies"),
            TransferError::NotEstablished => {
                write!(f, "the ISAKMP SA is not established, or already replaced")
            }
            TransferError::AlreadyPresent => write!(f, "an ISAKMP SA with these cookies exists"),
            TransferError::UnknownPeer(p) => write!(f, "no peer named {p:?} in the policy"),
            TransferError::UnknownConnection(c) => {
                write!(f, "no connection named {c:?} for this peer in the policy")
            }
            TransferError::Expired => write!(f, "the SA's lifetime is over"),
        }
    }
}

impl std::error::Error for TransferError {}

impl Engine {
    /// The state of the established ISAKMP SA with these cookies and its IPsec SAs.
    pub fn export(&self, icookie: Cookie, rcookie: Cookie) -> Result<IsakmpSaState, TransferError> {
        let serial = *self
            .by_cookies
            .get(&(icookie, rcookie))
            .ok_or(TransferError::NoSuchSa)?;
        let p1 = self.phase1.get(&serial).ok_or(TransferError::NoSuchSa)?;
        if p1.replaced {
            return Err(TransferError::NotEstablished);
        }
        let (Some(chosen), Some(keys), Some(life)) = (&p1.chosen, &p1.keys, p1.established())
        else {
            return Err(TransferError::NotEstablished);
        };
        let now = self.ctx.now;
        let ipsec: Vec<IpsecSaState> = self
            .ipsec
            .values()
            .filter(|s| s.p1 == serial)
            .map(|s| IpsecSaState {
                connection: s.connection.clone(),
                msgid: s.msgid,
                spis: s.spis.clone(),
                local: s.local,
                remote: s.remote,
                local_sel: s.local_sel.clone(),
                remote_sel: s.remote_sel.clone(),
                age: now.saturating_duration_since(s.established),
                expires_in: s.expires.saturating_duration_since(now),
                initiator: s.initiator,
                replaced: s.replaced,
                summary: s.summary.clone(),
            })
            .collect();
        let policies = self
            .policies
            .values()
            .filter(|p| {
                ipsec.iter().any(|s| {
                    s.connection == p.connection
                        && s.local_sel == p.local
                        && s.remote_sel == p.remote
                })
            })
            .cloned()
            .collect();
        Ok(IsakmpSaState {
            peer: p1.peer.clone(),
            initiator: p1.role == Role::Initiator,
            mode: p1.mode,
            icookie: p1.icookie,
            rcookie: p1.rcookie,
            local: p1.local,
            remote: p1.remote,
            chosen: chosen.clone(),
            keys: keys.clone(),
            iv: p1.iv.clone(),
            id_peer: p1.id_peer.clone(),
            natt: p1.natt,
            peer_dpd: p1.peer_dpd,
            nat_local: p1.nat_local,
            nat_remote: p1.nat_remote,
            age: now.saturating_duration_since(life.at),
            expires_in: life.expires.saturating_duration_since(now),
            dpd_seq: life.dpd_seq,
            peer_dpd_seq: life.peer_dpd_seq,
            seen_msgids: p1.seen_msgids.iter().copied().collect(),
            ipsec,
            policies,
        })
    }

    /// Every established ISAKMP SA that is not replaced, with its IPsec SAs.
    pub fn export_all(&self) -> Vec<IsakmpSaState> {
        self.phase1
            .values()
            .filter(|p| p.is_established() && !p.replaced)
            .filter_map(|p| self.export(p.icookie, p.rcookie).ok())
            .collect()
    }

    /// Take over an ISAKMP SA exported by another engine: it answers the peer, rekeys and
    /// expires as if it had been negotiated here. Its SAs and policies are taken to be in
    /// the kernel already; nothing is sent and nothing installed.
    pub fn import(
        &mut self,
        now: std::time::Instant,
        state: IsakmpSaState,
    ) -> Result<(), TransferError> {
        self.ctx.now = now;
        if self
            .by_cookies
            .contains_key(&(state.icookie, state.rcookie))
        {
            return Err(TransferError::AlreadyPresent);
        }
        let peer = self
            .peer_by_name(&state.peer)
            .ok_or_else(|| TransferError::UnknownPeer(state.peer.clone()))?;
        for sa in &state.ipsec {
            if !self
                .ctx
                .cfg
                .policy
                .connections
                .iter()
                .any(|c| c.name == sa.connection && c.peer == state.peer)
            {
                return Err(TransferError::UnknownConnection(sa.connection.clone()));
            }
        }
        if state.expires_in.is_zero() {
            return Err(TransferError::Expired);
        }
        let serial = self.ctx.isakmp_serial();
        let role = if state.initiator {
            Role::Initiator
        } else {
            Role::Responder
        };
        let established = now.checked_sub(state.age).unwrap_or(now);
        let mut p1 = Phase1::new(
            serial,
            &state.peer,
            role,
            state.mode,
            (state.icookie, state.rcookie),
            (state.local, state.remote),
            Vec::new(),
            now,
        );
        p1.stage = Stage::Established(Established {
            at: established,
            expires: now + state.expires_in,
            dpd_seq: state.dpd_seq,
            dpd_outstanding: None,
            peer_dpd_seq: state.peer_dpd_seq,
            peer_dpd_repeats: 0,
        });
        p1.chosen = Some(state.chosen);
        p1.keys = Some(state.keys);
        p1.iv = state.iv;
        p1.id_peer = state.id_peer.clone();
        p1.natt = state.natt;
        p1.peer_dpd = state.peer_dpd;
        p1.nat_local = state.nat_local;
        p1.nat_remote = state.nat_remote;
        p1.seen_msgids = state.seen_msgids.into_iter().collect();
        let (icookie, rcookie, remote) = (p1.icookie, p1.rcookie, p1.remote);
        let lifetime = state.age + state.expires_in;
        self.by_cookies.insert((icookie, rcookie), serial);
        self.phase1.insert(serial, p1);
        // The same timers the exchange arms when it completes, at the times it would fire.
        self.ctx
            .timers
            .add(now + state.expires_in, Timer::P1Expire { serial });
        if role == Role::Initiator {
            let fuzz = self.ctx.rng.next_u32();
            let at = established + rekey_delay(lifetime, &self.ctx.cfg.timers, fuzz);
            self.ctx.timers.add(at.max(now), Timer::P1Rekey { serial });
        }
        if state.peer_dpd && peer.dpd_interval > 0 {
            self.ctx.timers.add(
                now + Duration::from_secs(peer.dpd_interval),
                Timer::Dpd { serial },
            );
        }
        if state.nat_local {
            self.ctx.timers.add(
                now + self.ctx.cfg.timers.nat_keepalive,
                Timer::Keepalive { serial },
            );
        }
        for policy in state.policies {
            self.reqids
                .entry(policy.connection.clone())
                .or_insert(policy.reqid);
            self.policies
                .insert(super::sa::TunnelId::of_policy(&policy), policy);
        }
        let count = state.ipsec.len();
        for sa in state.ipsec {
            let sa_serial = self.ctx.ipsec_serial();
            let sa_established = now.checked_sub(sa.age).unwrap_or(now);
            let sa_lifetime = sa.age + sa.expires_in;
            self.ctx
                .timers
                .add(now + sa.expires_in, Timer::SaExpire { serial: sa_serial });
            if sa.initiator && !sa.replaced {
                let fuzz = self.ctx.rng.next_u32();
                let at = sa_established + rekey_delay(sa_lifetime, &self.ctx.cfg.timers, fuzz);
                self.ctx
                    .timers
                    .add(at.max(now), Timer::SaRekey { serial: sa_serial });
            }
            self.ipsec.insert(
                sa_serial,
                IpsecSa {
                    serial: sa_serial,
                    connection: sa.connection,
                    peer: state.peer.clone(),
                    peer_id: state.id_peer.clone(),
                    p1: serial,
                    msgid: sa.msgid,
                    spis: sa.spis,
                    local: sa.local,
                    remote: sa.remote,
                    local_sel: sa.local_sel,
                    remote_sel: sa.remote_sel,
                    established: sa_established,
                    expires: now + sa.expires_in,
                    initiator: sa.initiator,
                    replaced: sa.replaced,
                    summary: sa.summary,
                },
            );
        }
        self.ctx.log(
            LogLevel::Info,
            format!(
                "phase 1 with {} ({remote}) imported with {count} IPsec SAs",
                state.peer
            ),
        );
        Ok(())
    }
}
