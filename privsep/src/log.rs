//! Logging: syslog (facility daemon) or stderr with `-d`. Errors and warnings always;
//! informational messages with `-v`; debug messages by class and level (`-D class=level`).
//!
//! Syslog is our own client of /dev/log (datagrams in the format of RFC 3164 without a
//! timestamp, which syslogd and journald add), not libc's: libc reconnects with `socket`
//! and `connect` after an error, and the confined processes' seccomp filters kill a
//! process for those. The socket is opened at `init`, before the chroot; only the parent
//! reconnects after an error.
//!
//! Lines whose number someone else controls go through `limited`, which rate-limits them
//! per kind and later says how many were left out.

use crate::cmdline::DebugClass;
use crate::ratelimit::{RateLimiter, Verdict};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

/// Longest message logged; longer ones are cut (a peer's offer of thousands of transforms
/// must not become one enormous line).
pub const MAX_MESSAGE: usize = 2048;
const SYSLOG_PATH: &str = "/dev/log";
const LOG_DAEMON: u8 = 3 << 3;

/// A function that takes each formatted log line.
pub type SinkFn = std::sync::Arc<dyn Fn(Level, &str) + Send + Sync>;

/// Where log lines go.
#[derive(Clone)]
pub enum Target {
    Stderr,
    Syslog,
    /// A function of the embedding program (each formatted line, as written to stderr).
    Sink(SinkFn),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Stderr => "Stderr",
            Target::Syslog => "Syslog",
            Target::Sink(_) => "Sink",
        })
    }
}

/// The syslog socket, and whether this process may open it again after an error.
struct Syslog {
    socket: Option<UnixDatagram>,
    reconnect: bool,
}

static SYSLOG: Mutex<Syslog> = Mutex::new(Syslog {
    socket: None,
    reconnect: true,
});

static LIMITER: Mutex<Option<RateLimiter>> = Mutex::new(None);

fn syslog_connect() -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect(SYSLOG_PATH).ok()?;
    Some(s)
}

fn syslog_send(prio: u8, msg: &str) {
    let Ok(mut g) = SYSLOG.lock() else { return };
    let line = format!(
        "<{}>isakmpd[{}]: {msg}",
        LOG_DAEMON | prio,
        std::process::id()
    );
    if let Some(s) = &g.socket {
        if s.send(line.as_bytes()).is_ok() {
            return;
        }
    }
    if g.reconnect {
        g.socket = syslog_connect();
        if let Some(s) = &g.socket {
            let _ = s.send(line.as_bytes());
        }
    }
}

/// From now on never open the syslog socket again (call before a seccomp filter that
/// forbids `socket`): lines that cannot be sent are lost, not fatal.
pub fn confine() {
    if let Ok(mut g) = SYSLOG.lock() {
        g.reconnect = false;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
    /// Worth an operator's attention but not wrong: always logged.
    Notice,
    Info,
    Debug,
}

struct State {
    target: Target,
    verbose: bool,
    levels: [u8; 10],
    /// The levels `D T` switched off, to switch back on.
    saved: Option<[u8; 10]>,
}

static STATE: RwLock<State> = RwLock::new(State {
    target: Target::Stderr,
    verbose: false,
    levels: [0; 10],
    saved: None,
});

/// Set where and how much to log. With `Target::Syslog` the connection is opened at once,
/// so it keeps working after a chroot.
pub fn init(target: Target, verbose: bool, debug: &[(DebugClass, u8)]) {
    if matches!(target, Target::Syslog) {
        if let Ok(mut g) = SYSLOG.lock() {
            g.socket = syslog_connect();
        }
    }
    let mut levels = [0u8; 10];
    for (c, l) in debug {
        levels[*c as usize] = *l;
    }
    if let Ok(mut s) = STATE.write() {
        *s = State {
            target,
            verbose,
            levels,
            saved: None,
        };
    }
    // A panic is a bug; the engine contains the ones in its handlers (the datagram is
    // dropped), but where it happened must reach the log, not a closed stderr.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        error(&format!("panic{at}: {what}"));
    }));
}

/// Change one class's level (FIFO `D class level`).
pub fn set_debug_level(class: DebugClass, level: u8) {
    if let Ok(mut s) = STATE.write() {
        s.levels[class as usize] = level;
    }
}

/// `D T`: every class to 0, or back to the levels it had before.
pub fn toggle_debug() {
    if let Ok(mut s) = STATE.write() {
        match s.saved.take() {
            Some(levels) => s.levels = levels,
            None => {
                s.saved = Some(s.levels);
                s.levels = [0; 10];
            }
        }
    }
}

/// Would `debug(class, level, ..)` be logged?
pub fn debug_enabled(class: DebugClass, level: u8) -> bool {
    STATE
        .read()
        .map(|s| level > 0 && s.levels[class as usize] >= level)
        .unwrap_or(false)
}

/// Whether `Level::Info` messages (`-v`) are logged.
pub fn verbose() -> bool {
    STATE.read().map(|s| s.verbose).unwrap_or(false)
}

/// The line written for a message, as it appears on stderr.
pub fn format_line(level: Level, msg: &str) -> String {
    let tag = match level {
        Level::Error => "error: ",
        Level::Warning => "warning: ",
        Level::Notice | Level::Info | Level::Debug => "",
    };
    format!("isakmpd[{}]: {tag}{msg}", std::process::id())
}

/// `msg` cut to [`MAX_MESSAGE`] bytes (on a character boundary), NULs and newlines shown
/// as escapes so that one message stays one line.
fn bounded(msg: &str) -> std::borrow::Cow<'_, str> {
    let needs_escape = msg.bytes().any(|b| b == 0 || b == b'\n');
    if msg.len() <= MAX_MESSAGE && !needs_escape {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut cut = msg.len().min(MAX_MESSAGE);
    while !msg.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = msg[..cut].replace('\0', "\\0").replace('\n', "\\n");
    if cut < msg.len() {
        out.push_str(&format!("... ({} bytes more)", msg.len() - cut));
    }
    std::borrow::Cow::Owned(out)
}

pub fn log(level: Level, msg: &str) {
    let Ok(s) = STATE.read() else { return };
    if level == Level::Info && !s.verbose {
        return;
    }
    let msg = bounded(msg);
    match &s.target {
        Target::Stderr => {
            // One write per line, so the parent's and the child's lines never interleave.
            let mut line = format_line(level, &msg);
            line.push('\n');
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        Target::Syslog => {
            let prio = match level {
                Level::Error => 3,
                Level::Warning => 4,
                Level::Notice => 5,
                Level::Info => 6,
                Level::Debug => 7,
            };
            syslog_send(prio, &msg);
        }
        Target::Sink(f) => f(level, &format_line(level, &msg)),
    }
}

/// Log `msg` at `level`, rate-limited per `kind` (see [`crate::ratelimit`]): for lines an
/// attacker can make many of.
pub fn limited(kind: &str, level: Level, msg: &str) {
    let verdict = match LIMITER.lock() {
        Ok(mut l) => l
            .get_or_insert_with(RateLimiter::default)
            .check(kind, Instant::now()),
        Err(_) => return,
    };
    if let Verdict::Log { suppressed } = verdict {
        if suppressed > 0 {
            log(level, &crate::ratelimit::summary(kind, suppressed));
        }
        log(level, msg);
    }
}

/// Say how many lines each quiet kind had left out (call now and then).
pub fn limited_summaries() {
    let done = match LIMITER.lock() {
        Ok(mut l) => match l.as_mut() {
            Some(l) => l.summaries(Instant::now()),
            None => return,
        },
        Err(_) => return,
    };
    for (kind, n) in done {
        log(Level::Warning, &crate::ratelimit::summary(&kind, n));
    }
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}

pub fn warning(msg: &str) {
    log(Level::Warning, msg)
}

pub fn notice(msg: &str) {
    log(Level::Notice, msg)
}

pub fn info(msg: &str) {
    log(Level::Info, msg)
}

/// Log at debug `level` (1-99) of `class` when `-D class=level` asked for at least that.
pub fn debug(class: DebugClass, level: u8, msg: &str) {
    if debug_enabled(class, level) {
        log(Level::Debug, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_multiline_messages_stay_one_bounded_line() {
        let long = "x".repeat(10 * MAX_MESSAGE);
        let b = bounded(&long);
        assert!(b.len() < MAX_MESSAGE + 40, "{}", b.len());
        assert!(b.ends_with(&format!("... ({} bytes more)", 9 * MAX_MESSAGE)));
        assert_eq!(bounded("a\nb\0c"), "a\\nb\\0c");
        assert_eq!(bounded("plain"), "plain");
        // A cut never splits a character.
        let wide = "é".repeat(MAX_MESSAGE);
        assert!(bounded(&wide).starts_with('é'));
    }

    #[test]
    fn debug_classes_and_verbosity() {
        init(
            Target::Stderr,
            false,
            &[(DebugClass::Transport, 50), (DebugClass::Crypto, 10)],
        );
        assert!(debug_enabled(DebugClass::Transport, 50));
        assert!(debug_enabled(DebugClass::Transport, 1));
        assert!(!debug_enabled(DebugClass::Transport, 51));
        assert!(!debug_enabled(DebugClass::Misc, 1));
        assert!(!debug_enabled(DebugClass::Misc, 0));
        set_debug_level(DebugClass::Misc, 3);
        assert!(debug_enabled(DebugClass::Misc, 3));
        assert!(!verbose());
        init(Target::Stderr, true, &[]);
        assert!(verbose());
        assert!(!debug_enabled(DebugClass::Transport, 1));
        let line = format_line(Level::Error, "boom");
        assert!(line.starts_with("isakmpd[") && line.ends_with("]: error: boom"));
    }
}
