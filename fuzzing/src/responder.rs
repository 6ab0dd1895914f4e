//! A stateful responder: the input is a sequence of operations into one `Engine` that
//! answers four configured peers (PSK and RSA signatures, Main and Aggressive Mode, Quick
//! Mode after each) and a stranger:
//!
//! | first byte % 8 | operation |
//! |---|---|
//! | 0, 1 | a datagram: source byte, 2-byte big-endian length, that many bytes (fewer at the end) |
//! | 2, 7 | answer every pending crypto request |
//! | 3 | answer one pending crypto request (index byte) |
//! | 4 | fail one pending crypto request (index byte), as a helper that gave up |
//! | 5 | advance the clock by a 2-byte big-endian count of 10 ms, then fire due timers |
//! | 6 | advance the clock to the next timer and fire it |
//!
//! The source byte picks the peer (`% 5`, index 4 being the stranger) and, with bit 3,
//! port 4500 on both ends (NAT-T; the datagram then carries its own non-ESP marker).
//!
//! Crypto is real (`ike::crypto::serve`), except that our Diffie-Hellman key pair is a fixed
//! one (`keys/dh-modp1024.postcard`), and the engine's randomness is `SeededRng` with a
//! fixed seed: so a transcript of a real exchange (`tests/write_corpus.rs` records them)
//! replays byte for byte, and the fuzzer starts from messages 3 and beyond. The kernel
//! answers at once. Bugs it catches: a panic (libFuzzer aborts on it; on stable the
//! engine's containment counts it as an internal error, which is asserted to stay 0), and
//! a crypto request a helper would refuse (the engine must check what peers send first).

use ike::codec::{IdPayload, Identity};
use ike::crypto::SecretStore;
use ike::crypto::{serve, CryptoRequest, CryptoResult, DhPrivate, EncrAlg, Group, HashAlg};
use ike::engine::{
    Engine, EngineConfig, Event, KernelEvent, KernelRequest, Output, RequestId, SeededRng, Timers,
};
use ike::policy::*;
use openssl::pkey::{PKey, Private};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Our address.
pub const RESPONDER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The peers' addresses, by source index: PSK Main, PSK Aggressive, RSA Main, RSA
/// Aggressive, and a stranger no peer is configured for.
pub const SOURCES: [Ipv4Addr; 5] = [
    Ipv4Addr::new(192, 0, 2, 1),
    Ipv4Addr::new(192, 0, 2, 2),
    Ipv4Addr::new(192, 0, 2, 3),
    Ipv4Addr::new(192, 0, 2, 4),
    Ipv4Addr::new(198, 51, 100, 9),
];
/// The pre-shared key of both PSK peers.
pub const PSK: &[u8] = b"fuzzing is believing";
/// The seed of the responder's `SeededRng`.
pub const SEED: u64 = 0x5eed_f022;
/// Most operations run per input.
const MAX_OPS: usize = 256;

const RESPONDER_KEY: &[u8] = include_bytes!("../keys/responder.pem");
const INITIATOR_KEY: &[u8] = include_bytes!("../keys/initiator.pem");
const FIXED_DH: &[u8] = include_bytes!("../keys/dh-modp1024.postcard");

/// One operation of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Datagram { source: u8, bytes: Vec<u8> },
    AnswerAll,
    Answer(u8),
    Fail(u8),
    Advance(u16),
    NextTimer,
}

impl Op {
    /// Appends the operation's encoding (the inverse of what `responder` reads).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Datagram { source, bytes } => {
                let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
                out.push(0);
                out.push(*source);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&bytes[..usize::from(len)]);
            }
            Op::AnswerAll => out.push(2),
            Op::Answer(i) => out.extend_from_slice(&[3, *i]),
            Op::Fail(i) => out.extend_from_slice(&[4, *i]),
            Op::Advance(t) => {
                out.push(5);
                out.extend_from_slice(&t.to_be_bytes());
            }
            Op::NextTimer => out.push(6),
        }
    }

    /// Reads the operations of an input (at most `MAX_OPS`).
    pub fn decode(mut data: &[u8]) -> Vec<Op> {
        let mut ops = Vec::new();
        while let Some((&code, rest)) = data.split_first() {
            if ops.len() == MAX_OPS {
                break;
            }
            data = rest;
            let mut byte = || -> u8 {
                let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
                data = rest;
                b
            };
            let op = match code % 8 {
                0 | 1 => {
                    let source = byte();
                    let len = usize::from(u16::from_be_bytes([byte(), byte()]));
                    let (bytes, rest) = data.split_at(len.min(data.len()));
                    data = rest;
                    Op::Datagram {
                        source,
                        bytes: bytes.to_vec(),
                    }
                }
                3 => Op::Answer(byte()),
                4 => Op::Fail(byte()),
                5 => Op::Advance(u16::from_be_bytes([byte(), byte()])),
                6 => Op::NextTimer,
                _ => Op::AnswerAll,
            };
            ops.push(op);
        }
        ops
    }
}

/// The secrets a helper holds.
#[derive(Default)]
pub struct Store {
    pub psks: HashMap<String, Vec<u8>>,
    pub keys: HashMap<String, PKey<Private>>,
}

impl SecretStore for Store {
    fn psk(&self, name: &str) -> Option<&[u8]> {
        self.psks.get(name).map(Vec::as_slice)
    }
    fn rsa_key(&self, name: &str) -> Option<&PKey<Private>> {
        self.keys.get(name)
    }
}

/// The committed test keys, parsed once (OpenSSL's PEM decoding would otherwise be most of
/// an execution).
fn private_key(pem: &[u8]) -> PKey<Private> {
    static KEYS: OnceLock<[PKey<Private>; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [RESPONDER_KEY, INITIATOR_KEY]
            .map(|k| PKey::private_key_from_pem(k).expect("the committed test key parses"))
    });
    if pem == RESPONDER_KEY {
        keys[0].clone()
    } else {
        keys[1].clone()
    }
}

fn public_der(pem: &[u8]) -> Vec<u8> {
    private_key(pem)
        .public_key_to_der()
        .expect("the committed test key has a public half")
}

fn fixed_dh() -> &'static (Vec<u8>, DhPrivate) {
    static DH: OnceLock<(Vec<u8>, DhPrivate)> = OnceLock::new();
    DH.get_or_init(|| {
        let private: DhPrivate =
            postcard::from_bytes(FIXED_DH).expect("the committed DH key decodes");
        (private.public().to_vec(), private)
    })
}

/// The name of peer `i`'s connection (the same on both sides).
pub fn connection_name(i: usize) -> String {
    format!("conn-{i}")
}

fn kind(i: usize) -> (AuthMethod, Phase1Mode) {
    match i {
        0 => (AuthMethod::PreShared, Phase1Mode::Main),
        1 => (AuthMethod::PreShared, Phase1Mode::Aggressive),
        2 => (AuthMethod::RsaSig, Phase1Mode::Main),
        _ => (AuthMethod::RsaSig, Phase1Mode::Aggressive),
    }
}

fn range(default: u64) -> LifetimeRange {
    LifetimeRange {
        default,
        min: 10,
        max: 86400,
    }
}

fn subnet(a: [u8; 4]) -> IdPayload {
    IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4Subnet(Ipv4Addr::from(a), Ipv4Addr::new(255, 255, 255, 0)),
    }
}

/// Peer `i` and its connection as one side sees the other: `responder` for our engine,
/// otherwise for the initiator at `SOURCES[i]` (used to record transcripts).
fn peer_and_connection(i: usize, responder: bool) -> (Peer, Connection) {
    let (auth, mode) = kind(i);
    let peer_name = format!("peer-{i}");
    let (me, them) = if responder {
        (RESPONDER_IP, SOURCES[i])
    } else {
        (SOURCES[i], RESPONDER_IP)
    };
    let credentials = match auth {
        AuthMethod::PreShared => Credentials::PreShared {
            secret: "psk".into(),
        },
        AuthMethod::RsaSig => Credentials::RsaSig {
            secret: "local-key".into(),
            peer_public_key: Some(public_der(if responder {
                INITIATOR_KEY
            } else {
                RESPONDER_KEY
            })),
        },
    };
    let transforms = [EncrAlg::AesCbc128, EncrAlg::TripleDesCbc]
        .into_iter()
        .map(|encr| Phase1Transform {
            name: format!("{encr:?}-SHA1-MODP1024"),
            encr,
            hash: HashAlg::Sha1,
            group: Group::Modp1024,
            auth,
            lifetime: range(3600),
        })
        .collect();
    let peer = Peer {
        name: peer_name.as_str().into(),
        address: SocketAddr::new(IpAddr::V4(them), 500),
        local_address: Some(SocketAddr::new(IpAddr::V4(me), 500)),
        mode,
        transforms,
        credentials,
        local_id: None,
        remote_id: None,
        dpd_interval: if matches!(i, 0 | 2) { 30 } else { 0 },
        dpd_timeout: None,
        dpd_action: DpdAction::Clear,
        nat_t: true,
    };
    let octet = u8::try_from(i).unwrap_or(0);
    let (local, remote) = if responder {
        (subnet([10, 2, octet, 0]), subnet([10, 1, octet, 0]))
    } else {
        (subnet([10, 1, octet, 0]), subnet([10, 2, octet, 0]))
    };
    let suite = |name: &str, pfs_group: Option<Group>| Suite {
        name: name.into(),
        protocols: vec![ProtocolProposal {
            protocol: IpsecProtocol::Esp,
            transforms: vec![IpsecTransform {
                name: format!("{name}-transform"),
                cipher: Some(EspCipher::AesCbc { key_bits: 128 }),
                integ: Some(IntegAlg::HmacSha1),
                encap: EncapMode::Tunnel,
                pfs_group,
                lifetime: range(1200),
                lifetime_kb: None,
            }],
        }],
    };
    // Peers 0 and 3 use PFS in Quick Mode, so a transcript has a phase-2 KE too.
    let pfs = (i == 0 || i == 3).then_some(Group::Modp1024);
    let conn = Connection {
        name: connection_name(i).as_str().into(),
        peer: peer_name.as_str().into(),
        local_id: Some(local),
        remote_id: Some(remote),
        suites: vec![suite("esp-aes-sha1", pfs)],
        active: !responder,
        keying_tries: 0,
    };
    (peer, conn)
}

fn policy(peers: Vec<Peer>, connections: Vec<Connection>) -> Policy {
    Policy {
        peers,
        connections,
        default_peer: None,
        general: GeneralSettings {
            retransmits: 3,
            exchange_max_time: 60,
            check_interval: 60,
            dpd_check_interval: 0,
            dpd_timeout: None,
            nat_t_keepalive: 20,
            listen_on: Vec::new(),
            max_half_open: 64,
            max_half_open_per_address: 8,
            aggressive_mode_rate: 20,
            unique_ids: true,
            fail_closed: true,
        },
        key_lengths: Default::default(),
        x509: Default::default(),
    }
}

/// The timers both sides run with.
pub fn timers() -> Timers {
    Timers {
        retransmit_base: Duration::from_millis(500),
        retransmits: 3,
        exchange_max: Duration::from_secs(60),
        rekey_margin: Duration::from_secs(540),
        rekey_fuzz_percent: 100,
        nat_keepalive: Duration::from_secs(20),
        dpd_timeout: Duration::from_secs(15),
    }
}

fn store(key: &[u8]) -> Store {
    let mut s = Store::default();
    s.psks.insert("psk".into(), PSK.to_vec());
    s.keys.insert("local-key".into(), private_key(key));
    s
}

/// The configuration and secrets of an initiator at `SOURCES[i]` that talks to our
/// responder (for recording transcripts).
pub fn initiator_config(i: usize) -> (EngineConfig, Store) {
    let (peer, conn) = peer_and_connection(i, false);
    let cfg = EngineConfig {
        policy: policy(vec![peer], vec![conn]),
        timers: timers(),
        local_addresses: vec![IpAddr::V4(SOURCES[i])],
        ike_port: 500,
        natt_port: 4500,
        passive: false,
    };
    (cfg, store(INITIATOR_KEY))
}

/// The start of every run's clock (one per process; the engine sees only differences).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The responder under test, with its helper and kernel.
pub struct Responder {
    pub engine: Engine,
    pub now: Instant,
    store: Store,
    pending: Vec<(RequestId, CryptoRequest)>,
    next_spi: u32,
    /// Datagrams the last operation sent: (from, to, bytes).
    pub sent: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    pub phase1_up: usize,
    pub phase2_up: usize,
    /// When set, every kernel request of the engine is kept here (seeds for `ipc`).
    pub kernel_requests: Option<Vec<KernelRequest>>,
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

/// The responder's policy: the four peers and their connections.
pub fn responder_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let (peers, connections) = (0..4).map(|i| peer_and_connection(i, true)).unzip();
        policy(peers, connections)
    })
}

impl Responder {
    pub fn new() -> Self {
        let cfg = EngineConfig {
            policy: responder_policy().clone(),
            timers: timers(),
            local_addresses: vec![IpAddr::V4(RESPONDER_IP)],
            ike_port: 500,
            natt_port: 4500,
            passive: false,
        };
        let now = epoch();
        Responder {
            engine: Engine::new(cfg, Box::new(SeededRng::new(SEED)), now),
            now,
            store: store(RESPONDER_KEY),
            pending: Vec::new(),
            next_spi: 0x1000,
            sent: Vec::new(),
            phase1_up: 0,
            phase2_up: 0,
            kernel_requests: None,
        }
    }

    /// The addresses a datagram from source `source` travels between: (ours, theirs).
    pub fn route(source: u8) -> (SocketAddr, SocketAddr) {
        let ip = SOURCES[usize::from(source) % SOURCES.len()];
        let port = if source & 8 != 0 { 4500 } else { 500 };
        (
            SocketAddr::new(IpAddr::V4(RESPONDER_IP), port),
            SocketAddr::new(IpAddr::V4(ip), port),
        )
    }

    pub fn apply(&mut self, op: &Op) {
        self.sent.clear();
        match op {
            Op::Datagram { source, bytes } => {
                let (local, remote) = Self::route(*source);
                self.engine.handle_datagram(self.now, local, remote, bytes);
            }
            Op::AnswerAll => {
                // Answers may raise new requests; those wait for the next operation.
                for (id, request) in std::mem::take(&mut self.pending) {
                    self.answer(id, &request);
                }
            }
            Op::Answer(i) => {
                if !self.pending.is_empty() {
                    let (id, request) = self.pending.remove(usize::from(*i) % self.pending.len());
                    self.answer(id, &request);
                }
            }
            Op::Fail(i) => {
                if !self.pending.is_empty() {
                    let (id, _) = self.pending.remove(usize::from(*i) % self.pending.len());
                    let failed = CryptoResult::Failed("the fuzzer's helper gave up".into());
                    self.engine.handle_crypto(self.now, id, failed);
                }
            }
            Op::Advance(t) => {
                self.now += Duration::from_millis(u64::from(*t) * 10);
                self.engine.handle_timeout(self.now);
            }
            Op::NextTimer => {
                if let Some(t) = self.engine.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.engine.handle_timeout(self.now);
            }
        }
        self.drain();
    }

    fn answer(&mut self, id: RequestId, request: &CryptoRequest) {
        let result = match request {
            CryptoRequest::DhKeygen {
                group: Group::Modp1024,
            } => {
                let (public, private) = fixed_dh();
                CryptoResult::DhKeyPair {
                    public: public.clone(),
                    private: private.clone(),
                }
            }
            _ => serve(request, &self.store),
        };
        assert!(
            !matches!(result, CryptoResult::Refused { .. }),
            "the engine asked a helper what it refuses: {request:?} -> {result:?}"
        );
        self.engine.handle_crypto(self.now, id, result);
    }

    /// Takes the engine's outputs: crypto requests wait for an operation, the kernel
    /// answers at once.
    fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit(t) => self.sent.push((t.from, t.to, t.bytes)),
                Output::Crypto { id, request } => self.pending.push((id, request)),
                Output::Kernel { id, request } => {
                    if let Some(log) = &mut self.kernel_requests {
                        log.push(request.clone());
                    }
                    self.kernel(id, request)
                }
                Output::Event(Event::Phase1Up { .. }) => self.phase1_up += 1,
                Output::Event(Event::Phase2Up { .. }) => self.phase2_up += 1,
                Output::Event(_) | Output::Packet { .. } => {}
            }
        }
    }

    /// The kernel's answer: an SPI, or yes.
    fn kernel(&mut self, id: RequestId, request: KernelRequest) {
        match request {
            KernelRequest::AllocSpi { .. } => {
                self.next_spi = self.next_spi.wrapping_add(1);
                let spi = self.next_spi;
                self.engine
                    .handle_kernel(self.now, KernelEvent::SpiAllocated { id, spi });
            }
            KernelRequest::AddSa(_) => {
                self.engine
                    .handle_kernel(self.now, KernelEvent::Installed { id });
            }
            _ => {}
        }
    }

    /// Asserts that no panic was contained inside the engine.
    pub fn check(&self) {
        let faults = self.engine.faults();
        assert_eq!(
            faults.internal_errors, 0,
            "the engine contained a panic (see its log)"
        );
    }
}

pub fn responder(data: &[u8]) {
    let mut r = Responder::new();
    for op in Op::decode(data) {
        r.apply(&op);
    }
    r.check();
}
