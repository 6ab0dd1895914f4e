//! Admission control for responder phase-1 exchanges: how many are half-open (not yet
//! authenticated) in all and per source address, bounded by `Max-half-open` and
//! `Max-half-open-per-address`, so that a flood of first messages costs a bounded table
//! and no crypto beyond it. Counted as exchanges start and leave the half-open stage, so a
//! first message costs a map lookup, not a walk over every SA.

use super::context::Context;
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
    counters: AdmissionCounters,
    /// The last refusal logged and how many were not logged since (one line a second).
    last_logged: Option<Instant>,
    unlogged: u64,
    /// Aggressive Mode tokens in thousandths, and when they were last topped up.
    aggressive_tokens: u64,
    aggressive_at: Option<Instant>,
}

/// Refusals are logged at most this often; the rest are counted into the next line.
const LOG_EVERY: Duration = Duration::from_secs(1);

impl Admission {
    /// Admit a new half-open exchange from `from`, or say why not (and count it).
    pub(super) fn admit(
        &mut self,
        from: IpAddr,
        max_total: u32,
        max_per_address: u32,
    ) -> Result<(), Refusal> {
        if self.counters.half_open >= max_total {
            self.counters.refused_total += 1;
            return Err(Refusal::Total(max_total));
        }
        let n = self.by_address.entry(from).or_insert(0);
        if *n >= max_per_address {
            self.counters.refused_per_address += 1;
            return Err(Refusal::PerAddress(max_per_address));
        }
        *n += 1;
        self.counters.half_open += 1;
        Ok(())
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

    /// A half-open exchange from `from` authenticated or ended.
    pub(super) fn release(&mut self, from: IpAddr) {
        if let Some(n) = self.by_address.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_address.remove(&from);
            }
            self.counters.half_open = self.counters.half_open.saturating_sub(1);
        }
    }

    pub(super) fn counters(&self) -> AdmissionCounters {
        self.counters
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

/// Admit a responder's first message from `remote` under the `[General]` limits, or drop
/// it with a line (one a second, with the number suppressed since); true when admitted.
pub(super) fn admit_first_message(
    adm: &mut Admission,
    ctx: &mut Context,
    remote: SocketAddr,
    mode: Phase1Mode,
) -> bool {
    let general = &ctx.cfg.policy.general;
    let (max_total, max_per) = (general.max_half_open, general.max_half_open_per_address);
    let rate = general.aggressive_mode_rate;
    let admitted = match mode {
        Phase1Mode::Aggressive => adm.admit_aggressive(ctx.now, rate),
        Phase1Mode::Main => Ok(()),
    }
    .and_then(|()| adm.admit(remote.ip(), max_total, max_per));
    let Err(why) = admitted else {
        return true;
    };
    if let Some(unlogged) = adm.log_now(ctx.now) {
        let limit = match why {
            Refusal::Total(n) => format!("Max-half-open ({n})"),
            Refusal::PerAddress(n) => {
                format!("Max-half-open-per-address ({n}) for {}", remote.ip())
            }
            Refusal::AggressiveRate(n) => format!("Aggressive-mode-rate ({n} a second)"),
        };
        let more = if unlogged > 0 {
            format!("; {unlogged} similar messages suppressed")
        } else {
            String::new()
        };
        ctx.log(
            LogLevel::Notice,
            format!("first phase 1 message from {remote} dropped: {limit} reached{more}"),
        );
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_in_all_and_per_address_and_release_frees_room() {
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let mut adm = Admission::default();
        assert_eq!(adm.admit(a, 3, 2), Ok(()));
        assert_eq!(adm.admit(a, 3, 2), Ok(()));
        assert_eq!(adm.admit(a, 3, 2), Err(Refusal::PerAddress(2)));
        assert_eq!(adm.admit(b, 3, 2), Ok(()));
        assert_eq!(adm.admit(b, 3, 2), Err(Refusal::Total(3)));
        adm.release(a);
        assert_eq!(adm.admit(b, 3, 2), Ok(()));
        // A release for an address with nothing half-open changes nothing.
        adm.release(IpAddr::from([203, 0, 113, 1]));
        let c = adm.counters();
        assert_eq!(
            (c.half_open, c.refused_total, c.refused_per_address),
            (3, 1, 1)
        );
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
