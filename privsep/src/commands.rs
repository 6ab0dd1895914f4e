//! FIFO commands. The parent reads and parses the FIFO (root's channel); `route` says who
//! carries each command out: the parent (the configuration, reload, shutdown, capture,
//! debug levels, the files reports go to) or the child (everything that acts on the
//! negotiations, forwarded as typed `Negotiation`s, which `execute` runs on the engine).

use crate::cmdline::DebugClass;
use crate::driver::Driver;
use crate::log;
use crate::proto::{Negotiation, ReportKind};
use fifo::{Command, ConfigOp, DebugSetting, Mode, PacketCapture};
use ike::codec::Cookie;
use std::time::Instant;

/// Who carries out a FIFO command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// `C ...`: a configuration transaction on the parent's database.
    Config(ConfigOp),
    /// `R`
    Reload,
    /// `Q`
    Quit,
    /// `D ...`: the parent's levels, then the child's.
    Debug(DebugSetting),
    /// `r`, `S`: the child renders, the parent writes the file.
    Report(ReportKind),
    /// `p on[=path]`, `p off`: the parent opens or closes the capture file.
    Capture(PacketCapture),
    /// For the child's engine.
    Negotiation(Negotiation),
    Nothing,
}

pub fn route(cmd: Command) -> Routed {
    match cmd {
        Command::Empty => Routed::Nothing,
        Command::Config(op) => Routed::Config(op),
        Command::Reload => Routed::Reload,
        Command::Quit => Routed::Quit,
        Command::Debug(d) => Routed::Debug(d),
        Command::Report => Routed::Report(ReportKind::State),
        Command::ReportSas => Routed::Report(ReportKind::Sas),
        Command::PacketCapture(p) => Routed::Capture(p),
        Command::Connect(name) => Routed::Negotiation(Negotiation::Connect(name)),
        Command::Teardown { phase, name } => {
            Routed::Negotiation(Negotiation::Teardown { phase, name })
        }
        Command::TeardownAll => Routed::Negotiation(Negotiation::TeardownAll),
        Command::DeleteSa {
            icookie,
            rcookie,
            msgid,
        } => Routed::Negotiation(Negotiation::DeleteSa {
            icookie,
            rcookie,
            msgid,
        }),
        Command::Mode(m) => Routed::Negotiation(Negotiation::Mode(m)),
    }
}

/// Tags whose values are secrets: never logged, whatever the debug level.
fn secret_tag(tag: &str) -> bool {
    tag.eq_ignore_ascii_case("Authentication")
}

/// The command as a log line, with secret values replaced.
pub fn redacted(cmd: &Command) -> String {
    let hide = |tag: &str, value: &str| {
        if secret_tag(tag) {
            "<secret>".to_string()
        } else {
            value.to_string()
        }
    };
    let cmd = match cmd {
        Command::Config(ConfigOp::Set {
            section,
            tag,
            value,
            force,
        }) => Command::Config(ConfigOp::Set {
            section: section.clone(),
            tag: tag.clone(),
            value: hide(tag, value),
            force: *force,
        }),
        Command::Config(ConfigOp::Add {
            section,
            tag,
            value,
        }) => Command::Config(ConfigOp::Add {
            section: section.clone(),
            tag: tag.clone(),
            value: hide(tag, value),
        }),
        Command::Config(ConfigOp::Rmv {
            section,
            tag,
            value,
        }) => Command::Config(ConfigOp::Rmv {
            section: section.clone(),
            tag: tag.clone(),
            value: hide(tag, value),
        }),
        other => other.clone(),
    };
    cmd.to_string()
}

/// Apply a debug setting to this process's log.
pub fn apply_debug(setting: DebugSetting) {
    match setting {
        DebugSetting::Class { class, level } => {
            if let Some(c) = DebugClass::ALL.get(usize::from(class)) {
                log::set_debug_level(*c, level);
            }
        }
        DebugSetting::All { level } => {
            for c in DebugClass::ALL {
                log::set_debug_level(c, level);
            }
        }
        DebugSetting::Toggle => log::toggle_debug(),
    }
}

/// Carry out a negotiation command in the child.
pub fn execute(cmd: Negotiation, d: &mut Driver) {
    let now = Instant::now();
    let outcome: Result<(), ike::engine::CommandError> = match &cmd {
        Negotiation::Connect(name) => d.engine.initiate(now, name),
        Negotiation::DeleteSa {
            icookie,
            rcookie,
            msgid,
        } => d
            .engine
            .delete_by_cookies(now, Cookie(*icookie), Cookie(*rcookie), *msgid),
        Negotiation::Mode(Mode::Passive) => {
            d.engine.set_passive(true);
            log::notice("passive mode: not initiating, not answering");
            Ok(())
        }
        Negotiation::Mode(Mode::Active) => {
            d.engine.set_passive(false);
            log::notice("active mode");
            d.engine.start_active(now);
            Ok(())
        }
        Negotiation::Teardown { name, .. } => d.engine.teardown(now, name),
        Negotiation::TeardownAll => {
            d.engine.teardown_all(now);
            Ok(())
        }
    };
    if let Err(e) = outcome {
        log::warning(&format!("fifo: {cmd:?}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_a_log_line() {
        for line in [
            "C set [peer-west]:Authentication=hunter2-very-secret force",
            "C add [peer-west]:authentication=hunter2-very-secret",
            "C rmv [peer-west]:AUTHENTICATION=hunter2-very-secret",
        ] {
            let cmd = fifo::parse_line(line).expect("parses");
            let shown = redacted(&cmd);
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("<secret>"), "{shown}");
        }
        let cmd = fifo::parse_line("C set [General]:Retransmits=7").expect("parses");
        assert_eq!(redacted(&cmd), "C set [General]:Retransmits=7");
    }

    #[test]
    fn only_negotiation_commands_go_to_the_child() {
        let to_child = |l: &str| {
            matches!(
                route(fifo::parse_line(l).expect("parses")),
                Routed::Negotiation(_)
            )
        };
        for l in [
            "c conn",
            "t conn",
            "t main conn",
            "T",
            "M active",
            "M passive",
            "d 00112233445566778899aabbccddeeff -",
        ] {
            assert!(to_child(l), "{l}");
        }
        for l in [
            "C set [General]:Updown=/bin/sh",
            "C get [General]:x",
            "R",
            "Q",
            "p on=/var/run/x",
            "p off",
            "D A 99",
            "r",
            "S",
        ] {
            assert!(!to_child(l), "{l}");
        }
    }
}
