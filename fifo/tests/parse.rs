//! parse_line: every command's typed value, every malformed form's message, round trips.

use std::path::PathBuf;

use fifo::{
    parse_bytes, parse_line, Command, ConfigOp, DebugSetting, FifoError, Mode, PacketCapture,
    Phase, MAX_LINE, MAX_NAME,
};

fn ok(line: &str) -> Command {
    match parse_line(line) {
        Ok(c) => c,
        Err(e) => panic!("{line:?} refused: {e}"),
    }
}

/// The error message for `line`, asserting that it is refused.
fn err(line: &str) -> String {
    match parse_line(line) {
        Ok(c) => panic!("{line:?} accepted as {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_err(line: &str, fragment: &str) {
    let msg = err(line);
    assert!(
        msg.contains(fragment),
        "{line:?}: message {msg:?} lacks {fragment:?}"
    );
}

fn set(section: &str, tag: &str, value: &str, force: bool) -> Command {
    Command::Config(ConfigOp::Set {
        section: section.into(),
        tag: tag.into(),
        value: value.into(),
        force,
    })
}

#[test]
fn config_set() {
    assert_eq!(
        ok("C set [Phase 1]:Retransmits=3"),
        set("Phase 1", "Retransmits", "3", false)
    );
    assert_eq!(
        ok("C set [General]:Retransmits=5 force"),
        set("General", "Retransmits", "5", true)
    );
    assert_eq!(ok("C SET [a]:b=c FORCE"), set("a", "b", "c", true));
    // Values keep inner spaces, '=' and brackets; blanks around tag and value are trimmed.
    assert_eq!(
        ok("C set [x509]:Name= /C=US/O=Example Inc/CN=a b  c \t"),
        set("x509", "Name", "/C=US/O=Example Inc/CN=a b  c", false)
    );
    assert_eq!(ok("C set [ s ]: t = v=w= "), set("s", "t", "v=w=", false));
    assert_eq!(
        ok("C set [s]:t=a b force"),
        set("s", "t", "a b", true),
        "last word force is the flag"
    );
    assert_eq!(
        ok("C set [s]:t=force"),
        set("s", "t", "force", false),
        "a value that is only 'force' is a value"
    );
    assert_eq!(ok("C set [s]:t=forced"), set("s", "t", "forced", false));
    assert_eq!(
        ok("C set [s]:t=  force"),
        set("s", "t", "force", false),
        "the value is trimmed before the flag is looked for"
    );
    // IPv6 peer tag in [Phase 1], section with ':'.
    assert_eq!(
        ok("C set [Phase 1]:fe80::1=peer-v6"),
        set("Phase 1", "fe80::1", "peer-v6", false)
    );
    assert_eq!(ok("C set [a:b]:t=v"), set("a:b", "t", "v", false));
    // Tabs as separators, CRLF and LF terminators.
    assert_eq!(ok("\tC\tset\t[s]:t=v\r\n"), set("s", "t", "v", false));
    assert_eq!(ok("C set [s]:t=v\n"), set("s", "t", "v", false));
}

#[test]
fn config_other_ops() {
    assert_eq!(
        ok("C add [Phase 2]:Connections=IPsec-east-west"),
        Command::Config(ConfigOp::Add {
            section: "Phase 2".into(),
            tag: "Connections".into(),
            value: "IPsec-east-west".into(),
        })
    );
    assert_eq!(
        ok("C rmv [Phase 2]:Connections=IPsec-east-west"),
        Command::Config(ConfigOp::Rmv {
            section: "Phase 2".into(),
            tag: "Connections".into(),
            value: "IPsec-east-west".into(),
        })
    );
    assert_eq!(
        ok("C rm [General]:Retransmits"),
        Command::Config(ConfigOp::Rm {
            section: "General".into(),
            tag: "Retransmits".into(),
        })
    );
    assert_eq!(
        ok("C rms [IPsec-east-west]"),
        Command::Config(ConfigOp::Rms {
            section: "IPsec-east-west".into(),
        })
    );
    assert_eq!(
        ok("C get [General]:Listen-on"),
        Command::Config(ConfigOp::Get {
            section: "General".into(),
            tag: "Listen-on".into(),
        })
    );
    assert_eq!(
        ok("C Get [General]: Listen-on "),
        Command::Config(ConfigOp::Get {
            section: "General".into(),
            tag: "Listen-on".into(),
        })
    );
}

#[test]
fn config_malformed() {
    assert_err(
        "C set [Phase 1:Retransmits=3",
        "C: missing ']' in \"[Phase 1:Retransmits=3\"",
    );
    assert_err("C", "C: missing subcommand");
    assert_err("C frob [s]:t=v", "C: unknown subcommand 'frob'");
    assert_err("C set", "C: missing [section]");
    assert_err("C set s:t=v", "C: expected '[' at start of \"s:t=v\"");
    assert_err("C set[s]:t=v", "C: unknown subcommand 'set[s]:t=v'");
    assert_err("C set []:t=v", "C: empty section name");
    assert_err("C set [  ]:t=v", "C: empty section name");
    assert_err("C set [s] :t=v", "C: expected ':' after ']'");
    assert_err("C set [s]t=v", "C: expected ':' after ']'");
    assert_err("C set [s]:t", "C: missing '=' in \"[s]:t\"");
    assert_err("C set [s]:=v", "C: empty tag");
    assert_err("C set [s]:t=", "C: empty value");
    assert_err("C set [s]:t= \t", "C: empty value");
    assert_err("C set [s]:a b=v", "C: tag \"a b\" contains whitespace");
    assert_err("C set [s]:a]b=v", "C: tag \"a]b\" contains ']'");
    assert_err("C set [s]:#t=v", "starts with '#', ';' or '['");
    assert_err(
        "C set [s]:t=a\tb",
        "C: control character in value \"a\\tb\"",
    );
    assert_err("C set [a\tb]:t=v", "C: control character in section name");
    assert_err("C add [s]:t=v force", "C: 'force' is only valid with set");
    assert_err("C rmv [s]:t=v force", "C: 'force' is only valid with set");
    assert_err("C add [s]:t=a,b", "must be a single list element (no ',')");
    assert_err("C rmv [s]:t=a,b", "must be a single list element (no ',')");
    assert_err("C rm [s]", "C: expected ':' after ']'");
    assert_err("C rm [s]:", "C: missing tag");
    assert_err("C rm [s]:t extra", "C: unexpected argument \"extra\"");
    assert_err("C rm [s]:t=v", "C: tag \"t=v\" contains '='");
    assert_err("C get [s]:", "C: missing tag");
    assert_err("C rms [s]:t", "C: unexpected argument \":t\"");
    assert_err("C rms s", "C: expected '['");
    let long = "x".repeat(MAX_NAME + 1);
    assert_err(
        &format!("C set [{long}]:t=v"),
        &format!(
            "C: section name too long ({} bytes, limit 200)",
            MAX_NAME + 1
        ),
    );
    assert_err(&format!("C rm [s]:{long}"), "C: tag too long");
    // At the limit is fine.
    let max = "y".repeat(MAX_NAME);
    assert_eq!(
        ok(&format!("C rm [{max}]:{max}")),
        Command::Config(ConfigOp::Rm {
            section: max.clone(),
            tag: max
        })
    );
}

#[test]
fn connect() {
    assert_eq!(
        ok("c IPsec-east-west"),
        Command::Connect("IPsec-east-west".into())
    );
    assert_err("c", "c: missing connection name");
    assert_err("c a b", "c: unexpected argument \"b\"");
    assert_err(
        &format!("c {}", "n".repeat(MAX_NAME + 1)),
        "c: connection name too long (201 bytes, limit 200)",
    );
}

#[test]
fn debug() {
    assert_eq!(
        ok("D 3 50"),
        Command::Debug(DebugSetting::Class {
            class: 3,
            level: 50
        })
    );
    assert_eq!(
        ok("D 0 0"),
        Command::Debug(DebugSetting::Class { class: 0, level: 0 })
    );
    assert_eq!(
        ok("D 9 99"),
        Command::Debug(DebugSetting::Class {
            class: 9,
            level: 99
        })
    );
    assert_eq!(
        ok("D A 10"),
        Command::Debug(DebugSetting::All { level: 10 })
    );
    assert_eq!(ok("D T"), Command::Debug(DebugSetting::Toggle));
    assert_err("D 12 5", "D: class 12 out of range 0-9");
    assert_err(
        "D 99999999999999999999 5",
        "D: class 99999999999999999999 out of range",
    );
    assert_err("D 3 100", "D: level 100 out of range 0-99");
    assert_err("D 3 300", "D: level 300 out of range 0-99");
    assert_err("D -1 5", "D: class \"-1\" is not a number 0-9, A or T");
    assert_err("D x 5", "D: class \"x\" is not a number 0-9, A or T");
    assert_err("D 3 x", "D: level \"x\" is not a number 0-99");
    assert_err("D A x", "D: level \"x\" is not a number 0-99");
    assert_err("D 3", "D: missing level");
    assert_err("D 33", "D: class 33 out of range 0-9");
    assert_err("D A", "D: missing level");
    assert_err("D", "D: missing arguments");
    assert_err("D T 5", "D: unexpected argument \"5\"");
    assert_err("D 1 2 3", "D: unexpected argument \"3\"");
}

#[test]
fn delete_sa() {
    let line = "d 0123456789abcdefFEDCBA9876543210 deadBEEF";
    assert_eq!(
        ok(line),
        Command::DeleteSa {
            icookie: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
            rcookie: [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10],
            msgid: Some(0xdead_beef),
        }
    );
    assert_eq!(
        ok("d 00000000000000010000000000000002 -"),
        Command::DeleteSa {
            icookie: [0, 0, 0, 0, 0, 0, 0, 1],
            rcookie: [0, 0, 0, 0, 0, 0, 0, 2],
            msgid: None,
        }
    );
    assert_err("d", "d: missing cookies (32 hex digits)");
    assert_err("d 0123", "d: missing message id");
    assert_err("d 0123 -", "d: cookies must be 32 hex digits");
    assert_err(
        "d 0123456789abcdef0123456789abcdeg -",
        "d: cookies must be 32 hex digits",
    );
    assert_err(
        "d 0123456789abcdef0123456789abcdef0 -",
        "d: cookies must be 32 hex digits",
    );
    assert_err(
        "d 0123456789abcdef0123456789abcdef 123",
        "d: message id must be 8 hex digits or '-', got \"123\"",
    );
    assert_err(
        "d 0123456789abcdef0123456789abcdef 0x123456",
        "d: message id must be 8 hex digits",
    );
    assert_err(
        "d 0123456789abcdef0123456789abcdef - x",
        "d: unexpected argument \"x\"",
    );
    // Non-ASCII must not confuse the hex decoder (multi-byte chars, 32 bytes).
    assert_err("d ééééééééééééééé00 -", "d: cookies must be 32 hex digits");
}

#[test]
fn mode_and_packet_capture() {
    assert_eq!(ok("M active"), Command::Mode(Mode::Active));
    assert_eq!(ok("M passive"), Command::Mode(Mode::Passive));
    assert_err("M", "M: missing mode (active or passive)");
    assert_err(
        "M activex",
        "M: expected 'active' or 'passive', got \"activex\"",
    );
    assert_err("M active now", "M: unexpected argument \"now\"");

    assert_eq!(ok("p on"), Command::PacketCapture(PacketCapture::On(None)));
    assert_eq!(ok("p ON"), Command::PacketCapture(PacketCapture::On(None)));
    assert_eq!(
        ok("p on=/var/run/x.pcap"),
        Command::PacketCapture(PacketCapture::On(Some(PathBuf::from("/var/run/x.pcap"))))
    );
    assert_eq!(ok("p off"), Command::PacketCapture(PacketCapture::Off));
    assert_err("p", "p: missing argument");
    assert_err("p on=", "p: empty path after 'on='");
    assert_err(
        "p maybe",
        "p: expected 'on', 'on=path' or 'off', got \"maybe\"",
    );
    assert_err("p o", "p: expected 'on'");
    assert_err("p on=/var/run/a b", "p: unexpected argument \"b\"");
    assert_err(
        &format!("p on=/{}", "a".repeat(2000)),
        "p: path too long (2001 bytes, limit 1024)",
    );
}

#[test]
fn argumentless() {
    for (line, cmd) in [
        ("Q", Command::Quit),
        ("R", Command::Reload),
        ("r", Command::Report),
        ("S", Command::ReportSas),
        ("T", Command::TeardownAll),
    ] {
        assert_eq!(ok(line), cmd);
        assert_eq!(ok(&format!("  {line}  \r\n")), cmd);
        assert_err(
            &format!("{line} now"),
            &format!("{line}: unexpected argument \"now\""),
        );
    }
}

#[test]
fn teardown() {
    assert_eq!(
        ok("t IPsec-east-west"),
        Command::Teardown {
            phase: None,
            name: "IPsec-east-west".into()
        }
    );
    assert_eq!(
        ok("t main ISAKMP-peer-east"),
        Command::Teardown {
            phase: Some(Phase::Phase1),
            name: "ISAKMP-peer-east".into()
        }
    );
    assert_eq!(
        ok("t quick 10.0.0.1"),
        Command::Teardown {
            phase: Some(Phase::Phase2),
            name: "10.0.0.1".into()
        }
    );
    assert_eq!(
        ok("t main"),
        Command::Teardown {
            phase: None,
            name: "main".into()
        },
        "a lone word is a name, as in isakmpd"
    );
    assert_err("t", "t: missing connection name");
    assert_err(
        "t slow x",
        "t: unknown phase \"slow\" (expected main or quick)",
    );
    assert_err("t main a b", "t: unexpected argument \"b\"");
}

#[test]
fn empty_unknown_and_lexical() {
    for blank in ["", "   ", "\t \t", "\n", "\r\n", "  \r\n"] {
        assert_eq!(ok(blank), Command::Empty, "{blank:?}");
    }
    assert_eq!(err("x"), "unknown command 'x'");
    assert_eq!(err("Cset"), "unknown command 'Cset'");
    assert_eq!(err("q"), "unknown command 'q'");
    assert_eq!(err("é"), "unknown command 'é'");
    assert_err("#comment", "unknown command '#comment'");
    // The quoted part is escaped and cut, so a line cannot forge log text.
    let msg = err(&format!("{}\"", "z".repeat(500)));
    assert!(msg.len() < 100 && msg.ends_with("...'"), "{msg}");
    assert_eq!(
        parse_line("Q\u{1}"),
        Err(FifoError::ControlCharacter {
            offset: 1,
            ch: '\u{1}'
        })
    );
    assert_err("c a\u{7f}b", "control character U+007F at byte 3");
    assert_err("Q\r", "control character U+000D at byte 1");
    assert_err("Q\n\n", "control character U+000A at byte 1");
    assert_err("c a\u{85}", "control character U+0085");
    // Length: MAX_LINE bytes is fine, one more is not; the terminator does not count.
    let pad = |n: usize| format!("c {}", "a".repeat(n - 2));
    assert_err(&pad(MAX_LINE), "connection name too long");
    assert_eq!(parse_line(&pad(MAX_LINE + 1)), Err(FifoError::LineTooLong));
    assert_eq!(err(&pad(MAX_LINE + 1)), "line too long (limit 4096 bytes)");
    let value = "v".repeat(MAX_LINE - "C set [s]:t=".len());
    let line = format!("C set [s]:t={value}");
    assert_eq!(ok(&format!("{line}\r\n")), set("s", "t", &value, false));
    assert_eq!(parse_line(&format!("{line}v")), Err(FifoError::LineTooLong));
    // Bytes.
    assert_eq!(parse_bytes(b"Q\r\n"), Ok(Command::Quit));
    assert_eq!(
        parse_bytes(b"c a\xffb"),
        Err(FifoError::InvalidUtf8 { valid_up_to: 3 })
    );
    assert_err_bytes(b"c \xc3", "line is not valid UTF-8 (bad byte at offset 2)");
}

fn assert_err_bytes(line: &[u8], fragment: &str) {
    let msg = parse_bytes(line).expect_err("accepted").to_string();
    assert!(msg.contains(fragment), "{msg:?} lacks {fragment:?}");
}

#[test]
fn error_type() {
    let e = parse_line("D 12 1").expect_err("accepted");
    assert_eq!(e.command(), Some('D'));
    assert_eq!(parse_line("x").expect_err("accepted").command(), None);
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert_eq!(boxed.to_string(), "D: class 12 out of range 0-9");
}

/// Lines whose parse, printed, is the same text; and lines that print canonically.
#[test]
fn display_round_trip() {
    let canonical = [
        "C set [Phase 1]:Retransmits=3",
        "C set [General]:Retransmits=5 force",
        "C set [x]:Name=/C=US/O=Example Inc/CN=a b  c",
        "C set [Phase 1]:fe80::1=peer",
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
        "M active",
        "M passive",
        "p on",
        "p on=/var/run/x.pcap",
        "p off",
        "Q",
        "R",
        "r",
        "S",
        "T",
        "t name",
        "t main name",
        "t quick name",
        "",
    ];
    for line in canonical {
        let cmd = ok(line);
        assert_eq!(cmd.to_string(), line);
        assert_eq!(ok(&cmd.to_string()), cmd);
    }
    for (sloppy, canon) in [
        ("  C  SET  [ s ] : t = v  FORCE ", None),
        ("C Set [ s ]:t = v  FORCE ", Some("C set [s]:t=v force")),
        ("D 03 007", Some("D 3 7")),
        (
            "d 0123456789ABCDEFFEDCBA9876543210 DEADBEEF",
            Some("d 0123456789abcdeffedcba9876543210 deadbeef"),
        ),
        ("p ON=/var/run/p", Some("p on=/var/run/p")),
        ("p OFF", Some("p off")),
        ("\tt\tquick\tn\t", Some("t quick n")),
    ] {
        match (parse_line(sloppy), canon) {
            (Err(_), None) => {} // ':' not directly after ']'
            (Ok(cmd), Some(canon)) => {
                assert_eq!(cmd.to_string(), canon);
                assert_eq!(ok(canon), cmd);
            }
            (r, c) => panic!("{sloppy:?}: {r:?} vs {c:?}"),
        }
    }
}
