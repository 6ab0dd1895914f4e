//! The command FIFO against a running daemon pair: each command's effect is checked (an SA
//! appears or goes, a configuration value changes, the result file holds a value), a flood of
//! random lines and partial writes costs nothing, and `Q` stops the daemon.

use e2e::pair::*;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn write(fifo: &Path, text: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .expect("open FIFO");
    f.write_all(text).expect("write FIFO");
}

fn wait_file(path: &Path, needle: &str) -> String {
    let mut text = String::new();
    e2e::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.contains(needle)
    });
    text
}

/// Wait until the file holds exactly `value` (a `C get` answer).
fn wait_value(path: &Path, value: &str) -> String {
    let mut text = String::new();
    e2e::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.trim() == value
    });
    text
}

#[test]
fn fifo_commands_act_on_the_running_daemon() {
    e2e::require_env!();
    let mut pair = Pair::psk_from_examples("fifo", &["-n", "-v", "-j", "1"]);
    let fifo = pair.east.dir.join("isakmpd.fifo");
    let result = pair.east.dir.join("isakmpd.result");
    let md = std::fs::metadata(&fifo).expect("FIFO exists");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&md.file_type()));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o600
    );

    // C set / C get: the value changes and the result file holds it.
    write(
        &fifo,
        b"C set [General]:Retransmits=7 force\nC get [General]:Retransmits\n",
    );
    assert_eq!(wait_value(&result, "7").trim(), "7", "{}", pair.logs());
    // C add / rmv on a list, rm of a tag, rms of a section: each visible through C get.
    write(&fifo, b"C set [General]:Fifo-test=alpha force\nC add [General]:Fifo-test=beta\nC get [General]:Fifo-test\n");
    assert_eq!(
        wait_value(&result, "alpha,beta").trim(),
        "alpha,beta",
        "{}",
        pair.logs()
    );
    write(
        &fifo,
        b"C rmv [General]:Fifo-test=alpha\nC get [General]:Fifo-test\n",
    );
    assert_eq!(
        wait_value(&result, "beta").trim(),
        "beta",
        "{}",
        pair.logs()
    );
    write(
        &fifo,
        b"C rm [General]:Fifo-test\nC get [General]:Fifo-test\n",
    );
    assert_eq!(
        wait_value(&result, "").trim(),
        "",
        "rm left the tag:\n{}",
        pair.logs()
    );
    write(&fifo, b"C set [Scratch]:x=1\nC get [Scratch]:x\n");
    assert_eq!(wait_value(&result, "1").trim(), "1", "{}", pair.logs());
    write(&fifo, b"C rms [Scratch]\nC get [Scratch]:x\n");
    assert_eq!(
        wait_value(&result, "").trim(),
        "",
        "rms left the section:\n{}",
        pair.logs()
    );
    // A set that would break the policy is refused as a whole.
    write(
        &fifo,
        b"C set [peer-west]:Configuration=no-such-section force\n",
    );
    assert!(
        pair.east
            .wait_log("the configuration is unchanged", 1, Duration::from_secs(10)),
        "{}",
        pair.logs()
    );

    // S: the SA details.
    write(&fifo, b"S\n");
    let sas = wait_file(&result, "Phase 2 (IPsec SAs): 1");
    assert!(sas.contains(EAST_CONNECTION), "{sas}");

    // t: the connection goes, on both sides.
    write(&fifo, format!("t {EAST_CONNECTION}\n").as_bytes());
    assert!(
        pair.west
            .wait_log("deleted by peer", 1, Duration::from_secs(10)),
        "{}",
        pair.logs()
    );
    // c: it comes back.
    let before = pair.east.log_count(PHASE2_UP);
    write(&fifo, format!("c {EAST_CONNECTION}\n").as_bytes());
    assert!(
        pair.east
            .wait_log(PHASE2_UP, before + 1, Duration::from_secs(15)),
        "{}",
        pair.logs()
    );

    // r: the report; D: debug levels (then more is logged); D T back off.
    write(&fifo, b"r\nD 0 10\n");
    assert!(e2e::wait_until(Duration::from_secs(10), || pair
        .east
        .dir
        .join("isakmpd.report")
        .exists()));
    write(&fifo, b"S\n");
    assert!(
        pair.east.wait_log("fifo: S", 1, Duration::from_secs(10)),
        "debug class 0 not enabled:\n{}",
        pair.logs()
    );
    write(&fifo, b"D T\n");

    // A flood of random lines and a partial write: logged and ignored, SAs kept.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut flood = Vec::new();
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 60) as usize;
        let line: Vec<u8> = (0..len)
            .map(|i| (x >> (i % 8 * 8)) as u8)
            .map(|b| if b == b'\n' { b'x' } else { b })
            .collect();
        // Garbage only: a random line that happens to be a command (`Q`, `T`) would be obeyed.
        if matches!(fifo::parse_bytes(&line), Ok(c) if c != fifo::Command::Empty) {
            continue;
        }
        flood.extend_from_slice(&line);
        flood.push(b'\n');
    }
    for chunk in flood.chunks(4000) {
        write(&fifo, chunk);
    }
    write(&fifo, b"C set [General]:Retra");
    write(&fifo, b"nsmits=9 force\n");
    write(&fifo, b"C get [General]:Retransmits\n");
    assert_eq!(wait_value(&result, "9").trim(), "9", "{}", pair.logs());
    assert!(
        pair.east.try_exit().is_none(),
        "the flood stopped the daemon"
    );
    write(&fifo, b"S\n");
    assert!(
        wait_file(&result, "Phase 2 (IPsec SAs): 1").contains(EAST_CONNECTION),
        "the flood cost the SA"
    );

    // d cookies -: the ISAKMP SA goes (cookies from the S output).
    let text = std::fs::read_to_string(&result).unwrap_or_default();
    let cookies = text
        .split("cookies ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("cookies")
        .replace(':', "");
    write(&fifo, format!("d {cookies} -\n").as_bytes());
    write(&fifo, b"S\n");
    assert!(
        wait_file(&result, "Phase 1 (ISAKMP SAs): 0").contains("Phase 1 (ISAKMP SAs): 0"),
        "{}",
        pair.logs()
    );

    // T: every phase 2 SA goes.
    write(&fifo, b"T\nS\n");
    assert!(
        wait_file(&result, "Phase 2 (IPsec SAs): 0").contains("Phase 2 (IPsec SAs): 0"),
        "{}",
        pair.logs()
    );

    // M passive: a restarted negotiation is not answered... M active: it is again.
    write(&fifo, b"M passive\n");
    assert!(pair
        .east
        .wait_log("passive mode", 1, Duration::from_secs(10)));
    write(&fifo, b"M active\n");
    assert!(pair
        .east
        .wait_log("active mode", 1, Duration::from_secs(10)));

    // Q: the daemon stops, cleanly.
    write(&fifo, b"Q\n");
    let status = pair
        .east
        .wait_exit(Duration::from_secs(10))
        .expect("east did not stop on Q");
    assert!(status.success(), "{status}");
}
