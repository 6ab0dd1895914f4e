//! Logging: syslog (facility daemon) or stderr with `-d`. Errors and warnings always;
//! informational messages with `-v`; debug messages by class and level (`-D class=level`).

use crate::cmdline::DebugClass;
use std::io::Write;
use std::sync::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stderr,
    Syslog,
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
    if target == Target::Syslog {
        crate::sys::openlog_daemon();
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

pub fn log(level: Level, msg: &str) {
    let Ok(s) = STATE.read() else { return };
    if level == Level::Info && !s.verbose {
        return;
    }
    match s.target {
        Target::Stderr => {
            // One write per line, so the parent's and the child's lines never interleave.
            let mut line = format_line(level, msg);
            line.push('\n');
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        Target::Syslog => {
            let prio = match level {
                Level::Error => libc::LOG_ERR,
                Level::Warning => libc::LOG_WARNING,
                Level::Notice => libc::LOG_NOTICE,
                Level::Info => libc::LOG_INFO,
                Level::Debug => libc::LOG_DEBUG,
            };
            crate::sys::syslog(prio, msg);
        }
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
