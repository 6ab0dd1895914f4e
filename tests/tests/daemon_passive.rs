//! HA standby (`-S`, as with carp/sasyncd): a passive daemon neither initiates nor answers;
//! `M active` on its FIFO makes it take over, and it then answers the peer's Main Mode.

use e2e::daemon::Daemon;
use e2e::netns::Netns;
use e2e::pair::*;
use std::io::Write;
use std::time::Duration;

#[test]
fn passive_daemon_ignores_main_mode_until_made_active() {
    e2e::require_env!();
    let (te, tw) = (Pair::tag("pas", true), Pair::tag("pas", false));
    let ns_east = Netns::new(&te).expect("ns");
    let ns_west = Netns::new(&tw).expect("ns");
    Netns::link(
        &ns_east,
        &format!("{EAST_ADDR}/24"),
        &ns_west,
        &format!("{WEST_ADDR}/24"),
    )
    .expect("link");
    let west = Daemon::start(
        &ns_west,
        &tw,
        &example_conf("west").expect("example"),
        &["-n", "-v", "-S", "-j", "1"],
    )
    .expect("west");
    let east = Daemon::start(
        &ns_east,
        &te,
        &example_conf("east").expect("example"),
        &["-n", "-v", "-j", "1"],
    )
    .expect("east");
    let logs = || {
        format!(
            "--- east\n{}\n--- west\n{}",
            east.logs().join("\n"),
            west.logs().join("\n")
        )
    };
    // East initiates and retransmits; west, passive, says nothing.
    assert!(
        east.wait_log("initiating Main mode", 1, Duration::from_secs(10)),
        "{}",
        logs()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        east.log_count(PHASE1_UP) + west.log_count(PHASE1_UP),
        0,
        "a passive daemon answered:\n{}",
        logs()
    );
    // Take over.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(west.dir.join("isakmpd.fifo"))
        .expect("FIFO");
    f.write_all(b"M active\n").expect("write");
    assert!(
        west.wait_log(PHASE2_UP, 1, Duration::from_secs(30)),
        "no takeover after M active:\n{}",
        logs()
    );
    assert!(
        east.wait_log(PHASE2_UP, 1, Duration::from_secs(10)),
        "{}",
        logs()
    );
}
