//! The FIFO command parser: each line alone (`parse_bytes`) and the streaming
//! `LineReader`, fed the same bytes in two chunks split where the first byte says.
//!
//! Invariant: the reader's results are those of `parse_bytes` on each `\n`-terminated line
//! (a `\r` before the `\n` dropped, blank lines dropped, a line over `MAX_LINE` one
//! `LineTooLong`), and what it holds at the end is the unterminated rest.

use fifo::{parse_bytes, Command, FifoError, LineReader, MAX_LINE};

pub fn fifo(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(data.len());
    let (first, second) = data.split_at(split);

    let mut reader = LineReader::new();
    let mut got = reader.push(first);
    got.extend(reader.push(second));
    let partial = reader.take_partial();

    let mut expected: Vec<Result<Command, FifoError>> = Vec::new();
    let mut segments: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = segments.pop().unwrap_or_default();
    for seg in segments {
        let line = seg.strip_suffix(b"\r").unwrap_or(seg);
        if line.len() > MAX_LINE {
            expected.push(Err(FifoError::LineTooLong));
            continue;
        }
        match parse_bytes(line) {
            Ok(Command::Empty) => {}
            r => expected.push(r),
        }
    }
    let tail = last.strip_suffix(b"\r").unwrap_or(last);
    let expected_partial = if tail.len() > MAX_LINE {
        expected.push(Err(FifoError::LineTooLong));
        None
    } else if tail.is_empty() {
        None
    } else {
        Some(tail.to_vec())
    };
    assert_eq!(got, expected, "LineReader and parse_bytes disagree");
    assert_eq!(
        partial, expected_partial,
        "LineReader holds another partial line"
    );
}
