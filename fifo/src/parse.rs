//! `parse_line`: one FIFO line to a [`Command`].

use std::path::PathBuf;

use crate::command::{Command, ConfigOp, DebugSetting, Mode, PacketCapture, Phase};
use crate::error::{excerpt, quote, FifoError};
use crate::{MAX_DEBUG_CLASS, MAX_DEBUG_LEVEL, MAX_LINE, MAX_NAME, MAX_PATH};

/// Word separators: space and tab (as isakmpd's sscanf, minus newlines).
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The first word of `s` (which starts with a non-blank) and the rest, leading blanks removed.
fn split_word(s: &str) -> (&str, &str) {
    match s.find(is_blank) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_blank)),
        None => (s, ""),
    }
}

fn words(s: &str) -> Vec<&str> {
    s.split(is_blank).filter(|w| !w.is_empty()).collect()
}

/// Parse one line as written to the FIFO.
///
/// A trailing `"\n"` or `"\r\n"` is removed first; the rest must be at most [`MAX_LINE`]
/// bytes and contain no control character other than tab. Blanks (space, tab) around the
/// line and between words are ignored. A blank line is `Ok(Command::Empty)`.
pub fn parse_line(line: &str) -> Result<Command, FifoError> {
    let line = match line.strip_suffix('\n') {
        Some(l) => l.strip_suffix('\r').unwrap_or(l),
        None => line,
    };
    if line.len() > MAX_LINE {
        return Err(FifoError::LineTooLong);
    }
    if let Some((offset, ch)) = line
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\t')
    {
        return Err(FifoError::ControlCharacter { offset, ch });
    }
    let line = line.trim_matches(is_blank);
    if line.is_empty() {
        return Ok(Command::Empty);
    }
    let (word, rest) = split_word(line);
    let mut chars = word.chars();
    let (Some(letter), None) = (chars.next(), chars.next()) else {
        return Err(FifoError::UnknownCommand(word.into()));
    };
    match letter {
        'C' => parse_config(rest).map(Command::Config),
        'c' => one_name('c', rest, "connection name").map(Command::Connect),
        'D' => parse_debug(rest).map(Command::Debug),
        'd' => parse_delete(rest),
        'M' => parse_mode(rest).map(Command::Mode),
        'p' => parse_packet(rest).map(Command::PacketCapture),
        'Q' => no_args('Q', rest, Command::Quit),
        'R' => no_args('R', rest, Command::Reload),
        'r' => no_args('r', rest, Command::Report),
        'S' => no_args('S', rest, Command::ReportSas),
        'T' => no_args('T', rest, Command::TeardownAll),
        't' => parse_teardown(rest),
        _ => Err(FifoError::UnknownCommand(word.into())),
    }
}

/// Parse a line given as bytes (without a terminator, or with `\n` / `\r\n`): UTF-8 is
/// checked first, then as [`parse_line`].
pub fn parse_bytes(line: &[u8]) -> Result<Command, FifoError> {
    match std::str::from_utf8(line) {
        Ok(s) => parse_line(s),
        Err(e) => Err(FifoError::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        }),
    }
}

fn unexpected(cmd: char, word: &str) -> FifoError {
    FifoError::invalid(cmd, format!("unexpected argument {}", quote(word)))
}

fn no_args(cmd: char, rest: &str, c: Command) -> Result<Command, FifoError> {
    match words(rest).first() {
        None => Ok(c),
        Some(w) => Err(unexpected(cmd, w)),
    }
}

/// A name: non-empty, at most [`MAX_NAME`] bytes, no control characters. Whitespace rules
/// differ per kind and are checked by the callers.
fn check_name(cmd: char, kind: &str, name: &str) -> Result<(), FifoError> {
    if name.is_empty() {
        return Err(FifoError::invalid(cmd, format!("empty {kind}")));
    }
    if name.len() > MAX_NAME {
        return Err(FifoError::invalid(
            cmd,
            format!(
                "{kind} too long ({} bytes, limit {MAX_NAME}): {}",
                name.len(),
                quote(name)
            ),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FifoError::invalid(
            cmd,
            format!("control character in {kind} {}", quote(name)),
        ));
    }
    Ok(())
}

/// Exactly one word, a name.
fn one_name(cmd: char, rest: &str, kind: &str) -> Result<String, FifoError> {
    match words(rest).as_slice() {
        [] => Err(FifoError::invalid(cmd, format!("missing {kind}"))),
        [name] => {
            check_name(cmd, kind, name)?;
            Ok((*name).to_string())
        }
        [_, extra, ..] => Err(unexpected(cmd, extra)),
    }
}

fn parse_teardown(rest: &str) -> Result<Command, FifoError> {
    let (phase, name) = match words(rest).as_slice() {
        [] => return Err(FifoError::invalid('t', "missing connection name")),
        // A lone word is the name, even `main` or `quick` (as isakmpd).
        [name] => (None, *name),
        [phase, name] => {
            let phase = match *phase {
                "main" => Phase::Phase1,
                "quick" => Phase::Phase2,
                other => {
                    return Err(FifoError::invalid(
                        't',
                        format!("unknown phase {} (expected main or quick)", quote(other)),
                    ))
                }
            };
            (Some(phase), *name)
        }
        [_, _, extra, ..] => return Err(unexpected('t', extra)),
    };
    check_name('t', "connection name", name)?;
    Ok(Command::Teardown {
        phase,
        name: name.into(),
    })
}

/// A decimal number `0..=max`, named `what` in errors.
fn number(cmd: char, what: &str, s: &str, max: u8) -> Result<u8, FifoError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FifoError::invalid(
            cmd,
            format!("{what} {} is not a number 0-{max}", quote(s)),
        ));
    }
    match s.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(FifoError::invalid(
            cmd,
            format!("{what} {} out of range 0-{max}", excerpt(s)),
        )),
    }
}

fn parse_debug(rest: &str) -> Result<DebugSetting, FifoError> {
    let level = |s: &str| number('D', "level", s, MAX_DEBUG_LEVEL);
    match words(rest).as_slice() {
        [] => Err(FifoError::invalid(
            'D',
            "missing arguments (expected 'class level', 'A level' or 'T')",
        )),
        ["T"] => Ok(DebugSetting::Toggle),
        ["T", extra, ..] => Err(unexpected('D', extra)),
        ["A"] => Err(FifoError::invalid('D', "missing level")),
        ["A", l] => Ok(DebugSetting::All { level: level(l)? }),
        [c] | [c, _] if !c.bytes().all(|b| b.is_ascii_digit()) => Err(FifoError::invalid(
            'D',
            format!(
                "class {} is not a number 0-{MAX_DEBUG_CLASS}, A or T",
                quote(c)
            ),
        )),
        [c] => {
            number('D', "class", c, MAX_DEBUG_CLASS)?;
            Err(FifoError::invalid('D', "missing level"))
        }
        [c, l] => Ok(DebugSetting::Class {
            class: number('D', "class", c, MAX_DEBUG_CLASS)?,
            level: level(l)?,
        }),
        [_, _, extra, ..] => Err(unexpected('D', extra)),
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Exactly `2 * N` hex digits to bytes.
fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn parse_delete(rest: &str) -> Result<Command, FifoError> {
    let (cookies, msgid) = match words(rest).as_slice() {
        [] => return Err(FifoError::invalid('d', "missing cookies (32 hex digits)")),
        [_] => {
            return Err(FifoError::invalid(
                'd',
                "missing message id (8 hex digits, or '-' for a phase 1 SA)",
            ))
        }
        [c, m] => (*c, *m),
        [_, _, extra, ..] => return Err(unexpected('d', extra)),
    };
    let Some(both) = hex_bytes::<16>(cookies) else {
        return Err(FifoError::invalid(
            'd',
            format!("cookies must be 32 hex digits, got {}", quote(cookies)),
        ));
    };
    let mut icookie = [0u8; 8];
    let mut rcookie = [0u8; 8];
    icookie.copy_from_slice(&both[..8]);
    rcookie.copy_from_slice(&both[8..]);
    let msgid = if msgid == "-" {
        None
    } else {
        match hex_bytes::<4>(msgid) {
            Some(m) => Some(u32::from_be_bytes(m)),
            None => {
                return Err(FifoError::invalid(
                    'd',
                    format!(
                        "message id must be 8 hex digits or '-', got {}",
                        quote(msgid)
                    ),
                ))
            }
        }
    };
    Ok(Command::DeleteSa {
        icookie,
        rcookie,
        msgid,
    })
}

fn parse_mode(rest: &str) -> Result<Mode, FifoError> {
    match words(rest).as_slice() {
        [] => Err(FifoError::invalid('M', "missing mode (active or passive)")),
        ["active"] => Ok(Mode::Active),
        ["passive"] => Ok(Mode::Passive),
        [other] => Err(FifoError::invalid(
            'M',
            format!("expected 'active' or 'passive', got {}", quote(other)),
        )),
        [_, extra, ..] => Err(unexpected('M', extra)),
    }
}

fn parse_packet(rest: &str) -> Result<PacketCapture, FifoError> {
    let w = match words(rest).as_slice() {
        [] => {
            return Err(FifoError::invalid(
                'p',
                "missing argument (on, on=path or off)",
            ))
        }
        [w] => *w,
        [_, extra, ..] => return Err(unexpected('p', extra)),
    };
    if w.eq_ignore_ascii_case("on") {
        return Ok(PacketCapture::On(None));
    }
    if w.eq_ignore_ascii_case("off") {
        return Ok(PacketCapture::Off);
    }
    match (w.get(..3), w.get(3..)) {
        (Some(on), Some(path)) if on.eq_ignore_ascii_case("on=") => {
            if path.is_empty() {
                return Err(FifoError::invalid('p', "empty path after 'on='"));
            }
            if path.len() > MAX_PATH {
                return Err(FifoError::invalid(
                    'p',
                    format!(
                        "path too long ({} bytes, limit {MAX_PATH}): {}",
                        path.len(),
                        quote(path)
                    ),
                ));
            }
            Ok(PacketCapture::On(Some(PathBuf::from(path))))
        }
        _ => Err(FifoError::invalid(
            'p',
            format!("expected 'on', 'on=path' or 'off', got {}", quote(w)),
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    Set,
    Add,
    Rmv,
    Rm,
    Rms,
    Get,
}

fn err_c(reason: String) -> FifoError {
    FifoError::invalid('C', reason)
}

fn parse_config(rest: &str) -> Result<ConfigOp, FifoError> {
    if rest.is_empty() {
        return Err(err_c(
            "missing subcommand (set, add, rmv, rm, rms or get)".into(),
        ));
    }
    let (sub_word, arg) = split_word(rest);
    let sub = match sub_word.to_ascii_lowercase().as_str() {
        "set" => Sub::Set,
        "add" => Sub::Add,
        "rmv" => Sub::Rmv,
        "rm" => Sub::Rm,
        "rms" => Sub::Rms,
        "get" => Sub::Get,
        _ => {
            return Err(err_c(format!(
                "unknown subcommand '{}' (expected set, add, rmv, rm, rms or get)",
                excerpt(sub_word)
            )))
        }
    };
    let Some(inner) = arg.strip_prefix('[') else {
        return Err(err_c(if arg.is_empty() {
            "missing [section]".into()
        } else {
            format!("expected '[' at start of {}", quote(arg))
        }));
    };
    let Some(close) = inner.find(']') else {
        return Err(err_c(format!("missing ']' in {}", quote(arg))));
    };
    let section = inner[..close].trim_matches(is_blank);
    check_name('C', "section name", section)?;
    let after = &inner[close + 1..];
    let section = section.to_string();
    if sub == Sub::Rms {
        return match words(after).first() {
            None => Ok(ConfigOp::Rms { section }),
            Some(w) => Err(unexpected('C', w)),
        };
    }
    let Some(spec) = after.strip_prefix(':') else {
        return Err(err_c(format!("expected ':' after ']' in {}", quote(arg))));
    };
    if matches!(sub, Sub::Rm | Sub::Get) {
        let tag = match words(spec).as_slice() {
            [] => return Err(err_c("missing tag".into())),
            [tag] => *tag,
            [_, extra, ..] => return Err(unexpected('C', extra)),
        };
        check_tag(tag)?;
        let tag = tag.to_string();
        return Ok(if sub == Sub::Rm {
            ConfigOp::Rm { section, tag }
        } else {
            ConfigOp::Get { section, tag }
        });
    }
    let Some(eq) = spec.find('=') else {
        return Err(err_c(format!("missing '=' in {}", quote(arg))));
    };
    let tag = spec[..eq].trim_matches(is_blank);
    check_tag(tag)?;
    let tag = tag.to_string();
    let (value, force) = split_force(spec[eq + 1..].trim_matches(is_blank));
    if force && sub != Sub::Set {
        return Err(err_c("'force' is only valid with set".into()));
    }
    check_value(value, sub != Sub::Set)?;
    let value = value.to_string();
    Ok(match sub {
        Sub::Add => ConfigOp::Add {
            section,
            tag,
            value,
        },
        Sub::Rmv => ConfigOp::Rmv {
            section,
            tag,
            value,
        },
        _ => ConfigOp::Set {
            section,
            tag,
            value,
            force,
        },
    })
}

/// A trailing word `force` (any case, after a blank) is the flag, not part of the value.
fn split_force(v: &str) -> (&str, bool) {
    match v.rsplit_once(is_blank) {
        Some((head, last)) if last.eq_ignore_ascii_case("force") => {
            (head.trim_end_matches(is_blank), true)
        }
        _ => (v, false),
    }
}

fn check_tag(tag: &str) -> Result<(), FifoError> {
    check_name('C', "tag", tag)?;
    let bad = |why: &str| Err(err_c(format!("tag {} {why}", quote(tag))));
    if tag.contains(is_blank) {
        return bad("contains whitespace");
    }
    if tag.contains('=') {
        return bad("contains '='");
    }
    if tag.contains(']') {
        return bad("contains ']'");
    }
    if tag.starts_with(['#', ';', '[']) {
        return bad("starts with '#', ';' or '['");
    }
    Ok(())
}

fn check_value(value: &str, list_element: bool) -> Result<(), FifoError> {
    if value.is_empty() {
        return Err(err_c("empty value".into()));
    }
    if value.chars().any(char::is_control) {
        return Err(err_c(format!(
            "control character in value {}",
            quote(value)
        )));
    }
    if list_element && value.contains(',') {
        return Err(err_c(format!(
            "value {} must be a single list element (no ',')",
            quote(value)
        )));
    }
    Ok(())
}
