//! `LineReader`: bytes from the FIFO to parsed lines.

use crate::command::Command;
use crate::error::FifoError;
use crate::parse::parse_bytes;
use crate::MAX_LINE;

/// Splits a byte stream into lines and parses each one.
///
/// - Lines end at `\n`; a `\r` immediately before the `\n` is dropped (CRLF). A `\r`
///   elsewhere is part of the line (and makes it a control-character error).
/// - Chunks may split a line (or a CRLF, or a UTF-8 sequence) anywhere.
/// - A line that is not UTF-8 gives `Err(InvalidUtf8)` for that line only.
/// - At most [`MAX_LINE`] bytes of a partial line are held. When a line grows past that,
///   one `Err(LineTooLong)` is returned at once and the rest of the line, up to and
///   including the next `\n`, is discarded.
/// - Blank lines (`Command::Empty`) are dropped, as isakmpd ignores them.
#[derive(Debug, Default, Clone)]
pub struct LineReader {
    /// The partial line, without a trailing `\r` (see `pending_cr`). Never over MAX_LINE.
    buf: Vec<u8>,
    /// The last byte seen was a `\r`: a terminator if a `\n` follows, content otherwise.
    pending_cr: bool,
    /// Dropping bytes until the next `\n` after an over-long line.
    discarding: bool,
}

impl LineReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next chunk read from the FIFO; returns the results of the lines it
    /// completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<Command, FifoError>> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.extend(&rest[..i], &mut out);
            self.end_line(&mut out);
            rest = &rest[i + 1..];
        }
        self.extend(rest, &mut out);
        out
    }

    /// Bytes of the partial line held now (at most [`MAX_LINE`]; a pending `\r` that may
    /// be half of a CRLF is not counted).
    pub fn partial_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the rest of an over-long line is being discarded.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Forget the partial line and any discard state, as isakmpd never runs an
    /// unterminated line. Call it when the writer goes away (EOF on the FIFO), so that
    /// the next writer starts on a fresh line. Returns how many bytes were dropped
    /// (a pending `\r` counts; bytes already skipped of an over-long line do not).
    pub fn reset(&mut self) -> usize {
        let n = self.buf.len() + usize::from(self.pending_cr);
        self.buf.clear();
        self.pending_cr = false;
        self.discarding = false;
        n
    }

    /// Like [`reset`](Self::reset), but hand back the partial line (without a trailing
    /// `\r`) for the caller to log or, if it chooses, to run with
    /// [`parse_bytes`](crate::parse_bytes). `None` if nothing was held, or if the partial
    /// line was the tail of an over-long line (already reported).
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        let discarding = self.discarding;
        let line = std::mem::take(&mut self.buf);
        self.reset();
        if discarding || line.is_empty() {
            None
        } else {
            Some(line)
        }
    }

    /// Add bytes containing no `\n` to the partial line.
    fn extend(&mut self, bytes: &[u8], out: &mut Vec<Result<Command, FifoError>>) {
        if bytes.is_empty() || self.discarding {
            return;
        }
        if self.pending_cr {
            self.pending_cr = false;
            self.append(b"\r", out);
        }
        let (body, cr) = match bytes.split_last() {
            Some((b'\r', body)) => (body, true),
            _ => (bytes, false),
        };
        self.append(body, out);
        self.pending_cr = cr && !self.discarding;
    }

    fn append(&mut self, bytes: &[u8], out: &mut Vec<Result<Command, FifoError>>) {
        if self.discarding {
            return;
        }
        if self.buf.len() + bytes.len() > MAX_LINE {
            self.buf.clear();
            self.pending_cr = false;
            self.discarding = true;
            out.push(Err(FifoError::LineTooLong));
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn end_line(&mut self, out: &mut Vec<Result<Command, FifoError>>) {
        self.pending_cr = false;
        if self.discarding {
            self.discarding = false;
            return;
        }
        let result = parse_bytes(&self.buf);
        self.buf.clear();
        if result != Ok(Command::Empty) {
            out.push(result);
        }
    }
}
