//! Five road-warrior daemons against one office gateway, each in its own namespace, all
//! under the office's one passive connection (`[Phase 1] Default`, a Remote-ID range):
//! every client gets its own tunnel in the office's report, its own policies in the
//! office's kernel and its own updown runs. (Ping from each client over ESP is
//! `datapath.rs`'s `esp_road_warriors_each_ping_through_their_own_tunnel`.)

use e2e::road::*;
use e2e::xfrm::{self, our_reqids};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const CLIENTS: usize = 5;
const UP: Duration = Duration::from_secs(60);

/// The outbound policy blocks of `ip xfrm policy` text from `src` to `dst` with one of our
/// reqids.
fn out_policies(text: &str, src: &str, dst: &str) -> usize {
    let head = format!("src {src} dst {dst}");
    text.split("\nsrc ")
        .map(|b| {
            if b.starts_with("src ") {
                b.to_string()
            } else {
                format!("src {b}")
            }
        })
        .filter(|b| b.starts_with(&head) && b.contains("dir out") && !our_reqids(b).is_empty())
        .count()
}

#[test]
fn five_road_warriors_get_a_tunnel_and_policies_each() {
    e2e::require_env!();
    // The office with the kernel (its SAs are refused where the kernel has no ESP, its
    // policies are not); the clients without.
    let road = Road::start(
        "rwk",
        CLIENTS,
        None,
        &["-v", "-j", "1"],
        &["-n", "-v", "-j", "1"],
    )
    .expect("start");
    road.wait_up(UP).unwrap_or_else(|e| panic!("{e}"));
    let policy = xfrm::show(&road.net.office, "policy");
    for i in 0..CLIENTS {
        let host = format!("{}/32", client_host(i));
        assert_eq!(
            out_policies(&policy, "10.2.0.0/16", &host),
            1,
            "client {i}: no outbound policy of its own\n{policy}\n{}",
            road.logs()
        );
    }
    // The report: one SA bundle per client, none taken for another's replacement.
    let report = road.office.report();
    let bundles = report
        .lines()
        .filter(|l| l.contains(OFFICE_CONNECTION) && l.contains("10.1.0."))
        .count();
    assert!(bundles >= CLIENTS, "{report}");
    assert!(!report.contains("replaced, expiring"), "{report}");
}

#[test]
fn updown_runs_once_for_each_road_warrior() {
    e2e::require_env!();
    let dir = std::path::PathBuf::from(format!("/var/run/fzike{}rwud", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let record = dir.join("record");
    let script = dir.join("updown.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PLUTO_VERB|$PLUTO_PEER|$PLUTO_PEER_CLIENT\" >> {}\n",
            record.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let road = Road::start(
        "rwu",
        CLIENTS,
        Some(&script),
        &["-n", "-v", "-j", "1"],
        &["-n", "-v", "-j", "1"],
    )
    .expect("start");
    road.wait_up(UP).unwrap_or_else(|e| panic!("{e}"));
    let ups = |t: &str| t.lines().filter(|l| l.starts_with("up-client|")).count();
    e2e::wait_until(Duration::from_secs(10), || {
        ups(&std::fs::read_to_string(&record).unwrap_or_default()) >= CLIENTS
    });
    let text = std::fs::read_to_string(&record).unwrap_or_default();
    for i in 0..CLIENTS {
        let line = format!("up-client|{}|{}/32", client_addr(i), client_host(i));
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            1,
            "client {i}: {line:?} not run once\n{text}\n{}",
            road.logs()
        );
    }
    assert_eq!(ups(&text), CLIENTS, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
