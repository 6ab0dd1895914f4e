//! A panic while handling one datagram costs that datagram only. No peer can make the engine
//! panic (that would be a bug), so a unit-test-only exchange type, `PANIC_PROBE`, does.

use super::sim::setup::*;
use super::sim::{sas_pair_up, Sim};
use super::{LogLevel, PANIC_PROBE};
use crate::codec::{Header, PayloadType, HEADER_LEN};
use crate::crypto::{EncrAlg, Group, HashAlg};
use crate::policy::*;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const CONN: &str = "net-a-net-b";

fn up(sim: &Sim) -> bool {
    sim.a.phase2_up(CONN) >= 1 && sim.b.phase2_up(CONN) >= 1
}

#[test]
fn a_panic_drops_the_datagram_and_keeps_every_other_state() {
    let suite = Suite1 {
        encr: EncrAlg::AesCbc128,
        hash: HashAlg::Sha1,
        group: Group::Modp2048,
        auth: AuthMethod::PreShared,
        mode: Phase1Mode::Main,
    };
    let mut sim = pair(&[suite], &[Suite2::default()], 7);
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).expect("initiate");
    assert!(sim.run_until(Duration::from_secs(30), up));
    let p1_before = sim.b.engine.phase1_sas();
    let sas_before = sim.b.kernel.sas.len();

    // A crypto request is outstanding when the probe arrives (B starts a rekey of phase 2),
    // so the containment must not take back work queued before the panic.
    let now = sim.now;
    sim.b.engine.initiate(now, CONN).expect("initiate");
    let waiting_before = sim.b.engine.crypto_pending().count();
    let outputs_before = sim.b.engine.ctx.out.len();

    let header = Header {
        initiator_cookie: p1_before[0].icookie,
        responder_cookie: p1_before[0].rcookie,
        next_payload: PayloadType::NONE,
        version: 0x10,
        exchange: PANIC_PROBE,
        flags: 0,
        message_id: 0,
        length: HEADER_LEN as u32,
    };
    let mut bytes = Vec::new();
    header.emit(&mut bytes);
    let local = SocketAddr::new(IpAddr::V4(B_IP), 500);
    let remote = SocketAddr::new(IpAddr::V4(A_IP), 500);
    // The default hook would print the probe's panic in the middle of the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..3 {
        sim.b.engine.handle_datagram(now, local, remote, &bytes);
    }
    std::panic::set_hook(hook);

    assert_eq!(sim.b.engine.faults().internal_errors, 3);
    assert_eq!(sim.b.engine.crypto_pending().count(), waiting_before);
    // Exactly one output more per probe: its error line (never rate-limited away).
    let lines: Vec<_> = sim.b.engine.ctx.out.iter().skip(outputs_before).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.iter().all(|o| matches!(
            o,
            super::Output::Event(super::Event::Log { level: LogLevel::Error, message })
                if message.contains("internal error (panic: the panic probe) while handling a datagram of 28 bytes from")
        )),
        "{lines:?}"
    );
    assert_eq!(sim.b.engine.phase1_sas().len(), p1_before.len());
    assert_eq!(sim.b.kernel.sas.len(), sas_before);

    // Everything goes on: B's phase 2 started before the probes completes.
    assert!(
        sim.run_until(Duration::from_secs(30), |x| x.b.phase2_up(CONN) >= 2),
        "{:?}",
        sim.b.logs
    );
    sas_pair_up(&sim.a, &sim.b).expect("both sides hold matching SAs");
}
