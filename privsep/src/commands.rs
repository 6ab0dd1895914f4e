//! FIFO commands, carried out in the child: those that concern the negotiations act on the
//! engine here; those only the parent may do (the configuration, which holds secrets;
//! reload; shutdown; files) become typed requests to it.

use crate::cmdline::DebugClass;
use crate::driver::Driver;
use crate::log;
use crate::proto::{ParentCommand, ToParent};
use fifo::{Command, DebugSetting, Mode};
use ike::codec::Cookie;
use std::time::Instant;

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

/// Carry out `cmd`; returns what the parent must do, if anything.
pub fn execute(cmd: Command, d: &mut Driver) -> Option<ToParent> {
    let now = Instant::now();
    let line = cmd.to_string();
    let outcome: Result<Option<ToParent>, String> = match cmd {
        Command::Empty => Ok(None),
        Command::Config(op) => Ok(Some(ToParent::Fifo(ParentCommand::Config(op)))),
        Command::Connect(name) => d.engine.initiate(now, &name).map(|()| None),
        Command::Debug(setting) => {
            apply_debug(setting);
            Ok(Some(ToParent::Fifo(ParentCommand::Debug(setting))))
        }
        Command::DeleteSa {
            icookie,
            rcookie,
            msgid,
        } => d
            .engine
            .delete_by_cookies(now, Cookie(icookie), Cookie(rcookie), msgid)
            .map(|()| None),
        Command::Mode(Mode::Passive) => {
            d.engine.set_passive(true);
            log::notice("passive mode: not initiating, not answering");
            Ok(None)
        }
        Command::Mode(Mode::Active) => {
            d.engine.set_passive(false);
            log::notice("active mode");
            d.engine.start_active(now);
            Ok(None)
        }
        Command::PacketCapture(p) => Ok(Some(ToParent::Fifo(ParentCommand::Capture(p)))),
        Command::Quit => Ok(Some(ToParent::Fifo(ParentCommand::Quit))),
        Command::Reload => Ok(Some(ToParent::Fifo(ParentCommand::Reload))),
        Command::Report => Ok(Some(ToParent::Report(d.report()))),
        Command::ReportSas => Ok(Some(ToParent::Fifo(ParentCommand::Result(d.report_sas())))),
        Command::Teardown { name, .. } => d.engine.teardown(now, &name).map(|()| None),
        Command::TeardownAll => {
            d.engine.teardown_all(now);
            Ok(None)
        }
    };
    match outcome {
        Ok(m) => {
            log::debug(DebugClass::Misc, 10, &format!("fifo: {line}"));
            m
        }
        Err(e) => {
            log::warning(&format!("fifo: {line}: {e}"));
            None
        }
    }
}
