//! Engine pairs under faults: loss, duplication, reordering, simultaneous initiation, rekey,
//! Delete, mismatched proposals, dead peers, NAT, hostile input.

mod sim;

use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::engine::{Direction, Event};
use ike::policy::*;
use sim::setup::*;
use sim::{sas_pair_up, CryptoTape, Faults, Nat, Sim};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const CONN: &str = "net-a-net-b";

fn suite(mode: Phase1Mode, auth: AuthMethod) -> Vec<Suite1> {
    vec![Suite1 {
        encr: EncrAlg::AesCbc128,
        hash: HashAlg::Sha1,
        group: Group::Modp2048,
        auth,
        mode,
    }]
}

fn up(sim: &Sim) -> bool {
    sim.a.phase2_up(CONN) >= 1 && sim.b.phase2_up(CONN) >= 1
}

fn start(sim: &mut Sim) {
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
}

/// 30% loss, 10% duplication, 20% reordering, over 40 seeds and both modes and auth methods.
#[test]
fn negotiations_complete_over_a_lossy_duplicating_reordering_link() {
    let mut failures = Vec::new();
    for seed in 0..40u64 {
        let mode = if seed % 2 == 0 {
            Phase1Mode::Main
        } else {
            Phase1Mode::Aggressive
        };
        let auth = if seed % 4 < 2 {
            AuthMethod::PreShared
        } else {
            AuthMethod::RsaSig
        };
        let pfs = if seed % 3 == 0 {
            Some(Group::Ecp256)
        } else {
            None
        };
        let mut sim = pair(
            &suite(mode, auth),
            &[Suite2 {
                pfs,
                ..Default::default()
            }],
            100 + seed,
        );
        for n in [&mut sim.a, &mut sim.b] {
            let mut t = timers();
            t.retransmits = 10;
            n.engine = ike::engine::Engine::new(
                ike::engine::EngineConfig {
                    timers: t,
                    ..n.engine.config().clone()
                },
                Box::new(ike::engine::SeededRng::new(
                    seed * 7 + n.ip.to_string().len() as u64,
                )),
                sim.now,
            );
        }
        sim.faults = Faults {
            loss: 30,
            duplicate: 10,
            reorder: 20,
        };
        start(&mut sim);
        if !sim.run_until(Duration::from_secs(300), up) {
            failures.push(format!(
                "seed {seed} ({mode:?} {auth:?} pfs {pfs:?}) did not come up"
            ));
            continue;
        }
        // Let retransmissions settle, then both sides must agree on every SA.
        sim.faults = Faults::default();
        sim.advance(Duration::from_secs(30));
        if let Err(e) = sas_pair_up(&sim.a, &sim.b).and_then(|_| sas_pair_up(&sim.b, &sim.a)) {
            failures.push(format!("seed {seed}: {e}"));
        }
        assert!(
            sim.dropped > 0,
            "the link dropped nothing: the test would prove nothing"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Both sides initiate at the same moment: both end up with working, matching SAs.
#[test]
fn simultaneous_initiation_from_both_sides() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        let mut sim = pair(
            &suite(mode, AuthMethod::PreShared),
            &[Suite2::default()],
            11,
        );
        let now = sim.now;
        sim.a.engine.initiate(now, CONN).expect("a");
        sim.b.engine.initiate(now, CONN).expect("b");
        assert!(
            sim.run_until(Duration::from_secs(60), |s| s.a.phase2_up(CONN) >= 2
                && s.b.phase2_up(CONN) >= 2)
        );
        sim.advance(Duration::from_secs(5));
        assert!(sas_pair_up(&sim.a, &sim.b).expect("a->b") >= 2);
        assert!(sas_pair_up(&sim.b, &sim.a).expect("b->a") >= 2);
        assert!(
            !sim.a.log_contains("failed") && !sim.b.log_contains("failed"),
            "{:?}",
            sim.a.logs
        );
    }
}

/// Phase 2 lifetime 40 s with PFS, phase 1 90 s, Main Mode with a pre-shared key.
fn rekey_pair() -> Sim {
    let p2 = [Suite2 {
        lifetime: 40,
        pfs: Some(Group::Modp2048),
        ..Default::default()
    }];
    let p1 = suite(Phase1Mode::Main, AuthMethod::PreShared);
    pair_with(&p1, &p1, &p2, &p2, 21, 90, 0)
}

/// The 600-second rekey scenario, run twice with the same seeds, the same link faults and the
/// same helper answers (Diffie-Hellman keys are random, so the second run replays the first's):
/// both engines' outputs (transmits, kernel requests, crypto requests, events, logs) and every
/// datagram on the wire are identical, byte for byte and at the same simulated times.
#[test]
fn the_rekey_scenario_replays_byte_for_byte() {
    type Run = (
        Vec<String>,
        Vec<String>,
        Vec<String>,
        CryptoTape,
        CryptoTape,
    );
    let run = |tape_a: CryptoTape, tape_b: CryptoTape| -> Run {
        let mut sim = rekey_pair();
        // Faults exercise retransmission and duplicate handling; the link's dice are seeded.
        sim.faults = Faults {
            loss: 5,
            duplicate: 5,
            reorder: 5,
        };
        // Several connections to one peer: what the engine keeps per connection is iterated
        // when SAs expire and rekey, so its order shows in the output.
        for node in [&mut sim.a, &mut sim.b] {
            let mut policy = node.engine.config().policy.clone();
            let base = policy.connections[0].clone();
            for k in 1..=5u8 {
                let (ours, theirs) = (
                    subnet([10, 10 + k, 0, 0], 16),
                    subnet([10, 20 + k, 0, 0], 16),
                );
                let mine_first = node.name == "A";
                policy.connections.push(Connection {
                    name: format!("more-{k}").into(),
                    local_id: Some(if mine_first {
                        ours.clone()
                    } else {
                        theirs.clone()
                    }),
                    remote_id: Some(if mine_first { theirs } else { ours }),
                    ..base.clone()
                });
            }
            node.engine.set_policy(policy);
        }
        sim.a.tape = tape_a;
        sim.b.tape = tape_b;
        sim.a.transcript = Some(Vec::new());
        sim.b.transcript = Some(Vec::new());
        let now = sim.now;
        sim.a.engine.start_active(now);
        sim.advance(Duration::from_secs(300));
        // A reload that drops three connections: their SAs are deleted (and the peer told)
        // one after another.
        let mut policy = sim.a.engine.config().policy.clone();
        policy
            .connections
            .retain(|c| !matches!(c.name.as_str(), "more-2" | "more-3" | "more-4"));
        sim.a.engine.set_policy(policy);
        sim.advance(Duration::from_secs(330));
        assert!(
            sim.a.phase2_up(CONN) >= 15 && sim.a.phase1_up() >= 6,
            "the scenario did not rekey: {} phase 2, {} phase 1",
            sim.a.phase2_up(CONN),
            sim.a.phase1_up()
        );
        let start = sim.start;
        let wire = sim
            .trace
            .iter()
            .map(|p| {
                format!(
                    "{:?} {} -> {} {}",
                    p.at.duration_since(start),
                    p.from,
                    p.to,
                    p.bytes
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                )
            })
            .collect();
        (
            sim.a.transcript.take().unwrap_or_default(),
            sim.b.transcript.take().unwrap_or_default(),
            wire,
            std::mem::take(&mut sim.a.tape),
            std::mem::take(&mut sim.b.tape),
        )
    };
    let (a1, b1, wire1, tape_a, tape_b) = run(
        CryptoTape::Record(Vec::new()),
        CryptoTape::Record(Vec::new()),
    );
    let replay = |t: CryptoTape| match t {
        CryptoTape::Record(v) => CryptoTape::Replay(v.into()),
        other => other,
    };
    let (a2, b2, wire2, left_a, left_b) = run(replay(tape_a), replay(tape_b));
    for (name, first, second) in [("A", &a1, &a2), ("B", &b1, &b2), ("wire", &wire1, &wire2)] {
        if let Some(i) = (0..first.len().max(second.len())).find(|&i| first.get(i) != second.get(i))
        {
            panic!(
                "{name}: the runs part at output {i} of {}/{}:\n first: {:?}\nsecond: {:?}",
                first.len(),
                second.len(),
                first.get(i),
                second.get(i)
            );
        }
    }
    // Every recorded answer was asked for again, in the same order.
    for (name, left) in [("A", left_a), ("B", left_b)] {
        if let CryptoTape::Replay(q) = left {
            assert!(
                q.is_empty(),
                "{name}: {} recorded answers not asked for",
                q.len()
            );
        }
    }
    println!(
        "identical: A {} outputs, B {} outputs, {} datagrams",
        a1.len(),
        b1.len(),
        wire1.len()
    );
}

/// Phase 2 lifetime 40 s, phase 1 90 s: over 10 minutes both rekey again and again, and at
/// every moment A has an outbound SA whose inbound twin is installed on B, and back.
#[test]
fn rekey_before_expiry_leaves_no_gap() {
    let mut sim = rekey_pair();
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let mut gaps = Vec::new();
    let t0 = sim.now;
    for _ in 0..600 {
        sim.advance(Duration::from_secs(1));
        let a_out =
            !sim.a.sas(Direction::Outbound).is_empty() && sas_pair_up(&sim.a, &sim.b).is_ok();
        let b_out =
            !sim.b.sas(Direction::Outbound).is_empty() && sas_pair_up(&sim.b, &sim.a).is_ok();
        if !(a_out && b_out) {
            gaps.push(sim.now.duration_since(t0).as_secs());
        }
    }
    assert!(gaps.is_empty(), "no usable SA pair at seconds {gaps:?}");
    assert!(
        sim.a.phase2_up(CONN) >= 15,
        "only {} phase 2 SAs in 600 s",
        sim.a.phase2_up(CONN)
    );
    assert!(
        sim.a.phase1_up() >= 6,
        "only {} phase 1 SAs in 600 s",
        sim.a.phase1_up()
    );
    // Nothing leaks: every SA in the kernel belongs to a bundle the engine still holds,
    // none of those is past its expiry, and only the newest is not superseded.
    for node in [&sim.a, &sim.b] {
        let live = node.engine.ipsec_sas();
        for sa in node.kernel.sas.values() {
            assert!(
                live.iter()
                    .any(|l| l.spis.iter().any(|(_, i, o)| *i == sa.spi || *o == sa.spi)),
                "{}: kernel SA {:08x} belongs to no live bundle",
                node.name,
                sa.spi
            );
        }
        assert!(
            live.iter().all(|l| l.expires > sim.now),
            "{}: an expired bundle is still held",
            node.name
        );
        assert!(
            live.len() <= 4,
            "{}: {} bundles for a 40 s lifetime rekeyed every 10-20 s",
            node.name,
            live.len()
        );
    }
    assert_eq!(
        sim.a
            .engine
            .ipsec_sas()
            .iter()
            .filter(|l| !l.replaced)
            .count(),
        1
    );
}

/// `t` on one side sends a Delete; the other side removes its SAs and policies.
#[test]
fn delete_from_one_side_removes_the_sa_on_the_other() {
    let mut sim = pair(
        &suite(Phase1Mode::Main, AuthMethod::PreShared),
        &[Suite2::default()],
        31,
    );
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), up));
    assert!(!sim.b.kernel.sas.is_empty());
    let now = sim.now;
    sim.a.engine.teardown(now, CONN).expect("teardown");
    assert!(sim.run_until(Duration::from_secs(5), |s| s.b.kernel.sas.is_empty()));
    assert!(sim.a.kernel.sas.is_empty());
    // The deleting side keeps its policies (Fail-closed: the traffic is held, not sent in
    // the clear); the other side's go with the SAs.
    assert!(sim.b.kernel.policies.is_empty());
    assert_eq!(sim.a.kernel.policies_of(CONN).len(), 1);
    // Without Fail-closed, the operator's teardown takes the policies too.
    let mut open = sim.a.engine.config().policy.clone();
    open.general.fail_closed = false;
    sim.a.engine.set_policy(open);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    assert!(
        sim.run_until(Duration::from_secs(30), |s| !s.a.kernel.sas.is_empty()
            && !s.b.kernel.sas.is_empty())
    );
    let now = sim.now;
    sim.a.engine.teardown(now, CONN).expect("teardown");
    assert!(sim.run_until(Duration::from_secs(5), |s| s.b.kernel.sas.is_empty()));
    assert!(sim.a.kernel.policies.is_empty() && sim.b.kernel.policies.is_empty());
    assert!(sim
        .b
        .events
        .iter()
        .any(|e| matches!(e, Event::Phase2Down { reason, .. } if reason == "deleted by peer")));
    // Deleting the ISAKMP SA too.
    let now = sim.now;
    sim.a.engine.teardown(now, "peer-b").expect("teardown p1");
    assert!(sim.run_until(Duration::from_secs(5), |s| s
        .b
        .engine
        .phase1_sas()
        .is_empty()));
}

/// Phase 1 mismatch: the responder logs what each side offered and answers NO-PROPOSAL-CHOSEN.
#[test]
fn mismatched_phase1_proposals_are_named_in_the_log() {
    let a1 = suite(Phase1Mode::Main, AuthMethod::PreShared);
    let mut b1 = a1.clone();
    b1[0].encr = EncrAlg::AesCbc256;
    let mut sim = pair_with(
        &a1,
        &b1,
        &[Suite2::default()],
        &[Suite2::default()],
        41,
        3600,
        0,
    );
    start(&mut sim);
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.a.phase1_up(), 0);
    let line = sim
        .b
        .logs
        .iter()
        .map(|(_, l)| l.clone())
        .find(|l| l.contains("no proposal chosen"))
        .expect("mismatch line");
    assert!(
        line.contains("AES-128") || line.contains("AES_128") || line.contains("128"),
        "{line}"
    );
    assert!(line.contains("256"), "{line}");
    assert!(sim.a.log_contains("NO-PROPOSAL-CHOSEN"), "{:?}", sim.a.logs);
}

/// Phase 1 mismatch seen from the initiator (strongSwan and Libreswan answer so): the
/// unauthenticated NO-PROPOSAL-CHOSEN is logged with what we offered, not merely ignored.
#[test]
fn refused_phase1_offer_is_named_in_the_initiators_log() {
    let a1 = suite(Phase1Mode::Main, AuthMethod::PreShared);
    let mut b1 = a1.clone();
    b1[0].group = Group::Modp3072;
    let mut sim = pair_with(
        &a1,
        &b1,
        &[Suite2::default()],
        &[Suite2::default()],
        43,
        3600,
        0,
    );
    start(&mut sim);
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.a.phase1_up(), 0);
    let line = sim
        .a
        .logs
        .iter()
        .map(|(_, l)| l.clone())
        .find(|l| l.contains("refused our phase 1 offer"))
        .unwrap_or_else(|| panic!("no refusal line: {:?}", sim.a.logs));
    assert!(line.contains("NO-PROPOSAL-CHOSEN"), "{line}");
    assert!(
        line.contains("MODP2048"),
        "our offer's group missing: {line}"
    );
    assert!(
        !line.contains("MODP3072"),
        "we cannot know the peer's: {line}"
    );
}

/// Phase 2 mismatch: the responder says what did not match; the initiator gets an
/// authenticated NO-PROPOSAL-CHOSEN.
#[test]
fn mismatched_phase2_proposals_are_named_in_the_log() {
    let s1 = suite(Phase1Mode::Main, AuthMethod::PreShared);
    let a2 = [Suite2 {
        cipher: Some(EspCipher::TripleDes),
        ..Default::default()
    }];
    let b2 = [Suite2::default()];
    let mut sim = pair_with(&s1, &s1, &a2, &b2, 42, 3600, 0);
    start(&mut sim);
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.a.phase1_up(), 1);
    assert_eq!(sim.a.phase2_up(CONN), 0);
    assert!(sim.b.log_contains("no proposal chosen"), "{:?}", sim.b.logs);
    assert!(
        sim.a.log_contains("notified NO-PROPOSAL-CHOSEN"),
        "{:?}",
        sim.a.logs
    );
}

/// A wrong pre-shared key fails authentication and installs nothing.
#[test]
fn wrong_preshared_key_fails_authentication() {
    let mut sim = pair(
        &suite(Phase1Mode::Main, AuthMethod::PreShared),
        &[Suite2::default()],
        43,
    );
    sim.b
        .store
        .psks
        .insert("peer-a".into(), b"not the key".to_vec());
    start(&mut sim);
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.a.phase1_up() + sim.b.phase1_up(), 0);
    assert!(sim.a.kernel.sas.is_empty() && sim.b.kernel.sas.is_empty());
    assert!(
        sim.b.log_contains("mismatch of pre-shared keys"),
        "{:?}",
        sim.b.logs
    );
}

/// DPD: when B goes silent, A declares it dead and clears its SAs.
#[test]
fn dead_peer_is_detected_and_cleared() {
    let s1 = suite(Phase1Mode::Main, AuthMethod::PreShared);
    let mut sim = pair_with(
        &s1,
        &s1,
        &[Suite2::default()],
        &[Suite2::default()],
        51,
        3600,
        10,
    );
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), up));
    // While B answers, DPD keeps the SAs.
    sim.advance(Duration::from_secs(60));
    assert!(!sim
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerDead { .. })));
    sim.b.up = false;
    assert!(sim.run_until(Duration::from_secs(60), |s| s
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerDead { .. }))));
    assert!(
        sim.a.kernel.sas.is_empty(),
        "A still holds SAs of a dead peer"
    );
    assert!(sim.a.engine.phase1_sas().is_empty());
}

/// `DPD-timeout`: a peer's own timeout replaces the engine's (15 s in the simulation), so a
/// silent peer is declared dead within interval + timeout of its last word.
#[test]
fn dpd_timeout_of_the_peer_is_used() {
    let s1 = suite(Phase1Mode::Main, AuthMethod::PreShared);
    let s2 = [Suite2::default()];
    let now = std::time::Instant::now();
    let (mut pa, sa) = side_policy(0, &s1, &s2, 3600, 2);
    pa.peers[0].dpd_timeout = Some(3);
    let (pb, sb) = side_policy(1, &s1, &s2, 3600, 2);
    let a = sim::Node::new("A", IpAddr::V4(A_IP), pa, sa, timers(), 52, now);
    let b = sim::Node::new("B", IpAddr::V4(B_IP), pb, sb, timers(), 53, now);
    let mut sim = Sim::new(a, b, now);
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), up));
    sim.advance(Duration::from_secs(10));
    sim.b.up = false;
    let silent = sim.now;
    let dead = |s: &Sim| {
        s.a.events
            .iter()
            .any(|e| matches!(e, Event::PeerDead { .. }))
    };
    assert!(sim.run_until(Duration::from_secs(60), dead));
    let took = sim.now.duration_since(silent);
    assert!(
        took <= Duration::from_secs(2 + 3 + 2),
        "declared dead {took:?} after the peer went silent, not within interval 2 s + timeout 3 s"
    );
}

/// A behind a NAT: both sides detect it, IKE floats to 4500, SAs are UDP-encapsulated,
/// and A sends keepalives.
#[test]
fn nat_is_detected_and_ike_floats_to_4500() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        let mut sim = pair(
            &suite(mode, AuthMethod::PreShared),
            &[Suite2::default()],
            61,
        );
        sim.nat = Some(Nat {
            public: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        });
        // B knows A only by its public address.
        let mut cfg = sim.b.engine.config().clone();
        cfg.policy.peers[0].address =
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 500);
        // Let B find A for its phase 2 lookups the same way.
        sim.b.engine.set_policy(cfg.policy);
        start(&mut sim);
        assert!(
            sim.run_until(Duration::from_secs(30), up),
            "{mode:?}: {:?}\n{:?}",
            sim.a.logs,
            sim.b.logs
        );
        let pa = &sim.a.engine.phase1_sas()[0];
        let pb = &sim.b.engine.phase1_sas()[0];
        assert!(pa.nat_local && !pa.nat_remote, "{pa:?}");
        assert!(pb.nat_remote && !pb.nat_local, "{pb:?}");
        assert_eq!(pa.local.port(), 4500);
        assert_eq!(pa.remote.port(), 4500);
        for sa in sim.a.kernel.sas.values() {
            assert!(sa.udp_encap.is_some(), "{sa:?}");
        }
    }
}

/// RFC 3947 4: IKE follows a float to 4500 only once the message that made it has
/// authenticated. Datagrams to B's 4500 from elsewhere, carrying the cookies of the
/// established ISAKMP SA with A (they cross the wire in the clear), move nothing: B keeps
/// talking to A where it was, and a phase 2 from B still comes up.
#[test]
fn a_spoofed_message_on_4500_does_not_move_the_isakmp_sa() {
    use ike::codec::{flags, ExchangeType, Header, PayloadType, HEADER_LEN};
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        let mut sim = pair(
            &suite(mode, AuthMethod::PreShared),
            &[Suite2::default()],
            83,
        );
        start(&mut sim);
        assert!(sim.run_until(Duration::from_secs(30), up), "{mode:?}");
        let before = sim.b.engine.phase1_sas()[0].clone();
        let local = SocketAddr::new(IpAddr::V4(B_IP), 4500);
        let spoofer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 4500);
        let exchanges = [
            ExchangeType::MAIN_MODE,
            ExchangeType::AGGRESSIVE,
            ExchangeType::INFORMATIONAL,
            ExchangeType::QUICK_MODE,
        ];
        for (i, exchange) in exchanges.into_iter().enumerate() {
            let body = [0x5au8; 32];
            let header = Header {
                initiator_cookie: before.icookie,
                responder_cookie: before.rcookie,
                next_payload: PayloadType::HASH,
                version: 0x10,
                exchange,
                flags: flags::ENCRYPTION,
                message_id: 0x1000 + i as u32,
                length: (HEADER_LEN + body.len()) as u32,
            };
            let mut bytes = vec![0u8; 4]; // the non-ESP marker
            header.emit(&mut bytes);
            bytes.extend_from_slice(&body);
            let now = sim.now;
            sim.b.engine.handle_datagram(now, local, spoofer, &bytes);
        }
        let after = sim.b.engine.phase1_sas()[0].clone();
        assert_eq!(
            (after.local, after.remote),
            (before.local, before.remote),
            "{mode:?}: the spoofed datagrams moved B's ISAKMP SA"
        );
        let conn = sim.b.engine.config().policy.connections[0].name.clone();
        let ups = sim.b.phase2_up(&conn);
        let now = sim.now;
        sim.b.engine.initiate(now, &conn).expect("initiate");
        assert!(
            sim.run_until(Duration::from_secs(30), |x| x.b.phase2_up(&conn) > ups),
            "{mode:?}: no phase 2 from B after the spoofed datagrams: {:?}",
            sim.b.logs
        );
    }
}

/// Garbage, truncations and bit flips of real messages never crash the engine nor cost the SA.
#[test]
fn hostile_input_never_costs_an_established_sa() {
    let mut sim = pair(
        &suite(Phase1Mode::Main, AuthMethod::PreShared),
        &[Suite2::default()],
        71,
    );
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let before = sim.b.kernel.sas.len();
    let local = SocketAddr::new(IpAddr::V4(B_IP), 500);
    let remote = SocketAddr::new(IpAddr::V4(A_IP), 500);
    // Random bytes, random bytes behind the live cookies (so they reach the SA's state),
    // and every real message of the negotiation truncated and with bits flipped.
    let pa = sim.a.engine.phase1_sas()[0].clone();
    let real: Vec<Vec<u8>> = sim.trace.iter().map(|p| p.bytes.clone()).collect();
    assert!(
        real.len() >= 9,
        "expected Main Mode and Quick Mode in the trace"
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..30_000u32 {
        let b: Vec<u8> = match i % 3 {
            0 => (0..(rnd() % 200) as usize).map(|_| rnd() as u8).collect(),
            1 => {
                let mut b: Vec<u8> = (0..28 + (rnd() % 200) as usize)
                    .map(|_| rnd() as u8)
                    .collect();
                b[..8].copy_from_slice(&pa.icookie.0);
                b[8..16].copy_from_slice(&pa.rcookie.0);
                b[17] = 0x10;
                b[18] = [2, 4, 5, 32][(rnd() % 4) as usize];
                let l = (b.len() as u32).to_be_bytes();
                b[24..28].copy_from_slice(&l);
                b
            }
            _ => {
                let mut b = real[(rnd() as usize) % real.len()].clone();
                let flips = 1 + rnd() % 4;
                for _ in 0..flips {
                    let at = (rnd() as usize) % b.len();
                    b[at] ^= 1 << (rnd() % 8);
                }
                if rnd() % 4 == 0 {
                    b.truncate((rnd() as usize) % b.len());
                }
                b
            }
        };
        let now = sim.now;
        sim.b.engine.handle_datagram(now, local, remote, &b);
    }
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.b.kernel.sas.len(), before);
    assert!(sas_pair_up(&sim.a, &sim.b).is_ok() && sas_pair_up(&sim.b, &sim.a).is_ok());
}

/// A Quick Mode or Informational message for no state, and a repeated Delete, are harmless.
#[test]
fn messages_for_unknown_state_and_repeated_deletes_are_harmless() {
    let mut sim = pair(
        &suite(Phase1Mode::Main, AuthMethod::PreShared),
        &[Suite2::default()],
        81,
    );
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), up));
    let now = sim.now;
    sim.a.engine.teardown(now, CONN).expect("teardown");
    sim.advance(Duration::from_secs(2));
    assert!(
        sim.a.engine.teardown(sim.now, CONN).is_err(),
        "second teardown of nothing must say so"
    );
    assert!(sim.b.kernel.sas.is_empty());
    // The connection can come back afterwards.
    start(&mut sim);
    assert!(sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up(CONN) >= 2));
}

/// B holds the wrong public key for A: B refuses A's signature and says so, encrypted, and
/// A gives up at once instead of retransmitting until its exchange times out.
#[test]
fn refused_signature_is_reported_to_the_initiator() {
    let mut sim = pair(
        &suite(Phase1Mode::Main, AuthMethod::RsaSig),
        &[Suite2::default()],
        91,
    );
    let mut cfg = sim.b.engine.config().clone();
    if let Credentials::RsaSig {
        peer_public_key, ..
    } = &mut cfg.policy.peers[0].credentials
    {
        // B's own public key instead of A's.
        *peer_public_key = Some(rsa_keys()[1].1.clone());
    }
    sim.b.engine.set_policy(cfg.policy);
    start(&mut sim);
    sim.advance(Duration::from_secs(3));
    assert!(
        sim.b
            .log_contains("RSA signature of peer peer-a is not valid"),
        "{:?}",
        sim.b.logs
    );
    assert!(
        sim.a.log_contains("notified AUTHENTICATION-FAILED"),
        "{:?}",
        sim.a.logs
    );
    assert!(
        sim.a.log_contains("peer refused: AUTHENTICATION-FAILED"),
        "{:?}",
        sim.a.logs
    );
    assert!(sim.a.engine.phase1_sas().is_empty() && sim.b.engine.phase1_sas().is_empty());
}
