//! The sans-IO engine: every exchange's state machine, timers, and the outputs the caller drains.
//!
//! The caller feeds `handle_datagram`, `handle_timeout`, `handle_crypto` and `handle_kernel`,
//! and after each call drains `poll_output` and asks `poll_timeout` when to call again.
//! Work that needs a helper (Diffie-Hellman, SKEYID from a pre-shared key, RSA) leaves as an
//! `Output::Crypto` request and resumes when its result comes back, so the engine never
//! blocks and never holds a long-term secret.

mod admission;
mod context;
mod info;
mod loglimit;
mod natt;
mod pending;
mod phase1;
mod protect;
mod quick;
pub use quick::{gateway_ids, Gateways};
mod rng;
mod sa;
mod timers;
mod transfer;
mod types;

#[cfg(test)]
mod containment_tests;
#[cfg(test)]
#[path = "../../tests/sim/mod.rs"]
mod sim;

pub use admission::AdmissionCounters;
pub use natt::{NatTVersion, NON_ESP_MARKER, VID_DPD, VID_RFC3947};
pub use pending::{
    AuthReady, CryptoPending, KernelPending, KeysReady, PeerAuthenticated, QmShared,
};
pub use rng::{OsRng, Rng, SeededRng};
pub use sa::{ExchangeInfo, IpsecSaInfo, Phase1Info};
pub use transfer::{IpsecSaState, IsakmpSaState, TransferError};
pub use types::*;

use crate::codec::{Cookie, ExchangeType, Header};
use crate::crypto::CryptoResult;
use crate::policy::ConnectionName;
use context::Context;
pub use context::FaultCounters;
use pending::KernelAnswer;
use phase1::Phase1;
use quick::QuickMode;
use sa::IpsecSa;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;
use timers::Timer;

/// The IKEv1 engine of one daemon.
pub struct Engine {
    /// What every exchange uses besides the tables: configuration, clock, randomness,
    /// outputs, timers and the work waiting for answers.
    ctx: Context,
    /// ISAKMP SAs and phase-1 exchanges, by serial number.
    phase1: BTreeMap<IsakmpSerial, Phase1>,
    /// (initiator cookie, responder cookie) -> serial; the responder cookie is zero until known.
    by_cookies: BTreeMap<(Cookie, Cookie), IsakmpSerial>,
    /// Quick Mode exchanges in progress (and finished ones kept briefly to answer duplicates),
    /// by (phase-1 serial, message ID).
    quick: BTreeMap<(IsakmpSerial, u32), QuickMode>,
    /// Established IPsec SAs, by serial.
    ipsec: BTreeMap<IpsecSerial, IpsecSa>,
    /// xfrm reqid per connection, stable across rekeys so new SAs bind to the same policies.
    reqids: BTreeMap<ConnectionName, u32>,
    /// The kernel policies installed, per tunnel (a road-warrior connection has several).
    policies: BTreeMap<sa::TunnelId, PolicySpec>,
    /// On-demand connections whose policies are in the kernel before any SA (see
    /// `install_traps`); their policies outlive their SAs.
    traps: BTreeSet<ConnectionName>,
    /// Responder phase-1 exchanges not yet authenticated, per source address, and what
    /// admission control refused.
    admission: admission::Admission,
    /// SHA-1 of peer RSA keys already found long enough and with a safe exponent.
    usable_keys: BTreeSet<Vec<u8>>,
    /// Active connections the watchdog started that have not come up since (Keying-tries).
    keying_attempts: BTreeMap<ConnectionName, u32>,
}

impl Engine {
    /// An engine for `cfg`, starting at `now`, drawing randomness from `rng`.
    pub fn new(cfg: EngineConfig, rng: Box<dyn Rng>, now: Instant) -> Self {
        let mut engine = Self {
            ctx: Context::new(cfg, rng, now),
            phase1: BTreeMap::new(),
            by_cookies: BTreeMap::new(),
            quick: BTreeMap::new(),
            ipsec: BTreeMap::new(),
            reqids: BTreeMap::new(),
            policies: BTreeMap::new(),
            traps: Default::default(),
            admission: Default::default(),
            usable_keys: BTreeSet::new(),
            keying_attempts: BTreeMap::new(),
        };
        engine.check_configured_keys();
        engine
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.ctx.cfg
    }

    /// Replace the policy (SIGHUP, `R`, FIFO `C` commits). SAs stay; new negotiations use it.
    ///
    /// IPsec SAs whose connection is gone, or now names another peer or other selectors,
    /// are deleted (the peer told); the others stay up untouched.
    pub fn set_policy(&mut self, policy: crate::policy::Policy) {
        let old = std::mem::replace(&mut self.ctx.cfg.policy, policy);
        self.check_configured_keys();
        // A reload gives every connection its Keying-tries again.
        self.keying_attempts.clear();
        let stale: Vec<_> = self
            .ipsec
            .values()
            .filter(|sa| {
                let before = old.connections.iter().find(|c| c.name == sa.connection);
                let now = self
                    .ctx
                    .cfg
                    .policy
                    .connections
                    .iter()
                    .find(|c| c.name == sa.connection);
                match (before, now) {
                    (_, None) => true,
                    (Some(b), Some(n)) => {
                        b.peer != n.peer || b.local_id != n.local_id || b.remote_id != n.remote_id
                    }
                    (None, Some(_)) => false,
                }
            })
            .map(|sa| sa.serial)
            .collect();
        for serial in stale {
            let name = self
                .ipsec
                .get(&serial)
                .map(|s| s.connection.clone())
                .unwrap_or_default();
            self.remove_ipsec_sa(serial, true, "connection changed or removed by reload");
            self.remove_policies(&name);
        }
        // Traps of connections that are gone or changed go; a trapped connection now
        // started at boot keeps its policies while it has SAs, as any started connection.
        let traps: Vec<ConnectionName> = self.traps.iter().cloned().collect();
        for name in traps {
            let before = old.connections.iter().find(|c| c.name == name);
            let now = self
                .ctx
                .cfg
                .policy
                .connections
                .iter()
                .find(|c| c.name == name);
            match (before, now) {
                (Some(b), Some(n)) if b == n => {}
                (Some(b), Some(n))
                    if n.active
                        && crate::policy::Connection {
                            active: false,
                            ..n.clone()
                        } == *b =>
                {
                    self.traps.remove(&name);
                    if !self.ipsec.values().any(|sa| sa.connection == name) {
                        self.remove_policies(&name);
                    }
                }
                _ => self.remove_policies(&name),
            }
        }
        if !self.ctx.cfg.passive {
            self.install_traps();
        }
    }

    /// HA standby: a passive engine neither initiates nor answers (`-S`, `M passive`).
    pub fn set_passive(&mut self, passive: bool) {
        self.ctx.cfg.passive = passive;
    }

    /// Packet capture (`-L`, `-l`, FIFO `p`): while on, every IKE message sent or received
    /// is also output as `Output::Packet`, decrypted, for the caller's capture file.
    pub fn set_capture(&mut self, on: bool) {
        self.ctx.capture_on = on;
    }

    /// Our and the peer's address of the ISAKMP SA a message belongs to.
    fn p1_addresses(&self, header: &Header) -> (SocketAddr, SocketAddr) {
        self.by_cookies
            .get(&(header.initiator_cookie, header.responder_cookie))
            .and_then(|s| self.phase1.get(s))
            .map_or(
                (
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                ),
                |p| (p.local, p.remote),
            )
    }

    /// Faults survived: panics contained, log lines rate-limited.
    pub fn faults(&self) -> FaultCounters {
        FaultCounters {
            internal_errors: self.ctx.internal_errors,
            log_suppressed: self.ctx.log_limit.suppressed_total,
        }
    }

    /// The next output for the caller, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.ctx.out.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ctx.timers.next_deadline()
    }

    /// A datagram arrived on `local` from `remote`.
    ///
    /// A panic while handling it (a bug) drops the datagram and what it would have sent,
    /// logs it, and leaves every other exchange and SA as it was; the lines it causes are
    /// rate-limited per source (see `loglimit`).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.ctx.now = now;
        self.ctx.source = Some(remote.ip());
        self.contained(
            || format!("a datagram of {} bytes from {remote}", bytes.len()),
            |e| e.datagram(local, remote, bytes),
        );
        self.ctx.source = None;
    }

    /// Runs `f`; if it panics, takes back what it queued (outputs, and work waiting for
    /// answers it asked for) and logs the panic with `what` it was handling.
    fn contained(&mut self, what: impl FnOnce() -> String, f: impl FnOnce(&mut Self)) {
        let out_before = self.ctx.out.len();
        let first_new_request = self.ctx.peek_request_id();
        // The engine's tables are not left half-updated in a way that breaks other
        // exchanges: each record is touched through its own entry, so a panic leaves at
        // worst the one record being handled stale, and its timers end it.
        let run = std::panic::AssertUnwindSafe(|| f(self));
        let Err(payload) = std::panic::catch_unwind(run) else {
            return;
        };
        self.ctx.out.truncate(out_before);
        self.ctx
            .crypto_waiting
            .retain(|id, _| *id < first_new_request);
        self.ctx
            .kernel_waiting
            .retain(|id, _| *id < first_new_request);
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        self.ctx.internal_errors += 1;
        let source = self.ctx.source.take();
        self.ctx.log(
            LogLevel::Error,
            format!(
                "internal error (panic: {why}) while handling {}: dropped; every other exchange and SA is kept",
                what()
            ),
        );
        self.ctx.source = source;
    }

    /// What `handle_datagram` does, inside its panic containment.
    fn datagram(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        if self.ctx.cfg.passive {
            self.ctx.debug(format!(
                "passive: ignoring {} bytes from {remote}",
                bytes.len()
            ));
            return;
        }
        let bytes = if local.port() == self.ctx.cfg.natt_port {
            // Port 4500 carries a one-byte keepalive, or IKE behind a non-ESP marker; ESP
            // itself is taken by the kernel and never reaches us.
            if bytes == [0xff] {
                return;
            }
            match bytes.strip_prefix(&NON_ESP_MARKER[..]) {
                Some(rest) => rest,
                None => {
                    self.ctx.debug(format!(
                        "dropping non-IKE datagram on NAT-T port from {remote}"
                    ));
                    return;
                }
            }
        } else {
            bytes
        };
        let header = match Header::parse(bytes) {
            Ok(h) => h,
            Err(e) => {
                self.ctx.log(
                    LogLevel::Notice,
                    format!("dropping malformed message from {remote}: {e}"),
                );
                return;
            }
        };
        // Encrypted messages are captured in cleartext once decrypted.
        if header.flags & crate::codec::flags::ENCRYPTION == 0 {
            self.ctx.capture(remote, local, bytes.to_vec());
        }
        match header.exchange {
            ExchangeType::MAIN_MODE | ExchangeType::AGGRESSIVE => {
                self.phase1_datagram(local, remote, &header, bytes)
            }
            ExchangeType::QUICK_MODE => self.quick_datagram(local, remote, &header, bytes),
            ExchangeType::INFORMATIONAL => self.info_datagram(local, remote, &header, bytes),
            #[cfg(test)]
            PANIC_PROBE => panic!("the panic probe"),
            other => self.ctx.log(
                LogLevel::Notice,
                format!(
                    "dropping message from {remote}: exchange type {} not supported",
                    other.0
                ),
            ),
        }
    }

    /// Time has passed: fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ctx.now = now;
        while let Some(timer) = self.ctx.timers.pop_due(now) {
            self.contained(|| format!("the timer {timer:?}"), |e| e.fire(timer));
        }
    }

    /// A helper answered request `id`.
    pub fn handle_crypto(&mut self, now: Instant, id: RequestId, result: CryptoResult) {
        self.ctx.now = now;
        match self.ctx.crypto_waiting.remove(&id) {
            Some(pending) => self.contained(
                || format!("the answer to crypto request {}", id.0),
                |e| e.resume_crypto(pending, result),
            ),
            None => self
                .ctx
                .debug(format!("crypto result {} matches no request", id.0)),
        }
    }

    /// The kernel (through the parent) answered a request or reported an event.
    pub fn handle_kernel(&mut self, now: Instant, event: KernelEvent) {
        self.ctx.now = now;
        let what = format!("the kernel's {event:?}");
        self.contained(|| what, |e| e.kernel_event(event));
    }

    /// What `handle_kernel` does, inside its panic containment.
    fn kernel_event(&mut self, event: KernelEvent) {
        match event {
            KernelEvent::SpiAllocated { id, spi } => {
                if let Some(pending) = self.ctx.kernel_waiting.remove(&id) {
                    self.resume_kernel(pending, KernelAnswer::SpiAllocated(spi));
                }
            }
            KernelEvent::Installed { id } => {
                if let Some(pending) = self.ctx.kernel_waiting.remove(&id) {
                    self.resume_kernel(pending, KernelAnswer::Installed);
                }
            }
            KernelEvent::Failed { id, reason } => {
                if let Some(pending) = self.ctx.kernel_waiting.remove(&id) {
                    self.resume_kernel(pending, KernelAnswer::Failed(reason));
                } else {
                    self.ctx.log(
                        LogLevel::Error,
                        format!("kernel request {} failed: {reason}", id.0),
                    );
                }
            }
            KernelEvent::Acquire {
                local,
                remote,
                protocol,
            } => self.acquire(local, remote, protocol),
            KernelEvent::Expire {
                protocol,
                spi,
                dst,
                hard,
            } => self.sa_expired(protocol, spi, dst, hard),
            KernelEvent::Mapping { old, new } => self.mapping_changed(old, new),
        }
    }

    /// Operator or configuration: bring connection `name` up (isakmpd's `c name`).
    pub fn initiate(&mut self, now: Instant, name: &str) -> Result<(), CommandError> {
        self.ctx.now = now;
        if self.ctx.cfg.passive {
            return Err(CommandError::Passive);
        }
        if self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .any(|c| c.name == name)
        {
            // The operator's start gives the connection its Keying-tries again.
            self.keying_attempts.remove(name);
            self.start_connection(name);
            Ok(())
        } else if self.ctx.cfg.policy.peers.iter().any(|p| p.name == name) {
            self.start_phase1(name, Vec::new());
            Ok(())
        } else {
            Err(CommandError::UnknownName(name.to_string()))
        }
    }

    /// Start every connection marked active (`[Phase 2] Connections`).
    pub fn start_active(&mut self, now: Instant) {
        self.ctx.now = now;
        // An HA standby starts nothing until it is made active.
        if self.ctx.cfg.passive {
            return;
        }
        self.install_traps();
        let names: Vec<_> = self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .filter(|c| c.active)
            .map(|c| (c.name.clone(), c.keying_tries))
            .collect();
        for (n, tries) in names {
            if !self.connection_is_up_or_pending(&n) && self.keying_attempt(&n, tries) {
                self.start_connection(&n);
            }
        }
    }

    /// Active connections no longer started because their Keying-tries are used up.
    pub fn keying_given_up(&self) -> Vec<ConnectionName> {
        self.ctx
            .cfg
            .policy
            .connections
            .iter()
            .filter(|c| {
                c.keying_tries > 0
                    && self
                        .keying_attempts
                        .get(&c.name)
                        .is_some_and(|made| *made > c.keying_tries)
            })
            .map(|c| c.name.clone())
            .collect()
    }

    /// Count one more start of connection `name` (whose Keying-tries are `tries`) by the
    /// watchdog; false once they are used up (said once), until it comes up, a reload or
    /// `c name`.
    fn keying_attempt(&mut self, name: &ConnectionName, tries: u32) -> bool {
        let made = self.keying_attempts.entry(name.clone()).or_insert(0);
        if tries > 0 && *made >= tries {
            if *made == tries {
                *made += 1;
                self.ctx.log(
                    LogLevel::Warning,
                    format!("connection {name} did not come up in {tries} keying attempts (Keying-tries): not started again until a reload or `c {name}`"),
                );
            }
            return false;
        }
        *made += 1;
        true
    }

    /// Send `request` to a helper; `pending` resumes with the answer.
    fn crypto(&mut self, request: crate::crypto::CryptoRequest, pending: CryptoPending) {
        // What a peer sent in a shape no helper would accept (a short nonce, a KE of the
        // wrong length, an oversized signature) fails here: a helper's refusals then count
        // only a misbehaving child. Every caller asks last, so the work may resume now.
        if let Err(reason) = crate::crypto::validate(&request) {
            return self.resume_crypto(pending, CryptoResult::Failed(reason.to_string()));
        }
        let id = self.ctx.request_id();
        self.ctx.crypto_waiting.insert(id, pending);
        self.ctx.out.push_back(Output::Crypto { id, request });
    }

    /// The work waiting for helpers, oldest request first.
    pub fn crypto_pending(&self) -> impl Iterator<Item = (RequestId, &CryptoPending)> {
        self.ctx.crypto_waiting.iter().map(|(i, p)| (*i, p))
    }

    /// What the helper's answer to request `id` will resume, while it waits.
    pub fn crypto_waiting_for(&self, id: RequestId) -> Option<&CryptoPending> {
        self.ctx.crypto_waiting.get(&id)
    }

    /// The work waiting for the kernel, oldest request first.
    pub fn kernel_pending(&self) -> impl Iterator<Item = (RequestId, &KernelPending)> {
        self.ctx.kernel_waiting.iter().map(|(i, p)| (*i, p))
    }

    /// A helper answered: the exchange that asked goes on.
    fn resume_crypto(&mut self, pending: CryptoPending, r: CryptoResult) {
        match pending {
            CryptoPending::AmI1Keygen { serial, offer } => self.am_i1_keygen(serial, offer, r),
            CryptoPending::MmI2Keygen { serial } => self.mm_i2_send(serial, r),
            CryptoPending::MmR2Keygen { serial } => self.mm_r2_send(serial, r),
            CryptoPending::AmR1Keygen { serial, reply_sa } => {
                self.am_r1_keygen(serial, reply_sa, r)
            }
            CryptoPending::P1Shared { serial, then } => self.p1_shared(serial, r, then),
            CryptoPending::P1Skeyid { serial, then } => self.p1_skeyid(serial, r, then),
            CryptoPending::P1Signed { serial, cert, then } => self.p1_signed(serial, cert, r, then),
            CryptoPending::P1Verified { serial, peer, then } => {
                self.p1_verified(serial, &peer, r, then)
            }
            CryptoPending::QmI1Keygen { serial, msgid } => self.qm_i1_keygen(serial, msgid, r),
            CryptoPending::QmR1Keygen {
                serial,
                msgid,
                group,
                peer_public,
            } => self.qm_r1_keygen(serial, msgid, group, peer_public, r),
            CryptoPending::QmShared {
                serial,
                msgid,
                then,
            } => self.qm_shared(serial, msgid, r, then),
        }
    }

    /// The kernel answered: the exchange that asked goes on.
    fn resume_kernel(&mut self, pending: KernelPending, answer: KernelAnswer) {
        match pending {
            KernelPending::QmSpi {
                serial,
                msgid,
                protocol,
            } => self.qm_spi(serial, msgid, protocol, answer),
            KernelPending::QmInboundInstalled { serial, msgid } => {
                self.qm_inbound_installed(serial, msgid, answer)
            }
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::P1Retransmit { serial, step } => self.p1_retransmit(serial, step),
            Timer::P1Timeout { serial } => self.p1_timeout(serial),
            Timer::P1Rekey { serial } => self.p1_rekey(serial),
            Timer::P1Expire { serial } => self.p1_expire(serial),
            Timer::QmRetransmit {
                serial,
                msgid,
                step,
            } => self.qm_retransmit(serial, msgid, step),
            Timer::QmTimeout { serial, msgid } => self.qm_timeout(serial, msgid),
            Timer::QmOutbound { serial, msgid } => {
                self.qm_install(serial, msgid, &[Direction::Outbound])
            }
            Timer::SaRekey { serial } => self.sa_rekey(serial),
            Timer::SaExpire { serial } => self.sa_expire(serial),
            Timer::Dpd { serial } => self.dpd_check(serial),
            Timer::Keepalive { serial } => self.nat_keepalive(serial),
            Timer::LogSummary => self.ctx.log_summaries(),
        }
    }
}

/// An exchange type no peer sends, which panics in unit tests to check the containment.
#[cfg(test)]
const PANIC_PROBE: ExchangeType = ExchangeType(250);

/// A helper's answer that is not the one asked for, as an operator reads it.
fn why(r: &CryptoResult) -> String {
    match r {
        CryptoResult::Failed(reason) => reason.clone(),
        CryptoResult::Refused {
            reason,
            refused_total,
        } => format!("the helper refused the request: {reason} ({refused_total} refused so far)"),
        CryptoResult::Verified(false) => {
            "the signature does not verify with the peer's public key".into()
        }
        _ => "the helper gave an unexpected answer".into(),
    }
}
