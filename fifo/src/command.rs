//! The typed commands and their canonical text form.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One line read from the FIFO, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// An empty or blank line. isakmpd does nothing for it; [`crate::LineReader`] drops it.
    Empty,
    /// `C ...`: one configuration operation, run as its own transaction.
    Config(ConfigOp),
    /// `c name`: start the named (phase 2) connection.
    Connect(String),
    /// `D ...`: change debug levels.
    Debug(DebugSetting),
    /// `d cookies msgid`: delete one SA, found by its ISAKMP cookies and, for a phase 2 SA,
    /// its message id (`-` on the line, `None` here, selects the phase 1 SA).
    DeleteSa {
        icookie: [u8; 8],
        rcookie: [u8; 8],
        msgid: Option<u32>,
    },
    /// `M active` / `M passive`.
    Mode(Mode),
    /// `p on[=path]` / `p off`: packet capture.
    PacketCapture(PacketCapture),
    /// `Q`: shut down, as on SIGTERM.
    Quit,
    /// `R`: reload the configuration, as on SIGHUP (voids FIFO configuration changes).
    Reload,
    /// `r`: report internal state, as on SIGUSR1.
    Report,
    /// `S`: write all SA information to the result file (/var/run/isakmpd.result).
    ReportSas,
    /// `t [main|quick] name`: tear down the named connection, or the SAs of the peer
    /// when `name` is an address. `phase: None` is the plain `t name` form, which isakmpd
    /// treats as phase 2.
    Teardown { phase: Option<Phase>, name: String },
    /// `T`: tear down all phase 2 (quick mode) SAs.
    TeardownAll,
}

/// The operations of `C`. Names and values are trimmed; see the crate documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    /// `C set [section]:tag=value [force]`
    Set {
        section: String,
        tag: String,
        value: String,
        force: bool,
    },
    /// `C add [section]:tag=value`: append to a list unless already present.
    Add {
        section: String,
        tag: String,
        value: String,
    },
    /// `C rmv [section]:tag=value`: remove an element from a list.
    Rmv {
        section: String,
        tag: String,
        value: String,
    },
    /// `C rm [section]:tag`
    Rm { section: String, tag: String },
    /// `C rms [section]`
    Rms { section: String },
    /// `C get [section]:tag`: write the value to the result file.
    Get { section: String, tag: String },
}

/// The `D` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebugSetting {
    /// `D class level`: class 0-9, level 0-99.
    Class { class: u8, level: u8 },
    /// `D A level`: every class.
    All { level: u8 },
    /// `D T`: set every class to 0, or back to the earlier levels.
    Toggle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Active,
    Passive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PacketCapture {
    /// `p on` (default file) or `p on=path`. The path is not checked here; the daemon
    /// enforces that it lies under /var/run.
    On(Option<PathBuf>),
    /// `p off`
    Off,
}

/// The phase word of `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// `main`
    Phase1,
    /// `quick`
    Phase2,
}

fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// The canonical line (without newline) for a command; for every command `parse_line`
/// returns, parsing this text gives the same command back.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Empty => Ok(()),
            Command::Config(op) => write!(f, "C {op}"),
            Command::Connect(name) => write!(f, "c {name}"),
            Command::Debug(d) => write!(f, "D {d}"),
            Command::DeleteSa {
                icookie,
                rcookie,
                msgid,
            } => {
                f.write_str("d ")?;
                hex(f, icookie)?;
                hex(f, rcookie)?;
                match msgid {
                    Some(m) => write!(f, " {m:08x}"),
                    None => f.write_str(" -"),
                }
            }
            Command::Mode(Mode::Active) => f.write_str("M active"),
            Command::Mode(Mode::Passive) => f.write_str("M passive"),
            Command::PacketCapture(PacketCapture::On(None)) => f.write_str("p on"),
            Command::PacketCapture(PacketCapture::On(Some(p))) => {
                write!(f, "p on={}", p.display())
            }
            Command::PacketCapture(PacketCapture::Off) => f.write_str("p off"),
            Command::Quit => f.write_str("Q"),
            Command::Reload => f.write_str("R"),
            Command::Report => f.write_str("r"),
            Command::ReportSas => f.write_str("S"),
            Command::Teardown { phase, name } => match phase {
                None => write!(f, "t {name}"),
                Some(Phase::Phase1) => write!(f, "t main {name}"),
                Some(Phase::Phase2) => write!(f, "t quick {name}"),
            },
            Command::TeardownAll => f.write_str("T"),
        }
    }
}

impl fmt::Display for ConfigOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOp::Set {
                section,
                tag,
                value,
                force,
            } => {
                write!(f, "set [{section}]:{tag}={value}")?;
                if *force {
                    f.write_str(" force")?;
                }
                Ok(())
            }
            ConfigOp::Add {
                section,
                tag,
                value,
            } => write!(f, "add [{section}]:{tag}={value}"),
            ConfigOp::Rmv {
                section,
                tag,
                value,
            } => write!(f, "rmv [{section}]:{tag}={value}"),
            ConfigOp::Rm { section, tag } => write!(f, "rm [{section}]:{tag}"),
            ConfigOp::Rms { section } => write!(f, "rms [{section}]"),
            ConfigOp::Get { section, tag } => write!(f, "get [{section}]:{tag}"),
        }
    }
}

impl fmt::Display for DebugSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebugSetting::Class { class, level } => write!(f, "{class} {level}"),
            DebugSetting::All { level } => write!(f, "A {level}"),
            DebugSetting::Toggle => f.write_str("T"),
        }
    }
}
