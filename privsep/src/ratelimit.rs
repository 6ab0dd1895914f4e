//! Rate limits for log lines whose number someone else controls (a hostile child's
//! requests, a flood of packets): per kind, a burst of lines per interval, then silence,
//! then one summary line ("N similar messages suppressed") when the kind speaks again or
//! at the next `summaries`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lines of one kind allowed per interval.
pub const BURST: u32 = 10;
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Kinds tracked at once; the longest quiet one is forgotten first when more arrive.
pub const MAX_KINDS: usize = 4096;

#[derive(Debug)]
struct Bucket {
    start: Instant,
    used: u32,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; first say that `suppressed` lines of its kind were left out before it.
    Log { suppressed: u64 },
    /// Leave it out (counted).
    Suppress,
}

#[derive(Debug)]
pub struct RateLimiter {
    burst: u32,
    interval: Duration,
    kinds: HashMap<String, Bucket>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(BURST, INTERVAL)
    }
}

impl RateLimiter {
    pub fn new(burst: u32, interval: Duration) -> RateLimiter {
        RateLimiter {
            burst: burst.max(1),
            interval,
            kinds: HashMap::new(),
        }
    }

    /// Whether a line of `kind` may be logged at `now`.
    pub fn check(&mut self, kind: &str, now: Instant) -> Verdict {
        if !self.kinds.contains_key(kind) && self.kinds.len() >= MAX_KINDS {
            self.evict_oldest();
        }
        let b = self.kinds.entry(kind.to_string()).or_insert(Bucket {
            start: now,
            used: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(b.start) >= self.interval {
            b.start = now;
            b.used = 0;
        }
        if b.used < self.burst {
            b.used += 1;
            let suppressed = std::mem::take(&mut b.suppressed);
            Verdict::Log { suppressed }
        } else {
            b.suppressed += 1;
            Verdict::Suppress
        }
    }

    /// Kinds whose interval has passed with lines left out: (kind, how many), each said
    /// once. Call it now and then so that a flood that stops is still summed up.
    pub fn summaries(&mut self, now: Instant) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .kinds
            .iter_mut()
            .filter(|(_, b)| {
                b.suppressed > 0 && now.saturating_duration_since(b.start) >= self.interval
            })
            .map(|(k, b)| (k.clone(), std::mem::take(&mut b.suppressed)))
            .collect();
        out.sort();
        self.kinds.retain(|_, b| {
            b.suppressed > 0 || now.saturating_duration_since(b.start) < self.interval
        });
        out
    }

    fn evict_oldest(&mut self) {
        if let Some(k) = self
            .kinds
            .iter()
            .min_by_key(|(_, b)| b.start)
            .map(|(k, _)| k.clone())
        {
            self.kinds.remove(&k);
        }
    }
}

/// The summary line for `n` left-out lines of `kind`.
pub fn summary(kind: &str, n: u64) -> String {
    format!("{n} similar messages suppressed ({kind})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_silence_then_a_summary() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(r.check("k", t0), Verdict::Log { suppressed: 0 });
        }
        for _ in 0..5 {
            assert_eq!(r.check("k", t0), Verdict::Suppress);
        }
        // Another kind has its own budget.
        assert_eq!(r.check("other", t0), Verdict::Log { suppressed: 0 });
        // Within the interval nothing is summed up yet.
        assert!(r.summaries(t0 + Duration::from_secs(5)).is_empty());
        // The next interval: the first line says what was left out.
        assert_eq!(
            r.check("k", t0 + Duration::from_secs(10)),
            Verdict::Log { suppressed: 5 }
        );
        for _ in 0..4 {
            r.check("k", t0 + Duration::from_secs(11));
        }
        // A flood that stops is summed up by `summaries`, once.
        let later = t0 + Duration::from_secs(30);
        assert_eq!(r.summaries(later), vec![("k".to_string(), 2)]);
        assert!(r.summaries(later).is_empty());
        assert_eq!(summary("k", 2), "2 similar messages suppressed (k)");
    }

    #[test]
    fn the_number_of_kinds_is_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1, Duration::from_secs(10));
        for i in 0..MAX_KINDS + 100 {
            r.check(&format!("kind {i}"), t0 + Duration::from_millis(i as u64));
        }
        assert!(r.kinds.len() <= MAX_KINDS);
        // The newest survive.
        assert!(r.kinds.contains_key(&format!("kind {}", MAX_KINDS + 99)));
    }
}
