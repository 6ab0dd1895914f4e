//! Packet capture: `-l file` writes every IKE message the daemon sends and accepts, in
//! cleartext, to a pcap file that tshark reads; `p off` on the FIFO stops it.

use e2e::daemon::Daemon;
use e2e::netns::Netns;
use e2e::pair::*;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

#[test]
fn capture_shows_decrypted_main_mode_and_quick_mode() {
    e2e::require_env!();
    if Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("SKIPPED capture test: tshark not installed (apt-get install tshark)");
        return;
    }
    let (te, tw) = (Pair::tag("cap", true), Pair::tag("cap", false));
    let ns_east = Netns::new(&te).expect("ns");
    let ns_west = Netns::new(&tw).expect("ns");
    Netns::link(
        &ns_east,
        &format!("{EAST_ADDR}/24"),
        &ns_west,
        &format!("{WEST_ADDR}/24"),
    )
    .expect("link");
    let cap = Daemon::dir_for(&te).join("capture.pcap");
    let west = Daemon::start(
        &ns_west,
        &tw,
        &example_conf("west").expect("example"),
        &["-n", "-v", "-j", "1"],
    )
    .expect("west");
    let east = Daemon::start(
        &ns_east,
        &te,
        &example_conf("east").expect("example"),
        &["-n", "-v", "-j", "1", "-l", cap.to_str().expect("path")],
    )
    .expect("east");
    let logs = || {
        format!(
            "--- east\n{}\n--- west\n{}",
            east.logs().join("\n"),
            west.logs().join("\n")
        )
    };
    assert!(
        east.wait_log(PHASE2_UP, 1, Duration::from_secs(20)),
        "{}",
        logs()
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(east.dir.join("isakmpd.fifo"))
        .expect("FIFO");
    f.write_all(b"p off\n").expect("write");
    assert!(
        east.wait_log("packet capture off", 1, Duration::from_secs(10)),
        "{}",
        logs()
    );
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(&cap)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "isakmp.exchangetype",
            "-e",
            "isakmp.flag_e",
            "-e",
            "isakmp.nextpayload",
        ])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    // Main Mode: six messages; 5 and 6 decrypted (flags clear) carrying ID (5) and HASH (8).
    let mm: Vec<&Vec<&str>> = rows.iter().filter(|r| r.first() == Some(&"2")).collect();
    assert!(mm.len() >= 6, "{text}");
    assert!(
        mm.iter()
            .any(|r| r.get(2).is_some_and(|p| p.starts_with("5,8"))),
        "no decrypted ID+HASH message:\n{text}"
    );
    assert!(
        rows.iter().all(|r| r
            .get(1)
            .is_some_and(|f| f.starts_with('0') || *f == "False")),
        "an encrypted message in the capture:\n{text}"
    );
    // Quick Mode: three messages, the first with HASH, SA, Nonce.
    let qm: Vec<&Vec<&str>> = rows.iter().filter(|r| r.first() == Some(&"32")).collect();
    assert!(qm.len() >= 3, "{text}");
    assert!(
        qm.iter()
            .any(|r| r.get(2).is_some_and(|p| p.starts_with("8,1,10"))),
        "no decrypted Quick Mode HASH/SA/Nonce:\n{text}"
    );
    let md = std::fs::metadata(&cap).expect("capture file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o600
    );
}
