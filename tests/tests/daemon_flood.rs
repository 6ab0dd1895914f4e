//! The flood test: at least 100,000 spoofed Main Mode and Aggressive Mode first messages
//! from random addresses of 198.18.0.0/15, as fast as the generator goes, against a
//! gateway (west) that takes Main Mode from any address (a `Default` peer) and Aggressive
//! Mode by identity from any address. While it runs, west keeps its tunnel with east
//! exactly as it was, a new peer (north) that starts in the middle of the flood completes
//! Main Mode and Quick Mode, west's processes stay under a stated memory bound, and no
//! spoofed address gets more than one datagram (no retransmission to a source that has
//! proven nothing, so the gateway is no amplifier).

use e2e::daemon::Daemon;
use e2e::flood::{FirstMessages, FloodNet, Xorshift};
use e2e::netns::Netns;
use e2e::pair::*;
use e2e::procfs;
use ike::codec::Identity;
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::policy::{
    phase1_sa, AuthMethod, Credentials, DpdAction, LifetimeRange, Peer, Phase1Mode, Phase1Transform,
};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PSK: &str = "flood-test-secret";
const NORTH_ADDR: &str = "192.0.2.3";
/// The burst: this many first messages as fast as the generator goes.
const FLOOD: u64 = 100_000;
/// Then first messages a second until north is up. A flood faster than the child can read
/// is shed by the kernel at random, north's datagrams with it (see the note in
/// `flood_bench`): this rate is well inside what the child reads, so what is measured is
/// the daemon's admission control, not the socket buffer.
const SUSTAINED: u64 = 5_000;
/// West's processes (parent, child, helper) together stay under this resident size
/// during and after the flood (`Max-half-open` 2048 bounds the table).
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// West's configuration: the east/west gateway, plus north (192.0.2.3, subnet
/// 10.3.0.0/16), a `Default` Main Mode peer and an Aggressive Mode peer known by FQDN.
fn west_conf() -> String {
    let base = gateway_conf(false, &Auth::Psk(PSK.into()));
    let base = base
        .replacen(
            "[Phase 1]\n",
            &format!("[Phase 1]\n{NORTH_ADDR}=\t\tpeer-north\n192.0.2.250=\t\tpeer-am\nDefault=\t\tpeer-rw\n"),
            1,
        )
        .replacen(
            &format!("Passive-connections=\t{WEST_CONNECTION}"),
            &format!("Passive-connections=\t{WEST_CONNECTION},IPsec-west-north"),
            1,
        );
    format!(
        "{base}
[peer-north]
Phase=\t\t\t1
Transport=\t\tudp
Local-address=\t\t{WEST_ADDR}
Address=\t\t{NORTH_ADDR}
Configuration=\t\t{WEST_PEER_SECTION}-main-mode
Authentication=\t\t{PSK}

[IPsec-west-north]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-north
Configuration=\t\t{WEST_CONNECTION}-quick-mode
Local-ID=\t\t{WEST_CONNECTION}-local
Remote-ID=\t\tIPsec-west-north-remote

[IPsec-west-north-remote]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t10.3.0.0
Netmask=\t\t255.255.0.0

[peer-rw]
Phase=\t\t\t1
Transport=\t\tudp
Configuration=\t\t{WEST_PEER_SECTION}-main-mode
Authentication=\t\troad-warrior-secret

[peer-am]
Phase=\t\t\t1
Transport=\t\tudp
Configuration=\t\tpeer-am-aggressive
Authentication=\t\taggressive-secret
Remote-ID=\t\tpeer-am-id

[peer-am-id]
ID-type=\t\tFQDN
Name=\t\t\tam.example

[peer-am-aggressive]
DOI=\t\t\tIPSEC
EXCHANGE_TYPE=\t\tAGGRESSIVE
Transforms=\t\tAES-256-SHA2-256-GRP14
"
    )
}

/// North: east's configuration on 192.0.2.3 with subnet 10.3.0.0/16, bound to its own
/// address only (it shares east's namespace).
fn north_conf() -> String {
    gateway_conf(true, &Auth::Psk(PSK.into()))
        .replace(EAST_ADDR, NORTH_ADDR)
        .replace("10.1.0.0", "10.3.0.0")
        .replacen(
            "[General]\n",
            &format!("[General]\nListen-on=\t\t{NORTH_ADDR}\n"),
            1,
        )
}

/// What the flood offers: west's own phase 1 transform, pre-shared keys.
fn offer() -> ike::codec::SaPayload {
    phase1_sa(&Peer {
        name: "flood".into(),
        address: SocketAddr::from(([0, 0, 0, 0], 500)),
        local_address: None,
        mode: Phase1Mode::Main,
        transforms: vec![Phase1Transform {
            name: "AES-256-SHA2-256-GRP14".into(),
            encr: EncrAlg::AesCbc256,
            hash: HashAlg::Sha256,
            group: Group::Modp2048,
            auth: AuthMethod::PreShared,
            lifetime: LifetimeRange {
                default: 3600,
                min: 60,
                max: 86_400,
            },
        }],
        credentials: Credentials::PreShared {
            secret: String::new(),
        },
        local_id: None,
        remote_id: None,
        dpd_interval: 0,
        dpd_timeout: None,
        dpd_action: DpdAction::Clear,
        nat_t: false,
    })
}

/// The resident size of a daemon's processes together, and the largest peak of one, KiB.
fn memory_kib(parent: u32) -> (u64, u64) {
    let kib = |pid: u32, field: &str| {
        procfs::status_field(pid, field)
            .and_then(|v| {
                v.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let mut pids = vec![parent];
    pids.extend(procfs::role_children(parent, "child"));
    pids.extend(procfs::role_children(parent, "helper"));
    let rss = pids.iter().map(|p| kib(*p, "VmRSS:")).sum();
    let hwm = pids.iter().map(|p| kib(*p, "VmHWM:")).max().unwrap_or(0);
    (rss, hwm)
}

fn report(d: &Daemon) -> String {
    let path = d.dir.join("isakmpd.report");
    let _ = std::fs::remove_file(&path);
    d.signal("USR1");
    let mut text = String::new();
    e2e::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        text.contains("Pending timers:")
    });
    text
}

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
    let west = Daemon::start(&ns_west, "flw", &west_conf(), &args).expect("west");
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
    let before = held_with_east(&report(&west));
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
                if flood.send_from(rng.source(), target, &bytes).is_err() {
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
    let mut north = Daemon::start(&ns_east, "fln", &north_conf(), &args).expect("north");
    let wait = std::env::var("FLOOD_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let north_up = e2e::wait_until(Duration::from_secs(wait), || {
        north.log_count(PHASE2_UP) >= 1 || north.try_exit().is_some()
    }) && north.log_count(PHASE2_UP) >= 1;
    let north_took = north_started.elapsed();
    let sent_when_north_up = sent.load(Ordering::Relaxed);
    let (_, hwm_during) = memory_kib(west.pid());
    stop.store(true, Ordering::Relaxed);
    let (sent_total, send_errors, burst_time, flood_time) = generator.join().expect("generator");
    let answers = counter.join().expect("counter");
    let (rss_after, hwm_after) = memory_kib(west.pid());
    let after_report = report(&west);
    let counters = after_report
        .lines()
        .find(|l| l.contains("half-open responder exchanges"))
        .unwrap_or("")
        .trim()
        .to_string();
    eprintln!(
        "flood: {FLOOD} first messages in {:.3} s ({:.0} a second), then {SUSTAINED} a second: {sent_total} in {:.2} s, {send_errors} send errors; north up after {:.2} s with {sent_when_north_up} sent; answers to spoofed addresses: {} to {} addresses, the most to one first message {:?}; west's memory: {rss_before} KiB before, {rss_after} KiB after, largest peak of one process {hwm_during} KiB during and {hwm_after} KiB after; {counters}",
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
