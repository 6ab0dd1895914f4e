//! Two engines wired together in memory bring up phase 1 and phase 2 for every suite.

mod sim;

use ike::crypto::Group;
use ike::engine::Direction;
use ike::policy::*;
use sim::setup::*;
use sim::{sas_pair_up, Sim};
use std::net::IpAddr;
use std::time::Duration;

const CONN: &str = "net-a-net-b";

/// A initiates; both sides must end with matching SAs.
fn negotiate(sim: &mut Sim) -> Result<(), String> {
    let now = sim.now;
    sim.a
        .engine
        .initiate(now, CONN)
        .map_err(|e| e.to_string())?;
    let ok = sim.run_until(Duration::from_secs(120), |s| {
        s.a.phase2_up(CONN) >= 1 && s.b.phase2_up(CONN) >= 1
    });
    if !ok {
        let logs: Vec<String> = sim
            .a
            .logs
            .iter()
            .chain(&sim.b.logs)
            .map(|(_, l)| l.clone())
            .filter(|l| !l.contains("retransmitting"))
            .collect();
        return Err(format!("not up after 120 s; logs: {logs:#?}"));
    }
    let n = sas_pair_up(&sim.a, &sim.b)?;
    let m = sas_pair_up(&sim.b, &sim.a)?;
    if n == 0 || m == 0 {
        return Err(format!("no outbound SAs (A {n}, B {m})"));
    }
    if !sim.a.kernel.has_policy(CONN) || !sim.b.kernel.has_policy(CONN) {
        return Err("policies missing".into());
    }
    Ok(())
}

fn matrix_chunk(chunk: usize, of: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let mut i = 0u64;
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        for auth in [AuthMethod::PreShared, AuthMethod::RsaSig] {
            for encr in ciphers() {
                for hash in hashes() {
                    for group in groups() {
                        for pfs in [None, Some(group)] {
                            i += 1;
                            if (i as usize) % of != chunk {
                                continue;
                            }
                            let s1 = Suite1 {
                                encr,
                                hash,
                                group,
                                auth,
                                mode,
                            };
                            let s2 = Suite2 {
                                pfs,
                                ..Default::default()
                            };
                            let mut sim = pair(std::slice::from_ref(&s1), &[s2], i);
                            if let Err(e) = negotiate(&mut sim) {
                                failures.push(format!("{s1:?} pfs {pfs:?}: {e}"));
                            }
                        }
                    }
                }
            }
        }
    }
    failures
}

/// Every cipher x hash x group x auth method, Main and Aggressive Mode, with and without PFS:
/// 4 x 5 x 10 x 2 x 2 x 2 = 1600 negotiations, on two threads.
#[test]
fn every_phase1_suite_in_both_modes_with_and_without_pfs() {
    let t = std::thread::spawn(|| matrix_chunk(1, 2));
    let mut failures = matrix_chunk(0, 2);
    failures.extend(t.join().expect("matrix thread"));
    assert!(
        failures.is_empty(),
        "{} of 1600 failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every ESP and AH transform, tunnel and transport.
#[test]
fn every_ipsec_transform_in_tunnel_and_transport_mode() {
    let s1 = [Suite1 {
        encr: ike::crypto::EncrAlg::AesCbc128,
        hash: ike::crypto::HashAlg::Sha1,
        group: Group::Modp2048,
        auth: AuthMethod::PreShared,
        mode: Phase1Mode::Main,
    }];
    let integs = [
        IntegAlg::HmacMd5,
        IntegAlg::HmacSha1,
        IntegAlg::HmacSha256,
        IntegAlg::HmacSha384,
        IntegAlg::HmacSha512,
    ];
    let mut cases = Vec::new();
    for encap in [EncapMode::Tunnel, EncapMode::Transport] {
        for cipher in [
            EspCipher::TripleDes,
            EspCipher::AesCbc { key_bits: 128 },
            EspCipher::AesCbc { key_bits: 192 },
            EspCipher::AesCbc { key_bits: 256 },
        ] {
            for integ in integs {
                cases.push(Suite2 {
                    cipher: Some(cipher),
                    integ: Some(integ),
                    encap,
                    ..Default::default()
                });
            }
        }
        for key_bits in [128, 192, 256] {
            cases.push(Suite2 {
                cipher: Some(EspCipher::AesGcm16 { key_bits }),
                integ: None,
                encap,
                ..Default::default()
            });
        }
        for integ in integs {
            cases.push(Suite2 {
                protocol: IpsecProtocol::Ah,
                cipher: None,
                integ: Some(integ),
                encap,
                ..Default::default()
            });
        }
    }
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let mut sim = pair(&s1, std::slice::from_ref(c), 5000 + i as u64);
        match negotiate(&mut sim) {
            Ok(()) => {
                let sa = sim.a.sas(Direction::Outbound)[0];
                assert_eq!(sa.mode, c.encap);
                assert_eq!(sa.cipher, c.cipher);
                assert_eq!(sa.integ, c.integ);
                let want = match c.cipher {
                    None => 0,
                    Some(EspCipher::TripleDes) => 24,
                    Some(EspCipher::AesCbc { key_bits }) => key_bits as usize / 8,
                    Some(EspCipher::AesGcm16 { key_bits }) => key_bits as usize / 8 + 4,
                    Some(EspCipher::Null) => 0,
                };
                assert_eq!(sa.enc_key.len(), want, "{c:?}");
            }
            Err(e) => failures.push(format!("{c:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn basic() -> Vec<Suite1> {
    vec![Suite1 {
        encr: ike::crypto::EncrAlg::AesCbc256,
        hash: ike::crypto::HashAlg::Sha256,
        group: Group::Modp2048,
        auth: AuthMethod::PreShared,
        mode: Phase1Mode::Main,
    }]
}

/// Several proposals: the responder picks the first of the initiator's it accepts.
#[test]
fn responder_picks_the_first_acceptable_of_several_proposals() {
    let a2 = vec![
        Suite2 {
            cipher: Some(EspCipher::AesCbc { key_bits: 256 }),
            integ: Some(IntegAlg::HmacSha512),
            ..Default::default()
        },
        Suite2 {
            cipher: Some(EspCipher::AesCbc { key_bits: 128 }),
            integ: Some(IntegAlg::HmacSha256),
            ..Default::default()
        },
        Suite2::default(),
    ];
    let b2 = vec![a2[2].clone(), a2[1].clone()];
    let mut sim = pair_with(&basic(), &basic(), &a2, &b2, 7, 3600, 0);
    negotiate(&mut sim).expect("negotiation");
    let sa = sim.a.sas(Direction::Outbound)[0];
    assert_eq!(sa.cipher, Some(EspCipher::AesCbc { key_bits: 128 }));
    assert_eq!(sa.integ, Some(IntegAlg::HmacSha256));
}

/// A Quick Mode initiator sends its third message only once the kernel has confirmed its new
/// inbound SAs: the responder may send on its new outbound SA as soon as that message arrives
/// (Libreswan did, and its first packet beat our inbound SA into the kernel).
#[test]
fn quick_mode_message_3_waits_for_the_inbound_sa() {
    let mut sim = pair(&basic()[..1], &[Suite2::default()], 11);
    sim.a.kernel.hold_inbound = true;
    let now = sim.now;
    sim.a.engine.initiate(now, CONN).unwrap();
    assert!(
        sim.run_until(Duration::from_secs(30), |s| !s.a.kernel.held.is_empty()),
        "A never installed an inbound SA"
    );
    // Well past the responder's first retransmission of message 2, still unconfirmed.
    sim.advance(Duration::from_secs(12));
    assert!(!sim.a.sas(Direction::Inbound).is_empty());
    assert_eq!(
        sim.a.phase2_up(CONN),
        0,
        "A counts phase 2 up before message 3"
    );
    assert_eq!(
        sim.b.phase2_up(CONN),
        0,
        "B got message 3 before A's inbound SA was confirmed"
    );
    assert!(
        sim.b.sas(Direction::Outbound).is_empty(),
        "B installed its outbound SA before A's inbound SA was confirmed"
    );
    sim.confirm_held(true);
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.a.phase2_up(CONN) >= 1 && s.b.phase2_up(CONN) >= 1
    }));
    assert!(sas_pair_up(&sim.b, &sim.a).unwrap() >= 1);
    assert!(sas_pair_up(&sim.a, &sim.b).unwrap() >= 1);
}

/// Aggressive Mode's third message goes encrypted (as pluto, racoon and Cisco send it): pluto
/// as responder chains its Quick Mode IV on an encrypted one, so a clear one made its first
/// Quick Mode message decrypt to garbage ("length of ISAKMP Hash Payload is larger than can
/// fit"). Found by the interop matrix (Libreswan, am-psk-fqdn, ours-init).
#[test]
fn aggressive_mode_third_message_is_encrypted() {
    for auth in [AuthMethod::PreShared, AuthMethod::RsaSig] {
        let s1 = Suite1 {
            encr: ike::crypto::EncrAlg::AesCbc128,
            hash: ike::crypto::HashAlg::Sha1,
            group: Group::Modp2048,
            mode: Phase1Mode::Aggressive,
            auth,
        };
        let mut sim = pair(std::slice::from_ref(&s1), &[Suite2::default()], 7);
        negotiate(&mut sim).unwrap();
        // ISAKMP header: cookies (16), next payload, version, exchange type (18), flags (19).
        let aggressive: Vec<&sim::Packet> = sim
            .trace
            .iter()
            .filter(|p| p.bytes.len() > 28 && p.bytes[18] == 4)
            .collect();
        assert!(
            aggressive.len() >= 3,
            "{auth:?}: {} AM messages",
            aggressive.len()
        );
        let third = aggressive[2];
        assert_eq!(
            third.from.ip(),
            IpAddr::V4(A_IP),
            "{auth:?}: third AM message not A's"
        );
        assert_eq!(
            third.bytes[19] & 1,
            1,
            "{auth:?}: third AM message not encrypted"
        );
        assert_eq!(aggressive[0].bytes[19] & 1, 0);
    }
}
