//! The flood test: at least 100,000 spoofed Main Mode and Aggressive Mode first messages
//! from random addresses of 198.18.0.0/15, as fast as the generator goes, against a
//! gateway (west) that takes Main Mode from any address (a `Default` peer) and Aggressive
//! Mode by identity from any address. While it runs, west keeps its tunnel with east
//! exactly as it was, a new peer (north) that starts in the middle of the flood completes
//! Main Mode and Quick Mode, west's processes stay under a stated memory bound, and no
//! spoofed address gets more than one datagram (no retransmission to a source that has
//! proven nothing, so the gateway is no amplifier).

use e2e::daemon::Daemon;
use e2e::flood::{unique_source, FirstMessages, FloodNet, Xorshift};
use e2e::flood_scene::*;
use e2e::netns::Netns;
use e2e::pair::*;
use ike::codec::Identity;
use ike::crypto::Group;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The burst: this many first messages as fast as the generator goes.
const FLOOD: u64 = 100_000;
/// Then first messages a second until north is up. A flood faster than the child can read
/// is shed by the kernel at random, north's datagrams with it (see the note in
/// `flood_bench`): this rate is well inside what the child reads, so what is measured is
/// the daemon's admission control, not the socket buffer.
const SUSTAINED: u64 = 2_000;
/// West's processes (parent, child, helper) together stay under this resident size
/// during and after the flood (`Max-half-open`, 8192 by default, bounds the table).
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// West's SA lines with east, cut before the remaining lifetime.
fn held_with_east(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            (l.starts_with(WEST_PEER_SECTION) && l.contains("cookies"))
                || (l.starts_with(WEST_CONNECTION) && l.contains("Esp in"))
        })
        .map(|l| l.split("expires in").next().unwrap_or(l).trim().to_string())
        .collect()
}

#[test]
fn a_spoofed_flood_costs_no_tunnel_no_new_peer_and_bounded_memory() {
    e2e::require_env!();
    let args = ["-n", "-v", "-j", "1"];
    let ns_east = Netns::new("fle").expect("namespace");
    let ns_west = Netns::new("flw").expect("namespace");
    Netns::link(
        &ns_east,
        &format!("{EAST_ADDR}/24"),
        &ns_west,
        &format!("{WEST_ADDR}/24"),
    )
    .expect("link");
    let west = Daemon::start(&ns_west, "flw", &west_conf(""), &args).expect("west");
    let east = Daemon::start(
        &ns_east,
        "fle",
        &gateway_conf(true, &Auth::Psk(PSK.into())),
        &args,
    )
    .expect("east");
    let up = |d: &Daemon| d.log_count(PHASE1_UP) >= 1 && d.log_count(PHASE2_UP) >= 1;
    assert!(
        e2e::wait_until(Duration::from_secs(20), || up(&west) && up(&east)),
        "east and west not up\n{}\n{}",
        east.log_text(),
        west.log_text()
    );
    // North shares east's namespace and link, on an address of its own that appears
    // after east has bound its sockets.
    let east_if = format!("v{}", &ns_east.name[ns_east.name.len().saturating_sub(8)..]);
    ns_east
        .exec(&[
            "ip",
            "addr",
            "add",
            &format!("{NORTH_ADDR}/24"),
            "dev",
            &east_if,
        ])
        .expect("north's address");
    let before = held_with_east(&west.report());
    assert_eq!(before.len(), 2, "{before:?}");
    let (rss_before, _) = memory_kib(west.pid());

    let flood = Arc::new(FloodNet::new("flx", &ns_west).expect("flood namespace"));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = flood
        .count_answers(stop.clone(), Duration::from_secs(2))
        .expect("answer counter");
    let sent = Arc::new(AtomicU64::new(0));
    let generator = {
        let (flood, stop, sent) = (flood.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let msgs = FirstMessages {
                offer: offer(),
                ke_len: Group::Modp2048.public_len(),
                id: Identity::Fqdn(b"am.example".to_vec()),
            };
            let target = SocketAddrV4::new(WEST_ADDR.parse().expect("address"), 500);
            let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
            let mut errors = 0u64;
            let start = Instant::now();
            let mut n = 0u64;
            let mut full_speed = Duration::ZERO;
            while n < FLOOD || !stop.load(Ordering::Relaxed) {
                if n == FLOOD {
                    full_speed = start.elapsed();
                }
                if n >= FLOOD {
                    // Past the burst: SUSTAINED a second until north is up.
                    let due =
                        full_speed + Duration::from_secs_f64((n - FLOOD) as f64 / SUSTAINED as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let cookie = rng.next_u64().to_be_bytes();
                let bytes = if n & 1 == 0 {
                    msgs.main_mode(cookie)
                } else {
                    msgs.aggressive(cookie, &mut rng)
                };
                if flood.send_from(unique_source(n), target, &bytes).is_err() {
                    errors += 1;
                }
                n += 1;
                sent.store(n, Ordering::Relaxed);
            }
            if full_speed.is_zero() {
                full_speed = start.elapsed();
            }
            (n, errors, full_speed, start.elapsed())
        })
    };
    // North starts while the flood runs, and must come up through it.
    while sent.load(Ordering::Relaxed) < 5_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let north_started = Instant::now();
    let conf = north_conf();
    assert!(conf.contains("Exchange-max-time=\t4") && conf.contains("Check-interval=\t2"));
    let mut north = Daemon::start(&ns_east, "fln", &conf, &args).expect("north");
    let wait = std::env::var("FLOOD_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let north_up = e2e::wait_until(Duration::from_secs(wait), || {
        north.log_count(PHASE2_UP) >= 1 || north.try_exit().is_some()
    }) && north.log_count(PHASE2_UP) >= 1;
    let north_took = north_started.elapsed();
    let north_attempts = north.log_count("initiating Main mode");
    let sent_when_north_up = sent.load(Ordering::Relaxed);
    let (_, hwm_during) = memory_kib(west.pid());
    stop.store(true, Ordering::Relaxed);
    let (sent_total, send_errors, burst_time, flood_time) = generator.join().expect("generator");
    let answers = counter.join().expect("counter");
    let (rss_after, hwm_after) = memory_kib(west.pid());
    let after_report = west.report();
    let counters = after_report
        .lines()
        .find(|l| l.contains("half-open responder exchanges"))
        .unwrap_or("")
        .trim()
        .to_string();
    eprintln!(
        "flood: {FLOOD} first messages in {:.3} s ({:.0} a second), then {SUSTAINED} a second: {sent_total} in {:.2} s, {send_errors} send errors; north up after {:.2} s and {north_attempts} attempts with {sent_when_north_up} sent; answers to spoofed addresses: {} to {} addresses, the most to one first message {:?}; west's memory: {rss_before} KiB before, {rss_after} KiB after, largest peak of one process {hwm_during} KiB during and {hwm_after} KiB after; {counters}",
        burst_time.as_secs_f64(),
        FLOOD as f64 / burst_time.as_secs_f64().max(1e-9),
        flood_time.as_secs_f64(),
        north_took.as_secs_f64(),
        answers.total,
        answers.addresses(),
        answers.most(),
    );
    let logs = || {
        format!(
            "--- west:\n{}\n--- north:\n{}",
            west.log_text(),
            north.log_text()
        )
    };
    assert!(sent_total >= FLOOD, "only {sent_total} sent");
    // The report still comes, with the counters, however many exchanges are half-open.
    assert!(
        counters.starts_with("half-open responder exchanges: "),
        "no report, or no counters in it\n{}",
        logs()
    );
    assert!(
        north_up,
        "north did not come up through the flood\n{}",
        logs()
    );
    assert!(
        sent_when_north_up < sent_total,
        "north came up after the flood, not during it"
    );
    assert!(
        answers.total > 0,
        "west answered no spoofed address: the test saw nothing"
    );
    assert!(
        answers.most().is_none_or(|(_, n)| n <= 1),
        "a spoofed first message got {:?} datagrams",
        answers.most()
    );
    // No source address repeats in this flood: one datagram per address, too.
    assert!(
        sent_total < (1 << 17) - 2,
        "the flood ran long enough to reuse addresses"
    );
    assert_eq!(
        answers.addresses() as u64,
        answers.total,
        "some spoofed address got more than one datagram"
    );
    assert!(
        rss_after <= MEMORY_BOUND_KIB,
        "west's processes hold {rss_after} KiB after the flood, over {MEMORY_BOUND_KIB}"
    );
    let after = held_with_east(&after_report);
    assert!(
        before.iter().all(|l| after.contains(l)),
        "west's SAs with east changed: before {before:?}, after {after:?}\n{}",
        logs()
    );
    assert!(west.log_count("panic") == 0, "{}", logs());
    drop(east);
}
