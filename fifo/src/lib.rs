//! The FIFO command language of isakmpd(8): one line written to the FIFO becomes a typed
//! [`Command`], or a [`FifoError`] saying what is wrong with which part. This crate only
//! parses; the daemon executes (the `C` operations map onto `ike::conf::Conf`'s
//! `begin`/`set`/`add`/`rmv`/`remove`/`remove_section`/`end`, one transaction per line).
//!
//! # Commands
//!
//! | line | [`Command`] |
//! |---|---|
//! | `C set [section]:tag=value [force]` | `Config(ConfigOp::Set { .. })` |
//! | `C add [section]:tag=value` | `Config(ConfigOp::Add { .. })` |
//! | `C rmv [section]:tag=value` | `Config(ConfigOp::Rmv { .. })` |
//! | `C rm [section]:tag` | `Config(ConfigOp::Rm { .. })` |
//! | `C rms [section]` | `Config(ConfigOp::Rms { .. })` |
//! | `C get [section]:tag` | `Config(ConfigOp::Get { .. })` |
//! | `c name` | `Connect(name)` |
//! | `D class level` / `D A level` / `D T` | `Debug(DebugSetting::{Class, All, Toggle})` |
//! | `d cookies msgid` | `DeleteSa { icookie, rcookie, msgid }` |
//! | `M active` / `M passive` | `Mode(Mode::{Active, Passive})` |
//! | `p on` / `p on=path` / `p off` | `PacketCapture(PacketCapture::{On(None), On(Some(path)), Off})` |
//! | `Q` / `R` / `r` / `S` / `T` | `Quit` / `Reload` / `Report` / `ReportSas` / `TeardownAll` |
//! | `t [main\|quick] name` | `Teardown { phase, name }` |
//! | blank line | `Empty` |
//!
//! # Lexical rules
//!
//! - A trailing `\n` or `\r\n` is removed; the rest must be at most [`MAX_LINE`] bytes,
//!   and contain no control character except tab.
//! - Words are separated by runs of spaces and tabs; blanks around the line are ignored.
//! - The command is exactly one letter followed by a blank or the end of the line
//!   (`Cset` is `unknown command 'Cset'`). Letters are case-sensitive, as in isakmpd.
//! - Commands without arguments (`Q R r S T`) refuse any argument; commands with a fixed
//!   number of words refuse extra words (isakmpd silently ignores most of them).
//!
//! # `C` details
//!
//! - The subcommand is case-insensitive (as isakmpd's `strcasecmp`).
//! - `[section]`: everything up to the first `]`, blanks around it trimmed; it may contain
//!   spaces and `:`; not empty, at most [`MAX_NAME`] bytes. `:` must follow the `]`
//!   directly (except for `rms`, which takes nothing after the `]`).
//! - `tag`: up to the first `=` (for `rm`/`get`: the one word after the `:`), blanks around
//!   it trimmed; no whitespace, `=` or `]`, not starting with `#`, `;` or `[`, at most
//!   [`MAX_NAME`] bytes. It may contain `:` (IPv6 peer tags in `[Phase 1]`).
//! - `value`: everything after the first `=` to the end of the line, blanks at both ends
//!   trimmed, inner spaces kept as written (so `a b  c` stays `a b  c`); must not be empty.
//!   For `set`, a last word `force` (any case) after a blank is the force flag, so a value
//!   cannot itself end in the word ` force`. For `add`/`rmv` a trailing ` force` is an
//!   error, and the value must be one list element (no `,`).
//!
//! # Other arguments
//!
//! - `c name`, `t [main|quick] name`: one word, at most [`MAX_NAME`] bytes. `t main` alone
//!   tears down the connection *named* `main` (as isakmpd). `phase: None` is isakmpd's
//!   default, phase 2.
//! - `D`: class 0-[`MAX_DEBUG_CLASS`] (decimal), `A` for all classes, level
//!   0-[`MAX_DEBUG_LEVEL`]; `D T` toggles.
//! - `d`: the two cookies as one word of exactly 32 hex digits (initiator's first), then
//!   the message id as exactly 8 hex digits, or `-` for the phase 1 SA (`msgid: None`).
//!   The message id is required, as in isakmpd. Hex digits may be either case.
//! - `M`: exactly `active` or `passive`.
//! - `p`: `on`, `off` or `on=path` (case-insensitive keyword, path one word of at most
//!   [`MAX_PATH`] bytes; whether it lies under /var/run is the daemon's check).
//!
//! [`LineReader`] turns the FIFO's byte stream into these results; see its documentation
//! for partial lines, CRLF, invalid UTF-8 and over-long lines.
//!
//! ```
//! use fifo::{parse_line, Command, ConfigOp, LineReader};
//!
//! assert_eq!(
//!     parse_line("C set [Phase 1]:Retransmits=3 force"),
//!     Ok(Command::Config(ConfigOp::Set {
//!         section: "Phase 1".into(),
//!         tag: "Retransmits".into(),
//!         value: "3".into(),
//!         force: true,
//!     }))
//! );
//! let err = parse_line("D 12 5").unwrap_err();
//! assert_eq!(err.to_string(), "D: class 12 out of range 0-9");
//!
//! let mut reader = LineReader::new();
//! assert!(reader.push(b"c IPsec-ea").is_empty());
//! assert_eq!(
//!     reader.push(b"st-west\r\nQ\n"),
//!     vec![Ok(Command::Connect("IPsec-east-west".into())), Ok(Command::Quit)]
//! );
//! // On EOF of the FIFO's writer, drop what it left unterminated.
//! reader.push(b"R");
//! assert_eq!(reader.reset(), 1);
//! ```

mod command;
mod error;
mod parse;
mod reader;

pub use command::{Command, ConfigOp, DebugSetting, Mode, PacketCapture, Phase};
pub use error::FifoError;
pub use parse::{parse_bytes, parse_line};
pub use reader::LineReader;

/// Longest line accepted, in bytes, not counting the `\n` or `\r\n` terminator.
pub const MAX_LINE: usize = 4096;
/// Longest section, tag or connection name, in bytes (isakmpd reads them with `%200s`).
pub const MAX_NAME: usize = 200;
/// Longest path for `p on=path`, in bytes.
pub const MAX_PATH: usize = 1024;
/// Highest debug class (isakmpd(8) documents classes 0 to 9, plus `A`).
pub const MAX_DEBUG_CLASS: u8 = 9;
/// Highest debug level (isakmpd(8): "currently used values for level are 0 to 99").
pub const MAX_DEBUG_LEVEL: u8 = 99;
