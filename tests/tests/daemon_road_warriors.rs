//! Five road-warrior daemons against one office gateway, each in its own namespace, all
//! under the office's one passive connection (`[Phase 1] Default`, a Remote-ID range):
//! every client gets its own tunnel in the office's report, its own policies in the
//! office's kernel and its own updown runs. (Ping from each client over ESP is
//! `datapath.rs`'s `esp_road_warriors_each_ping_through_their_own_tunnel`.)

use e2e::road::*;
use e2e::updown::UpdownRecorder;
use e2e::xfrm::{self, our_reqids};
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
    let recorder = UpdownRecorder::new("rwud", "$PLUTO_VERB|$PLUTO_PEER|$PLUTO_PEER_CLIENT", "")
        .expect("updown script");
    let road = Road::start(
        "rwu",
        CLIENTS,
        Some(&recorder.script),
        &["-n", "-v", "-j", "1"],
        &["-n", "-v", "-j", "1"],
    )
    .expect("start");
    road.wait_up(UP).unwrap_or_else(|e| panic!("{e}"));
    let ups = |t: &str| t.lines().filter(|l| l.starts_with("up-client|")).count();
    let text = recorder.wait(Duration::from_secs(10), |t| ups(t) >= CLIENTS);
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
}

/// `-T` on a road warrior behind a masquerading NAT: it announces no NAT traversal, so
/// neither side floats to port 4500 (for which `-T` binds no socket) and the tunnel comes
/// up on port 500. Before, the vendor IDs still went out and the exchange floated to a
/// port with no socket and stalled.
#[test]
fn minus_t_behind_a_nat_stays_on_port_500_and_comes_up() {
    e2e::require_env!();
    use e2e::daemon::Daemon;
    use e2e::netns::Netns;
    let client = Netns::new("rwtc").expect("netns");
    let router = Netns::new("rwtr").expect("netns");
    let office = Netns::new("rwto").expect("netns");
    Netns::link_named(
        &client,
        "lan0",
        "192.168.7.2/24",
        &router,
        "lan0",
        "192.168.7.1/24",
    )
    .expect("link");
    Netns::link_named(
        &router,
        "wan0",
        "198.51.100.1/30",
        &office,
        "wan0",
        "198.51.100.2/30",
    )
    .expect("link");
    client
        .exec(&["ip", "route", "add", "default", "via", "192.168.7.1"])
        .expect("route");
    router
        .exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .expect("forwarding");
    router.masquerade("wan0");
    let o = Daemon::start(
        &office,
        "rwto",
        &office_conf(None),
        &["-n", "-v", "-j", "1"],
    )
    .expect("office");
    let conf = client_conf_at("192.168.7.2", "198.51.100.2", "10.1.0.1");
    let c = Daemon::start(&client, "rwtc", &conf, &["-T", "-n", "-v", "-j", "1"]).expect("client");
    let logs = || {
        format!(
            "--- client:\n{}\n--- office:\n{}",
            c.log_text(),
            o.log_text()
        )
    };
    let up = e2e::wait_until(Duration::from_secs(30), || {
        c.log_count("phase 2 established") >= 1 && o.log_count("phase 2 established") >= 1
    });
    assert!(up, "not up through the NAT with -T\n{}", logs());
    assert_eq!(c.log_count("(NAT-T)"), 0, "{}", logs());
    assert_eq!(c.log_count("no socket to send"), 0, "{}", logs());
    assert_eq!(o.log_count("NAT detected"), 0, "{}", logs());
}
