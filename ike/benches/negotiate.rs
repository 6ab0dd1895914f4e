//! Phase-1 + phase-2 negotiations per second between two in-memory engines, per suite, and
//! the share of the time spent in Diffie-Hellman (modexp / EC point multiplication).
//!
//! `cargo bench -p ike --bench negotiate` (add `-- N` for N negotiations per suite).

#[path = "../tests/sim/mod.rs"]
mod sim;

use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::policy::{AuthMethod, Phase1Mode};
use sim::setup::{pair, Suite1, Suite2};
use std::time::{Duration, Instant};

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let suites: Vec<(&str, Suite1, Option<Group>)> = vec![
        (
            "MM PSK AES-128 SHA1 MODP1024",
            s(
                EncrAlg::AesCbc128,
                HashAlg::Sha1,
                Group::Modp1024,
                AuthMethod::PreShared,
            ),
            None,
        ),
        (
            "MM PSK AES-128 SHA1 MODP2048",
            s(
                EncrAlg::AesCbc128,
                HashAlg::Sha1,
                Group::Modp2048,
                AuthMethod::PreShared,
            ),
            None,
        ),
        (
            "MM PSK AES-256 SHA256 MODP2048 +PFS",
            s(
                EncrAlg::AesCbc256,
                HashAlg::Sha256,
                Group::Modp2048,
                AuthMethod::PreShared,
            ),
            Some(Group::Modp2048),
        ),
        (
            "MM PSK AES-128 SHA256 ECP256",
            s(
                EncrAlg::AesCbc128,
                HashAlg::Sha256,
                Group::Ecp256,
                AuthMethod::PreShared,
            ),
            None,
        ),
        (
            "MM RSA AES-128 SHA256 MODP2048",
            s(
                EncrAlg::AesCbc128,
                HashAlg::Sha256,
                Group::Modp2048,
                AuthMethod::RsaSig,
            ),
            None,
        ),
        (
            "MM PSK 3DES SHA1 MODP1536",
            s(
                EncrAlg::TripleDesCbc,
                HashAlg::Sha1,
                Group::Modp1536,
                AuthMethod::PreShared,
            ),
            None,
        ),
    ];
    println!("{n} negotiations per suite (Main Mode + Quick Mode, both engines in one thread)");
    println!(
        "{:<38} {:>10} {:>12} {:>10}",
        "suite", "neg/s", "us/neg", "DH share"
    );
    for (name, s1, pfs) in suites {
        let mut total = Duration::ZERO;
        let mut dh = Duration::ZERO;
        for i in 0..n {
            let mut sim = pair(
                std::slice::from_ref(&s1),
                &[Suite2 {
                    pfs,
                    ..Default::default()
                }],
                i,
            );
            let t0 = Instant::now();
            let now = sim.now;
            sim.a.engine.initiate(now, "net-a-net-b").expect("initiate");
            let ok = sim.run_until(Duration::from_secs(60), |x| {
                x.a.phase2_up("net-a-net-b") >= 1 && x.b.phase2_up("net-a-net-b") >= 1
            });
            total += t0.elapsed();
            assert!(ok, "{name}: negotiation {i} failed");
            dh += sim.a.dh_time + sim.b.dh_time;
        }
        let per = total / n as u32;
        println!(
            "{:<38} {:>10.1} {:>12.0} {:>9.1}%",
            name,
            n as f64 / total.as_secs_f64(),
            per.as_secs_f64() * 1e6,
            100.0 * dh.as_secs_f64() / total.as_secs_f64()
        );
    }
}

fn s(encr: EncrAlg, hash: HashAlg, group: Group, auth: AuthMethod) -> Suite1 {
    Suite1 {
        encr,
        hash,
        group,
        auth,
        mode: Phase1Mode::Main,
    }
}
