//! State that can move: an ISAKMP SA exported mid-life from one engine and imported into a
//! fresh one carries on with the original peer (DPD both ways, Quick Mode rekeys, Delete, no
//! new Main Mode), and the work an exchange waits on is plain data.

mod sim;

use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::engine::{Direction, Engine, Event, IsakmpSaState, SeededRng, TransferError};
use ike::policy::{AuthMethod, Phase1Mode};
use sim::setup::*;
use sim::{sas_pair_up, Sim};
use std::time::Duration;

const CONN: &str = "net-a-net-b";

/// Main Mode with a pre-shared key, phase 1 for an hour, phase 2 for 60 s, DPD every 10 s.
fn pair(pfs: Option<Group>) -> Sim {
    let p1 = [Suite1 {
        encr: EncrAlg::AesCbc128,
        hash: HashAlg::Sha1,
        group: Group::Modp2048,
        auth: AuthMethod::PreShared,
        mode: Phase1Mode::Main,
    }];
    let p2 = [Suite2 {
        lifetime: 60,
        pfs,
        ..Default::default()
    }];
    pair_with(&p1, &p1, &p2, &p2, 5, 3600, 10)
}

fn up(sim: &Sim) -> bool {
    sim.a.phase2_up(CONN) >= 1 && sim.b.phase2_up(CONN) >= 1
}

/// A's engine is replaced by a fresh one (another seed, nothing negotiated) into which its
/// ISAKMP SA is imported, after a trip through postcard as between two processes.
fn move_a(sim: &mut Sim) -> IsakmpSaState {
    let p1 = sim.a.engine.phase1_sas();
    assert_eq!(p1.len(), 1, "{p1:?}");
    let state = sim
        .a
        .engine
        .export(p1[0].icookie, p1[0].rcookie)
        .expect("export");
    assert_eq!(state.ipsec.len(), 1, "{state:?}");
    let bytes = postcard::to_allocvec(&state).expect("serialise");
    let state: IsakmpSaState = postcard::from_bytes(&bytes).expect("deserialise");
    let cfg = sim.a.engine.config().clone();
    let now = sim.now;
    sim.a.engine = Engine::new(cfg, Box::new(SeededRng::new(99)), now);
    sim.a.engine.import(now, state.clone()).expect("import");
    // The same SA twice is refused, and changes nothing.
    assert_eq!(
        sim.a.engine.import(now, state.clone()),
        Err(TransferError::AlreadyPresent)
    );
    assert_eq!(sim.a.engine.phase1_sas().len(), 1);
    state
}

fn carries_on(pfs: Option<Group>) {
    let mut sim = pair(pfs);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    assert!(sim.run_until(Duration::from_secs(30), up), "not up");
    sim.advance(Duration::from_secs(5));
    let (p1_a, p1_b, p2_b) = (sim.a.phase1_up(), sim.b.phase1_up(), sim.b.phase2_up(CONN));
    let events_before = sim.a.events.len();
    let state = move_a(&mut sim);
    // Keys travel, but no key prints.
    let shown = format!("{state:?}");
    let skeyid_d: String = state
        .keys
        .skeyid_d
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !shown.contains(&skeyid_d) && !shown.contains(&format!("{:?}", &state.keys.skeyid_d[..]))
    );
    // Three rekeys of phase 2 and 30 DPD intervals later.
    sim.advance(Duration::from_secs(180));
    let logs = |n: &sim::Node| {
        n.logs
            .iter()
            .map(|(l, m)| format!("{l:?} {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        sim.a.phase1_up(),
        p1_a,
        "A negotiated phase 1 again:\n{}",
        logs(&sim.a)
    );
    assert_eq!(
        sim.b.phase1_up(),
        p1_b,
        "B negotiated phase 1 again:\n{}",
        logs(&sim.b)
    );
    for (name, n) in [("A", &sim.a), ("B", &sim.b)] {
        assert!(
            !n.log_contains("is dead"),
            "{name} declared its peer dead:\n{}",
            logs(n)
        );
        assert!(
            !n.log_contains("HASH mismatch") && !n.log_contains("decrypt"),
            "{name}:\n{}",
            logs(n)
        );
    }
    // DPD went both ways under the moved SA and was answered: the counters kept climbing.
    let dpd_after = sim.a.engine.export_all()[0].dpd_seq;
    assert!(
        dpd_after > state.dpd_seq + 5,
        "A's DPD sequence stalled at {dpd_after}"
    );
    // Quick Mode rekeyed under the imported SA, by the importing engine, and the new SAs
    // pair up with the peer's.
    let rekeys = sim.a.events[events_before..]
        .iter()
        .filter(|e| matches!(e, Event::Phase2Up { connection, .. } if connection == CONN))
        .count();
    assert!(
        rekeys >= 3,
        "only {rekeys} phase 2 rekeys after the move:\n{}",
        logs(&sim.a)
    );
    assert!(sim.b.phase2_up(CONN) >= p2_b + 3);
    sas_pair_up(&sim.a, &sim.b).expect("A's outbound SAs have twins on B");
    sas_pair_up(&sim.b, &sim.a).expect("B's outbound SAs have twins on A");
    // Delete: the operator tears the connection down on A; B hears of it under the moved SA.
    let now = sim.now;
    sim.a.engine.teardown(now, CONN).expect("teardown");
    sim.advance(Duration::from_secs(5));
    assert!(
        sim.b
            .engine
            .ipsec_sas()
            .iter()
            .all(|s| s.connection != CONN),
        "B still holds {:?}\n{}",
        sim.b.engine.ipsec_sas(),
        logs(&sim.b)
    );
    assert!(
        !sim.b
            .kernel
            .sas
            .values()
            .any(|s| s.direction == Direction::Inbound),
        "B's kernel still holds inbound SAs: {:?}",
        sim.b.kernel.sas.keys()
    );
    println!(
        "after the move: {rekeys} phase 2 rekeys, DPD sequence {} -> {}, no phase 1",
        state.dpd_seq, dpd_after
    );
}

#[test]
fn an_imported_isakmp_sa_carries_on_with_the_peer() {
    carries_on(None);
}

#[test]
fn an_imported_isakmp_sa_carries_on_with_pfs() {
    carries_on(Some(Group::Modp2048));
}

/// Exports refuse what is not a finished, current ISAKMP SA; imports refuse a peer or a
/// connection the policy does not have.
#[test]
fn export_and_import_refuse_what_they_cannot_carry() {
    let mut sim = pair(None);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    // Mid-negotiation: not established yet.
    sim.run_until(Duration::from_secs(5), |s| {
        !s.a.engine.phase1_sas().is_empty()
    });
    let p = sim.a.engine.phase1_sas()[0].clone();
    if !p.established {
        assert_eq!(
            sim.a.engine.export(p.icookie, p.rcookie).err(),
            Some(TransferError::NotEstablished)
        );
    }
    assert!(sim.run_until(Duration::from_secs(30), up));
    let p = sim.a.engine.phase1_sas()[0].clone();
    assert_eq!(
        sim.a.engine.export(p.rcookie, p.icookie).err(),
        Some(TransferError::NoSuchSa)
    );
    let state = sim.a.engine.export(p.icookie, p.rcookie).expect("export");
    // B holds these cookies already; under others, B's engine knows no peer "peer-b".
    assert_eq!(
        sim.b.engine.import(now, state.clone()).err(),
        Some(TransferError::AlreadyPresent)
    );
    let mut elsewhere = state.clone();
    elsewhere.icookie = ike::codec::Cookie([9; 8]);
    assert!(matches!(
        sim.b.engine.import(now, elsewhere),
        Err(TransferError::UnknownPeer(_))
    ));
    let mut renamed = state.clone();
    renamed.ipsec[0].connection = "elsewhere".into();
    renamed.icookie = ike::codec::Cookie([7; 8]);
    let cfg = sim.a.engine.config().clone();
    let mut fresh = Engine::new(cfg, Box::new(SeededRng::new(3)), now);
    assert_eq!(
        fresh.import(now, renamed),
        Err(TransferError::UnknownConnection("elsewhere".into()))
    );
    assert!(fresh.phase1_sas().is_empty() && fresh.ipsec_sas().is_empty());
}

/// While helpers are slow, what each exchange waits for is data: listed oldest first, named,
/// and the same after a trip through postcard.
#[test]
fn waiting_work_is_data() {
    let mut sim = pair(Some(Group::Modp2048));
    sim.a.crypto_delay = Duration::from_millis(200);
    sim.b.crypto_delay = Duration::from_millis(200);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    let mut seen = std::collections::BTreeSet::new();
    let done = sim.run_until(Duration::from_secs(30), |s| {
        for node in [&s.a, &s.b] {
            let ids: Vec<_> = node.engine.crypto_pending().map(|(id, _)| id).collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "not oldest first: {ids:?}"
            );
            for (id, w) in node.engine.crypto_pending() {
                let bytes = postcard::to_allocvec(w).expect("serialise");
                let back: ike::engine::CryptoPending =
                    postcard::from_bytes(&bytes).expect("deserialise");
                assert_eq!(&back, w);
                assert_eq!(node.engine.crypto_waiting_for(id), Some(w));
                // Quick Mode's work is for an SA that is up (it goes first in the queue);
                // phase 1's is a stranger's.
                assert_eq!(
                    w.under_established_sa(),
                    w.describe().starts_with("Quick Mode"),
                    "{}",
                    w.describe()
                );
                seen.insert(w.describe());
            }
        }
        up(s)
    });
    assert!(done, "not up");
    // Main Mode with a pre-shared key and Quick Mode with PFS wait on five kinds of answer.
    for kind in [
        "phase 1 DH key pair",
        "phase 1 DH shared secret",
        "SKEYID from the pre-shared key",
        "Quick Mode PFS key pair",
        "Quick Mode PFS shared secret",
    ] {
        assert!(seen.contains(kind), "never waited for {kind}: {seen:?}");
    }
}
