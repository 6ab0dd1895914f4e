//! Two daemons negotiate, the kernel holds the SAs, and `ping` between the client subnets
//! crosses ESP: tunnel mode with AES-CBC and with AES-GCM, transport mode host to host, an
//! on-demand connection brought up by the first packet, 20-second lifetimes rekeyed under a
//! ping every 0.2 s without a loss, a masquerading NAT between the gateways (ESP in UDP on
//! 4500), and nothing of ours left in either namespace after SIGTERM.
//!
//! Every scenario needs a kernel with ESP: natively where the host has it, otherwise all of
//! them run in one QEMU guest booted by `guest_runs_the_esp_scenarios` (see `e2e::vm`).
//!
//! ```text
//!   10.1.0.0/16 --- east 192.0.2.1 ===== veth ===== 192.0.2.2 west --- 10.2.0.0/16
//!   (NAT:  east 192.168.1.2 == nat 192.168.1.1 | 192.0.2.3 == west 192.0.2.2)
//! ```

use e2e::daemon::Daemon;
use e2e::netns::Netns;
use e2e::ping::ping;
use e2e::xfrm::{self, esp_packets, our_reqids};
use std::time::{Duration, Instant};

/// The guest is some 20x slower than the host: timeouts are generous.
const UP: Duration = Duration::from_secs(90);
const ARGS: &[&str] = &["-v", "-j", "1"];
const PSK: &str = "datapath-Hk3m9Qz2";

/// What differs between the scenarios' configurations.
#[derive(Clone)]
struct Setup {
    suite: &'static str,
    /// Subnets 10.1/16 and 10.2/16 in tunnel mode, or host to host (the suite says
    /// transport).
    subnets: bool,
    /// East's connection in `Passive-connections` (on demand) instead of `Connections`.
    on_demand: bool,
    /// Phase 1 and phase 2 lifetimes, seconds (`None`: the defaults).
    lifetimes: Option<(u64, u64)>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            suite: "QM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE",
            subnets: true,
            on_demand: false,
            lifetimes: None,
        }
    }
}

/// One side's isakmpd.conf. `me`/`peer` are the addresses the side binds and talks to;
/// west only answers.
fn conf(east: bool, me: &str, peer: &str, s: &Setup) -> String {
    let (mine, theirs) = if east {
        ("10.1.0.0", "10.2.0.0")
    } else {
        ("10.2.0.0", "10.1.0.0")
    };
    let list = if east && !s.on_demand {
        "Connections"
    } else {
        "Passive-connections"
    };
    let mut general = String::from("Retransmits=\t5\nExchange-max-time=\t60\n");
    if let Some((p1, p2)) = s.lifetimes {
        general.push_str(&format!(
            "Default-phase-1-lifetime=\t{p1},10:86400\nDefault-phase-2-lifetime=\t{p2},10:86400\n"
        ));
    }
    let ids = if s.subnets {
        format!(
            "Local-ID=\tnet-mine\nRemote-ID=\tnet-theirs\n\n\
             [net-mine]\nID-type=\tIPV4_ADDR_SUBNET\nNetwork=\t{mine}\nNetmask=\t255.255.0.0\n\n\
             [net-theirs]\nID-type=\tIPV4_ADDR_SUBNET\nNetwork=\t{theirs}\nNetmask=\t255.255.0.0\n"
        )
    } else {
        String::new()
    };
    format!(
        "[General]\n{general}\n\
         [Phase 1]\n{peer}=\tpeer\n\n\
         [Phase 2]\n{list}=\tconn\n\n\
         [peer]\nPhase=\t1\nLocal-address=\t{me}\nAddress=\t{peer}\n\
         Configuration=\tmm\nAuthentication=\t{PSK}\n\n\
         [mm]\nEXCHANGE_TYPE=\tID_PROT\nTransforms=\tAES-128-SHA-GRP14\n\n\
         [conn]\nPhase=\t2\nISAKMP-peer=\tpeer\nConfiguration=\tqm\n{ids}\n\
         [qm]\nEXCHANGE_TYPE=\tQUICK_MODE\nSuites=\t{}\n",
        s.suite
    )
}

/// The namespaces (and for the NAT case the router between them); dropped last.
struct Net {
    east: Netns,
    west: Netns,
    _nat: Option<Netns>,
    /// The addresses east and west use towards each other (east's as west sees it).
    east_addr: &'static str,
    east_seen_as: &'static str,
    west_addr: &'static str,
}

fn net(tag: &str, nat: bool) -> Net {
    let east = Netns::new(&format!("{tag}e")).expect("netns");
    let west = Netns::new(&format!("{tag}w")).expect("netns");
    let (east_addr, east_seen_as, router) = if nat {
        let r = Netns::new(&format!("{tag}n")).expect("netns");
        Netns::link_named(
            &east,
            "lan0",
            "192.168.1.2/24",
            &r,
            "lan0",
            "192.168.1.1/24",
        )
        .expect("east-nat link");
        Netns::link_named(&r, "wan0", "192.0.2.3/24", &west, "wan0", "192.0.2.2/24")
            .expect("nat-west link");
        east.exec(&["ip", "route", "add", "default", "via", "192.168.1.1"])
            .expect("east default route");
        r.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            .expect("forwarding");
        r.masquerade("wan0");
        ("192.168.1.2", "192.0.2.3", Some(r))
    } else {
        Netns::link(&east, "192.0.2.1/24", &west, "192.0.2.2/24").expect("link");
        ("192.0.2.1", "192.0.2.1", None)
    };
    // The client subnets: an address on lo behind each gateway, and the route to the other.
    east.exec(&["ip", "addr", "add", "10.1.0.1/16", "dev", "lo"])
        .expect("addr");
    west.exec(&["ip", "addr", "add", "10.2.0.1/16", "dev", "lo"])
        .expect("addr");
    let west_gw = "192.0.2.2";
    let east_gw = east_seen_as;
    if nat {
        east.exec(&[
            "ip",
            "route",
            "add",
            "10.2.0.0/16",
            "via",
            "192.168.1.1",
            "src",
            "10.1.0.1",
        ])
        .expect("route");
    } else {
        east.exec(&[
            "ip",
            "route",
            "add",
            "10.2.0.0/16",
            "via",
            west_gw,
            "src",
            "10.1.0.1",
        ])
        .expect("route");
    }
    west.exec(&[
        "ip",
        "route",
        "add",
        "10.1.0.0/16",
        "via",
        east_gw,
        "src",
        "10.2.0.1",
    ])
    .expect("route");
    Net {
        east,
        west,
        _nat: router,
        east_addr,
        east_seen_as,
        west_addr: "192.0.2.2",
    }
}

struct Gateways {
    east: Daemon,
    west: Daemon,
    net: Net,
}

impl Gateways {
    fn start(tag: &str, nat: bool, s: &Setup) -> Gateways {
        let net = net(tag, nat);
        let wconf = conf(false, net.west_addr, net.east_seen_as, s);
        let econf = conf(true, net.east_addr, net.west_addr, s);
        let west = Daemon::start(&net.west, &format!("{tag}w"), &wconf, ARGS).expect("west");
        let east = Daemon::start(&net.east, &format!("{tag}e"), &econf, ARGS).expect("east");
        Gateways { east, west, net }
    }

    fn logs(&self) -> String {
        format!(
            "--- east:\n{}\n--- west:\n{}\n--- east xfrm:\n{}\n{}",
            self.east.log_text(),
            self.west.log_text(),
            xfrm::show(&self.net.east, "state"),
            xfrm::show(&self.net.east, "policy")
        )
    }

    fn wait_up(&self) {
        let ok = e2e::wait_until(UP, || {
            self.east.log_count("phase 2 established") >= 1
                && self.west.log_count("phase 2 established") >= 1
        });
        assert!(ok, "not up within {UP:?}\n{}", self.logs());
        for d in [&self.east, &self.west] {
            assert_eq!(d.log_count("kernel refused"), 0, "{}", self.logs());
        }
    }

    /// SIGTERM both; then nothing with our reqids is left in either namespace.
    fn stop_and_check_clean(mut self) {
        for d in [&self.east, &self.west] {
            d.signal("TERM");
        }
        for d in [&mut self.east, &mut self.west] {
            assert!(
                d.wait_exit(Duration::from_secs(30)).is_some(),
                "did not exit"
            );
        }
        for ns in [&self.net.east, &self.net.west] {
            for what in ["state", "policy"] {
                let text = xfrm::show(ns, what);
                assert!(
                    our_reqids(&text).is_empty(),
                    "left after SIGTERM in {}:\n{text}",
                    ns.name
                );
            }
        }
    }
}

/// Ping once a second until an answer comes: the first SAs of a fresh kernel can take
/// seconds to install while it loads the crypto modules (3-4 s seen in the guest).
fn wait_for_tunnel(g: &Gateways, src: &str, dst: &str) -> Duration {
    let start = Instant::now();
    while start.elapsed() < UP {
        if ping(&g.net.east.name, src, dst, 1, Duration::from_secs(1)).1 == 1 {
            return start.elapsed();
        }
    }
    panic!("no answer {src} -> {dst} within {UP:?}\n{}", g.logs());
}

/// Ping through the tunnel and show that ESP carried it.
fn ping_crosses_esp(g: &Gateways, src: &str, dst: &str) {
    wait_for_tunnel(g, src, dst);
    let before = esp_packets(&g.net.east);
    let (sent, got) = ping(&g.net.east.name, src, dst, 5, Duration::from_millis(200));
    assert_eq!((sent, got), (5, 5), "ping {src} -> {dst}\n{}", g.logs());
    let after = esp_packets(&g.net.east);
    // Five requests out and five replies in, each counted on one of east's ESP SAs.
    assert!(
        after >= before + 10,
        "ESP counters {before} -> {after}\n{}",
        g.logs()
    );
    println!(
        "ping {src} -> {dst}: 5/5, east's ESP SAs counted {} packets",
        after - before
    );
}

/// Bring the gateways up with `s`, ping `src` -> `dst` over ESP, check that east's SAs
/// show every one of `state_has`, and stop clean.
fn ping_over(tag: &str, s: &Setup, src: &str, dst: &str, state_has: &[&str]) {
    let g = Gateways::start(tag, false, s);
    g.wait_up();
    ping_crosses_esp(&g, src, dst);
    let st = xfrm::show(&g.net.east, "state");
    for want in state_has {
        assert!(st.contains(want), "no {want:?} in:\n{st}");
    }
    g.stop_and_check_clean();
}

#[test]
fn esp_tunnel_aes_cbc_then_clean_after_sigterm() {
    e2e::require_esp!();
    ping_over(
        "dpt",
        &Setup::default(),
        "10.1.0.1",
        "10.2.0.1",
        &["enc cbc(aes)", "hmac(sha256)"],
    );
}

#[test]
fn esp_tunnel_aes_gcm() {
    e2e::require_esp!();
    let s = Setup {
        suite: "QM-ESP-AES-GCM-128-SUITE",
        ..Setup::default()
    };
    ping_over("dpg", &s, "10.1.0.1", "10.2.0.1", &["rfc4106(gcm(aes))"]);
}

#[test]
fn esp_transport_host_to_host() {
    e2e::require_esp!();
    let s = Setup {
        suite: "QM-ESP-TRP-AES-SHA-SUITE",
        subnets: false,
        ..Setup::default()
    };
    ping_over("dpx", &s, "192.0.2.1", "192.0.2.2", &["mode transport"]);
}

#[test]
fn esp_on_demand_comes_up_with_the_first_ping() {
    e2e::require_esp!();
    let s = Setup {
        on_demand: true,
        ..Setup::default()
    };
    let g = Gateways::start("dpo", false, &s);
    // Trapped: policies, no negotiation.
    assert!(
        e2e::wait_until(Duration::from_secs(20), || {
            our_reqids(&xfrm::show(&g.net.east, "policy")).len() >= 3
        }),
        "no policies before any SA\n{}",
        g.logs()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(g.east.log_count("phase 1 established"), 0, "{}", g.logs());
    // The first packets are held or dropped while the SAs are negotiated; ping until one
    // answers.
    let took = wait_for_tunnel(&g, "10.1.0.1", "10.2.0.1");
    assert!(g.east.log_count("ACQUIRE") >= 1, "{}", g.logs());
    println!("on demand: first answer after {took:?}");
    ping_crosses_esp(&g, "10.1.0.1", "10.2.0.1");
    g.stop_and_check_clean();
}

#[test]
fn esp_rekey_under_ping_loses_nothing() {
    e2e::require_esp!();
    let s = Setup {
        lifetimes: Some((30, 20)),
        ..Setup::default()
    };
    let g = Gateways::start("dpr", false, &s);
    g.wait_up();
    wait_for_tunnel(&g, "10.1.0.1", "10.2.0.1");
    // 45 s of pings every 0.2 s: at least two phase-2 and one phase-1 rekey.
    let (sent, got) = ping(
        &g.net.east.name,
        "10.1.0.1",
        "10.2.0.1",
        225,
        Duration::from_millis(200),
    );
    let p2 = g.east.log_count("phase 2 established");
    let p1 = g.east.log_count("phase 1 established");
    println!("rekey: {got}/{sent} answered; east saw {p1} phase 1 and {p2} phase 2 SAs");
    assert_eq!(sent, 225, "{}", g.logs());
    assert_eq!(got, sent, "pings lost across rekeys\n{}", g.logs());
    assert!(
        p2 >= 3,
        "phase 2 rekeyed only {} times\n{}",
        p2 - 1,
        g.logs()
    );
    assert!(p1 >= 2, "phase 1 never rekeyed\n{}", g.logs());
    g.stop_and_check_clean();
}

#[test]
fn esp_through_masquerading_nat_over_4500() {
    e2e::require_esp!();
    let g = Gateways::start("dpn", true, &Setup::default());
    g.wait_up();
    ping_crosses_esp(&g, "10.1.0.1", "10.2.0.1");
    let st = xfrm::show(&g.net.east, "state");
    assert!(st.contains("encap type espinudp"), "{st}");
    assert!(st.contains("dport 4500"), "{st}");
    g.stop_and_check_clean();
}

/// Three road warriors under the office's one passive connection: each client's own
/// host pings the office network through its own tunnel, and the office holds one set of
/// policies per client.
#[test]
fn esp_road_warriors_each_ping_through_their_own_tunnel() {
    e2e::require_esp!();
    use e2e::road::{client_host, Road};
    const N: usize = 3;
    let road = Road::start("dpr", N, None, ARGS, ARGS).expect("start");
    road.wait_up(UP).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..N {
        let (ns, host) = (&road.net.clients[i].name, client_host(i));
        let start = Instant::now();
        while ping(ns, &host, "10.2.0.1", 1, Duration::from_secs(1)).1 != 1 {
            assert!(
                start.elapsed() < UP,
                "client {i}: no answer from {host}\n{}",
                road.logs()
            );
        }
        let (sent, got) = ping(ns, &host, "10.2.0.1", 5, Duration::from_millis(200));
        assert_eq!((sent, got), (5, 5), "client {i}\n{}", road.logs());
    }
    let policy = xfrm::show(&road.net.office, "policy");
    for i in 0..N {
        let head = format!("src 10.2.0.0/16 dst {}/32", client_host(i));
        assert!(policy.contains(&head), "no {head:?} in:\n{policy}");
    }
    // Every client's traffic went over ESP: at least 6 packets each way per client.
    let esp = esp_packets(&road.net.office);
    assert!(
        esp >= (N as u64) * 12,
        "office ESP counters {esp}\n{policy}"
    );
    println!("{N} road warriors: 6/6 pings each, the office's ESP SAs counted {esp} packets");
}

/// Boots one guest for all the `esp_` scenarios when the host kernel has no ESP.
#[test]
fn guest_runs_the_esp_scenarios() {
    e2e::vm::run_tests_in_guest("esp_", Duration::from_secs(1800));
}
