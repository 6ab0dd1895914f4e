//! SIGUSR1 makes the daemon write its state report to the `-R` file: every SA with name,
//! phase, cookies, peer, algorithms and remaining lifetime, exchanges in progress, pending
//! timers and the running configuration, and never a secret.

use e2e::pair::*;
use std::time::Duration;

#[test]
fn sigusr1_writes_the_report() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("rep", &["-n", "-v", "-j", "1"]);
    let report = pair.east.dir.join("isakmpd.report");
    let _ = std::fs::remove_file(&report);
    pair.east.signal("USR1");
    assert!(
        e2e::wait_until(Duration::from_secs(10), || report.exists()),
        "no report at {}\n{}",
        report.display(),
        pair.logs()
    );
    let text = std::fs::read_to_string(&report).expect("report");
    let psk = psk_of(&example_conf("east").expect("example")).expect("psk");
    assert!(!text.contains(&psk), "the report holds the pre-shared key");

    // Phase 1: one SA, with peer section, addresses, cookies, role, algorithms, lifetime.
    assert!(text.contains("Phase 1 (ISAKMP SAs): 1"), "{text}");
    let p1 = text
        .lines()
        .find(|l| l.trim_start().starts_with(EAST_PEER_SECTION) && l.contains("cookies"))
        .unwrap_or_else(|| panic!("no phase 1 line for {EAST_PEER_SECTION}:\n{text}"));
    assert!(p1.contains(&format!("-> {WEST_ADDR}:500")), "{p1}");
    let cookies = p1
        .split("cookies ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("cookies");
    let (i, r) = cookies.split_once(':').expect("i:r");
    assert!(
        i.len() == 16 && r.len() == 16 && (i.to_owned() + r).chars().all(|c| c.is_ascii_hexdigit()),
        "{cookies}"
    );
    for what in [
        "initiator",
        "AES-256-CBC",
        "SHA2-256",
        "MODP2048",
        "expires in",
    ] {
        assert!(p1.contains(what), "{what:?} missing from {p1:?}");
    }
    let left: u64 = p1
        .rsplit("expires in ")
        .next()
        .and_then(|s| s.trim_end_matches('s').parse().ok())
        .expect("seconds left");
    assert!(left > 3000 && left <= 3600, "{p1}");

    // Phase 2: the connection, its selectors, SPIs both ways, algorithms, lifetime.
    assert!(text.contains("Phase 2 (IPsec SAs): 1"), "{text}");
    let p2 = text
        .lines()
        .find(|l| l.trim_start().starts_with(EAST_CONNECTION))
        .unwrap_or_else(|| panic!("no phase 2 line for {EAST_CONNECTION}:\n{text}"));
    for what in [
        "10.1.0.0/16 <=> 10.2.0.0/16",
        "Esp in ",
        " out ",
        "expires in",
        "Tunnel",
    ] {
        assert!(p2.contains(what), "{what:?} missing from {p2:?}");
    }
    assert!(text.contains("counters: none (-n"), "{text}");
    // The crypto queue: empty once the SAs are up, its bound, nothing turned away.
    assert!(
        text.contains("Crypto queue: 0 waiting, 0 in service, capacity 4096"),
        "{text}"
    );
    assert!(
        text.contains("Crypto requests shed (queue full): 0"),
        "{text}"
    );
    // Admission control: nothing half-open once the SAs are up, nothing refused.
    assert!(
        text.contains("half-open responder exchanges: 0; first messages refused: 0 over Max-half-open, 0 over Max-half-open-per-address, 0 over Aggressive-mode-rate"),
        "{text}"
    );
    // Timers (rekey, expiry) and the configuration, with the key blanked.
    let timers = text
        .split("Pending timers:")
        .nth(1)
        .expect("timers section");
    assert!(
        timers
            .lines()
            .filter(|l| l.trim_start().starts_with("in "))
            .count()
            >= 2,
        "{text}"
    );
    assert!(
        text.contains("Running configuration:") && text.contains(&format!("[{EAST_PEER_SECTION}]")),
        "{text}"
    );
    let mode = std::fs::metadata(&report)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(
        mode.ok(),
        Some(0o600),
        "the report names SPIs and peers: owner only"
    );
}

/// With `-j 0` the crypto runs in the child: the same queue, served by one worker in the
/// child, brings the SAs up and is reported.
#[test]
fn without_helpers_the_queue_is_served_in_the_child() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("rj0", &["-n", "-v", "-j", "0"]);
    let report = pair.east.dir.join("isakmpd.report");
    let _ = std::fs::remove_file(&report);
    pair.east.signal("USR1");
    assert!(
        e2e::wait_until(Duration::from_secs(10), || report.exists()),
        "no report\n{}",
        pair.logs()
    );
    let text = std::fs::read_to_string(&report).expect("report");
    assert!(text.contains("Phase 2 (IPsec SAs): 1"), "{text}");
    assert!(
        text.contains("Crypto queue: 0 waiting, 0 in service, capacity 4096"),
        "{text}"
    );
    assert!(
        pair.logs().contains("-j 0: crypto runs in the child"),
        "{}",
        pair.logs()
    );
}
