//! Admission control for responder phase-1 exchanges: how many are half-open (not yet
//! authenticated) in all and per source address, bounded by `Max-half-open` and
//! `Max-half-open-per-address`, so that a flood of first messages costs a bounded table
//! and no crypto beyond it. Counted as exchanges start and leave the half-open stage, so a
//! first message costs a map lookup, not a walk over every SA.
//!
//! A full table does not lock out honest peers for an Exchange-max-time: while it is full
//! (the busy state) each new first message takes the place of the oldest exchange that
//! has proven nothing yet, one whose peer has not answered our first message with its own
//! (a spoofed source never can), once that one has had [`UNPROVEN_GRACE`] to answer. An
//! exchange that got its peer's second message has shown that the peer sees what we send,
//! and is never displaced by a stranger. So a flood costs an honest peer some of its
//! first messages (it retransmits), never an exchange it has begun.

use super::context::Context;
use super::types::IsakmpSerial;
use super::LogLevel;
use crate::policy::Phase1Mode;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What admission control did, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionCounters {
    /// Responder phase-1 exchanges not yet authenticated, now.
    pub half_open: u32,
    /// First messages dropped because `Max-half-open` was reached.
    pub refused_total: u64,
    /// First messages dropped because their address had `Max-half-open-per-address`.
    pub refused_per_address: u64,
    /// Aggressive Mode first messages dropped over `Aggressive-mode-rate`.
    pub refused_aggressive: u64,
    /// Exchanges that had proven nothing, dropped to make room for a new first message
    /// while the table was full.
    pub evicted: u64,
    /// Whether the table is full now (`half_open` has reached `Max-half-open`).
    pub busy: bool,
}

/// Why a first message is not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Total(u32),
    PerAddress(u32),
    /// An Aggressive Mode first message costs a DH and (with signatures) an RSA signature
    /// before the peer has proven anything: at most this many a second are taken.
    AggressiveRate(u32),
}

#[derive(Default)]
pub(super) struct Admission {
    by_address: BTreeMap<IpAddr, u32>,
    /// Half-open exchanges whose peer has not yet answered our first message, by serial:
    /// serials only grow, so the first entry is the oldest.
    unproven: BTreeMap<IsakmpSerial, (IpAddr, Instant)>,
    /// `Max-half-open` as last applied, for `busy`.
    max_total: u32,
    counters: AdmissionCounters,
    /// The last refusal logged and how many were not logged since (one line a second).
    last_logged: Option<Instant>,
    unlogged: u64,
    /// Aggressive Mode tokens in thousandths, and when they were last topped up.
    aggressive_tokens: u64,
    aggressive_at: Option<Instant>,
}

/// How long an unproven exchange is kept before a newer first message may take its place:
/// time for an honest peer to make its key pair and send its second message. Without it,
/// a flood of F first messages a second would give each exchange only `Max-half-open / F`
/// (0.1 s at 20,000 a second with 2048 places); with it, while F exceeds `Max-half-open /
/// grace`, a first message finds a place with probability `Max-half-open / (F * grace)`,
/// so the grace is kept short (measured with `flood_bench`: with 1 s and 2048 places, an
/// honest peer came up 2 times in 10 under 10,000 Main Mode first messages a second).
pub(super) const UNPROVEN_GRACE: Duration = Duration::from_millis(250);

/// Refusals are logged at most this often; the rest are counted into the next line.
const LOG_EVERY: Duration = Duration::from_secs(1);

impl Admission {
    /// Admit a new half-open exchange `serial` from `from` at `now`, or say why not (and
    /// count it). When the table is full, the answer names the oldest unproven exchange if
    /// it has had its grace, which the caller must end (its room is given back through
    /// [`Admission::release`]) before the new one holds what it took here.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        serial: IsakmpSerial,
        from: IpAddr,
        max_total: u32,
        max_per_address: u32,
    ) -> Result<Option<(IsakmpSerial, IpAddr)>, Refusal> {
        self.max_total = max_total;
        if self.by_address.get(&from).copied().unwrap_or(0) >= max_per_address {
            self.counters.refused_per_address += 1;
            return Err(Refusal::PerAddress(max_per_address));
        }
        let mut victim = None;
        if self.counters.half_open >= max_total {
            let oldest = self
                .unproven
                .first_key_value()
                .map(|(&s, &(a, t))| (s, a, t))
                .filter(|(_, _, t)| now.saturating_duration_since(*t) >= UNPROVEN_GRACE);
            let Some((oldest, at, _)) = oldest else {
                self.counters.refused_total += 1;
                return Err(Refusal::Total(max_total));
            };
            self.unproven.remove(&oldest);
            self.counters.evicted += 1;
            victim = Some((oldest, at));
        }
        *self.by_address.entry(from).or_insert(0) += 1;
        self.counters.half_open += 1;
        self.unproven.insert(serial, (from, now));
        Ok(victim)
    }

    /// The peer of half-open exchange `serial` answered our first message: it sees what
    /// we send, and no stranger's first message displaces it.
    pub(super) fn proven(&mut self, serial: IsakmpSerial) {
        self.unproven.remove(&serial);
    }

    /// Take one Aggressive Mode first message at `now` under a rate of `per_second`
    /// (a bucket of that many, refilled continuously), or say why not (and count it).
    pub(super) fn admit_aggressive(
        &mut self,
        now: Instant,
        per_second: u32,
    ) -> Result<(), Refusal> {
        let full = u64::from(per_second) * 1000;
        let tokens = match self.aggressive_at {
            None => full,
            Some(t) => {
                let ms =
                    u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX);
                self.aggressive_tokens
                    .saturating_add(ms.saturating_mul(u64::from(per_second)))
                    .min(full)
            }
        };
        self.aggressive_at = Some(now);
        if tokens < 1000 {
            self.aggressive_tokens = tokens;
            self.counters.refused_aggressive += 1;
            return Err(Refusal::AggressiveRate(per_second));
        }
        self.aggressive_tokens = tokens - 1000;
        Ok(())
    }

    /// Half-open exchange `serial` from `from` authenticated or ended.
    pub(super) fn release(&mut self, serial: IsakmpSerial, from: IpAddr) {
        self.unproven.remove(&serial);
        if let Some(n) = self.by_address.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_address.remove(&from);
            }
            self.counters.half_open = self.counters.half_open.saturating_sub(1);
        }
    }

    pub(super) fn counters(&self) -> AdmissionCounters {
        AdmissionCounters {
            busy: self.max_total > 0 && self.counters.half_open >= self.max_total,
            ..self.counters
        }
    }

    /// Whether a refusal at `now` is logged; if so, how many earlier ones were not.
    pub(super) fn log_now(&mut self, now: Instant) -> Option<u64> {
        if self
            .last_logged
            .is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY)
        {
            self.unlogged += 1;
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// What became of a responder's first message.
pub(super) enum Admitted {
    /// Taken.
    Yes,
    /// Taken in the place of this unproven exchange, which the caller ends.
    InPlaceOf(IsakmpSerial),
    /// Dropped (the line is logged).
    No,
}

/// Admit a responder's first message from `remote` (exchange `serial` if taken) under the
/// `[General]` limits, or drop it with a line (one a second, with the number suppressed
/// since).
pub(super) fn admit_first_message(
    adm: &mut Admission,
    ctx: &mut Context,
    serial: IsakmpSerial,
    remote: SocketAddr,
    mode: Phase1Mode,
) -> Admitted {
    let general = &ctx.cfg.policy.general;
    let (max_total, max_per) = (general.max_half_open, general.max_half_open_per_address);
    let rate = general.aggressive_mode_rate;
    let admitted = match mode {
        Phase1Mode::Aggressive => adm.admit_aggressive(ctx.now, rate),
        Phase1Mode::Main => Ok(()),
    }
    .and_then(|()| adm.admit(ctx.now, serial, remote.ip(), max_total, max_per));
    let line = match admitted {
        Ok(None) => return Admitted::Yes,
        Ok(Some((victim, from))) => {
            let line = format!(
                "busy: Max-half-open ({max_total}) reached: the oldest exchange that has proven nothing (from {from}) is dropped for a first message from {remote}"
            );
            if let Some(unlogged) = adm.log_now(ctx.now) {
                ctx.log(LogLevel::Notice, with_suppressed(line, unlogged));
            }
            return Admitted::InPlaceOf(victim);
        }
        Err(Refusal::Total(n)) => format!(
            "first phase 1 message from {remote} dropped: Max-half-open ({n}) reached and no half-open exchange may yet give its place (each has proven its peer's address or is under {} ms old)",
            UNPROVEN_GRACE.as_millis()
        ),
        Err(Refusal::PerAddress(n)) => format!(
            "first phase 1 message from {remote} dropped: Max-half-open-per-address ({n}) for {} reached",
            remote.ip()
        ),
        Err(Refusal::AggressiveRate(n)) => format!(
            "first phase 1 message from {remote} dropped: Aggressive-mode-rate ({n} a second) reached"
        ),
    };
    if let Some(unlogged) = adm.log_now(ctx.now) {
        ctx.log(LogLevel::Notice, with_suppressed(line, unlogged));
    }
    Admitted::No
}

fn with_suppressed(line: String, unlogged: u64) -> String {
    if unlogged > 0 {
        format!("{line}; {unlogged} similar messages suppressed")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_in_all_and_per_address_and_release_frees_room() {
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let s = IsakmpSerial;
        let t = Instant::now() + Duration::from_secs(10);
        let mut adm = Admission::default();
        assert_eq!(adm.admit(t, s(1), a, 3, 2), Ok(None));
        assert_eq!(adm.admit(t, s(2), a, 3, 2), Ok(None));
        assert_eq!(adm.admit(t, s(3), a, 3, 2), Err(Refusal::PerAddress(2)));
        assert_eq!(adm.admit(t, s(4), b, 3, 2), Ok(None));
        // Every one of them has proven its address: a fourth is refused.
        for n in [1, 2, 4] {
            adm.proven(s(n));
        }
        assert!(adm.counters().busy);
        let later = t + Duration::from_secs(60);
        assert_eq!(adm.admit(later, s(5), b, 3, 2), Err(Refusal::Total(3)));
        adm.release(s(1), a);
        assert!(!adm.counters().busy);
        assert_eq!(adm.admit(later, s(6), b, 3, 2), Ok(None));
        // A release for an address with nothing half-open changes nothing.
        adm.release(s(99), IpAddr::from([203, 0, 113, 1]));
        let c = adm.counters();
        assert_eq!(
            (
                c.half_open,
                c.refused_total,
                c.refused_per_address,
                c.evicted
            ),
            (3, 1, 1, 0)
        );
    }

    #[test]
    fn a_full_table_gives_the_oldest_unproven_exchange_up_for_a_new_one() {
        let s = IsakmpSerial;
        let addr = |n: u8| IpAddr::from([198, 18, 0, n]);
        let t = Instant::now();
        let mut adm = Admission::default();
        for n in 1..=3 {
            assert_eq!(adm.admit(t, s(n), addr(n as u8), 3, 2), Ok(None));
        }
        // Within their grace none gives way.
        let soon = t + UNPROVEN_GRACE / 2;
        assert_eq!(adm.admit(soon, s(4), addr(4), 3, 2), Err(Refusal::Total(3)));
        // Exchange 1 got its peer's second message; 2 is now the oldest unproven one.
        adm.proven(s(1));
        let later = t + UNPROVEN_GRACE;
        assert_eq!(
            adm.admit(later, s(5), addr(5), 3, 2),
            Ok(Some((s(2), addr(2))))
        );
        // The caller ends the victim, which gives its room back.
        adm.release(s(2), addr(2));
        assert_eq!(
            adm.admit(later, s(6), addr(6), 3, 2),
            Ok(Some((s(3), addr(3))))
        );
        adm.release(s(3), addr(3));
        // 5 and 6 are new: their grace holds again.
        assert_eq!(
            adm.admit(later, s(7), addr(7), 3, 2),
            Err(Refusal::Total(3))
        );
        let c = adm.counters();
        assert_eq!((c.half_open, c.evicted, c.refused_total), (3, 2, 2));
        assert!(c.busy);
        // The proven exchange is still counted and was never chosen.
        assert_eq!(adm.by_address.get(&addr(1)), Some(&1));
    }

    #[test]
    fn aggressive_mode_is_taken_at_its_rate() {
        let mut adm = Admission::default();
        let t = Instant::now();
        // A full bucket of 3, then one more every third of a second.
        for _ in 0..3 {
            assert_eq!(adm.admit_aggressive(t, 3), Ok(()));
        }
        assert_eq!(adm.admit_aggressive(t, 3), Err(Refusal::AggressiveRate(3)));
        assert_eq!(
            adm.admit_aggressive(t + Duration::from_millis(200), 3),
            Err(Refusal::AggressiveRate(3))
        );
        assert_eq!(
            adm.admit_aggressive(t + Duration::from_millis(340), 3),
            Ok(())
        );
        assert_eq!(adm.counters().refused_aggressive, 2);
    }

    #[test]
    fn refusals_are_logged_once_a_second_with_the_count_between() {
        let mut adm = Admission::default();
        let t = Instant::now();
        assert_eq!(adm.log_now(t), Some(0));
        assert_eq!(adm.log_now(t + Duration::from_millis(10)), None);
        assert_eq!(adm.log_now(t + Duration::from_millis(20)), None);
        assert_eq!(adm.log_now(t + Duration::from_secs(1)), Some(2));
    }
}
