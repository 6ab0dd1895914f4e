//! Engine pairs configured from isakmpd.conf text, as the daemon will be: the parent's
//! secrets go to the helpers, the child's policy is built from the redacted copy. Also the
//! engine features that need particular configurations: range and port selectors,
//! RESPONDER-LIFETIME, INITIAL-CONTACT, kernel soft expiry.

mod sim;

use ike::conf::Conf;
use ike::engine::{Direction, Event, KernelEvent};
use ike::policy::{redact_secrets, secrets, IpsecProtocol, Policy};
use sim::setup::{timers, A_IP, B_IP};
use sim::{sas_pair_up, Node, Sim, Store};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One gateway's isakmpd.conf; `{me}`, `{peer}`, `{mynet}`, `{peernet}` filled in.
const GATEWAY: &str = "\
[General]
Retransmits=\t\t5

[Phase 1]
{peer}=\t\tpeer-gw

[Phase 2]
Connections=\t\tnet-to-net

[peer-gw]
Phase=\t\t\t1
Local-address=\t\t{me}
Address=\t\t{peer}
Configuration=\t\tmm
Authentication=\t\tsesame#open

[mm]
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-256-SHA2-256-GRP14,3DES-SHA

[net-to-net]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-gw
Configuration=\t\tqm
Local-ID=\t\tmy-net
Remote-ID=\t\tpeer-net

[my-net]
{mynet}

[peer-net]
{peernet}

[qm]
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\t{suites}
";

fn conf(me: &str, peer: &str, mynet: &str, peernet: &str, suites: &str) -> Conf {
    let text = GATEWAY
        .replace("{me}", me)
        .replace("{peer}", peer)
        .replace("{mynet}", mynet)
        .replace("{peernet}", peernet)
        .replace("{suites}", suites);
    Conf::parse(&text).expect("configuration parses")
}

/// A node as the daemon would build it: helpers get the secrets, the engine the redacted policy.
fn node(name: &'static str, ip: IpAddr, conf: &Conf, seed: u64, now: Instant) -> Node {
    let mut store = Store::default();
    for (section, key) in secrets(conf) {
        store.psks.insert(section, key.to_vec());
    }
    let child_conf = redact_secrets(conf);
    assert!(
        !child_conf.dump().contains("sesame"),
        "the child's configuration holds the key"
    );
    let policy = Policy::from_conf(&child_conf).expect("policy");
    Node::new(name, ip, policy, store, timers(), seed, now)
}

fn pair(a: Conf, b: Conf, seed: u64) -> Sim {
    let now = Instant::now();
    Sim::new(
        node("A", IpAddr::V4(A_IP), &a, seed, now),
        node("B", IpAddr::V4(B_IP), &b, seed + 1, now),
        now,
    )
}

const SUBNET_A: &str = "ID-type=IPV4_ADDR_SUBNET\nNetwork=10.1.0.0\nNetmask=255.255.0.0";
const SUBNET_B: &str = "ID-type=IPV4_ADDR_SUBNET\nNetwork=10.2.0.0\nNetmask=255.255.0.0";

fn up(s: &Sim) -> bool {
    s.a.phase2_up("net-to-net") >= 1 && s.b.phase2_up("net-to-net") >= 1
}

#[test]
fn gateways_configured_by_isakmpd_conf_negotiate() {
    let suites = "QM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE,QM-ESP-3DES-SHA-PFS-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    let mut sim = pair(a, b, 1);
    sim.a.engine.start_active(sim.now);
    assert!(
        sim.run_until(Duration::from_secs(30), up),
        "{:?}\n{:?}",
        sim.a.logs,
        sim.b.logs
    );
    let out = sim.a.sas(Direction::Outbound)[0];
    assert_eq!(
        out.cipher,
        Some(ike::policy::EspCipher::AesCbc { key_bits: 256 })
    );
    assert_eq!(out.enc_key.len(), 32);
    assert_eq!(out.local.prefix_len, 16);
    assert!(sas_pair_up(&sim.a, &sim.b).is_ok() && sas_pair_up(&sim.b, &sim.a).is_ok());
    // The phase 1 summary names what was agreed.
    match sim
        .a
        .events
        .iter()
        .find(|e| matches!(e, Event::Phase1Up { .. }))
    {
        Some(Event::Phase1Up { summary, .. }) => assert!(
            summary.contains("AES-256") && summary.contains("MODP2048"),
            "{summary}"
        ),
        _ => panic!("no phase 1"),
    }
}

/// Address ranges and a protocol/port selector reach the kernel as negotiated.
#[test]
fn range_and_port_selectors() {
    let a_net = "ID-type=IPV4_ADDR_RANGE\nStart=10.1.0.10\nEnd=10.1.0.20\nProtocol=6\nPort=0";
    let b_net = "ID-type=IPV4_ADDR\nAddress=10.2.0.5\nProtocol=6\nPort=80";
    let suites = "QM-ESP-AES-SHA-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", a_net, b_net, suites);
    let b = conf("192.0.2.2", "192.0.2.1", b_net, a_net, suites);
    let mut sim = pair(a, b, 3);
    sim.a.engine.start_active(sim.now);
    assert!(
        sim.run_until(Duration::from_secs(30), up),
        "{:?}\n{:?}",
        sim.a.logs,
        sim.b.logs
    );
    let out = sim.a.sas(Direction::Outbound)[0];
    assert_eq!(out.local.range_end, Some("10.1.0.20".parse().unwrap()));
    assert_eq!(out.remote.address, "10.2.0.5".parse::<IpAddr>().unwrap());
    assert_eq!((out.remote.protocol, out.remote.port), (6, 80));
    let inb = sim.b.sas(Direction::Inbound)[0];
    assert_eq!((inb.local.protocol, inb.local.port), (6, 80));
}

/// B holds phase 2 to at most 600 s; A offers 3600 s, is told so, and uses 600 s.
#[test]
fn responder_lifetime_notify_shortens_the_initiators_lifetime() {
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, "suite-long");
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, "suite-short");
    let extra = |c: Conf, life: &str| {
        let text = format!(
            "{}\n[suite-{life}]\nProtocols=esp-{life}\n[esp-{life}]\nPROTOCOL_ID=IPSEC_ESP\nTransforms=xf-{life}\n\
             [xf-{life}]\nTRANSFORM_ID=AES\nKEY_LENGTH=128\nENCAPSULATION_MODE=TUNNEL\nAUTHENTICATION_ALGORITHM=HMAC_SHA\nLife=L-{life}\n\
             [L-{life}]\nLIFE_TYPE=SECONDS\nLIFE_DURATION={}\n",
            c.dump(),
            if life == "long" { "3600,60:86400" } else { "600,60:600" }
        );
        Conf::parse(&text).expect("parses")
    };
    let mut sim = pair(extra(a, "long"), extra(b, "short"), 5);
    sim.a.engine.start_active(sim.now);
    assert!(
        sim.run_until(Duration::from_secs(30), up),
        "{:?}\n{:?}",
        sim.a.logs,
        sim.b.logs
    );
    for node in [&sim.a, &sim.b] {
        for sa in node.kernel.sas.values() {
            assert_eq!(sa.lifetime.seconds, 600, "{}: {sa:?}", node.name);
        }
    }
}

/// A reboots (a new engine, no state) and negotiates again with INITIAL-CONTACT: B drops the
/// SAs it held with A's previous life.
#[test]
fn initial_contact_clears_the_peers_stale_sas() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    let mut sim = pair(a.clone(), b, 7);
    sim.a.engine.start_active(sim.now);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let old: Vec<(IpAddr, u32)> = sim.b.kernel.sas.values().map(|s| (s.dst, s.spi)).collect();
    sim.a = node("A", IpAddr::V4(A_IP), &a, 99, sim.now);
    sim.a.engine.start_active(sim.now);
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("net-to-net")
            >= 1
            && s.b.phase2_up("net-to-net") >= 2)
    );
    sim.advance(Duration::from_secs(2));
    for (dst, spi) in old {
        assert!(
            !sim.b
                .kernel
                .sas
                .values()
                .any(|s| s.spi == spi && s.dst == dst),
            "stale SA {spi:08x} to {dst} survived INITIAL-CONTACT"
        );
    }
    assert_eq!(sim.b.engine.phase1_sas().len(), 1);
    assert!(sas_pair_up(&sim.a, &sim.b).is_ok() && sas_pair_up(&sim.b, &sim.a).is_ok());
}

/// A soft expiry from the kernel (a kilobyte limit) starts a rekey; a hard one removes the SA.
#[test]
fn kernel_expiry_rekeys_and_removes() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    let mut sim = pair(a, b, 9);
    sim.a.engine.start_active(sim.now);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let out = sim.a.sas(Direction::Outbound)[0].clone();
    let now = sim.now;
    sim.a.engine.handle_kernel(
        now,
        KernelEvent::Expire {
            protocol: IpsecProtocol::Esp,
            spi: out.spi,
            dst: out.dst,
            hard: false,
        },
    );
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("net-to-net")
            >= 2)
    );
    let now = sim.now;
    sim.a.engine.handle_kernel(
        now,
        KernelEvent::Expire {
            protocol: IpsecProtocol::Esp,
            spi: out.spi,
            dst: out.dst,
            hard: true,
        },
    );
    let gone = |k: &sim::FakeKernel| !k.sas.values().any(|x| x.spi == out.spi && x.dst == out.dst);
    assert!(sim.run_until(Duration::from_secs(5), |s| gone(&s.b.kernel)));
    assert!(gone(&sim.a.kernel));
    // The newer SA pair is untouched (A's new outbound SA goes in a second after the
    // rekey: see the next test).
    sim.advance(Duration::from_secs(2));
    assert!(sas_pair_up(&sim.a, &sim.b).expect("pair") >= 1);
}

/// A rekeying initiator installs its new inbound SA at once but keeps sending on the old
/// outbound SA for a second, until the responder has surely installed its new inbound one
/// (strongSwan and pluto install it only when our third Quick Mode message arrives).
#[test]
fn rekeying_initiator_switches_outbound_a_second_after_its_third_message() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    let mut sim = pair(a, b, 31);
    sim.a.engine.start_active(sim.now);
    assert!(sim.run_until(Duration::from_secs(30), up));
    // The first SA pair goes in whole: there is nothing older to send on.
    assert_eq!(sim.a.sas(Direction::Outbound).len(), 1);
    assert_eq!(sim.a.sas(Direction::Inbound).len(), 1);
    let now = sim.now;
    sim.a.engine.initiate(now, "net-to-net").expect("rekey");
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("net-to-net")
            >= 2)
    );
    assert_eq!(
        sim.a.sas(Direction::Inbound).len(),
        2,
        "new inbound SA at once"
    );
    assert_eq!(
        sim.a.sas(Direction::Outbound).len(),
        1,
        "new outbound SA too early"
    );
    sim.advance(Duration::from_millis(1100));
    assert_eq!(sim.a.sas(Direction::Outbound).len(), 2);
    assert!(sas_pair_up(&sim.a, &sim.b).expect("pair") >= 2);
}

/// Road warriors share one peer section (`[Phase 1] Default`): one host's INITIAL-CONTACT
/// must not clear another host's SAs.
#[test]
fn initial_contact_of_one_road_warrior_spares_the_others() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let b_text = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites).dump();
    let b = Conf::parse(&b_text.replacen("[Phase 1]\n", "[Phase 1]\nDefault=peer-gw\n", 1))
        .expect("conf");
    let mut sim = pair(a, b, 11);
    sim.a.engine.start_active(sim.now);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let first: Vec<(IpAddr, u32)> = sim.b.kernel.sas.values().map(|s| (s.dst, s.spi)).collect();
    // A second host, 192.0.2.3, known to B only through the Default peer.
    let a2 = conf("192.0.2.3", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    sim.a = node("A", "192.0.2.3".parse().expect("ip"), &a2, 12, sim.now);
    sim.a.engine.start_active(sim.now);
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("net-to-net")
            >= 1
            && s.b.phase2_up("net-to-net") >= 2)
    );
    sim.advance(Duration::from_secs(2));
    for (dst, spi) in first {
        assert!(
            sim.b
                .kernel
                .sas
                .values()
                .any(|s| s.spi == spi && s.dst == dst),
            "the first host's SA {spi:08x} was cleared by the second host's INITIAL-CONTACT"
        );
    }
    assert_eq!(sim.b.engine.phase1_sas().len(), 2);
}

/// A reload keeps the SAs of connections that still exist unchanged, and deletes (telling
/// the peer) those whose connection is gone or now means something else.
#[test]
fn reload_keeps_unchanged_connections_and_removes_the_rest() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    let mut sim = pair(a.clone(), b, 13);
    sim.a.engine.start_active(sim.now);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let spis: Vec<u32> = sim.a.kernel.sas.values().map(|s| s.spi).collect();
    // The same configuration again: nothing moves.
    let same = Policy::from_conf(&redact_secrets(&a)).expect("policy");
    sim.a.engine.set_policy(same);
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.a.kernel.sas.values().map(|s| s.spi).collect::<Vec<_>>(),
        spis
    );
    // The connection now protects another subnet: its SAs go, on both sides.
    let other = conf(
        "192.0.2.1",
        "192.0.2.2",
        "ID-type=IPV4_ADDR_SUBNET\nNetwork=10.9.0.0\nNetmask=255.255.0.0",
        SUBNET_B,
        suites,
    );
    sim.a
        .engine
        .set_policy(Policy::from_conf(&redact_secrets(&other)).expect("policy"));
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.b.kernel.sas.is_empty()
            && s.a.kernel.sas.values().all(|x| !spis.contains(&x.spi)))
    );
    assert!(sim
        .b
        .events
        .iter()
        .any(|e| matches!(e, Event::Phase2Down { reason, .. } if reason == "deleted by peer")));
}

/// An on-demand connection (`Passive-connections`) has its policies in the kernel before any
/// SA, with our end left to the kernel when no Local-address is set; the kernel's ACQUIRE for
/// a packet it covers starts the negotiation; the peer's Delete takes the SAs but leaves
/// the policies, so the next packet brings the tunnel up again.
#[test]
fn on_demand_connections_are_trapped_and_acquire_brings_them_up() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let on_demand = |c: Conf| {
        let text = c.dump().replace("\nConnections=", "\nPassive-connections=");
        Conf::parse(&text).expect("on-demand configuration")
    };
    let a = on_demand(conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites));
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    // B is the answering side here: make it passive towards A's connection as well.
    let b = on_demand(b);
    let mut sim = pair(a, b, 21);
    sim.a.engine.start_active(sim.now);
    sim.b.engine.start_active(sim.now);
    sim.advance(Duration::from_secs(1));
    // Trapped, not started.
    let trap = sim
        .a
        .kernel
        .policies_of("net-to-net")
        .first()
        .cloned()
        .cloned()
        .unwrap_or_else(|| panic!("no trap policy: {:?}", sim.a.logs));
    assert_eq!(trap.local.address, "10.1.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(trap.remote.prefix_len, 16);
    assert_eq!(trap.remote_addr, "192.0.2.2".parse::<IpAddr>().unwrap());
    assert!(sim.a.engine.phase1_sas().is_empty() && sim.a.kernel.sas.is_empty());
    assert_eq!(sim.a.phase1_up(), 0);

    // A packet from 10.1.0.5 to 10.2.0.7 hits the trap.
    let now = sim.now;
    sim.a.engine.handle_kernel(
        now,
        KernelEvent::Acquire {
            local: "10.1.0.5".parse().unwrap(),
            remote: "10.2.0.7".parse().unwrap(),
            protocol: 1,
        },
    );
    assert!(
        sim.run_until(Duration::from_secs(30), up),
        "{:?}\n{:?}",
        sim.a.logs,
        sim.b.logs
    );
    assert!(sim
        .a
        .log_contains("ACQUIRE 10.1.0.5 -> 10.2.0.7: starting net-to-net"));
    assert!(sas_pair_up(&sim.a, &sim.b).is_ok());

    // B tears it down: A's SAs go, A's policies stay (so traffic is held, not sent clear).
    let now = sim.now;
    sim.b.engine.teardown_all(now);
    let gone = |s: &Sim| s.a.kernel.sas.is_empty();
    assert!(
        sim.run_until(Duration::from_secs(10), gone),
        "{:?}",
        sim.a.logs
    );
    assert!(sim.a.kernel.has_policy("net-to-net"));

    // The next packet brings it back.
    let now = sim.now;
    sim.a.engine.handle_kernel(
        now,
        KernelEvent::Acquire {
            local: "10.1.0.5".parse().unwrap(),
            remote: "10.2.0.7".parse().unwrap(),
            protocol: 1,
        },
    );
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("net-to-net")
            >= 2)
    );
    assert!(sas_pair_up(&sim.a, &sim.b).is_ok());

    // A reload that makes it a boot-time connection keeps its policies while its SAs live.
    let started = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
    let policy = Policy::from_conf(&redact_secrets(&started)).expect("policy");
    sim.a.engine.set_policy(policy);
    sim.advance(Duration::from_millis(10));
    assert!(sim.a.kernel.has_policy("net-to-net"));
    assert!(sas_pair_up(&sim.a, &sim.b).is_ok());
    // Removed by a reload: SAs and policies go.
    let other = conf("192.0.2.1", "192.0.2.9", SUBNET_A, SUBNET_B, suites);
    let text = other.dump().replace("net-to-net", "elsewhere");
    let policy =
        Policy::from_conf(&redact_secrets(&Conf::parse(&text).expect("conf"))).expect("policy");
    sim.a.engine.set_policy(policy);
    sim.advance(Duration::from_millis(10));
    assert!(
        !sim.a.kernel.has_policy("net-to-net"),
        "{:?}",
        sim.a.kernel.policies
    );
    assert!(sim.a.kernel.sas.is_empty());
    // The new connection is closed (Fail-closed) before anything is negotiated.
    assert_eq!(sim.a.kernel.policies_of("elsewhere").len(), 1);
}

/// `Keying-tries=2`: with the peer down, the watchdog (each `start_active`) starts the
/// connection twice, then says once that it stops; the operator's `c` starts it again, and
/// once it is up the count begins anew.
#[test]
fn keying_tries_stop_the_watchdog_until_the_operator_starts_the_connection() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    let tries = |c: Conf| {
        let text = c
            .dump()
            .replacen("[General]\n", "[General]\nKeying-tries=2\n", 1);
        Conf::parse(&text).expect("conf")
    };
    let a = tries(conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites));
    let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
    let mut sim = pair(a, b, 31);
    sim.b.up = false;
    let starts = |s: &Sim| {
        s.a.logs
            .iter()
            .filter(|(_, m)| m.starts_with("initiating"))
            .count()
    };
    let gave_up = |s: &Sim| {
        s.a.logs
            .iter()
            .filter(|(_, m)| m.contains("keying attempts (Keying-tries)"))
            .count()
    };
    // Five watchdog rounds, each after the last exchange has timed out.
    for _ in 0..5 {
        let now = sim.now;
        sim.a.engine.start_active(now);
        sim.advance(Duration::from_secs(70));
    }
    assert_eq!(starts(&sim), 2, "{:?}", sim.a.logs);
    assert_eq!(gave_up(&sim), 1, "{:?}", sim.a.logs);
    assert_eq!(sim.a.engine.keying_given_up(), ["net-to-net"]);
    // The operator starts it; the peer is back: it comes up.
    sim.b.up = true;
    let now = sim.now;
    sim.a.engine.initiate(now, "net-to-net").expect("initiate");
    assert!(
        sim.run_until(Duration::from_secs(30), up),
        "{:?}",
        sim.a.logs
    );
    assert_eq!(starts(&sim), 3);
    assert!(sim.a.engine.keying_given_up().is_empty());
    // Up resets the count: with the peer gone again, two more watchdog starts.
    sim.a.engine.teardown_all(sim.now);
    sim.b.up = false;
    sim.advance(Duration::from_secs(5));
    let p1: Vec<_> = sim.a.engine.phase1_sas();
    for p in p1 {
        let _ = sim
            .a
            .engine
            .delete_by_cookies(sim.now, p.icookie, p.rcookie, None);
    }
    for _ in 0..4 {
        let now = sim.now;
        sim.a.engine.start_active(now);
        sim.advance(Duration::from_secs(70));
    }
    assert_eq!(starts(&sim), 5, "{:?}", sim.a.logs);
    assert_eq!(gave_up(&sim), 2);
}

/// Fail-closed (the default): an active connection's policies are in the kernel before
/// its first SA and stay after a failed negotiation, so its traffic is never sent in the
/// clear; `Fail-closed=no` puts them in only with the first SA, as isakmpd does.
#[test]
fn fail_closed_policies_come_before_the_first_sa_and_outlive_a_failure() {
    let suites = "QM-ESP-AES-SHA-SUITE";
    for closed in [true, false] {
        let a = conf("192.0.2.1", "192.0.2.2", SUBNET_A, SUBNET_B, suites);
        let a = if closed {
            a
        } else {
            let text = a
                .dump()
                .replacen("[General]\n", "[General]\nFail-closed=no\n", 1);
            Conf::parse(&text).expect("conf")
        };
        let b = conf("192.0.2.2", "192.0.2.1", SUBNET_B, SUBNET_A, suites);
        let mut sim = pair(a, b, 41);
        sim.b.up = false;
        sim.a.engine.start_active(sim.now);
        sim.advance(Duration::from_millis(10));
        assert_eq!(
            sim.a.kernel.has_policy("net-to-net"),
            closed,
            "before any SA"
        );
        // The peer never answers: the exchange times out; the policies stay (or never were).
        sim.advance(Duration::from_secs(130));
        assert!(sim.a.log_contains("failed"), "{:?}", sim.a.logs);
        assert_eq!(
            sim.a.kernel.has_policy("net-to-net"),
            closed,
            "after a failure"
        );
        // The peer is back: the tunnel comes up under the same policies.
        sim.b.up = true;
        sim.a.engine.start_active(sim.now);
        assert!(sim.run_until(Duration::from_secs(30), up));
        let p = sim.a.kernel.policies_of("net-to-net");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].remote.prefix_len, 16);
    }
}
