//! What every exchange uses besides the engine's tables: the configuration, the clock,
//! randomness, the outputs, the timers, the serial and request counters and the work
//! waiting for a helper's or the kernel's answer. Split from the tables so that an exchange
//! can hold its own record and the context at once.

use super::loglimit::{kind_of, LogLimiter, Verdict};
use super::pending::{CryptoPending, KernelPending};
use super::timers::{Timer, TimerQueue};
use super::{
    EngineConfig, Event, IpsecSerial, IsakmpSerial, KernelRequest, LogLevel, Output, RequestId,
    Rng, Transmit, NON_ESP_MARKER,
};
use crate::codec::{Cookie, Header};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub(super) struct Context {
    pub cfg: EngineConfig,
    pub rng: Box<dyn Rng>,
    pub now: Instant,
    next_request: u64,
    next_serial: u64,
    /// Work waiting for a helper's answer, and for the kernel's.
    pub crypto_waiting: BTreeMap<RequestId, CryptoPending>,
    pub kernel_waiting: BTreeMap<RequestId, KernelPending>,
    pub timers: TimerQueue,
    pub out: VecDeque<Output>,
    /// Packet capture on: every message sent or accepted is also output in cleartext.
    pub capture_on: bool,
    /// The source of the datagram being handled: the lines it causes are rate-limited.
    pub source: Option<IpAddr>,
    pub log_limit: LogLimiter,
    /// Datagrams, answers and timers dropped because handling them panicked.
    pub internal_errors: u64,
}

/// Faults the engine survived, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Datagrams, answers and timers dropped because handling them panicked.
    pub internal_errors: u64,
    /// Log lines left out by the rate limit.
    pub log_suppressed: u64,
}

impl Context {
    pub(super) fn new(cfg: EngineConfig, rng: Box<dyn Rng>, now: Instant) -> Self {
        Context {
            cfg,
            rng,
            now,
            next_request: 1,
            next_serial: 1,
            crypto_waiting: BTreeMap::new(),
            kernel_waiting: BTreeMap::new(),
            timers: TimerQueue::default(),
            out: VecDeque::new(),
            capture_on: false,
            source: None,
            log_limit: LogLimiter::default(),
            internal_errors: 0,
        }
    }

    pub(super) fn capture(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if self.capture_on {
            self.out.push_back(Output::Packet { from, to, bytes });
        }
    }

    /// The id the next request will get.
    pub(super) fn peek_request_id(&self) -> RequestId {
        RequestId(self.next_request)
    }

    pub(super) fn request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    /// The next serial number; ISAKMP and IPsec SAs count from one counter, as pluto's do.
    pub(super) fn next_serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    pub(super) fn isakmp_serial(&mut self) -> IsakmpSerial {
        IsakmpSerial(self.next_serial())
    }

    pub(super) fn ipsec_serial(&mut self) -> IpsecSerial {
        IpsecSerial(self.next_serial())
    }

    /// A kernel request whose answer `pending` resumes.
    pub(super) fn kernel_then(&mut self, request: KernelRequest, pending: KernelPending) {
        let id = self.request_id();
        self.kernel_waiting.insert(id, pending);
        self.out.push_back(Output::Kernel { id, request });
    }

    /// A kernel request whose answer only matters when it fails (logged then).
    pub(super) fn kernel(&mut self, request: KernelRequest) {
        let id = self.request_id();
        self.out.push_back(Output::Kernel { id, request });
    }

    pub(super) fn transmit(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        // Encrypted messages were captured in cleartext where they were sealed.
        if Header::parse_prefix(&bytes).is_ok_and(|h| !h.is_encrypted()) {
            self.capture(from, to, bytes.clone());
        }
        let bytes = if from.port() == self.cfg.natt_port {
            let mut b = Vec::with_capacity(bytes.len() + 4);
            b.extend_from_slice(&NON_ESP_MARKER);
            b.extend_from_slice(&bytes);
            b
        } else {
            bytes
        };
        self.out
            .push_back(Output::Transmit(Transmit { from, to, bytes }));
    }

    pub(super) fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    /// Log a line. While a datagram is handled, the lines it causes are rate-limited per
    /// source and per place in the engine (see `loglimit`); debug lines, which the operator
    /// asked for, never are.
    #[track_caller]
    pub(super) fn log(&mut self, level: LogLevel, message: String) {
        if let (Some(source), true) = (self.source, level != LogLevel::Debug) {
            let kind = kind_of(std::panic::Location::caller());
            match self
                .log_limit
                .check(self.now, source, kind, level, &message)
            {
                Verdict::Log(summary) => {
                    if let Some((level, message)) = summary {
                        self.emit_log(level, message);
                    }
                }
                Verdict::Suppress(summary_at) => {
                    if let Some(at) = summary_at {
                        self.timers.add(at, Timer::LogSummary);
                    }
                    return;
                }
            }
        }
        self.emit_log(level, message);
    }

    fn emit_log(&mut self, level: LogLevel, message: String) {
        self.out
            .push_back(Output::Event(Event::Log { level, message }));
    }

    /// The summaries of rate-limited lines whose window is over.
    pub(super) fn log_summaries(&mut self) {
        for (level, message) in self.log_limit.due(self.now) {
            self.emit_log(level, message);
        }
    }

    pub(super) fn debug(&mut self, message: String) {
        self.log(LogLevel::Debug, message);
    }

    pub(super) fn random_cookie(&mut self) -> Cookie {
        let mut c = [0u8; 8];
        while c == [0u8; 8] {
            self.rng.fill(&mut c);
        }
        Cookie(c)
    }

    pub(super) fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill(&mut v);
        v
    }

    /// `last_sent` holds the message without the non-ESP marker; add it when resending.
    pub(super) fn with_marker(&self, from: SocketAddr, bytes: Vec<u8>) -> Vec<u8> {
        if from.port() == self.cfg.natt_port {
            let mut b = NON_ESP_MARKER.to_vec();
            b.extend_from_slice(&bytes);
            b
        } else {
            bytes
        }
    }

    /// RFC 2409 5: a nonce is 8 to 256 bytes. Anything else is refused with a named line
    /// (the message is dropped); true when refused.
    pub(super) fn nonce_refused(&mut self, remote: Option<SocketAddr>, nonce: &[u8]) -> bool {
        if (8..=256).contains(&nonce.len()) {
            return false;
        }
        self.log(
            LogLevel::Notice,
            format!(
                "nonce of {} bytes from {} is outside RFC 2409's 8 to 256: message dropped",
                nonce.len(),
                remote.map_or_else(|| "?".to_string(), |r| r.to_string())
            ),
        );
        true
    }
}
