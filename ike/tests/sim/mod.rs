//! An in-memory network for engine pairs: a simulated clock, links that lose, duplicate and
//! reorder datagrams, an optional NAT in front of one node, helpers that answer crypto
//! requests at once, and a fake kernel that allocates SPIs and records SAs and policies.
#![allow(dead_code)]

pub mod setup;

use ike::crypto::{serve, CryptoResult, SecretStore};
use ike::engine::{
    Direction, Engine, EngineConfig, Event, KernelEvent, KernelRequest, LogLevel, Output,
    PolicySpec, SaSpec, SeededRng, Selector, Timers,
};
use ike::policy::{IpsecProtocol, Policy};
use openssl::pkey::{PKey, Private};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The secrets a helper would hold.
#[derive(Default, Clone)]
pub struct Store {
    pub psks: HashMap<String, Vec<u8>>,
    pub keys: HashMap<String, PKey<Private>>,
}

impl SecretStore for Store {
    fn psk(&self, name: &str) -> Option<&[u8]> {
        self.psks.get(name).map(|v| v.as_slice())
    }
    fn rsa_key(&self, name: &str) -> Option<&PKey<Private>> {
        self.keys.get(name)
    }
}

/// What the fake kernel holds.
#[derive(Default, Debug)]
pub struct FakeKernel {
    pub next_spi: u32,
    /// Keyed as the kernel keys them: destination, protocol, SPI.
    pub sas: BTreeMap<(IpAddr, u8, u32), SaSpec>,
    /// Keyed as XFRM keys them: by their selectors.
    pub policies: BTreeMap<(Selector, Selector), PolicySpec>,
    pub deleted: usize,
    /// Keep inbound SAs' confirmations back (as a slow kernel would) until
    /// [`Sim::confirm_held`]; the SAs are in `sas` meanwhile.
    pub hold_inbound: bool,
    pub held: Vec<ike::engine::RequestId>,
}

impl FakeKernel {
    /// The policies of `connection`, one per tunnel.
    pub fn policies_of(&self, connection: &str) -> Vec<&PolicySpec> {
        self.policies
            .values()
            .filter(|p| p.connection == connection)
            .collect()
    }

    pub fn has_policy(&self, connection: &str) -> bool {
        !self.policies_of(connection).is_empty()
    }
}

/// Helper answers kept for a second run: Diffie-Hellman keys are random, so a run repeats
/// another byte for byte only if the helpers give the same answers in the same order.
#[derive(Default)]
pub enum CryptoTape {
    #[default]
    Off,
    Record(Vec<CryptoResult>),
    Replay(std::collections::VecDeque<CryptoResult>),
}

pub struct Node {
    pub name: &'static str,
    pub engine: Engine,
    pub store: Store,
    pub ip: IpAddr,
    pub kernel: FakeKernel,
    pub events: Vec<Event>,
    pub logs: Vec<(LogLevel, String)>,
    /// Crypto requests are answered after this many simulated microseconds (0 = at once).
    pub crypto_delay: Duration,
    pending_crypto: Vec<(Instant, ike::engine::RequestId, CryptoResult)>,
    pub up: bool,
    /// Time spent answering Diffie-Hellman requests (the modexp share), and all crypto.
    pub dh_time: Duration,
    pub crypto_time: Duration,
    pub tape: CryptoTape,
    /// When on, every output of the engine, in order, with its simulated time.
    pub transcript: Option<Vec<String>>,
}

fn proto_num(p: IpsecProtocol) -> u8 {
    match p {
        IpsecProtocol::Esp => 50,
        IpsecProtocol::Ah => 51,
    }
}

impl Node {
    pub fn new(
        name: &'static str,
        ip: IpAddr,
        policy: Policy,
        store: Store,
        timers: Timers,
        seed: u64,
        now: Instant,
    ) -> Self {
        let cfg = EngineConfig {
            policy,
            timers,
            local_addresses: vec![ip],
            ike_port: 500,
            natt_port: 4500,
            passive: false,
        };
        Self {
            name,
            engine: Engine::new(cfg, Box::new(SeededRng::new(seed)), now),
            store,
            ip,
            kernel: FakeKernel {
                next_spi: 0x1000 + (seed as u32 % 7) * 0x100000,
                ..Default::default()
            },
            events: Vec::new(),
            logs: Vec::new(),
            crypto_delay: Duration::ZERO,
            pending_crypto: Vec::new(),
            up: true,
            dh_time: Duration::ZERO,
            crypto_time: Duration::ZERO,
            tape: CryptoTape::Off,
            transcript: None,
        }
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.logs.iter().any(|(_, l)| l.contains(needle))
    }

    pub fn phase2_up(&self, connection: &str) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Phase2Up { connection: c, .. } if c == connection))
            .count()
    }

    pub fn phase1_up(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Phase1Up { .. }))
            .count()
    }

    /// Inbound (or outbound) ESP/AH SAs in the fake kernel.
    pub fn sas(&self, dir: Direction) -> Vec<&SaSpec> {
        self.kernel
            .sas
            .values()
            .filter(|s| s.direction == dir)
            .collect()
    }
}

/// A datagram on the wire.
#[derive(Clone, Debug)]
pub struct Packet {
    pub at: Instant,
    pub seq: u64,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Link faults, as probabilities in percent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub loss: u32,
    pub duplicate: u32,
    pub reorder: u32,
}

/// A NAT in front of node A: A's private address is rewritten to `public`, ports shifted.
#[derive(Clone, Copy, Debug)]
pub struct Nat {
    pub public: IpAddr,
}

pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    pub a: Node,
    pub b: Node,
    pub faults: Faults,
    pub nat: Option<Nat>,
    wire: Vec<Packet>,
    seq: u64,
    rng: u64,
    pub delivered: usize,
    pub dropped: usize,
    /// Every datagram delivered, in order (for tests that replay or mutate real traffic).
    pub trace: Vec<Packet>,
    pub latency: Duration,
}

impl Sim {
    pub fn new(a: Node, b: Node, start: Instant) -> Self {
        Self {
            now: start,
            start,
            a,
            b,
            faults: Faults::default(),
            nat: None,
            wire: Vec::new(),
            seq: 0,
            rng: 0x1234_5678_9abc_def0,
            delivered: 0,
            dropped: 0,
            trace: Vec::new(),
            latency: Duration::from_millis(5),
        }
    }

    fn roll(&mut self, percent: u32) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) < u64::from(percent)
    }

    fn node(&mut self, which: bool) -> &mut Node {
        if which {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    /// NAT port mapping for A's source port.
    fn nat_port(p: u16) -> u16 {
        p.wrapping_add(10000)
    }

    /// Drain one node's outputs: answer crypto and kernel requests, put datagrams on the wire.
    fn drain(&mut self, is_a: bool) {
        let start = self.start;
        loop {
            let now = self.now;
            let node = self.node(is_a);
            // Crypto answers whose time has come.
            let mut due = Vec::new();
            let mut i = 0;
            while i < node.pending_crypto.len() {
                if node.pending_crypto[i].0 <= now {
                    let (_, id, r) = node.pending_crypto.remove(i);
                    due.push((id, r));
                } else {
                    i += 1;
                }
            }
            for (id, r) in due {
                node.engine.handle_crypto(now, id, r);
            }
            let Some(out) = node.engine.poll_output() else {
                break;
            };
            if let Some(t) = &mut node.transcript {
                t.push(format!("{:?} {out:?}", now.duration_since(start)));
            }
            match out {
                Output::Transmit(t) => {
                    if !node.up {
                        continue;
                    }
                    let mut from = t.from;
                    if is_a {
                        if let Some(nat) = self.nat {
                            from = SocketAddr::new(nat.public, Self::nat_port(from.port()));
                        }
                    }
                    self.send(from, t.to, t.bytes);
                }
                Output::Crypto { id, request } => {
                    let t0 = std::time::Instant::now();
                    let r = match &mut node.tape {
                        CryptoTape::Replay(answers) => answers
                            .pop_front()
                            .unwrap_or_else(|| serve(&request, &node.store)),
                        _ => serve(&request, &node.store),
                    };
                    if let CryptoTape::Record(answers) = &mut node.tape {
                        answers.push(r.clone());
                    }
                    // The engine checks what peers send before it asks: a helper never has
                    // cause to refuse an honest engine.
                    assert!(
                        !matches!(r, CryptoResult::Refused { .. }),
                        "{}: a helper refused the engine's request: {r:?}",
                        node.name
                    );
                    let spent = t0.elapsed();
                    node.crypto_time += spent;
                    if matches!(
                        request,
                        ike::crypto::CryptoRequest::DhKeygen { .. }
                            | ike::crypto::CryptoRequest::DhDerive { .. }
                    ) {
                        node.dh_time += spent;
                    }
                    if node.crypto_delay.is_zero() {
                        node.engine.handle_crypto(now, id, r);
                    } else {
                        node.pending_crypto.push((now + node.crypto_delay, id, r));
                    }
                }
                Output::Kernel { id, request } => match request {
                    KernelRequest::AllocSpi { .. } => {
                        node.kernel.next_spi += 1;
                        let spi = node.kernel.next_spi;
                        node.engine
                            .handle_kernel(now, KernelEvent::SpiAllocated { id, spi });
                    }
                    KernelRequest::AddSa(sa) => {
                        let hold = node.kernel.hold_inbound && sa.direction == Direction::Inbound;
                        node.kernel
                            .sas
                            .insert((sa.dst, proto_num(sa.protocol), sa.spi), sa);
                        if hold {
                            node.kernel.held.push(id);
                        } else {
                            node.engine
                                .handle_kernel(now, KernelEvent::Installed { id });
                        }
                    }
                    KernelRequest::DeleteSa {
                        protocol, spi, dst, ..
                    } => {
                        if node
                            .kernel
                            .sas
                            .remove(&(dst, proto_num(protocol), spi))
                            .is_some()
                        {
                            node.kernel.deleted += 1;
                        }
                    }
                    KernelRequest::AddPolicy(p) => {
                        node.kernel
                            .policies
                            .insert((p.local.clone(), p.remote.clone()), p);
                    }
                    KernelRequest::DeletePolicy(p) => {
                        node.kernel
                            .policies
                            .remove(&(p.local.clone(), p.remote.clone()));
                    }
                },
                Output::Event(Event::Log { level, message }) => {
                    if std::env::var_os("SIM_LOG").is_some() {
                        eprintln!(
                            "{:>8.3} {} {level:?} {message}",
                            now.duration_since(start).as_secs_f64(),
                            node.name
                        );
                    }
                    node.logs.push((level, message));
                }
                Output::Event(e) => node.events.push(e),
                // Packet capture is off in the simulator; nothing to record.
                Output::Packet { .. } => {}
            }
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if self.roll(self.faults.loss) {
            self.dropped += 1;
            return;
        }
        let copies = if self.roll(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let extra = if self.roll(self.faults.reorder) {
                Duration::from_millis(40)
            } else {
                Duration::ZERO
            };
            self.seq += 1;
            let at = self.now + self.latency + extra;
            self.wire.push(Packet {
                at,
                seq: self.seq,
                from,
                to,
                bytes: bytes.clone(),
            });
        }
    }

    fn deliver(&mut self, p: Packet) {
        let now = self.now;
        // Route: to B's address, or to A (directly, or through the NAT's public address).
        let (is_a, local) = if p.to.ip() == self.b.ip {
            (false, p.to)
        } else if p.to.ip() == self.a.ip {
            (true, p.to)
        } else if let Some(nat) = self.nat.filter(|n| n.public == p.to.ip()) {
            let _ = nat;
            (
                true,
                SocketAddr::new(self.a.ip, p.to.port().wrapping_sub(10000)),
            )
        } else {
            self.dropped += 1;
            return;
        };
        self.delivered += 1;
        self.trace.push(p.clone());
        let node = self.node(is_a);
        if !node.up {
            return;
        }
        node.engine.handle_datagram(now, local, p.from, &p.bytes);
    }

    /// Run until `done` holds or `limit` of simulated time passes; true if `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drain(true);
            self.drain(false);
            if done(self) {
                return true;
            }
            // Next thing to happen: a packet arriving, a timer, or a delayed crypto answer.
            let mut next = end;
            if let Some(p) = self.wire.iter().map(|p| p.at).min() {
                next = next.min(p);
            }
            // A node that is down has no clock of its own.
            for n in [&self.a, &self.b].into_iter().filter(|n| n.up) {
                if let Some(t) = n.engine.poll_timeout() {
                    next = next.min(t);
                }
                if let Some(t) = n.pending_crypto.iter().map(|x| x.0).min() {
                    next = next.min(t);
                }
            }
            if next >= end && self.now >= end {
                return done(self);
            }
            self.now = next.max(self.now);
            // Deliver every packet due now, in arrival order.
            self.wire.sort_by_key(|p| (p.at, p.seq));
            while self.wire.first().is_some_and(|p| p.at <= self.now) {
                let p = self.wire.remove(0);
                self.deliver(p);
                self.drain(true);
                self.drain(false);
            }
            let now = self.now;
            if self.a.up {
                self.a.engine.handle_timeout(now);
            }
            if self.b.up {
                self.b.engine.handle_timeout(now);
            }
            if self.now >= end {
                self.drain(true);
                self.drain(false);
                return done(self);
            }
        }
    }

    /// Deliver the confirmations a node's kernel held back, and stop holding them.
    pub fn confirm_held(&mut self, is_a: bool) {
        let now = self.now;
        let node = self.node(is_a);
        node.kernel.hold_inbound = false;
        for id in std::mem::take(&mut node.kernel.held) {
            node.engine
                .handle_kernel(now, KernelEvent::Installed { id });
        }
        self.drain(is_a);
    }

    /// Advance simulated time by `d`, running everything that happens meanwhile.
    pub fn advance(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }
}

/// Every outbound SA of `x` has an inbound twin on `y` with the same SPI, algorithms and keys.
pub fn sas_pair_up(x: &Node, y: &Node) -> Result<usize, String> {
    let mut n = 0;
    for out in x.sas(Direction::Outbound) {
        let key = (out.dst, proto_num(out.protocol), out.spi);
        let Some(inb) = y.kernel.sas.get(&key) else {
            return Err(format!(
                "{} outbound SPI {:08x} has no inbound twin on {}",
                x.name, out.spi, y.name
            ));
        };
        if inb.direction != Direction::Inbound
            || inb.enc_key[..] != out.enc_key[..]
            || inb.auth_key[..] != out.auth_key[..]
            || inb.cipher != out.cipher
            || inb.integ != out.integ
            || inb.mode != out.mode
        {
            return Err(format!(
                "SA {:08x} differs between {} and {}",
                out.spi, x.name, y.name
            ));
        }
        n += 1;
    }
    Ok(n)
}

/// A policy of these peers and connections.
pub fn policy(peers: Vec<ike::policy::Peer>, connections: Vec<ike::policy::Connection>) -> Policy {
    Policy {
        peers,
        connections,
        default_peer: None,
        general: ike::policy::GeneralSettings {
            retransmits: 5,
            exchange_max_time: 60,
            check_interval: 60,
            dpd_check_interval: 0,
            dpd_timeout: None,
            nat_t_keepalive: 20,
            listen_on: Vec::new(),
            max_half_open: 2048,
            max_half_open_per_address: 16,
            aggressive_mode_rate: 20,
            unique_ids: true,
            fail_closed: true,
        },
        key_lengths: Default::default(),
        x509: Default::default(),
    }
}
