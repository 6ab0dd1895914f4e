//! A hostile Main Mode initiator, scripted by hand (tests/scripted), against a real
//! responder engine. With RSA signatures anyone can complete messages 1 to 4 and hold the
//! keys of an ISAKMP SA without ever authenticating; what that SA carries must not be
//! acted on. And nonces outside RFC 2409's 8 to 256 bytes must be refused.

mod scripted;
mod sim;

use ike::codec::NotifyType;
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::engine::{Direction, Phase1Info};
use ike::policy::*;
use scripted::{delete_esp, delete_isakmp, notify, ScriptedInitiator, Wire};
use sim::setup::*;
use sim::Sim;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const CONN: &str = "net-a-net-b";

/// How long the simulator runs after each scripted message: long enough for the
/// responder's answer to reach the wire (5 ms latency, crypto answered at once), short
/// enough that no retransmission (500 ms in the test timers) is mistaken for an answer.
const SETTLE: Duration = Duration::from_millis(50);

impl Wire for Sim {
    fn exchange(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mark = self.trace.len();
        let now = self.now;
        self.b.engine.handle_datagram(now, to, from, bytes);
        // The answers go on the simulated wire to `from`; when that is another node's
        // address, that node gets them too (and drops them: it has no state for them).
        self.advance(SETTLE);
        self.trace[mark..]
            .iter()
            .filter(|p| p.from == to && p.to == from)
            .map(|p| p.bytes.clone())
            .collect()
    }
}

fn rsa_suite() -> Vec<Suite1> {
    vec![Suite1 {
        encr: EncrAlg::AesCbc128,
        hash: HashAlg::Sha1,
        group: Group::Modp2048,
        auth: AuthMethod::RsaSig,
        mode: Phase1Mode::Main,
    }]
}

fn a_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(A_IP), 500)
}

fn b_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(B_IP), 500)
}

/// A scripted initiator claiming A's address, offering what B expects of A.
fn attacker(sim: &Sim, icookie: [u8; 8]) -> ScriptedInitiator {
    let peer = sim.b.engine.config().policy.peers[0].clone();
    ScriptedInitiator::new(a_addr(), b_addr(), &peer, icookie)
}

/// A and B with an established ISAKMP SA and IPsec SA; returns B's ISAKMP SA with A and
/// B's outbound ESP SPI (the one A names as its inbound SPI).
fn established(seed: u64) -> (Sim, Phase1Info, u32) {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], seed);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    assert!(
        sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up(CONN) >= 1
            && s.b.phase2_up(CONN) >= 1),
        "A and B did not come up: {:?}\n{:?}",
        sim.a.logs,
        sim.b.logs
    );
    let p1 = sim
        .b
        .engine
        .phase1_sas()
        .into_iter()
        .find(|p| p.established)
        .expect("B's ISAKMP SA with A");
    let sas = sim.b.engine.ipsec_sas();
    let (_, _, out) = sas
        .iter()
        .flat_map(|s| s.spis.iter())
        .find(|(p, _, _)| *p == IpsecProtocol::Esp)
        .copied()
        .expect("B's ESP SA with A");
    (sim, p1, out)
}

/// Runs the attack: MM1-4 from A's address, then one encrypted Informational carrying
/// `payload`, and lets a few seconds pass for anything B might do about it.
fn attack(sim: &mut Sim, payload: impl FnOnce(&ScriptedInitiator) -> ike::codec::Payload) {
    let mut x = attacker(sim, *b"hostile!");
    x.through_mm4(sim, 32)
        .expect("the scripted peer reaches MM4");
    let p = payload(&x);
    x.informational(sim, 0x0bad_cafe, vec![p])
        .expect("informational");
    sim.advance(Duration::from_secs(2));
}

/// What must hold after an attack: the Informational passed B's checks (so a pass below is
/// not explained by a message B could not read), B kept its SAs with A, and said why.
fn assert_nothing_deleted(sim: &Sim, p1: &Phase1Info, out_spi: u32, what: &str) {
    for bad in [
        "failed its HASH check",
        "cannot decrypt Informational",
        "malformed Informational",
    ] {
        assert!(
            !sim.b.log_contains(bad),
            "B could not read the scripted Informational ({bad}): {:#?}",
            sim.b.logs
        );
    }
    let kept_p1 = sim
        .b
        .engine
        .phase1_sas()
        .into_iter()
        .any(|p| p.established && p.icookie == p1.icookie && p.rcookie == p1.rcookie);
    let kept_sa = sim
        .b
        .engine
        .ipsec_sas()
        .iter()
        .any(|s| s.spis.iter().any(|(_, _, o)| *o == out_spi));
    let in_kernel =
        !sim.b.sas(Direction::Outbound).is_empty() && !sim.b.sas(Direction::Inbound).is_empty();
    let logged = sim.b.logs.iter().any(|(_, l)| {
        l.contains("under an ISAKMP SA not yet authenticated")
            && l.contains("(not acted on)")
            && l.contains(what)
    });
    assert!(
        kept_p1 && kept_sa && in_kernel && logged,
        "after an unauthenticated {what}: ISAKMP SA kept {kept_p1}, IPsec SA kept {kept_sa}, \
         kernel SAs kept {in_kernel}, refusal logged {logged}; B's logs: {:#?}",
        sim.b.logs
    );
}

/// (a) A Delete of A's established ISAKMP SA, under an ISAKMP SA that only reached MM4.
#[test]
fn an_unauthenticated_delete_after_message_4_deletes_nothing() {
    let (mut sim, p1, out) = established(301);
    let victim = [p1.icookie.0, p1.rcookie.0].concat();
    attack(&mut sim, |_| delete_isakmp(vec![victim]));
    assert_nothing_deleted(&sim, &p1, out, "DELETE");
}

/// (b) A Delete of the established ESP SA (named by A's inbound SPI, B's outbound).
#[test]
fn an_unauthenticated_esp_delete_after_message_4_deletes_nothing() {
    let (mut sim, p1, out) = established(302);
    attack(&mut sim, |_| delete_esp(&[out]));
    assert_nothing_deleted(&sim, &p1, out, "DELETE");
}

/// (c) INITIAL-CONTACT: "I rebooted, forget my other SAs" from someone who never proved
/// to be A.
#[test]
fn an_unauthenticated_initial_contact_after_message_4_deletes_nothing() {
    let (mut sim, p1, out) = established(303);
    attack(&mut sim, |x| {
        notify(NotifyType::INITIAL_CONTACT, x.isakmp_spi())
    });
    assert_nothing_deleted(&sim, &p1, out, "INITIAL-CONTACT");
}

/// RFC 2409 5: nonce payloads are 8 to 256 bytes. Outside that, B must drop message 3 (no
/// message 4) and say so; at both bounds it answers.
#[test]
fn nonces_outside_8_to_256_bytes_are_refused() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 311);
    let mut failures = Vec::new();
    for (i, len) in [0usize, 7, 300, 8, 256].into_iter().enumerate() {
        let mut x = attacker(&sim, [0x4e, 0x4f, 0x4e, 0x43, 0x45, 0, 0, i as u8]);
        x.mm1(&mut sim).expect("MM2");
        let replies = x.mm3(&mut sim, vec![0x5a; len], None).expect("MM3");
        let mm4 = replies.iter().any(|r| r.is_mm4());
        // "No answer" is stricter than "no MM4": a refused message 3 is dropped, not
        // answered with anything.
        let answered = !replies.is_empty();
        let refusal = sim.b.logs.iter().any(|(_, l)| {
            l.contains(&format!("nonce of {len} bytes"))
                && l.contains("outside RFC 2409's 8 to 256")
        });
        let what = format!(
            "{len}-byte nonce: {} answer(s) (MM4 among them: {mm4}), refusal logged {refusal}",
            replies.len()
        );
        if (8..=256).contains(&len) {
            if !mm4 || refusal {
                failures.push(format!("{what}; want MM4 and no refusal"));
            }
        } else if answered || !refusal {
            failures.push(format!("{what}; want no answer and a refusal"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nB's logs: {:#?}",
        failures.join("\n"),
        sim.b.logs
    );
}

/// The scripted peer itself is right: with a 32-byte nonce B answers MM3 with MM4, holds
/// the SA at MAIN_R2 (KE sent), and accepts an Informational it protected (its HASH(1),
/// key and IV are B's), so the refusals above cannot be a broken attacker's doing.
#[test]
fn the_scripted_peer_reaches_message_4_and_speaks_under_its_keys() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 321);
    let mut x = attacker(&sim, *b"control!");
    x.mm1(&mut sim).expect("MM2");
    assert!(!x.rcookie.0.iter().all(|b| *b == 0), "MM2 names B's cookie");
    let replies = x.mm3(&mut sim, vec![0x5a; 32], None).expect("MM3");
    let mm4 = replies
        .iter()
        .find(|r| r.is_mm4())
        .unwrap_or_else(|| panic!("no MM4 for a 32-byte nonce: {:#?}", sim.b.logs));
    let state = sim
        .b
        .engine
        .phase1_sas()
        .into_iter()
        .find(|p| p.icookie == x.icookie && p.rcookie == x.rcookie)
        .map(|p| p.state);
    assert_eq!(state, Some("MAIN_R2 (KE sent)"));
    x.read_mm4(mm4).expect("keys");
    // A status notification nobody acts on, under the scripted SA.
    x.informational(
        &mut sim,
        0x1234_5678,
        vec![notify(NotifyType::RESPONDER_LIFETIME, x.isakmp_spi())],
    )
    .expect("informational");
    for bad in [
        "failed its HASH check",
        "cannot decrypt Informational",
        "malformed Informational",
        "no keys yet",
    ] {
        assert!(!sim.b.log_contains(bad), "{bad}: {:#?}", sim.b.logs);
    }
    assert!(
        sim.b.log_contains("notified RESPONDER-LIFETIME")
            || sim
                .b
                .log_contains("under an ISAKMP SA not yet authenticated"),
        "B did not take the Informational in: {:#?}",
        sim.b.logs
    );
}

/// A KE that cannot be a public value of the negotiated group (MODP2048's are 256 bytes) is
/// refused by name in message 3, before the responder generates a key pair or answers.
#[test]
fn a_ke_of_the_wrong_length_is_refused_before_any_work() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 331);
    for (i, len) in [0usize, 1, 10, 255, 257, 1024].into_iter().enumerate() {
        let mut x = attacker(&sim, [0x4b, 0x45, 0, 0, 0, 0, 0, i as u8]);
        x.mm1(&mut sim).expect("MM2");
        let crypto_before = sim.b.crypto_time;
        let replies = x
            .mm3(&mut sim, vec![0x5a; 32], Some(vec![1; len]))
            .expect("MM3");
        assert!(
            replies.is_empty(),
            "{len}-byte KE answered {} time(s)",
            replies.len()
        );
        assert_eq!(
            sim.b.crypto_time, crypto_before,
            "{len}-byte KE cost B crypto work"
        );
        assert!(
            sim.b
                .logs
                .iter()
                .any(|(_, l)| l.contains(&format!("KE of {len} bytes"))
                    && l.contains("message dropped")),
            "{len}-byte KE: no refusal logged: {:#?}",
            sim.b.logs
        );
    }
}

/// A KE of the right length whose value makes the shared secret known to anyone (0, 1,
/// p-1: g^xy is then 0, 1 or +-1) is refused by name in message 3, before the responder
/// generates a key pair or sends message 4; 2 and p-2 are taken.
#[test]
fn ke_values_0_1_and_p_minus_1_are_refused_before_any_work() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 332);
    let p = openssl::bn::BigNum::get_rfc3526_prime_2048().expect("MODP2048 prime");
    let below_p = |d: u8| {
        let mut v = p.to_vec();
        let last = v.len() - 1;
        v[last] -= d; // p ends in ...FF: no borrow
        v
    };
    let small = |n: u8| {
        let mut v = vec![0u8; 256];
        v[255] = n;
        v
    };
    let cases = [
        ("0", small(0), false),
        ("1", small(1), false),
        ("p-1", below_p(1), false),
        ("p", p.to_vec(), false),
        ("2", small(2), true),
        ("p-2", below_p(2), true),
    ];
    for (i, (what, ke, taken)) in cases.into_iter().enumerate() {
        let mut x = attacker(&sim, [0x4b, 0x56, 0, 0, 0, 0, 0, i as u8]);
        x.mm1(&mut sim).expect("MM2");
        let crypto_before = sim.b.crypto_time;
        let replies = x.mm3(&mut sim, vec![0x5a; 32], Some(ke)).expect("MM3");
        assert_eq!(
            replies.iter().any(|r| r.is_mm4()),
            taken,
            "KE {what}: message 4 {}",
            if taken { "missing" } else { "sent" }
        );
        if !taken {
            assert_eq!(
                sim.b.crypto_time, crypto_before,
                "KE {what} cost B crypto work"
            );
        }
    }
    let refusals = sim
        .b
        .logs
        .iter()
        .filter(|(_, l)| l.contains("refused (invalid Diffie-Hellman public value: not in 1 < y < p-1): message dropped"))
        .count();
    assert_eq!(refusals, 4, "{:#?}", sim.b.logs);
}

/// A client ID whose netmask has holes (10.1.0.0/255.0.255.0) has no prefix; read as its
/// leading ones it would be 10.0.0.0/8, wider than the peer named. B's policy would take
/// anything in 10.0.0.0/8 from A, yet such an ID is refused by name and no SA is made.
#[test]
fn a_client_id_with_a_non_contiguous_netmask_is_refused() {
    use ike::codec::{IdPayload, Identity};
    use std::net::Ipv4Addr;
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 341);
    let subnet = |a: [u8; 4], m: [u8; 4]| IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4Subnet(Ipv4Addr::from(a), Ipv4Addr::from(m)),
    };
    let mut a = sim.a.engine.config().policy.clone();
    a.connections[0].local_id = Some(subnet([10, 1, 0, 0], [255, 0, 255, 0]));
    sim.a.engine.set_policy(a);
    let mut b = sim.b.engine.config().policy.clone();
    b.connections[0].remote_id = Some(subnet([10, 0, 0, 0], [255, 0, 0, 0]));
    sim.b.engine.set_policy(b);
    let now = sim.now;
    sim.a.engine.initiate(now, "net-a-net-b").expect("initiate");
    sim.run_until(Duration::from_secs(20), |_| false);
    assert!(
        sim.b.engine.ipsec_sas().is_empty(),
        "B made an SA for a holed netmask: {:?}",
        sim.b.engine.ipsec_sas()
    );
    assert!(
        sim.b
            .logs
            .iter()
            .any(|(_, l)| l.contains("10.1.0.0/255.0.255.0 has a non-contiguous netmask")),
        "no refusal logged: {:#?}",
        sim.b.logs
    );
    assert!(
        !sim.b.engine.phase1_sas().is_empty(),
        "the ISAKMP SA itself stays"
    );
}

/// One forged Main Mode message 1 draws one answer: the responder's message 2 goes to a
/// source that has proven nothing, so it is not retransmitted (the reflection class of
/// CVE-2016-5361). A repeated message 1 is answered again, from the kept copy.
#[test]
fn a_responder_never_retransmits_its_first_answer() {
    use ike::codec::Header;
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 351);
    let mut x = attacker(&sim, *b"reflect!");
    let mark = sim.trace.len();
    x.mm1(&mut sim).expect("MM2");
    let answers = |sim: &Sim, from: usize| {
        sim.trace[from..]
            .iter()
            .filter(|p| {
                Header::parse(&p.bytes).is_ok_and(|h| h.initiator_cookie == x.icookie)
                    && p.to == x.from
            })
            .count()
    };
    assert_eq!(answers(&sim, mark), 1, "one message 2 for one message 1");
    sim.advance(Duration::from_secs(120));
    assert_eq!(
        answers(&sim, mark),
        1,
        "message 2 was retransmitted to an unproven source"
    );
}

/// One forged first message offering thousands of transforms (the codec takes at most 64
/// proposals of 64) is dropped with one short line: it is neither matched nor kept (its SA
/// payload would stay with the responder for the whole exchange), and nothing answers it.
/// An offer of 256 transforms is still taken.
#[test]
fn an_offer_of_thousands_of_transforms_is_dropped_unanswered() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 361);
    let peer = sim.b.engine.config().policy.peers[0].clone();
    let base = phase1_sa(&peer);
    for (proposals, per, taken) in [(25usize, 64usize, false), (5, 52, false), (4, 64, true)] {
        let count = proposals * per;
        let mut offer = base.clone();
        let prop = base.proposals[0].clone();
        offer.proposals = (0..proposals)
            .map(|n| {
                let mut p = prop.clone();
                p.number = n as u8 + 1;
                p.transforms = (0..per)
                    .map(|t| {
                        let mut tr = prop.transforms[0].clone();
                        tr.number = t as u8 + 1;
                        tr
                    })
                    .collect();
                p
            })
            .collect();
        let mut x = ScriptedInitiator::new(
            a_addr(),
            b_addr(),
            &peer,
            [
                0x54,
                0x52,
                0x41,
                0x4e,
                (count >> 8) as u8,
                count as u8,
                0,
                0,
            ],
        );
        let logs_before = sim.b.logs.len();
        let answered = x.mm1_with(&mut sim, offer).is_ok();
        assert_eq!(answered, taken, "{count} transforms");
        let new_logs = &sim.b.logs[logs_before..];
        if !taken {
            assert!(
                new_logs
                    .iter()
                    .any(|(_, l)| l.contains(&format!("{count} transforms"))
                        && l.contains("over the limit")
                        && l.len() < 300),
                "{count} transforms: no short refusal: {new_logs:#?}"
            );
        }
    }
}

/// Admission control: `Max-half-open-per-address` and `Max-half-open` bound the responder
/// exchanges that have not authenticated; a first message beyond them is dropped
/// unanswered and counted, an exchange that authenticates or times out gives its room back.
#[test]
fn half_open_exchanges_are_bounded_in_all_and_per_address() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 371);
    let mut policy = sim.b.engine.config().policy.clone();
    policy.general.max_half_open_per_address = 2;
    policy.general.max_half_open = 3;
    sim.b.engine.set_policy(policy);
    // Two from A's address are taken, the third is refused by the per-address limit.
    for i in 0..3u8 {
        let mut x = attacker(&sim, [0x48, 0x4f, 0, 0, 0, 0, 0, i]);
        let answered = x.mm1(&mut sim).is_ok();
        assert_eq!(answered, i < 2, "first message {i}");
    }
    let c = sim.b.engine.admission();
    assert_eq!((c.half_open, c.refused_per_address), (2, 1), "{c:?}");
    assert!(sim
        .b
        .logs
        .iter()
        .any(|(_, l)| l.contains("dropped: Max-half-open-per-address (2) for 192.0.2.1 reached")));
    // They time out (Exchange-max-time 60 s here): the room comes back, and A's own
    // exchange comes up and leaves none taken.
    sim.advance(Duration::from_secs(70));
    assert_eq!(sim.b.engine.admission().half_open, 0);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    assert!(sim.run_until(Duration::from_secs(30), |s| s.b.phase2_up(CONN) >= 1));
    assert_eq!(
        sim.b.engine.admission().half_open,
        0,
        "an established SA is not half-open"
    );
    // The total: per address 16, in all 3. A fourth first message takes the place of the
    // oldest exchange that has proven nothing (its peer never sent message 3).
    let mut policy = sim.b.engine.config().policy.clone();
    policy.general.max_half_open_per_address = 16;
    sim.b.engine.set_policy(policy);
    let mut xs = Vec::new();
    for i in 0..4u8 {
        if i == 3 {
            // An unproven exchange gives way only once it had its grace to answer.
            let mut early = attacker(&sim, [0x48, 0x4f, 3, 0, 0, 0, 0, 0]);
            assert!(early.mm1(&mut sim).is_err(), "taken within the grace");
            sim.advance(Duration::from_secs(1));
        }
        let mut x = attacker(&sim, [0x48, 0x4f, 1, 0, 0, 0, 0, i]);
        assert!(x.mm1(&mut sim).is_ok(), "first message {i} under the total");
        xs.push(x);
    }
    let c = sim.b.engine.admission();
    assert_eq!(
        (c.half_open, c.evicted, c.refused_total),
        (3, 1, 1),
        "{c:?}"
    );
    assert!(c.busy, "{c:?}");
    assert!(sim.b.logs.iter().any(|(_, l)| l.contains(
        "busy: Max-half-open (3) reached: the oldest exchange that has proven nothing (from 192.0.2.1) is dropped"
    )));
    // The displaced one is gone: its message 3 gets nothing. The other three send theirs
    // and so prove their address: none of them can be displaced any more.
    assert!(xs[0]
        .mm3(&mut sim, vec![0x5a; 32], None)
        .expect("mm3")
        .is_empty());
    for x in &mut xs[1..] {
        let replies = x.mm3(&mut sim, vec![0x5a; 32], None).expect("mm3");
        assert!(replies.iter().any(|r| r.is_mm4()), "no message 4");
    }
    // However old they get.
    sim.advance(Duration::from_secs(2));
    let mut x = attacker(&sim, [0x48, 0x4f, 2, 0, 0, 0, 0, 0]);
    assert!(
        x.mm1(&mut sim).is_err(),
        "taken over three proven exchanges"
    );
    let c = sim.b.engine.admission();
    assert_eq!(
        (c.half_open, c.evicted, c.refused_total),
        (3, 1, 2),
        "{c:?}"
    );
}

/// The busy state: first messages from 500 strangers who never answer (spoofed sources),
/// 20 a second, fill `Max-half-open` (8) many times over, yet A's own Main Mode, started
/// in the middle of them, comes up: each stranger's exchange gives its place to a newer
/// first message once it had its grace (a quarter of a second) to answer, so A's first
/// message gets in, and once A sent message 3 its exchange is never displaced.
#[test]
fn a_flood_of_strangers_does_not_lock_out_an_honest_peer() {
    let mut sim = pair(&rsa_suite(), &[Suite2::default()], 373);
    let mut policy = sim.b.engine.config().policy.clone();
    policy.general.max_half_open = 8;
    policy.general.max_half_open_per_address = 10_000;
    sim.b.engine.set_policy(policy);
    let peer = sim.b.engine.config().policy.peers[0].clone();
    let flood = |sim: &mut Sim, from: u16, to: u16| {
        for i in from..to {
            let src = SocketAddr::new(IpAddr::V4(A_IP), 10_000 + i);
            let mut cookie = *b"spoof\0\0\0";
            cookie[6..].copy_from_slice(&i.to_be_bytes());
            let mut x = ScriptedInitiator::new(src, b_addr(), &peer, cookie);
            // Answered, or dropped while every place is within its grace.
            let _ = x.mm1(sim);
        }
    };
    flood(&mut sim, 0, 250);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    // A's message 1 is in flight; the strangers go on while it negotiates.
    flood(&mut sim, 250, 500);
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.b.phase2_up(CONN) >= 1),
        "A did not come up through the flood: {:?}",
        sim.b.logs
    );
    let c = sim.b.engine.admission();
    // A's exchange gave its place back when it authenticated.
    assert!(c.half_open >= 7, "{c:?}");
    // 20 a second against 8 places held at least a quarter of a second: each stranger
    // finds a place, each taking the oldest stranger's.
    assert!(c.evicted >= 480, "{c:?}");
    assert_eq!(c.refused_total, 0, "{c:?}");
}

/// A peer's RSA key must have at least 1024 bits and an odd exponent of at least 65537:
/// a 768-bit key, and a 2048-bit key with exponent 3 (what forgeries against lax PKCS#1
/// checks rely on), are refused by name and no ISAKMP SA comes up; a 1024-bit one works.
#[test]
fn weak_peer_rsa_keys_are_refused() {
    use openssl::bn::BigNum;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    let weak_768 = Rsa::generate(768).expect("rsa");
    let e3 = Rsa::generate_with_e(2048, &BigNum::from_u32(3).expect("bn")).expect("rsa");
    let ok_1024 = Rsa::generate(1024).expect("rsa");
    for (key, what, up) in [
        (weak_768, "of 768 bits with exponent 65537", false),
        (e3, "of 2048 bits with exponent 3", false),
        (ok_1024, "", true),
    ] {
        let mut sim = pair(&rsa_suite(), &[Suite2::default()], 381);
        let public = key.public_key_to_der().expect("der");
        sim.a
            .store
            .keys
            .insert("local-key".into(), PKey::from_rsa(key).expect("pkey"));
        let mut b = sim.b.engine.config().policy.clone();
        b.peers[0].credentials = Credentials::RsaSig {
            secret: "local-key".into(),
            peer_public_key: Some(public),
        };
        sim.b.engine.set_policy(b);
        let now = sim.now;
        sim.a.engine.initiate(now, CONN).expect("initiate");
        let came_up = sim.run_until(Duration::from_secs(20), |s| {
            s.b.engine.phase1_sas().iter().any(|p| p.established)
        });
        assert_eq!(came_up, up, "{what}: {:#?}", sim.b.logs);
        if !up {
            assert!(
                sim.b
                    .logs
                    .iter()
                    .any(|(_, l)| l.contains(&format!("RSA key {what} is refused"))),
                "{what}: {:#?}",
                sim.b.logs
            );
        }
    }
}

/// An Aggressive Mode first message costs the responder a DH key pair and a signature
/// before the peer has proven anything: `Aggressive-mode-rate` takes at most that many a
/// second (a bucket, refilled continuously); the rest are dropped unanswered and counted.
#[test]
fn aggressive_mode_first_messages_are_taken_at_a_bounded_rate() {
    use ike::codec::{IdPayload, Identity};
    let mut suite = rsa_suite();
    suite[0].mode = Phase1Mode::Aggressive;
    let mut sim = pair(&suite, &[Suite2::default()], 391);
    let mut policy = sim.b.engine.config().policy.clone();
    policy.general.aggressive_mode_rate = 2;
    sim.b.engine.set_policy(policy);
    let peer = sim.b.engine.config().policy.peers[0].clone();
    let id = IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4(A_IP),
    };
    let mut answered = 0;
    for i in 0..5u8 {
        let mut x =
            ScriptedInitiator::new(a_addr(), b_addr(), &peer, [0x41, 0x4d, 0, 0, 0, 0, 0, i]);
        let replies = x.am1(&mut sim, id.clone()).expect("AM1");
        if replies.iter().any(|r| !r.payloads.is_empty()) {
            answered += 1;
        }
    }
    assert_eq!(answered, 2, "{:#?}", sim.b.logs);
    assert_eq!(sim.b.engine.admission().refused_aggressive, 3);
    assert!(sim
        .b
        .logs
        .iter()
        .any(|(_, l)| l.contains("dropped: Aggressive-mode-rate (2 a second) reached")));
    // Half a second later the bucket holds one more.
    sim.advance(Duration::from_millis(600));
    let mut x = ScriptedInitiator::new(a_addr(), b_addr(), &peer, *b"AM-later");
    let replies = x.am1(&mut sim, id).expect("AM1");
    assert!(
        replies.iter().any(|r| !r.payloads.is_empty()),
        "{:#?}",
        sim.b.logs
    );
}

/// A datagram flood cannot flood the log: one source gets ten lines of a kind per ten
/// seconds, spoofed sources together a hundred, and what is left out is summed up once the
/// interval is over, while a real peer's progress is still logged.
#[test]
fn the_lines_a_flood_causes_are_rate_limited_with_a_summary() {
    let mut sim = sim::setup::pair(&rsa_suite(), &[Suite2::default()], 91);
    let junk = [0x5au8; 20]; // shorter than an ISAKMP header: "dropping malformed message"
    let malformed = |logs: &[(ike::engine::LogLevel, String)]| {
        logs.iter()
            .filter(|(_, l)| l.starts_with("dropping malformed message from"))
            .count()
    };
    let now = sim.now;
    for _ in 0..1_000 {
        sim.b.engine.handle_datagram(now, b_addr(), a_addr(), &junk);
    }
    sim.advance(Duration::from_millis(1));
    assert_eq!(malformed(&sim.b.logs), 10, "{:?}", sim.b.logs);
    // Spoofed sources, one datagram each.
    for n in 0..5_000u32 {
        let from = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::from(0xc633_0000 + n)), 500);
        sim.b.engine.handle_datagram(now, b_addr(), from, &junk);
    }
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        malformed(&sim.b.logs),
        100,
        "the kind's total over all sources"
    );
    assert_eq!(sim.b.engine.faults().log_suppressed, 990 + 4_910);
    assert!(!sim.b.log_contains("similar messages suppressed"));

    // The summary comes when the interval is over, with no datagram to carry it.
    sim.advance(Duration::from_secs(10));
    assert!(
        sim.b.log_contains(
            "5900 similar messages suppressed in the last 10 s; the first: dropping malformed message from"
        ),
        "{:?}",
        sim.b.logs.iter().rev().take(3).collect::<Vec<_>>()
    );

    // A real negotiation after the flood is logged in full.
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    assert!(sim.run_until(Duration::from_secs(30), |s| s.b.phase2_up(CONN) >= 1));
    assert!(sim.b.log_contains("phase 1 established with"));
    assert!(sim.b.log_contains("phase 2 established for"));
}

/// The scripted peer holding A's own key, authenticated in message 5 (B answers with
/// message 6 and holds a second ISAKMP SA with A's identity).
fn authenticated_with_a_s_key(sim: &mut Sim, icookie: [u8; 8]) -> ScriptedInitiator {
    let key = openssl::pkey::PKey::private_key_from_der(&rsa_keys()[0].0).expect("A's key");
    let mut x = attacker(sim, icookie);
    x.through_mm4(sim, 32).expect("MM1-4");
    let id = ike::codec::IdPayload {
        protocol: 17,
        port: 500,
        identity: ike::codec::Identity::Ipv4(A_IP),
    };
    let got = x
        .mm5(sim, id, |h| ike::crypto::rsa_sign(&key, h).expect("sign"))
        .expect("MM5");
    assert!(
        got.iter()
            .any(|r| r.header.exchange == ike::codec::ExchangeType::MAIN_MODE),
        "no message 6: {:#?}",
        sim.b.logs
    );
    assert_eq!(
        sim.b
            .engine
            .phase1_sas()
            .iter()
            .filter(|p| p.established)
            .count(),
        2
    );
    x
}

/// RFC 3706 7 under an authenticated ISAKMP SA: each R-U-THERE is answered only when its
/// sequence number is later than the last answered one (modulo 2^32), or the same one
/// again up to three times (isakmpd retransmits without a new number); an older number
/// or one that is not 4 bytes is not answered, by name.
#[test]
fn r_u_there_is_answered_only_in_sequence() {
    let (mut sim, _, _) = established(377);
    let x = authenticated_with_a_s_key(&mut sim, *b"withkey!");
    let seq = |n: u32| n.to_be_bytes().to_vec();
    let cases: Vec<(Vec<u8>, bool)> = vec![
        (seq(u32::MAX - 1), true),
        (seq(u32::MAX - 1), true),
        (seq(u32::MAX - 1), true),
        (seq(u32::MAX - 1), true),
        (seq(u32::MAX - 1), false),
        (seq(u32::MAX - 2), false),
        // After u32::MAX comes 0: later, modulo 2^32.
        (seq(1), true),
        (seq(u32::MAX), false),
        (vec![1, 2], false),
        (seq(2), true),
    ];
    for (i, (data, answered)) in cases.into_iter().enumerate() {
        let n = ike::codec::Payload::Notify(ike::codec::NotifyPayload {
            doi: ike::codec::DOI_IPSEC,
            protocol: ike::codec::ProtocolId::ISAKMP,
            spi: x.isakmp_spi(),
            notify_type: NotifyType::R_U_THERE,
            data: data.clone(),
        });
        let got = x
            .informational(&mut sim, 0x0dd0_0000 + i as u32, vec![n])
            .expect("R-U-THERE");
        let acked = got
            .iter()
            .any(|r| r.header.exchange == ike::codec::ExchangeType::INFORMATIONAL);
        assert_eq!(
            acked, answered,
            "R-U-THERE #{i} {data:02x?}: {:#?}",
            sim.b.logs
        );
    }
    for line in [
        "with sequence number 4294967294 repeated more than 3 times: not answered",
        "with sequence number 4294967293, before the last answered (4294967294): not answered",
        "with sequence number 4294967295, before the last answered (1): not answered",
        "with 2 bytes of sequence number: not answered",
    ] {
        assert!(
            sim.b.logs.iter().any(|(_, l)| l.contains(line)),
            "{line:?} not logged: {:#?}",
            sim.b.logs
        );
    }
}
