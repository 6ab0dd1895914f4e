//! The daemon with the kernel (no `-n`), on any kernel with XFRM netlink, ESP or not:
//! policies for the negotiated selectors go in, an SA the kernel refuses is one clear log
//! line and the daemon goes on, what an earlier run left is removed at start, other
//! software's policies are never touched, and after SIGTERM nothing of ours is left.
//! (ESP traffic through the SAs is `datapath.rs`.)

use e2e::daemon::Daemon;
use e2e::pair::*;
use e2e::xfrm::{self, our_reqids};
use std::time::Duration;

const ARGS: &[&str] = &["-v", "-j", "1"];

/// An outbound tunnel policy `src` -> `dst` in east's namespace, made by hand (not by the
/// daemon), from east's 192.0.2.1 to `peer` with `reqid`.
fn add_out_policy(pair: &Pair, src: &str, dst: &str, peer: &str, reqid: u32) {
    let reqid = reqid.to_string();
    pair.ns_east
        .exec(&[
            "ip",
            "xfrm",
            "policy",
            "add",
            "src",
            src,
            "dst",
            dst,
            "dir",
            "out",
            "tmpl",
            "src",
            "192.0.2.1",
            "dst",
            peer,
            "proto",
            "esp",
            "reqid",
            &reqid,
            "mode",
            "tunnel",
        ])
        .unwrap_or_else(|e| panic!("policy {src} -> {dst} reqid {reqid}: {e}"));
}

#[test]
fn policies_installed_refusals_logged_leftovers_flushed_nothing_left_after_sigterm() {
    e2e::require_env!();
    let east_conf = example_conf("east").expect("example");
    let west_conf = example_conf("west").expect("example");
    let mut pair =
        Pair::start("krn", (&east_conf, &[]), (&west_conf, &[]), ARGS).expect("start the pair");
    if let Err(e) = pair.wait_up(Duration::from_secs(30)) {
        panic!("{e}\n{}", pair.logs());
    }
    let esp = e2e::vm::host_has_esp();

    // Policies out/in/fwd for 10.1/16 <=> 10.2/16 with the connection's reqid, both sides.
    for (ns, local, remote) in [
        (&pair.ns_east, "10.1.0.0/16", "10.2.0.0/16"),
        (&pair.ns_west, "10.2.0.0/16", "10.1.0.0/16"),
    ] {
        let pol = xfrm::show(ns, "policy");
        for dir in ["out", "in", "fwd"] {
            assert!(
                pol.contains(&format!("dir {dir}")),
                "no {dir} policy:\n{pol}"
            );
        }
        assert!(
            pol.contains(&format!("src {local} dst {remote}"))
                && pol.contains(&format!("src {remote} dst {local}")),
            "{pol}"
        );
        assert_eq!(our_reqids(&pol), vec![0x4001; 3], "{pol}");
    }

    if esp {
        println!("this kernel has ESP: checking that the SAs are in it instead of refusals");
        let st = xfrm::show(&pair.ns_east, "state");
        assert_eq!(our_reqids(&st).len(), 2, "{st}");
    } else {
        // Each side refuses its inbound and its outbound SA, each with one line that names
        // the SA and the reason; the daemons go on.
        for d in [&pair.east, &pair.west] {
            let refusals: Vec<String> = d
                .logs()
                .into_iter()
                .filter(|l| l.contains("kernel refused ESP SA 0x"))
                .collect();
            assert!(refusals.len() >= 2, "{}", pair.logs());
            for l in &refusals {
                assert!(l.contains("EPROTONOSUPPORT"), "{l}");
                assert!(l.contains(" -> "), "{l}");
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(pair.east.try_exit().is_none(), "{}", pair.logs());
        assert!(pair.west.try_exit().is_none(), "{}", pair.logs());
    }

    // The report carries the kernel's view of our SAs.
    let report = pair.east.dir.join("isakmpd.report");
    let _ = std::fs::remove_file(&report);
    pair.east.signal("USR1");
    assert!(e2e::wait_until(Duration::from_secs(10), || report.exists()));
    let text = std::fs::read_to_string(&report).expect("report");
    assert!(text.contains("Kernel SAs (XFRM): "), "{text}");
    assert!(!text.contains("counters: none"), "{text}");

    // Someone else's policy in east's namespace, and then SIGTERM: ours go, theirs stays.
    add_out_policy(&pair, "10.9.0.0/16", "10.8.0.0/16", "192.0.2.9", 7);
    pair.east.signal("TERM");
    assert!(
        pair.east.wait_exit(Duration::from_secs(15)).is_some(),
        "{}",
        pair.logs()
    );
    let (pol, st) = (
        xfrm::show(&pair.ns_east, "policy"),
        xfrm::show(&pair.ns_east, "state"),
    );
    assert!(our_reqids(&pol).is_empty(), "left after SIGTERM:\n{pol}");
    assert!(our_reqids(&st).is_empty(), "left after SIGTERM:\n{st}");
    assert!(pol.contains("src 10.9.0.0/16 dst 10.8.0.0/16"), "{pol}");

    // Leftovers of an earlier run (a policy and a larval SA with our reqids) go at start.
    add_out_policy(&pair, "10.7.0.0/16", "10.6.0.0/16", "192.0.2.2", 16389);
    pair.ns_east
        .exec(&[
            "ip",
            "xfrm",
            "state",
            "allocspi",
            "src",
            "192.0.2.2",
            "dst",
            "192.0.2.1",
            "proto",
            "esp",
            "reqid",
            "16389",
            "mode",
            "tunnel",
        ])
        .expect("stale larval SA");
    let again = Daemon::start(&pair.ns_east, "krn2", &east_conf, ARGS).expect("restart");
    assert!(
        again.wait_log(
            "policies of ours left by an earlier run",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        again.log_text()
    );
    assert!(
        again
            .log_text()
            .contains("removed 1 SAs and 1 policies of ours left by an earlier run"),
        "{}",
        again.log_text()
    );
    let pol = xfrm::show(&pair.ns_east, "policy");
    assert!(!pol.contains("10.7.0.0/16"), "{pol}");
    assert!(pol.contains("src 10.9.0.0/16 dst 10.8.0.0/16"), "{pol}");
}

#[test]
fn no_flows_flag_installs_no_policies() {
    e2e::require_env!();
    let mut pair = Pair::start(
        "krna",
        (&example_conf("east").expect("example"), &[]),
        (&example_conf("west").expect("example"), &[]),
        &["-v", "-j", "1", "-a"],
    )
    .expect("start the pair");
    if let Err(e) = pair.wait_up(Duration::from_secs(30)) {
        panic!("{e}\n{}", pair.logs());
    }
    for ns in [&pair.ns_east, &pair.ns_west] {
        let pol = xfrm::show(ns, "policy");
        assert!(our_reqids(&pol).is_empty(), "-a, yet:\n{pol}");
    }
    // The SAs are still asked for: refused here for lack of ESP, or in the kernel.
    assert!(
        pair.east
            .logs()
            .iter()
            .any(|l| l.contains("kernel refused ESP SA"))
            || our_reqids(&xfrm::show(&pair.ns_east, "state")).len() >= 2,
        "{}",
        pair.logs()
    );
}

/// ICMP echo requests the kernel of `ns` has received (its /proc/net/snmp).
fn echo_requests_in(ns: &e2e::netns::Netns) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/snmp"]).unwrap_or_default();
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(names), Some(values)) = (icmp.next(), icmp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InEchos")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Fail-closed (the default): east's connection has its policies before west is even
/// running, so a ping between the client subnets never reaches west in the clear (west's
/// kernel counts no echo request). With `Fail-closed=no` the same ping crosses in the
/// clear, as with isakmpd, which shows the test would see a leak.
#[test]
fn fail_closed_nothing_crosses_in_the_clear_before_the_tunnel() {
    e2e::require_env!();
    use e2e::netns::Netns;
    for closed in [true, false] {
        let tag = if closed { "fcc" } else { "fco" };
        let east = Netns::new(&format!("{tag}e")).expect("netns");
        let west = Netns::new(&format!("{tag}w")).expect("netns");
        Netns::link(&east, "192.0.2.1/24", &west, "192.0.2.2/24").expect("link");
        for (ns, own, other, via) in [
            (&east, "10.1.0.1", "10.2.0.0/16", "192.0.2.2"),
            (&west, "10.2.0.1", "10.1.0.0/16", "192.0.2.1"),
        ] {
            ns.exec(&["ip", "addr", "add", &format!("{own}/16"), "dev", "lo"])
                .expect("addr");
            ns.exec(&["ip", "route", "add", other, "via", via, "src", own])
                .expect("route");
        }
        let mut conf = example_conf("east").expect("example");
        if !closed {
            conf = conf.replacen("[General]\n", "[General]\nFail-closed=\tno\n", 1);
        }
        // West runs no daemon: the tunnel cannot come up.
        let d = e2e::daemon::Daemon::start(&east, tag, &conf, ARGS).expect("east");
        assert!(
            d.wait_log("initiating", 1, Duration::from_secs(20)),
            "{}",
            d.log_text()
        );
        let before = echo_requests_in(&west);
        let (sent, got) = e2e::ping::ping(
            &east.name,
            "10.1.0.1",
            "10.2.0.1",
            5,
            Duration::from_millis(200),
        );
        let crossed = echo_requests_in(&west) - before;
        if closed {
            let policy = xfrm::show(&east, "policy");
            assert!(
                policy.contains("src 10.1.0.0/16 dst 10.2.0.0/16"),
                "no policy before the tunnel:\n{policy}\n{}",
                d.log_text()
            );
            assert_eq!((sent, got, crossed), (5, 0, 0), "{}", d.log_text());
        } else {
            assert_eq!((sent, got, crossed), (5, 5, 5), "{}", d.log_text());
        }
    }
}
