//! The child's engine driver: the sans-IO engine of `ike` connected to the world. Datagrams
//! from the sockets go in, transmits go out on the socket they name, crypto requests go to
//! the one bounded crypto queue that the helpers' workers serve (their answers come back as
//! they finish, under the engine's request ids), kernel requests go to the parent, events
//! become log lines, and the engine's next deadline is the loop's timer.

use crate::cmdline::{DebugClass, Options};
use crate::config::ChildConfig;
use crate::crypto_queue::{self, Pending};
use crate::log;
use crate::proto::SocketInfo;
use helpers::pool::HelperPool;
use helpers::service::Crypto;
use ike::conf::{Conf, ConfError};
use ike::crypto::CryptoResult;
use ike::engine::{
    Engine, EngineConfig, Event, KernelRequest, LogLevel, OsRng, Output, RequestId, Timers,
};
use ike::policy::{Credentials, Policy, PolicyError};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The helper pool the engine's crypto requests go to (`-j 0`: computed in this process).
pub type Pool = HelperPool<Crypto>;

pub struct Driver {
    pub engine: Engine,
    sockets: Arc<Vec<(SocketInfo, UdpSocket)>>,
    /// Crypto work waiting for (or being done by) a helper.
    crypto: Arc<Pending>,
    /// Where the workers' answers go; a request the full queue turns away is answered here
    /// too, so the engine hears of it through the same loop.
    crypto_done: mpsc::UnboundedSender<(RequestId, CryptoResult)>,
    /// Kernel requests waiting to be sent to the parent.
    pub kernel: Vec<(RequestId, KernelRequest)>,
    /// Captured IKE messages (cleartext) for the parent's pcap file.
    pub packets: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// The running configuration without secrets, for the report.
    pub conf: String,
    /// Crypto requests the helpers refused (a shape IKEv1 never produces: a bug, or a
    /// child that is not itself), for the report.
    helper_refusals: Arc<AtomicU64>,
    no_kernel: bool,
}

/// Why the configuration the parent sent does not make an engine policy. The parent checked
/// it before sending, so either is a bug (or a parent that is not itself).
#[derive(Debug)]
pub enum ChildConfigError {
    Parse(ConfError),
    Policy(PolicyError),
}

impl fmt::Display for ChildConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildConfigError::Parse(e) => write!(f, "configuration from the parent: {e}"),
            ChildConfigError::Policy(e) => write!(f, "configuration from the parent: {e}"),
        }
    }
}

impl std::error::Error for ChildConfigError {}

/// The engine's policy from the child's configuration: the configuration text without
/// secrets, the peers' public keys, and the X.509 material.
pub fn policy(cfg: &ChildConfig) -> Result<Policy, ChildConfigError> {
    let conf = Conf::parse(&cfg.conf).map_err(ChildConfigError::Parse)?;
    let mut policy = Policy::from_conf(&conf).map_err(ChildConfigError::Policy)?;
    for peer in &mut policy.peers {
        if let Credentials::RsaSig {
            peer_public_key, ..
        } = &mut peer.credentials
        {
            *peer_public_key = cfg
                .public_keys
                .iter()
                .find(|(n, _)| *n == peer.name)
                .map(|(_, k)| k.clone());
        }
    }
    policy.x509 = cfg.x509.clone();
    // -T: without a NAT-T socket a float would go nowhere, so NAT traversal is off with
    // every peer (no vendor IDs, no NAT-D, no float).
    if cfg.no_natt {
        for peer in &mut policy.peers {
            peer.nat_t = false;
        }
    }
    Ok(policy)
}

impl Driver {
    pub fn new(
        opts: &Options,
        cfg: &ChildConfig,
        sockets: Arc<Vec<(SocketInfo, UdpSocket)>>,
        pool: Arc<Pool>,
        crypto_done: mpsc::UnboundedSender<(RequestId, CryptoResult)>,
    ) -> Result<Self, ChildConfigError> {
        let policy = policy(cfg)?;
        let g = &policy.general;
        let timers = Timers {
            retransmits: g.retransmits,
            exchange_max: Duration::from_secs(g.exchange_max_time.max(1)),
            nat_keepalive: Duration::from_secs(g.nat_t_keepalive.max(1)),
            ..Timers::default()
        };
        let mut local_addresses: Vec<IpAddr> = sockets
            .iter()
            .map(|(i, _)| i.local.ip())
            .filter(|a| !a.is_unspecified())
            .collect();
        local_addresses.extend(cfg.local_addresses.iter().copied());
        local_addresses.dedup();
        let port = sockets
            .iter()
            .find(|(i, _)| !i.natt)
            .map_or(opts.port, |(i, _)| i.local.port());
        let natt_port = sockets
            .iter()
            .find(|(i, _)| i.natt)
            .map_or(opts.natt_port, |(i, _)| i.local.port());
        let config = EngineConfig {
            policy,
            timers,
            local_addresses,
            ike_port: port,
            natt_port,
            passive: opts.sasyncd,
        };
        let crypto = Arc::new(Pending::new(crypto_queue::CAPACITY));
        let helper_refusals = Arc::default();
        crypto_queue::start_workers(&crypto, &pool, &crypto_done, &helper_refusals);
        Ok(Self {
            engine: Engine::new(config, Box::new(OsRng), Instant::now()),
            sockets,
            crypto,
            crypto_done,
            kernel: Vec::new(),
            packets: Vec::new(),
            conf: cfg.conf.clone(),
            helper_refusals,
            no_kernel: opts.no_kernel,
        })
    }

    /// The SA details (FIFO `S`), for the result file.
    pub fn report_sas(&self) -> String {
        crate::report::render_sas(&self.engine, Instant::now(), self.no_kernel)
    }

    /// The state report (SIGUSR1, FIFO `r`).
    pub fn report(&self) -> String {
        let mut r = crate::report::render(&self.engine, Instant::now(), &self.conf, self.no_kernel);
        let refused = self.helper_refusals.load(Ordering::Relaxed);
        r.push_str(&format!(
            "\nCrypto requests refused by the helpers: {refused}\n"
        ));
        r.push_str(&crate::report::render_crypto_queue(&self.crypto.depth()));
        r
    }

    /// Act on everything the engine has produced.
    pub fn pump(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit(t) => self.send(t.from, t.to, &t.bytes),
                Output::Crypto { id, request } => {
                    // Queued, or (queue full) already answered as failed; work for SAs
                    // that are up goes before strangers' phase 1.
                    let lane = match self.engine.crypto_waiting_for(id) {
                        Some(w) if w.under_established_sa() => crypto_queue::Lane::Established,
                        _ => crypto_queue::Lane::Stranger,
                    };
                    crypto_queue::submit(&self.crypto, lane, id, request, &self.crypto_done);
                }
                Output::Kernel { id, request } => self.kernel.push((id, request)),
                Output::Event(Event::Log { level, message }) => match level {
                    LogLevel::Error => log::error(&message),
                    LogLevel::Warning => log::warning(&message),
                    LogLevel::Notice => log::notice(&message),
                    LogLevel::Info => log::info(&message),
                    LogLevel::Debug => log::debug(DebugClass::Negotiation, 10, &message),
                },
                // Completed phases are logged by the engine itself (at Info, shown with -v);
                // updown scripts run from the parent's own table, not from these events.
                Output::Event(_) => {}
                Output::Packet { from, to, bytes } => self.packets.push((from, to, bytes)),
            }
        }
    }

    /// Send on the socket bound to `from`, else one with the same port and family.
    fn send(&self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let sock = self
            .sockets
            .iter()
            .find(|(i, _)| i.local == from)
            .or_else(|| {
                self.sockets.iter().find(|(i, _)| {
                    i.local.port() == from.port()
                        && i.local.is_ipv4() == to.is_ipv4()
                        && i.local.ip().is_unspecified()
                })
            })
            .or_else(|| {
                self.sockets.iter().find(|(i, _)| {
                    i.local.port() == from.port() && i.local.is_ipv4() == to.is_ipv4()
                })
            });
        let Some((info, sock)) = sock else {
            return log::warning(&format!("no socket to send from {from} to {to}"));
        };
        match sock.try_send_to(bytes, to) {
            Ok(_) => log::debug(
                DebugClass::Transport,
                5,
                &format!("sent {} bytes {} -> {to}", bytes.len(), info.local),
            ),
            Err(e) => log::warning(&format!("send {} -> {to}: {e}", info.local)),
        }
    }
}

impl Drop for Driver {
    /// The workers end once what is queued is answered.
    fn drop(&mut self) {
        self.crypto.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_configuration_from_the_parent_says_so() {
        let cfg = ChildConfig {
            conf: "[General\n".into(),
            public_keys: Vec::new(),
            local_addresses: Vec::new(),
            x509: Default::default(),
            no_natt: false,
        };
        let e = policy(&cfg).expect_err("refused");
        assert!(matches!(e, ChildConfigError::Parse(_)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("configuration from the parent: line 1: "),
            "{e}"
        );
    }
}
