//! The engine's timers: an ordered queue of deadlines. A timer whose object has gone, or
//! whose step no longer matches, is simply ignored when it fires.

use super::{IpsecSerial, IsakmpSerial};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    P1Retransmit {
        serial: IsakmpSerial,
        step: u32,
    },
    P1Timeout {
        serial: IsakmpSerial,
    },
    P1Rekey {
        serial: IsakmpSerial,
    },
    P1Expire {
        serial: IsakmpSerial,
    },
    QmRetransmit {
        serial: IsakmpSerial,
        msgid: u32,
        step: u32,
    },
    QmTimeout {
        serial: IsakmpSerial,
        msgid: u32,
    },
    /// A rekeying initiator switches its traffic to the new outbound SA only now.
    QmOutbound {
        serial: IsakmpSerial,
        msgid: u32,
    },
    SaRekey {
        serial: IpsecSerial,
    },
    SaExpire {
        serial: IpsecSerial,
    },
    Dpd {
        serial: IsakmpSerial,
    },
    Keepalive {
        serial: IsakmpSerial,
    },
    /// Say how many rate-limited log lines were left out.
    LogSummary,
}

/// Names one armed timer, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimerKey(Instant, u64);

#[derive(Default)]
pub(super) struct TimerQueue {
    queue: BTreeMap<(Instant, u64), Timer>,
    seq: u64,
}

impl TimerQueue {
    /// Arms `timer` for `at`; the key cancels it.
    pub fn add(&mut self, at: Instant, timer: Timer) -> TimerKey {
        self.seq += 1;
        let key = TimerKey(at, self.seq);
        self.queue.insert((at, self.seq), timer);
        key
    }

    /// Cancels a timer that has not fired (nothing if it has).
    pub fn cancel(&mut self, key: TimerKey) {
        self.queue.remove(&(key.0, key.1));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let key = *self.queue.keys().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }

    /// Every pending timer, in deadline order (for the report).
    pub fn iter(&self) -> impl Iterator<Item = (Instant, &Timer)> {
        self.queue.iter().map(|((t, _), timer)| (*t, timer))
    }
}
