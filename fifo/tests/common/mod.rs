//! Shared by the integration tests.

use fifo::{parse_bytes, Command, FifoError, MAX_LINE};

/// What the reader must produce for a whole stream: every `\n`-terminated line, one `\r`
/// before the `\n` removed, too long if over MAX_LINE, else parsed; blanks dropped. An
/// unterminated tail only matters if it is already too long (a final `\r` not counted).
pub fn model(stream: &[u8]) -> Vec<Result<Command, FifoError>> {
    let mut out = Vec::new();
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let tail = parts.pop().unwrap_or(&[]);
    for line in parts {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let r = if line.len() > MAX_LINE {
            Err(FifoError::LineTooLong)
        } else {
            parse_bytes(line)
        };
        if r != Ok(Command::Empty) {
            out.push(r);
        }
    }
    let tail = tail.strip_suffix(b"\r").unwrap_or(tail);
    if tail.len() > MAX_LINE {
        out.push(Err(FifoError::LineTooLong));
    }
    out
}
