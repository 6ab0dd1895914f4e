//! Rate limits for the log lines a peer's datagrams cause. A line's kind is the place in the
//! engine that logs it; each source address may cause a few lines of one kind per interval,
//! and refusals and errors of one kind are also limited across all sources, since a flood
//! from spoofed addresses has a new source for every packet. What is left out is counted and
//! said once the interval is over ("N similar messages suppressed"), with the first line
//! left out as a sample, so an operator still learns what happened and how often.
//!
//! Lines caused by timers, commands and the kernel are not limited: their number is ours.
//! Everything is driven by the engine's clock, so a simulated run stays deterministic.

use super::LogLevel;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::panic::Location;
use std::time::{Duration, Instant};

/// How long one window of counting lasts.
pub(super) const INTERVAL: Duration = Duration::from_secs(10);
/// Lines of one kind one source may cause per interval.
pub(super) const PER_SOURCE: u32 = 10;
/// Refusals and errors (Notice and above) of one kind per interval, over all sources.
pub(super) const PER_KIND: u32 = 100;
/// Source and kind pairs counted at once. When the table is full a new source is limited
/// only by its kind's total, which a flood reaches at once.
pub(super) const MAX_SOURCES: usize = 4096;
/// The longest sample kept of a suppressed line.
const SAMPLE: usize = 200;

/// Where in the engine a line is logged: file and line.
pub(super) type Kind = (&'static str, u32);

pub(super) fn kind_of(at: &'static Location<'static>) -> Kind {
    (at.file(), at.line())
}

#[derive(Debug)]
struct SourceWindow {
    start: Instant,
    used: u32,
}

#[derive(Debug)]
struct KindWindow {
    start: Instant,
    used: u32,
    suppressed: u64,
    level: LogLevel,
    sample: String,
}

impl KindWindow {
    fn summary(&self, now: Instant) -> (LogLevel, String) {
        let secs = now.saturating_duration_since(self.start).as_secs().max(1);
        (
            self.level,
            format!(
                "{} similar messages suppressed in the last {secs} s; the first: {}",
                self.suppressed, self.sample
            ),
        )
    }
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Log it, after the summary of what its kind left out in its last window, if anything.
    Log(Option<(LogLevel, String)>),
    /// Leave it out. The first line left out in a window asks for a summary at this time.
    Suppress(Option<Instant>),
}

#[derive(Debug, Default)]
pub(super) struct LogLimiter {
    by_source: BTreeMap<(IpAddr, Kind), SourceWindow>,
    by_kind: BTreeMap<Kind, KindWindow>,
    /// Expired source windows are swept at most once an interval when the table is full.
    last_sweep: Option<Instant>,
    /// Lines left out since the start, for the report.
    pub suppressed_total: u64,
}

impl LogLimiter {
    pub(super) fn check(
        &mut self,
        now: Instant,
        source: IpAddr,
        kind: Kind,
        level: LogLevel,
        message: &str,
    ) -> Verdict {
        let kw = self.by_kind.entry(kind).or_insert(KindWindow {
            start: now,
            used: 0,
            suppressed: 0,
            level,
            sample: String::new(),
        });
        let mut summary = None;
        if now.saturating_duration_since(kw.start) >= INTERVAL {
            if kw.suppressed > 0 {
                summary = Some(kw.summary(now));
            }
            kw.start = now;
            kw.used = 0;
            kw.suppressed = 0;
        }
        let kind_full = level <= LogLevel::Notice && kw.used >= PER_KIND;

        if !self.by_source.contains_key(&(source, kind)) && self.by_source.len() >= MAX_SOURCES {
            self.sweep(now);
        }
        let room = self.by_source.len() < MAX_SOURCES;
        let source_full = match self.by_source.get_mut(&(source, kind)) {
            Some(sw) => {
                if now.saturating_duration_since(sw.start) >= INTERVAL {
                    sw.start = now;
                    sw.used = 0;
                }
                sw.used >= PER_SOURCE
            }
            None => {
                if room {
                    self.by_source.insert(
                        (source, kind),
                        SourceWindow {
                            start: now,
                            used: 0,
                        },
                    );
                }
                false
            }
        };

        // `kw` was borrowed before the source table was touched; take it again.
        let Some(kw) = self.by_kind.get_mut(&kind) else {
            return Verdict::Log(summary);
        };
        if kind_full || source_full {
            self.suppressed_total += 1;
            kw.suppressed += 1;
            if kw.suppressed == 1 {
                kw.level = level;
                kw.sample = cut(message);
                return Verdict::Suppress(Some(kw.start + INTERVAL));
            }
            return Verdict::Suppress(None);
        }
        kw.used += 1;
        if let Some(sw) = self.by_source.get_mut(&(source, kind)) {
            sw.used += 1;
        }
        Verdict::Log(summary)
    }

    /// The summaries of every kind whose window with suppressed lines is over by `now`;
    /// those windows, and the expired source windows, are forgotten.
    pub(super) fn due(&mut self, now: Instant) -> Vec<(LogLevel, String)> {
        let mut out = Vec::new();
        self.by_kind.retain(|_, kw| {
            if now.saturating_duration_since(kw.start) < INTERVAL {
                return true;
            }
            if kw.suppressed > 0 {
                out.push(kw.summary(now));
            }
            false
        });
        self.by_source
            .retain(|_, sw| now.saturating_duration_since(sw.start) < INTERVAL);
        out
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.by_source
            .retain(|_, sw| now.saturating_duration_since(sw.start) < INTERVAL);
    }

    /// Source windows held (bounded by [`MAX_SOURCES`]).
    #[cfg(test)]
    fn sources(&self) -> usize {
        self.by_source.len()
    }
}

fn cut(message: &str) -> String {
    if message.len() <= SAMPLE {
        return message.to_string();
    }
    let mut end = SAMPLE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HERE: Kind = ("engine.rs", 1);
    const THERE: Kind = ("engine.rs", 2);

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn one_source_gets_its_burst_then_one_summary_after_the_interval() {
        let t = Instant::now();
        let mut l = LogLimiter::default();
        for i in 0..PER_SOURCE {
            assert_eq!(
                l.check(t, ip(1), HERE, LogLevel::Notice, &format!("line {i}")),
                Verdict::Log(None)
            );
        }
        assert_eq!(
            l.check(t, ip(1), HERE, LogLevel::Notice, "line 10"),
            Verdict::Suppress(Some(t + INTERVAL))
        );
        assert_eq!(
            l.check(t, ip(1), HERE, LogLevel::Notice, "line 11"),
            Verdict::Suppress(None)
        );
        // Another kind, and another source, are not held back by this one.
        assert_eq!(
            l.check(t, ip(1), THERE, LogLevel::Notice, "x"),
            Verdict::Log(None)
        );
        assert_eq!(
            l.check(t, ip(2), HERE, LogLevel::Notice, "y"),
            Verdict::Log(None)
        );
        assert!(l.due(t + INTERVAL / 2).is_empty());
        let due = l.due(t + INTERVAL);
        assert_eq!(
            due,
            vec![(
                LogLevel::Notice,
                "2 similar messages suppressed in the last 10 s; the first: line 10".to_string()
            )]
        );
        assert_eq!(l.suppressed_total, 2);
        // A new window: the source speaks again.
        assert_eq!(
            l.check(t + INTERVAL, ip(1), HERE, LogLevel::Notice, "again"),
            Verdict::Log(None)
        );
    }

    #[test]
    fn a_line_after_the_window_carries_the_summary_before_it() {
        let t = Instant::now();
        let mut l = LogLimiter::default();
        for _ in 0..=PER_SOURCE {
            l.check(t, ip(1), HERE, LogLevel::Warning, "w");
        }
        match l.check(t + INTERVAL, ip(1), HERE, LogLevel::Warning, "w") {
            Verdict::Log(Some((LogLevel::Warning, s))) => {
                assert!(s.starts_with("1 similar messages suppressed"), "{s}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spoofed_sources_are_held_by_the_kinds_total_and_the_table_stays_bounded() {
        let t = Instant::now();
        let mut l = LogLimiter::default();
        let mut logged = 0;
        for n in 0..20_000 {
            if let Verdict::Log(_) = l.check(t, ip(n), HERE, LogLevel::Notice, "spoof") {
                logged += 1;
            }
        }
        assert_eq!(logged, PER_KIND);
        assert!(l.sources() <= MAX_SOURCES);
        assert_eq!(l.suppressed_total, 20_000 - u64::from(PER_KIND));
    }

    #[test]
    fn progress_lines_are_limited_per_source_only() {
        // Thousands of clients establishing at once must all be logged.
        let t = Instant::now();
        let mut l = LogLimiter::default();
        for n in 0..1_000 {
            assert_eq!(
                l.check(t, ip(n), HERE, LogLevel::Info, "established"),
                Verdict::Log(None)
            );
        }
    }

    #[test]
    fn a_long_sample_is_cut_on_a_character_boundary() {
        let s = "é".repeat(300);
        let c = cut(&s);
        assert!(c.len() <= SAMPLE + 3);
        assert!(c.ends_with("..."));
    }
}
