//! Property tests: LineReader on random bytes and random chunkings, and Display/parse
//! round trips of random commands.

mod common;

use std::path::PathBuf;

use common::model;
use fifo::{
    parse_line, Command, ConfigOp, DebugSetting, LineReader, Mode, PacketCapture, Phase, MAX_LINE,
};
use proptest::prelude::*;

/// Feed `stream` cut at `cuts` (positions, any order, may repeat or exceed the length),
/// checking the bound on held bytes after every chunk.
fn feed(stream: &[u8], cuts: &[usize]) -> Vec<Result<Command, fifo::FifoError>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut r = LineReader::new();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        out.extend(r.push(&stream[w[0]..w[1]]));
        assert!(r.partial_len() <= MAX_LINE, "held {}", r.partial_len());
    }
    out
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,24}"
}

fn section() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9 :._=-]{0,20}[A-Za-z0-9])?"
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9:._-]{0,20}"
}

/// A value without ',' whose last word is not `force`.
fn value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/=.:_éß-]([A-Za-z0-9 /=.:_\\[\\]éß-]{0,30}[A-Za-z0-9/=.:_éß-])?".prop_filter(
        "ends in the force word",
        |v| {
            !v.rsplit(' ')
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("force"))
                || !v.contains(' ')
        },
    )
}

fn config_op() -> impl Strategy<Value = ConfigOp> {
    prop_oneof![
        (section(), tag(), value(), any::<bool>()).prop_map(|(section, tag, value, force)| {
            ConfigOp::Set {
                section,
                tag,
                value,
                force,
            }
        }),
        (section(), tag(), value()).prop_map(|(section, tag, value)| ConfigOp::Add {
            section,
            tag,
            value
        }),
        (section(), tag(), value()).prop_map(|(section, tag, value)| ConfigOp::Rmv {
            section,
            tag,
            value
        }),
        (section(), tag()).prop_map(|(section, tag)| ConfigOp::Rm { section, tag }),
        section().prop_map(|section| ConfigOp::Rms { section }),
        (section(), tag()).prop_map(|(section, tag)| ConfigOp::Get { section, tag }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        config_op().prop_map(Command::Config),
        name().prop_map(Command::Connect),
        (0u8..=9, 0u8..=99)
            .prop_map(|(class, level)| Command::Debug(DebugSetting::Class { class, level })),
        (0u8..=99).prop_map(|level| Command::Debug(DebugSetting::All { level })),
        Just(Command::Debug(DebugSetting::Toggle)),
        (any::<[u8; 8]>(), any::<[u8; 8]>(), any::<Option<u32>>()).prop_map(
            |(icookie, rcookie, msgid)| Command::DeleteSa {
                icookie,
                rcookie,
                msgid
            }
        ),
        Just(Command::Mode(Mode::Active)),
        Just(Command::Mode(Mode::Passive)),
        Just(Command::PacketCapture(PacketCapture::On(None))),
        "/[A-Za-z0-9/._-]{0,40}"
            .prop_map(|p| Command::PacketCapture(PacketCapture::On(Some(PathBuf::from(p))))),
        Just(Command::PacketCapture(PacketCapture::Off)),
        Just(Command::Quit),
        Just(Command::Reload),
        Just(Command::Report),
        Just(Command::ReportSas),
        Just(Command::TeardownAll),
        (
            prop::option::of(prop_oneof![Just(Phase::Phase1), Just(Phase::Phase2)]),
            name()
        )
            .prop_map(|(phase, name)| Command::Teardown { phase, name }),
    ]
}

/// Pieces that make interesting streams: noise, newlines, CRs, commands, near-limit runs.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..40),
        2 => Just(b"\n".to_vec()),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        2 => command().prop_map(|c| c.to_string().into_bytes()),
        1 => (MAX_LINE - 3..MAX_LINE + 3).prop_map(|n| vec![b'a'; n]),
        1 => (0..3 * MAX_LINE).prop_map(|n| vec![b'C'; n]),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..30).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, any chunking: no panic, bounded memory, and the same results as the
    /// whole stream described line by line.
    #[test]
    fn reader_matches_model(s in stream(), cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let got = feed(&s, &cuts);
        prop_assert_eq!(&got, &model(&s));
        let mut whole = LineReader::new();
        prop_assert_eq!(got, whole.push(&s));
    }

    /// Pure random bytes (including newlines), byte-at-a-time versus in one piece.
    #[test]
    fn reader_random_bytes(s in prop::collection::vec(any::<u8>(), 0..2000)) {
        let cuts: Vec<usize> = (0..s.len()).collect();
        let got = feed(&s, &cuts);
        prop_assert_eq!(&got, &model(&s));
    }

    /// Valid commands, printed and joined with LF or CRLF, cut anywhere, come back exactly.
    #[test]
    fn valid_lines_survive_any_split(
        cmds in prop::collection::vec((command(), any::<bool>()), 0..30),
        cuts in prop::collection::vec(any::<usize>(), 0..60),
    ) {
        let mut s = Vec::new();
        for (c, crlf) in &cmds {
            s.extend_from_slice(c.to_string().as_bytes());
            s.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
        let want: Vec<_> = cmds.into_iter().map(|(c, _)| Ok(c)).collect();
        prop_assert_eq!(feed(&s, &cuts), want);
    }

    /// Display gives a line that parses back to the same command.
    #[test]
    fn display_round_trip(c in command()) {
        prop_assert_eq!(parse_line(&c.to_string()), Ok(c));
    }

    /// parse_line on arbitrary text never panics, and whatever it accepts prints to a
    /// line that parses back the same (the canonical form is a fixed point).
    #[test]
    fn parse_arbitrary_text(s in "\\PC{0,80}|[CcDdMpQRrStT] [\\[\\]:= a-zA-Z0-9\\t,-]{0,60}") {
        if let Ok(c) = parse_line(&s) {
            let canon = c.to_string();
            prop_assert_eq!(parse_line(&canon), Ok(c));
        }
    }
}
