//! Why a line was refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::MAX_LINE;

/// Longest excerpt of the offending text quoted in a message.
const QUOTE_MAX: usize = 64;

/// A refused line. `Display` names the reason and quotes the offending part (escaped and
/// cut at 64 characters, so a hostile line cannot flood or forge log lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FifoError {
    /// The line, without its terminator, is longer than [`MAX_LINE`] bytes.
    LineTooLong,
    /// The line is not UTF-8; `valid_up_to` is the offset of the first bad byte.
    InvalidUtf8 { valid_up_to: usize },
    /// A control character (anything but space and tab between words) at byte `offset`.
    ControlCharacter { offset: usize, ch: char },
    /// The first word is not one of isakmpd's one-letter commands.
    UnknownCommand(String),
    /// A known command with bad arguments: `"<command>: <reason>"`.
    Invalid { command: char, reason: String },
}

impl FifoError {
    pub(crate) fn invalid(command: char, reason: impl Into<String>) -> Self {
        FifoError::Invalid {
            command,
            reason: reason.into(),
        }
    }

    /// The command letter, when the line had a known one.
    pub fn command(&self) -> Option<char> {
        match self {
            FifoError::Invalid { command, .. } => Some(*command),
            _ => None,
        }
    }
}

/// `s` in double quotes, escaped, cut to [`QUOTE_MAX`] characters.
pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", excerpt(s))
}

/// `s` escaped (as in a Rust string literal, minus quotes), cut to [`QUOTE_MAX`] characters.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(QUOTE_MAX)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(QUOTE_MAX).is_some() {
        out.push_str("...");
    }
    out
}

impl fmt::Display for FifoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FifoError::LineTooLong => write!(f, "line too long (limit {MAX_LINE} bytes)"),
            FifoError::InvalidUtf8 { valid_up_to } => {
                write!(
                    f,
                    "line is not valid UTF-8 (bad byte at offset {valid_up_to})"
                )
            }
            FifoError::ControlCharacter { offset, ch } => write!(
                f,
                "control character U+{:04X} at byte {offset}",
                u32::from(*ch)
            ),
            FifoError::UnknownCommand(word) => write!(f, "unknown command '{}'", excerpt(word)),
            FifoError::Invalid { command, reason } => write!(f, "{command}: {reason}"),
        }
    }
}

impl std::error::Error for FifoError {}
