//! LineReader: chunking, CRLF, UTF-8, over-long lines, partial lines, and a long run of
//! garbage with valid commands among it.

mod common;

use common::model;
use fifo::{Command, ConfigOp, FifoError, LineReader, MAX_LINE};

fn push_all(r: &mut LineReader, chunks: &[&[u8]]) -> Vec<Result<Command, FifoError>> {
    chunks.iter().flat_map(|c| r.push(c)).collect()
}

#[test]
fn whole_lines_and_blank_lines() {
    let mut r = LineReader::new();
    assert_eq!(
        r.push(b"Q\n\n   \nR\r\n\r\nS\n"),
        vec![
            Ok(Command::Quit),
            Ok(Command::Reload),
            Ok(Command::ReportSas)
        ]
    );
    assert_eq!(r.partial_len(), 0);
}

#[test]
fn byte_at_a_time() {
    let text = b"C set [Phase 1]:Retransmits=3 force\r\nc conn\nx\n";
    let mut r = LineReader::new();
    let chunks: Vec<&[u8]> = text.chunks(1).collect();
    let got = push_all(&mut r, &chunks);
    assert_eq!(
        got,
        vec![
            Ok(Command::Config(ConfigOp::Set {
                section: "Phase 1".into(),
                tag: "Retransmits".into(),
                value: "3".into(),
                force: true,
            })),
            Ok(Command::Connect("conn".into())),
            Err(FifoError::UnknownCommand("x".into())),
        ]
    );
}

#[test]
fn crlf_split_and_lone_cr() {
    let mut r = LineReader::new();
    assert!(r.push(b"Q\r").is_empty());
    assert_eq!(r.partial_len(), 1, "the CR is not counted");
    assert_eq!(r.push(b"\n"), vec![Ok(Command::Quit)]);
    // A CR not followed by LF is part of the line.
    let got = push_all(&mut r, &[b"c a\r", b"b\n"]);
    assert_eq!(
        got,
        vec![Err(FifoError::ControlCharacter {
            offset: 3,
            ch: '\r'
        })]
    );
    // Two CRs before the LF: one is the terminator, one is content.
    let got = r.push(b"Q\r\r\n");
    assert_eq!(
        got,
        vec![Err(FifoError::ControlCharacter {
            offset: 1,
            ch: '\r'
        })]
    );
}

#[test]
fn invalid_utf8_is_one_line_error() {
    let mut r = LineReader::new();
    // The UTF-8 sequence for 'é' split across chunks is fine.
    let got = push_all(&mut r, &[b"c caf\xc3", b"\xa9\nc \xff\xfe\nQ\n"]);
    assert_eq!(
        got,
        vec![
            Ok(Command::Connect("café".into())),
            Err(FifoError::InvalidUtf8 { valid_up_to: 2 }),
            Ok(Command::Quit),
        ]
    );
}

#[test]
fn overlong_line_is_reported_once_and_discarded() {
    let mut r = LineReader::new();
    let big = vec![b'a'; MAX_LINE];
    assert!(r.push(&big).is_empty());
    assert_eq!(r.partial_len(), MAX_LINE);
    assert_eq!(r.push(b"a"), vec![Err(FifoError::LineTooLong)]);
    assert!(r.is_discarding());
    assert_eq!(r.partial_len(), 0);
    assert!(r.push(&big).is_empty(), "no second error for the same line");
    assert!(r.push(b"more\r").is_empty());
    assert_eq!(r.push(b"tail\nQ\n"), vec![Ok(Command::Quit)]);
    assert!(!r.is_discarding());

    // A single chunk holding a too-long line and the next command.
    let mut chunk = vec![b'z'; 3 * MAX_LINE];
    chunk.extend_from_slice(b"\nR\n");
    assert_eq!(
        r.push(&chunk),
        vec![Err(FifoError::LineTooLong), Ok(Command::Reload)]
    );
}

#[test]
fn line_of_exactly_max_bytes() {
    let prefix = "C set [s]:t=";
    let value = "v".repeat(MAX_LINE - prefix.len());
    let line = format!("{prefix}{value}");
    assert_eq!(line.len(), MAX_LINE);
    let expect = Ok(Command::Config(ConfigOp::Set {
        section: "s".into(),
        tag: "t".into(),
        value,
        force: false,
    }));
    for term in ["\n", "\r\n"] {
        let mut r = LineReader::new();
        let text = format!("{line}{term}");
        // Split right before the terminator, and inside it.
        let (a, b) = text.as_bytes().split_at(MAX_LINE);
        assert_eq!(push_all(&mut r, &[a, b]), vec![expect.clone()], "{term:?}");
        let mut r = LineReader::new();
        assert_eq!(r.push(text.as_bytes()), vec![expect.clone()], "{term:?}");
    }
    // One more byte before the CRLF is too long.
    let mut r = LineReader::new();
    assert_eq!(
        r.push(format!("{line}v\r\nQ\n").as_bytes()),
        vec![Err(FifoError::LineTooLong), Ok(Command::Quit)]
    );
}

#[test]
fn reset_and_take_partial() {
    let mut r = LineReader::new();
    assert!(r.push(b"c half").is_empty());
    assert_eq!(r.take_partial(), Some(b"c half".to_vec()));
    assert_eq!(r.partial_len(), 0);
    assert_eq!(r.take_partial(), None);
    // After a writer vanished mid-line, the next writer's line is not glued on.
    assert!(r.push(b"Q extra").is_empty());
    assert_eq!(r.reset(), 7);
    assert_eq!(r.push(b"R\n"), vec![Ok(Command::Reload)]);
    // A pending CR is dropped by take_partial, counted by reset.
    assert!(r.push(b"S\r").is_empty());
    assert_eq!(r.take_partial(), Some(b"S".to_vec()));
    assert!(r.push(b"S\r").is_empty());
    assert_eq!(r.reset(), 2);
    // The tail of an over-long line is not handed back, and reset ends the discarding.
    let big = vec![b'a'; MAX_LINE + 1];
    assert_eq!(r.push(&big), vec![Err(FifoError::LineTooLong)]);
    assert!(r.push(b"zzz").is_empty());
    assert_eq!(r.take_partial(), None);
    assert!(!r.is_discarding());
    assert_eq!(r.push(b"T\n"), vec![Ok(Command::TeardownAll)]);
    // Without reset, the partial line continues with the next bytes (as isakmpd).
    assert!(r.push(b"c ab").is_empty());
    assert_eq!(r.push(b"cd\n"), vec![Ok(Command::Connect("abcd".into()))]);
}

/// xorshift64*, so the run is the same every time without another dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn ten_thousand_lines_of_garbage_and_commands() {
    let valid = [
        "C set [Phase 1]:Retransmits=3 force",
        "C add [Phase 2]:Connections=IPsec-east-west",
        "C rmv [Phase 2]:Connections=IPsec-east-west",
        "C rm [General]:Retransmits",
        "C rms [IPsec-east-west]",
        "C get [General]:Listen-on",
        "c IPsec-east-west",
        "D 3 50",
        "D A 10",
        "D T",
        "d 0123456789abcdeffedcba9876543210 deadbeef",
        "d 0123456789abcdeffedcba9876543210 -",
        "M passive",
        "p on=/var/run/x.pcap",
        "p off",
        "Q",
        "R",
        "r",
        "S",
        "T",
        "t quick 10.0.0.1",
    ];
    let alphabet = b"CcDdMpQRrStT []:=,- \t\rAaxyz0123456789force\xc3\xa9\xff\x00\x1b";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stream = Vec::new();
    let mut expected_valid = Vec::new();
    for _ in 0..10_000 {
        if rng.below(2) == 0 {
            let line = valid[rng.below(valid.len())];
            let Ok(cmd) = fifo::parse_line(line) else {
                panic!("{line} refused")
            };
            expected_valid.push(cmd);
            stream.extend_from_slice(line.as_bytes());
        } else {
            let len = match rng.below(50) {
                0 => MAX_LINE - 2 + rng.below(6),
                1 => MAX_LINE * 2 + rng.below(100),
                _ => rng.below(80),
            };
            for _ in 0..len {
                let b = if rng.below(4) == 0 {
                    rng.next() as u8
                } else {
                    alphabet[rng.below(alphabet.len())]
                };
                // Garbage may not contain a newline, or it would split into two lines
                // and a second half could hide a following command's boundary.
                stream.push(if b == b'\n' { b'x' } else { b });
            }
        }
        stream.extend_from_slice(if rng.below(3) == 0 { b"\r\n" } else { b"\n" });
    }
    let mut r = LineReader::new();
    let mut got = Vec::new();
    let mut i = 0;
    while i < stream.len() {
        let max = if rng.below(10) == 0 { 3 * MAX_LINE } else { 64 };
        let n = 1 + rng.below(max);
        let end = (i + n).min(stream.len());
        got.extend(r.push(&stream[i..end]));
        assert!(r.partial_len() <= MAX_LINE);
        i = end;
    }
    assert_eq!(r.partial_len(), 0);
    assert_eq!(got, model(&stream));
    // Every valid command is there, in order (garbage may add more Ok values).
    let oks: Vec<&Command> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut it = oks.iter();
    for want in &expected_valid {
        assert!(it.any(|c| *c == want), "{want:?} not recovered in order");
    }
    assert!(got.iter().any(|r| r == &Err(FifoError::LineTooLong)));
    assert!(got
        .iter()
        .any(|r| matches!(r, Err(FifoError::InvalidUtf8 { .. }))));
}
